import { DescribeAvailabilityZonesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { type AwsClientOptions, awsClient } from '../shared/aws';
import { RetryableError } from '../shared/errors';
import type { DomainEvent, EventPublisher, InstanceFacts, InstanceResolver } from './ingest';

/** Credentials for a member account: assume Fleetwarden's member role there (home account: own role). */
export class AccountSessions {
  private readonly cache = new Map<string, { options: AwsClientOptions; expires: number }>();

  constructor(
    private readonly homeAccount: string,
    private readonly memberRoleName: string,
  ) {}

  async options(account: string, region: string): Promise<AwsClientOptions> {
    if (account === this.homeAccount) return { region };
    const key = `${account}/${region}`;
    const cached = this.cache.get(key);
    if (cached && cached.expires > Date.now() + 60_000) return cached.options;
    const out = await awsClient(STSClient).send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${this.memberRoleName}`, RoleSessionName: 'fleetwarden', DurationSeconds: 900 }),
    );
    const c = out.Credentials!;
    const options = { region, credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken } };
    this.cache.set(key, { options, expires: c.Expiration?.getTime() ?? Date.now() + 900_000 });
    return options;
  }
}

/**
 * Resolves instances to pools in their own account: DescribeInstances for type, zone, lifecycle
 * and tags; DescribeAvailabilityZones to turn the zone NAME (which differs per account) into the
 * zone ID that pools are keyed by.
 */
export class Ec2InstanceResolver implements InstanceResolver {
  private readonly zoneIds = new Map<string, Map<string, string>>();

  constructor(private readonly sessions: AccountSessions) {}

  async resolve(account: string, region: string, instanceIds: string[]): Promise<Map<string, InstanceFacts>> {
    const ec2 = awsClient(EC2Client, await this.sessions.options(account, region));
    const zones = await this.zones(ec2, account, region);
    const found = new Map<string, InstanceFacts>();
    let out;
    try {
      out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds }));
    } catch (error) {
      // Already gone: the event is still recorded, without a pool.
      if ((error as Error).name === 'InvalidInstanceID.NotFound') return found;
      throw error;
    }
    for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
      const tags = Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key!, t.Value!]));
      const azId = zones.get(instance.Placement?.AvailabilityZone ?? '');
      found.set(instance.InstanceId!, {
        instanceId: instance.InstanceId!,
        account,
        region,
        pool: azId && instance.InstanceType ? { region, azId, instanceType: instance.InstanceType } : undefined,
        lifecycle: instance.InstanceLifecycle === 'spot' ? 'spot' : 'on-demand',
        asgName: tags['aws:autoscaling:groupName'],
        clusterName: tags['eks:cluster-name'] ?? Object.keys(tags).find((k) => k.startsWith('kubernetes.io/cluster/'))?.slice('kubernetes.io/cluster/'.length),
      });
    }
    return found;
  }

  private async zones(ec2: EC2Client, account: string, region: string): Promise<Map<string, string>> {
    const key = `${account}/${region}`;
    let zones = this.zoneIds.get(key);
    if (!zones) {
      const out = await ec2.send(new DescribeAvailabilityZonesCommand({}));
      zones = new Map((out.AvailabilityZones ?? []).map((z) => [z.ZoneName!, z.ZoneId!]));
      this.zoneIds.set(key, zones);
    }
    return zones;
  }
}

export class EventBridgePublisher implements EventPublisher {
  constructor(
    private readonly busName: string,
    private readonly source: string,
  ) {}

  async publish(events: DomainEvent[]): Promise<void> {
    for (let i = 0; i < events.length; i += 10) {
      const out = await awsClient(EventBridgeClient).send(
        new PutEventsCommand({
          Entries: events.slice(i, i + 10).map((e) => ({ EventBusName: this.busName, Source: this.source, DetailType: e.detailType, Detail: JSON.stringify(e.detail) })),
        }),
      );
      if (out.FailedEntryCount) throw new RetryableError(`EventBridge refused ${out.FailedEntryCount} event(s): ${JSON.stringify(out.Entries)}`);
    }
  }
}

/** Parks an event the handler cannot use in the DLQ, with the reason as a message attribute. */
export class SqsDeadLetters {
  constructor(private readonly queueUrl: string) {}

  async park(body: string, reason: string, errorName: string): Promise<void> {
    await awsClient(SQSClient).send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: body,
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: reason.slice(0, 1000) },
          error: { DataType: 'String', StringValue: errorName },
        },
      }),
    );
  }
}
