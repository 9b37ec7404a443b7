import { KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { KubernetesNodesAdapter } from '../../functions/kubernetes/adapter';
import { EksClusterConnector } from '../../functions/kubernetes/connector';
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

/** The run's control plane as a kubeconfig whose bearer token the API server refuses (401), like an expired EKS token. */
function expiredTokenKubeConfig(): KubeConfig {
  const good = new KubeConfig();
  good.loadFromFile(inject('fleetwardenKubeconfig'));
  const cluster = good.getCurrentCluster()!;
  const bad = new KubeConfig();
  bad.loadFromOptions({ clusters: [cluster], users: [{ name: 'expired', token: 'k8s-aws-v1.expired' }], contexts: [{ name: 'expired', cluster: cluster.name, user: 'expired' }], currentContext: 'expired' });
  return bad;
}

function fleetwardenKubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(inject('fleetwardenKubeconfig'));
  return kc;
}

describe('an expired token (401)', () => {
  it('is retryable, not terminal: a redelivery with a fresh token can succeed', async () => {
    const stale = new KubernetesNodesAdapter(expiredTokenKubeConfig());
    await expect(stale.findNodeByInstance('i-0ffffffffffffffff')).rejects.toMatchObject({ name: 'Retryable.KubernetesUnavailable', message: expect.stringMatching(/HTTP 401/) });
    await expect(stale.getNode('any')).rejects.toMatchObject({ name: 'Retryable.KubernetesUnavailable' });
  });

  it('renews the connection once and retries the call, for every call in flight', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    let renewals = 0;
    const adapter = new KubernetesNodesAdapter(expiredTokenKubeConfig(), {
      reauthenticate: async () => {
        renewals += 1;
        return fleetwardenKubeConfig();
      },
    });
    const [a, b, c] = await Promise.all([adapter.getNode(name), adapter.getNode(name), adapter.cordon(name, 'event-401')]);
    expect(a?.name).toBe(name);
    expect(b?.name).toBe(name);
    expect(c).toEqual({ result: 'cordoned', node: name });
    expect(renewals).toBe(1);
  });

  it('retries only once: a token refused again is still retryable', async () => {
    let renewals = 0;
    const adapter = new KubernetesNodesAdapter(expiredTokenKubeConfig(), {
      reauthenticate: async () => {
        renewals += 1;
        return expiredTokenKubeConfig();
      },
    });
    await expect(adapter.getNode('any')).rejects.toMatchObject({ name: 'Retryable.KubernetesUnavailable' });
    expect(renewals).toBe(1);
  });

  it('makes the EKS connector drop its cached connection and sign a new token', async () => {
    const name = await k8s.node(instanceId(), { pool: Workloads.unique('pool') });
    // DescribeCluster + token stand-in: first a token the API server no longer accepts, then a good one.
    const issued: string[] = [];
    class Connector extends EksClusterConnector {
      override async kubeConfig() {
        issued.push(issued.length ? 'fresh' : 'expired');
        return { kubeConfig: issued.length === 1 ? expiredTokenKubeConfig() : fleetwardenKubeConfig(), expiresAt: new Date(Date.now() + 15 * 60_000) };
      }
    }
    const connector = new Connector([{ name: 'prod-eks', region: 'us-east-1' }]);
    const connected = await connector.connect('prod-eks');

    expect(await connected.getNode(name)).toMatchObject({ name });
    expect(issued).toEqual(['expired', 'fresh']);
    // The renewed connection is the cached one now: no third token.
    expect(await (await connector.connect('prod-eks')).getNode(name)).toMatchObject({ name });
    expect(issued).toEqual(['expired', 'fresh']);
  });
});

