import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as eks from 'aws-cdk-lib/aws-eks';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { SwapNodesEnvSchema } from '../../functions/kubernetes/swap/env';
import { SwapStepsEnvSchema } from '../../functions/swap/handler/env';
import type { SwapOutcome } from '../../functions/swap/model';
import type { FleetwardenConfig } from '../config';
import { acknowledge, logicalIdOf } from '../nag';
import { grantClusterAccess } from './eks-access';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine, logicStep } from './fleet-state-machine';
import { accountEnvironmentsJson, riskPolicyJson } from './runtime-config';
import type { StateStore } from './state-store';
import { buildReapSwap } from './swap-reaper';

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
/** The lock is held by another execution (optimized and SDK integrations name it differently). */
export const LOCK_HELD_ERRORS = ['DynamoDB.ConditionalCheckFailedException', 'DynamoDb.ConditionalCheckFailedException'];

/**
 * One swap: an On-Demand instance of an Auto Scaling group replaced by Spot, capacity
 * N -> N+1 -> N, never below N. Plain AWS calls are SDK integrations; the SwapSteps function
 * holds the logic (planning with the gatekeeper, launching with pool fall-through, the
 * re-checked termination, compensation, the ledger). Every forward step catches into one
 * rollback that compensates from what it observes, then records and announces the outcome.
 */
