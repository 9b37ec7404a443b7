import { SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { awsClient } from '../functions/shared/aws';
import { describeExecution, runningExecutions } from '../functions/shared/executions';
import type { LocalStack } from './provision';
import { type ExecutionResult, type RunOptions, runStateMachine } from './stepfunctions';

/**
 * What Step Functions does with an execution a trigger started: moto records StartExecution
 * (a real call from the drift detector, a schedule or the CLI) but runs nothing, so this picks
 * up the machine's RUNNING executions in moto, runs each locally under its own name with its own
 * input, then closes it in moto (StopExecution, the only way moto closes one) with the outcome as
 * the cause, so that "is a batch already running?" checks see it finished.
 */
export async function runStartedExecutions(stack: LocalStack, logicalIdPrefix: string, options: Omit<RunOptions, 'executionName'> = {}): Promise<{ name: string; input: unknown; result: ExecutionResult }[]> {
  const machine = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(logicalIdPrefix));
  if (!machine) throw new Error(`no state machine ${logicalIdPrefix}*`);
  const runs: { name: string; input: unknown; result: ExecutionResult }[] = [];
  // Oldest first, as they were started.
  for (const execution of (await runningExecutions(machine.arn, '')).reverse()) {
    const { input } = await describeExecution(execution.executionArn);
    const result = await runStateMachine(stack, logicalIdPrefix, input, { ...options, executionName: execution.name });
    await awsClient(SFNClient).send(new StopExecutionCommand({ executionArn: execution.executionArn, error: result.status, cause: `ran locally: ${result.status}${result.error ? ` (${result.error})` : ''}` }));
    runs.push({ name: execution.name, input, result });
  }
  return runs;
}
