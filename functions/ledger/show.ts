import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { AwsFlags, type CliResult, awsOptions, cliCommand, flagValue, jsonFlag, parseCommandArgs, requireOutput, runCommand, stackOutputs } from '../shared/cli';
import { Progress } from '../shared/progress';
import { type LedgerEntry, LedgerEntrySchema } from './chain';
import { DEFAULT_CHAIN, DynamoLedger } from './store';

/**
 * `fleetwarden ledger show`: the newest entries of a chain, read backwards from the tip (so that
 * the newest are on screen at once whatever the chain's length), filtered by time, event and
 * action. Reads only; `ledger verify` says whether they can be trusted.
 */
export const LEDGER_SHOW_USAGE = `usage: fleetwarden ledger show (--stack NAME | --table T) [--since 24h | --since 2026-12-01T00:00:00Z] [--event-id ID]
                              [--kind pool | --kind pool.quarantined] [--limit 50] [--chain fleet] [--region R] [--profile P] [--json]`;

const DEFAULT_LIMIT = 50;
/**
 * Entries are sealed in chain order with the writer's clock, so time follows seq up to the skew
 * between writers' clocks and the time from placing an entry to writing it (one function run):
 * reading back stops this long before `--since`, not at it.
 */
export const SINCE_MARGIN_MS = 15 * 60_000;

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 } as const;

/** `--since`: an ISO time, or how long ago (`90m`, `24h`, `7d`). */
export const SinceSchema = flagValue().transform((raw, ctx) => {
  const ago = /^(\d+)([smhdw])$/.exec(raw);
  if (ago) return new Date(Date.now() - Number(ago[1]) * UNIT_MS[ago[2] as keyof typeof UNIT_MS]).toISOString();
  if (z.iso.datetime({ offset: true }).safeParse(raw).success || z.iso.date().safeParse(raw).success) return new Date(raw).toISOString();
  ctx.addIssue({ code: 'custom', message: 'a time like 2026-12-01T00:00:00Z, or how long ago like 90m, 24h or 7d' });
  return z.NEVER;
});

export const LedgerShowArgsSchema = z
  .strictObject({
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the ledger table'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the ledger table, instead of --stack'),
    chain: flagValue().regex(/^[a-z0-9-]+$/, 'a chain name is lower-case letters, digits and dashes').default(DEFAULT_CHAIN).describe(`the chain (default ${DEFAULT_CHAIN})`),
    since: SinceSchema.optional().describe('entries at or after this time: ISO, or how long ago (90m, 24h, 7d)'),
    'event-id': flagValue().min(1, 'needs a value').optional().describe('only entries of this event (an EventBridge id, an execution name…)'),
    kind: flagValue()
      .regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)*$/, 'an action or its prefix, like pool or pool.quarantined')
      .optional()
      .describe('only actions of this kind: pool matches pool.quarantined and pool.released'),
    limit: flagValue()
      .regex(/^\d+$/, 'a whole number from 1 to 10000')
      .transform(Number)
      .pipe(z.number().min(1, 'a whole number from 1 to 10000').max(10_000, 'a whole number from 1 to 10000'))
      .default(DEFAULT_LIMIT)
      .describe(`at most this many entries, the newest (default ${DEFAULT_LIMIT})`),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => (a.stack === undefined) !== (a.table === undefined), { message: 'give --stack or --table (one of them)', path: ['stack'] });
export type LedgerShowArgs = z.infer<typeof LedgerShowArgsSchema>;

/** What selects entries. */
export interface EntryFilter {
  since?: string;
  eventId?: string;
  kind?: string;
}

/** `pool` matches `pool` and `pool.*`, never `pooled.*`. */
export const actionMatches = (action: string, kind: string): boolean => action === kind || action.startsWith(`${kind}.`);

export function entryMatches(entry: { at: string; action: string; eventId: string }, filter: EntryFilter): boolean {
  if (filter.since && entry.at < filter.since) return false;
  if (filter.eventId && entry.eventId !== filter.eventId) return false;
  if (filter.kind && !actionMatches(entry.action, filter.kind)) return false;
  return true;
}