export class NodeSwap extends Construct {
  readonly steps: FleetFunction;
  /** The Kubernetes steps (check, wait Ready, drain, restore), only when kubernetes.clusters is set. */
  readonly nodes?: FleetFunction;
  readonly accessEntries: eks.CfnAccessEntry[] = [];
  readonly stateMachine: sfn.StateMachine;
  /** ReapSwap: rolls back a swap execution that was stopped or timed out (no Catch ran). */
  reaper!: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: NodeSwapProps) {
    super(scope, id);
    const { config, store } = props;
    const stack = Stack.of(this);
    const { poolRisk, ledger, locks } = store.tables;
    const k8s = config.kubernetes;

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
        KUBERNETES_CLUSTER_NAMES: JSON.stringify(k8s.clusters.map((c) => c.name)),
        SWAP_GROUP_CLUSTERS: JSON.stringify(Object.fromEntries(config.swaps.groups.flatMap((g) => (g.cluster ? [[g.name, g.cluster]] : [])))),
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
      ['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances', 'ec2:DescribeAvailabilityZones', 'ec2:DescribeSpotPriceHistory', 'ec2:DescribeSubnets', 'ec2:GetSpotPlacementScores'],
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
      'Describe* calls and ec2:GetSpotPlacementScores support no resource-level permissions; group and instance ARNs are only known at run time, so they are scoped to this account and region; PassRole is limited to EC2 (the launch template instance profile).',
      ['Resource::*', `Resource::${nagArn(groupArn)}`, `Resource::${nagArn(`arn:${stack.partition}:ec2:${stack.region}:${stack.account}:*`)}`, `Resource::${nagArn(`arn:${stack.partition}:ec2:${stack.region}::image/*`)}`],
    );

    if (k8s.clusters.length) {
      // The drain's hard cap, plus time to find the node, taint, cordon and answer (as NodeDrain).
      const nodesTimeout = Duration.seconds(k8s.drainTimeoutSeconds + 90);
      this.nodes = new FleetFunction(this, 'SwapNodes', {
        entry: 'functions/kubernetes/swap/handler.ts',
        description: 'Node swap, Kubernetes steps: may the old node be disrupted, is the replacement node Ready, drain the old node, restore nodes on rollback',
        envSchema: SwapNodesEnvSchema,
        environment: {
          KUBERNETES_CLUSTERS: JSON.stringify(k8s.clusters),
          KUBERNETES_POLICY: JSON.stringify({ rebalance: k8s.rebalance, drainTimeoutSeconds: k8s.drainTimeoutSeconds, doNotDisruptAnnotation: k8s.doNotDisruptAnnotation }),
        },
        config,
        timeout: nodesTimeout,
      });
      // The rollback decides from the group and the replacements as they are (read only).
      this.nodes.allow(['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeInstances', 'ec2:DescribeSubnets'], ['*']);
      // An accessRoleArn's entry is KubernetesNodes' (one entry per principal and cluster); that role must trust this function's role too.
      this.accessEntries = grantClusterAccess(this.nodes, this.nodes.role, k8s.clusters, { skipAccessRoles: true });
      acknowledge(this.nodes, 'AwsSolutions-IAM5', 'Describe* calls support no resource-level permissions.', ['Resource::*']);
    }

    this.stateMachine = this.build(store, groupArn, k8s.drainTimeoutSeconds);
  }

  private build(store: StateStore, groupArn: string, drainTimeoutSeconds: number): sfn.StateMachine {
    const lambdaTask = (fn: lambda.IFunction, timeout: Duration) => (name: string, payload: Record<string, unknown>, resultPath: string | typeof sfn.JsonPath.DISCARD) =>
      logicStep(this, name, fn, payload, resultPath, timeout);
    const step = lambdaTask(this.steps.fn, Duration.minutes(2));
    // The Kubernetes steps: the same Retry, a timeout that fits a whole drain.
    const nodeStep = this.nodes ? lambdaTask(this.nodes.fn, Duration.seconds(drainTimeoutSeconds + 90)) : undefined;
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
    const record = (name: string, outcome: SwapOutcome) => {
      // Its result ($.outcome: outcome, reason, instances) is what the execution outputs or fails with.
      const task = step(name, { step: 'record', outcome, executionId: sfn.JsonPath.stringAt('$.executionId'), state: sfn.JsonPath.objectAt('$') }, '$.outcome');
      task.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
      return task;
    };

    // Rollback: one path for every forward step.
    const rolledBack = new sfn.Fail(this, 'The swap was rolled back', { error: 'Swap.RolledBack', causePath: '$.outcome.reason' });
    const alertRollbackFailed = new tasks.SnsPublish(this, 'Alert operators that the rollback failed', {
      topic: store.topic,
      subject: 'Fleetwarden swap rollback failed',
      message: sfn.TaskInput.fromJsonPathAt('States.JsonToString($)'),
      resultPath: sfn.JsonPath.DISCARD,
    }).next(new sfn.Fail(this, 'The rollback failed and needs an operator', { error: 'Swap.RollbackFailed' }));
    // The group's rollback, shared by the swap and ReapSwap: the observing compensation from $.plan, retried.
    const compensation = (name: string, onFailure: sfn.IChainable, errorPath: string) => {
      const task = step(name, { step: 'compensate', plan: sfn.JsonPath.objectAt('$.plan'), error: sfn.JsonPath.objectAt('$.error') }, '$.compensation');
      // An old instance still Detaching (a load balancer's deregistration delay) is waited for, then
      // re-attached or terminated: released to Detached, it would run outside any group.
      task.addRetry({ errors: ['Retryable.OldInstanceDetaching'], maxAttempts: 25, interval: Duration.seconds(15), backoffRate: 1 });
      task.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
      task.addCatch(onFailure, { resultPath: errorPath });
      return task;
    };
    // The nodes' rollback (Kubernetes), before the group's: retried, and whatever happens to the
    // nodes the group's rollback runs next (no orphan, no capacity loss); a failure is kept in
    // $.nodeRollbackError, recorded (swap.nodes-restore-failed) and alerted.
    const nodeRestore = (name: string, then: sfn.TaskStateBase) => {
      const task = nodeStep!(name, { step: 'restore-nodes', plan: sfn.JsonPath.objectAt('$.plan') }, '$.nodeRollback');
      task.addRetry({ errors: ['States.ALL'], maxAttempts: 6, interval: Duration.seconds(2), backoffRate: 2 });
      task.addCatch(then, { errors: ['States.ALL'], resultPath: '$.nodeRollbackError' });
      task.next(then);
      return task;
    };
    const compensate = compensation('Roll back what the swap did', alertRollbackFailed, '$.rollbackError');
    const recordRollback = record('Record the rollback and announce it', 'rolled-back');
    compensate.next(recordRollback);
    let rollback: sfn.IChainable = compensate;
    if (nodeStep) {
      // Nodes first: the old node back in service (if its instance stays), the replacement's
      // node drained before the AWS half terminates its instance.
      const restoreNodes = nodeRestore("Put the old node back in service and drain the replacement's", compensate);
      // Nodes are only ever touched after the lock was taken (the check before it only reads): a
      // failure before that has no node to put back, even while the cluster cannot be reached.
      rollback = new sfn.Choice(this, 'Did the swap touch Kubernetes nodes?')
        .when(sfn.Condition.and(sfn.Condition.isPresent('$.plan.cluster'), sfn.Condition.isPresent('$.lock')), restoreNodes)
        .otherwise(compensate);
      recordRollback.next(new sfn.Choice(this, 'Were the nodes put back?').when(sfn.Condition.isPresent('$.nodeRollbackError'), alertRollbackFailed).otherwise(rolledBack));
    } else recordRollback.next(rolledBack);
    const catchInto = <T extends sfn.TaskStateBase>(task: T): T => {
      task.addCatch(rollback, { errors: ['States.ALL'], resultPath: '$.error' });
      return task;
    };
    const timedOut = (name: string, error: string) =>
      new sfn.Pass(this, name, { result: sfn.Result.fromObject({ Error: error, Cause: `${name}` }), resultPath: '$.error' }).next(rollback);

    // Forward path.
    const start = new sfn.Pass(this, 'Start the swap', {
      parameters: { 'request.$': '$', 'executionId.$': '$$.Execution.Name', attempts: { status: { n: 0 }, inService: { n: 0 }, ...(nodeStep ? { nodeReady: { n: 0 } } : {}) } },
    });
    const plan = step('Plan the swap with the gatekeeper', { step: 'plan', request: sfn.JsonPath.objectAt('$.request'), executionId: sfn.JsonPath.stringAt('$.executionId') }, '$.plan');
    plan.addCatch(record('Record that the swap could not be planned', 'failed').next(new sfn.Fail(this, 'The swap could not be planned', { error: 'Swap.PlanFailed', causePath: '$.outcome.reason' })), {
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
        // What the reaper rolls back from if the execution is stopped or times out (no Catch runs then).
        plan: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.jsonToString(sfn.JsonPath.objectAt('$.plan'))),
      },
      // Free, or its lease ran out (an execution that died without rolling back).
      conditionExpression: 'attribute_not_exists(lockId) OR leaseUntil < :now',
      expressionAttributeValues: { ':now': tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.plan.lock.now')) },
      resultSelector: { taken: true },
      resultPath: '$.lock',
    });
    lock.addRetry({ errors: THROTTLING_ERRORS, maxAttempts: 5, interval: Duration.seconds(1), backoffRate: 2 });
    lock.addCatch(record('Record that another swap holds the group', 'lock-held').next(new sfn.Fail(this, 'Another swap holds the group', { error: 'Swap.LockHeld', causePath: '$.outcome.reason' })), {
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
              // null outside a batch (the plan always carries it: a missing path would fail the state).
              batchId: sfn.JsonPath.stringAt('$.plan.batchId'),
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
    const done = record('Record the swap and announce it', 'succeeded').next(new sfn.Succeed(this, 'The swap is complete', { outputPath: '$.outcome' }));

    const afterRestore = new sfn.Choice(this, 'Did the swap suspend any process?')
      .when(sfn.Condition.isPresent('$.plan.suspend[0]'), resume.next(release))
      .otherwise(release);
    release.next(done);
    alreadyReleased.next(done);
    const afterTerminate = new sfn.Choice(this, 'Did the swap raise MaxSize?').when(sfn.Condition.isPresent('$.plan.raisedMax'), restoreMax.next(afterRestore)).otherwise(afterRestore);
    detach.next(terminate).next(afterTerminate);
    // Kubernetes: taint, cordon and drain the old node before its instance leaves the group.
    let drainFirst: sfn.IChainable = detach;
    if (nodeStep) {
      const drain = catchInto(nodeStep('Taint, cordon and drain the old node', { step: 'drain-old-node', plan: sfn.JsonPath.objectAt('$.plan') }, '$.drained'));
      drain.next(detach);
      drainFirst = new sfn.Choice(this, 'Is the old instance a Kubernetes node?').when(sfn.Condition.isPresent('$.plan.cluster'), drain).otherwise(detach);
    }
    checkInService.next(
      new sfn.Choice(this, 'Is the replacement InService?')
        .when(
          sfn.Condition.and(sfn.Condition.isPresent('$.inServiceCheck.instances[0].LifecycleState'), sfn.Condition.stringEquals('$.inServiceCheck.instances[0].LifecycleState', 'InService')),
          markInService.next(drainFirst),
        )
        .when(sfn.Condition.numberGreaterThanEquals('$.attempts.inService.n', 30), timedOut('The replacement never became InService', 'Terminal.InServiceTimeout'))
        .otherwise(waitInService),
    );
    const beforeAttach = new sfn.Choice(this, 'Is the group full?').when(sfn.Condition.isPresent('$.plan.raisedMax'), raiseMax.next(attach)).otherwise(attach);
    attach.next(checkInService);
    // Kubernetes: the replacement's node must be Ready (its kubelet joined) before it is attached.
    let afterStatusChecks: sfn.IChainable = beforeAttach;
    if (nodeStep) {
      const checkReady = catchInto(
        nodeStep("Check whether the replacement's node is Ready", { step: 'check-replacement-node', plan: sfn.JsonPath.objectAt('$.plan'), launch: sfn.JsonPath.objectAt('$.launch') }, '$.nodeReadyCheck'),
      );
      const countReady = new sfn.Pass(this, 'Count the node Ready check attempt', { parameters: { 'n.$': 'States.MathAdd($.attempts.nodeReady.n, 1)' }, resultPath: '$.attempts.nodeReady' });
      const waitReady = new sfn.Wait(this, 'Wait before checking the node again', { time: sfn.WaitTime.duration(Duration.seconds(15)) });
      waitReady.next(countReady).next(checkReady);
      const markReady = new sfn.Pass(this, "The replacement's node is Ready", { parameters: { 'node.$': '$.nodeReadyCheck.node', ready: true }, resultPath: '$.replacementNode' });
      checkReady.next(
        new sfn.Choice(this, "Is the replacement's node Ready?")
          .when(sfn.Condition.booleanEquals('$.nodeReadyCheck.ready', true), markReady.next(beforeAttach))
          .when(sfn.Condition.numberGreaterThanEquals('$.attempts.nodeReady.n', 40), timedOut("The replacement's node never became Ready", 'Terminal.NodeReadyTimeout'))
          .otherwise(waitReady),
      );
      afterStatusChecks = new sfn.Choice(this, 'Must the replacement join a Kubernetes cluster?').when(sfn.Condition.isPresent('$.plan.cluster'), checkReady).otherwise(beforeAttach);
    }
    checkStatus.next(
      new sfn.Choice(this, 'Has the replacement passed its status checks?')
        .when(
          sfn.Condition.and(
            sfn.Condition.isPresent('$.statusChecks.statuses[0].InstanceStatus.Status'),
            sfn.Condition.stringEquals('$.statusChecks.statuses[0].InstanceStatus.Status', 'ok'),
            sfn.Condition.stringEquals('$.statusChecks.statuses[0].SystemStatus.Status', 'ok'),
          ),
          afterStatusChecks,
        )
        .when(sfn.Condition.numberGreaterThanEquals('$.attempts.status.n', 40), timedOut('The replacement never passed its status checks', 'Terminal.StatusChecksTimeout'))
        .otherwise(waitStatus),
    );
    launch.next(checkStatus);
    const beforeLaunch = new sfn.Choice(this, 'Must processes be suspended?').when(sfn.Condition.isPresent('$.plan.suspend[0]'), suspend.next(launch)).otherwise(launch);
    lock.next(announce).next(beforeLaunch);

    const nothingToSwap = new sfn.Succeed(this, 'Nothing to swap', { outputPath: '$.outcome' });
    const recordDryRun = record('Record the dry-run plan', 'dry-run').next(new sfn.Succeed(this, 'Dry run: planned, nothing changed', { outputPath: '$.outcome' }));
    const planned = new sfn.Choice(this, 'Is there an On-Demand instance to swap?').when(
      sfn.Condition.stringEquals('$.plan.action', 'skip'),
      record('Record that there was nothing to swap', 'skipped').next(nothingToSwap),
    );
    if (nodeStep) {
      // Kubernetes: before anything is launched, do-not-disrupt (node or pod) refuses the swap.
      const checkOld = catchInto(nodeStep('Check that the old node may be disrupted', { step: 'check-old-node', plan: sfn.JsonPath.objectAt('$.plan') }, '$.nodeCheck'));
      checkOld.next(
        new sfn.Choice(this, 'May the old node be disrupted?')
          .when(sfn.Condition.booleanEquals('$.nodeCheck.allowed', false), record('Record that the old node may not be disrupted', 'skipped').next(nothingToSwap))
          .when(sfn.Condition.booleanEquals('$.plan.dryRun', true), recordDryRun)
          .otherwise(lock),
      );
      planned.when(sfn.Condition.isPresent('$.plan.cluster'), checkOld);
    }
    planned.when(sfn.Condition.booleanEquals('$.plan.dryRun', true), recordDryRun).otherwise(lock);
    const definition = start.next(plan).next(planned);

    const stateMachine = fleetStateMachine(this, 'SwapStateMachine', { stateMachineName: 'fleetwarden-node-swap', definition, timeout: Duration.hours(2), store });
    this.reaper = buildReapSwap(this, { step, record, compensation, nodeRestore: nodeStep ? nodeRestore : undefined }, { store, swapMachine: stateMachine, functions: [this.steps.fn, ...(this.nodes ? [this.nodes.fn] : [])] });
    acknowledge(
      stateMachine,
      'AwsSolutions-IAM5',
      'Log delivery, X-Ray and Describe* calls support no resource-level permissions; invoke is scoped to one function (":*" covers its versions); group ARNs are scoped to this account and region (names are only known at run time).',
      ['Resource::*', `Resource::<${logicalIdOf(this.steps.fn)}.Arn>:*`, ...(this.nodes ? [`Resource::<${logicalIdOf(this.nodes.fn)}.Arn>:*`] : []), `Resource::${nagArn(groupArn)}`],
    );
    return stateMachine;
  }
}
