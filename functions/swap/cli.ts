import { randomBytes } from 'node:crypto';
import * as z from 'zod';
import { AwsFlags, type CliResult, CliUsageError, awsOptions, cliCommand, flagValue, parseCommandArgs, requireOutput, runCommand, stackOutputs, switchFlag, usageErrorFrom } from '../shared/cli';
import { type ExecutionStatus, type StartedExecution, describeExecution, startExecution } from '../shared/executions';
import { type SwapRequest, SwapRequestSchema } from './model';
import { type BatchRequest, BatchRequestSchema, BudgetSchema } from '../batch/model';

/**
 * `fleetwarden swap start | batch | status`: on-demand triggers of the NodeSwap and SwapBatch
 * workflows. Flags are parsed with zod, the request is validated with the workflow's own input
 * schema, and every bad input is answered with the flag it came from.
 */
export const SWAP_USAGE = `usage: fleetwarden swap start --group G [--instance i-…] [--cluster C] [--reason TEXT] [--dry-run | --no-dry-run]
                             (--stack NAME | --state-machine ARN) [--region R] [--profile P] [--json]
       fleetwarden swap batch (--groups a,b | --cluster C) [--instances i-1,i-2] [--budget 2 | --budget 25%] [--no-canary]
                             [--max-failed N] [--urgent] [--dry-run | --no-dry-run] [--reason TEXT]
                             (--stack NAME | --state-machine ARN) [--region R] [--profile P] [--json]
       fleetwarden swap status --execution ARN [--region R] [--profile P] [--json]

Without --dry-run or --no-dry-run a swap follows the deployment's dryRun setting.
Exit status: 0 started (status: running or succeeded), 1 failed, 2 bad usage.`;

/** The stack outputs that name each workflow (lib/fleetwarden-stack.ts). */
export const STACK_OUTPUTS = { swap: 'NodeSwapStateMachineArn', batch: 'SwapBatchStateMachineArn' } as const;

const STRING = flagValue;
const STATE_MACHINE_ARN = STRING().regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}$/, 'a state machine ARN looks like arn:aws:states:us-east-1:111111111111:stateMachine:fleetwarden-node-swap');
const EXECUTION_ARN = STRING().regex(/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[A-Za-z0-9_-]{1,80}:[A-Za-z0-9_-]{1,80}$/, 'an execution ARN looks like arn:aws:states:us-east-1:111111111111:execution:fleetwarden-node-swap:manual-…');
const SWITCH = switchFlag();
const TEXT = STRING().min(1, 'needs a value');

const WhereSchema = {
  stack: TEXT.optional().describe('the Fleetwarden stack, whose outputs name the workflow'),
  'state-machine': STATE_MACHINE_ARN.optional().describe('the workflow’s ARN, instead of --stack'),
  ...AwsFlags,
  json: SWITCH.describe('print JSON instead of text'),
};
const DRY_RUN_FLAGS = {
  'dry-run': SWITCH.describe('plan and record only, whatever the deployment says'),
  'no-dry-run': SWITCH.describe('act, even if the deployment is in dry-run'),
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
    group: TEXT.describe('the Auto Scaling group'),
    instance: TEXT.optional().describe('the instance to replace (default: the group picks)'),
    cluster: TEXT.optional().describe('the EKS cluster whose node it is (drained first)'),
    reason: TEXT.optional().describe('why, for the ledger'),
    ...DRY_RUN_FLAGS,
    ...WhereSchema,
  })
  .refine(oneTarget, TARGET_MESSAGE)
  .refine(oneDryRun, DRY_RUN_MESSAGE);

