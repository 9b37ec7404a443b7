import { DescribeAvailabilityZonesCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../shared/aws';
import type { AccountSessions } from '../shared/accounts';
import { GROUP_NAME_TAG } from '../shared/groups';
import type { InstanceFacts, InstanceResolver } from './ingest';

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
        asgName: tags[GROUP_NAME_TAG],
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
