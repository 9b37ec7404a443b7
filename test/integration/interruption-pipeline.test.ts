import { randomUUID } from 'node:crypto';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { HANDLED_EVENTS } from '../../functions/interruption/events';
import { verifyChain } from '../../functions/ledger/chain';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { listenToBus } from '../../local/listen';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { fixture, freshStack, launchInstance } from '../support';

const PROD = '111111111111';
const LAB = '333333333333';
const QUEUE = 'InterruptionsEventsQueue';
const DLQ = 'InterruptionsEventsDeadLetters';
const INGEST = 'InterruptionsInterruptionIngest';

let stack: LocalStack;

async function ledgerEntries() {
  const items: Record<string, any>[] = [];
  for await (const item of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) items.push(item);
  return items;
}

async function poolRecord(pool: string) {
  return (await documentClient().send(new GetCommand({ TableName: stack.ref('StateStorePoolRiskTable'), Key: { pool } }))).Item;
}

const busListener = () => listenToBus(stack, ['fleetwarden.interruption']);

async function parked() {
  const out = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref(DLQ), MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
  return (out.Messages ?? []).map((m) => ({ body: m.Body!, reason: m.MessageAttributes?.reason?.StringValue, error: m.MessageAttributes?.error?.StringValue }));
}

beforeEach(async () => {
  stack = await freshStack();
});

/** Puts an event on moto's default bus as AWS would emit it; returns what reached the interruption queue. */
async function routed(event: Record<string, any>) {
  const out = await awsClient(EventBridgeClient).send(
    new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify(event.detail), Resources: event.resources }] }),
  );
  expect(out.FailedEntryCount).toBe(0);
  const received = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref(QUEUE), MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
  return (received.Messages ?? []).map((m) => JSON.parse(m.Body!) as Record<string, any>);
}

describe('interruption rules (synthesized patterns, routed by moto EventBridge)', () => {
  // moto 5.2.5 answers TestEventPattern with nothing in server mode, so routing is proven by
  // putting each real event on the default bus: two matching rules would deliver it twice.
  it.each(['spot-interruption-warning', 'rebalance-recommendation', 'state-change-shutting-down', 'health-scheduled-retirement', 'asg-terminate-lifecycle-action'])(
    'delivers the %s event into the interruption queue exactly once',
    async (name) => {
      const event = fixture(name);
      const delivered = await routed(event);
      expect(delivered.map((e) => [e.source, e['detail-type'], e.detail])).toEqual([[event.source, event['detail-type'], event.detail]]);
    },
  );

  it('does not route what the handler does not watch: a running instance, a non-EC2 Health event', async () => {
    expect(await routed(fixture('state-change-shutting-down', { state: 'running' }))).toEqual([]);
    const rds = fixture('health-scheduled-retirement');
    rds.detail.service = 'RDS';
    expect(await routed(rds)).toEqual([]);
  });

  it('has one rule per event type the handler understands, imported from its registry', () => {
    const patterns = Object.entries(stack.template.Resources)
      .filter(([id, r]) => r.Type === 'AWS::Events::Rule' && id.startsWith('Interruptions') && r.Properties?.EventPattern)
      .map(([, r]) => r.Properties!.EventPattern);
    expect(patterns).toEqual(HANDLED_EVENTS.map((h) => h.pattern));
  });
});

