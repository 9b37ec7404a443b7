import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { SWAP_TAINT_KEY } from '../../functions/kubernetes/swap/nodes';
import { CORDONED_BY_ANNOTATION, KARPENTER_DO_NOT_DISRUPT } from '../../functions/kubernetes/port';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { executionArnOf } from '../../functions/shared/executions';
import { SWAP_TAG } from '../../functions/swap/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus } from '../../local/listen';
import { type LocalStack, provision } from '../../local/provision';
import { runStateMachine, type TaskHandler } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { Workloads } from '../../scripts/k8s/workloads';
import { createGroup, group, lockHolder, observed, orphans } from './swap-support';

/**
 * The NodeSwap state machine for Kubernetes nodes: the synthesized definition (a stack whose
 * config names one cluster) run with aws-local-stepfunctions against moto for the group and the
 * real local control plane (kube-apiserver, controller-manager with the disruption controller,
 * scheduler, KWOK) for the nodes. The Kubernetes steps run as Fleetwarden's own RBAC identity.
 *
 * Each group's instances are nodes of the cluster: one KWOK node per instance, its
 * spec.providerID naming the instance (aws:///<zone>/<instance id>), as on EKS. Nothing local
 * boots a kubelet on a moto instance, so the test plays the replacement's kubelet: when the swap
 * first asks whether the replacement's node is Ready, the node is created (KWOK then reports it
 * Ready), as a kubelet joining after the instance passed its status checks would.
 */
const CLUSTER = 'prod-eks';
const MACHINE = 'SwapsSwapStateMachine';
const CHECK_READY = "Check whether the replacement's node is Ready";
const DRAIN = 'Taint, cordon and drain the old node';
const CHECK_OLD = 'Check that the old node may be disrupted';
const DETACH = 'Detach the old instance, decrementing desired capacity';
const RESTORE = "Put the old node back in service and drain the replacement's";

const fail = (name: string, message: string) => Object.assign(new Error(message), { name });

let stack: LocalStack;
let k8s: Workloads;
let groups = 0;
const definition = () => [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(MACHINE))!.definition;

beforeAll(async () => {
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  // A short drain cap, so that a PodDisruptionBudget that never allows an eviction ends the drain quickly.
  stack = await provision(synthTemplate({ ...base, dryRun: false, kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], drainTimeoutSeconds: 5 } }));
  // What the local harness does for every cluster-facing function (see kubernetes-interruption.test.ts).
  process.env.FLEETWARDEN_KUBECONFIG = inject('fleetwardenKubeconfig');
  k8s = new Workloads(inject('kubeconfig'));
});

afterAll(async () => {
  await k8s.cleanup();
});

async function ledger(executionName: string) {
  const entries: Record<string, any>[] = [];
  for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) if (e.eventId === executionName) entries.push(e);
  return entries;
}

/** The instances each group was created with. */
const created = new Map<string, string[]>();

async function zoneOf(instanceId: string): Promise<string> {
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations![0]!.Instances![0]!.Placement!.AvailabilityZone!;
}

async function instanceState(instanceId: string): Promise<string | undefined> {
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

/** Instances this execution launched (by the swap's tag), whatever their state. */
async function launchedBy(executionName: string): Promise<string[]> {
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ Filters: [{ Name: `tag:${SWAP_TAG}`, Values: [executionName] }] }));
  return out.Reservations!.flatMap((r) => r.Instances ?? []).map((i) => i.InstanceId!);
}

/**
 * A group of 3 On-Demand instances tagged eks:cluster-name, each a Ready node of the cluster in
 * one scheduling pool. The old instance's node is created first, so the workload's pods all run
 * on it; the other nodes join afterwards.
 */
