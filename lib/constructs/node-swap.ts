import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { RETRYABLE_ERROR_NAMES } from '../../functions/shared/errors';
import { SwapStepsEnvSchema } from '../../functions/swap/handler/env';
import type { FleetwardenConfig } from '../config';
import { acknowledge, logicalIdOf } from '../nag';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine } from './fleet-state-machine';
import { accountEnvironmentsJson, riskPolicyJson } from './runtime-config';
import type { StateStore } from './state-store';

export interface NodeSwapProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/** How cdk-nag spells an ARN built from stack tokens (the region resolves; partition and account stay tokens). */
function nagArn(arn: string): string {
  return arn.replace(/\$\{Token\[AWS\.Partition\.\d+\]\}/g, '<AWS::Partition>').replace(/\$\{Token\[AWS\.AccountId\.\d+\]\}/g, '<AWS::AccountId>').replace(/\$\{Token\[AWS\.Region\.\d+\]\}/g, '<AWS::Region>');
}

/** Throttling as the SDK integrations name it: retried with backoff, never rolled back for. */
export const THROTTLING_ERRORS = [
  'AutoScaling.ThrottlingException',
  // EC2's throttling code (RequestLimitExceeded) is not modelled: it surfaces as Ec2.Ec2Exception,
  // which is only retried on read-only calls (see the status check).
  'DynamoDB.ThrottlingException',
  'DynamoDB.ProvisionedThroughputExceededException',
  'DynamoDb.ThrottlingException',
  'EventBridge.ThrottlingException',
];
const EC2_READ_ERRORS = ['Ec2.Ec2Exception'];
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];
/** The lock is held by another execution (optimized and SDK integrations name it differently). */
export const LOCK_HELD_ERRORS = ['DynamoDB.ConditionalCheckFailedException', 'DynamoDb.ConditionalCheckFailedException'];

/**
 * SPEC §2, one swap: an On-Demand instance of an Auto Scaling group replaced by Spot, capacity
 * N -> N+1 -> N, never below N. Plain AWS calls are SDK integrations; the SwapSteps function
 * holds the logic (planning with the gatekeeper, launching with pool fall-through, the
 * re-checked termination, compensation, the ledger). Every forward step catches into one
 * rollback that compensates from what it observes, then records and announces the outcome.
 */
