import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { INTERRUPTION_TAINT_KEY } from '../../functions/kubernetes/port';
import { KUBERNETES_GROUP } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus } from '../../local/listen';
import { provision } from '../../local/provision';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { synthTemplate } from '../../local/template';
import { testInstance } from '../k8s/instances';
import { applyRbac, clusterUser } from '../k8s/control-plane';
import type { DemoContext } from './timeline';
import { verifyOwnLedger, withControlPlane } from './control-plane';

const PROD = '111111111111';
const CLUSTER = 'prod-eks';
const NOTICE_S = 120;

/** The ledger entries this chapter reads (node.drained's `after` is the drain summary). */
interface NodeEntry {
  seq: number;
  at: string;
  action: string;
  subject: string;
  after: {
    startedAt: string;
    durationMs: number;
    evicted: number;
    refusals: number;
    skipped: { pod: string; reason: string }[];
    pods: { pod: string; attempts: number; evictedAtMs: number; goneAtMs?: number; refusal?: string }[];
  };
}

/**
 * Kubernetes nodes: a Spot interruption of a node that runs a Deployment under a
 * PodDisruptionBudget, through the real pipeline (ingest -> Fleetwarden's bus -> node drain),
 * against a real control plane started for this chapter and stopped at its end.
 */
export async function kubernetesSteps({ timeline }: DemoContext): Promise<void> {
  timeline.section('Kubernetes nodes: taint, cordon and drain on interruption');
  await withControlPlane(timeline, 'k8s', ': etcd, kube-apiserver, controller-manager (PDB status), scheduler, KWOK nodes', async ({ dir, kubeconfig, k8s }) => {
    const identity = await clusterUser(dir, 'fleetwarden', KUBERNETES_GROUP);
    await applyRbac(kubeconfig, path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml'));
    timeline.step('rbac', `manifests/fleetwarden-rbac.yaml applied; Fleetwarden acts as a user in group ${KUBERNETES_GROUP} (what its EKS access entry maps to)`);
    // The function reaches the cluster through this kubeconfig instead of EKS DescribeCluster + token.
    process.env.FLEETWARDEN_KUBECONFIG = identity;

    const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
    const config = { ...base, dryRun: false, kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], drainTimeoutSeconds: 90 } };
    const stack = await provision(synthTemplate(config), { prefix: 'demo-k8s' });
    timeline.step('cdk synth', `the stack with kubernetes.clusters = [${CLUSTER}], dry run off: + rule on Fleetwarden's bus -> node drain queue -> NodeDrain function, + EKS access entry`);
    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const published = await listenToBus(stack, ['fleetwarden.kubernetes'], 'demo-k8s');

    const instanceId = await testInstance(PROD, { tags: { 'eks:cluster-name': CLUSTER } });
    const ns = await k8s.namespace('shop');
    const node = await k8s.node(instanceId, { pool: 'general' });
    // Replacements take 2 s to become Ready (KWOK's per-pod knob): long enough for the budget to push back.
    await k8s.deployment(ns, 'web', { replicas: 5, pool: 'general', podAnnotations: { 'pod-ready.stage.kwok.x-k8s.io/delay': '2s' } });
    await k8s.daemonSet(ns, 'node-exporter', { pool: 'general' });
    await k8s.pdb(ns, 'web', { minAvailable: 4, app: 'web' });
    await k8s.waitForReady(ns, 'web', 5);
    await k8s.waitForBudget(ns, 'web', 1);
    const spare = await k8s.node(await testInstance(PROD, { spot: false, tags: { 'eks:cluster-name': CLUSTER } }), { pool: 'general' });
    timeline.step('fleet', `Spot ${instanceId} in PROD is node ${node} of ${CLUSTER}: 5 pods of Deployment web + a DaemonSet pod`);
    timeline.detail(`PodDisruptionBudget web: minAvailable 4 (1 disruption allowed at a time); spare node ${spare} has room`);

    const warning = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'spot-interruption-warning.json'), 'utf8'));
    const warnedAt = new Date();
    Object.assign(warning, { id: randomUUID(), account: PROD, time: warnedAt.toISOString(), resources: [`arn:aws:ec2:us-east-1:${PROD}:instance/${instanceId}`] });
    warning.detail['instance-id'] = instanceId;
    const since = (iso: string | Date) => `+${((new Date(iso).getTime() - warnedAt.getTime()) / 1000).toFixed(1).padStart(5)}s`;

    await deliverToQueue(stack, 'InterruptionsEventsQueue', [warning]);
    const ingest = await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest');
    timeline.step('EventBridge -> SQS', `EC2 Spot Instance Interruption Warning for ${instanceId}: ingest ${ingest.received} message, ${ingest.failed} failed`);
    timeline.step('fleetwarden bus', `InstanceInterrupted (clusterName ${CLUSTER}, deadline +${NOTICE_S}s) -> node drain queue`);
    const drain = await pumpQueue(stack, 'KubernetesNodesEventsQueue', 'KubernetesNodesNodeDrain');
    timeline.step('node drain', `${drain.received} message, ${drain.failed} failed; seconds since the warning:`);

    const entries: NodeEntry[] = [];
    for await (const entry of ledger.entries()) entries.push(entry as unknown as NodeEntry);
    const byAction = (action: string) => entries.find((e) => e.action === action);
    const tainted = byAction('node.tainted');
    const cordoned = byAction('node.cordoned');
    if (tainted) timeline.detail(`${since(tainted.at)}  tainted ${INTERRUPTION_TAINT_KEY}=${warning.id.slice(0, 8)}…:NoSchedule (the event id)`);
    if (cordoned) timeline.detail(`${since(cordoned.at)}  cordoned ${node}`);
    const drained = byAction('node.drained') ?? byAction('node.drain-timed-out');
    if (drained) {
      const started = new Date(drained.after.startedAt).getTime();
      for (const pod of drained.after.pods) {
        const at = new Date(started + pod.evictedAtMs);
        const retried = pod.attempts > 1 ? ` after ${pod.attempts - 1} × 429 ("${pod.refusal}")` : '';
        timeline.detail(`${since(at)}  evicted ${pod.pod}${retried}`);
      }
      for (const skipped of drained.after.skipped) timeline.detail(`          left ${skipped.pod} (${skipped.reason})`);
      const finished = new Date(started + drained.after.durationMs);
      const ok = drained.action === 'node.drained';
      (ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(
        `${ok ? 'drain complete' : 'drain stopped'} at ${since(finished).trim()}: ${drained.after.evicted} pods evicted and gone, ${drained.after.refusals} refusals honoured, ${Math.round(NOTICE_S - (finished.getTime() - warnedAt.getTime()) / 1000)} s of the ${NOTICE_S} s notice left`,
      );
    }
    const onSpare = (await k8s.podsOn(spare)).filter((p) => p.metadata?.labels?.app === 'web').length;
    const left = (await k8s.podsOn(node)).map((p) => p.metadata?.labels?.app);
    timeline.step('kubernetes', `web runs ${onSpare}/5 on ${spare}; left on ${node}: ${left.join(', ') || 'nothing'}; budget never broken (the API refused instead)`);

    const tip = (await ledger.tip())?.seq;
    await deliverToQueue(stack, 'InterruptionsEventsQueue', [warning]);
    await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest');
    await pumpQueue(stack, 'KubernetesNodesEventsQueue', 'KubernetesNodesNodeDrain');
    timeline.ok(`the warning delivered again changed nothing: ledger tip still #${(await ledger.tip())?.seq} (was #${tip})`);

    for (const entry of entries.filter((e) => e.action.startsWith('node.'))) timeline.step('ledger', `#${entry.seq} ${entry.action} ${entry.subject}`);
    await verifyOwnLedger(ledger, timeline);
    timeline.step('fleetwarden bus', `published: ${(await published()).map((e) => e['detail-type']).join(', ')}`);
  });
}
