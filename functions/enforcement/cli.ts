import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { AwsFlags, flagValue, jsonFlag, type CliResult, awsOptions, cliCommand, parseCommandArgs, requireOutput, runCommand, stackOutputs } from '../shared/cli';
import { AccountIdSchema } from '../shared/ids';
import { withProgress } from '../shared/progress';
import { DynamoFlagStore } from './flag-store';
import type { Flag, FlagState } from './flags';

export const FLAGS_USAGE = `usage: fleetwarden flags (--stack NAME | --table T) [--account ID] [--state flagged|acting|left|acted|resolved|open|all] [--region R] [--profile P] [--json]

Lists the enforcer's flags: instance, account and class, state, creator, reason, and the time
left in its grace (open flags only by default).`;

/** `fleetwarden flags`: every flag is validated and a bad one is named. */
export const FlagsArgsSchema = z
  .strictObject({
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the table'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the authorizations table, instead of --stack'),
    account: AccountIdSchema.optional().describe('only this account’s flags'),
    state: z.enum(['flagged', 'acting', 'left', 'acted', 'resolved', 'open', 'all']).default('open').describe('flagged|acting|left|acted|resolved, open (the first three, default) or all'),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => a.stack !== undefined || a.table !== undefined, { message: 'give --stack or --table', path: ['stack'] });
export type FlagsArgs = z.infer<typeof FlagsArgsSchema>;

export const parseFlagsArgs = (argv: readonly string[]): FlagsArgs => parseCommandArgs(FLAGS_COMMAND, argv);

const OPEN: readonly FlagState[] = ['flagged', 'acting', 'left'];

/** The flags the arguments select, newest first. */
export async function listFlags(args: FlagsArgs): Promise<Flag[]> {
  const table = args.table ?? requireOutput(await stackOutputs(args.stack!, awsOptions(args)), 'AuthorizationsTableName', args.stack!);
  const store = new DynamoFlagStore(documentClient(awsOptions(args)), table);
  const selected: Flag[] = [];
  for await (const flag of withProgress(store.all(), 'reading flags', 'flags')) {
    if (args.account && flag.account !== args.account) continue;
    if (args.state === 'open' ? !OPEN.includes(flag.state) : args.state !== 'all' && flag.state !== args.state) continue;
    selected.push(flag);
  }
  return selected.sort((a, b) => b.flaggedAt.localeCompare(a.flaggedAt));
}

/** "3h 20m left", "grace over", or what closed the flag. */
export function timeLeft(flag: Flag, now: Date): string {
  if (!OPEN.includes(flag.state)) return flag.outcome ?? flag.state;
  const ms = Date.parse(flag.graceUntil) - now.getTime();
  if (ms <= 0) return flag.state === 'left' ? `left: ${flag.outcome ?? ''}` : 'grace over';
  if (ms < 60_000) return `${Math.ceil(ms / 1000)}s left`;
  const minutes = Math.ceil(ms / 60_000);
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m left`;
}

export function formatFlags(flags: Flag[], now: Date): string {
  if (!flags.length) return 'no flags';
  return flags
    .map((f) =>
      [
        `${f.instanceId}  ${f.account} ${f.environment} ${f.region}  ${f.state}  ${timeLeft(f, now)}`,
        `  creator: ${f.creator ?? 'unknown (no CloudTrail record yet)'}`,
        `  reason:  ${f.reason}`,
        `  flagged: ${f.flaggedAt}, grace until ${f.graceUntil}`,
      ].join('\n'),
    )
    .join('\n');
}

/** `fleetwarden flags`: exit status 0 (listing flags is not a failure). */
export const FLAGS_COMMAND = cliCommand({
  path: ['flags'],
  summary: 'List the enforcer’s flags: instance, account and class, state, creator, reason, and the grace left (open flags by default).',
  flags: FlagsArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 listed, 1 failed (AWS), 2 bad usage.',
  run: async (args: FlagsArgs): Promise<CliResult> => {
    const flags = await listFlags(args);
    return { text: args.json ? JSON.stringify(flags, null, 2) : formatFlags(flags, new Date()), code: 0 };
  },
});

export const runFlagsCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(FLAGS_COMMAND, argv);
