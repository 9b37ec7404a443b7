import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { CliUsageError, parseFlags, stackOutputs } from '../shared/cli';
import { type ExecutionStatus, type StartedExecution, describeExecution, startExecution } from '../shared/executions';
import { type SwapRequest, SwapRequestSchema } from './model';
import { type BatchRequest, BatchRequestSchema, BudgetSchema } from '../batch/model';

/**
 * `fleetwarden swap start | batch | status`: on-demand triggers of the NodeSwap and SwapBatch
 * workflows. Flags are parsed with zod, the request is validated with the workflow's own input
 * schema, and every bad input is answered with the flag it came from.
 */
export const SWAP_USAGE = `usage: fleetwarden swap start --group G [--instance i-…] [--cluster C] [--reason TEXT] [--dry-run | --no-dry-run]
                             (--stack NAME | --state-machine ARN) [--region R]
       fleetwarden swap batch (--groups a,b | --cluster C) [--instances i-1,i-2] [--budget 2 | --budget 25%] [--no-canary]
                             [--max-failed N] [--urgent] [--dry-run | --no-dry-run] [--reason TEXT]
                             (--stack NAME | --state-machine ARN) [--region R]
       fleetwarden swap status --execution ARN [--region R] [--json]

Without --dry-run or --no-dry-run a swap follows the deployment's dryRun setting.
Exit status: 0 started (status: running or succeeded), 1 failed, 2 bad usage.`;

/** The stack outputs that name each workflow (lib/fleetwarden-stack.ts). */
export const STACK_OUTPUTS = { swap: 'NodeSwapStateMachineArn', batch: 'SwapBatchStateMachineArn' } as const;

/** A flag given without a value parses as `true`; an absent one as undefined. */
const STRING = () => z.string({ error: (issue) => (issue.input === undefined ? 'required' : 'needs a value') });
const REGION = STRING().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1');
const STATE_MACHINE_ARN = STRING().regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/, 'a state machine ARN looks like arn:aws:states:us-east-1:111111111111:stateMachine:fleetwarden-node-swap');
const EXECUTION_ARN = STRING().regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:[A-Za-z0-9_-]{1,80}$/, 'an execution ARN looks like arn:aws:states:us-east-1:111111111111:execution:fleetwarden-node-swap:manual-…');
/** A switch: present or absent, never given a value. */
const SWITCH = z.literal(true, 'a switch takes no value').optional();
const TEXT = STRING().min(1, 'needs a value');

const WhereSchema = {
  stack: TEXT.optional(),
  'state-machine': STATE_MACHINE_ARN.optional(),
  region: REGION.optional(),
};
const oneTarget = (a: { stack?: string; 'state-machine'?: string }) => (a.stack === undefined) !== (a['state-machine'] === undefined);
const TARGET_MESSAGE = { message: 'give --stack NAME or --state-machine ARN (one of them)', path: ['stack'] };
const oneDryRun = (a: { 'dry-run'?: true; 'no-dry-run'?: true }) => !(a['dry-run'] && a['no-dry-run']);
const DRY_RUN_MESSAGE = { message: 'give --dry-run or --no-dry-run, not both', path: ['dry-run'] };

/** A comma-separated list, empty items refused. */
const list = (item: z.ZodString) =>
  TEXT.transform((raw) => raw.split(',').map((s) => s.trim())).pipe(z.array(item.min(1, 'an empty item in the list')).min(1));

export const SwapStartFlagsSchema = z
  .strictObject({
    group: TEXT,
    instance: TEXT.optional(),
    cluster: TEXT.optional(),
    reason: TEXT.optional(),
    'dry-run': SWITCH,
    'no-dry-run': SWITCH,
    ...WhereSchema,
  })
  .refine(oneTarget, TARGET_MESSAGE)
  .refine(oneDryRun, DRY_RUN_MESSAGE);

