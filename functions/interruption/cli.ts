import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { AwsFlags, type CliResult, REGION_PATTERN, awsOptions, cliCommand, flagValue, jsonFlag, parseCommandArgs, requireOutput, runCommand, stackOutputs, switchFlag } from '../shared/cli';
import { parseOperatingMode } from '../shared/operating-mode';
import { withProgress } from '../shared/progress';
import { parsePoolKey } from './pool';
import { DynamoPoolRiskStore } from './pool-store';
import { type PoolRiskRecord, quarantineEndsAt, riskScore, signalCount } from './risk';

export const POOLS_USAGE = `usage: fleetwarden pools (--stack NAME | --table T) [--quarantined] [--pool-region R] [--half-life HOURS] [--region R] [--profile P] [--json]

Lists the Spot pools Fleetwarden has seen signals for: whether each is quarantined and until
when, its decaying risk score, how many signals it counts, and the newest one.`;

/** The product's default risk half-life, used with --table when the stack cannot say. */
const DEFAULT_HALF_LIFE_HOURS = 72;

/** `fleetwarden pools`: every flag is validated and a bad one is named. */
export const PoolsArgsSchema = z
  .strictObject({
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the table and the risk half-life'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the pool risk table, instead of --stack'),
    quarantined: switchFlag().describe('only pools closed now (quarantined or capacity-blocked)'),
    'pool-region': flagValue().regex(REGION_PATTERN, 'a region looks like us-east-1').optional().describe('only pools in this region (--region is where the stack is)'),
    'half-life': flagValue()
      .regex(/^\d+(\.\d+)?$/, 'hours, like 72')
      .transform(Number)
      .pipe(z.number().positive('hours, like 72'))
      .optional()
      .describe(`risk half-life in hours (default: the stack's, else ${DEFAULT_HALF_LIFE_HOURS})`),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => (a.stack === undefined) !== (a.table === undefined), { message: 'give --stack or --table (one of them)', path: ['stack'] });
export type PoolsArgs = z.infer<typeof PoolsArgsSchema>;

/** One pool as the CLI shows it: decided on read, by the same functions the handlers use. */
export interface PoolView {
  pool: string;
  region: string;
  azId: string;
  instanceType: string;
  state: 'quarantined' | 'capacity-blocked' | 'open';
  /** When the pool opens again (quarantined or capacity-blocked pools). */
  until?: string;
  reason?: string;
  riskScore: number;
  signals: number;
  lastSignal?: { at: string; kind: string; account: string; environment: string; eventId: string };
}

/** A record as seen at `now`: closed or open, its score, its newest signal. */
export function viewPool(record: PoolRiskRecord, now: Date, halfLifeHours: number): PoolView {
  const { region, azId, instanceType } = parsePoolKey(record.pool);
  const until = quarantineEndsAt(record, now);
  // Which of the two closures holds the pool longest: the long quarantine, or the short capacity block.
  const byQuarantine = until !== undefined && record.quarantinedUntil !== undefined && Date.parse(record.quarantinedUntil) === until.getTime();
  const last = record.history.at(-1);
  return {
    pool: record.pool,
    region,
    azId,
    instanceType,
    state: until === undefined ? 'open' : byQuarantine ? 'quarantined' : 'capacity-blocked',
    ...(until ? { until: until.toISOString(), reason: byQuarantine ? (record.quarantineReason ?? 'spot interruption') : 'insufficient capacity' } : {}),
    riskScore: Math.round(riskScore(record, now, halfLifeHours) * 1000) / 1000,
    signals: signalCount(record),
    ...(last ? { lastSignal: { at: last.at, kind: last.kind, account: last.account, environment: last.environment, eventId: last.eventId } } : {}),
  };
}

/** The pools the arguments select: closed ones first (soonest to reopen last), then by risk. */
export async function listPools(args: PoolsArgs, now = new Date()): Promise<PoolView[]> {
  const outputs = args.stack ? await stackOutputs(args.stack, awsOptions(args)) : {};
  const table = args.table ?? requireOutput(outputs, 'PoolRiskTableName', args.stack!);
  const halfLife = args['half-life'] ?? parseOperatingMode(outputs.OperatingMode)?.quarantine.riskHalfLifeHours ?? DEFAULT_HALF_LIFE_HOURS;
  const store = new DynamoPoolRiskStore(documentClient(awsOptions(args)), table);
  const pools: PoolView[] = [];
  for await (const record of withProgress(store.all(), 'reading pool risk', 'pools')) {
    const view = viewPool(record, now, halfLife);
    if (args.quarantined && view.state === 'open') continue;
    if (args['pool-region'] && view.region !== args['pool-region']) continue;
    pools.push(view);
  }
  const closed = (p: PoolView) => (p.state === 'open' ? 1 : 0);
  return pools.sort((a, b) => closed(a) - closed(b) || (b.until ?? '').localeCompare(a.until ?? '') || b.riskScore - a.riskScore || a.pool.localeCompare(b.pool));
}

const stateText = (p: PoolView) => (p.state === 'open' ? 'open' : `${p.state} until ${p.until}`);

export function formatPools(pools: PoolView[]): string {
  if (!pools.length) return 'no pools';
  const header = ['POOL', 'STATE', 'RISK', 'SIGNALS', 'LAST SIGNAL'];
  const rows = pools.map((p) => [
    p.pool,
    stateText(p),
    p.riskScore.toFixed(2),
    String(p.signals),
    p.lastSignal ? `${p.lastSignal.at} ${p.lastSignal.kind} (${p.lastSignal.environment} ${p.lastSignal.account})` : '',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd();
  const closed = pools.filter((p) => p.state !== 'open').length;
  const reasons = pools.filter((p) => p.reason).map((p) => `  ${p.pool}: ${p.reason}`);
  return [line(header), ...rows.map(line), '', `${pools.length} pool${pools.length === 1 ? '' : 's'}, ${closed} closed now`, ...reasons].join('\n');
}

/** `fleetwarden pools`: exit status 0 (a quarantined pool is Fleetwarden working, not a failure). */
export const POOLS_COMMAND = cliCommand({
  path: ['pools'],
  summary: 'List Spot pools: quarantined (until when) or open, risk score, signal count, newest signal.',
  flags: PoolsArgsSchema,
  args: (flags) => flags,
  notes: 'Quarantine expiry and the risk score are decided on read, from the stored timestamps.\nExit status: 0 listed, 1 failed (AWS), 2 bad usage.',
  run: async (args: PoolsArgs): Promise<CliResult> => {
    const pools = await listPools(args);
    return { text: args.json ? JSON.stringify(pools, null, 2) : formatPools(pools), code: 0 };
  },
});

export const parsePoolsArgs = (argv: readonly string[]): PoolsArgs => parseCommandArgs(POOLS_COMMAND, argv);
export const runPoolsCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(POOLS_COMMAND, argv);
