import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../functions/shared/aws';
import { type TaskHandler, taskStates } from './stepfunctions';

export type TaskWrapper = (input: unknown, real: TaskHandler) => Promise<unknown>;

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

/** InService members of a group now. */
export async function inServiceCount(name: string): Promise<number> {
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
  return (g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length;
}

/**
 * Wraps every Task of the given state machine definitions for a local run: each group's InService
 * count is sampled right before and right after every task (the lowest is what "never below N" is
 * checked against), and `inject` runs in place of a state's task where given (a fault, a stand-in
 * kubelet), with the real task to call.
 */
export function watchInService(definitions: Record<string, unknown>[], groups: string[], inject: Record<string, TaskWrapper> = {}) {
  const samples = new Map(groups.map((g) => [g, [] as number[]]));
  const sample = async () => {
    for (const [g, seen] of samples) seen.push(await inServiceCount(g));
  };
  const around: Record<string, TaskWrapper> = {};
  for (const definition of definitions) {
    for (const state of taskStates(definition).keys()) {
      around[state] = async (input, real) => {
        await sample();
        try {
          return await (inject[state] ? inject[state](input, real) : real(input));
        } finally {
          await sample();
        }
      };
    }
  }
  return { around, minInService: (group = groups[0]!) => Math.min(...samples.get(group)!), samples: (group = groups[0]!) => samples.get(group)!.length };
}
