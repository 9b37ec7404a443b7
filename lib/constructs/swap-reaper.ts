import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import type { SwapOutcome } from '../../functions/swap/model';
import { acknowledge, logicalIdOf } from '../nag';
import { fleetStateMachine } from './fleet-state-machine';
import type { StateStore } from './state-store';

/** The swap's own rollback builders, which ReapSwap runs the same way (one definition of each). */
export interface SwapRollbackParts {
  /** A SwapSteps logic task. */
  step: (name: string, payload: Record<string, unknown>, resultPath: string) => sfn.TaskStateBase;
  /** Records an outcome in the ledger and announces it (retried). */
  record: (name: string, outcome: SwapOutcome) => sfn.TaskStateBase;
  /** The group's observing compensation from `$.plan` (retried; on failure into `onFailure`). */
  compensation: (name: string, onFailure: sfn.IChainable, errorPath: string) => sfn.TaskStateBase;
  /** The nodes' rollback (Kubernetes), then `then`; absent without kubernetes.clusters. */
  nodeRestore?: (name: string, then: sfn.TaskStateBase) => sfn.TaskStateBase;
}

/**
 * ReapSwap. An execution stopped (by an operator, or with its parent batch) or timed out runs no
 * Catch: Step Functions' own status-change event starts ReapSwap, which finds the lock the ended
 * execution still holds (functions/swap/reaper.ts), waits for its running tasks to end, and rolls
 * back from the plan stored with the lock, the same way as the swap's own rollback: nodes first,
 * then the group, then the record; an operator is alerted when that cannot be done. Its states are
 * built in the swap's construct scope, so the swap's and the reaper's state names stay unique.
 */
export function buildReapSwap(scope: Construct, parts: SwapRollbackParts, props: { store: StateStore; swapMachine: sfn.StateMachine; functions: lambda.IFunction[] }): sfn.StateMachine {
  const { step, record, compensation, nodeRestore } = parts;
  const { store, swapMachine } = props;
  const reapStart = new sfn.Pass(scope, "Take the stopped swap's status change", { parameters: { 'event.$': '$' } });
  // A stopped execution's running Lambda task still runs to its end (a launch may yet return).
  const settle = new sfn.Wait(scope, "Wait for the stopped swap's running tasks to end", { time: sfn.WaitTime.duration(Duration.minutes(5)) });
  const reapFailed = new tasks.SnsPublish(scope, 'Alert operators that the stopped swap could not be rolled back', {
    topic: store.topic,
    subject: 'Fleetwarden: a stopped swap could not be rolled back',
    message: sfn.TaskInput.fromJsonPathAt('States.JsonToString($)'),
    resultPath: sfn.JsonPath.DISCARD,
  }).next(new sfn.Fail(scope, 'The stopped swap needs an operator', { error: 'Swap.ReapFailed' }));
  const find = step('Find what the stopped swap still holds', { step: 'find-held-work', event: sfn.JsonPath.objectAt('$.event') }, '$.held');
  find.addCatch(reapFailed, { errors: ['States.ALL'], resultPath: '$.reapError' });
  const adopt = new sfn.Pass(scope, "Adopt the stopped swap's plan", {
    parameters: { 'plan.$': '$.held.plan', 'error.$': '$.held.error', 'executionId.$': '$.held.executionId', 'event.$': '$.event' },
  });
  const reapCompensate = compensation('Roll back what the stopped swap did', reapFailed, '$.reapError');
  const reapRecorded = reapCompensate.next(record('Record the rollback of the stopped swap', 'rolled-back'));
  const reapDone = new sfn.Succeed(scope, 'The stopped swap was rolled back');
  let reapRollback: sfn.IChainable = reapCompensate;
  if (nodeRestore) {
    const reapNodes = nodeRestore("Put the stopped swap's nodes back", reapCompensate);
    // As in the swap's own rollback: the group is back, but nodes left cordoned need an operator.
    reapRecorded.next(new sfn.Choice(scope, "Were the stopped swap's nodes put back?").when(sfn.Condition.isPresent('$.nodeRollbackError'), reapFailed).otherwise(reapDone));
    reapRollback = new sfn.Choice(scope, 'Did the stopped swap touch Kubernetes nodes?').when(sfn.Condition.isPresent('$.plan.cluster'), reapNodes).otherwise(reapCompensate);
  } else reapRecorded.next(reapDone);
  const reaper = fleetStateMachine(scope, 'ReapSwapStateMachine', {
    stateMachineName: 'fleetwarden-reap-swap',
    definition: reapStart.next(settle).next(find).next(
      new sfn.Choice(scope, 'Did the stopped swap leave work half done?')
        .when(sfn.Condition.stringEquals('$.held.action', 'roll-back'), adopt.next(reapRollback))
        .otherwise(new sfn.Succeed(scope, 'Nothing was left half done')),
    ),
    timeout: Duration.hours(2),
    store,
  });
  new events.Rule(scope, 'ReapStoppedSwaps', {
    description: 'A NodeSwap execution that ended ABORTED, TIMED_OUT or FAILED -> ReapSwap rolls back what its lock still holds',
    eventPattern: {
      source: ['aws.states'],
      detailType: ['Step Functions Execution Status Change'],
      detail: { status: ['ABORTED', 'TIMED_OUT', 'FAILED'], stateMachineArn: [swapMachine.stateMachineArn] },
    },
    targets: [new targets.SfnStateMachine(reaper, { deadLetterQueue: store.asyncDeadLetters.queue, retryAttempts: 8, maxEventAge: Duration.hours(6) })],
  });
  acknowledge(
    reaper,
    'AwsSolutions-IAM5',
    'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to the swap functions (":*" covers their versions).',
    ['Resource::*', ...props.functions.map((fn) => `Resource::<${logicalIdOf(fn)}.Arn>:*`)],
  );
  return reaper;
}
