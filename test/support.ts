import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AccountSessions } from '../functions/shared/accounts';
import { awsClient } from '../functions/shared/aws';
import { PROJECT_ROOT } from '../lib/paths';
import { type LocalStack, provision } from '../local/provision';
import { type CfnTemplate, synthTemplate } from '../local/template';

let template: CfnTemplate | undefined;

/** The stack's template, synthesized once per test file (bundling skipped). */
export function stackTemplate(): CfnTemplate {
  template ??= synthTemplate();
  return template;
}

/** A fresh copy of the stack's resources in moto, under its own name prefix. */
export async function freshStack(): Promise<LocalStack> {
  return provision(stackTemplate());
}

 
/** A real event fixture from test/events, with the fields a test needs changed. */
export function fixture(name: string, changes: { id?: string; account?: string; instanceId?: string; time?: string; state?: string } = {}): Record<string, any> {
  const event = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${name}.json`), 'utf8'));
  if (changes.id) event.id = changes.id;
  if (changes.account) event.account = changes.account;
  if (changes.time) event.time = changes.time;
  if (changes.state) event.detail.state = changes.state;
  if (changes.instanceId) {
    const d = event.detail;
    if ('instance-id' in d) d['instance-id'] = changes.instanceId;
    if ('EC2InstanceId' in d) d.EC2InstanceId = changes.instanceId;
    if ('affectedEntities' in d) d.affectedEntities = [{ entityValue: changes.instanceId }];
    event.resources = [`arn:aws:ec2:${event.region}:${event.account}:instance/${changes.instanceId}`];
  }
  return event;
}

/** Launches an instance in a member account, with that account's own (assumed-role) credentials in moto. */
export async function launchInstance(account: string, options: { spot?: boolean; instanceType?: string; zone?: string; tags?: Record<string, string>; region?: string } = {}): Promise<string> {
  const region = options.region ?? 'us-east-1';
  const credentials = await new AccountSessions('123456789012', 'fleetwarden-member').options(account, region);
  const ec2 = awsClient(EC2Client, credentials);
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      MinCount: 1,
      MaxCount: 1,
      InstanceType: (options.instanceType ?? 'm5.large') as never,
      Placement: { AvailabilityZone: options.zone ?? `${region}a` },
      InstanceMarketOptions: options.spot === false ? undefined : { MarketType: 'spot' },
      TagSpecifications: options.tags
        ? [{ ResourceType: 'instance', Tags: Object.entries(options.tags).map(([Key, Value]) => ({ Key, Value })) }]
        : undefined,
    }),
  );
  return out.Instances![0]!.InstanceId!;
}
