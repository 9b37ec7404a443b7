import { SFNClient } from '@aws-sdk/client-sfn';
import * as z from 'zod';
import { awsClient } from '../shared/aws';
import { AwsFlags, type CliResult, awsOptions, cliCommand, flagValue, jsonFlag, jsonOutput, parseCommandArgs, runCommand, stackOutputs } from '../shared/cli';
import { AwsDoctor } from './adapter';
import { type DoctorOptions, runDoctor } from './doctor';
import { type CheckResult, type DoctorReport, KubernetesClustersSchema, type MemberAccess, MemberAccessSchema, report } from './model';
import type { DoctorPort } from './port';

export const DOCTOR_USAGE = `usage: fleetwarden doctor --stack NAME [--member-role NAME] [--concurrency N] [--region R] [--profile P] [--json]

Checks a deployment end to end: the tables, queues, state machines, bus, archive bucket and
signing key the stack's outputs name; the home bus policy; in every configured account and
region, the member role and the forwarding rules; and each configured cluster's credentials.
Prints each check, and for each problem the fix.`;

export const DoctorArgsSchema = z.strictObject({
  stack: flagValue().min(1, 'needs a value').describe('the Fleetwarden home stack (its outputs name everything doctor checks)'),
  'member-role': flagValue()
    .regex(/^[\w+=,.@-]{1,64}$/, 'an IAM role name, like OrganizationAccountAccessRole')
    .optional()
    .describe('role to assume in member accounts, with your own credentials, instead of the member role through the stack\'s doctor role (one that may read EventBridge rules)'),
  concurrency: flagValue()
    .regex(/^\d+$/, 'a whole number from 1 to 64')
    .transform(Number)
    .pipe(z.number().int().min(1, 'a whole number from 1 to 64').max(64, 'a whole number from 1 to 64'))
    .optional()
    .describe('member accounts and regions checked at once (default 8)'),
  ...AwsFlags,
  json: jsonFlag(),
});
export type DoctorArgs = z.infer<typeof DoctorArgsSchema>;


/** Reads the stack's outputs and runs every check; `port` stands in for AWS when given. */
export async function doctor(args: DoctorArgs, options: DoctorOptions & { port?: (access: MemberAccess, clusters: ReturnType<typeof KubernetesClustersSchema.parse>) => DoctorPort; now?: Date } = {}): Promise<DoctorReport> {
  const aws = awsOptions(args);
  const outputs = await stackOutputs(args.stack, aws);
  const access = jsonOutput(outputs, 'MemberAccess', args.stack, MemberAccessSchema, 'doctor');
  const clusters = outputs.KubernetesClusters ? jsonOutput(outputs, 'KubernetesClusters', args.stack, KubernetesClustersSchema, 'doctor') : [];
  const memberRole = args['member-role'] ?? access.memberRoleName;
  // Through the home stack's read-only doctor role, which the member role trusts; straight with the operator's credentials when they name another role.
  const via = args['member-role'] ? undefined : outputs.DoctorRoleArn;
  const port = options.port?.(access, clusters) ?? new AwsDoctor(aws, { homeAccount: access.homeAccount, roleName: memberRole, ...(via ? { via } : {}) }, clusters);
  const checks = await runDoctor({ stack: args.stack, outputs, access, clusters, memberRole }, port, { ...options, ...(args.concurrency ? { concurrency: args.concurrency } : {}) });
  const region = args.region ?? (await awsClient(SFNClient, aws).config.region());
  return report(args.stack, region, options.now ?? new Date(), checks);
}

/** The table: target, check, ok/FAIL; under each failure, what is wrong and its fix. */
export function formatDoctor(r: DoctorReport): string {
  const rows: [string, string, string][] = [['TARGET', 'CHECK', 'RESULT'], ...r.checks.map((c): [string, string, string] => [c.target, c.check, c.ok ? 'ok' : 'FAIL'])];
  const wTarget = Math.max(...rows.map((row) => row[0].length)) + 2;
  const wCheck = Math.max(...rows.map((row) => row[1].length)) + 2;
  const indent = ' '.repeat(wTarget + 2);
  const lines = rows.flatMap((row, i) => {
    const line = `${row[0].padEnd(wTarget)}${row[1].padEnd(wCheck)}${row[2]}`;
    const c: CheckResult | undefined = i > 0 ? r.checks[i - 1] : undefined;
    if (!c || c.ok) return [line];
    return [line, ...(c.detail ? [`${indent}${c.detail}`] : []), ...(c.fix ? [`${indent}fix: ${c.fix}`] : [])];
  });
  const total = r.checks.length;
  const summary = r.failed ? `${r.failed} of ${total} checks failed.` : `All ${total} checks passed.`;
  return [`Fleetwarden doctor: stack ${r.stack} in ${r.region}, ${r.at}`, '', ...lines, '', summary].join('\n');
}

/** `fleetwarden doctor`: exit status 1 when any check failed. */
export const DOCTOR_COMMAND = cliCommand({
  path: ['doctor'],
  summary: 'Checks a deployment end to end (home resources, bus policy, member roles and forwarding in every account and region, clusters) and says how to fix what is wrong.',
  flags: DoctorArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 every check passed, 1 a check failed, 2 bad usage.',
  run: async (args: DoctorArgs): Promise<CliResult> => {
    const r = await doctor(args);
    return { text: args.json ? JSON.stringify(r, null, 2) : formatDoctor(r), code: r.failed ? 1 : 0 };
  },
});

export const parseDoctorArgs = (argv: readonly string[]): DoctorArgs => parseCommandArgs(DOCTOR_COMMAND, argv);
export const runDoctorCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(DOCTOR_COMMAND, argv);