async function clusterGroup(name: string, options: { replicas?: number; budget?: boolean; tagged?: boolean } = {}) {
  const ids = await createGroup(name, 3, options.tagged === false ? {} : { tags: { 'eks:cluster-name': CLUSTER } });
  created.set(name, ids);
  const pool = Workloads.unique('pool');
  const ns = await k8s.namespace('swap');
  const [old, ...others] = ids as [string, ...string[]];
  const oldNode = await k8s.node(old, { pool, zone: await zoneOf(old) });
  const replicas = options.replicas ?? 2;
  await k8s.deployment(ns, 'web', { replicas, pool });
  await k8s.daemonSet(ns, 'node-exporter', { pool });
  await k8s.waitForReady(ns, 'web', replicas);
  await k8s.waitFor('DaemonSet pod on the old node', async () => (await k8s.podsOn(oldNode)).some((p) => p.metadata?.labels?.app === 'node-exporter'));
  if (options.budget) {
    // Every replica must stay available: the API refuses each eviction (429) until the drain's cap.
    await k8s.pdb(ns, 'web', { minAvailable: replicas, app: 'web' });
    await k8s.waitForBudget(ns, 'web', 0);
  }
  for (const id of others) await k8s.node(id, { pool, zone: await zoneOf(id) });
  return { ids, old, oldNode, ns, pool };
}

/** The replacement's kubelet: its node joins the cluster (KWOK makes it Ready) the first time the swap looks for it. */
function kubeletJoins(pool: string, options: { never?: boolean } = {}) {
  const joined: string[] = [];
  const hook = async (input: unknown, next: TaskHandler) => {
    // payloadResponseOnly: the task's input is the function's payload itself.
    const instanceId = (input as { launch: { instanceId: string } }).launch.instanceId;
    if (!options.never && !joined.includes(instanceId)) {
      joined.push(instanceId);
      await k8s.node(instanceId, { pool, zone: await zoneOf(instanceId) });
    }
    return next(input);
  };
  return { hook, joined };
}

const appsOn = async (node: string) => (await k8s.podsOn(node)).filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.labels?.app ?? p.metadata?.name);

/** The old node after a rollback that kept the old instance: schedulable, without the swap's taint or cordon annotation. */
async function expectBackInService(node: string) {
  const after = await k8s.core.readNode({ name: node });
  expect(after.spec?.unschedulable).toBeFalsy();
  expect((after.spec?.taints ?? []).filter((t) => t.key === SWAP_TAINT_KEY)).toEqual([]);
  expect(after.metadata?.annotations?.[CORDONED_BY_ANNOTATION]).toBeUndefined();
}

/** The invariants every swap run keeps (as in swap-workflow.test.ts). */
async function expectGroupRestored(name: string, minInService: number, executionName: string) {
  expect(minInService).toBeGreaterThanOrEqual(3);
  expect(await orphans({ instances: created.get(name) ?? [], executionName })).toEqual([]);
  expect(await group(name)).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
  expect(await lockHolder(stack, name)).toBeUndefined();
}

const EVERY_STEP = [
  'swap.planned',
  'swap.old-node-checked',
  'swap.locked',
  'swap.processes-suspended',
  'swap.replacement-launched',
  'swap.replacement-healthy',
  'swap.replacement-node-ready',
  'swap.max-size-raised',
  'swap.replacement-attached',
  'swap.replacement-in-service',
  'swap.old-node-drained',
  'swap.old-detached',
  'swap.old-terminated',
  'swap.max-size-restored',
  'swap.processes-resumed',
  'swap.lock-released',
  'swap.succeeded',
];

