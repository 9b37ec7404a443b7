import { describe, expect, it } from 'vitest';
import type { InstanceInterruptedDetail } from '../../functions/kubernetes/events';
import { AutoScalingClient } from '@aws-sdk/client-auto-scaling';
import { type KubernetesPolicy, type NodeOutcome, decide, lifecycleToContinue } from '../../functions/kubernetes/interruption';
import type { DrainReport } from '../../functions/kubernetes/port';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient } from '../../functions/shared/aws';
import { AutoScalingLifecycle } from '../../functions/shared/groups';

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

describe('when the group may go on with a terminate lifecycle action', () => {
  const asg = { name: 'web', hook: 'drain', token: 'tok-1' };
  const drained = (complete: boolean) => ({ complete }) as DrainReport;
  const outcome = (changes: Partial<NodeOutcome>): NodeOutcome => ({ eventId: 'e1', decision: 'drain', reason: 'r', node: 'n1', recorded: [], ...changes });
  const termination = event({ kind: 'asg-termination', asg });

  it('should continue once the node is drained, naming the group, hook, token and instance', () => {
    expect(lifecycleToContinue(termination, outcome({ drain: drained(true) }), false)).toEqual({ group: 'web', hook: 'drain', token: 'tok-1', instanceId: 'i-0123456789abcdef0', account: '111111111111', region: 'us-east-1' });
  });

  it('should continue when no node of the cluster is the instance: there is nothing to move', () => {
    expect(lifecycleToContinue(termination, outcome({ node: undefined, recorded: [{ action: 'node.not-found', duplicate: false }] }), false)).toMatchObject({ group: 'web' });
  });

  it('should leave the action to its heartbeat timeout while pods are left, in dry run, when ignored, and for other events', () => {
    expect(lifecycleToContinue(termination, outcome({ drain: drained(false) }), false)).toBeUndefined();
    expect(lifecycleToContinue(termination, outcome({}), false)).toBeUndefined();
    expect(lifecycleToContinue(termination, outcome({ drain: drained(true) }), true)).toBeUndefined();
    expect(lifecycleToContinue(termination, outcome({ decision: 'ignore', drain: undefined, node: undefined, recorded: [{ action: 'node.not-found', duplicate: false }] }), false)).toBeUndefined();
    expect(lifecycleToContinue(event({ kind: 'spot-interruption' }), outcome({ drain: drained(true) }), false)).toBeUndefined();
    expect(lifecycleToContinue(event({ kind: 'asg-termination', asg: undefined }), outcome({ drain: drained(true) }), false)).toBeUndefined();
  });
});

describe('AutoScalingLifecycle (the group port; the emulator lacks CompleteLifecycleAction)', () => {
  // The SDK client is real; a middleware at the end of its stack takes the request instead of the network.
  function capture(answer: (input: Record<string, unknown>) => unknown) {
    const client = awsClient(AutoScalingClient, { region: 'us-east-1' });
    const seen: { command: string; input: Record<string, unknown> }[] = [];
    const name = `capture-${Math.random()}`;
    client.middlewareStack.add(
      (_next, context) => async (args) => {
        seen.push({ command: String(context.commandName), input: args.input as Record<string, unknown> });
        return { output: answer(args.input as Record<string, unknown>) as never, response: {} };
      },
      { step: 'initialize', name, priority: 'low' },
    );
    return { seen, done: () => client.middlewareStack.remove(name) };
  }
  const action = { group: 'web', hook: 'drain', token: 'tok-1', instanceId: 'i-0123456789abcdef0', account: '111111111111', region: 'us-east-1' };

  it('should send CompleteLifecycleAction with CONTINUE for the instance, in its own account and region', async () => {
    const { seen, done } = capture(() => ({ $metadata: {} }));
    try {
      await expect(new AutoScalingLifecycle(new AccountSessions('111111111111', 'fleetwarden-member')).continueTermination(action)).resolves.toBe('continued');
    } finally {
      done();
    }
    expect(seen).toEqual([
      { command: 'CompleteLifecycleActionCommand', input: { AutoScalingGroupName: 'web', LifecycleHookName: 'drain', LifecycleActionToken: 'tok-1', InstanceId: 'i-0123456789abcdef0', LifecycleActionResult: 'CONTINUE' } },
    ]);
  });

  it('should take an action that already ended as done, not as an error', async () => {
    const { done } = capture(() => {
      throw Object.assign(new Error('No active Lifecycle Action found with token tok-1'), { name: 'ValidationError' });
    });
    try {
      await expect(new AutoScalingLifecycle(new AccountSessions('111111111111', 'fleetwarden-member')).continueTermination(action)).resolves.toBe('ended');
    } finally {
      done();
    }
  });
});
