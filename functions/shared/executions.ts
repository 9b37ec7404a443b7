import { DescribeExecutionCommand, ExecutionAlreadyExists, ListExecutionsCommand, SFNClient, StartExecutionCommand } from '@aws-sdk/client-sfn';
import { type AwsClientOptions, awsClient } from './aws';

/** Step Functions' rule for execution names: at most 80 characters from this set. */
export const EXECUTION_NAME = /^[A-Za-z0-9_-]{1,80}$/;

export interface StartedExecution {
  /** False when an execution of that name already existed: someone started this work before. */
  started: boolean;
  executionArn: string;
}

/** The ARN Step Functions gives an execution: the machine's ARN with `stateMachine` -> `execution` and the name appended. */
export function executionArnOf(stateMachineArn: string, name: string): string {
  return `${stateMachineArn.replace(':stateMachine:', ':execution:')}:${name}`;
}

/**
 * Starts a Standard workflow execution under a name the caller chose. A name is unique per state
 * machine (for 90 days after the execution closes), so a trigger that fires again with the same
 * name finds its own earlier execution: ExecutionAlreadyExists (a closed execution, or a
 * different input) and a repeat of a running one with the same input (Step Functions answers 200
 * with the existing ARN) both mean "already started", not an error. Without a name Step
 * Functions picks a unique one.
 */
export async function startExecution(stateMachineArn: string, name: string | undefined, input: unknown, options: AwsClientOptions = {}): Promise<StartedExecution> {
  if (name !== undefined && !EXECUTION_NAME.test(name)) throw new Error(`invalid execution name "${name}": at most 80 of A-Z a-z 0-9 - _`);
  const requested = Date.now();
  try {
    const out = await awsClient(SFNClient, options).send(new StartExecutionCommand({ stateMachineArn, name, input: JSON.stringify(input) }));
    // A repeat of a running execution's name and input is answered with that execution's ARN and
    // start date: it started now only if its start date is not older than this call.
    const started = out.startDate === undefined || out.startDate.getTime() >= requested - CLOCK_SKEW_MS;
    return { started, executionArn: out.executionArn! };
  } catch (error) {
    if (error instanceof ExecutionAlreadyExists || (error as Error).name === 'ExecutionAlreadyExists') {
      return { started: false, executionArn: executionArnOf(stateMachineArn, name!) };
    }
    throw error;
  }
}

/** Tolerated difference between this clock and Step Functions' (both NTP-synchronised). */
const CLOCK_SKEW_MS = 2_000;

export interface ExecutionStatus {
  executionArn: string;
  name: string;
  status: string;
  startDate?: Date;
  stopDate?: Date;
  input?: unknown;
  output?: unknown;
  error?: string;
  cause?: string;
}

/** An execution's status, with its input and, once it has closed, its output or error. */
export async function describeExecution(executionArn: string, options: AwsClientOptions = {}): Promise<ExecutionStatus> {
  const out = await awsClient(SFNClient, options).send(new DescribeExecutionCommand({ executionArn }));
  const parse = (text: string | undefined) => {
    if (text === undefined) return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return text;
    }
  };
  return {
    executionArn: out.executionArn!,
    name: out.name ?? executionArn.split(':').pop()!,
    status: out.status ?? 'UNKNOWN',
    startDate: out.startDate,
    stopDate: out.stopDate,
    input: parse(out.input),
    output: parse(out.output),
    error: out.error,
    cause: out.cause,
  };
}

/** An execution's status by its ARN, or `absent` when there is none of that name. */
export async function executionStatus(executionArn: string, options: AwsClientOptions = {}): Promise<string> {
  try {
    return (await describeExecution(executionArn, options)).status;
  } catch (error) {
    if ((error as Error).name === 'ExecutionDoesNotExist') return 'absent';
    throw error;
  }
}

/** Running executions of a state machine whose names start with `namePrefix`. */
export async function runningExecutions(stateMachineArn: string, namePrefix: string, options: AwsClientOptions = {}): Promise<{ name: string; executionArn: string }[]> {
  const client = awsClient(SFNClient, options);
  const found: { name: string; executionArn: string }[] = [];
  let nextToken: string | undefined;
  do {
    const page = await client.send(new ListExecutionsCommand({ stateMachineArn, statusFilter: 'RUNNING', maxResults: 1000, nextToken }));
    for (const e of page.executions ?? []) if (e.name?.startsWith(namePrefix)) found.push({ name: e.name, executionArn: e.executionArn! });
    nextToken = page.nextToken;
  } while (nextToken);
  return found;
}
