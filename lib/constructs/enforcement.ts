import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { EnforcementCheckEnvSchema } from '../../functions/enforcement/check/env';
import { emptyReport } from '../../functions/enforcement/enforcer';
import { ENFORCEMENT_EVENTS } from '../../functions/enforcement/events';
import { OPEN_FLAGS_INDEX } from '../../functions/enforcement/flag-store';
import { EnforcementStepsEnvSchema } from '../../functions/enforcement/steps/env';
import type { FleetwardenConfig } from '../config';
import { accountInFinding, acknowledge, logicalIdOf } from '../nag';
import { FleetFunction } from './fleet-function';
import { FleetQueue, defaultBusRules } from './fleet-queue';
import { fleetStateMachine, logicStep } from './fleet-state-machine';
import { MEMBER_ROLE_TRUSTEES, allowMemberAccess, memberAccountEnvironment } from './member-access';
import { enforcementPolicyJson } from './runtime-config';
import { fanOutMap, targetBatches } from './fan-out';
import type { StateStore } from './state-store';

export interface EnforcementProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/**
 * The rogue-instance enforcer: EventBridge rules (home default bus, where member accounts
 * forward) for `running` and RunInstances -> a queue -> EnforcementCheck, which flags an
 * unauthorized instance within seconds; and the EnforcementSweep workflow, every hour, which
 * sweeps every account and region as a backstop and acts on flags whose grace is over, under a
 * circuit breaker.
 */
