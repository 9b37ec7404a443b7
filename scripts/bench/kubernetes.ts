/**
 * Kubernetes bench (measures, never asserts): time from a Spot interruption event arriving on
 * the interruption queue to its node being cordoned, and to the drain being complete (every
 * evictable pod gone), for a node running 30 pods, through the real pipeline (ingest function ->
 * Fleetwarden's bus -> node drain function) against the local control plane. An observer polls
 * the API server independently of the functions. Expects moto to be running (scripts/bench.ts
 * starts it); starts and stops its own control plane.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { KUBERNETES_GROUP } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { seedGroup } from '../../local/fleet';
import { type LocalStack, provision } from '../../local/provision';
import { runStateMachine } from '../../local/stepfunctions';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { synthTemplate } from '../../local/template';
import { applyRbac, clusterDown, clusterUp, clusterUser } from '../k8s/control-plane';
import { testInstance } from '../k8s/instances';
import { Workloads } from '../k8s/workloads';

export const PODS = 30;
const CHECK_READY = "Check whether the replacement's node is Ready";
const RUNS = 5;
export const CLUSTER = 'bench-eks';
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const round = (n: number) => Math.round(n);

export async function kubernetesBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bench-k8s-'));
  const up = await clusterUp(dir, { echo: true });
  const saved = process.env.FLEETWARDEN_KUBECONFIG;
  const k8s = new Workloads(up.kubeconfig);
  try {
    process.env.FLEETWARDEN_KUBECONFIG = await clusterUser(dir, 'fleetwarden', KUBERNETES_GROUP);
    await applyRbac(up.kubeconfig, path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml'));
    const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
    const stack = await provision(synthTemplate({ ...base, dryRun: false, kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], drainTimeoutSeconds: 90 } }), { prefix: 'bench-k8s' });
    const warning = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'spot-interruption-warning.json'), 'utf8'));

    const runs: { cordonedMs: number; drainedMs: number; drainReportedMs: number; ingestMs: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      const pool = Workloads.unique('bench');
      const ns = await k8s.namespace('bench');
      const instanceId = await testInstance('111111111111', { tags: { 'eks:cluster-name': CLUSTER } });
      const node = await k8s.node(instanceId, { pool });
      await k8s.deployment(ns, 'web', { replicas: PODS, pool });
      await k8s.waitForReady(ns, 'web', PODS);
      await k8s.node(await testInstance('111111111111', { spot: false, tags: { 'eks:cluster-name': CLUSTER } }), { pool }); // room for the replacements

      const event = { ...warning, id: randomUUID(), account: '111111111111', time: new Date().toISOString(), detail: { ...warning.detail, 'instance-id': instanceId } };
      const t0 = performance.now();
      const seen: { cordoned?: number; drained?: number } = {};
      let observing = true;
      const observer = (async () => {
        while (observing && seen.drained === undefined) {
          const [n, pods] = await Promise.all([k8s.core.readNode({ name: node }), k8s.podsOn(node)]);
          const at = performance.now() - t0;
          if (seen.cordoned === undefined && n.spec?.unschedulable) seen.cordoned = at;
          if (seen.cordoned !== undefined && pods.length === 0) seen.drained = at;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      })();
      await deliverToQueue(stack, 'InterruptionsEventsQueue', [event]);
      await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest');
      const ingestMs = performance.now() - t0;
      await pumpQueue(stack, 'KubernetesNodesEventsQueue', 'KubernetesNodesNodeDrain');
      const drainReportedMs = performance.now() - t0;
      await Promise.race([observer, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      observing = false;
      if (seen.cordoned === undefined || seen.drained === undefined) throw new Error(`run ${run}: node ${node} was not cordoned and drained (${JSON.stringify(seen)})`);
      runs.push({ cordonedMs: seen.cordoned, drainedMs: seen.drained, drainReportedMs, ingestMs });
    }
    const nodeSwaps = await kubernetesSwaps(stack, k8s);
    const drains: { after: { durationMs: number } }[] = [];
    for await (const entry of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) {
      if (entry.action === 'node.drained') drains.push(entry as unknown as { after: { durationMs: number } });
    }
    return {
      podsPerNode: PODS,
      runs: RUNS,
      controlPlaneStartSeconds: Number(up.seconds.toFixed(1)),
      interruptionToCordonedMs: { median: round(median(runs.map((r) => r.cordonedMs))), min: round(Math.min(...runs.map((r) => r.cordonedMs))), max: round(Math.max(...runs.map((r) => r.cordonedMs))) },
      interruptionToDrainCompleteMs: { median: round(median(runs.map((r) => r.drainedMs))), min: round(Math.min(...runs.map((r) => r.drainedMs))), max: round(Math.max(...runs.map((r) => r.drainedMs))) },
      ingestFunctionMs: { median: round(median(runs.map((r) => r.ingestMs))) },
      drainFunctionReportedDrainMs: { median: round(median(drains.map((e) => Number(e.after.durationMs)))) },
      nodesDrained: drains.length,
      nodeSwaps,
      note: 'one process: event on the interruption queue -> ingest (moto) -> InstanceInterrupted on the bus -> drain queue -> NodeDrain -> local kube-apiserver; times seen by an independent observer polling the API every ~20 ms; no PodDisruptionBudget, KWOK deletes evicted pods at once',
    };
  } finally {
    if (saved === undefined) delete process.env.FLEETWARDEN_KUBECONFIG;
    else process.env.FLEETWARDEN_KUBECONFIG = saved;
    await k8s.cleanup().catch(() => undefined);
    await clusterDown(dir);
  }
}

/**
 * A NodeSwap of a Kubernetes node (the Kubernetes states included): a group of 3 instances, each a
 * node of the cluster, 4 pods on the old one. The replacement's kubelet is played as in the
 * tests: its Node joins the first time the swap asks whether it is Ready. Once clean, once rolled
 * back after the attach (the old node is put back in service).
 */