describe('interruption ingest (queue -> handler -> tables, ledger, bus)', () => {
  it('quarantines the pool for every account for 15 days when a PROD Spot instance is interrupted', async () => {
    const events = await busListener();
    const instanceId = await launchInstance(PROD, { instanceType: 'm5.large', zone: 'us-east-1a' });
    // An hour ago: the quarantine runs 15 days from the event's time, and one already over closes nothing.
    const at = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    const until = new Date(at.getTime() + 15 * 86_400_000).toISOString();
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: at.toISOString() });

    await deliverToQueue(stack, QUEUE, [event]);
    const pump = await pumpQueue(stack, QUEUE, INGEST);

    expect(pump).toMatchObject({ received: 1, failed: 0 });
    const record = await poolRecord('us-east-1/use1-az6/m5.large');
    expect(record).toMatchObject({ quarantinedUntil: until, quarantineEventId: event.id, version: 1 });
    const entries = await ledgerEntries();
    expect(entries).toEqual([expect.objectContaining({ action: 'pool.quarantined', subject: 'us-east-1/use1-az6/m5.large', eventId: event.id, actor: 'interruption-ingest' })]);
    expect(entries[0]!.after).toMatchObject({ quarantinedUntil: until, instanceId });
    const published = await events();
    expect(published.map((e) => e['detail-type']).sort()).toEqual(['InstanceInterrupted', 'PoolQuarantined']);
    expect(published.find((e) => e['detail-type'] === 'PoolQuarantined')!.detail).toMatchObject({ pool: 'us-east-1/use1-az6/m5.large', azId: 'use1-az6', until });
  });

  it('records a LAB Spot interruption without quarantining anything', async () => {
    const instanceId = await launchInstance(LAB, { instanceType: 'c5.xlarge', zone: 'us-east-1b' });
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: LAB, instanceId });
    await deliverToQueue(stack, QUEUE, [event]);
    expect(await pumpQueue(stack, QUEUE, INGEST)).toMatchObject({ received: 1, failed: 0 });
    const record = await poolRecord('us-east-1/use1-az1/c5.xlarge');
    expect(record?.quarantinedUntil).toBeUndefined();
    expect(record?.history).toHaveLength(1);
    expect((await ledgerEntries()).map((e) => e.action)).toEqual(['pool.interruption-recorded']);
  });

  it('changes nothing twice when the same event is delivered again, even in the same batch', async () => {
    const instanceId = await launchInstance(PROD);
    const event = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId });
    await deliverToQueue(stack, QUEUE, [event, event]);
    // Two copies in one batch (processed one after the other): the second finds the first done.
    await pumpQueue(stack, QUEUE, INGEST);
    await deliverToQueue(stack, QUEUE, [event]);
    expect(await pumpQueue(stack, QUEUE, INGEST)).toMatchObject({ received: 1, failed: 0 });
    expect((await ledgerEntries()).length).toBe(1);
    expect((await poolRecord('us-east-1/use1-az6/m5.large'))?.version).toBe(1);
  });

  it('records non-pool events (state change, scheduled retirement, ASG termination) against the instance', async () => {
    const instanceId = await launchInstance(PROD, { spot: false, tags: { 'aws:autoscaling:groupName': 'web', 'eks:cluster-name': 'prod-eks' } });
    const events = await busListener();
    await deliverToQueue(stack, QUEUE, [
      fixture('state-change-shutting-down', { id: randomUUID(), account: PROD, instanceId }),
      fixture('health-scheduled-retirement', { id: randomUUID(), account: PROD, instanceId }),
      fixture('asg-terminate-lifecycle-action', { id: randomUUID(), account: PROD, instanceId }),
    ]);
    expect(await pumpQueue(stack, QUEUE, INGEST)).toMatchObject({ received: 3, failed: 0 });
    const entries = await ledgerEntries();
    expect(entries.map((e) => e.action)).toEqual(['instance.interrupted', 'instance.interrupted', 'instance.interrupted']);
    const published = await events();
    expect(published.map((e) => e.detail.kind).sort()).toEqual(['asg-termination', 'scheduled-change', 'state-change']);
    expect(published.find((e) => e.detail.kind === 'scheduled-change')!.detail).toMatchObject({ deadline: '2026-12-05T06:00:00.000Z', clusterName: 'prod-eks', asgName: 'web' });
    expect(verifyChain('fleet', entries).ok).toBe(true);
  });

  it('parks unknown, malformed and unconfigured-account events in the DLQ with a reason, without failing the batch', async () => {
    const instanceId = await launchInstance(PROD);
    const good = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId });
    const unknown = { ...fixture('rebalance-recommendation'), 'detail-type': 'EC2 Fleet Error' };
    const malformed = fixture('spot-interruption-warning', { instanceId: 'web-1' });
    const stranger = fixture('spot-interruption-warning', { id: randomUUID(), account: '999999999999', instanceId });
    await deliverToQueue(stack, QUEUE, [unknown, good, malformed, 'not json at all', stranger]);

    const pump = await pumpQueue(stack, QUEUE, INGEST);

    expect(pump).toMatchObject({ received: 5, failed: 0 });
    expect((await ledgerEntries()).map((e) => e.eventId)).toEqual([good.id]);
    const reasons = (await parked()).map((p) => `${p.error}: ${p.reason}`).sort();
    expect(reasons).toEqual([
      expect.stringMatching(/^Terminal\.MalformedEvent: body is not JSON: /),
      expect.stringMatching(/^Terminal\.MalformedEvent: malformed "EC2 Spot Instance Interruption Warning" event: detail\.instance-id: an instance id looks like/),
      "Terminal.UnknownAccount: account 999999999999 is not in Fleetwarden's config (nor tagged in Organizations, if enabled)",
      'Terminal.UnknownEvent: unknown event "EC2 Fleet Error" from aws.ec2',
    ]);
  });

  it('reports only the failing record when a dependency fails, so the rest of the batch is not redelivered', async () => {
    const instanceId = await launchInstance(PROD);
    const spot = fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId });
    const stateChange = fixture('state-change-shutting-down', { id: randomUUID(), account: PROD, instanceId });
    // The pool table disappears from under the handler: a transient failure for the Spot event only.
    const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith(INGEST))!;
    const saved = fn.environment.POOL_RISK_TABLE_NAME!;
    fn.environment.POOL_RISK_TABLE_NAME = `${saved}-missing`;
    await deliverToQueue(stack, QUEUE, [spot, stateChange]);
    const first = await pumpQueue(stack, QUEUE, INGEST, { maxBatches: 1 });
    expect(first).toMatchObject({ received: 2, failed: 1 });
    expect((await ledgerEntries()).map((e) => e.eventId)).toEqual([stateChange.id]);

    fn.environment.POOL_RISK_TABLE_NAME = saved;
    const retry = await pumpQueue(stack, QUEUE, INGEST);
    expect(retry).toMatchObject({ received: 1, failed: 0 });
    expect((await ledgerEntries()).map((e) => e.eventId)).toEqual([stateChange.id, spot.id]);
    expect(await parked()).toEqual([]);
  });
});