export class Enforcement extends Construct {
  readonly queue: FleetQueue;
  readonly check: FleetFunction;
  readonly steps: FleetFunction;
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: EnforcementProps) {
    super(scope, id);
    const { config, store } = props;
    const stack = Stack.of(this);
    const checkTimeout = Duration.seconds(60);

    this.queue = new FleetQueue(this, 'Events', {
      key: store.key,
      alarmTopic: store.topic,
      visibilityTimeout: Duration.seconds(checkTimeout.toSeconds() * 6),
      removalPolicy: store.removalPolicy,
    });
    // Member accounts' events arrive through this account's default bus.
    defaultBusRules(this, ENFORCEMENT_EVENTS, this.queue, store.asyncDeadLetters.queue, 'enforcement');

    const { authorizations, ledger } = store.tables;
    const environment = {
      AUTHORIZATIONS_TABLE_NAME: authorizations.tableName,
      LEDGER_TABLE_NAME: ledger.tableName,
      EVENT_BUS_NAME: store.bus.eventBusName,
      NOTIFICATION_TOPIC_ARN: store.topic.topicArn,
      ...memberAccountEnvironment(this, config),
      ENFORCEMENT_POLICY: enforcementPolicyJson(config),
    };
    this.check = new FleetFunction(this, 'EnforcementCheck', {
      entry: 'functions/enforcement/check/handler.ts',
      description: 'Checks a running or just-launched instance against the authorization rules; flags it when unauthorized',
      envSchema: EnforcementCheckEnvSchema,
      environment: { ...environment, DEAD_LETTER_QUEUE_URL: this.queue.deadLetterQueue.queueUrl },
      config,
      timeout: checkTimeout,
      roleName: MEMBER_ROLE_TRUSTEES.enforcementCheck,
    });
    this.check.fn.addEventSource(new SqsEventSource(this.queue.queue, { batchSize: 10, maxBatchingWindow: Duration.seconds(1), reportBatchItemFailures: true }));
    this.check.allow(['sqs:SendMessage'], [this.queue.deadLetterQueue.queueArn]);

    this.steps = new FleetFunction(this, 'EnforcementSteps', {
      entry: 'functions/enforcement/steps/handler.ts',
      description: 'Sweeps account-regions, plans under the circuit breaker, re-checks and acts on expired flags',
      envSchema: EnforcementStepsEnvSchema,
      environment,
      config,
      timeout: Duration.minutes(10),
      memorySize: 1024,
      roleName: MEMBER_ROLE_TRUSTEES.enforcementSteps,
    });

    for (const fn of [this.check, this.steps]) {
      fn.allow(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Scan'], [authorizations.tableArn]);
      fn.allow(['dynamodb:Query'], [`${authorizations.tableArn}/index/${OPEN_FLAGS_INDEX.name}`]);
      store.grantLedgerAppend(fn.role);
      store.grantDataKey(fn.role);
      fn.allow(['events:PutEvents'], [store.bus.eventBusArn]);
      fn.allow(['sns:Publish'], [store.topic.topicArn]);
      allowMemberAccess(fn, config);
      fn.allow(['ec2:DescribeInstances'], ['*']);
      acknowledge(
        fn,
        'AwsSolutions-IAM5',
        'ec2:DescribeInstances supports no resource-level permissions; the open-flags index is named; Organizations account ARNs embed the organization id, unknown at synth. Actions stay explicit.',
        ['Resource::*', `Resource::<${logicalIdOf(authorizations)}.Arn>/index/${OPEN_FLAGS_INDEX.name}`, `Resource::arn:<AWS::Partition>:organizations::*:account/o-*/*`],
      );
    }
    // The home account's own instances: stop and terminate, never with the protected tag (IAM
    // refuses the call, whatever the code decided). Member accounts: the member role's same rule.
    this.steps.role.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:StopInstances', 'ec2:TerminateInstances'],
        resources: [`arn:${stack.partition}:ec2:*:${stack.account}:instance/*`],
        conditions: { Null: { [`aws:ResourceTag/${config.policies.enforcement.protectedTag}`]: 'true' } },
      }),
    );
    acknowledge(this.steps, 'AwsSolutions-IAM5', 'Any instance of this account, in any region, except those with the protected tag (IAM condition).', [
      `Resource::arn:<AWS::Partition>:ec2:*:${accountInFinding(this)}:instance/*`,
    ]);

    this.stateMachine = this.sweepStateMachine(config, store);
    new events.Rule(this, 'SweepSchedule', {
      description: 'Sweeps every account and region for unauthorized instances and acts on expired flags',
      schedule: events.Schedule.expression(config.policies.enforcement.sweepSchedule),
      targets: [new targets.SfnStateMachine(this.stateMachine, { deadLetterQueue: store.asyncDeadLetters.queue, retryAttempts: 3, maxEventAge: Duration.hours(1) })],
    });
  }

  private sweepStateMachine(config: FleetwardenConfig, store: StateStore): sfn.StateMachine {
    const fn = this.steps.fn;
    const start = new sfn.Pass(this, 'List every account and region', {
      parameters: { 'sweepId.$': '$$.Execution.Name', batches: targetBatches(config) },
    });
    const sweep = fanOutMap(this, {
      fn,
      payload: { step: 'sweep', 'sweepId.$': '$.sweepId', 'targets.$': '$.targets' },
      emptyReport: { ...emptyReport() },
      names: { map: 'Sweep every account and region', step: 'Sweep a batch of account-regions', failed: 'Report the batch as not swept', take: 'Take the batch report' },
      runIdField: 'sweepId',
      timeout: Duration.minutes(10),
    });

    const plan = logicStep(this, 'Plan the acts under the circuit breaker', fn, { step: 'plan', 'sweepId.$': '$.sweepId', 'reports.$': '$.reports' }, '$.plan', Duration.minutes(5));
    const actOne = logicStep(this, 'Re-check and act on an expired flag', fn, { step: 'act', 'sweepId.$': '$.sweepId', 'instanceKey.$': '$.instanceKey' }, sfn.JsonPath.DISCARD, Duration.minutes(2));
    // A flag that could not be acted on stays open: the next run re-checks it.
    actOne.addCatch(new sfn.Pass(this, 'Leave the flag for the next run'), { errors: ['States.ALL'], resultPath: '$.error' });
    const act = new sfn.Map(this, 'Act on every expired flag', {
      itemsPath: '$.plan.acting',
      itemSelector: { 'sweepId.$': '$.sweepId', 'instanceKey.$': '$$.Map.Item.Value' },
      maxConcurrency: 5,
      resultPath: sfn.JsonPath.DISCARD,
    });
    act.itemProcessor(actOne);

    const definition = start
      .next(sweep)
      .next(plan)
      .next(
        new sfn.Choice(this, 'Did the circuit breaker trip?')
          .when(sfn.Condition.booleanEquals('$.plan.trip', true), new sfn.Succeed(this, 'Nothing acted on: the circuit breaker tripped'))
          .otherwise(act.next(new sfn.Succeed(this, 'The sweep is done'))),
      );
    const stateMachine = fleetStateMachine(this, 'SweepStateMachine', {
      stateMachineName: 'fleetwarden-enforcement-sweep',
      definition,
      timeout: Duration.hours(1),
      store,
    });
    acknowledge(stateMachine, 'AwsSolutions-IAM5', 'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to one function (":*" covers its versions).', [
      'Resource::*',
      `Resource::<${logicalIdOf(fn)}.Arn>:*`,
    ]);
    return stateMachine;
  }
}
