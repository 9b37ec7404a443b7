import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { CloudWatchClient, PutMetricAlarmCommand, SetAlarmStateCommand } from '@aws-sdk/client-cloudwatch';
import { CreateTagsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { windowState } from '../../functions/batch/window';
import { PROJECT_ROOT } from '../../lib/paths';
import { type LocalStack, provision } from '../../local/provision';
import { type ExecutionResult, type TaskHandler, runStateMachine } from '../../local/stepfunctions';
import { type CfnTemplate, synthTemplate } from '../../local/template';
import { type TaskWrapper, watchInService } from '../../local/fleet';
import { createGroup, group, orphans } from './swap-support';

const WINDOW = { cron: '0 2 * * SAT', durationMinutes: 240, timeZone: 'Europe/Paris' };
const ALARM = 'fw-batch-test-slo';

function config() {
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  return {
    ...base,
    swaps: {
      groups: [{ name: 'bw-window', maintenanceWindow: 'weekend' }],
      maintenanceWindows: { weekend: WINDOW },
      budget: { count: 1 },
      maxFailedSwaps: 1,
      healthGate: { settleSeconds: 30, checks: 3, alarmNames: [ALARM] },
    },
  };
}

let template: CfnTemplate;
let stack: LocalStack;
let groups = 0;

beforeAll(async () => {
  template = synthTemplate(config());
  stack = await provision(template);
  await awsClient(CloudWatchClient).send(
    new PutMetricAlarmCommand({ AlarmName: ALARM, MetricName: 'Errors', Namespace: 'Test', Statistic: 'Sum', Period: 60, EvaluationPeriods: 1, Threshold: 1, ComparisonOperator: 'GreaterThanOrEqualToThreshold' }),
  );
  await setAlarm('OK');
});

afterEach(() => {
  vi.useRealTimers();
});

async function setAlarm(state: 'OK' | 'ALARM') {
  await awsClient(CloudWatchClient).send(new SetAlarmStateCommand({ AlarmName: ALARM, StateValue: state, StateReason: 'test' }));
}

const machines = () => [...stack.stateMachines.values()];
const definitionOf = (prefix: string) => machines().find((m) => m.logicalId.startsWith(prefix))!.definition;

/** Every Task of the batch and of the swap it runs, wrapped: InService of the watched groups sampled around each. */
const watch = (names: string[], inject?: Record<string, TaskWrapper>) => watchInService([definitionOf('SwapsSwapStateMachine'), definitionOf('SwapBatchBatchStateMachine')], names, inject);

async function batch(input: Record<string, unknown>, options: { around?: Record<string, (input: unknown, real: TaskHandler) => Promise<unknown>>; name?: string } = {}): Promise<ExecutionResult> {
  return runStateMachine(stack, 'SwapBatchBatchStateMachine', input, { around: options.around, waitMs: 0, retryMs: 0, executionName: options.name ?? `batch-${++groups}` });
}

async function ledger(batchId: string) {
  const entries: { action: string; reason: string; eventId: string }[] = [];
  for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) {
    if (String(e.eventId).startsWith(batchId)) entries.push({ action: String(e.action), reason: String(e.reason), eventId: String(e.eventId) });
  }
  return entries;
}

const batchActions = async (batchId: string) => (await ledger(batchId)).filter((e) => e.action.startsWith('batch.')).map((e) => e.action);
const spotCount = async (name: string) => {
  const g = await group(name);
  const ids = g.instances.map((i) => i.id);
  const { DescribeInstancesCommand } = await import('@aws-sdk/client-ec2');
  const out = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: ids }));
  return out.Reservations!.flatMap((r) => r.Instances ?? []).filter((i) => i.InstanceLifecycle === 'spot').length;
};
const STATUS = "Check the replacement's status checks";

