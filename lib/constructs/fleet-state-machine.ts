import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
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
    alarmDescription: `Executions of ${stateMachine.node.path} failed`,
    metric: stateMachine.metricFailed({ period: Duration.minutes(5), statistic: 'Sum' }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  }).addAlarmAction(new cwActions.SnsAction(store.topic));
  return stateMachine;
}
