import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { Ec2SpotPriceSource } from '../../functions/gatekeeper/aws';
import { Gatekeeper } from '../../functions/gatekeeper/gatekeeper';
import { NoPlacementScores } from '../../functions/gatekeeper/placement-scores';
import { AccountSessions } from '../../functions/shared/accounts';
import { DynamoPoolRiskStore } from '../../functions/interruption/pool-store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus } from '../../local/listen';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import type { DemoContext } from './timeline';

const QUEUE = 'InterruptionsEventsQueue';
const INGEST = 'InterruptionsInterruptionIngest';
const ACCOUNTS = { PROD: '111111111111', STAGING: '222222222222', LAB: '333333333333' } as const;

async function launch(account: string, instanceType: string, zone: string): Promise<string> {
  const ec2 = awsClient(EC2Client, await new AccountSessions('123456789012', 'fleetwarden-member').options(account, 'us-east-1'));
  const out = await ec2.send(
    new RunInstancesCommand({ ImageId: 'ami-12345678', MinCount: 1, MaxCount: 1, InstanceType: instanceType as never, Placement: { AvailabilityZone: zone }, InstanceMarketOptions: { MarketType: 'spot' } }),
  );
  return out.Instances![0]!.InstanceId!;
}

/** A real-shaped EventBridge event from test/events, for this instance and account. */
function event(name: string, account: string, instanceId: string) {
  const e = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${name}.json`), 'utf8'));
  Object.assign(e, { id: randomUUID(), account, time: new Date().toISOString(), resources: [`arn:aws:ec2:us-east-1:${account}:instance/${instanceId}`] });
  e.detail['instance-id'] = instanceId;
  return e;
}

/** Interruption intelligence: a PROD interruption closes its pool for everyone, a LAB one does not, a duplicate changes nothing. */
export async function interruptionSteps({ stack, ledger, timeline }: DemoContext): Promise<void> {
  timeline.section('Interruption intelligence');
  const pools = new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable'));
  const published = await listenToBus(stack, ['fleetwarden.interruption'], 'demo');
  const prodInstance = await launch(ACCOUNTS.PROD, 'm5.large', 'us-east-1a');
  const labInstance = await launch(ACCOUNTS.LAB, 'c5.xlarge', 'us-east-1b');
  timeline.step('fleet', `Spot ${prodInstance} (m5.large, us-east-1a) in PROD account ${ACCOUNTS.PROD}`);
  timeline.step('fleet', `Spot ${labInstance} (c5.xlarge, us-east-1b) in LAB account ${ACCOUNTS.LAB}`);

  const ingest = async (body: unknown, label: string) => {
    await deliverToQueue(stack, QUEUE, [body]);
    const pump = await pumpQueue(stack, QUEUE, INGEST);
    timeline.step('EventBridge -> SQS', `${label}: ${pump.received} message, ${pump.failed} failed`);
  };
  const ledgerTip = async () => (await ledger.tip())?.seq ?? 0;

  const prodEvent = event('spot-interruption-warning', ACCOUNTS.PROD, prodInstance);
  const before = await ledgerTip();
  await ingest(prodEvent, 'EC2 Spot Instance Interruption Warning from PROD');
  for await (const entry of ledger.entries(before + 1)) timeline.step('ledger', `#${entry.seq} ${entry.action} ${entry.subject}: ${entry.reason}`);

  // The gatekeeper every later Spot launch consults. Pools are keyed by zone ID (us-east-1a is
  // use1-az6 in these accounts), so a STAGING launch sees the pool PROD's interruption closed.
  const gatekeeper = new Gatekeeper({
    store: pools,
    prices: new Ec2SpotPriceSource(),
    placementScores: new NoPlacementScores(), // moto has no GetSpotPlacementScores
    ledger,
    policy: { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 },
  });
  const prodPool = { region: 'us-east-1', azId: 'use1-az6', instanceType: 'm5.large' };
  const admission = await gatekeeper.isAllowed(prodPool);
  timeline.step('gatekeeper', `STAGING account ${ACCOUNTS.STAGING} asks for us-east-1/use1-az6/m5.large: ${admission.allowed ? 'OPEN' : admission.reason}`);
  const record = await pools.get('us-east-1/use1-az6/m5.large');

  const labEvent = event('spot-interruption-warning', ACCOUNTS.LAB, labInstance);
  const beforeLab = await ledgerTip();
  await ingest(labEvent, 'EC2 Spot Instance Interruption Warning from LAB');
  for await (const entry of ledger.entries(beforeLab + 1)) timeline.step('ledger', `#${entry.seq} ${entry.action} ${entry.subject}: ${entry.reason}`);
  const ranked = await gatekeeper.rank(['use1-az6', 'use1-az1', 'use1-az2'].flatMap((azId) => ['m5.large', 'c5.xlarge'].map((instanceType) => ({ region: 'us-east-1', azId, instanceType }))));
  timeline.step('gatekeeper', 'ranks candidate pools for a launch (quarantine, decaying risk, Spot price):');
  for (const r of ranked) timeline.detail(`${r.allowed ? 'open  ' : 'closed'} ${r.key.padEnd(28)} score ${r.score.toFixed(3)}  ${r.allowed ? `risk ${r.components.risk.toFixed(2)}` : r.reason}`);

  const tipBefore = await ledgerTip();
  await ingest(prodEvent, 'the PROD warning delivered again (EventBridge and SQS are at-least-once)');
  const recordAfter = await pools.get('us-east-1/use1-az6/m5.large');
  timeline.ok(`duplicate changed nothing: ledger tip still #${await ledgerTip()} (was #${tipBefore}), pool record version ${recordAfter?.version} (was ${record?.version})`);

  const malformed = event('spot-interruption-warning', ACCOUNTS.PROD, prodInstance);
  malformed.detail['instance-id'] = 'web-1';
  await ingest(malformed, 'a malformed event (instance-id "web-1")');
  const parked = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref('InterruptionsEventsDeadLetters'), MessageAttributeNames: ['All'] }));
  for (const m of parked.Messages ?? []) timeline.fail(`parked in the DLQ: ${m.MessageAttributes?.reason?.StringValue}`);

  const events = await published();
  timeline.step('fleetwarden bus', `published: ${events.map((e) => e['detail-type']).join(', ')}`);
}
