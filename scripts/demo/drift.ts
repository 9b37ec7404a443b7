import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateVersionCommand, DescribeInstancesCommand, DescribeLaunchTemplatesCommand, EC2Client } from '@aws-sdk/client-ec2';
import type { BatchRequest } from '../../functions/batch/model';
import type { WavePlan } from '../../functions/batch/waves';
import { awsClient } from '../../functions/shared/aws';
import { runStartedExecutions } from '../../local/executions';
import { invokeFunction, runStateMachine } from '../../local/stepfunctions';
import type { DemoContext } from './timeline';

const GROUP = 'demo-web';
const NEW_AMI = 'ami-0c0ffee0c0ffee000';

async function images(): Promise<string> {
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [GROUP] }))).AutoScalingGroups![0]!;
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: (g.Instances ?? []).map((i) => i.InstanceId!) }));
  return out.Reservations!.flatMap((r) => r.Instances ?? []).map((i) => `${i.InstanceId} ${i.ImageId}`).join(', ');
}

/**
 * Node drift: the group's launch template gets a new AMI; the scheduled NodeDrift detector (the
 * real handler) finds every instance drifted, records it and starts a batch in moto — a dry run,
 * as the deployment is audit-only — and the operator then approves the repair, which runs the
 * same swaps.
 */
export async function driftSteps({ stack, timeline }: DemoContext): Promise<void> {
  timeline.section('Node drift: detected every cycle, repaired by the same swap');
  const lt = (await awsClient(EC2Client).send(new DescribeLaunchTemplatesCommand({ LaunchTemplateNames: [`${GROUP}-lt`] }))).LaunchTemplates![0]!;
  await awsClient(EC2Client).send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: lt.LaunchTemplateId, SourceVersion: '1', LaunchTemplateData: { ImageId: NEW_AMI } }));
  timeline.step('platform team', `launch template ${GROUP}-lt version 2: AMI ${NEW_AMI} (the group follows $Latest)`);

  const detector = [...stack.functions.values()].find((f) => f.logicalId.startsWith('NodeDriftNodeDriftDetector'))!;
  const { groups: reports } = (await invokeFunction(stack, detector, { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })) as { groups: { group: string; drifted: { instanceId: string; reason: string }[]; batch?: { name: string; outcome: string } }[] };
  for (const report of reports) {
    timeline.step('node drift detector', `${report.group}: ${report.drifted.length} drifted${report.batch ? `; batch ${report.batch.outcome}: ${report.batch.name}` : ''}`);
    for (const d of report.drifted) timeline.detail(`${d.instanceId}: ${d.reason}`);
  }

  const [dry] = await runStartedExecutions(stack, 'SwapBatchBatchStateMachine', { waitMs: 0, retryMs: 0 });
  if (!dry) throw new Error('the drift detector started no batch');
  const plan = (dry.result.output as { wave: Extract<WavePlan, { action: 'dry-run' }> }).wave;
  timeline.step('swap batch (dry run)', `${dry.result.status}: audit-only deployment, so the repair is planned: ${plan.report.waves.length} waves ${plan.report.waves.map((w) => `[${w.map((i) => i.instanceId).join(', ')}]`).join(' ')}`);

  const request = dry.input as BatchRequest;
  timeline.step('operator', 'approves the repair now (urgent, dry-run off for this request)');
  const repair = await runStateMachine(stack, 'SwapBatchBatchStateMachine', { ...request, dryRun: false, urgent: true }, { waitMs: 0, retryMs: 0, executionName: `${dry.name.slice(0, 70)}-go` });
  (repair.status === 'SUCCEEDED' ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(
    `repair batch ${repair.status}: ${repair.children.filter((c) => c.status === 'SUCCEEDED').length} of ${repair.children.length} swaps completed`,
  );
  timeline.step('fleet', `group ${GROUP}: ${await images()}`);
  const { groups: again } = (await invokeFunction(stack, detector, { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} })) as { groups: { group: string; status: string }[] };
  timeline.ok(`next drift cycle: ${again.map((r) => `${r.group} ${r.status}`).join(', ')}`);
}