describe('NodeSwap of a Kubernetes node (synthesized definition, moto, the local control plane)', () => {
  it('waits for the replacement node to be Ready, cordons and drains the old node before detaching it, and records every step', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, oldNode, pool, ns } = await clusterGroup(name, { replicas: 2 });
    const executionName = `swap-${name}`;
    const kubelet = kubeletJoins(pool);
    let atDetach: { unschedulable?: boolean; taints: unknown[]; cordonedBy?: string; apps: unknown[] } | undefined;
    const watch = observed(definition(), name, undefined, {
      [CHECK_READY]: kubelet.hook,
      [DETACH]: async (input, next) => {
        const node = await k8s.core.readNode({ name: oldNode });
        atDetach = { unschedulable: node.spec?.unschedulable, taints: node.spec?.taints ?? [], cordonedBy: node.metadata?.annotations?.[CORDONED_BY_ANNOTATION], apps: await appsOn(oldNode) };
        return next(input);
      },
    });

    const published = await listenToBus(stack, ['fleetwarden.swap'], name);
    // No `cluster` in the request: the group's eks:cluster-name tag names a configured cluster.
    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, dryRun: false, batchId: 'batch-1' }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    const [replacement] = kubelet.joined;
    expect(replacement).toBeDefined();
    const after = await group(name);
    expect(after.instances.map((i) => i.id)).toContain(replacement);
    expect(after.instances.map((i) => i.id)).not.toContain(old);
    await expectGroupRestored(name, watch.minInService(), executionName);
    // Before the old instance left the group its node was tainted, cordoned by this execution and empty but for the DaemonSet pod.
    // (The node controller adds node.kubernetes.io/unschedulable to a cordoned node.)
    expect(atDetach).toEqual({ unschedulable: true, taints: expect.arrayContaining([expect.objectContaining({ key: SWAP_TAINT_KEY, value: executionName, effect: 'NoSchedule' })]), cordonedBy: executionName, apps: ['node-exporter'] });
    // The evicted pods run elsewhere (the replacement's node among the candidates).
    await k8s.waitForReady(ns, 'web', 2);

    const entries = await ledger(executionName);
    expect(entries.map((e) => e.action)).toEqual(EVERY_STEP);
    const byAction = Object.fromEntries(entries.map((e) => [e.action, e]));
    expect(byAction['swap.old-node-checked']!.after).toMatchObject({ allowed: true, node: oldNode, toEvict: 2, batchId: 'batch-1' });
    expect(byAction['swap.replacement-node-ready']!.after).toMatchObject({ ready: true, batchId: 'batch-1' });
    expect(byAction['swap.old-node-drained']!.after).toMatchObject({ node: oldNode, result: 'drained', evicted: 2, skipped: [{ reason: 'daemonset' }], batchId: 'batch-1' });
    expect(byAction['swap.planned']!.after).toMatchObject({ cluster: CLUSTER, batchId: 'batch-1' });
    expect(byAction['swap.succeeded']!.after).toMatchObject({ old, replacement, batchId: 'batch-1' });
    const events = Object.fromEntries((await published()).map((e) => [e['detail-type'], e.detail]));
    expect(events.SwapStarted).toMatchObject({ executionId: executionName, oldInstanceId: old, batchId: 'batch-1' });
    expect(events.SwapSucceeded).toMatchObject({ executionId: executionName, replacementInstanceId: replacement, batchId: 'batch-1', cluster: CLUSTER });
  });

  it('a swap stopped right after the drain is rolled back by ReapSwap: old node back in service, replacement drained and gone', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, oldNode, pool } = await clusterGroup(name, { replicas: 2 });
    const executionName = `swap-${name}-stopped-in-a-batch-with-a-long-name-0123456789abcdef`;
    const kubelet = kubeletJoins(pool);
    const input = { group: name, instanceId: old, dryRun: false };
    const stopped = await runStateMachine(stack, MACHINE, input, { around: { [CHECK_READY]: kubelet.hook }, waitMs: 0, retryMs: 0, executionName, abortAfter: DRAIN });
    expect(stopped.status).toBe('ABORTED');
    expect((await k8s.core.readNode({ name: oldNode })).spec?.unschedulable).toBe(true);

    const swapArn = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(MACHINE))!.arn;
    const event = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'stepfunctions-execution-aborted.json'), 'utf8'));
    Object.assign(event.detail, { stateMachineArn: swapArn, executionArn: executionArnOf(swapArn, executionName), name: executionName, input: JSON.stringify(input) });
    const reaped = await runStateMachine(stack, 'SwapsReapSwapStateMachine', event, { waitMs: 0, retryMs: 0 });
    expect(reaped.status).toBe('SUCCEEDED');
    expect(reaped.events.some((e) => e.state === "Put the stopped swap's nodes back" && e.type === 'StateEntered')).toBe(true);
    await expectBackInService(oldNode);
    const [replacement] = kubelet.joined;
    expect((await group(name)).instances.map((i) => i.id)).not.toContain(replacement);
    await expectGroupRestored(name, 3, executionName);
    expect((await ledger(executionName)).map((e) => e.action)).toEqual(expect.arrayContaining(['swap.planned', 'swap.nodes-restored', 'swap.rolled-back']));
  });

  it('rolls back when a PodDisruptionBudget keeps refusing evictions until the drain cap: replacement gone, old node back in service', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, oldNode, pool } = await clusterGroup(name, { replicas: 2, budget: true });
    const executionName = `swap-${name}`;
    const kubelet = kubeletJoins(pool);
    const watch = observed(definition(), name, undefined, { [CHECK_READY]: kubelet.hook });
    const published = await listenToBus(stack, ['fleetwarden.swap'], name);

    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, dryRun: false, batchId: 'batch-2' }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });

    expect(run.error).toBe('Swap.RolledBack');
    expect(run.events.find((e) => e.state === DRAIN && e.error)?.error).toBe('Terminal.DrainIncomplete');
    const rolledBack = (await published()).find((e) => e['detail-type'] === 'SwapRolledBack');
    expect(rolledBack?.detail).toMatchObject({ executionId: executionName, outcome: 'rolled-back', batchId: 'batch-2', reason: expect.stringMatching(/^Terminal\.DrainIncomplete: .*the drain stopped at its 5 s cap .*refusal\(s\) from PodDisruptionBudgets.*The disruption budget web needs 2 healthy pods/) });
    await expectGroupRestored(name, watch.minInService(), executionName);
    expect((await group(name)).instances.map((i) => i.id)).toContain(old);
    const [replacement] = kubelet.joined;
    expect(['shutting-down', 'terminated']).toContain(await instanceState(replacement!));
    await expectBackInService(oldNode);
    expect((await appsOn(oldNode)).sort()).toEqual(['node-exporter', 'web', 'web']); // the budget held: nothing was evicted
    const actions = (await ledger(executionName)).map((e) => e.action);
    expect(actions.slice(-2)).toEqual(['swap.nodes-restored', 'swap.rolled-back']);
    expect(actions).not.toContain('swap.old-node-drained');
    expect(actions).not.toContain('swap.old-detached');
    const restored = (await ledger(executionName)).find((e) => e.action === 'swap.nodes-restored')!;
    expect(restored.after.actions).toEqual([
      { kind: 'remove-taint', node: oldNode },
      { kind: 'uncordon', node: oldNode },
      { kind: 'drain-replacement', node: expect.any(String), instanceId: replacement },
    ]);
  });

  it('rolls back when the replacement never becomes a Ready node', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, oldNode, pool } = await clusterGroup(name, { replicas: 1 });
    const executionName = `swap-${name}`;
    const kubelet = kubeletJoins(pool, { never: true });
    const watch = observed(definition(), name, undefined, { [CHECK_READY]: kubelet.hook });

    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });

    expect(run.error).toBe('Swap.RolledBack');
    expect(run.events.filter((e) => e.type === 'StateEntered' && e.state === CHECK_READY)).toHaveLength(41);
    await expectGroupRestored(name, watch.minInService(), executionName);
    expect(await launchedBy(executionName)).toHaveLength(1);
    for (const id of await launchedBy(executionName)) expect(['shutting-down', 'terminated']).toContain(await instanceState(id));
    await expectBackInService(oldNode);
    expect(await appsOn(oldNode)).toContain('web');
    const entries = await ledger(executionName);
    expect(entries.map((e) => e.action)).not.toContain('swap.replacement-node-ready');
    expect(entries.at(-1)).toMatchObject({ action: 'swap.rolled-back', reason: expect.stringContaining('Terminal.NodeReadyTimeout') });
  });

  it.each([
    ['a pod annotated karpenter.sh/do-not-disrupt', { pod: { [KARPENTER_DO_NOT_DISRUPT]: 'true' } }],
    ['the node annotated with the configured do-not-disrupt annotation', { node: { 'fleetwarden.io/do-not-disrupt': 'true' } }],
  ])('refuses the swap, launching nothing, when the old node has %s', { timeout: 120_000 }, async (_, protect) => {
    const name = `k8s-${++groups}`;
    // Untagged group: the request names the cluster.
    const { old, oldNode, ns } = await clusterGroup(name, { replicas: 1, tagged: false });
    if ('pod' in protect) await k8s.pod(ns, 'trainer', { node: oldNode, annotations: protect.pod });
    else await k8s.core.patchNode({ name: oldNode, body: { metadata: { annotations: protect.node } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    const executionName = `swap-${name}`;
    const watch = observed(definition(), name);

    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, cluster: CLUSTER, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });

    expect(run.status).toBe('SUCCEEDED');
    expect(run.events.some((e) => e.state === 'Record that the old node may not be disrupted')).toBe(true);
    expect(await launchedBy(executionName)).toEqual([]);
    await expectGroupRestored(name, watch.minInService(), executionName);
    const after = await k8s.core.readNode({ name: oldNode });
    expect(after.spec?.unschedulable).toBeFalsy();
    const entries = await ledger(executionName);
    expect(entries.map((e) => e.action)).toEqual(['swap.planned', 'swap.old-node-checked', 'swap.skipped']);
    expect(entries[1]!.after).toMatchObject({ allowed: false, node: oldNode });
    expect(entries[2]!.reason).toMatch(/swap skipped: .*do-not-disrupt/);
  });

  it('refuses a group whose nodes belong to a cluster that is not configured (nothing launched, no node touched)', { timeout: 120_000 }, async () => {
    const name = `plain-${++groups}`;
    await createGroup(name, 3, { tags: { 'eks:cluster-name': 'someone-elses-eks' } });
    const executionName = `swap-${name}`;
    const run = await runStateMachine(stack, MACHINE, { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, executionName });
    expect(run.status).toBe('SUCCEEDED');
    expect(run.output).toMatchObject({ outcome: 'skipped', reason: `group ${name} runs nodes of cluster someone-elses-eks, which is not in kubernetes.clusters: its nodes cannot be drained` });
    expect(run.events.filter((e) => [CHECK_OLD, CHECK_READY, DRAIN].includes(e.state ?? ''))).toEqual([]);
    expect(await launchedBy(executionName)).toEqual([]);
    expect((await ledger(executionName)).map((e) => e.action)).toEqual(['swap.planned', 'swap.skipped']);
  });
});

