import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import type { Construct } from 'constructs';
import { RETRYABLE_ERROR_NAMES } from '../../functions/shared/errors';
import type { StateStore } from './state-store';

export interface FleetStateMachineProps {
  stateMachineName: string;
  definition: sfn.IChainable;
  timeout: Duration;
  store: StateStore;
}

/**
 * Every Fleetwarden workflow the same way: Standard, JSONPath (so the exact definition also runs
 * locally), full execution logging, X-Ray, the data key (its tables, queues and topic are
 * encrypted with it) and an alarm to the notification topic when an execution fails.
 */
export function fleetStateMachine(scope: Construct, id: string, props: FleetStateMachineProps): sfn.StateMachine {
  const { store } = props;
  const stateMachine = new sfn.StateMachine(scope, id, {
    stateMachineName: props.stateMachineName,
    stateMachineType: sfn.StateMachineType.STANDARD,
    definitionBody: sfn.DefinitionBody.fromChainable(props.definition),
    queryLanguage: sfn.QueryLanguage.JSON_PATH,
    timeout: props.timeout,
    tracingEnabled: true,
    logs: {
      destination: new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: store.removalPolicy }),
      level: sfn.LogLevel.ALL,
      includeExecutionData: true,
    },
  });
  store.grantDataKey(stateMachine);
  new cloudwatch.Alarm(scope, `${id}FailedAlarm`, {
    alarmName: `${Stack.of(scope).stackName}: an execution of ${props.stateMachineName} failed`,
    alarmDescription: `Open the failed execution of ${props.stateMachineName} in the Step Functions console: its last failed state names the error and its cause (a Fail state's cause says what to do). Fix the cause; a scheduled workflow runs again on its schedule, any other is started again by whoever started it.`,
    metric: stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }).addAlarmAction(new cwActions.SnsAction(store.topic));
  return stateMachine;
}

/** Lambda's own transient failures, as Step Functions names them. */
const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];

/**
 * A workflow's logic step: a Lambda task whose payload is the step's input and whose result is the
 * function's own answer, retried (with jitter) on Lambda's transient failures and on Fleetwarden's
 * `Retryable.*` errors; anything else is left to the caller's Catch.
 */
export function logicStep(scope: Construct, name: string, fn: lambda.IFunction, payload: Record<string, unknown>, resultPath: string | typeof sfn.JsonPath.DISCARD, timeout: Duration): tasks.LambdaInvoke {
  const task = new tasks.LambdaInvoke(scope, name, { lambdaFunction: fn, payload: sfn.TaskInput.fromObject(payload), payloadResponseOnly: true, resultPath, taskTimeout: sfn.Timeout.duration(timeout) });
  task.addRetry({ errors: [...LAMBDA_SERVICE_ERRORS, ...RETRYABLE_ERROR_NAMES], maxAttempts: 4, interval: Duration.seconds(2), backoffRate: 2, jitterStrategy: sfn.JitterType.FULL });
  return task;
}
