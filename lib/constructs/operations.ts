import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { CIRCUIT_BREAKER_METRIC } from '../../functions/enforcement/steps';
import { HANDLED_EVENTS } from '../../functions/interruption/events';
import { WASTE_KINDS } from '../../functions/waste/policy';
import { CLEANUP_CIRCUIT_BREAKER_METRIC } from '../../functions/waste/steps';
import type { FleetwardenConfig } from '../config';
import type { SwapBatch } from './batch';
import type { NodeDrift } from './drift';
import type { Enforcement } from './enforcement';
import { FleetFunction, METRICS_NAMESPACE } from './fleet-function';
import { DeadLetterQueue, FleetQueue } from './fleet-queue';
import type { InterruptionIntelligence } from './interruption';
import type { KubernetesNodes } from './kubernetes';
import type { LedgerAudit } from './ledger';
import type { StateStore } from './state-store';
import type { NodeSwap } from './swap';
import type { Waste } from './waste';
import type { Workloads } from './workloads';

export interface OperationsProps {
  config: FleetwardenConfig;
  store: StateStore;
  ledger: LedgerAudit;
  interruptions: InterruptionIntelligence;
  enforcement: Enforcement;
  waste: Waste;
  swaps: NodeSwap;
  batches: SwapBatch;
  drift?: NodeDrift;
  kubernetes?: KubernetesNodes;
  /** Workload drift (a desired state is deployed): its detector's metrics and the rollback workflow's outcomes. */
  workloads?: Workloads;
}

/** CloudWatch refuses an alarm whose period times its evaluation periods exceeds seven days. */
const MAX_ALARM_RANGE = Duration.days(7);

/**
 * The operator's surfaces in CloudWatch: one dashboard (interruptions, quarantines, swaps and
 * drains, flags and actions, waste, node and workload drift, the ledger, dead letters, functions
 * and workflows) and the alarms the per-resource conventions do not already raise: a timed-out
 * execution of each workflow, a tripped circuit breaker (enforcement, waste cleanup) and a ledger
 * digest older than twice its schedule. Every dead-letter queue and every failed execution already
 * alarms where the queue or workflow is built (FleetQueue, DeadLetterQueue, fleetStateMachine).
 * Every alarm notifies the notification topic.
 *
 * Graphs read the metrics the functions emit with the dimensions they emit them with: Powertools
 * adds `service` (the function's service name) to every metric, and a metric emitted with an
 * extra dimension is a series of its own.
 *
 * Built last in the stack: it watches every function, dead-letter queue and workflow built before it.
 */
