import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EventBridgeClient, PutEventsCommand, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient } from '../../functions/shared/aws';
import { MEMBER_STACK_NAME, buildApp } from '../../lib/app';
import { PROJECT_ROOT } from '../../lib/paths';
import { type LocalStack, provision } from '../../local/provision';
import { synthTemplate } from '../../local/template';

/**
 * The member stack's forwarding rules, provisioned from the synthesized member template into a
 * member account of moto, with real events put on that account's default bus. moto cannot
 * deliver from one account's bus to another's, so each rule's target is a capture queue in the
 * member account, and the harness routes what was captured onto the home account's default bus,
 * where the home stack's own rules take over. The rules' real targets (the home bus, with a role
 * and a DLQ) are asserted on the template in test/infra/member-stack.test.ts.
 */
const LAB = '333333333333';
const HOME = '123456789012';
const fixture = (name: string) => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${name}.json`), 'utf8')) as Record<string, any>;

let member: { events: EventBridgeClient; sqs: SQSClient; capture: string };
let home: LocalStack;

async function drain(sqs: SQSClient, queueUrl: string): Promise<Record<string, any>[]> {
  const out: Record<string, any>[] = [];
  for (;;) {
    const got = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10 }));
    if (!got.Messages?.length) return out;
    out.push(...got.Messages.map((m) => JSON.parse(m.Body!) as Record<string, any>));
  }
}

beforeAll(async () => {
  const { app } = buildApp({ skipBundling: true, nag: false });
  const template = app.synth().getStackByName(MEMBER_STACK_NAME).template as { Resources: Record<string, { Type: string; Condition?: string; Properties: Record<string, any> }> };
  const options = await new AccountSessions(HOME, 'fleetwarden-member').options(LAB, 'us-east-1');
  const events = awsClient(EventBridgeClient, options);
  const sqs = awsClient(SQSClient, options);
  const prefix = `fwd${randomUUID().slice(0, 6)}`;
  const capture = (await sqs.send(new CreateQueueCommand({ QueueName: `${prefix}-forwarded` }))).QueueUrl!;
  const captureArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: capture, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const rules = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Events::Rule');
  expect(rules.length).toBeGreaterThan(0);
  for (const [logicalId, rule] of rules) {
    expect(rule.Condition).toBe('ForwardEvents'); // true in a member account (see the infra test)
    const Name = `${prefix}-${logicalId}`.slice(0, 64);
    await events.send(new PutRuleCommand({ Name, EventBusName: 'default', EventPattern: JSON.stringify(rule.Properties.EventPattern), State: 'ENABLED' }));
    await events.send(new PutTargetsCommand({ Rule: Name, EventBusName: 'default', Targets: [{ Id: 'capture', Arn: captureArn }] }));
  }
  member = { events, sqs, capture };
  home = await provision(synthTemplate());
});

/** Puts an event on the member account's default bus, as the AWS service in that account does. */
async function emitInMember(event: Record<string, any>) {
  const out = await member.events.send(new PutEventsCommand({ Entries: [{ Source: event.source, DetailType: event['detail-type'], Detail: JSON.stringify(event.detail), Resources: event.resources }] }));
  expect(out.FailedEntryCount).toBe(0);
}

describe('member forwarding rules (synthesized member template, provisioned into a member account of moto)', () => {
  it('forward exactly the events Fleetwarden handles, and the home rules route each to its queue', async () => {
    const running: Record<string, any> = { ...fixture('state-change-running'), account: LAB };
    const pending: Record<string, any> = { ...running, detail: { ...running.detail, state: 'pending' } };
    const stopped: Record<string, any> = { ...running, detail: { ...running.detail, state: 'stopped' } };
    const launched: Record<string, any> = { ...fixture('cloudtrail-run-instances'), account: LAB };
    const failedLaunch: Record<string, any> = { ...launched, detail: { ...launched.detail, errorCode: 'Client.UnauthorizedOperation', responseElements: null } };
    const describe: Record<string, any> = { ...launched, detail: { ...launched.detail, eventName: 'DescribeInstances' } };
    const warning: Record<string, any> = { ...fixture('spot-interruption-warning'), account: LAB };
    const handled = [running, stopped, launched, warning];
    for (const event of [...handled, pending, failedLaunch, describe]) await emitInMember(event);

    const forwarded = await drain(member.sqs, member.capture);

    const key = (e: Record<string, any>) => `${e['detail-type']}|${e.detail.state ?? e.detail.eventName ?? e.detail['instance-action']}`;
    expect(forwarded.map(key).sort()).toEqual(handled.map(key).sort());

    // The harness routes what the member bus forwarded onto the home bus (moto cannot cross accounts).
    const homeBus = awsClient(EventBridgeClient);
    for (const e of forwarded) await homeBus.send(new PutEventsCommand({ Entries: [{ Source: e.source, DetailType: e['detail-type'], Detail: JSON.stringify(e.detail) }] }));
    const sqs = awsClient(SQSClient);
    const enforcement = await drain(sqs, home.ref('EnforcementEventsQueue'));
    const interruptions = await drain(sqs, home.ref('InterruptionsEventsQueue'));
    expect(enforcement.map(key).sort()).toEqual([key(running), key(launched)].sort());
    expect(interruptions.map(key).sort()).toEqual([key(stopped), key(warning)].sort());
  });
});