describe('drain: evictions the API answers with something other than 201 or 429', () => {
  it('waits for a pod whose namespace is being deleted (403 NamespaceTerminating) and goes on with the others', async () => {
    const pool = Workloads.unique('pool');
    const doomed = await k8s.namespace('doomed');
    const other = await k8s.namespace('other');
    const name = await k8s.node(instanceId(), { pool });
    // A budget holds the pod back (429) until its namespace is deleted; a finalizer keeps it there, terminating.
    await k8s.core.createNamespacedPod({
      namespace: doomed,
      body: {
        metadata: { name: 'held', namespace: doomed, labels: { app: 'held' }, finalizers: ['example.com/hold'] },
        spec: { nodeName: name, automountServiceAccountToken: false, containers: [{ name: 'main', image: 'registry.example.com/held:1.0' }] },
      },
    });
    await k8s.pdb(doomed, 'held', { minAvailable: 1, app: 'held' });
    await k8s.waitForBudget(doomed, 'held', 0);
    await k8s.pod(other, 'web', { node: name });
    await nodes.cordon(name, 'event-ns');
    const progress: DrainProgress[] = [];
    try {
      const drain = nodes.drain(name, options(8_000, (e) => progress.push(e)));
      await k8s.waitFor('a refusal', async () => progress.some((e) => e.type === 'blocked'));
      await k8s.core.deleteNamespace({ name: doomed });

      const report = await drain;

      expect(report.evicted.map((e) => e.pod)).toEqual([`${other}/web`]);
      expect(report.failed).toEqual([]);
      expect(report.alreadyGone).toEqual([`${doomed}/held`]);
      // Still held by its finalizer at the cap: reported as waited for, not as refused.
      expect(report).toMatchObject({ complete: false, timedOut: true, remaining: [{ pod: `${doomed}/held`, reason: expect.stringMatching(/namespace .* is terminating/) }] });
    } finally {
      await k8s.core.patchNamespacedPod({ namespace: doomed, name: 'held', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)).catch(() => undefined);
    }
  });

  it('and completes once such a pod is gone', async () => {
    const pool = Workloads.unique('pool');
    const doomed = await k8s.namespace('doomed');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.pod(doomed, 'held', { node: name, labels: { app: 'held' } });
    await k8s.pdb(doomed, 'held', { minAvailable: 1, app: 'held' });
    await k8s.waitForBudget(doomed, 'held', 0);
    await nodes.cordon(name, 'event-ns-2');
    const progress: DrainProgress[] = [];

    const drain = nodes.drain(name, options(30_000, (e) => progress.push(e)));
    await k8s.waitFor('a refusal', async () => progress.some((e) => e.type === 'blocked'));
    await k8s.core.deleteNamespace({ name: doomed });
    const report = await drain;

    expect(report).toMatchObject({ complete: true, evicted: [], failed: [], remaining: [], alreadyGone: [`${doomed}/held`] });
    expect(progress.filter((e) => e.type === 'gone').map((e) => e.pod.name)).toEqual(['held']);
    expect(await k8s.podsOn(name)).toEqual([]);
  });

  it('reports a pod two PodDisruptionBudgets select (500) as failed at once, without retrying it, and drains the rest', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('twopdb');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.pod(ns, 'shared', { node: name, labels: { app: 'shared' } });
    await k8s.pod(ns, 'web', { node: name });
    await k8s.pdb(ns, 'first', { minAvailable: 0, app: 'shared' });
    await k8s.pdb(ns, 'second', { minAvailable: 0, app: 'shared' });
    await nodes.cordon(name, 'event-two-pdbs');

    const started = performance.now();
    const report = await nodes.drain(name, options(20_000));

    expect(performance.now() - started).toBeLessThan(5_000);
    expect(report).toMatchObject({ complete: false, timedOut: false, refusals: 0, remaining: [] });
    expect(report.failed).toEqual([{ pod: `${ns}/shared`, status: 500, message: expect.stringMatching(/more than one PodDisruptionBudget/) }]);
    expect(report.evicted.map((e) => e.pod)).toEqual([`${ns}/web`]);
    expect((await k8s.podsOn(name)).map((p) => p.metadata?.name)).toEqual(['shared']);
  });

  it('waits for a pod that is already terminating and does not evict it again', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('terminating');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.core.createNamespacedPod({
      namespace: ns,
      body: {
        metadata: { name: 'leaving', namespace: ns, finalizers: ['example.com/hold'] },
        spec: { nodeName: name, automountServiceAccountToken: false, containers: [{ name: 'main', image: 'registry.example.com/leaving:1.0' }] },
      },
    });
    await k8s.core.deleteNamespacedPod({ namespace: ns, name: 'leaving' });
    await k8s.waitFor('deletionTimestamp', async () => (await k8s.core.readNamespacedPod({ namespace: ns, name: 'leaving' })).metadata?.deletionTimestamp !== undefined);
    await nodes.cordon(name, 'event-terminating');
    const progress: DrainProgress[] = [];

    const drain = nodes.drain(name, options(20_000, (e) => progress.push(e)));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(progress).toEqual([]); // neither evicted nor refused: only waited for
    await k8s.core.patchNamespacedPod({ namespace: ns, name: 'leaving', body: { metadata: { finalizers: null } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const report = await drain;

    expect(report).toMatchObject({ complete: true, evicted: [], refusals: 0, failed: [], remaining: [], alreadyGone: [`${ns}/leaving`] });
    expect(progress.map((e) => e.type)).toEqual(['gone']);
  });

  it('counts a pod replaced by a same-named one before its eviction as gone (409, uid precondition), and leaves the new one', async () => {
    const pool = Workloads.unique('pool');
    const ns = await k8s.namespace('replaced');
    const name = await k8s.node(instanceId(), { pool });
    await k8s.pod(ns, 'db-0', { node: name, labels: { app: 'db' } });
    await k8s.pdb(ns, 'db', { minAvailable: 1, app: 'db' });
    await k8s.waitForBudget(ns, 'db', 0);
    await nodes.cordon(name, 'event-replaced');
    const progress: DrainProgress[] = [];

    const drain = nodes.drain(name, options(20_000, (e) => progress.push(e)));
    await k8s.waitFor('a refusal', async () => progress.some((e) => e.type === 'blocked'));
    // Replaced as a StatefulSet would: same name, new uid (outside the budget, so the eviction reaches the precondition).
    await k8s.core.deleteNamespacedPod({ namespace: ns, name: 'db-0', gracePeriodSeconds: 0 });
    await k8s.waitFor('db-0 gone', async () => !(await k8s.podsOn(name)).some((p) => p.metadata?.name === 'db-0'));
    await k8s.pod(ns, 'db-0', { node: name, labels: { app: 'db-successor' } });
    const successor = (await k8s.core.readNamespacedPod({ namespace: ns, name: 'db-0' })).metadata?.uid;
    const report = await drain;

    expect(report).toMatchObject({ complete: true, evicted: [], failed: [], remaining: [], alreadyGone: [`${ns}/db-0`] });
    expect(progress.filter((e) => e.type === 'evicted')).toEqual([]);
    expect((await k8s.core.readNamespacedPod({ namespace: ns, name: 'db-0' })).metadata).toMatchObject({ uid: successor });
    expect((await k8s.core.readNamespacedPod({ namespace: ns, name: 'db-0' })).metadata?.deletionTimestamp).toBeUndefined();
  });
});