export const SwapBatchFlagsSchema = z
  .strictObject({
    groups: list(z.string()).optional(),
    cluster: TEXT.optional(),
    instances: list(z.string()).optional(),
    budget: TEXT.transform((raw, ctx) => {
      const parsed = BudgetSchema.safeParse(/^\d+$/.test(raw) ? { count: Number(raw) } : /^\d+(\.\d+)?%$/.test(raw) ? { percent: Number(raw.slice(0, -1)) } : undefined);
      if (parsed.success) return parsed.data;
      ctx.addIssue({ code: 'custom', message: 'a count like 2 or a percent like 25%' });
      return z.NEVER;
    }).optional(),
    'no-canary': SWITCH,
    'max-failed': TEXT.regex(/^\d+$/, 'a whole number from 0 to 100').transform(Number).pipe(z.number().max(100, 'a whole number from 0 to 100')).optional(),
    urgent: SWITCH,
    reason: TEXT.optional(),
    'dry-run': SWITCH,
    'no-dry-run': SWITCH,
    ...WhereSchema,
  })
  .refine(oneTarget, TARGET_MESSAGE)
  .refine(oneDryRun, DRY_RUN_MESSAGE);

export const SwapStatusFlagsSchema = z.strictObject({ execution: EXECUTION_ARN, region: REGION.optional(), json: SWITCH });

/** Where the workflow is: a stack whose outputs name it, or its ARN. */
export type Target = { stack: string } | { stateMachine: string };

export interface SwapStartArgs {
  target: Target;
  region?: string;
  request: SwapRequest;
}
export interface SwapBatchArgs {
  target: Target;
  region?: string;
  request: BatchRequest;
}
export interface SwapStatusArgs {
  execution: string;
  region?: string;
  json: boolean;
}

/** The flag each request field comes from, to name it in an error. */
const START_FLAGS: Record<string, string> = { group: 'group', instanceId: 'instance', cluster: 'cluster', reason: 'reason', dryRun: 'dry-run' };
const BATCH_FLAGS: Record<string, string> = {
  groups: 'groups',
  cluster: 'cluster',
  instanceIds: 'instances',
  budget: 'budget',
  canary: 'no-canary',
  maxFailedSwaps: 'max-failed',
  urgent: 'urgent',
  reason: 'reason',
  dryRun: 'dry-run',
};

