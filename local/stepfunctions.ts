import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { StateMachine } from 'aws-local-stepfunctions';
import { awsClient } from '../functions/shared/aws';
import { executionArnOf } from '../functions/shared/executions';
import { PROJECT_ROOT } from '../lib/paths';
import type { LocalFunction, LocalStack, LocalStateMachine } from './provision';

/**
 * Runs a state machine of the synthesized stack with aws-local-stepfunctions: the exact
 * definition CDK produced, every Task wired to something real —
 * - `lambda:invoke` (or a bare function ARN): the function's TypeScript handler, in process,
 *   with the environment the template gives it;
 * - `aws-sdk:<service>:<action>` and optimized integrations (`events:putEvents`, `sns:publish`,
 *   ...): the real AWS SDK v3 call against moto;
 * - `states:startExecution.sync:2`: the child state machine of the same stack, run the same way
 *   (its result shaped like DescribeExecution, its failure as `States.TaskFailed`).
 * Errors keep the names Step Functions would give them, so Retry/Catch behave as deployed.
 */
export type TaskHandler = (input: unknown) => Promise<unknown>;

export interface RunOptions {
  /**
   * Wrap a state's real task, e.g. to inject a fault before or after it: receives the state's
   * input and the real task.
   */
  around?: Record<string, (input: unknown, real: TaskHandler) => Promise<unknown>>;
  /** Wait states take this long (ms) instead of their configured time. */
  waitMs?: number;
  /** Retry intervals take this long (ms) instead of their configured backoff. */
  retryMs?: number;
  executionName?: string;
  /** Stop the execution (as StopExecution does) right after this state's task has run: no Catch, no rollback. */
  abortAfter?: string;
}

export interface ExecutionEvent {
  type: string;
  state?: string;
  error?: string;
  cause?: string;
}

export interface ExecutionResult {
  status: 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  output?: unknown;
  error?: string;
  cause?: string;
  events: ExecutionEvent[];
  /** States entered, retries included: what Step Functions Standard bills as state transitions. */
  transitions: number;
  lambdaInvocations: number;
  sdkCalls: number;
  /** Executions this one started and waited for (`startExecution.sync:2`), in start order. */
  children: ExecutionResult[];
}

interface TaskState {
  Type: 'Task';
  Resource: string;
}

/** Every Task state, nested Parallel branches and Map iterators included, by state name. */
export function taskStates(definition: Record<string, unknown>): Map<string, TaskState> {
  const found = new Map<string, TaskState>();
  const visit = (machine: { States?: Record<string, any> }) => {
    for (const [name, state] of Object.entries(machine.States ?? {})) {
      if (state.Type === 'Task') found.set(name, state as TaskState);
      for (const branch of state.Branches ?? []) visit(branch);
      if (state.Iterator) visit(state.Iterator);
      if (state.ItemProcessor) visit(state.ItemProcessor);
    }
  };
  visit(definition as { States?: Record<string, unknown> });
  return found;
}

export function stateNames(definition: Record<string, unknown>): string[] {
  const names: string[] = [];
  const visit = (machine: { States?: Record<string, any> }) => {
    for (const [name, state] of Object.entries(machine.States ?? {})) {
      names.push(name);
      for (const branch of state.Branches ?? []) visit(branch);
      if (state.Iterator) visit(state.Iterator);
      if (state.ItemProcessor) visit(state.ItemProcessor);
    }
  };
  visit(definition as { States?: Record<string, unknown> });
  return names;
}

export async function runStateMachine(stack: LocalStack, logicalIdPrefix: string, input: unknown, options: RunOptions = {}): Promise<ExecutionResult> {
  const machine = [...stack.stateMachines.values()].filter((m) => m.logicalId.startsWith(logicalIdPrefix));
  if (machine.length !== 1) throw new Error(`expected one state machine ${logicalIdPrefix}*, found ${machine.length}`);
  return runMachine(stack, machine[0]!, input, options);
}

