import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, beforeEach, describe, expect, inject, it } from 'vitest';
import { verifyChain } from '../../functions/ledger/chain';
import { DynamoLedger } from '../../functions/ledger/store';
import { clusterConnector } from '../../functions/kubernetes/connector';
import type { NodeEvent } from '../../functions/kubernetes/events';
import { reactToInterruption } from '../../functions/kubernetes/interruption';
import { CORDONED_BY_ANNOTATION, INTERRUPTION_TAINT_KEY } from '../../functions/kubernetes/port';
import { RetryableError } from '../../functions/shared/errors';
import type { GroupLifecycle, LifecycleAction } from '../../functions/shared/groups';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus } from '../../local/listen';
import { type LocalStack, provision } from '../../local/provision';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { invokeFunction } from '../../local/stepfunctions';
import { type CfnTemplate, synthTemplate } from '../../local/template';
import { Workloads } from '../../scripts/k8s/workloads';
import { fixture, launchInstance } from '../support';

/**
 * The whole path for Kubernetes nodes, as deployed: an AWS event on the interruption queue ->
 * the ingest function -> `InstanceInterrupted` on Fleetwarden's bus -> (moto routes it through
 * the synthesized rule) -> the node-drain queue -> the NodeDrain function -> the real API server,
 * where the function acts as Fleetwarden's own RBAC identity.
 */
const PROD = '111111111111';
const CLUSTER = 'prod-eks';
const INGEST_QUEUE = 'InterruptionsEventsQueue';
const INGEST = 'InterruptionsInterruptionIngest';
const DRAIN_QUEUE = 'KubernetesNodesEventsQueue';
const DRAIN_DLQ = 'KubernetesNodesEventsDeadLetters';
const DRAIN = 'KubernetesNodesNodeDrain';

function config(overrides: Record<string, unknown> = {}) {
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  return { ...base, dryRun: false, kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], rebalance: 'taint', drainTimeoutSeconds: 20 }, ...overrides };
}

let template: CfnTemplate;
let stack: LocalStack;
let k8s: Workloads;

beforeAll(() => {
  template = synthTemplate(config());
  // What the local harness does for every cluster-facing function: the control plane's kubeconfig
  // (Fleetwarden's own identity) instead of EKS DescribeCluster + token.
  process.env.FLEETWARDEN_KUBECONFIG = inject('fleetwardenKubeconfig');
  k8s = new Workloads(inject('kubeconfig'));
});

afterAll(async () => {
  await k8s.cleanup();
});

beforeEach(async () => {
  stack = await provision(template);
});

async function ledgerEntries(of = stack) {
  const items: Record<string, any>[] = [];
  for await (const item of new DynamoLedger(documentClient(), { tableName: of.ref('StateStoreLedgerTable') }).entries()) items.push(item);
  return items;
}

/** A node of `cluster` on a new EC2 instance in PROD, with a Deployment and a DaemonSet on it. */
async function clusterNode(options: { cluster?: string; spot?: boolean; replicas?: number } = {}) {
  const instanceId = await launchInstance(PROD, { spot: options.spot ?? true, tags: { 'eks:cluster-name': options.cluster ?? CLUSTER } });
  const pool = Workloads.unique('pool');
  const ns = await k8s.namespace('pipeline');
  const node = await k8s.node(instanceId, { pool });
  await k8s.deployment(ns, 'web', { replicas: options.replicas ?? 3, pool });
  await k8s.daemonSet(ns, 'node-exporter', { pool });
  await k8s.waitForReady(ns, 'web', options.replicas ?? 3);
  await k8s.waitFor('DaemonSet pod', async () => (await k8s.podsOn(node)).some((p) => p.metadata?.labels?.app === 'node-exporter'));
  return { instanceId, node, ns };
}

/** Delivers an AWS event the way the rules would, then runs both functions as their event source mappings do. */
async function interrupt(event: Record<string, any>, on = stack) {
  await deliverToQueue(on, INGEST_QUEUE, [event]);
  const ingest = await pumpQueue(on, INGEST_QUEUE, INGEST);
  const drain = await pumpQueue(on, DRAIN_QUEUE, DRAIN);
  return { ingest, drain };
}