export class Operations extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  /** The alarms this construct adds (the per-resource ones live with their resources). */
  readonly alarms: cloudwatch.Alarm[] = [];
  /** The stale-digest alarm's window: twice the longest gap between two scheduled digests. */
  readonly digestWindow: Duration;

  constructor(scope: Construct, id: string, props: OperationsProps) {
    super(scope, id);
    const { config, store, ledger, interruptions, enforcement, waste, swaps, batches, drift, kubernetes, workloads } = props;
    const stack = Stack.of(this);
    const notify = new cwActions.SnsAction(store.topic);
    const alarm = (alarmId: string, alarmProps: cloudwatch.AlarmProps): cloudwatch.Alarm => {
      const created = new cloudwatch.Alarm(this, alarmId, { ...alarmProps, alarmName: `${stack.stackName}: ${alarmProps.alarmName}` });
      created.addAlarmAction(notify);
      this.alarms.push(created);
      return created;
    };

    // What to do when an execution of each workflow times out; any other workflow gets the generic advice.
    const whenTimedOut = new Map<sfn.StateMachine, string>([
      [ledger.stateMachine, `Nothing was signed by this run. Read the execution history for the slow step; the next scheduled run tries again. Run \`fleetwarden ledger verify --stack ${stack.stackName}\` if runs keep timing out.`],
      [enforcement.stateMachine, `Flags not acted on stay open for the next sweep. Read the execution history for the slow batch (an account-region that does not answer); list the open flags with \`fleetwarden flags --stack ${stack.stackName}\`.`],
      [waste.stateMachine, `Marked findings not cleaned up wait for the next scan. Read the execution history for the slow step; list the findings with \`fleetwarden findings --stack ${stack.stackName}\`.`],
      [swaps.stateMachine, 'ReapSwap rolls back what the swap still held (its own alarms fire if it cannot). Follow it with `fleetwarden swap status --execution ARN` and check the group is back at its capacity.'],
      [swaps.reaper, 'The rollback of a stopped swap did not finish: the group may still hold the replacement, a raised MaxSize or suspended processes, and the group lock. Read the execution history and finish the rollback by hand.'],
      [batches.stateMachine, 'The batch ran out of time (a maintenance window too far away, or waves too slow): swaps already done stay done. Read the execution history, then start a new batch for the instances left.'],
    ]);
    if (workloads) {
      whenTimedOut.set(
        workloads.stateMachine,
        `The next drift cycle records it as a failed rollback (WorkloadRollbackFailed) and never starts it again; the drift stays open, alerted. Read the execution history for the slow step and check the workload (kubectl rollout status); \`fleetwarden status --stack ${stack.stackName}\` counts the drifts whose rollback failed.`,
      );
    }

    // Everything the stack built before this construct: every function, dead-letter queue and workflow is watched.
    const built = stack.node.findAll();
    const functions = built.filter((c): c is FleetFunction => c instanceof FleetFunction);
    const workflows = built.filter((c): c is sfn.StateMachine => c instanceof sfn.StateMachine);
    const deadLetterQueues = built.flatMap((c) =>
      c instanceof FleetQueue ? [{ where: placeInStack(c), queue: c.deadLetterQueue }] : c instanceof DeadLetterQueue ? [{ where: placeInStack(c), queue: c.queue }] : [],
    );

    // A timed-out execution runs no Catch and is not counted as failed: it gets its own alarm.
    for (const machine of workflows) {
      const name = stateMachineName(machine);
      alarm(`${pascal(name)}TimedOutAlarm`, {
        alarmName: `an execution of ${name} timed out`,
        alarmDescription: whenTimedOut.get(machine) ?? 'The execution ran past its timeout and ran no Catch. Read its execution history for the slow step and undo by hand what it left half done.',
        metric: machine.metricTimedOut({ period: Duration.minutes(5), statistic: 'Sum' }),
        threshold: 1,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      });
    }

    // A tripped breaker acted on nothing; the plan and report steps count it 1 (0 otherwise).
    const { circuitBreaker: sweepBreaker } = config.policies.enforcement;
    const enforcementBreaker = emitted(enforcement.steps, CIRCUIT_BREAKER_METRIC, { statistic: 'Maximum', period: Duration.minutes(5) });
    alarm('EnforcementCircuitBreakerAlarm', {
      alarmName: 'the enforcement circuit breaker tripped: no instance was stopped or terminated',
      alarmDescription: `A sweep planned more acts than the breaker allows (${sweepBreaker.maxActionsPerRun} per run, ${sweepBreaker.maxPercentOfFleet} % of the fleet in scope), so it acted on none. Read the flags with \`fleetwarden flags --stack ${stack.stackName}\` and the enforcement.circuit-breaker-tripped ledger entry: a real wave of unauthorized instances is acted on after raising policies.enforcement.circuitBreaker; a misconfigured authorization rule is fixed first.`,
      metric: enforcementBreaker,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    const { circuitBreaker: cleanupBreaker } = config.policies.waste.cleanup;
    const wasteBreaker = emitted(waste.steps, CLEANUP_CIRCUIT_BREAKER_METRIC, { statistic: 'Maximum', period: Duration.minutes(5) });
    alarm('WasteCleanupCircuitBreakerAlarm', {
      alarmName: 'the waste cleanup circuit breaker tripped: nothing was removed',
      alarmDescription: `A scan planned more cleanups than the breaker allows (${cleanupBreaker.maxActionsPerRun} per run, ${cleanupBreaker.maxPercentOfFleet} % of the resources in scope), so it removed none. Read the marked findings with \`fleetwarden findings --stack ${stack.stackName}\` and the waste.circuit-breaker-tripped ledger entry: if they are all waste, raise policies.waste.cleanup.circuitBreaker; if not, fix the waste policy first.`,
      metric: wasteBreaker,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    // A run that succeeds, with or without anything new to sign, leaves the ledger digested up to
    // its tip; no successful run within twice the schedule's longest gap means the newest digest is
    // at least that old. No run at all (the schedule disabled, deliveries failing) is no data: stale.
    this.digestWindow = Duration.minutes(2 * longestScheduleGap(config.ledger.digestSchedule, 'ledger.digestSchedule').toMinutes());
    if (this.digestWindow.toSeconds() > MAX_ALARM_RANGE.toSeconds()) {
      throw new Error(
        `ledger.digestSchedule "${config.ledger.digestSchedule}": twice its longest gap is ${this.digestWindow.toHumanString()}, longer than the 7 days a CloudWatch alarm can look back; schedule the digest at least every 3.5 days`,
      );
    }
    const digestsSucceeded = ledger.stateMachine.metricSucceeded({ period: this.digestWindow, statistic: 'Sum' });
    const staleDigest = alarm('StaleLedgerDigestAlarm', {
      alarmName: `the newest ledger digest is older than ${this.digestWindow.toHumanString()} (twice its schedule)`,
      alarmDescription: `No LedgerDigest run succeeded in ${this.digestWindow.toHumanString()} (schedule: ${config.ledger.digestSchedule}), so entries written since are covered by no signed digest. Check that the DigestSchedule rule is enabled and read the failed or timed-out executions of fleetwarden-ledger-digest; then run \`fleetwarden ledger verify --stack ${stack.stackName}\`. Right after a first deploy this alarm fires until the first run.`,
      metric: digestsSucceeded,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.BREACHING,
    });

    const fiveMinutes = Duration.minutes(5);
    const graph = (title: string, left: cloudwatch.IMetric[], options: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, period: fiveMinutes, ...options });
    const sum = (fn: FleetFunction, name: string, label: string, period = fiveMinutes) => emitted(fn, name, { statistic: 'Sum', label, period });

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: `${stack.stackName}-${stack.region}`,
      defaultInterval: Duration.days(1),
    });
    // Alarms of the whole stack, including those each queue and workflow raises itself.
    const everyAlarm = stack.node.findAll().filter((c): c is cloudwatch.Alarm => c instanceof cloudwatch.Alarm);
    this.dashboard.addWidgets(
      new cloudwatch.TextWidget({
        markdown: `# Fleetwarden operations\nEvery alarm notifies the notification topic and says in its description what to do. Audit the ledger with \`fleetwarden ledger verify --stack ${stack.stackName}\`.`,
        width: 24,
        height: 2,
      }),
      new cloudwatch.AlarmStatusWidget({ title: 'Which Fleetwarden alarms are firing?', alarms: everyAlarm, width: 24, height: Math.max(3, Math.ceil(everyAlarm.length / 4) + 1) }),
    );

    const ingest = interruptions.ingest;
    this.dashboard.addWidgets(
      graph(
        'How many interruption events were ingested, by event type?',
        HANDLED_EVENTS.map((e) => emitted(ingest, 'InterruptionEvents', { statistic: 'Sum', label: e.detailType, period: fiveMinutes, dimensions: { DetailType: e.detailType } })),
        { stacked: true },
      ),
      new cloudwatch.LogQueryWidget({
        title: 'Where were instances interrupted, by environment and pool?',
        logGroupNames: [ingest.logGroup.logGroupName],
        queryLines: [
          'filter message = "interruption ingested"',
          'fields jsonParse(@message) as line',
          'unnest line.outcome.instances into instance',
          // A redelivered pool signal is recorded once and reported with the action "none".
          'filter instance.action != "none"',
          'fields line.outcome.environment as environment, instance.pool as pool, line.kind as kind',
          'stats count(*) as interruptions by environment, pool, kind',
          'sort interruptions desc',
          'limit 50',
        ],
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 8,
        height: 6,
      }),
      graph('How many pools are quarantined?', [
        emitted(interruptions.cleanup, 'QuarantinesActive', { statistic: 'Maximum', label: 'In quarantine (every 15 minutes)', period: Duration.minutes(15) }),
        sum(ingest, 'PoolsQuarantined', 'Newly quarantined', Duration.minutes(15)),
        sum(interruptions.cleanup, 'QuarantinesReleased', 'Released', Duration.minutes(15)),
      ]),
    );

    const swapSteps = swaps.steps;
    this.dashboard.addWidgets(
      graph('How many swaps started, and how did they end?', [
        swaps.stateMachine.metricStarted({ statistic: 'Sum', label: 'Swap executions started', period: fiveMinutes }),
        sum(swapSteps, 'SwapsSucceeded', 'Succeeded'),
        sum(swapSteps, 'SwapsRolledBack', 'Rolled back (by the swap or ReapSwap)'),
        sum(swapSteps, 'SwapsFailed', 'Could not be planned'),
        sum(swapSteps, 'SwapsLockHeld', 'Refused: another swap held the group'),
      ]),
      graph('How are swap batches going?', [
        sum(batches.steps, 'BatchSwapsStarted', 'Swaps started by waves'),
        sum(batches.steps, 'BatchesCompleted', 'Batches completed'),
        sum(batches.steps, 'BatchesHalted', 'Batches halted'),
        sum(batches.steps, 'BatchHealthGateFailures', 'Health gates failed'),
      ]),
      kubernetes
        ? graph(
            'How long do node drains take?',
            [
              emitted(kubernetes.drain, 'DrainDuration', { statistic: 'p50', label: 'Median drain (ms)', period: fiveMinutes }),
              emitted(kubernetes.drain, 'DrainDuration', { statistic: 'Maximum', label: 'Longest drain (ms)', period: fiveMinutes }),
            ],
            {
              right: [sum(kubernetes.drain, 'NodesDrained', 'Nodes drained'), sum(kubernetes.drain, 'NodeDrainsFailed', 'Drains that did not complete')],
              leftYAxis: { label: 'ms', showUnits: false },
            },
          )
        : new cloudwatch.TextWidget({ markdown: '### Node drains\nNo Kubernetes cluster is configured (`kubernetes.clusters`): nothing is drained.', width: 8, height: 6 }),
    );

    this.dashboard.addWidgets(
      graph(
        'How many instances were flagged, and acted on after their grace?',
        [
          sum(enforcement.check, 'InstancesFlagged', 'Flagged on their event'),
          sum(enforcement.steps, 'InstancesFlagged', 'Flagged by the sweep'),
          sum(enforcement.check, 'FlagsChanged', 'Flags changed on an event'),
          sum(enforcement.steps, 'PlannedActions', 'Acts planned by the sweep'),
          sum(enforcement.steps, 'EnforcementActions', 'Instances stopped or terminated'),
        ],
        { right: [enforcementBreaker.with({ label: 'Circuit breaker tripped (1)' })] },
      ),
      graph(
        'How much waste was found, in dollars a month?',
        [
          emitted(waste.steps, 'WasteMonthlyUsd', { statistic: 'Maximum', label: 'All kinds (USD a month)', period: Duration.days(1) }),
          ...WASTE_KINDS.map((kind) => emitted(waste.steps, 'WasteMonthlyUsd', { statistic: 'Maximum', label: `${kind} (USD a month)`, period: Duration.days(1), dimensions: { Kind: kind } })),
        ],
        {
          period: Duration.days(1),
          right: [sum(waste.steps, 'WasteCleaned', 'Resources cleaned up', Duration.days(1)), wasteBreaker.with({ label: 'Cleanup circuit breaker tripped (1)', period: Duration.days(1) })],
        },
      ),
      drift
        ? graph('How many drifted nodes were found, and batches started to repair them?', [
            emitted(drift.detector, 'DriftedNodes', { statistic: 'Maximum', label: 'Drifted nodes (a cycle)', period: fiveMinutes }),
            sum(drift.detector, 'DriftBatchesStarted', 'Repair batches started'),
          ])
        : new cloudwatch.TextWidget({ markdown: '### Node drift\nNo swap group has `driftRepair`: node drift is not watched.', width: 8, height: 6 }),
    );

    // WorkloadDrifts is emitted every cycle (a level); opened and started only when not zero (no data is none).
    this.dashboard.addWidgets(
      workloads
        ? graph(
            'How many workload drifts were seen and opened, and how did their rollbacks end?',
            [
              emitted(workloads.detector, 'WorkloadDrifts', { statistic: 'Maximum', label: 'Drifts seen (a cycle, every cluster)', period: fiveMinutes }),
              sum(workloads.detector, 'WorkloadDriftsOpened', 'Drifts opened'),
              sum(workloads.detector, 'WorkloadRollbacksStarted', 'Rollbacks started'),
            ],
            {
              right: [
                workloads.stateMachine.metricSucceeded({ statistic: 'Sum', label: 'Rollbacks settled (or nothing left to do)', period: fiveMinutes }),
                workloads.stateMachine.metricFailed({ statistic: 'Sum', label: 'Rollbacks failed or not settled (alerted, not tried again)', period: fiveMinutes }),
              ],
            },
          )
        : new cloudwatch.TextWidget({
            markdown: '### Workload drift\nNo desired state is deployed (no manifests under `kubernetes.desiredState.path` for a configured cluster): workload drift is not watched.',
            width: 8,
            height: 6,
          }),
    );

    const ledgerTable = store.tables.ledger;
    const ledgerWrites = (operation: string, label: string) =>
      ledgerTable.metricSuccessfulRequestLatency({ dimensionsMap: { TableName: ledgerTable.tableName, Operation: operation }, statistic: 'SampleCount', label, period: fiveMinutes });
    this.dashboard.addWidgets(
      graph('How many ledger writes succeeded, and how many were refused by their condition?', [
        ledgerWrites('PutItem', 'Single-item writes (entries, pending entries, dedupe markers)'),
        ledgerWrites('TransactWriteItems', 'Transactions (entries with their dedupe markers)'),
        ledgerTable.metricConditionalCheckFailedRequests({ statistic: 'Sum', label: 'Single-item writes refused by their condition (a lost race for the tip, or a duplicate)', period: fiveMinutes }),
      ]),
      new cloudwatch.AlarmWidget({ title: `Has a ledger digest succeeded in the last ${this.digestWindow.toHumanString()}?`, alarm: staleDigest, width: 8, height: 6 }),
      new cloudwatch.LogQueryWidget({
        title: 'When did the latest digest runs verify the ledger, and up to which entry?',
        logGroupNames: [ledger.digestFunction.logGroup.logGroupName],
        queryLines: ['filter message = "ledger digest planned"', 'fields @timestamp, chain, toSeq, hasNew', 'sort @timestamp desc', 'limit 10'],
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 8,
        height: 6,
      }),
    );

    this.dashboard.addWidgets(
      graph(
        'How many messages wait in each dead-letter queue?',
        deadLetterQueues.map(({ where, queue }) => queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', label: where, period: Duration.minutes(1) })),
        {
          right: [interruptions.ingest, enforcement.check, ...(kubernetes ? [kubernetes.drain] : [])].map((fn) => sum(fn, 'EventsParked', `Parked by ${fn.serviceName}`)),
        },
      ),
      graph(
        'Which functions failed or were throttled?',
        functions.map((fn) => fn.fn.metricErrors({ statistic: 'Sum', label: `${fn.node.id} errors`, period: fiveMinutes })),
        { right: functions.map((fn) => fn.fn.metricThrottles({ statistic: 'Sum', label: `${fn.node.id} throttles`, period: fiveMinutes })) },
      ),
      graph(
        'Which workflow executions failed, timed out or were aborted?',
        workflows.map((machine, i) =>
          new cloudwatch.MathExpression({
            expression: `failed${i} + timedOut${i} + aborted${i}`,
            usingMetrics: {
              [`failed${i}`]: machine.metricFailed({ statistic: 'Sum', period: fiveMinutes }),
              [`timedOut${i}`]: machine.metricTimedOut({ statistic: 'Sum', period: fiveMinutes }),
              [`aborted${i}`]: machine.metricAborted({ statistic: 'Sum', period: fiveMinutes }),
            },
            label: stateMachineName(machine),
            period: fiveMinutes,
          }),
        ),
      ),
    );
  }
}

/** A metric as the function emits it: Powertools' `service` dimension, plus any the emitter adds. */
function emitted(fn: FleetFunction, metricName: string, options: { statistic: string; label?: string; period: Duration; dimensions?: Record<string, string> }): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: fn.serviceName, ...options.dimensions },
    statistic: options.statistic,
    label: options.label,
    period: options.period,
  });
}