export const SwapBatchFlagsSchema = z
  .strictObject({
    groups: list(z.string()).optional().describe('the groups, comma-separated'),
    cluster: TEXT.optional().describe('every group of this cluster, instead of --groups'),
    instances: list(z.string()).optional().describe('only these instances, comma-separated'),
    budget: TEXT.transform((raw, ctx) => {
      const parsed = BudgetSchema.safeParse(/^\d+$/.test(raw) ? { count: Number(raw) } : /^\d+(\.\d+)?%$/.test(raw) ? { percent: Number(raw.slice(0, -1)) } : undefined);
      if (parsed.success) return parsed.data;
      ctx.addIssue({ code: 'custom', message: 'a count like 2 or a percent like 25%' });
      return z.NEVER;
    })
      .optional()
      .describe('swaps at once: a count like 2 or a percent like 25%'),
    'no-canary': SWITCH.describe('no single canary swap before the first wave'),
    'max-failed': TEXT.regex(/^\d+$/, 'a whole number from 0 to 100').transform(Number).pipe(z.number().max(100, 'a whole number from 0 to 100')).optional().describe('rolled-back swaps tolerated before the batch halts'),
    urgent: SWITCH.describe('ignore maintenance windows'),
    reason: TEXT.optional().describe('why, for the ledger'),
    ...DRY_RUN_FLAGS,
    ...WhereSchema,
  })
  .refine(oneTarget, TARGET_MESSAGE)
  .refine(oneDryRun, DRY_RUN_MESSAGE);

export const SwapStatusFlagsSchema = z.strictObject({ execution: EXECUTION_ARN.describe('the execution ARN that swap start or batch printed'), ...AwsFlags, json: SWITCH.describe('print JSON instead of text') });

/** Where the workflow is: a stack whose outputs name it, or its ARN. */
export type Target = { stack: string } | { stateMachine: string };

