import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubernetesNodesAdapter } from '../../functions/kubernetes/adapter';
import { CORDONED_BY_ANNOTATION, type DrainProgress, INTERRUPTION_TAINT_KEY, KARPENTER_DO_NOT_DISRUPT } from '../../functions/kubernetes/port';
import { Workloads } from '../../scripts/k8s/workloads';

/**
 * The adapter against the run's real control plane (kube-apiserver, disruption controller,
 * scheduler, KWOK nodes), acting as Fleetwarden's own identity: user `fleetwarden` in the group
 * manifests/fleetwarden-rbac.yaml binds. So these tests also prove the ClusterRole suffices.
 */
let k8s: Workloads;
let nodes: KubernetesNodesAdapter;
const DO_NOT_DISRUPT = 'fleetwarden.io/do-not-disrupt';
const options = (timeoutMs: number, onProgress?: (e: DrainProgress) => void) => ({ timeoutMs, doNotDisruptAnnotations: [DO_NOT_DISRUPT, KARPENTER_DO_NOT_DISRUPT], onProgress });
let seq = 0;
const instanceId = () => `i-0${process.pid.toString(16).padStart(8, '0')}${(seq++).toString(16).padStart(8, '0')}`.slice(0, 19);

beforeAll(() => {
  k8s = new Workloads(inject('kubeconfig'));
  const kc = new KubeConfig();
  kc.loadFromFile(inject('fleetwardenKubeconfig'));
  nodes = new KubernetesNodesAdapter(kc);
});

afterAll(async () => {
  await k8s.cleanup();
});

describe('node lookup and marking', () => {
  it('finds the node of an instance through spec.providerID, and none for an instance that is no node', async () => {
    const id = instanceId();
    const name = await k8s.node(id, { pool: Workloads.unique('pool') });
    expect(await nodes.findNodeByInstance(id)).toMatchObject({ name, providerID: `aws:///us-east-1a/${id}`, unschedulable: false, ready: true });
    expect(await nodes.findNodeByInstance('i-0ffffffffffffffff')).toBeUndefined();
  });

  it('taints once with the event id as value; tainting again finds it present and changes nothing', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    const taint = { key: INTERRUPTION_TAINT_KEY, value: 'event-1', effect: 'NoSchedule' as const };
    expect(await nodes.taint(name, taint)).toMatchObject({ result: 'tainted' });
    const version = (await k8s.core.readNode({ name })).metadata?.resourceVersion;
    expect(await nodes.taint(name, { ...taint, value: 'event-2' })).toEqual({ result: 'present', node: name, value: 'event-1' });
    expect((await k8s.core.readNode({ name })).metadata?.resourceVersion).toBe(version);
    expect((await nodes.getNode(name))?.taints).toEqual([{ key: INTERRUPTION_TAINT_KEY, value: 'event-1', effect: 'NoSchedule' }]);
    expect(await nodes.removeTaint(name, INTERRUPTION_TAINT_KEY)).toMatchObject({ result: 'removed' });
    expect(await nodes.removeTaint(name, INTERRUPTION_TAINT_KEY)).toMatchObject({ result: 'absent' });
  });

  it('keeps taints other writers added at the same time (the list is replaced only if unchanged)', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    await Promise.all(['a', 'b', 'c', 'd'].map((k) => nodes.taint(name, { key: `example.com/${k}`, value: k, effect: 'NoSchedule' })));
    expect((await nodes.getNode(name))?.taints.map((t) => t.key).sort()).toEqual(['example.com/a', 'example.com/b', 'example.com/c', 'example.com/d']);
  });

  it('cordons once and records by whom; cordoning again reports it, uncordoning reverses both', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    expect(await nodes.cordon(name, 'event-1')).toEqual({ result: 'cordoned', node: name });
    expect(await nodes.cordon(name, 'event-2')).toEqual({ result: 'already-cordoned', node: name, by: 'event-1' });
    const node = await k8s.core.readNode({ name });
    expect(node.spec?.unschedulable).toBe(true);
    expect(node.metadata?.annotations?.[CORDONED_BY_ANNOTATION]).toBe('event-1');
    expect(await nodes.uncordon(name)).toEqual({ result: 'uncordoned', node: name });
    expect(await nodes.uncordon(name)).toEqual({ result: 'already-schedulable', node: name });
    const after = await k8s.core.readNode({ name });
    expect(after.spec?.unschedulable).toBeFalsy();
    expect(after.metadata?.annotations?.[CORDONED_BY_ANNOTATION]).toBeUndefined();
  });

  it('treats a node that does not exist as an outcome, not an error', async () => {
    const name = 'ip-10-0-0-0.ec2.internal-gone';
    expect(await nodes.taint(name, { key: INTERRUPTION_TAINT_KEY, value: 'e', effect: 'NoSchedule' })).toEqual({ result: 'node-not-found', node: name });
    expect(await nodes.cordon(name, 'e')).toEqual({ result: 'node-not-found', node: name });
    expect(await nodes.uncordon(name)).toEqual({ result: 'node-not-found', node: name });
    expect(await nodes.drain(name, options(5_000))).toMatchObject({ nodeFound: false, complete: true, evicted: [] });
    expect(await nodes.waitReady(name, 300)).toBe(false);
  });

  it('waits for a node to be Ready', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    expect(await nodes.waitReady(name, 5_000)).toBe(true);
  });
});

