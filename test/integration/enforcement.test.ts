import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import { sweepBatch } from '../../functions/enforcement/enforcer';
import { EnforcementEnvSchema } from '../../functions/enforcement/env';
import { Ec2Instances } from '../../functions/enforcement/instances';
import { enforcerDeps } from '../../functions/enforcement/wiring';
import { DynamoLedger } from '../../functions/ledger/store';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus, listenToTopic } from '../../local/listen';
import { type LocalStack, provision } from '../../local/provision';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { runStateMachine } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { launchInstance } from '../support';

const HOME = '123456789012';
const PROD = '111111111111';
const LAB = '333333333333';
const QUEUE = 'EnforcementEventsQueue';
const CHECK = 'EnforcementEnforcementCheck';
const SWEEP = 'EnforcementSweepStateMachine';

const cdkConfig = () => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden as Record<string, any>;
/** The repository's config with enforcement acting: LAB terminates, STAGING stops, PROD only flags. */
const acting = (enforcement: Record<string, unknown> = {}) => ({
  ...cdkConfig(),
  dryRun: false,
  policies: { enforcement: { actions: { PROD: 'none', STAGING: 'stop', LAB: 'terminate' }, circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 100 }, ...enforcement } },
});

const fixture = (name: string) => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${name}.json`), 'utf8')) as Record<string, any>;
function running(account: string, instanceId: string): Record<string, any> {
  const e = fixture('state-change-running');
  return { ...e, id: randomUUID(), account, time: new Date().toISOString(), resources: [`arn:aws:ec2:us-east-1:${account}:instance/${instanceId}`], detail: { ...e.detail, 'instance-id': instanceId } };
}
function launched(account: string, instanceIds: string[], user = 'alice'): Record<string, any> {
  const e = fixture('cloudtrail-run-instances');
  e.id = randomUUID();
  e.account = account;
  e.time = new Date().toISOString();
  e.detail.userIdentity = { ...e.detail.userIdentity, arn: `arn:aws:iam::${account}:user/${user}`, userName: user };
  e.detail.responseElements.instancesSet.items = instanceIds.map((instanceId) => ({ instanceId }));
  return e;
}

async function flags(stack: LocalStack) {
  const out = await documentClient().send(new ScanCommand({ TableName: stack.ref('StateStoreAuthorizationsTable') }));
  return new Map((out.Items ?? []).map((i) => [i.instanceId as string, i]));
}
async function ledger(stack: LocalStack) {
  const items: Record<string, any>[] = [];
  for await (const item of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) items.push(item);
  return items;
}
async function stateOf(account: string, instanceId: string) {
  const ec2 = awsClient(EC2Client, await new AccountSessions(HOME, 'fleetwarden-member').options(account, 'us-east-1'));
  const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}
const check = async (stack: LocalStack, events: unknown[]) => {
  await deliverToQueue(stack, QUEUE, events);
  return pumpQueue(stack, QUEUE, CHECK);
};

describe('enforcement rules (synthesized patterns, routed by moto EventBridge)', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await provision(synthTemplate(acting()));
  });

  it.each([
    ['an instance entering running', () => running(LAB, 'i-0c1d2e3f4a5b60718')],
    ['a RunInstances call from CloudTrail', () => launched(LAB, ['i-0c1d2e3f4a5b60718'])],
  ])('delivers %s into the enforcement queue exactly once, and not into the interruption queue', async (_name, make) => {
    const event = make();
    const out = await awsClient(EventBridgeClient).send(new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify(event.detail) }] }));
    expect(out.FailedEntryCount).toBe(0);
    const sqs = awsClient(SQSClient);
    const received = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.ref(QUEUE), MaxNumberOfMessages: 10 }));
    expect(received.Messages?.length).toBe(1);
    expect(JSON.parse(received.Messages![0]!.Body!)['detail-type']).toBe(event['detail-type']);
    const interruptions = await sqs.send(new ReceiveMessageCommand({ QueueUrl: stack.ref('InterruptionsEventsQueue'), MaxNumberOfMessages: 10 }));
    expect(interruptions.Messages ?? []).toEqual([]);
  });

  it('leaves other instance states and failed RunInstances calls to the interruption rules or nobody', async () => {
    const failedCall = launched(LAB, ['i-0c1d2e3f4a5b60718']);
    failedCall.detail.errorCode = 'Client.UnauthorizedOperation';
    for (const event of [failedCall, { ...running(LAB, 'i-0c1d2e3f4a5b60718'), detail: { 'instance-id': 'i-0c1d2e3f4a5b60718', state: 'pending' } }]) {
      await awsClient(EventBridgeClient).send(new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify(event.detail) }] }));
    }
    const received = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref(QUEUE), MaxNumberOfMessages: 10 }));
    expect(received.Messages ?? []).toEqual([]);
  });
});

describe('the event path: EnforcementCheck (real handler, local SQS event source, moto in several accounts)', () => {
  let stack: LocalStack;
  beforeAll(async () => {
    stack = await provision(synthTemplate(acting()));
  });

  it('flags an untagged instance in a LAB account within the delivery of its running event, notifies and records it; the CloudTrail call adds its creator', async () => {
    const bus = await listenToBus(stack, ['fleetwarden.enforcement']);
    const topic = await listenToTopic(stack);
    const rogue = await launchInstance(LAB, { spot: false });

    expect(await check(stack, [running(LAB, rogue)])).toMatchObject({ received: 1, failed: 0 });

    const flag = (await flags(stack)).get(rogue)!;
    expect(flag).toMatchObject({ state: 'flagged', account: LAB, region: 'us-east-1', environment: 'LAB', version: 1, openScope: `${LAB}/us-east-1` });
    expect(flag.reason).toMatch(/^unauthorized: none of tag ManagedBy=fleetwarden, tag eks:cluster-name, an Auto Scaling group/);
    expect(Date.parse(flag.graceUntil) - Date.parse(flag.flaggedAt)).toBe(24 * 3_600_000);
    expect(flag.creator).toBeUndefined();
    const [published] = await bus();
    expect(published).toMatchObject({ 'detail-type': 'InstanceFlagged', detail: { instanceId: rogue, environment: 'LAB' } });
    const [notified] = await topic();
    expect(notified?.Subject).toBe(`Fleetwarden flagged ${rogue} in LAB account ${LAB}`);

    expect(await check(stack, [launched(LAB, [rogue], 'alice')])).toMatchObject({ received: 1, failed: 0 });
    expect((await flags(stack)).get(rogue)).toMatchObject({ state: 'flagged', creator: `arn:aws:iam::${LAB}:user/alice`, version: 2 });
    const entries = (await ledger(stack)).filter((e) => e.subject === `${LAB}/us-east-1/${rogue}`);
    expect(entries.map((e) => e.action)).toEqual(['instance.flagged', 'instance.flag-creator-recorded']);
    expect(entries[1]!.before).toMatchObject({ state: 'flagged', version: 1 });
    expect(entries[1]!.after).toMatchObject({ creator: `arn:aws:iam::${LAB}:user/alice`, version: 2 });
  });

  it('records the creator with the flag when the CloudTrail call comes first, and the later running event changes nothing', async () => {
    const rogue = await launchInstance(LAB, { spot: false });
    await check(stack, [launched(LAB, [rogue], 'bob')]);
    expect((await flags(stack)).get(rogue)).toMatchObject({ state: 'flagged', creator: `arn:aws:iam::${LAB}:user/bob`, version: 1 });
    const before = (await ledger(stack)).length;
    await check(stack, [running(LAB, rogue), running(LAB, rogue)]);
    expect((await flags(stack)).get(rogue)).toMatchObject({ version: 1 });
    expect((await ledger(stack)).length).toBe(before);
  });

  it('lists the open flags with their creator, reason and time left (fleetwarden flags), as text and JSON', async () => {
    const rogue = await launchInstance(LAB, { spot: false });
    await check(stack, [launched(LAB, [rogue], 'carol')]);
    const { runFlagsCommand } = await import('../../functions/enforcement/cli');
    const table = stack.ref('StateStoreAuthorizationsTable');

    const { text, code } = await runFlagsCommand(['--table', table, '--account', LAB]);

    expect(code).toBe(0);
    expect(text).toMatch(new RegExp(`${rogue}  ${LAB} LAB us-east-1  flagged  (23h 59m|24h 0m) left`));
    expect(text).toContain(`creator: arn:aws:iam::${LAB}:user/carol`);
    const listed = JSON.parse((await runFlagsCommand(['--table', table, '--state', 'flagged', '--json'])).text) as { instanceId: string }[];
    expect(listed.map((f) => f.instanceId)).toContain(rogue);
    expect(JSON.parse((await runFlagsCommand(['--table', table, '--state', 'acted', '--json'])).text)).toEqual([]);
  });

  it('writes nothing for an authorized instance (tag, Auto Scaling group), however often its events arrive', async () => {
    const tagged = await launchInstance(PROD, { spot: false, tags: { ManagedBy: 'fleetwarden' } });
    const grouped = await launchInstance(PROD, { spot: false, tags: { 'aws:autoscaling:groupName': 'web' } });
    const before = (await ledger(stack)).length;
    expect(await check(stack, [running(PROD, tagged), running(PROD, grouped), launched(PROD, [tagged, grouped])])).toMatchObject({ received: 3, failed: 0 });
    const stored = await flags(stack);
    expect(stored.has(tagged) || stored.has(grouped)).toBe(false);
    expect((await ledger(stack)).length).toBe(before);
  });

  it('parks an event of an account that is not configured in the DLQ with the reason', async () => {
    await deliverToQueue(stack, QUEUE, [running('999999999999', 'i-0c1d2e3f4a5b60718')]);
    expect(await pumpQueue(stack, QUEUE, CHECK)).toMatchObject({ received: 1, failed: 0 });
    const parked = await awsClient(SQSClient).send(new ReceiveMessageCommand({ QueueUrl: stack.ref('EnforcementEventsDeadLetters'), MaxNumberOfMessages: 10, MessageAttributeNames: ['All'] }));
    expect(parked.Messages?.[0]?.MessageAttributes?.reason?.StringValue).toBe('account 999999999999 is not one of the configured accounts');
  });
});

describe('EnforcementSweep (synthesized definition, aws-local-stepfunctions, moto in several accounts)', () => {
  it('flags what no event announced, acts per environment class after the grace, never on a protected instance, and a second sweep writes nothing', async () => {
    const stack = await provision(synthTemplate(acting({ graceHours: 0 })));
    const bus = await listenToBus(stack, ['fleetwarden.enforcement']);
    const labRogue = await launchInstance(LAB, { spot: false });
    const labProtected = await launchInstance(LAB, { spot: false, tags: { 'fleetwarden:protected': 'true' } });
    const prodRogue = await launchInstance(PROD, { spot: false });
    const authorized = await launchInstance(LAB, { spot: false, tags: { ManagedBy: 'fleetwarden' } });

    const run = await runStateMachine(stack, SWEEP, {});

    expect(run.status).toBe('SUCCEEDED');
    expect(await stateOf(LAB, labRogue)).toMatch(/shutting-down|terminated/);
    expect(await stateOf(LAB, labProtected)).toBe('running');
    expect(await stateOf(PROD, prodRogue)).toBe('running');
    expect(await stateOf(LAB, authorized)).toBe('running');
    const stored = await flags(stack);
    expect(stored.get(labRogue)).toMatchObject({ state: 'acted', outcome: 'terminated' });
    expect(stored.get(labProtected)).toMatchObject({ state: 'left', outcome: 'protected by tag fleetwarden:protected: never acted on' });
    expect(stored.get(prodRogue)).toMatchObject({ state: 'left', outcome: 'action for PROD is none: flagged and notified only' });
    expect(stored.has(authorized)).toBe(false);
    const actions = (await ledger(stack)).filter((e) => e.subject === `${LAB}/us-east-1/${labRogue}`).map((e) => e.action);
    expect(actions).toEqual(['instance.flagged', 'instance.action-started', 'instance.terminated']);
    const types = (await bus()).map((e) => e['detail-type']);
    expect(types).toEqual(expect.arrayContaining(['InstanceFlagged', 'InstanceTerminated', 'InstanceFlagLeft', 'SweepChecked']));

    const tip = (await ledger(stack)).length;
    const again = await runStateMachine(stack, SWEEP, {});
    expect(again.status).toBe('SUCCEEDED');
    expect((await ledger(stack)).length).toBe(tip);
    expect((await flags(stack)).get(prodRogue)).toMatchObject({ version: stored.get(prodRogue)!.version });
  });

  it('trips the circuit breaker when the planned actions exceed the limit: nothing acted on, recorded, announced, the flags kept', async () => {
    const stack = await provision(synthTemplate(acting({ graceHours: 0, circuitBreaker: { maxActionsPerRun: 1, maxPercentOfFleet: 100 } })));
    const bus = await listenToBus(stack, ['fleetwarden.enforcement']);
    const topic = await listenToTopic(stack);
    const rogues = [await launchInstance(LAB, { spot: false }), await launchInstance(LAB, { spot: false })];

    const run = await runStateMachine(stack, SWEEP, {});

    expect(run.status).toBe('SUCCEEDED');
    expect(run.events.map((e) => e.state)).toContain('Nothing acted on: the circuit breaker tripped');
    for (const id of rogues) expect(await stateOf(LAB, id)).toBe('running');
    const stored = await flags(stack);
    for (const id of rogues) expect(stored.get(id)).toMatchObject({ state: 'flagged' });
    const tripped = (await ledger(stack)).find((e) => e.action === 'enforcement.circuit-breaker-tripped');
    expect(tripped?.reason).toMatch(/^\d+ planned actions exceed the limit of 1 per run: nothing acted on/);
    expect((await bus()).map((e) => e['detail-type'])).toContain('CircuitBreakerTripped');
    expect((await topic()).map((m) => m.Subject)).toContain('Fleetwarden enforcement circuit breaker tripped');
  });

  it('records a dry run as what it would have done, and leaves the instance running', async () => {
    const stack = await provision(synthTemplate({ ...acting({ graceHours: 0 }), dryRun: true }));
    const rogue = await launchInstance(LAB, { spot: false });
    expect((await runStateMachine(stack, SWEEP, {})).status).toBe('SUCCEEDED');
    expect(await stateOf(LAB, rogue)).toBe('running');
    expect((await flags(stack)).get(rogue)).toMatchObject({ state: 'left', outcome: 'dry run: would terminate it' });
  });

  it('reports an account-region that cannot be swept as failed for the run (ledger, event) and sweeps the others', async () => {
    const stack = await provision(synthTemplate(acting()));
    const rogue = await launchInstance(STAGING_ACCOUNT, { spot: false });
    const env = EnforcementEnvSchema.parse(envOf(stack));
    const deps = enforcerDeps(env, 'enforcement-sweep');
    // The member role of PROD refuses to be assumed, as IAM would without the member stack there.
    class Refusing extends AccountSessions {
      override async options(account: string, region: string) {
        if (account === PROD) throw Object.assign(new Error(`User is not authorized to perform: sts:AssumeRole on arn:aws:iam::${PROD}:role/fleetwarden-member`), { name: 'AccessDenied' });
        return super.options(account, region);
      }
    }
    deps.instances = new Ec2Instances(new Refusing(HOME, 'fleetwarden-member'));
    const bus = await listenToBus(stack, ['fleetwarden.enforcement']);

    const report = await sweepBatch({ sweepId: 'sweep-1', targets: [{ account: PROD, region: 'us-east-1' }, { account: STAGING_ACCOUNT, region: 'us-east-1' }] }, deps);
    const { planActions } = await import('../../functions/enforcement/enforcer');
    await planActions({ sweepId: 'sweep-1', reports: [report] }, deps);

    expect(report).toMatchObject({ targets: 2, flagged: 1, failed: [{ account: PROD, region: 'us-east-1', error: expect.stringMatching(/^AccessDenied: /) }] });
    expect((await flags(stack)).get(rogue)).toMatchObject({ state: 'flagged', environment: 'STAGING' });
    expect((await ledger(stack)).find((e) => e.action === 'enforcement.sweep-failed')).toMatchObject({ subject: `${PROD}/us-east-1` });
    expect((await bus()).map((e) => e['detail-type'])).toContain('SweepTargetFailed');
  });
});

const STAGING_ACCOUNT = '222222222222';

/** The environment the template gives the EnforcementSteps function, resolved against moto. */
function envOf(stack: LocalStack): Record<string, string> {
  const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith('EnforcementEnforcementSteps'));
  if (!fn) throw new Error('no EnforcementSteps function');
  return fn.environment;
}

describe('the act step (real adapters against moto, a fault injected around EC2)', () => {
  it('finishes an action a run died in: acting was recorded, the next run re-checks, terminates once and records it', async () => {
    const stack = await provision(synthTemplate(acting({ graceHours: 0 })));
    const deps = enforcerDeps(EnforcementEnvSchema.parse(envOf(stack)), 'enforcement-sweep');
    const rogue = await launchInstance(LAB, { spot: false });
    const { actOnFlag, sweepTarget } = await import('../../functions/enforcement/enforcer');
    const report = await sweepTarget({ account: LAB, region: 'us-east-1', sweepId: 'sweep-a' }, deps);
    const instanceKey = `${LAB}/us-east-1/${rogue}`;
    expect(report.expired).toContainEqual({ instanceKey, environment: 'LAB' });
    const real = deps.instances;
    deps.instances = Object.assign(Object.create(real), {
      terminate: async () => {
        throw Object.assign(new Error('the function timed out'), { name: 'Sandbox.Timedout' });
      },
    });

    await expect(actOnFlag({ instanceKey, sweepId: 'sweep-a' }, deps)).rejects.toThrow('the function timed out');
    expect((await flags(stack)).get(rogue)).toMatchObject({ state: 'acting', outcome: 'terminating' });
    expect(await stateOf(LAB, rogue)).toBe('running');

    deps.instances = real;
    expect(await actOnFlag({ instanceKey, sweepId: 'sweep-b' }, deps)).toMatchObject({ action: 'instance.terminated', state: 'acted' });
    expect(await stateOf(LAB, rogue)).toMatch(/shutting-down|terminated/);
    const actions = (await ledger(stack)).filter((e) => e.subject === instanceKey).map((e) => e.action);
    expect(actions).toEqual(['instance.flagged', 'instance.action-started', 'instance.terminated']);
  });

  it('resolves a flag whose instance was made authorized or terminated by its owner before the grace was over', async () => {
    const stack = await provision(synthTemplate(acting()));
    const deps = enforcerDeps(EnforcementEnvSchema.parse(envOf(stack)), 'enforcement-sweep');
    const tagLater = await launchInstance(LAB, { spot: false });
    const goneLater = await launchInstance(LAB, { spot: false });
    const { sweepTarget } = await import('../../functions/enforcement/enforcer');
    // moto's EC2 is shared by the whole run: other tests' LAB instances are swept too.
    expect((await sweepTarget({ account: LAB, region: 'us-east-1', sweepId: 'first' }, deps)).flagged).toBeGreaterThanOrEqual(2);
    expect((await flags(stack)).get(tagLater)).toMatchObject({ state: 'flagged' });
    const ec2 = awsClient(EC2Client, await new AccountSessions(HOME, 'fleetwarden-member').options(LAB, 'us-east-1'));
    const { CreateTagsCommand, TerminateInstancesCommand } = await import('@aws-sdk/client-ec2');
    await ec2.send(new CreateTagsCommand({ Resources: [tagLater], Tags: [{ Key: 'ManagedBy', Value: 'fleetwarden' }] }));
    await ec2.send(new TerminateInstancesCommand({ InstanceIds: [goneLater] }));

    expect(await sweepTarget({ account: LAB, region: 'us-east-1', sweepId: 'second' }, deps)).toMatchObject({ flagged: 0, resolved: 2 });

    const stored = await flags(stack);
    expect(stored.get(tagLater)).toMatchObject({ state: 'resolved', outcome: 'authorized by tag ManagedBy=fleetwarden' });
    expect(stored.get(goneLater)).toMatchObject({ state: 'resolved', outcome: expect.stringMatching(/^instance is (shutting-down|terminated)$/) });
    expect(stored.get(goneLater)!.openScope).toBeUndefined();
    expect((await deps.flags.openIn(LAB, 'us-east-1')).map((f) => f.instanceId)).not.toContain(tagLater);
  });
});
