import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { MARKED_FINDINGS_INDEX, OPEN_FINDINGS_INDEX } from '../../functions/waste/finding-store';
import { emptyScanReport } from '../../functions/waste/scanner';
import { WasteStepsEnvSchema } from '../../functions/waste/steps/env';
import type { FleetwardenConfig } from '../config';
import { accountInFinding, acknowledge, logicalIdOf } from '../nag';
import { fanOutMap, targetBatches } from './fan-out';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine, logicStep } from './fleet-state-machine';
import { MEMBER_ROLE_TRUSTEES, WASTE_RESOURCES, allowMemberAccess, memberAccountEnvironment, wasteCleanupStatements } from './member-access';
import { wastePolicyJson } from './runtime-config';
import type { StateStore } from './state-store';

export interface WasteProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/** How often a volume's cleanup looks again whether its backup snapshot is completed, and how many times. */
export const BACKUP_POLL = { seconds: 30, times: 60 } as const;

/**
 * The waste scanner: the WasteScan workflow, daily, scans every account and region on the same
 * fan-out as the enforcement sweep (Elastic IPs, available volumes, unused snapshots), records
 * what changed, announces a WasteReport with the dollars, and, where cleanup is on, removes
 * what was marked and is still waste after its grace, under a circuit breaker.
 */
