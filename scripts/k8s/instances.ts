import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient } from '../../functions/shared/aws';

/** An EC2 instance in a member account of the local (moto) organisation, launched with that account's own credentials. */
export async function testInstance(account: string, options: { spot?: boolean; tags?: Record<string, string> } = {}): Promise<string> {
  const ec2 = awsClient(EC2Client, await new AccountSessions('123456789012', 'fleetwarden-member').options(account, 'us-east-1'));
  const out = await ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      MinCount: 1,
      MaxCount: 1,
      InstanceType: 'm5.large',
      Placement: { AvailabilityZone: 'us-east-1a' },
      InstanceMarketOptions: options.spot === false ? undefined : { MarketType: 'spot' },
      TagSpecifications: options.tags ? [{ ResourceType: 'instance', Tags: Object.entries(options.tags).map(([Key, Value]) => ({ Key, Value })) }] : undefined,
    }),
  );
  return out.Instances![0]!.InstanceId!;
}
