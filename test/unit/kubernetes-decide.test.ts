import { describe, expect, it } from 'vitest';
import type { InstanceInterruptedDetail } from '../../functions/kubernetes/events';
import { type KubernetesPolicy, decide } from '../../functions/kubernetes/interruption';

const policy: KubernetesPolicy = { rebalance: 'taint', drainTimeoutSeconds: 90, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt' };
const clusters = ['prod-eks'];
const event = (changes: Partial<InstanceInterruptedDetail>): InstanceInterruptedDetail => ({
  eventId: 'e1',
  kind: 'spot-interruption',
  instanceId: 'i-0123456789abcdef0',
  account: '111111111111',
  region: 'us-east-1',
  environment: 'PROD',
  clusterName: 'prod-eks',
  deadline: '2026-11-22T10:02:00.000Z',
  ...changes,
});

describe('what an interruption does to a node', () => {
  it('drains at once for a Spot interruption, a scheduled change, an ASG termination and a stopping instance', () => {
    expect(decide(event({}), clusters, policy)).toEqual({ act: 'drain', reason: 'Spot interruption: the instance goes at 2026-11-22T10:02:00.000Z' });
    expect(decide(event({ kind: 'scheduled-change' }), clusters, policy).act).toBe('drain');
    expect(decide(event({ kind: 'asg-termination', asg: { name: 'web', hook: 'drain', token: 't' } }), clusters, policy)).toEqual({ act: 'drain', reason: 'Auto Scaling group web is terminating the instance' });
    for (const state of ['stopping', 'stopped', 'shutting-down', 'terminated'] as const) expect(decide(event({ kind: 'state-change', state }), clusters, policy).act).toBe('drain');
  });

  it('does what kubernetes.rebalance says for a rebalance recommendation', () => {
    const rebalance = event({ kind: 'rebalance-recommendation', deadline: undefined });
    expect(decide(rebalance, clusters, policy).act).toBe('taint');
    expect(decide(rebalance, clusters, { ...policy, rebalance: 'drain' }).act).toBe('drain');
    expect(decide(rebalance, clusters, { ...policy, rebalance: 'ignore' })).toEqual({ act: 'ignore', reason: 'rebalance recommendations are ignored (kubernetes.rebalance: ignore)' });
  });

  it('ignores instances of no cluster or of a cluster not in the config', () => {
    expect(decide(event({ clusterName: undefined }), clusters, policy)).toEqual({ act: 'ignore', reason: 'instance i-0123456789abcdef0 belongs to no Kubernetes cluster' });
    expect(decide(event({ clusterName: 'lab-eks' }), clusters, policy)).toEqual({ act: 'ignore', reason: 'cluster lab-eks is not in kubernetes.clusters' });
  });

  it('ignores an instance that is starting', () => {
    expect(decide(event({ kind: 'state-change', state: 'running' }), clusters, policy).act).toBe('ignore');
  });
});
