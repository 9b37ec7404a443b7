import { DescribeInstancesCommand, EC2Client, type Instance, StopInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import type { AccountSessions } from '../shared/accounts';
import { awsClient } from '../shared/aws';
import type { ObservedInstance } from './policy';

/** What the enforcer reads about instances, in their own account and region. */
export interface InstanceDirectory {
  /** The named instances; an id missing from the result no longer exists. */
  describe(account: string, region: string, instanceIds: string[]): Promise<Map<string, ObservedInstance>>;
  /** Every pending or running instance, a page (up to 1,000) at a time. */
  pages(account: string, region: string): AsyncIterable<ObservedInstance[]>;
}

/** What the enforcer does to an instance whose grace is over. Both are idempotent in EC2. */
export interface InstanceActions {
  stop(account: string, region: string, instanceId: string): Promise<void>;
  terminate(account: string, region: string, instanceId: string): Promise<void>;
}

/** DescribeInstances' largest page. */
const PAGE_SIZE = 1_000;

function observed(account: string, region: string, instance: Instance): ObservedInstance {
  return {
    instanceId: instance.InstanceId!,
    account,
    region,
    state: instance.State?.Name ?? 'unknown',
    imageId: instance.ImageId,
    launchTime: instance.LaunchTime,
    tags: Object.fromEntries((instance.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])),
  };
}

/** EC2 through the member role of each account (the home account: the function's own role). */
export class Ec2Instances implements InstanceDirectory, InstanceActions {
  constructor(private readonly sessions: AccountSessions) {}

  private async ec2(account: string, region: string): Promise<EC2Client> {
    return awsClient(EC2Client, await this.sessions.options(account, region));
  }

  async describe(account: string, region: string, instanceIds: string[]): Promise<Map<string, ObservedInstance>> {
    const ec2 = await this.ec2(account, region);
    const found = new Map<string, ObservedInstance>();
    try {
      const out = await ec2.send(new DescribeInstancesCommand({ InstanceIds: instanceIds }));
      for (const instance of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) found.set(instance.InstanceId!, observed(account, region, instance));
    } catch (error) {
      if ((error as Error).name !== 'InvalidInstanceID.NotFound') throw error;
      // One unknown id fails the whole call: ask for the others one by one.
      if (instanceIds.length > 1) for (const id of instanceIds) for (const [k, v] of await this.describe(account, region, [id])) found.set(k, v);
    }
    return found;
  }

  async *pages(account: string, region: string): AsyncIterable<ObservedInstance[]> {
    const ec2 = await this.ec2(account, region);
    let NextToken: string | undefined;
    do {
      const out = await ec2.send(
        new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }], MaxResults: PAGE_SIZE, NextToken }),
      );
      yield (out.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => observed(account, region, i));
      NextToken = out.NextToken;
    } while (NextToken);
  }

  async stop(account: string, region: string, instanceId: string): Promise<void> {
    await (await this.ec2(account, region)).send(new StopInstancesCommand({ InstanceIds: [instanceId] }));
  }

  async terminate(account: string, region: string, instanceId: string): Promise<void> {
    await (await this.ec2(account, region)).send(new TerminateInstancesCommand({ InstanceIds: [instanceId] }));
  }
}
