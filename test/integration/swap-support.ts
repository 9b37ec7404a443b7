import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { GetItemCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { type TaskWrapper, seedGroup, watchInService } from '../../local/fleet';

/** An Auto Scaling group of N On-Demand instances from a launch template, full (MaxSize = N). */
export const createGroup = seedGroup;

export async function group(name: string) {
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [name] }))).AutoScalingGroups![0]!;
  return {
    max: g.MaxSize!,
    desired: g.DesiredCapacity!,
    suspended: (g.SuspendedProcesses ?? []).map((p) => p.ProcessName!),
    instances: (g.Instances ?? []).map((i) => ({ id: i.InstanceId!, state: i.LifecycleState! })),
    inService: (g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length,
  };
}

/**
 * Running instances of this account that belong to no Auto Scaling group: orphans. With a scope,
 * only among a group's own instances and what one execution launched (by its swap tag): test
 * files run at once against one moto server, and another file's swap in flight has a replacement
 * running outside its group for a moment.
 */
export async function orphans(scope?: { instances: string[]; executionName: string }): Promise<string[]> {
  if (scope) {
    const launched = (await awsClient(EC2Client).send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:fleetwarden:swap', Values: [scope.executionName] }] })))
      .Reservations!.flatMap((r) => r.Instances ?? [])
      .map((i) => i.InstanceId!);
    const ours = new Set([...scope.instances, ...launched]);
    return (await orphans()).filter((id) => ours.has(id));
  }
  const running = (await awsClient(EC2Client).send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }] })))
    .Reservations!.flatMap((r) => r.Instances ?? [])
    .map((i) => i.InstanceId!);
  const members = new Set<string>();
  let NextToken: string | undefined;
  do {
    const page = await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ NextToken }));
    for (const g of page.AutoScalingGroups ?? []) for (const i of g.Instances ?? []) members.add(i.InstanceId!);
    NextToken = page.NextToken;
  } while (NextToken);
  return running.filter((id) => !members.has(id));
}

export async function lockHolder(stack: LocalStack, groupName: string): Promise<string | undefined> {
  const out = await awsClient(DynamoDBClient).send(new GetItemCommand({ TableName: stack.ref('StateStoreLocksTable'), Key: { lockId: { S: `swap-lock#us-east-1#${groupName}` } } }));
  return out.Item?.owner?.S;
}

type Around = TaskWrapper;

/**
 * Wraps every Task of the swap so the test sees the group before and after each step (the
 * lowest InService count observed), optionally with a fault injected into one state. `hooks`
 * wrap a state outside the fault (what the world does around it, e.g. a kubelet joining).
 */
export function observed(definition: Record<string, unknown>, groupName: string, fault?: { state: string; inject: Around }, hooks: Record<string, Around> = {}) {
  const inject: Record<string, Around> = { ...hooks };
  if (fault) {
    // The fault stands in for the real task, under the state's hook if it has one.
    const hook = hooks[fault.state];
    inject[fault.state] = hook ? (input, real) => hook(input, (i) => fault.inject(i, real)) : fault.inject;
  }
  const watch = watchInService([definition], [groupName], inject);
  return { around: watch.around, minInService: () => watch.minInService() };
}