/** Where the CLI talks to AWS (`--region`, `--profile`), and `--json` when given. */
interface Where {
  region?: string;
  profile?: string;
  json?: true;
}
export interface SwapStartArgs extends Where {
  target: Target;
  request: SwapRequest;
}
export interface SwapBatchArgs extends Where {
  target: Target;
  request: BatchRequest;
}
export interface SwapStatusArgs {
  execution: string;
  region?: string;
  profile?: string;
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

function validated<S extends z.ZodType>(schema: S, request: unknown, flags: Record<string, string>): z.infer<S> {
  const result = schema.safeParse(request);
  if (!result.success) throw usageErrorFrom(result.error, (path) => flags[String(path[0])] ?? String(path[0]));
  return result.data;
}

const targetOf = (a: { stack?: string; 'state-machine'?: string }): Target => (a.stack !== undefined ? { stack: a.stack } : { stateMachine: a['state-machine']! });
const dryRunOf = (a: { 'dry-run'?: true; 'no-dry-run'?: true }) => (a['dry-run'] ? true : a['no-dry-run'] ? false : undefined);
const withoutUndefined = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const whereOf = (a: Where): Where => withoutUndefined({ region: a.region, profile: a.profile, json: a.json });

function startArgs(a: z.infer<typeof SwapStartFlagsSchema>): SwapStartArgs {
  const request = validated(SwapRequestSchema, withoutUndefined({ group: a.group, instanceId: a.instance, cluster: a.cluster, reason: a.reason, trigger: 'manual', dryRun: dryRunOf(a) }), START_FLAGS);
  return { target: targetOf(a), ...whereOf(a), request };
}

function batchArgs(a: z.infer<typeof SwapBatchFlagsSchema>): SwapBatchArgs {
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
  return { target: targetOf(a), ...whereOf(a), request };
}

const statusArgs = (a: z.infer<typeof SwapStatusFlagsSchema>): SwapStatusArgs => withoutUndefined({ execution: a.execution, region: a.region, profile: a.profile, json: a.json === true });

/** The workflow's ARN: given, or read from the stack's outputs. */
export async function resolveStateMachine(target: Target, output: (typeof STACK_OUTPUTS)[keyof typeof STACK_OUTPUTS], where: Where = {}): Promise<string> {
  if ('stateMachine' in target) return target.stateMachine;
  return requireOutput(await stackOutputs(target.stack, awsOptions(where)), output, target.stack, output === STACK_OUTPUTS.batch ? ' (deployed before batch swaps?)' : '');
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
  const stateMachineArn = await resolveStateMachine(args.target, STACK_OUTPUTS.swap, args);
  const name = manualExecutionName(args.request.group);
  return { ...(await startExecution(stateMachineArn, name, args.request, awsOptions(args))), stateMachineArn, name, input: args.request };
}

export async function runSwapBatch(args: SwapBatchArgs): Promise<Started> {
  const stateMachineArn = await resolveStateMachine(args.target, STACK_OUTPUTS.batch, args);
  const name = manualExecutionName(args.request.groups?.join('-') ?? `cluster-${args.request.cluster}`);
  return { ...(await startExecution(stateMachineArn, name, args.request, awsOptions(args))), stateMachineArn, name, input: args.request };
}

export const runSwapStatus = (args: SwapStatusArgs): Promise<ExecutionStatus> => describeExecution(args.execution, awsOptions(args));

export function formatStarted(started: Started, region?: string, profile?: string): string {
  return [
    `started ${started.executionArn}`,
    `input ${JSON.stringify(started.input)}`,
    `follow it: fleetwarden swap status --execution ${started.executionArn}${region ? ` --region ${region}` : ''}${profile ? ` --profile ${profile}` : ''}`,
  ].join('\n');
}

const startedResult = (started: Started, args: Where): CliResult => ({ text: args.json ? JSON.stringify(started, null, 2) : formatStarted(started, args.region, args.profile), code: 0 });

export function formatStatus(status: ExecutionStatus): string {
  const lines = [`${status.status}: ${status.name}${status.startDate ? `, started ${status.startDate.toISOString()}` : ''}${status.stopDate ? `, stopped ${status.stopDate.toISOString()}` : ''}`];
  if (status.error || status.cause) lines.push(`error ${status.error ?? ''}${status.cause ? `: ${status.cause}` : ''}`);
  if (status.output !== undefined) lines.push(`output ${JSON.stringify(status.output, null, 2)}`);
  return lines.join('\n');
}

/** Statuses that mean the work did not get done. */
export const FAILED_STATUSES = ['FAILED', 'TIMED_OUT', 'ABORTED'];

export const SWAP_START_COMMAND = cliCommand({
  path: ['swap', 'start'],
  summary: 'Start a NodeSwap: replace one On-Demand instance of a group with Spot (drained first when it is a node).',
  flags: SwapStartFlagsSchema,
  args: startArgs,
  notes: 'Without --dry-run or --no-dry-run a swap follows the deployment’s dryRun setting.\nExit status: 0 started, 1 failed, 2 bad usage.',
  run: async (args: SwapStartArgs) => startedResult(await runSwapStart(args), args),
});

export const SWAP_BATCH_COMMAND = cliCommand({
  path: ['swap', 'batch'],
  summary: 'Start a SwapBatch: swap groups or a cluster in waves, within a budget and maintenance windows.',
  flags: SwapBatchFlagsSchema,
  args: batchArgs,
  notes: 'Without --dry-run or --no-dry-run a batch follows the deployment’s dryRun setting.\nExit status: 0 started, 1 failed, 2 bad usage.',
  run: async (args: SwapBatchArgs) => startedResult(await runSwapBatch(args), args),
});

export const SWAP_STATUS_COMMAND = cliCommand({
  path: ['swap', 'status'],
  summary: 'Show a swap or batch execution: its status, and its output or error once done.',
  flags: SwapStatusFlagsSchema,
  args: statusArgs,
  notes: 'Exit status: 0 running or succeeded, 1 failed, timed out or aborted, 2 bad usage.',
  run: async (args: SwapStatusArgs): Promise<CliResult> => {
    const status = await runSwapStatus(args);
    return { text: args.json ? JSON.stringify(status, null, 2) : formatStatus(status), code: FAILED_STATUSES.includes(status.status) ? 1 : 0 };
  },
});

export const parseSwapStartArgs = (argv: readonly string[]): SwapStartArgs => parseCommandArgs(SWAP_START_COMMAND, argv);
export const parseSwapBatchArgs = (argv: readonly string[]): SwapBatchArgs => parseCommandArgs(SWAP_BATCH_COMMAND, argv);
export const parseSwapStatusArgs = (argv: readonly string[]): SwapStatusArgs => parseCommandArgs(SWAP_STATUS_COMMAND, argv);

/** `fleetwarden swap <command> …`: the text to print and the exit status. */
export async function runSwapCommand(command: string | undefined, argv: readonly string[]): Promise<CliResult> {
  switch (command) {
    case 'start':
      return runCommand(SWAP_START_COMMAND, argv);
    case 'batch':
      return runCommand(SWAP_BATCH_COMMAND, argv);
    case 'status':
      return runCommand(SWAP_STATUS_COMMAND, argv);
    default:
      throw new CliUsageError(command ? `unknown swap command "${command}"` : 'name a swap command: start, batch or status');
  }
}