async function runMachine(stack: LocalStack, machine: LocalStateMachine, input: unknown, options: RunOptions): Promise<ExecutionResult> {
  const { definition, arn } = machine;
  const counters = { lambdaInvocations: 0, sdkCalls: 0 };
  const children: ExecutionResult[] = [];
  const handlers: Record<string, TaskHandler> = {};
  const control: { abort?: () => void } = {};
  for (const [name, state] of taskStates(definition)) {
    const real = state.Resource.startsWith('arn:aws:states:::states:startExecution') ? childExecution(stack, state.Resource, options, children) : taskHandler(stack, state.Resource, counters);
    const wrap = options.around?.[name];
    const wrapped: TaskHandler = wrap ? (taskInput) => wrap(taskInput, real) : real;
    handlers[name] =
      options.abortAfter === name
        ? async (taskInput) => {
            await wrapped(taskInput);
            control.abort?.();
            return new Promise(() => undefined); // the execution is gone: nothing comes back
          }
        : wrapped;
  }
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const name of stateNames(definition)) {
    if (options.waitMs !== undefined) waitTimeOverrides[name] = options.waitMs;
    if (options.retryMs !== undefined) retryIntervalOverrides[name] = options.retryMs;
  }
  const executionName = options.executionName ?? `local-${Date.now().toString(36)}`;
  const execution = new StateMachine(definition as never).run(input as never, {
    noThrowOnAbort: true,
    overrides: { taskResourceLocalHandlers: handlers as never, waitTimeOverrides, retryIntervalOverrides },
    context: {
      Execution: {
        Id: executionArnOf(arn, executionName),
        Name: executionName,
        Input: input,
        StartTime: new Date().toISOString(),
      },
      StateMachine: { Id: arn, Name: arn.split(':').pop() },
    } as never,
  });
  let aborted = false;
  control.abort = () => {
    aborted = true;
    execution.abort();
  };
  const events: ExecutionEvent[] = [];
  const logging = (async () => {
    for await (const event of execution.eventLogs as AsyncIterable<Record<string, any>>) {
      const type = String(event.type);
      const state = event.state?.name as string | undefined;
      const entry: ExecutionEvent = { type, ...(state ? { state } : {}) };
      if (event.Error ?? event.error) {
        const err = event.Error ?? event.error;
        entry.error = typeof err === 'string' ? err : err?.name;
        entry.cause = event.Cause ?? event.cause ?? err?.message;
      }
      events.push(entry);
    }
  })();
  try {
    const output = await execution.result;
    // A stopped execution's event log may never close: it is not waited for.
    if (!aborted) await logging;
    return { status: aborted ? 'ABORTED' : 'SUCCEEDED', output: aborted ? undefined : output, events, transitions: countTransitions(events), ...counters, children };
  } catch (error) {
    await logging.catch(() => undefined);
    // The run rejects with an ExecutionError whose cause is what failed (a Fail state's error).
    const failure = ((error as { cause?: Error }).cause ?? error) as Error;
    return {
      status: 'FAILED',
      error: failure.name,
      cause: failure.message,
      events,
      transitions: countTransitions(events),
      ...counters,
      children,
    };
  }
}

/** Child execution names used so far, per stack and state machine. */
const childNames = new WeakMap<LocalStack, Set<string>>();

/**
 * `states:startExecution.sync:2`: runs the child machine of the same stack locally (with the
 * parent's overrides, so a fault can be injected into a child's state) and answers as Step
 * Functions does: DescribeExecution's shape with Input/Output as JSON on success, and
 * `States.TaskFailed` whose cause carries the child's Error and Cause on failure.
 */

function childExecution(stack: LocalStack, resource: string, options: RunOptions, children: ExecutionResult[]): TaskHandler {
  if (resource !== 'arn:aws:states:::states:startExecution.sync:2') throw new Error(`Task resource ${resource} is not supported locally (only startExecution.sync:2)`);
  return async (taskInput) => {
    const { StateMachineArn, Input, Name } = taskInput as { StateMachineArn: string; Input?: unknown; Name?: string };
    const child = [...stack.stateMachines.values()].find((m) => m.arn === StateMachineArn);
    if (!child) throw Object.assign(new Error(`State machine ${StateMachineArn} does not exist`), { name: 'StepFunctions.StateMachineDoesNotExistException' });
    const input = typeof Input === 'string' ? JSON.parse(Input) : (Input ?? {});
    const name = Name ?? `local-${Date.now().toString(36)}`;
    // Step Functions keeps an execution's name for 90 days: a second start under it is refused
    // (unless it repeats a running execution's input, which a local run never outlives).
    const used = childNames.get(stack) ?? new Set<string>();
    childNames.set(stack, used);
    if (used.has(`${StateMachineArn}:${name}`)) throw Object.assign(new Error(`Execution Already Exists: '${name}'`), { name: 'StepFunctions.ExecutionAlreadyExistsException' });
    used.add(`${StateMachineArn}:${name}`);
    const startDate = new Date().toISOString();
    const result = await runMachine(stack, child, input, { ...options, executionName: name });
    children.push(result);
    const executionArn = executionArnOf(StateMachineArn, name);
    const described = { ExecutionArn: executionArn, StateMachineArn, Name: name, StartDate: startDate, StopDate: new Date().toISOString(), Input: input, InputDetails: { Included: true } };
    if (result.status === 'SUCCEEDED') return { ...described, Status: 'SUCCEEDED', Output: result.output, OutputDetails: { Included: true } };
    const failure = new Error(JSON.stringify({ ...described, Status: 'FAILED', Error: result.error, Cause: result.cause }));
    failure.name = 'States.TaskFailed';
    throw failure;
  };
}

