import * as z from 'zod';
import { documentClient } from '../shared/aws';
import { AwsFlags, flagValue, jsonFlag, type CliResult, awsOptions, cliCommand, parseCommandArgs, requireOutput, runCommand, stackOutputs } from '../shared/cli';
import { AccountIdSchema } from '../shared/ids';
import { withProgress } from '../shared/progress';
import { DynamoFindingStore } from './finding-store';
import { type Finding, WASTE_STATES } from './findings';
import { WASTE_KINDS } from './policy';
import { byMonthlyCost } from './scanner';

export const FINDINGS_USAGE = `usage: fleetwarden findings (--stack NAME | --table T) [--kind address|volume|snapshot] [--account ID] [--state open|all|cleaned|resolved|watching] [--region R] [--profile P] [--json]

Lists the waste scanner's findings (open ones by default: open, marked, being cleaned) with
their estimated monthly cost, and the total.`;

/** `fleetwarden findings`: every flag is validated and a bad one is named. */
export const FindingsArgsSchema = z
  .strictObject({
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the table'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the findings table, instead of --stack'),
    kind: z.enum(WASTE_KINDS).optional().describe('address|volume|snapshot'),
    account: AccountIdSchema.optional().describe('only this account’s findings'),
    state: z.enum(['open', 'all', 'cleaned', 'resolved', 'watching']).default('open').describe('open (default: open, marked, being cleaned), all, cleaned, resolved or watching'),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => a.stack !== undefined || a.table !== undefined, { message: 'give --stack or --table', path: ['stack'] });
export type FindingsArgs = z.infer<typeof FindingsArgsSchema>;

export const parseFindingsArgs = (argv: readonly string[]): FindingsArgs => parseCommandArgs(FINDINGS_COMMAND, argv);

/** The findings the arguments select, costliest first. */
export async function listFindings(args: FindingsArgs): Promise<Finding[]> {
  const table = args.table ?? requireOutput(await stackOutputs(args.stack!, awsOptions(args)), 'FindingsTableName', args.stack!);
  const store = new DynamoFindingStore(documentClient(awsOptions(args)), table);
  const selected: Finding[] = [];
  for await (const f of withProgress(store.all(), 'reading findings', 'findings')) {
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

/** `fleetwarden findings`: exit status 0 (finding waste is not a failure). */
export const FINDINGS_COMMAND = cliCommand({
  path: ['findings'],
  summary: 'List the waste scanner’s findings (open ones by default) with their estimated monthly cost, and the total.',
  flags: FindingsArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 listed, 1 failed (AWS), 2 bad usage.',
  run: async (args: FindingsArgs): Promise<CliResult> => {
    const findings = await listFindings(args);
    if (args.json) {
      const total = findings.filter((f) => WASTE_STATES.includes(f.state)).reduce((sum, f) => sum + f.monthlyUsd, 0);
      return { text: JSON.stringify({ findings, totalMonthlyUsd: Math.round(total * 100) / 100 }, null, 2), code: 0 };
    }
    return { text: formatFindings(findings), code: 0 };
  },
});

export const runFindingsCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(FINDINGS_COMMAND, argv);
