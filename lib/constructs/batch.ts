import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { SwapBatchEnvSchema } from '../../functions/batch/handler/env';
import { BATCH_TIMEOUT_DAYS } from '../../functions/batch/model';
import type { FleetwardenConfig } from '../config';
import { accountInFinding, acknowledge, logicalIdOf } from '../nag';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine, logicStep } from './fleet-state-machine';
import type { StateStore } from './state-store';

export interface SwapBatchProps {
  config: FleetwardenConfig;
  store: StateStore;
  /** The single-swap workflow each instance of a wave runs (and waits for). */
  swap: sfn.IStateMachine;
}


/**
 * Batch swaps: a group's or a cluster's instances swapped in waves. The batch re-plans
 * before every wave from what is there (do-not-disrupt excluded, maintenance windows waited
 * for), runs a canary of one, then waves of up to the disruption budget, each instance through
 * the NodeSwap workflow (which rolls itself back), and passes a health gate after every wave
 * (groups at desired capacity, all InService, no configured alarm in ALARM). Too many roll-backs
 * or a failed gate halt it. Dry-run plans and reports. Configured groups get their schedules.
 */
export class SwapBatch extends Construct {
  readonly steps: FleetFunction;
  readonly stateMachine: sfn.StateMachine;
  readonly schedules: events.Rule[] = [];

  constructor(scope: Construct, id: string, props: SwapBatchProps) {
    super(scope, id);
    const { config, store } = props;
    const swaps = config.swaps;

    this.steps = new FleetFunction(this, 'BatchSteps', {
      entry: 'functions/batch/handler/handler.ts',
      description: 'Batch swap logic: plan each wave, health gate, record',
      envSchema: SwapBatchEnvSchema,
      environment: {
        LEDGER_TABLE_NAME: store.tables.ledger.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
        SWAP_GROUPS: JSON.stringify(swaps.groups),
        MAINTENANCE_WINDOWS: JSON.stringify(swaps.maintenanceWindows),
        BATCH_POLICY: JSON.stringify({ budget: swaps.budget, maxFailedSwaps: swaps.maxFailedSwaps, alarmNames: swaps.healthGate.alarmNames }),
      },
      config,
      timeout: Duration.minutes(1),
    });
    store.grantLedgerAppend(this.steps.role);
    store.grantDataKey(this.steps.role);
    this.steps.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    this.steps.allow(['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances', 'ec2:DescribeSubnets', 'cloudwatch:DescribeAlarms'], ['*']);
    acknowledge(this.steps, 'AwsSolutions-IAM5', 'Describe* calls support no resource-level permissions (read-only).', ['Resource::*']);

    this.stateMachine = this.build(config, store, props.swap);

    for (const group of swaps.groups.filter((g) => g.schedule)) {
      this.schedules.push(
        new events.Rule(this, `Schedule-${group.name.replace(/[^A-Za-z0-9]/g, '')}`, {
          description: `Batch swap of group ${group.name} on schedule`,
          schedule: events.Schedule.expression(group.schedule!),
          targets: [
            new targets.SfnStateMachine(this.stateMachine, {
              input: events.RuleTargetInput.fromObject({ groups: [group.name], trigger: 'schedule', reason: `scheduled batch of group ${group.name}` }),
              deadLetterQueue: store.asyncDeadLetters.queue,
              retryAttempts: 3,
              maxEventAge: Duration.hours(1),
            }),
          ],
        }),
      );
    }
  }