/** The name the workflow's construct gave it (every Fleetwarden state machine is named). */
function stateMachineName(machine: sfn.StateMachine): string {
  const name = (machine.node.defaultChild as sfn.CfnStateMachine).stateMachineName;
  if (!name) throw new Error(`${machine.node.path}: every Fleetwarden state machine has a name`);
  return name;
}

/** Where a construct sits in its stack, e.g. `Interruptions/Events`, as the dead-letter alarms name it. */
const placeInStack = (construct: Construct): string => construct.node.path.slice(Stack.of(construct).node.path.length + 1);

const pascal = (name: string): string => name.replace(/(^|-)([a-z])/g, (_, _dash: string, c: string) => c.toUpperCase());

const RATE_UNITS: Readonly<Record<string, number>> = { minute: 1, minutes: 1, hour: 60, hours: 60, day: 24 * 60, days: 24 * 60 };

/**
 * The longest time between two firings of an EventBridge schedule expression: `rate(N unit)`, or
 * `cron(minutes hours day-of-month month day-of-week year)` with numbers, names, `*`, `?`, ranges,
 * lists and steps, any year (UTC). Anything else throws, naming `key`, so that synth fails there.
 */
export function longestScheduleGap(expression: string, key: string): Duration {
  const fail = (why: string): never => {
    throw new Error(`${key} "${expression}": ${why}`);
  };
  const rate = /^rate\((\d+) (minutes?|hours?|days?)\)$/.exec(expression.trim());
  if (rate) {
    const minutes = Number(rate[1]) * RATE_UNITS[rate[2]!]!;
    if (minutes < 1) fail('a rate must be at least 1');
    return Duration.minutes(minutes);
  }
  const cron = /^cron\((.+)\)$/.exec(expression.trim());
  if (!cron) return fail('not a rate(...) or cron(...) schedule expression, so its interval cannot be derived');
  const fields = cron[1]!.trim().split(/\s+/);
  if (fields.length !== 6) fail(`a cron expression has 6 fields (minutes hours day-of-month month day-of-week year), this one ${fields.length}`);
  const [minuteField, hourField, domField, monthField, dowField, yearField] = fields as [string, string, string, string, string, string];
  if (yearField !== '*') fail('only cron expressions for every year (year field *) have a fixed interval');
  const months = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
  const days = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
  const minutes = cronField(minuteField, 0, 59, [], fail);
  const hours = cronField(hourField, 0, 23, [], fail);
  const dom = domField === '?' ? undefined : new Set(cronField(domField, 1, 31, [], fail));
  const month = new Set(cronField(monthField, 1, 12, months, fail));
  const dow = dowField === '?' ? undefined : new Set(cronField(dowField, 1, 7, days, fail));
  if ((dom === undefined) === (dow === undefined)) fail('exactly one of day-of-month and day-of-week must be ?');

  // A leap year and a week more: every pattern of months, days of the month and weekdays.
  const start = Date.UTC(2028, 0, 1);
  const end = Date.UTC(2029, 0, 8);
  let previous: number | undefined;
  let longest = 0;
  for (let day = start; day < end; day += 86_400_000) {
    const date = new Date(day);
    if (!month.has(date.getUTCMonth() + 1)) continue;
    if (dom ? !dom.has(date.getUTCDate()) : !dow!.has(date.getUTCDay() + 1)) continue;
    for (const h of hours) {
      for (const m of minutes) {
        const at = day + (h * 60 + m) * 60_000;
        if (previous !== undefined) longest = Math.max(longest, at - previous);
        previous = at;
      }
    }
  }
  if (!longest) fail('it fires less than twice a year, so it has no interval to alarm on');
  return Duration.minutes(longest / 60_000);
}

/** The values one cron field allows, ascending; `names` are the field's names from `min` on. */
function cronField(field: string, min: number, max: number, names: string[], fail: (why: string) => never): number[] {
  const value = (text: string): number => {
    const named = names.indexOf(text.toUpperCase());
    const n = named >= 0 ? min + named : /^\d+$/.test(text) ? Number(text) : fail(`"${text}" in "${field}" is not a value this interval can be derived from (L, W and # are not supported)`);
    if (n < min || n > max) fail(`${n} in "${field}" is outside ${min}-${max}`);
    return n;
  };
  const values = new Set<number>();
  for (const part of field.split(',')) {
    const [range, stepText] = part.split('/') as [string, string | undefined];
    const step = stepText === undefined ? 1 : Number(stepText);
    if (!Number.isInteger(step) || step < 1) fail(`"${part}" has no valid step`);
    const [from, to] = range === '*' ? [min, max] : range.includes('-') ? (range.split('-').map(value) as [number, number]) : [value(range), stepText === undefined ? value(range) : max];
    if (from > to) fail(`"${part}" is a range that wraps around, which is not supported`);
    for (let n = from; n <= to; n += step) values.add(n);
  }
  return [...values].sort((a, b) => a - b);
}