/** An entry as read: valid, or stored in a shape the ledger never writes (shown, flagged). */
export type ShownEntry = LedgerEntry & { malformed?: true };

export interface ShownEntries {
  chain: string;
  /** Oldest first. */
  entries: ShownEntry[];
  /** More entries matched than --limit. */
  truncated: boolean;
  /** Entries read to find them. */
  read: number;
}

/** The newest `limit` entries that match, oldest first; stops reading well before `since`. */
export async function showEntries(doc: DynamoDBDocumentClient, table: string, chain: string, filter: EntryFilter, limit: number): Promise<ShownEntries> {
  const stopBefore = filter.since ? new Date(Date.parse(filter.since) - SINCE_MARGIN_MS).toISOString() : undefined;
  const progress = new Progress(`reading ledger chain "${chain}" back from its tip`, 'entries');
  const found: ShownEntry[] = [];
  let truncated = false;
  let read = 0;
  try {
    for await (const item of new DynamoLedger(doc, { tableName: table, chain }).newestFirst()) {
      read += 1;
      progress.add();
      const parsed = LedgerEntrySchema.safeParse(item);
      const entry: ShownEntry = parsed.success ? parsed.data : { ...(item as LedgerEntry), malformed: true };
      if (stopBefore && typeof entry.at === 'string' && entry.at < stopBefore) break;
      if (!entryMatches({ at: String(entry.at), action: String(entry.action), eventId: String(entry.eventId) }, filter)) continue;
      if (found.length === limit) {
        truncated = true;
        break;
      }
      found.push(entry);
    }
  } finally {
    progress.done();
  }
  return { chain, entries: found.reverse(), truncated, read };
}

export function formatEntries(shown: ShownEntries, limit: number): string {
  if (!shown.entries.length) return `no entries in chain "${shown.chain}" match`;
  const lines = shown.entries.flatMap((e) => [
    `seq ${e.seq}  ${e.at}  ${e.action}  ${e.subject}${e.malformed ? '  (MALFORMED: run fleetwarden ledger verify)' : ''}`,
    `  by ${e.actor}, event ${e.eventId}: ${e.reason}`,
  ]);
  const n = shown.entries.length;
  const footer = `${n} entr${n === 1 ? 'y' : 'ies'}${shown.truncated ? ` (the newest ${limit}; more match: raise --limit or narrow --since)` : ''}`;
  return [...lines, '', footer].join('\n');
}

/** `fleetwarden ledger show`: exit status 0, matches or not (a script tests the JSON's entries). */
export const LEDGER_SHOW_COMMAND = cliCommand({
  path: ['ledger', 'show'],
  summary: 'Show ledger entries, newest last: by time, event id and action.',
  flags: LedgerShowArgsSchema,
  args: (flags) => flags,
  notes: 'Entries are shown as stored; fleetwarden ledger verify says whether the chain is intact.\nExit status: 0 shown (also when none match), 1 failed (AWS), 2 bad usage.',
  run: async (args: LedgerShowArgs): Promise<CliResult> => {
    const table = args.table ?? requireOutput(await stackOutputs(args.stack!, awsOptions(args)), 'LedgerTableName', args.stack!);
    const filter: EntryFilter = { ...(args.since ? { since: args.since } : {}), ...(args['event-id'] ? { eventId: args['event-id'] } : {}), ...(args.kind ? { kind: args.kind } : {}) };
    const shown = await showEntries(documentClient(awsOptions(args)), table, args.chain, filter, args.limit);
    return { text: args.json ? JSON.stringify(shown, null, 2) : formatEntries(shown, args.limit), code: 0 };
  },
});

export const parseLedgerShowArgs = (argv: readonly string[]): LedgerShowArgs => parseCommandArgs(LEDGER_SHOW_COMMAND, argv);
export const runLedgerShowCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(LEDGER_SHOW_COMMAND, argv);