describe('NodeSwap rollback when the cluster cannot be reached', () => {
  it('still rolls the group back when the nodes cannot be put back, records that, and alerts operators', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, pool } = await clusterGroup(name, { replicas: 1 });
    const executionName = `swap-${name}`;
    const kubelet = kubeletJoins(pool);
    let restoreAttempts = 0;
    const watch = observed(definition(), name, undefined, {
      [CHECK_READY]: kubelet.hook,
      [DRAIN]: async () => {
        throw fail('Lambda.Unknown', 'the task crashed');
      },
      [RESTORE]: async () => {
        restoreAttempts += 1;
        throw fail('Retryable.KubernetesUnavailable', 'connect ECONNREFUSED');
      },
    });

    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });

    expect(run.error).toBe('Swap.RollbackFailed');
    // The first try and the 4 retries of the matching retrier (Lambda service and Retryable.* errors); Step Functions uses the first retrier that matches.
    expect(restoreAttempts).toBe(5);
    await expectGroupRestored(name, watch.minInService(), executionName);
    for (const id of await launchedBy(executionName)) expect(['shutting-down', 'terminated']).toContain(await instanceState(id));
    const actions = (await ledger(executionName)).map((e) => e.action);
    expect(actions.slice(-2)).toEqual(['swap.nodes-restore-failed', 'swap.rolled-back']);
  });

  it('ReapSwap of a stopped swap also rolls the group back when the nodes cannot be put back, and alerts operators', { timeout: 120_000 }, async () => {
    const name = `k8s-${++groups}`;
    const { old, oldNode, pool } = await clusterGroup(name, { replicas: 1 });
    const executionName = `swap-${name}-stopped`;
    const input = { group: name, instanceId: old, dryRun: false };
    const stopped = await runStateMachine(stack, MACHINE, input, { around: { [CHECK_READY]: kubeletJoins(pool).hook }, waitMs: 0, retryMs: 0, executionName, abortAfter: DRAIN });
    expect(stopped.status).toBe('ABORTED');

    const swapArn = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(MACHINE))!.arn;
    const event = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'stepfunctions-execution-aborted.json'), 'utf8'));
    Object.assign(event.detail, { stateMachineArn: swapArn, name: executionName, input: JSON.stringify(input) });
    const reaped = await runStateMachine(stack, 'SwapsReapSwapStateMachine', event, {
      waitMs: 0,
      retryMs: 0,
      around: { "Put the stopped swap's nodes back": async () => Promise.reject(fail('Retryable.KubernetesUnavailable', 'connect ECONNREFUSED')) },
    });

    expect(reaped).toMatchObject({ status: 'FAILED', error: 'Swap.ReapFailed' });
    expect(reaped.events.some((e) => e.state === 'Alert operators that the stopped swap could not be rolled back')).toBe(true);
    await expectGroupRestored(name, 3, executionName);
    // The node could not be reached: it is still cordoned, which is why operators are told.
    expect((await k8s.core.readNode({ name: oldNode })).spec?.unschedulable).toBe(true);
    expect((await ledger(executionName)).map((e) => e.action).slice(-2)).toEqual(['swap.nodes-restore-failed', 'swap.rolled-back']);
  });
});