function countTransitions(events: ExecutionEvent[]): number {
  return events.filter((e) => e.type === 'StateEntered').length;
}

function taskHandler(stack: LocalStack, resource: string, counters: { lambdaInvocations: number; sdkCalls: number }): TaskHandler {
  if (resource === 'arn:aws:states:::lambda:invoke') {
    return async (input) => {
      const { FunctionName, Payload } = input as { FunctionName: string; Payload: unknown };
      counters.lambdaInvocations += 1;
      const result = await invokeFunction(stack, functionByName(stack, FunctionName), Payload);
      return { StatusCode: 200, ExecutedVersion: '$LATEST', Payload: result };
    };
  }
  if (resource.startsWith('arn:aws:lambda:')) {
    return async (input) => {
      counters.lambdaInvocations += 1;
      return invokeFunction(stack, functionByName(stack, resource), input);
    };
  }
  const match = /^arn:aws:states:::(aws-sdk:)?([a-z0-9]+):([A-Za-z0-9]+)$/.exec(resource);
  if (!match) throw new Error(`Task resource ${resource} is not supported locally (.sync and .waitForTaskToken are not)`);
  const [, sdk, service, action] = match as unknown as [string, string | undefined, string, string];
  return async (input) => {
    counters.sdkCalls += 1;
    return sdkCall(service!, action!, input as Record<string, unknown>, !sdk);
  };
}

function functionByName(stack: LocalStack, nameOrArn: string): LocalFunction {
  const bare = nameOrArn.replace(/:(\$LATEST|\d+)$/, '');
  const fn = [...stack.functions.values()].find((f) => f.arn === bare || f.name === bare);
  if (!fn) throw new Error(`no local function for ${nameOrArn}`);
  return fn;
}

/**
 * One environment object per function, reused while nothing in it changes: like a warm Lambda
 * container, the handler's per-cold-start wiring (clients, caches, assumed roles) survives
 * between invocations.
 */
const containers = new Map<string, { key: string; env: NodeJS.ProcessEnv }>();

function containerEnv(fn: LocalFunction): NodeJS.ProcessEnv {
  const env = { ...process.env, ...fn.environment, AWS_LAMBDA_FUNCTION_NAME: fn.name };
  const key = JSON.stringify(env);
  const warm = containers.get(fn.arn);
  if (warm?.key === key) return warm.env;
  containers.set(fn.arn, { key, env });
  return env;
}

/** Invokes a function's handler in process, with its template environment, as Lambda would. */
export async function invokeFunction(_stack: LocalStack, fn: LocalFunction, payload: unknown): Promise<unknown> {
  const saved = process.env;
  process.env = containerEnv(fn);
  try {
    const module = (await import(pathToFileURL(path.join(PROJECT_ROOT, fn.entry)).href)) as { handler: (e: unknown, c: unknown) => Promise<unknown> };
    return await module.handler(structuredClone(payload), lambdaContext(fn));
  } catch (error) {
    // Lambda reports { errorType, errorMessage } and Step Functions matches on errorType.
    const e = error as Error;
    const failure = new Error(JSON.stringify({ errorType: e.name, errorMessage: e.message }));
    failure.name = e.name;
    throw failure;
  } finally {
    process.env = saved;
  }
}