describe('SwapBatch state machine (synthesized definitions, aws-local-stepfunctions, moto)', () => {
  it('swaps two groups in waves: a canary of one, then up to the budget with one swap per group; capacity never below N', async () => {
    const a = `bw-a-${++groups}`;
    const b = `bw-b-${groups}`;
    await createGroup(a, 2);
    await createGroup(b, 2);
    const seen = watch([a, b]);
    const run = await batch({ groups: [a, b], budget: { count: 2 }, dryRun: false }, { around: seen.around, name: `bw-waves-${groups}` });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(run.children.map((c) => c.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    const actions = await batchActions(`bw-waves-${groups}`);
    expect(actions).toEqual(['batch.wave-planned', 'batch.wave-planned', 'batch.wave-planned', 'batch.planned', 'batch.completed']);
    const waves = (await ledger(`bw-waves-${groups}`)).filter((e) => e.action === 'batch.wave-planned').map((e) => e.reason);
    expect(waves[0]).toMatch(/^canary: swap i-\w+ \(budget 2\)$/);
    expect(waves[1]).toMatch(/^wave 2: swap i-\w+, i-\w+ \(budget 2\)$/);
    expect(waves[2]).toMatch(/^wave 3: swap i-\w+ \(budget 2\)$/);
    for (const name of [a, b]) {
      expect(await group(name)).toMatchObject({ desired: 2, max: 2, inService: 2, suspended: [] });
      expect(await spotCount(name)).toBe(2);
      expect(seen.minInService(name)).toBeGreaterThanOrEqual(2);
    }
    expect(await orphans()).toEqual([]);
  });

  it('a rolled-back swap is retried in a later wave and the batch completes (within maxFailedSwaps)', async () => {
    const name = `bw-retry-${++groups}`;
    await createGroup(name, 3);
    // The second swap's replacement never passes its status checks: that swap rolls back.
    let statusCalls = 0;
    const seen = watch([name], {
      [STATUS]: async (input, real) => {
        statusCalls += 1;
        if (statusCalls === 2) throw Object.assign(new Error('timed out'), { name: 'States.Timeout' });
        return real(input);
      },
    });
    const id = `bw-retry-${groups}`;
    const run = await batch({ groups: [name], dryRun: false }, { around: seen.around, name: id });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(run.children.map((c) => c.status)).toEqual(['SUCCEEDED', 'FAILED', 'SUCCEEDED', 'SUCCEEDED']);
    expect(run.children[1]!.error).toBe('Swap.RolledBack');
    expect(await batchActions(id)).toEqual(['batch.wave-planned', 'batch.wave-planned', 'batch.wave-planned', 'batch.wave-planned', 'batch.planned', 'batch.completed']);
    expect(await group(name)).toMatchObject({ desired: 3, max: 3, inService: 3, suspended: [] });
    expect(await spotCount(name)).toBe(3);
    expect(seen.minInService(name)).toBeGreaterThanOrEqual(3);
    expect(await orphans()).toEqual([]);
    const swapLedger = (await ledger(id)).filter((e) => e.action === 'swap.rolled-back');
    expect(swapLedger).toHaveLength(1);
  });

  it('halts when the canary is rolled back: nothing else is touched, operators are alerted', async () => {
    const name = `bw-canary-${++groups}`;
    await createGroup(name, 3);
    const seen = watch([name], { [STATUS]: async () => Promise.reject(Object.assign(new Error('timed out'), { name: 'States.Timeout' })) });
    const id = `bw-canary-${groups}`;
    const run = await batch({ groups: [name], dryRun: false }, { around: seen.around, name: id });

    expect(run).toMatchObject({ status: 'FAILED', error: 'Batch.Halted' });
    expect(run.children).toHaveLength(1);
    expect(await batchActions(id)).toEqual(['batch.wave-planned', 'batch.planned', 'batch.halted']);
    const halted = (await ledger(id)).find((e) => e.action === 'batch.halted')!;
    expect(halted.reason).toMatch(/^the canary swap of i-\w+ was rolled back \(Swap\.RolledBack/);
    expect(await spotCount(name)).toBe(0);
    expect(await group(name)).toMatchObject({ desired: 3, max: 3, inService: 3, suspended: [] });
    expect(await orphans()).toEqual([]);
    expect(run.events.some((e) => e.state === 'Alert operators that the batch halted')).toBe(true);
  });

  it('halts once more swaps are rolled back than maxFailedSwaps allows', async () => {
    const name = `bw-maxfail-${++groups}`;
    await createGroup(name, 3);
    let statusCalls = 0;
    const seen = watch([name], {
      [STATUS]: async (input, real) => {
        statusCalls += 1;
        if (statusCalls === 1) return real(input); // the canary passes
        throw Object.assign(new Error('timed out'), { name: 'States.Timeout' });
      },
    });
    const id = `bw-maxfail-${groups}`;
    const run = await batch({ groups: [name], dryRun: false, maxFailedSwaps: 0 }, { around: seen.around, name: id });

    expect(run).toMatchObject({ status: 'FAILED', error: 'Batch.Halted' });
    expect(run.children.map((c) => c.status)).toEqual(['SUCCEEDED', 'FAILED']);
    expect((await ledger(id)).find((e) => e.action === 'batch.halted')!.reason).toBe('1 swaps were rolled back, more than the 0 this batch tolerates');
    expect(await spotCount(name)).toBe(1);
    expect(await orphans()).toEqual([]);
  });

  it('the health gate halts the batch while a configured alarm is in ALARM', async () => {
    const name = `bw-alarm-${++groups}`;
    await createGroup(name, 2);
    await setAlarm('ALARM');
    try {
      const id = `bw-alarm-${groups}`;
      const run = await batch({ groups: [name], dryRun: false }, { name: id });
      expect(run).toMatchObject({ status: 'FAILED', error: 'Batch.Halted' });
      expect(run.children).toHaveLength(1);
      expect(run.events.filter((e) => e.state === "Check the fleet's health" && e.type === 'StateEntered')).toHaveLength(3);
      expect((await ledger(id)).find((e) => e.action === 'batch.halted')!.reason).toBe(`health gate failed: alarm(s) in ALARM: ${ALARM}`);
      expect(await spotCount(name)).toBe(1);
    } finally {
      await setAlarm('OK');
    }
  });

  it('do-not-disrupt always wins: a tagged instance is excluded, urgent or not, named or not', async () => {
    const name = `bw-dnd-${++groups}`;
    const ids = await createGroup(name, 3);
    const tagged = ids.sort()[0]!;
    await awsClient(EC2Client).send(new CreateTagsCommand({ Resources: [tagged], Tags: [{ Key: 'fleetwarden:do-not-disrupt', Value: 'true' }] }));
    const id = `bw-dnd-${groups}`;
    const run = await batch({ groups: [name], dryRun: false, urgent: true, instanceIds: ids, trigger: 'drift' }, { name: id });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(run.children).toHaveLength(2);
    expect((await group(name)).instances.map((i) => i.id)).toContain(tagged);
    const done = (await ledger(id)).find((e) => e.action === 'batch.completed')!;
    expect(done.reason).toBe('every instance of the batch was handled');
    const plans = (await ledger(id)).filter((e) => e.action === 'batch.wave-planned');
    expect(plans.every((p) => !p.reason.includes(tagged))).toBe(true);
  });

  it('dry-run plans the waves and reports them without acting', async () => {
    const a = `bw-dry-a-${++groups}`;
    const b = `bw-dry-b-${groups}`;
    await createGroup(a, 3);
    await createGroup(b, 1);
    const id = `bw-dry-${groups}`;
    const run = await batch({ groups: [a, b], budget: { percent: 50 } }, { name: id });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(run.children).toHaveLength(0);
    const report = (run.output as { wave: { action: string; report: { budget: number; waves: { group: string }[][] } } }).wave;
    expect(report.action).toBe('dry-run');
    expect(report.report.budget).toBe(2);
    expect(report.report.waves.map((w) => w.map((i) => i.group))).toEqual([[a], [a, b], [a]]);
    expect(await batchActions(id)).toEqual(['batch.planned', 'batch.dry-run']);
    expect(await spotCount(a)).toBe(0);
  });

  it('waits for the maintenance window, then works through the group inside it', async () => {
    // A Monday noon in Paris: the weekend window (Saturday 02:00, 4 h) is closed.
    const monday = new Date('2026-11-23T11:00:00Z');
    vi.useFakeTimers({ toFake: ['Date'], now: monday });
    const opens = windowState(WINDOW, monday);
    expect(opens).toEqual({ open: false, opensAt: new Date('2026-11-28T01:00:00Z') });
    await createGroup('bw-window', 2);
    let plans = 0;
    const id = `bw-window-${++groups}`;
    const run = await batch(
      { groups: ['bw-window'], dryRun: false },
      {
        name: id,
        around: {
          'Plan the next wave': async (input, real) => {
            plans += 1;
            // The Wait state is skipped locally: the clock moves to the window's start instead.
            if (plans === 2) vi.setSystemTime(new Date('2026-11-28T01:00:30Z'));
            return real(input);
          },
        },
      },
    );
    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    expect(run.events.filter((e) => e.type === 'StateEntered' && e.state === 'Wait for the maintenance window to open')).toHaveLength(1);
    const entries = await ledger(id);
    expect(entries.find((e) => e.action === 'batch.waiting-for-window')!.reason).toBe('every remaining group is outside its maintenance window until 2026-11-28T01:00:00.000Z');
    expect(await spotCount('bw-window')).toBe(2);
  });

  it('a batch of a cluster with no configured group fails with the reason', async () => {
    const id = `bw-nocluster-${++groups}`;
    const run = await batch({ cluster: 'nowhere', dryRun: false }, { name: id });
    expect(run).toMatchObject({ status: 'FAILED', error: 'Batch.Failed' });
    expect((await ledger(id)).find((e) => e.action === 'batch.failed')!.reason).toMatch(/Terminal\.NoSuchGroups: no group of cluster nowhere is configured/);
  });
});