/** `--flag: message` for each issue; unknown flags and stray words said plainly. */
function usageError(error: z.ZodError, flagOf: (path: PropertyKey[]) => string | undefined = (path) => (path.length ? String(path[0]) : undefined)): CliUsageError {
  const lines = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown flag${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => `--${k}`).join(', ')}`;
    const flag = flagOf(issue.path);
    return flag ? `--${flag}: ${issue.message}` : issue.message;
  });
  return new CliUsageError([...new Set(lines)].join('; '));
}

function parse<S extends z.ZodType>(schema: S, argv: string[]): z.infer<S> {
  const result = schema.safeParse(parseFlags(argv));
  if (!result.success) throw usageError(result.error);
  return result.data;
}

function validated<S extends z.ZodType>(schema: S, request: unknown, flags: Record<string, string>): z.infer<S> {
  const result = schema.safeParse(request);
  if (!result.success) throw usageError(result.error, (path) => flags[String(path[0])] ?? String(path[0]));
  return result.data;
}

const targetOf = (a: { stack?: string; 'state-machine'?: string }): Target => (a.stack !== undefined ? { stack: a.stack } : { stateMachine: a['state-machine']! });
const dryRunOf = (a: { 'dry-run'?: true; 'no-dry-run'?: true }) => (a['dry-run'] ? true : a['no-dry-run'] ? false : undefined);
const withoutUndefined = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

export function parseSwapStartArgs(argv: string[]): SwapStartArgs {
  const a = parse(SwapStartFlagsSchema, argv);
  const request = validated(SwapRequestSchema, withoutUndefined({ group: a.group, instanceId: a.instance, cluster: a.cluster, reason: a.reason, trigger: 'manual', dryRun: dryRunOf(a) }), START_FLAGS);
  return withoutUndefined({ target: targetOf(a), region: a.region, request });
}

export function parseSwapBatchArgs(argv: string[]): SwapBatchArgs {
  const a = parse(SwapBatchFlagsSchema, argv);
  const request = validated(
    BatchRequestSchema,
    withoutUndefined({
      groups: a.groups,
      cluster: a.cluster,
      instanceIds: a.instances,
      trigger: 'manual',
      reason: a.reason,
      budget: a.budget,
      canary: a['no-canary'] ? false : undefined,
      maxFailedSwaps: a['max-failed'],
      urgent: a.urgent,
      dryRun: dryRunOf(a),
    }),
    BATCH_FLAGS,
  );
  return withoutUndefined({ target: targetOf(a), region: a.region, request });
}

export function parseSwapStatusArgs(argv: string[]): SwapStatusArgs {
  const a = parse(SwapStatusFlagsSchema, argv);
  return withoutUndefined({ execution: a.execution, region: a.region, json: a.json === true });
}

/** The workflow's ARN: given, or read from the stack's outputs. */
export async function resolveStateMachine(target: Target, output: (typeof STACK_OUTPUTS)[keyof typeof STACK_OUTPUTS], region?: string): Promise<string> {
  if ('stateMachine' in target) return target.stateMachine;
  const outputs = await stackOutputs(target.stack, region);
  const arn = outputs[output];
  if (!arn) throw new CliUsageError(`--stack: stack ${target.stack} has no output ${output}${output === STACK_OUTPUTS.batch ? ' (deployed before batch swaps?)' : ''}`);
  return arn;
}

/** A readable, unique execution name: what started it, for which group, when. */
export function manualExecutionName(subject: string, now = new Date()): string {
  const safe = subject.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'swap';
  const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
  return `manual-${safe}-${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface Started extends StartedExecution {
  stateMachineArn: string;
  name: string;
  input: SwapRequest | BatchRequest;
}

export async function runSwapStart(args: SwapStartArgs): Promise<Started> {
  const stateMachineArn = await resolveStateMachine(args.target, STACK_OUTPUTS.swap, args.region);
  const name = manualExecutionName(args.request.group);
  return { ...(await startExecution(stateMachineArn, name, args.request, { region: args.region })), stateMachineArn, name, input: args.request };
}

export async function runSwapBatch(args: SwapBatchArgs): Promise<Started> {
  const stateMachineArn = await resolveStateMachine(args.target, STACK_OUTPUTS.batch, args.region);
  const name = manualExecutionName(args.request.groups?.join('-') ?? `cluster-${args.request.cluster}`);
  return { ...(await startExecution(stateMachineArn, name, args.request, { region: args.region })), stateMachineArn, name, input: args.request };
}

export const runSwapStatus = (args: SwapStatusArgs): Promise<ExecutionStatus> => describeExecution(args.execution, { region: args.region });

export function formatStarted(started: Started, region?: string): string {
  return [
    `started ${started.executionArn}`,
    `input ${JSON.stringify(started.input)}`,
    `follow it: fleetwarden swap status --execution ${started.executionArn}${region ? ` --region ${region}` : ''}`,
  ].join('\n');
}

export function formatStatus(status: ExecutionStatus): string {
  const lines = [`${status.status}: ${status.name}${status.startDate ? `, started ${status.startDate.toISOString()}` : ''}${status.stopDate ? `, stopped ${status.stopDate.toISOString()}` : ''}`];
  if (status.error || status.cause) lines.push(`error ${status.error ?? ''}${status.cause ? `: ${status.cause}` : ''}`);
  if (status.output !== undefined) lines.push(`output ${JSON.stringify(status.output, null, 2)}`);
  return lines.join('\n');
}

/** Statuses that mean the work did not get done. */
export const FAILED_STATUSES = ['FAILED', 'TIMED_OUT', 'ABORTED'];

/** `fleetwarden swap <command> …`: the text to print and the exit status. */
export async function runSwapCommand(command: string | undefined, argv: string[]): Promise<{ text: string; code: number }> {
  switch (command) {
    case 'start': {
      const args = parseSwapStartArgs(argv);
      return { text: formatStarted(await runSwapStart(args), args.region), code: 0 };
    }
    case 'batch': {
      const args = parseSwapBatchArgs(argv);
      return { text: formatStarted(await runSwapBatch(args), args.region), code: 0 };
    }
    case 'status': {
      const args = parseSwapStatusArgs(argv);
      const status = await runSwapStatus(args);
      return { text: args.json ? JSON.stringify(status, null, 2) : formatStatus(status), code: FAILED_STATUSES.includes(status.status) ? 1 : 0 };
    }
    default:
      throw new CliUsageError(command ? `unknown swap command "${command}"` : 'name a swap command: start, batch or status');
  }
}
