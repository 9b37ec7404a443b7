import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../functions/shared/aws';

export interface SeedGroupOptions {
  maxSize?: number;
  subnets?: string[];
  tags?: Record<string, string>;
}

/**
 * Seeds a fleet in moto the way teams run one: an Auto Scaling group of `size` On-Demand
 * instances from its own launch template (`<name>-lt`, following `$Latest`), full (MaxSize =
 * size unless told). Used by the tests, the demo and the bench. Returns the instance ids.
 */
export async function seedGroup(name: string, size = 3, options: SeedGroupOptions = {}): Promise<string[]> {
  const lt = await awsClient(EC2Client).send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `${name}-lt`, LaunchTemplateData: { ImageId: 'ami-12345678', InstanceType: 'm5.large' } }));
  await awsClient(AutoScalingClient).send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: name,
      MinSize: size,
      MaxSize: options.maxSize ?? size,
      DesiredCapacity: size,
      LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId!, Version: '$Latest' },
      ...(options.subnets ? { VPCZoneIdentifier: options.subnets.join(',') } : { AvailabilityZones: ['us-east-1a', 'us-east-1b'] }),
      ...(options.tags ? { Tags: Object.entries(options.tags).map(([Key, Value]) => ({ Key, Value, PropagateAtLaunch: false })) } : {}),
    }),
  );
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
  return (g.Instances ?? []).map((i) => i.InstanceId!);
}
