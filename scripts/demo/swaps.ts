import { AutoScalingClient, DescribeAutoScalingGroupsCommand } from '@aws-sdk/client-auto-scaling';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { type TaskWrapper, seedGroup, watchInService } from '../../local/fleet';
import type { WavePlan } from '../../functions/batch/waves';
import { awsClient } from '../../functions/shared/aws';
import { runStateMachine } from '../../local/stepfunctions';

import type { DemoContext } from './timeline';

/** The group cdk.json configures under swaps.groups (weekend maintenance window, budget 50 %). */
const GROUP = 'demo-web';

async function describe() {
  const g = (await awsClient(AutoScalingClient).send(new DescribeAutoScalingGroupsCommand({ AutoScalingGroupNames: [GROUP] }))).AutoScalingGroups![0]!;
  const ids = (g.Instances ?? []).map((i) => i.InstanceId!);
  const described = ids.length ? await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: ids })) : { Reservations: [] };
  const lifecycle = new Map((described.Reservations ?? []).flatMap((r) => r.Instances ?? []).map((i) => [i.InstanceId!, i.InstanceLifecycle === 'spot' ? 'Spot' : 'On-Demand']));
  return `${(g.Instances ?? []).filter((i) => i.LifecycleState === 'InService').length}/${g.DesiredCapacity} InService, MaxSize ${g.MaxSize}, suspended [${(g.SuspendedProcesses ?? []).map((p) => p.ProcessName).join(', ')}]: ${ids.map((id) => `${id} ${lifecycle.get(id)}`).join(', ')}`;
}

/**
 * Node swaps: a full group of 3 On-Demand instances moved to Spot by the SwapBatch workflow —
 * first planned as a dry run, then run: a canary, then waves, one swap failing on the way and
 * rolled back, retried, and the batch completing.
 */
export async function swapSteps({ stack, timeline, ledger }: DemoContext): Promise<void> {
  timeline.section('Node swaps (the synthesized SwapBatch and NodeSwap state machines, run locally)');
  await seedGroup(GROUP, 3);
  timeline.step('fleet', `group ${GROUP}: ${await describe()}`);

  // 1. The deployment is audit-only: a batch plans and reports.
  const dry = await runStateMachine(stack, 'SwapBatchBatchStateMachine', { groups: [GROUP], trigger: 'manual', reason: 'move demo-web to Spot' }, { waitMs: 0, retryMs: 0, executionName: 'demo-batch-dry-run' });
  const report = (dry.output as { wave: Extract<WavePlan, { action: 'dry-run' }> }).wave.report;
  timeline.step('swap batch (dry run)', `${dry.status}: budget ${report.budget} (swaps.budget 50 % of 3, rounded down), canary first; would run ${report.waves.length} waves: ${report.waves.map((w) => `[${w.map((i) => i.instanceId).join(', ')}]`).join(' ')}`);
  for (const w of report.windows) timeline.detail(`maintenance window ${w.window} for ${w.group}: ${w.open ? `open until ${w.closesAt}` : `closed, opens ${w.opensAt}`}`);

  // 2. Run now (urgent: the team approved running outside the window), with one swap's attach response lost.
  timeline.step('operator', 'starts the batch for real: urgent (outside the weekend window), dry-run off for this request');
  let attaches = 0;
  // What the workflows do, printed as it happens (the wrappers see each state's input and result).
  let swaps = 0;
  const faults: Record<string, TaskWrapper> = {
    'Attach the replacement to the group': async (input, real) => {
      const out = await real(input);
      if (++attaches === 2) {
        timeline.fail('fault injected: the response of "Attach the replacement to the group" is lost after the attach');
        throw Object.assign(new Error('the response was lost'), { name: 'States.TaskFailed' });
      }
      return out;
    },
    'Plan the next wave': async (input, real) => {
      const plan = (await real(input)) as WavePlan;
      if (plan.action === 'swap') timeline.step('swap batch', `${plan.canary ? 'canary' : `wave ${plan.wave}`}: swap ${plan.items.map((i) => i.request.instanceId).join(', ')} (budget ${plan.budget})`);
      else timeline.step('swap batch', `${plan.action}: ${plan.reason}`);
      return plan;
    },
    'Swap one instance and wait for the outcome': async (input, real) => {
      const n = ++swaps;
      try {
        const out = await real(input);
        timeline.ok(`swap ${n}: On-Demand replaced by Spot (child execution ${(input as { Name: string }).Name})`);
        return out;
      } catch (error) {
        timeline.fail(`swap ${n}: ended ${(JSON.parse((error as Error).message) as { Error: string }).Error}; the batch counts it and goes on`);
        throw error;
      }
    },
    'Roll back what the swap did': async (input, real) => {
      const out = (await real(input)) as { actions: { kind: string }[] };
      timeline.step('swap rollback', `observed the group and compensated: ${out.actions.map((a) => a.kind).join(', ')}`);
      timeline.step('fleet', `after the rollback: ${await describe()}`);
      return out;
    },
    "Check the fleet's health": async (input, real) => {
      const health = (await real(input)) as { healthy: boolean; reasons: string[] };
      timeline.detail(health.healthy ? 'health gate passed: group at desired capacity, all InService, no alarm' : `health gate: ${health.reasons.join('; ')}`);
      return health;
    },
  };
  // Every Task of both workflows, sampled before and after: the lowest InService count is what the demo reports.
  const watch = watchInService([...stack.stateMachines.values()].map((m) => m.definition), [GROUP], faults);
  const run = await runStateMachine(stack, 'SwapBatchBatchStateMachine', { groups: [GROUP], trigger: 'manual', reason: 'move demo-web to Spot', urgent: true, dryRun: false }, { waitMs: 0, retryMs: 0, executionName: 'demo-batch', around: watch.around });
  let entries = 0;
  for await (const e of ledger.entries()) if (String(e.eventId).startsWith('demo-batch') && String(e.eventId) !== 'demo-batch-dry-run') entries += 1;
  (run.status === 'SUCCEEDED' ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(
    `batch ${run.status} in ${run.transitions} state transitions, plus ${run.children.reduce((n, c) => n + c.transitions, 0)} in its ${run.children.length} swap executions`,
  );
  timeline.step('fleet', `group ${GROUP}: ${await describe()}`);
  timeline.detail(`lowest InService count seen around any step: ${watch.minInService()} (of 3), over ${watch.samples()} samples; ${entries} ledger entries for this batch and its swaps`);
}