describe('drain', () => {
  it('evicts every pod and waits until they are gone, leaving DaemonSet and mirror pods alone', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('drain');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.deployment(ns, 'web', { replicas: 3, pool });
    await k8s.daemonSet(ns, 'logs', { pool });
    await k8s.pod(ns, `static-${name}`, { node: name, annotations: { 'kubernetes.io/config.mirror': 'e3b0c442', 'kubernetes.io/config.source': 'file' } });
    await k8s.pod(ns, 'bare', { node: name });
    await k8s.waitForReady(ns, 'web', 3);
    await k8s.waitFor('DaemonSet pod on the node', async () => (await k8s.podsOn(name)).some((p) => p.metadata?.labels?.app === 'logs'));
    await nodes.cordon(name, 'event-drain');

    const report = await nodes.drain(name, options(30_000));

    expect(report).toMatchObject({ complete: true, timedOut: false, failed: [], remaining: [] });
    expect(report.evicted.map((e) => e.pod.split('/')[1]).sort()).toEqual(['bare', ...Array(3).fill(expect.stringMatching(/^web-/))]);
    expect(report.evicted.every((e) => e.goneAtMs !== undefined && e.goneAtMs >= e.evictedAtMs)).toBe(true);
    expect(report.skipped.map((s) => s.reason).sort()).toEqual(['daemonset', 'mirror']);
    const left = (await k8s.podsOn(name)).filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.labels?.app ?? p.metadata?.name);
    expect(left.sort()).toEqual(['logs', `static-${name}`]);
  });

  it('leaves pods annotated do-not-disrupt (Fleetwarden or Karpenter) and reports them', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('dnd');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.pod(ns, 'batch-job', { node: name, annotations: { [DO_NOT_DISRUPT]: 'true' } });
    await k8s.pod(ns, 'trainer', { node: name, annotations: { [KARPENTER_DO_NOT_DISRUPT]: 'true' } });
    await k8s.pod(ns, 'web', { node: name, annotations: { [DO_NOT_DISRUPT]: 'false' } });
    await nodes.cordon(name, 'event-dnd');

    const report = await nodes.drain(name, options(20_000));

    expect(report.complete).toBe(true);
    expect(report.evicted.map((e) => e.pod)).toEqual([`${ns}/web`]);
    expect(report.skipped).toEqual(
      expect.arrayContaining([
        { pod: `${ns}/batch-job`, reason: 'do-not-disrupt' },
        { pod: `${ns}/trainer`, reason: 'do-not-disrupt' },
      ]),
    );
    expect((await k8s.podsOn(name)).map((p) => p.metadata?.name).sort()).toEqual(['batch-job', 'trainer']);
  });

  it('respects a PodDisruptionBudget: refused (429) while it is spent, proceeds once it allows', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('pdb');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.deployment(ns, 'api', { replicas: 3, pool });
    await k8s.pdb(ns, 'api', { minAvailable: 3, app: 'api' });
    await k8s.waitForReady(ns, 'api', 3);
    await k8s.waitForBudget(ns, 'api', 0);
    await nodes.cordon(name, 'event-pdb');
    const progress: DrainProgress[] = [];

    const drain = nodes.drain(name, options(45_000, (e) => progress.push(e)));
    await k8s.waitFor('three refusals', async () => progress.filter((e) => e.type === 'blocked').length >= 3);
    expect(progress.filter((e) => e.type === 'evicted')).toEqual([]);
    expect((await k8s.readyPods(ns, 'api')).length).toBe(3);
    // Room elsewhere and a budget that allows one at a time: the drain moves on by itself.
    await k8s.node(instanceId(), { pool });
    await k8s.setMinAvailable(ns, 'api', 2);
    const report = await drain;

    expect(report).toMatchObject({ complete: true, timedOut: false });
    expect(report.evicted).toHaveLength(3);
    expect(report.refusals).toBeGreaterThanOrEqual(3);
    const blocked = progress.find((e) => e.type === 'blocked');
    expect(blocked && 'message' in blocked ? blocked.message : '').toMatch(/disruption budget api needs 3 healthy pods/);
    expect(await k8s.podsOn(name)).toEqual([]);
    await k8s.waitForReady(ns, 'api', 3); // all three replaced on the other node
  });

  it('stops cleanly at its hard cap, reporting the pods a budget still holds', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('cap');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.deployment(ns, 'db', { replicas: 2, pool });
    await k8s.pdb(ns, 'db', { minAvailable: 2, app: 'db' });
    await k8s.waitForReady(ns, 'db', 2);
    await k8s.waitForBudget(ns, 'db', 0);
    await nodes.cordon(name, 'event-cap');

    const started = performance.now();
    const report = await nodes.drain(name, options(3_000));
    const elapsed = performance.now() - started;

    expect(report).toMatchObject({ complete: false, timedOut: true, evicted: [], failed: [] });
    expect(elapsed).toBeGreaterThanOrEqual(2_900);
    expect(elapsed).toBeLessThan(5_000);
    expect(report.remaining).toHaveLength(2);
    for (const r of report.remaining) expect(r.reason).toMatch(/^eviction refused: The disruption budget db needs 2 healthy pods/);
    expect((await k8s.readyPods(ns, 'db')).length).toBe(2);
  });

  it('evicts nothing when drained again: pods already gone are successes', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('again');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.deployment(ns, 'web', { replicas: 2, pool });
    await k8s.waitForReady(ns, 'web', 2);
    await nodes.cordon(name, 'event-again');
    expect((await nodes.drain(name, options(20_000))).evicted).toHaveLength(2);

    const again = await nodes.drain(name, options(20_000));

    expect(again).toMatchObject({ complete: true, evicted: [], alreadyGone: [], refusals: 0 });
  });
});