export class NodeSwap extends Construct {
  readonly steps: FleetFunction;
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: NodeSwapProps) {
    super(scope, id);
    const { config, store } = props;
    const stack = Stack.of(this);
    const { poolRisk, ledger, locks } = store.tables;

    this.steps = new FleetFunction(this, 'SwapSteps', {
      entry: 'functions/swap/handler/handler.ts',
      description: 'Node swap logic: plan, launch, re-checked terminate, compensate, record',
      envSchema: SwapStepsEnvSchema,
      environment: {
        POOL_RISK_TABLE_NAME: poolRisk.tableName,
        LEDGER_TABLE_NAME: ledger.tableName,
        LOCKS_TABLE_NAME: locks.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
        HOME_ACCOUNT_ID: stack.account,
        ACCOUNT_ENVIRONMENTS: accountEnvironmentsJson(config),
        RISK_POLICY: riskPolicyJson(config),
      },
      config,
      timeout: Duration.minutes(2),
    });
    const groupArn = `arn:${stack.partition}:autoscaling:${stack.region}:${stack.account}:autoScalingGroup:*:autoScalingGroupName/*`;
    this.steps.allow(['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:BatchGetItem'], [poolRisk.tableArn]);
    store.grantLedgerAppend(this.steps.role);
    this.steps.allow(['dynamodb:GetItem', 'dynamodb:DeleteItem'], [locks.tableArn]);
    store.grantDataKey(this.steps.role);
    this.steps.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    this.steps.allow(
      ['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances', 'ec2:DescribeAvailabilityZones', 'ec2:DescribeSpotPriceHistory', 'ec2:DescribeSubnets'],
      ['*'],
    );
    this.steps.allow(
      ['autoscaling:AttachInstances', 'autoscaling:DetachInstances', 'autoscaling:SetDesiredCapacity', 'autoscaling:UpdateAutoScalingGroup', 'autoscaling:ResumeProcesses', 'autoscaling:TerminateInstanceInAutoScalingGroup'],
      [groupArn],
    );
    this.steps.allow(['ec2:RunInstances', 'ec2:CreateTags', 'ec2:TerminateInstances'], [`arn:${stack.partition}:ec2:${stack.region}:${stack.account}:*`, `arn:${stack.partition}:ec2:${stack.region}::image/*`]);
    this.steps.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['iam:PassRole'], resources: ['*'], conditions: { StringEquals: { 'iam:PassedToService': 'ec2.amazonaws.com' } } }),
    );
    acknowledge(
      this.steps,
      'AwsSolutions-IAM5',
      'Describe* calls support no resource-level permissions; group and instance ARNs are only known at run time, so they are scoped to this account and region; PassRole is limited to EC2 (the launch template instance profile).',
      ['Resource::*', `Resource::${nagArn(groupArn)}`, `Resource::${nagArn(`arn:${stack.partition}:ec2:${stack.region}:${stack.account}:*`)}`, `Resource::${nagArn(`arn:${stack.partition}:ec2:${stack.region}::image/*`)}`],
    );

    this.stateMachine = this.build(store, groupArn);
  }

  private build(store: StateStore, groupArn: string): sfn.StateMachine {
    const fn = this.steps.fn;
    const step = (name: string, payload: Record<string, unknown>, resultPath: string | typeof sfn.JsonPath.DISCARD) => {
      const task = new tasks.LambdaInvoke(this, name, {
        lambdaFunction: fn,
        payload: sfn.TaskInput.fromObject(payload),
        payloadResponseOnly: true,
        resultPath,
        taskTimeout: sfn.Timeout.duration(Duration.minutes(2)),
      });
      task.addRetry({ errors: [...LAMBDA_SERVICE_ERRORS, ...RETRYABLE_ERROR_NAMES], maxAttempts: 4, interval: Duration.seconds(2), backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
      return task;
    };
    const sdk = (name: string, service: string, action: string, parameters: Record<string, unknown>, resultPath: string, iamResources: string[], resultSelector?: Record<string, unknown>) => {
      const task = new tasks.CallAwsService(this, name, {
        service,
        action,
        parameters,
        iamResources,
        resultPath,
        resultSelector: resultSelector ?? { done: true },
      });
      task.addRetry({ errors: THROTTLING_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
      return task;
    };
    const group = sfn.JsonPath.stringAt('$.plan.group');
    const replacementIds = sfn.JsonPath.array(sfn.JsonPath.stringAt('$.launch.instanceId'));

    // Outcome recording (the ledger and the Swap* events).
    const record = (name: string, outcome: string) => {
      const task = step(name, { step: 'record', outcome, executionId: sfn.JsonPath.stringAt('$.executionId'), state: sfn.JsonPath.objectAt('$') }, sfn.JsonPath.DISCARD);
      task.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
      return task;
    };

    // Rollback: one path for every forward step.
    const rolledBack = new sfn.Fail(this, 'The swap was rolled back', { error: 'Swap.RolledBack', cause: 'See SwapRolledBack on the Fleetwarden bus and the ledger' });
    const alertRollbackFailed = new tasks.SnsPublish(this, 'Alert operators that the rollback failed', {
      topic: store.topic,
      subject: 'Fleetwarden swap rollback failed',
      message: sfn.TaskInput.fromJsonPathAt('States.JsonToString($)'),
      resultPath: sfn.JsonPath.DISCARD,
    }).next(new sfn.Fail(this, 'The rollback failed and needs an operator', { error: 'Swap.RollbackFailed' }));
    const compensate = step('Roll back what the swap did', { step: 'compensate', plan: sfn.JsonPath.objectAt('$.plan'), error: sfn.JsonPath.objectAt('$.error') }, '$.compensation');
    compensate.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
    compensate.addCatch(alertRollbackFailed, { resultPath: '$.rollbackError' });
    const rollback = compensate.next(record('Record the rollback and announce it', 'rolled-back')).next(rolledBack);
    const catchInto = <T extends sfn.TaskStateBase>(task: T): T => {
      task.addCatch(rollback, { errors: ['States.ALL'], resultPath: '$.error' });
      return task;
    };
    const timedOut = (name: string, error: string) =>
      new sfn.Pass(this, name, { result: sfn.Result.fromObject({ Error: error, Cause: `${name}` }), resultPath: '$.error' }).next(rollback);

    // Forward path.
    const start = new sfn.Pass(this, 'Start the swap', {
      parameters: { 'request.$': '$', 'executionId.$': '$$.Execution.Name', attempts: { status: { n: 0 }, inService: { n: 0 } } },
    });
    const plan = step('Plan the swap with the gatekeeper', { step: 'plan', request: sfn.JsonPath.objectAt('$.request'), executionId: sfn.JsonPath.stringAt('$.executionId') }, '$.plan');
    plan.addCatch(record('Record that the swap could not be planned', 'failed').next(new sfn.Fail(this, 'The swap could not be planned', { error: 'Swap.PlanFailed' })), {
      errors: ['States.ALL'],
      resultPath: '$.error',
    });

    const lock = new tasks.DynamoPutItem(this, 'Take the group lock', {
      table: store.tables.locks,
      item: {
        lockId: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.id')),
        owner: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.owner')),
        leaseUntil: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.leaseUntil')),
        expiresAt: tasks.DynamoAttributeValue.numberFromString(sfn.JsonPath.stringAt('$.plan.lock.expiresAt')),
      },
      // Free, or its lease ran out (an execution that died without rolling back).
      conditionExpression: 'attribute_not_exists(lockId) OR leaseUntil < :now',
      expressionAttributeValues: { ':now': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.now')) },
      resultSelector: { taken: true },
      resultPath: '$.lock',
    });
    lock.addRetry({ errors: THROTTLING_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2 });
    lock.addCatch(record('Record that another swap holds the group', 'lock-held').next(new sfn.Fail(this, 'Another swap holds the group', { error: 'Swap.LockHeld' })), {
      errors: LOCK_HELD_ERRORS,
      resultPath: '$.error',
    });
    catchInto(lock);

    const announce = catchInto(
      new tasks.EventBridgePutEvents(this, 'Announce that the swap started', {
        entries: [
          {
            eventBus: store.bus,
            source: 'fleetwarden.swap',
            detailType: 'SwapStarted',
            detail: sfn.TaskInput.fromObject({
              executionId: sfn.JsonPath.stringAt('$.executionId'),
              group,
              oldInstanceId: sfn.JsonPath.stringAt('$.plan.oldInstanceId'),
              trigger: sfn.JsonPath.stringAt('$.plan.trigger'),
              reason: sfn.JsonPath.stringAt('$.plan.reason'),
            }),
          },
        ],
        resultPath: sfn.JsonPath.DISCARD,
      }),
    );
    announce.addRetry({ errors: THROTTLING_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2 });

    const suspend = catchInto(
      sdk('Suspend AZRebalance and Terminate on the group', 'autoscaling', 'suspendProcesses', { AutoScalingGroupName: group, ScalingProcesses: sfn.JsonPath.listAt('$.plan.suspend') }, '$.suspended', [groupArn]),
    );
    const launch = catchInto(step('Launch the Spot replacement in the best allowed pool', { step: 'launch', plan: sfn.JsonPath.objectAt('$.plan') }, '$.launch'));

    const checkStatus = catchInto(
      sdk(
        "Check the replacement's status checks",
        'ec2',
        'describeInstanceStatus',
        { InstanceIds: replacementIds, IncludeAllInstances: true },
        '$.statusChecks',
        ['*'],
        // The whole list: a path into an empty one would be an uncatchable States.Runtime error.
        { 'statuses.$': '$.InstanceStatuses' },
      ),
    );
    checkStatus.addRetry({ errors: EC2_READ_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2 });
    const countStatus = new sfn.Pass(this, 'Count the status check attempt', { parameters: { 'n.$': 'States.MathAdd($.attempts.status.n, 1)' }, resultPath: '$.attempts.status' });
    const waitStatus = new sfn.Wait(this, 'Wait before checking the status again', { time: sfn.WaitTime.duration(Duration.seconds(15)) });
    waitStatus.next(countStatus).next(checkStatus);

    const raiseMax = catchInto(sdk('Raise MaxSize by one for the replacement', 'autoscaling', 'updateAutoScalingGroup', { AutoScalingGroupName: group, MaxSize: sfn.JsonPath.numberAt('$.plan.raisedMax') }, '$.raisedMax', [groupArn]));
    const attach = catchInto(sdk('Attach the replacement to the group', 'autoscaling', 'attachInstances', { AutoScalingGroupName: group, InstanceIds: replacementIds }, '$.attached', [groupArn]));
    const checkInService = catchInto(
      sdk("Check the replacement's lifecycle state", 'autoscaling', 'describeAutoScalingInstances', { InstanceIds: replacementIds }, '$.inServiceCheck', ['*'], {
        'instances.$': '$.AutoScalingInstances',
      }),
    );
    const countInService = new sfn.Pass(this, 'Count the InService check attempt', { parameters: { 'n.$': 'States.MathAdd($.attempts.inService.n, 1)' }, resultPath: '$.attempts.inService' });
    const waitInService = new sfn.Wait(this, 'Wait before checking InService again', { time: sfn.WaitTime.duration(Duration.seconds(10)) });
    waitInService.next(countInService).next(checkInService);
    const markInService = new sfn.Pass(this, 'The replacement is InService', { result: sfn.Result.fromObject({ done: true }), resultPath: '$.inService' });

    const detach = catchInto(
      sdk(
        'Detach the old instance, decrementing desired capacity',
        'autoscaling',
        'detachInstances',
        { AutoScalingGroupName: group, InstanceIds: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.plan.oldInstanceId')), ShouldDecrementDesiredCapacity: true },
        '$.detached',
        [groupArn],
      ),
    );
    const terminate = step('Re-check and terminate the old instance', { step: 'terminate-old', plan: sfn.JsonPath.objectAt('$.plan'), launch: sfn.JsonPath.objectAt('$.launch') }, '$.terminated');
    // DetachInstances returns while the instance is still Detaching (for a load balancer's whole
    // deregistration delay, 300 s by default): the step waits until it has really left.
    terminate.addRetry({ errors: ['Retryable.OldInstanceDetaching'], maxAttempts: 25, interval: Duration.seconds(15), backoffRate: 1 });
    catchInto(terminate);
    const restoreMax = catchInto(sdk("Restore the group's MaxSize", 'autoscaling', 'updateAutoScalingGroup', { AutoScalingGroupName: group, MaxSize: sfn.JsonPath.numberAt('$.plan.original.max') }, '$.restoredMax', [groupArn]));
    const resume = catchInto(
      sdk('Resume the processes the swap suspended', 'autoscaling', 'resumeProcesses', { AutoScalingGroupName: group, ScalingProcesses: sfn.JsonPath.listAt('$.plan.suspend') }, '$.resumed', [groupArn]),
    );
    const release = catchInto(
      new tasks.DynamoDeleteItem(this, 'Release the group lock', {
        table: store.tables.locks,
        key: { lockId: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.id')) },
        conditionExpression: '#o = :me',
        expressionAttributeNames: { '#o': 'owner' },
        expressionAttributeValues: { ':me': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.executionId')) },
        resultSelector: { released: true },
        resultPath: '$.released',
      }),
    );
    release.addRetry({ errors: THROTTLING_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2 });
    // Not ours any more (an earlier attempt released it, or its lease ran out): nothing to release.
    const alreadyReleased = new sfn.Pass(this, 'The lock was already released', { result: sfn.Result.fromObject({ released: 'already' }), resultPath: '$.released' });
    release.addCatch(alreadyReleased, { errors: LOCK_HELD_ERRORS, resultPath: '$.releaseError' });
    const done = record('Record the swap and announce it', 'succeeded').next(new sfn.Succeed(this, 'The swap is complete'));

    const afterRestore = new sfn.Choice(this, 'Did the swap suspend any process?')
      .when(sfn.Condition.isPresent('$.plan.suspend[0]'), resume.next(release))
      .otherwise(release);
    release.next(done);
    alreadyReleased.next(done);
    const afterTerminate = new sfn.Choice(this, 'Did the swap raise MaxSize?').when(sfn.Condition.isPresent('$.plan.raisedMax'), restoreMax.next(afterRestore)).otherwise(afterRestore);
    detach.next(terminate).next(afterTerminate);
    checkInService.next(
      new sfn.Choice(this, 'Is the replacement InService?')
        .when(
          sfn.Condition.and(sfn.Condition.isPresent('$.inServiceCheck.instances[0].LifecycleState'), sfn.Condition.stringEquals('$.inServiceCheck.instances[0].LifecycleState', 'InService')),
          markInService.next(detach),
        )
        .when(sfn.Condition.numberGreaterThanEquals('$.attempts.inService.n', 30), timedOut('The replacement never became InService', 'Terminal.InServiceTimeout'))
        .otherwise(waitInService),
    );
    const beforeAttach = new sfn.Choice(this, 'Is the group full?').when(sfn.Condition.isPresent('$.plan.raisedMax'), raiseMax.next(attach)).otherwise(attach);
    attach.next(checkInService);
    checkStatus.next(
      new sfn.Choice(this, 'Has the replacement passed its status checks?')
        .when(
          sfn.Condition.and(
            sfn.Condition.isPresent('$.statusChecks.statuses[0].InstanceStatus.Status'),
            sfn.Condition.stringEquals('$.statusChecks.statuses[0].InstanceStatus.Status', 'ok'),
            sfn.Condition.stringEquals('$.statusChecks.statuses[0].SystemStatus.Status', 'ok'),
          ),
          beforeAttach,
        )
        .when(sfn.Condition.numberGreaterThanEquals('$.attempts.status.n', 40), timedOut('The replacement never passed its status checks', 'Terminal.StatusChecksTimeout'))
        .otherwise(waitStatus),
    );
    launch.next(checkStatus);
    const beforeLaunch = new sfn.Choice(this, 'Must processes be suspended?').when(sfn.Condition.isPresent('$.plan.suspend[0]'), suspend.next(launch)).otherwise(launch);
    lock.next(announce).next(beforeLaunch);

    const definition = start.next(plan).next(
      new sfn.Choice(this, 'Is there an On-Demand instance to swap?')
        .when(sfn.Condition.stringEquals('$.plan.action', 'skip'), record('Record that there was nothing to swap', 'skipped').next(new sfn.Succeed(this, 'Nothing to swap')))
        .when(sfn.Condition.booleanEquals('$.plan.dryRun', true), record('Record the dry-run plan', 'dry-run').next(new sfn.Succeed(this, 'Dry run: planned, nothing changed')))
        .otherwise(lock),
    );

    const stateMachine = fleetStateMachine(this, 'SwapStateMachine', { stateMachineName: 'fleetwarden-node-swap', definition, timeout: Duration.hours(2), store });
    acknowledge(
      stateMachine,
      'AwsSolutions-IAM5',
      'Log delivery, X-Ray and Describe* calls support no resource-level permissions; invoke is scoped to one function (":*" covers its versions); group ARNs are scoped to this account and region (names are only known at run time).',
      ['Resource::*', `Resource::<${logicalIdOf(this.steps.fn)}.Arn>:*`, `Resource::${nagArn(groupArn)}`],
    );
    return stateMachine;
  }
}
