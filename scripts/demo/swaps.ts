import { AutoScalingClient, CreateAutoScalingGroupCommand, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { awsClient } from '../../functions/shared/aws';
import { runStateMachine } from '../../local/stepfunctions';
import type { DemoContext } from '../demo';

const GROUP = 'demo-web';

async function describe() {
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [GROUP] }))).AutoScalingGroups![0]!;
  const ids = (g.Instances ?? []).map((i) => i.InstanceId!);
  const described = ids.length ? await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: ids })) : { Reservations: [] };
  const lifecycle = new Map((described.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i.InstanceLifecycle === 'spot' ? 'Spot' : 'On-Demand']));
  return {
    line: `${(g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length}/${g.DesiredCapacity} InService, MaxSize ${g.MaxSize}, suspended [${(g.SuspendedProcesses ?? []).map((p) => p.ProcessName).join(', ')}]: ${ids.map((id) => `${id} ${lifecycle.get(id)}`).join(', ')}`,
    onDemand: ids.filter((id) => lifecycle.get(id) !== 'Spot'),
  };
}

/** Node swaps: a full group of 3 On-Demand instances moved to Spot, one step failing on the way. */
export async function swapSteps({ stack, timeline }: DemoContext): Promise<void> {
  timeline.section('Node swaps (the synthesized NodeSwap state machine, run locally)');
  const lt = await awsClient(EC2Client).send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `${GROUP}-lt`, LaunchTemplateData: { ImageId: 'ami-12345678', InstanceType: 'm5.large' } }));
  await awsClient(AutoScalingClient).send(
    new CreateAutoScalingGroupCommand({
      AutoScalingGroupName: GROUP,
      MinSize: 3,
      MaxSize: 3,
      DesiredCapacity: 3,
      LaunchTemplate: { LaunchTemplateId: lt.LaunchTemplate!.LaunchTemplateId!, Version: '$Latest' },
      AvailabilityZones: ['us-east-1a', 'us-east-1b'],
    }),
  );
  timeline.step('fleet', `group ${GROUP}: ${(await describe()).line}`);

  // First attempt: the attach succeeds but its response is lost (the task fails after its effect).
  let first = true;
  const failed = await runStateMachine(
    stack,
    'SwapsSwapStateMachine',
    { group: GROUP, dryRun: false, reason: 'demo' },
    {
      waitMs: 0,
      retryMs: 0,
      executionName: 'demo-swap-1',
      around: {
        'Attach the replacement to the group': async (input, real) => {
          const out = await real(input);
          if (first) {
            first = false;
            throw Object.assign(new Error('the response was lost'), { name: 'States.TaskFailed' });
          }
          return out;
        },
      },
    },
  );
  timeline.fail(`swap 1: "Attach the replacement to the group" failed after attaching -> ${failed.error}`);
  const compensation = failed.events.filter((e) => e.type === 'StateEntered').map((e) => e.state);
  timeline.detail(`rollback ran: ${compensation.slice(compensation.indexOf('Roll back what the swap did')).join(' -> ')}`);
  timeline.step('fleet', `after the rollback: ${(await describe()).line}`);

  for (let n = 2; (await describe()).onDemand.length; n++) {
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: GROUP, dryRun: false, reason: 'demo' }, { waitMs: 0, retryMs: 0, executionName: `demo-swap-${n}` });
    const replaced = run.status === 'SUCCEEDED' ? 'replaced an On-Demand instance with Spot' : `failed: ${run.error}`;
    timeline.ok(`swap ${n}: ${run.status} in ${run.transitions} state transitions (${run.lambdaInvocations} Lambda invocations, ${run.sdkCalls} SDK calls): ${replaced}`);
    if (run.status !== 'SUCCEEDED' || n > 6) break;
  }
  timeline.step('fleet', `group ${GROUP}: ${(await describe()).line}`);
  timeline.detail('capacity stayed at 3 InService or more at every step; MaxSize and processes restored; every step is in the ledger');
}
