import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { CliUsageError, parseCliArgs, stackOutputs } from '../shared/cli';
import { AccountIdSchema } from '../shared/ids';
import { DynamoFlagStore } from './flag-store';
import type { Flag, FlagState } from './flags';

export const FLAGS_USAGE = `usage: fleetwarden flags (--stack NAME | --table T) [--account ID] [--state flagged|acting|left|acted|resolved|open|all] [--region R] [--json]

Lists the enforcer's flags: instance, account and class, state, creator, reason, and the time
left in its grace (open flags only by default).`;

/** `fleetwarden flags`: every flag is validated and a bad one is named. */
export const FlagsArgsSchema = z
  .strictObject({
    stack: z.string().min(1).optional(),
    table: z.string().min(3).optional(),
    account: AccountIdSchema.optional(),
    state: z.enum(['flagged', 'acting', 'left', 'acted', 'resolved', 'open', 'all']).default('open'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1').optional(),
    json: z.boolean().default(false),
  })
  .refine((a) => a.stack !== undefined || a.table !== undefined, { message: 'give --stack or --table', path: ['stack'] });
export type FlagsArgs = z.infer<typeof FlagsArgsSchema>;

export const parseFlagsArgs = (argv: string[]): FlagsArgs => parseCliArgs(FlagsArgsSchema, argv);

const OPEN: readonly FlagState[] = ['flagged', 'acting', 'left'];

/** The flags the arguments select, newest first. */
export async function listFlags(args: FlagsArgs): Promise<Flag[]> {
  const table = args.table ?? (await stackOutputs(args.stack!, args.region)).AuthorizationsTableName;
  if (!table) throw new CliUsageError(`--stack: stack ${args.stack} has no AuthorizationsTableName output`);
  const store = new DynamoFlagStore(documentClient({ region: args.region }), table);
  const selected: Flag[] = [];
  for await (const flag of store.all()) {
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

export async function runFlagsCommand(argv: string[]): Promise<{ text: string; code: number }> {
  const args = parseFlagsArgs(argv);
  const flags = await listFlags(args);
  return { text: args.json ? JSON.stringify(flags, null, 2) : formatFlags(flags, new Date()), code: 0 };
}