async function kubernetesSwaps(stack: LocalStack, k8s: Workloads): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  for (const [label, failAttach] of [
    ['successfulNodeSwap', false],
    ['nodeSwapRolledBackAfterAttach', true],
  ] as const) {
    const name = `bench-k8s-${label}`;
    const ids = (await seedGroup(name, 3, { tags: { 'eks:cluster-name': CLUSTER } })).sort();
    const zoneOf = async (id: string) => (await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.Placement!.AvailabilityZone!;
    const pool = Workloads.unique('bench-swap');
    const ns = await k8s.namespace('bench-swap');
    await k8s.node(ids[0]!, { pool, zone: await zoneOf(ids[0]!) });
    await k8s.deployment(ns, 'web', { replicas: 4, pool });
    await k8s.waitForReady(ns, 'web', 4);
    for (const id of ids.slice(1)) await k8s.node(id, { pool, zone: await zoneOf(id) });
    const joined = new Set<string>();
    const around: Record<string, (input: unknown, real: (i: unknown) => Promise<unknown>) => Promise<unknown>> = {
      [CHECK_READY]: async (input, real) => {
        const instanceId = (input as { launch: { instanceId: string } }).launch.instanceId;
        if (!joined.has(instanceId)) {
          joined.add(instanceId);
          await k8s.node(instanceId, { pool, zone: await zoneOf(instanceId) });
        }
        return real(input);
      },
      ...(failAttach
        ? {
            'Attach the replacement to the group': async (input: unknown, real: (i: unknown) => Promise<unknown>) => {
              await real(input);
              throw Object.assign(new Error('the response was lost'), { name: 'States.TaskFailed' });
            },
          }
        : {}),
    };
    const started = performance.now();
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, instanceId: ids[0], dryRun: false }, { waitMs: 0, retryMs: 0, around, executionName: name });
    results[label] = {
      status: run.status === 'SUCCEEDED' ? 'SUCCEEDED' : run.error,
      stateTransitions: run.transitions,
      lambdaInvocations: run.lambdaInvocations,
      sdkTaskCalls: run.sdkCalls,
      wallMs: Math.round(performance.now() - started),
    };
  }
  return results;
}