  private build(config: FleetwardenConfig, store: StateStore, swap: sfn.IStateMachine): sfn.StateMachine {
    const gate = config.swaps.healthGate;
    const step = (name: string, payload: Record<string, unknown>, resultPath: string | typeof sfn.JsonPath.DISCARD) => logicStep(this, name, this.steps.fn, payload, resultPath, Duration.minutes(1));
    const record = (name: string, outcome: string) => {
      const task = step(
        name,
        {
          step: 'record',
          outcome,
          state: { 'batchId.$': '$.batchId', 'request.$': '$.request', 'wave.$': '$.wave', 'health.$': '$.health', 'error.$': '$.error' },
        },
        sfn.JsonPath.DISCARD,
      );
      task.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
      return task;
    };
    const alert = (name: string) =>
      new tasks.SnsPublish(this, name, {
        topic: store.topic,
        subject: 'Fleetwarden swap batch halted',
        message: sfn.TaskInput.fromObject({ 'batchId.$': '$.batchId', 'request.$': '$.request', 'wave.$': '$.wave', 'health.$': '$.health' }),
        resultPath: sfn.JsonPath.DISCARD,
      });

    // `wave`, `health` and `error` exist from the start, so every recorder can name them.
    const start = new sfn.Pass(this, 'Start the batch', {
      parameters: {
        'request.$': '$',
        'batchId.$': '$$.Execution.Name',
        'startedAt.$': '$$.Execution.StartTime',
        results: [],
        wave: { action: 'none', progress: { wave: 0, attempts: [] } },
        health: { healthy: true, reasons: [] },
        healthChecks: { n: 0 },
        error: {},
      },
    });
    const failed = record('Record that the batch failed', 'failed').next(alert('Alert operators that the batch failed')).next(new sfn.Fail(this, 'The batch failed', { error: 'Batch.Failed' }));
    // The progress lives in the last plan ($.wave.progress) only: the state stays small.
    const plan = step('Plan the next wave', { step: 'plan-wave', 'request.$': '$.request', 'batchId.$': '$.batchId', 'startedAt.$': '$.startedAt', 'progress.$': '$.wave.progress', 'results.$': '$.results' }, '$.wave');
    plan.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });

    const halted = record('Record that the batch halted', 'halted').next(alert('Alert operators that the batch halted')).next(new sfn.Fail(this, 'The batch halted', { error: 'Batch.Halted', cause: 'See SwapBatchHalted on the Fleetwarden bus and the ledger' }));
    const completed = record('Record that the batch completed', 'completed').next(new sfn.Succeed(this, 'The batch is complete'));
    const planned = record('Record the dry-run plan of the batch', 'dry-run').next(new sfn.Succeed(this, 'Dry run: the batch was planned, nothing changed'));
    const clearResults = new sfn.Pass(this, "Clear the last wave's results", { result: sfn.Result.fromArray([]), resultPath: '$.results' });
    const waitWindow = new sfn.Wait(this, 'Wait for the maintenance window to open', { time: sfn.WaitTime.timestampPath('$.wave.until') });
    waitWindow.next(clearResults);
    clearResults.next(plan);

    // One wave: each instance through the NodeSwap workflow, waited for; a failed or rolled-back swap is a result, not an error.
    const swapOne = new tasks.StepFunctionsStartExecution(this, 'Swap one instance and wait for the outcome', {
      stateMachine: swap,
      integrationPattern: sfn.IntegrationPattern.RUN_JOB,
      input: sfn.TaskInput.fromJsonPathAt('$.request'),
      name: sfn.JsonPath.stringAt('$.executionName'),
      resultSelector: { 'status.$': '$.Status', 'output.$': '$.Output' },
      resultPath: '$.execution',
    });
    swapOne.addRetry({ errors: ['StepFunctions.SdkClientException', 'StepFunctions.ThrottlingException', 'StepFunctions.AWSStepFunctionsException'], maxAttempts: 5, interval: Duration.seconds(2), backoffRate: 2 });
    swapOne.addCatch(new sfn.Pass(this, 'The swap did not complete', { comment: 'Rolled back or refused: the next plan counts it against the batch.' }), { errors: ['States.ALL'], resultPath: '$.error' });
    const wave = new sfn.Map(this, 'Swap every instance of the wave', {
      itemsPath: '$.wave.items',
      itemSelector: { 'request.$': '$$.Map.Item.Value.request', 'executionName.$': '$$.Map.Item.Value.executionName' },
      resultPath: '$.results',
    });
    wave.itemProcessor(swapOne);
    wave.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });

    const settle = new sfn.Wait(this, 'Let the fleet settle after the wave', { time: sfn.WaitTime.duration(Duration.seconds(gate.settleSeconds)) });
    const resetChecks = new sfn.Pass(this, 'Start the health gate', { result: sfn.Result.fromObject({ n: 0 }), resultPath: '$.healthChecks' });
    const check = step("Check the fleet's health", { step: 'health', 'request.$': '$.request' }, '$.health');
    check.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });
    const countCheck = new sfn.Pass(this, 'Count the health check', { parameters: { 'n.$': 'States.MathAdd($.healthChecks.n, 1)' }, resultPath: '$.healthChecks' });
    const waitCheck = new sfn.Wait(this, 'Wait before checking the health again', { time: sfn.WaitTime.duration(Duration.minutes(1)) });
    waitCheck.next(countCheck).next(check);
    check.next(
      new sfn.Choice(this, 'Is the fleet healthy?')
        .when(sfn.Condition.booleanEquals('$.health.healthy', true), plan)
        .when(sfn.Condition.numberGreaterThanEquals('$.healthChecks.n', gate.checks - 1), halted)
        .otherwise(waitCheck),
    );
    wave.next(settle).next(resetChecks).next(check);

    plan.next(
      new sfn.Choice(this, 'What does the plan say?')
        .when(sfn.Condition.stringEquals('$.wave.action', 'swap'), wave)
        .when(sfn.Condition.stringEquals('$.wave.action', 'wait'), waitWindow)
        .when(sfn.Condition.stringEquals('$.wave.action', 'done'), completed)
        .when(sfn.Condition.stringEquals('$.wave.action', 'dry-run'), planned)
        .otherwise(halted),
    );

    const stateMachine = fleetStateMachine(this, 'BatchStateMachine', {
      stateMachineName: 'fleetwarden-swap-batch',
      definition: start.next(plan),
      // Long enough to wait a week for a maintenance window and still work through it; the
      // planner does not wait for a window past this (less a margin): it halts with the reason.
      timeout: Duration.days(BATCH_TIMEOUT_DAYS),
      store,
    });
    const stack = Stack.of(this);
    acknowledge(
      stateMachine,
      'AwsSolutions-IAM5',
      'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to one function (":*" covers its versions); a .sync child execution is described and stopped by ARN (executions of one state machine), and its completion rule is the managed rule Step Functions creates.',
      [
        'Resource::*',
        `Resource::<${logicalIdOf(this.steps.fn)}.Arn>:*`,
        `Resource::arn:<AWS::Partition>:states:${stack.region}:${accountInFinding(this)}:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${logicalIdOf(swap as sfn.StateMachine)}"}]}]}*`,
        `Resource::arn:<AWS::Partition>:events:${stack.region}:<AWS::AccountId>:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`,
      ],
    );
    return stateMachine;
  }
}
