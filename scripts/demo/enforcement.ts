import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { formatFlags, listFlags } from '../../functions/enforcement/cli';
import { formatVerification, runVerify } from '../../functions/ledger/cli';
import { DynamoLedger } from '../../functions/ledger/store';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus, listenToTopic } from '../../local/listen';
import { provision } from '../../local/provision';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { runStateMachine } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { testInstance } from '../k8s/instances';
import type { DemoContext } from './timeline';

const PROD = '111111111111';
const LAB = '333333333333';
const GRACE_SECONDS = 4;

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a fixture is edited field by field
const event = (name: string) => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${name}.json`), 'utf8')) as Record<string, any>;
function running(account: string, instanceId: string) {
  const e = event('state-change-running');
  return { ...e, id: randomUUID(), account, time: new Date().toISOString(), resources: [`arn:aws:ec2:us-east-1:${account}:instance/${instanceId}`], detail: { 'instance-id': instanceId, state: 'running' } };
}
function launchedBy(account: string, instanceId: string, user: string) {
  const e = event('cloudtrail-run-instances');
  Object.assign(e, { id: randomUUID(), account, time: new Date().toISOString() });
  e.detail.userIdentity = { ...e.detail.userIdentity, arn: `arn:aws:iam::${account}:user/${user}`, userName: user, accountId: account };
  e.detail.responseElements.instancesSet.items = [{ instanceId }];
  return e;
}

/**
 * Governance: the rogue-instance enforcer on a stack synthesized with enforcement acting (LAB
 * terminates, PROD only flags, a grace of a few seconds instead of 24 h, dry run off): instances
 * launched by people are flagged within the delivery of their events, notified, re-checked after
 * the grace and acted on per environment class; a protected instance is never touched; the sweep
 * finds an instance whose event never arrived.
 */
export async function enforcementSteps({ timeline }: DemoContext): Promise<void> {
  timeline.section('Governance: unauthorized instances flagged, notified, re-checked, acted on');
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  const config = {
    ...base,
    dryRun: false,
    policies: { enforcement: { graceHours: GRACE_SECONDS / 3600, actions: { PROD: 'none', STAGING: 'stop', LAB: 'terminate' }, circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 100 } } },
  };
  const stack = await provision(synthTemplate(config), { prefix: 'demo-enf' });
  timeline.step('cdk synth', `the stack with policies.enforcement: LAB terminate, PROD none, grace ${GRACE_SECONDS} s (24 h by default), dry run off`);
  timeline.detail('authorized: tag ManagedBy=fleetwarden, tag eks:cluster-name, or an Auto Scaling group; protected: tag fleetwarden:protected');
  const published = await listenToBus(stack, ['fleetwarden.enforcement'], 'bus');
  const notified = await listenToTopic(stack, 'topic');

  const labRogue = await testInstance(LAB, { spot: false });
  const prodRogue = await testInstance(PROD, { spot: false });
  const labProtected = await testInstance(LAB, { spot: false, tags: { 'fleetwarden:protected': 'true', Owner: 'research' } });
  const authorized = await testInstance(LAB, { spot: false, tags: { ManagedBy: 'fleetwarden' } });
  const missed = await testInstance(LAB, { spot: false });
  timeline.step('fleet', `alice launches ${labRogue} (untagged) in LAB ${LAB}; bob launches ${prodRogue} (untagged) in PROD ${PROD}`);
  timeline.detail(`also in LAB: ${labProtected} (fleetwarden:protected), ${authorized} (ManagedBy=fleetwarden), ${missed} (untagged; its events are lost)`);

  const sent = performance.now();
  await deliverToQueue(stack, 'EnforcementEventsQueue', [
    running(LAB, labRogue),
    running(PROD, prodRogue),
    running(LAB, labProtected),
    running(LAB, authorized),
    launchedBy(LAB, labRogue, 'alice'),
    launchedBy(PROD, prodRogue, 'bob'),
    launchedBy(LAB, labProtected, 'carol'),
  ]);
  const pump = await pumpQueue(stack, 'EnforcementEventsQueue', 'EnforcementEnforcementCheck');
  timeline.step('EventBridge -> SQS', `4 "running" and 3 CloudTrail RunInstances events: ${pump.received} messages, ${pump.failed} failed, checked in ${((performance.now() - sent) / 1000).toFixed(2)} s`);
  for (const e of await published()) {
    const d = e.detail as Record<string, string>;
    if (e['detail-type'] === 'InstanceFlagged') timeline.step('fleetwarden bus', `InstanceFlagged ${d.instanceId} (${d.environment}): ${d.reason}`);
    if (e['detail-type'] === 'InstanceFlagCreatorRecorded') timeline.detail(`creator of ${d.instanceId}: ${d.creator}`);
  }
  for (const m of await notified()) timeline.step('sns', `"${m.Subject}"`);
  timeline.detail(`${authorized} is authorized: nothing written for it`);

  await new Promise((resolve) => setTimeout(resolve, GRACE_SECONDS * 1000 + 200));
  const sweep = await runStateMachine(stack, 'EnforcementSweepStateMachine', {}, { retryMs: 0 });
  timeline.step('step functions', `EnforcementSweep after the grace: ${sweep.status}, ${sweep.transitions} state transitions, ${sweep.lambdaInvocations} Lambda invocations`);
  let others = 0;
  for (const e of await published()) {
    const d = e.detail as Record<string, string | number>;
    if (e['detail-type'] === 'InstanceFlagged' && d.instanceId === missed) timeline.step('sweep', `flagged ${d.instanceId}, which no event announced (grace until ${d.graceUntil})`);
    else if (e['detail-type'] === 'InstanceFlagged') others += 1;
    if (e['detail-type'] === 'InstanceTerminated') timeline.ok(`terminated ${d.instanceId} in LAB: ${d.reason}`);
    if (e['detail-type'] === 'InstanceFlagLeft') timeline.step('re-check', `left ${d.instanceId} (${d.environment}): ${d.reason}`);
    if (e['detail-type'] === 'SweepChecked') timeline.detail(`sweep: ${d.targets} account-regions, ${d.instances} instances, ${d.flagged} newly flagged, ${d.planned} planned actions, circuit breaker ${d.tripped ? 'tripped' : 'not tripped'}`);
  }
  if (others) timeline.detail(`also flagged: ${others} untagged instance(s) the earlier chapters launched in the same accounts`);
  const states: string[] = [];
  for (const [account, id] of [[LAB, labRogue], [PROD, prodRogue], [LAB, labProtected], [LAB, authorized], [LAB, missed]] as const) {
    const ec2 = awsClient(EC2Client, await new AccountSessions('123456789012', 'fleetwarden-member').options(account, 'us-east-1'));
    const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    states.push(`${id} ${out.Reservations?.[0]?.Instances?.[0]?.State?.Name}`);
  }
  timeline.step('ec2', states.join(', '));

  timeline.step('fleetwarden flags', `--state all --account ${LAB}`);
  for (const line of formatFlags(await listFlags({ table: stack.ref('StateStoreAuthorizationsTable'), account: LAB, state: 'all', json: false }), new Date()).split('\n')) timeline.detail(line);

  const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
  const actions: string[] = [];
  for await (const entry of ledger.entries()) actions.push(String(entry.action));
  timeline.step('ledger', `${actions.length} entries: ${[...new Set(actions)].map((a) => `${a} ×${actions.filter((x) => x === a).length}`).join(', ')}`);
  const report = await runVerify({ chain: 'fleet', table: stack.ref('StateStoreLedgerTable'), bucket: stack.ref('LedgerArchive'), 'signing-key': stack.attr('LedgerDigestSigningKey', 'Arn'), json: false });
  (report.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(`this chapter's ledger: ${formatVerification(report).split('\n')[0]}`);
}