const now = () => new Date().toISOString();
const appsOn = async (node: string) => (await k8s.podsOn(node)).filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.labels?.app);

describe('interruption of a Kubernetes node (ingest -> bus -> node drain -> API server)', () => {
  it('taints, cordons and drains the node of a PROD Spot instance within the notice, and records every action', async () => {
    const { instanceId, node } = await clusterNode();
    const published = await listenToBus(stack, ['fleetwarden.kubernetes'], 'k8s');
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: now() });

    const pumps = await interrupt(event);

    expect(pumps.ingest).toMatchObject({ received: 1, failed: 0 });
    expect(pumps.drain).toMatchObject({ received: 1, failed: 0 });
    const after = await k8s.core.readNode({ name: node });
    expect(after.spec?.unschedulable).toBe(true);
    expect(after.spec?.taints).toContainEqual({ key: INTERRUPTION_TAINT_KEY, value: event.id, effect: 'NoSchedule' });
    expect(after.metadata?.annotations?.[CORDONED_BY_ANNOTATION]).toBe(event.id);
    expect(await appsOn(node)).toEqual(['node-exporter']); // the DaemonSet pod stays

    const entries = await ledgerEntries();
    expect(entries.map((e) => e.action)).toEqual(['pool.quarantined', 'node.tainted', 'node.cordoned', 'node.drained']);
    for (const entry of entries.slice(1)) expect(entry).toMatchObject({ subject: `${CLUSTER}/${node}`, eventId: event.id, actor: 'node-drain' });
    expect(entries[3]!.after).toMatchObject({ instanceId, nodeName: node, evicted: 3, refusals: 0, skipped: [{ reason: 'daemonset' }], remaining: [] });
    expect(entries[3]!.after.secondsBeforeDeadline).toBeGreaterThan(60);
    expect(verifyChain('fleet', entries).ok).toBe(true);

    const types = (await published()).map((e) => e['detail-type']);
    expect(types.sort()).toEqual(['NodeCordoned', 'NodeDrained', 'NodeTainted']);
  });

  it('changes nothing when the same interruption is delivered again, and publishes its events again (at least once)', async () => {
    const { instanceId, node } = await clusterNode({ replicas: 2 });
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: now() });
    await interrupt(event);
    const entriesBefore = await ledgerEntries();
    const nodeBefore = await k8s.core.readNode({ name: node });
    const published = await listenToBus(stack, ['fleetwarden.kubernetes'], 'dup');

    // Past the ingest function's idempotency, as a redelivery of its own InstanceInterrupted would be.
    const interrupted = { 'detail-type': 'InstanceInterrupted', source: 'fleetwarden.interruption', id: randomUUID(), detail: { ...entriesBefore[0]!.after, eventId: event.id, kind: 'spot-interruption', account: PROD, region: 'us-east-1', environment: 'PROD', clusterName: CLUSTER, instanceId } };
    await deliverToQueue(stack, DRAIN_QUEUE, [interrupted, interrupted]);
    expect(await pumpQueue(stack, DRAIN_QUEUE, DRAIN)).toMatchObject({ received: 2, failed: 0 });
    expect(await interrupt(event)).toMatchObject({ ingest: { failed: 0 }, drain: { failed: 0 } }); // and the AWS event itself, again

    expect(await ledgerEntries()).toEqual(entriesBefore);
    // The two redeliveries reach the drain function (the AWS event stops at ingest's idempotency); consumers
    // deduplicate on eventId, and each copy carries what the first delivery recorded.
    const again = await published();
    expect(again.map((e) => e['detail-type']).sort()).toEqual(['NodeCordoned', 'NodeDrained', 'NodeTainted'].flatMap((t) => [t, t]));
    for (const e of again) expect(e.detail.eventId).toBe(event.id);
    for (const e of again.filter((x) => x['detail-type'] === 'NodeDrained')) expect(e.detail).toMatchObject({ evicted: 2 });
    const nodeAfter = await k8s.core.readNode({ name: node });
    expect(nodeAfter.spec).toEqual(nodeBefore.spec);
    expect(nodeAfter.metadata?.annotations).toEqual(nodeBefore.metadata?.annotations);
  });

  it('drains when the instance is shutting down, even if it is not Spot', async () => {
    const { instanceId, node } = await clusterNode({ spot: false, replicas: 1 });
    const event = fixture('state-change-shutting-down', { id: randomUUID(), account: PROD, instanceId, time: now() });

    await interrupt(event);

    expect(await appsOn(node)).toEqual(['node-exporter']);
    expect((await ledgerEntries()).map((e) => e.action)).toEqual(['instance.interrupted', 'node.tainted', 'node.cordoned', 'node.drained']);
  });

  it('only taints the node on a rebalance recommendation (kubernetes.rebalance: taint)', async () => {
    const { instanceId, node } = await clusterNode({ replicas: 1 });
    const event = fixture('rebalance-recommendation', { id: randomUUID(), account: PROD, instanceId, time: now() });

    await interrupt(event);

    const after = await k8s.core.readNode({ name: node });
    expect(after.spec?.taints).toContainEqual({ key: INTERRUPTION_TAINT_KEY, value: event.id, effect: 'NoSchedule' });
    expect(after.spec?.unschedulable).toBeFalsy();
    expect((await appsOn(node)).sort()).toEqual(['node-exporter', 'web']);
    expect((await ledgerEntries()).map((e) => e.action)).toEqual(['pool.rebalance-recorded', 'node.tainted']);
  });

  it('leaves nodes of clusters that are not configured alone: the rule does not even route them', async () => {
    const { instanceId, node } = await clusterNode({ cluster: 'someone-elses-eks', replicas: 1 });
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: now() });

    const pumps = await interrupt(event);

    expect(pumps.drain.received).toBe(0);
    const after = await k8s.core.readNode({ name: node });
    expect(after.spec?.unschedulable).toBeFalsy();
    expect(after.spec?.taints ?? []).toEqual([]);
  });

  it('records that an interrupted instance of the cluster has no node (yet), and does nothing else', async () => {
    const instanceId = await launchInstance(PROD, { tags: { 'eks:cluster-name': CLUSTER } });
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: now() });

    expect(await interrupt(event)).toMatchObject({ drain: { received: 1, failed: 0 } });

    const entries = await ledgerEntries();
    expect(entries.map((e) => e.action)).toEqual(['pool.quarantined', 'node.not-found']);
    expect(entries[1]).toMatchObject({ subject: `${CLUSTER}/${instanceId}`, reason: expect.stringMatching(/no node of prod-eks has spec\.providerID naming/) });
  });

  it('publishes on a redelivery what a failed PutEvents lost after the ledger write', async () => {
    const { instanceId, node } = await clusterNode({ replicas: 1 });
    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const sent: NodeEvent[] = [];
    let failures = 0;
    const publisher = {
      publish: async (events: NodeEvent[]) => {
        if (events.some((e) => e.detailType === 'NodeCordoned') && failures++ === 0) throw new RetryableError('PutEvents failed');
        sent.push(...events);
      },
    };
    const deps = { clusters: [CLUSTER], policy: { rebalance: 'taint' as const, drainTimeoutSeconds: 20, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt' }, connector: clusterConnector([{ name: CLUSTER, region: 'us-east-1' }]), ledger, publisher, dryRun: false, actor: 'node-drain' };
    const event = { eventId: randomUUID(), kind: 'spot-interruption' as const, instanceId, account: PROD, region: 'us-east-1', environment: 'PROD' as const, clusterName: CLUSTER };

    await expect(reactToInterruption(event, deps)).rejects.toThrow('PutEvents failed');
    expect((await ledgerEntries()).map((e) => e.action)).toEqual(['node.tainted', 'node.cordoned']); // recorded, not published
    expect(sent.map((e) => e.detailType)).toEqual(['NodeTainted']);

    const redelivered = await reactToInterruption(event, deps);

    expect(redelivered.recorded).toEqual([
      { action: 'node.tainted', duplicate: true },
      { action: 'node.cordoned', duplicate: true },
      { action: 'node.drained', duplicate: false },
    ]);
    expect(sent.map((e) => e.detailType)).toEqual(['NodeTainted', 'NodeTainted', 'NodeCordoned', 'NodeDrained']);
    expect(sent.find((e) => e.detailType === 'NodeCordoned')!.detail).toMatchObject({ eventId: event.eventId, nodeName: node });
  });

  it('completes the group\'s terminate lifecycle action (CONTINUE) once the node is drained, so the group does not wait for the heartbeat timeout', async () => {
    // Prepare
    const { instanceId, node } = await clusterNode({ replicas: 2 });
    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const continued: { action: LifecycleAction; podsLeft: number }[] = [];
    const lifecycle: GroupLifecycle = {
      continueTermination: async (action) => {
        continued.push({ action, podsLeft: (await appsOn(node)).filter((app) => app === 'web').length });
        return continued.length === 1 ? 'continued' : 'ended';
      },
    };
    const deps = { clusters: [CLUSTER], policy: { rebalance: 'taint' as const, drainTimeoutSeconds: 20, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt' }, connector: clusterConnector([{ name: CLUSTER, region: 'us-east-1' }]), ledger, publisher: { publish: async () => {} }, dryRun: false, actor: 'node-drain', lifecycle };
    const asg = { name: 'web-nodes', hook: 'drain-first', token: randomUUID() };
    const event = { eventId: randomUUID(), kind: 'asg-termination' as const, instanceId, account: PROD, region: 'us-east-1', environment: 'PROD' as const, clusterName: CLUSTER, asg };

    // Act
    const outcome = await reactToInterruption(event, deps);
    const redelivered = await reactToInterruption(event, deps);

    // Assess
    expect(outcome.drain?.complete).toBe(true);
    expect(continued[0]).toEqual({ action: { group: 'web-nodes', hook: 'drain-first', token: asg.token, instanceId, account: PROD, region: 'us-east-1' }, podsLeft: 0 });
    expect(redelivered.recorded.find((r) => r.action === 'asg.lifecycle-continued')).toEqual({ action: 'asg.lifecycle-continued', duplicate: true });
    const entries = await ledgerEntries();
    expect(entries.map((e) => e.action)).toEqual(['node.tainted', 'node.cordoned', 'node.drained', 'asg.lifecycle-continued']);
    expect(entries[3]).toMatchObject({ subject: `web-nodes/${instanceId}`, after: { result: 'continued', hook: 'drain-first' } });
    expect(JSON.stringify(entries[3])).not.toContain(asg.token);
  });

  it('leaves the lifecycle action to its heartbeat timeout in dry-run mode: the node is not touched, the group not told', async () => {
    const { instanceId } = await clusterNode({ replicas: 1 });
    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    const calls: LifecycleAction[] = [];
    const lifecycle: GroupLifecycle = { continueTermination: async (action) => (calls.push(action), 'continued') };
    const deps = { clusters: [CLUSTER], policy: { rebalance: 'taint' as const, drainTimeoutSeconds: 20, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt' }, connector: clusterConnector([{ name: CLUSTER, region: 'us-east-1' }]), ledger, publisher: { publish: async () => {} }, actor: 'node-drain', lifecycle };
    const event = { eventId: randomUUID(), kind: 'asg-termination' as const, instanceId, account: PROD, region: 'us-east-1', environment: 'PROD' as const, clusterName: CLUSTER, asg: { name: 'web-nodes', hook: 'drain-first', token: 't' } };

    await reactToInterruption(event, { ...deps, dryRun: true });

    expect(calls).toEqual([]);
    expect((await ledgerEntries()).map((e) => e.action)).toEqual(['node.drain-planned']);
  });

  it('makes a record that failed transiently visible again in seconds, not after the queue visibility timeout', async () => {
    const saved = process.env.FLEETWARDEN_KUBECONFIG;
    const unreachable = path.join(mkdtempSync(path.join(tmpdir(), 'fw-unreachable-')), 'kubeconfig');
    writeFileSync(unreachable, JSON.stringify({ apiVersion: 'v1', kind: 'Config', clusters: [{ name: 'c', cluster: { server: 'https://127.0.0.1:1', 'insecure-skip-tls-verify': true } }], users: [{ name: 'u', user: { token: 't' } }], contexts: [{ name: 'c', context: { cluster: 'c', user: 'u' } }], 'current-context': 'c' }));
    process.env.FLEETWARDEN_KUBECONFIG = unreachable;
    try {
      const instanceId = await launchInstance(PROD, { tags: { 'eks:cluster-name': CLUSTER } });
      const detail = { eventId: randomUUID(), kind: 'spot-interruption', instanceId, account: PROD, region: 'us-east-1', environment: 'PROD', clusterName: CLUSTER };
      await deliverToQueue(stack, DRAIN_QUEUE, [{ 'detail-type': 'InstanceInterrupted', source: 'fleetwarden.interruption', id: randomUUID(), detail }]);
      const sqs = awsClient(SQSClient);
      const queueUrl = stack.ref(DRAIN_QUEUE);
      const { Messages = [] } = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, MessageSystemAttributeNames: ['All'] }));
      const m = Messages[0]!;
      const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith(DRAIN))!;
      const record = { messageId: m.MessageId!, receiptHandle: m.ReceiptHandle!, body: m.Body!, attributes: { ApproximateReceiveCount: '1', SentTimestamp: String(Date.now()), SenderId: 'AIDAEXAMPLE', ApproximateFirstReceiveTimestamp: String(Date.now()) }, messageAttributes: {}, md5OfBody: m.MD5OfBody!, eventSource: 'aws:sqs', eventSourceARN: stack.attr(DRAIN_QUEUE, 'Arn'), awsRegion: 'us-east-1' };

      const response = (await invokeFunction(stack, fn, { Records: [record] })) as { batchItemFailures: { itemIdentifier: string }[] };

      expect(response.batchItemFailures).toEqual([{ itemIdentifier: m.MessageId }]);
      const started = performance.now();
      let again: string | undefined;
      while (!again && performance.now() - started < 15_000) {
        again = (await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }))).Messages?.[0]?.MessageId;
      }
      expect(again).toBe(m.MessageId); // the queue's own visibility timeout is 660 s here
      expect(performance.now() - started).toBeGreaterThan(3_000);
    } finally {
      process.env.FLEETWARDEN_KUBECONFIG = saved;
    }
  });

  it('parks a malformed event in its DLQ with the reason, without failing the batch', async () => {
    await deliverToQueue(stack, DRAIN_QUEUE, [{ 'detail-type': 'InstanceInterrupted', source: 'fleetwarden.interruption', id: 'x', detail: { eventId: 'e', kind: 'spot-interruption' } }, 'not json']);

    expect(await pumpQueue(stack, DRAIN_QUEUE, DRAIN)).toMatchObject({ received: 2, failed: 0 });

    const out = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref(DRAIN_DLQ), MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    const reasons = (out.Messages ?? []).map((m) => m.MessageAttributes?.reason?.StringValue).sort();
    expect(reasons).toEqual([expect.stringMatching(/^body is not JSON/), expect.stringMatching(/^malformed InstanceInterrupted event: detail\.instanceId: /)]);
  });

  it('only plans and records in dry-run mode: the node is not touched', async () => {
    const dry = await provision(synthTemplate(config({ dryRun: true })));
    const { instanceId, node } = await clusterNode({ replicas: 1 });
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: now() });

    await interrupt(event, dry);

    const after = await k8s.core.readNode({ name: node });
    expect(after.spec?.unschedulable).toBeFalsy();
    expect(after.spec?.taints ?? []).toEqual([]);
    const entries = await ledgerEntries(dry);
    expect(entries.map((e) => e.action)).toEqual(['pool.quarantined', 'node.drain-planned']);
    expect(entries[1]!.reason).toMatch(/^dry run: would drain/);
  });
});