export class Waste extends Construct {
  readonly steps: FleetFunction;
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: WasteProps) {
    super(scope, id);
    const { config, store } = props;
    const stack = Stack.of(this);
    const { findings, ledger } = store.tables;

    this.steps = new FleetFunction(this, 'WasteSteps', {
      entry: 'functions/waste/steps/handler.ts',
      description: 'Scans account-regions for idle Elastic IPs, available volumes and unused snapshots; reports and cleans up',
      envSchema: WasteStepsEnvSchema,
      environment: {
        FINDINGS_TABLE_NAME: findings.tableName,
        LEDGER_TABLE_NAME: ledger.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
        NOTIFICATION_TOPIC_ARN: store.topic.topicArn,
        ...memberAccountEnvironment(this, config),
        WASTE_POLICY: wastePolicyJson(config),
      },
      config,
      timeout: Duration.minutes(15),
      memorySize: 1024,
      roleName: MEMBER_ROLE_TRUSTEES.wasteSteps,
    });
    const fn = this.steps;
    fn.allow(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem', 'dynamodb:Scan'], [findings.tableArn]);
    fn.allow(['dynamodb:Query'], [`${findings.tableArn}/index/${OPEN_FINDINGS_INDEX.name}`, `${findings.tableArn}/index/${MARKED_FINDINGS_INDEX.name}`]);
    store.grantLedgerAppend(fn.role);
    store.grantDataKey(fn.role);
    fn.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    fn.allow(['sns:Publish'], [store.topic.topicArn]);
    allowMemberAccess(fn, config);
    fn.allow(
      ['ec2:DescribeAddresses', 'ec2:DescribeVolumes', 'ec2:DescribeSnapshots', 'ec2:DescribeImages', 'ec2:DescribeLaunchTemplates', 'ec2:DescribeLaunchTemplateVersions', 'autoscaling:DescribeLaunchConfigurations'],
      ['*'],
    );
    // The home account's own waste: the member role's same rule (never with the protected tag).
    for (const statement of wasteCleanupStatements(stack.partition, stack.account, config.policies.enforcement.protectedTag)) fn.role.addToPrincipalPolicy(statement);
    acknowledge(
      fn,
      'AwsSolutions-IAM5',
      'EC2 and Auto Scaling Describe* support no resource-level permissions; cleanup applies to any Elastic IP, volume or snapshot of this account without the protected tag (an IAM condition); the findings index is named. Actions stay explicit.',
      [
        'Resource::*',
        `Resource::<${logicalIdOf(findings)}.Arn>/index/${OPEN_FINDINGS_INDEX.name}`,
        `Resource::<${logicalIdOf(findings)}.Arn>/index/${MARKED_FINDINGS_INDEX.name}`,
        `Resource::arn:<AWS::Partition>:organizations::*:account/o-*/*`,
        ...WASTE_RESOURCES.map((r) => `Resource::arn:<AWS::Partition>:ec2:*:${accountInFinding(this)}:${r}/*`),
        'Resource::arn:<AWS::Partition>:ec2:*::snapshot/*',
      ],
    );

    this.stateMachine = this.scanStateMachine(config, store);
    new events.Rule(this, 'ScanSchedule', {
      description: 'Scans every account and region for wasted Elastic IPs, volumes and snapshots',
      schedule: events.Schedule.expression(config.policies.waste.scanSchedule),
      targets: [new targets.SfnStateMachine(this.stateMachine, { deadLetterQueue: store.asyncDeadLetters.queue, retryAttempts: 3, maxEventAge: Duration.hours(1) })],
    });
  }

  private scanStateMachine(config: FleetwardenConfig, store: StateStore): sfn.StateMachine {
    const fn = this.steps.fn;
    const start = new sfn.Pass(this, 'List every account and region', { parameters: { 'scanId.$': '$$.Execution.Name', batches: targetBatches(config) } });
    const scan = fanOutMap(this, {
      fn,
      payload: { step: 'scan', 'scanId.$': '$.scanId', 'targets.$': '$.targets' },
      emptyReport: { ...emptyScanReport() },
      names: { map: 'Scan every account and region', step: 'Scan a batch of account-regions', failed: 'Report the batch as not scanned', take: 'Take the batch report' },
      runIdField: 'scanId',
      timeout: Duration.minutes(15),
    });
    const report = logicStep(this, 'Report the waste and plan the cleanups', fn, { step: 'report', 'scanId.$': '$.scanId', 'batches.$': '$.batches', 'reports.$': '$.reports' }, '$.plan', Duration.minutes(5));
    // The batch reports are summed into the plan: the state keeps only the plan.
    const forget = new sfn.Pass(this, 'Keep only the plan', { parameters: { 'scanId.$': '$.scanId', 'plan.$': '$.plan' } });

    const clean = logicStep(this, 'Re-check and clean up a finding', fn, { step: 'clean', 'scanId.$': '$.scanId', 'findingId.$': '$.findingId' }, '$.result', Duration.minutes(5));
    const left = new sfn.Pass(this, 'Leave the finding for the next run');
    clean.addCatch(left, { errors: ['States.ALL'], resultPath: '$.error' });
    const again = new sfn.Pass(this, 'Count the wait', { parameters: { 'scanId.$': '$.scanId', 'findingId.$': '$.findingId', 'attempt.$': 'States.MathAdd($.attempt, 1)' } });
    const wait = new sfn.Wait(this, 'Wait for the backup snapshot', { time: sfn.WaitTime.duration(Duration.seconds(BACKUP_POLL.seconds)) });
    clean.next(
      new sfn.Choice(this, 'Is the cleanup done?')
        .when(sfn.Condition.booleanEquals('$.result.done', true), new sfn.Succeed(this, 'Cleaned up, or left as it is'))
        // The snapshot is still pending after the last look: the next run resumes with the same snapshot.
        .when(sfn.Condition.numberGreaterThanEquals('$.attempt', BACKUP_POLL.times), left)
        .otherwise(again.next(wait).next(clean)),
    );
    const act = new sfn.Map(this, 'Clean up every expired finding', {
      itemsPath: '$.plan.acting',
      itemSelector: { 'scanId.$': '$.scanId', 'findingId.$': '$$.Map.Item.Value', attempt: 0 },
      maxConcurrency: 5,
      resultPath: sfn.JsonPath.DISCARD,
    });
    act.itemProcessor(clean);

    const definition = start
      .next(scan)
      .next(report)
      .next(forget)
      .next(
        new sfn.Choice(this, 'Did the circuit breaker trip?')
          .when(sfn.Condition.booleanEquals('$.plan.trip', true), new sfn.Succeed(this, 'Nothing removed: the circuit breaker tripped'))
          .otherwise(act.next(new sfn.Succeed(this, 'The scan is done'))),
      );
    const stateMachine = fleetStateMachine(this, 'ScanStateMachine', { stateMachineName: 'fleetwarden-waste-scan', definition, timeout: Duration.hours(2), store });
    acknowledge(stateMachine, 'AwsSolutions-IAM5', 'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to one function (":*" covers its versions).', [
      'Resource::*',
      `Resource::<${logicalIdOf(fn)}.Arn>:*`,
    ]);
    return stateMachine;
  }
}