function lambdaContext(fn: LocalFunction) {
  const deadline = Date.now() + fn.timeoutSeconds * 1000;
  return {
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: fn.arn,
    memoryLimitInMB: '512',
    awsRequestId: crypto.randomUUID(),
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: 'local',
    callbackWaitsForEmptyEventLoop: false,
    // The function's own timeout from the template, counting down as Lambda's does.
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/**
 * SDK v3 package and client for each service name in a Task ARN, and how Step Functions names
 * its errors: AWS SDK integrations as `<Service>.<Error>Exception` with the service in
 * PascalCase (`S3.NoSuchKeyException`, `DynamoDb.ConditionalCheckFailedException`), the
 * optimized integrations with their own prefix (`DynamoDB.…`, `SNS.…`).
 */
const SERVICES: Record<string, { module: string; client: string; sdkPrefix: string; optimizedPrefix?: string }> = {
  s3: { module: '@aws-sdk/client-s3', client: 'S3Client', sdkPrefix: 'S3' },
  dynamodb: { module: '@aws-sdk/client-dynamodb', client: 'DynamoDBClient', sdkPrefix: 'DynamoDb', optimizedPrefix: 'DynamoDB' },
  ec2: { module: '@aws-sdk/client-ec2', client: 'EC2Client', sdkPrefix: 'Ec2' },
  autoscaling: { module: '@aws-sdk/client-auto-scaling', client: 'AutoScalingClient', sdkPrefix: 'AutoScaling' },
  sns: { module: '@aws-sdk/client-sns', client: 'SNSClient', sdkPrefix: 'Sns', optimizedPrefix: 'SNS' },
  sqs: { module: '@aws-sdk/client-sqs', client: 'SQSClient', sdkPrefix: 'Sqs', optimizedPrefix: 'SQS' },
  events: { module: '@aws-sdk/client-eventbridge', client: 'EventBridgeClient', sdkPrefix: 'EventBridge', optimizedPrefix: 'EventBridge' },
  eventbridge: { module: '@aws-sdk/client-eventbridge', client: 'EventBridgeClient', sdkPrefix: 'EventBridge' },
  kms: { module: '@aws-sdk/client-kms', client: 'KMSClient', sdkPrefix: 'Kms' },
};

/** The error name a Task's Retry/Catch sees for an SDK error. */
export function stepFunctionsErrorName(service: string, sdkErrorName: string, optimized: boolean): string {
  const spec = SERVICES[service]!;
  const prefix = optimized ? (spec.optimizedPrefix ?? spec.sdkPrefix) : spec.sdkPrefix;
  // EC2's dotted codes (InvalidInstanceID.NotFound) are not modelled: they surface as the generic one.
  if (service === 'ec2' && !optimized && sdkErrorName.includes('.')) return 'Ec2.Ec2Exception';
  return `${prefix}.${sdkErrorName.endsWith('Exception') ? sdkErrorName : `${sdkErrorName}Exception`}`;
}

async function sdkCall(service: string, action: string, input: Record<string, unknown>, optimized: boolean): Promise<unknown> {
  const spec = SERVICES[service];
  if (!spec) throw new Error(`no local SDK mapping for service ${service}`);
  const module = (await import(spec.module)) as Record<string, any>;
  const commandName = `${action[0]!.toUpperCase()}${action.slice(1)}Command`;
  const Command = module[commandName];
  if (!Command) throw new Error(`${spec.module} has no ${commandName}`);
  const client = awsClient(module[spec.client]) as { send: (c: unknown) => Promise<Record<string, unknown>> };
  // The optimized EventBridge integration takes Detail as JSON and serializes it itself.
  if (optimized && (service === 'events' || service === 'eventbridge') && Array.isArray(input.Entries)) {
    input = { ...input, Entries: (input.Entries as Record<string, unknown>[]).map((e) => ({ ...e, Detail: typeof e.Detail === 'string' ? e.Detail : JSON.stringify(e.Detail) })) };
  }
  try {
    const { $metadata: _metadata, ...output } = await client.send(new Command(input));
    if (optimized && (service === 'events' || service === 'eventbridge') && Number(output.FailedEntryCount ?? 0) > 0) {
      const failure = new Error(JSON.stringify(output.Entries));
      failure.name = 'EventBridge.FailedEntry';
      throw failure;
    }
    if (output.Body && typeof (output.Body as { transformToString?: unknown }).transformToString === 'function') {
      output.Body = await (output.Body as { transformToString: () => Promise<string> }).transformToString();
    }
    return output;
  } catch (error) {
    const e = error as Error;
    if (e.name === 'EventBridge.FailedEntry') throw e;
    const failure = new Error(e.message);
    failure.name = stepFunctionsErrorName(service, e.name, optimized);
    throw failure;
  }
}