/** Step Functions error names for each fault of a Lambda task (all the new states are Lambda tasks). */
type Fault = 'throttled' | 'crash before its effect' | 'crash after its effect' | 'timeout';
const FAULTS: Fault[] = ['throttled', 'crash before its effect', 'crash after its effect', 'timeout'];
const K8S_FORWARD = [CHECK_OLD, CHECK_READY, DRAIN];

describe('NodeSwap fault matrix for the Kubernetes steps: every new forward step x every fault', () => {
  const cases = K8S_FORWARD.flatMap((state) => FAULTS.map((fault) => [state, fault] as const));
  const matrix: string[] = [];

  it.each(cases)('%s, %s: capacity never below N, no orphan, group and old node restored, lock released, every step in the ledger', { timeout: 120_000 }, async (state, fault) => {
    const name = `k8sfm-${++groups}`;
    const { old, oldNode, pool } = await clusterGroup(name, { replicas: 2 });
    const executionName = `fm-${name}`;
    const kubelet = kubeletJoins(pool);
    let injected = 0;
    const watch = observed(
      definition(),
      name,
      {
        state,
        inject: async (input, real) => {
          injected += 1;
          if (injected > 1) return real(input); // one fault per execution: a retry meets the real thing
          switch (fault) {
            case 'throttled':
              throw fail('Lambda.TooManyRequestsException', 'Rate exceeded');
            case 'crash before its effect':
              throw fail('Lambda.Unknown', 'the task crashed');
            case 'crash after its effect':
              await real(input);
              throw fail('Lambda.Unknown', 'the response was lost');
            case 'timeout':
              throw fail('States.Timeout', 'the task timed out');
          }
        },
      },
      { [CHECK_READY]: kubelet.hook },
    );

    const run = await runStateMachine(stack, MACHINE, { group: name, instanceId: old, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });
    const actions = (await ledger(executionName)).map((e) => e.action);
    matrix.push(`${state} | ${fault} | ${run.status === 'SUCCEEDED' ? 'succeeded' : run.error}`);

    expect(injected).toBeGreaterThan(0);
    await expectGroupRestored(name, watch.minInService(), executionName);
    expect(actions[0]).toBe('swap.planned');
    if (fault === 'throttled') {
      // Throttling is retried, never rolled back for.
      expect(run.status).toBe('SUCCEEDED');
      expect(actions).toEqual(EVERY_STEP);
    } else {
      expect(run.error).toBe('Swap.RolledBack');
      expect(actions.at(-1)).toBe('swap.rolled-back');
      // Nodes are only touched after the lock: a failure of the check before it has none to put back.
      if (state === CHECK_OLD) expect(actions).not.toContain('swap.nodes-restored');
      else expect(actions).toContain('swap.nodes-restored');
      // The old instance stayed: its node is back in service, its pods where they were or rescheduled.
      expect((await group(name)).instances.map((i) => i.id)).toContain(old);
      await expectBackInService(oldNode);
      for (const id of await launchedBy(executionName)) expect(['shutting-down', 'terminated']).toContain(await instanceState(id));
    }
  });

  afterAll(() => {
    console.log(`\nKubernetes fault matrix (${matrix.length} cases)\n${matrix.join('\n')}`);
  });
});
