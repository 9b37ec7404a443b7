import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { CliUsageError, parseCliArgs, stackOutputs } from '../shared/cli';
import { AccountIdSchema } from '../shared/ids';
import { DynamoFindingStore } from './finding-store';
import { type Finding, WASTE_STATES } from './findings';
import { WASTE_KINDS } from './policy';
import { byMonthlyCost } from './scanner';

export const FINDINGS_USAGE = `usage: fleetwarden findings (--stack NAME | --table T) [--kind address|volume|snapshot] [--account ID] [--state open|all|cleaned|resolved|watching] [--region R] [--json]

Lists the waste scanner's findings (open ones by default: open, marked, being cleaned) with
their estimated monthly cost, and the total.`;

/** `fleetwarden findings`: every flag is validated and a bad one is named. */
export const FindingsArgsSchema = z
  .strictObject({
    stack: z.string().min(1).optional(),
    table: z.string().min(3).optional(),
    kind: z.enum(WASTE_KINDS).optional(),
    account: AccountIdSchema.optional(),
    state: z.enum(['open', 'all', 'cleaned', 'resolved', 'watching']).default('open'),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1').optional(),
    json: z.boolean().default(false),
  })
  .refine((a) => a.stack !== undefined || a.table !== undefined, { message: 'give --stack or --table', path: ['stack'] });
export type FindingsArgs = z.infer<typeof FindingsArgsSchema>;

export const parseFindingsArgs = (argv: string[]): FindingsArgs => parseCliArgs(FindingsArgsSchema, argv);

/** The findings the arguments select, costliest first. */
export async function listFindings(args: FindingsArgs): Promise<Finding[]> {
  const table = args.table ?? (await stackOutputs(args.stack!, args.region)).FindingsTableName;
  if (!table) throw new CliUsageError(`--stack: stack ${args.stack} has no FindingsTableName output`);
  const store = new DynamoFindingStore(documentClient({ region: args.region }), table);
  const selected: Finding[] = [];
  for await (const f of store.all()) {
    if (args.kind && f.kind !== args.kind) continue;
    if (args.account && f.account !== args.account) continue;
    if (args.state === 'open' ? !WASTE_STATES.includes(f.state) : args.state !== 'all' && f.state !== args.state) continue;
    selected.push(f);
  }
  return byMonthlyCost(selected);
}

const usd = (n: number) => `$${n.toFixed(2)}`;

export function formatFindings(findings: Finding[]): string {
  if (!findings.length) return 'no findings';
  const rows = findings.map((f) => [
    f.kind,
    f.resourceId,
    `${f.account} ${f.environment}`,
    f.region,
    f.sizeGiB !== undefined ? `${f.sizeGiB} GiB` : '',
    `${usd(f.monthlyUsd)}/mo`,
    f.state === 'marked' ? `marked, removable after ${f.removableAfter}` : f.state,
    `first seen ${f.firstSeen.slice(0, 10)}`,
  ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) => r.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd());
  const open = findings.filter((f) => WASTE_STATES.includes(f.state));
  const total = open.reduce((sum, f) => sum + f.monthlyUsd, 0);
  return [...lines, '', `${open.length} open findings, ${usd(total)} a month`].join('\n');
}

export async function runFindingsCommand(argv: string[]): Promise<{ text: string; code: number }> {
  const args = parseFindingsArgs(argv);
  const findings = await listFindings(args);
  if (args.json) {
    const total = findings.filter((f) => WASTE_STATES.includes(f.state)).reduce((sum, f) => sum + f.monthlyUsd, 0);
    return { text: JSON.stringify({ findings, totalMonthlyUsd: Math.round(total * 100) / 100 }, null, 2), code: 0 };
  }
  return { text: formatFindings(findings), code: 0 };
}
