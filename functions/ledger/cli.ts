import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../shared/aws';
import { describeIssues } from '../shared/validation';
import { DigestArchive, KmsDigestSigner } from './adapters';
import { type LedgerVerification, verifyLedger } from './audit';
import { DEFAULT_CHAIN, DynamoLedger } from './store';

/**
 * `fleetwarden ledger verify`: where the ledger lives comes either from the deployed stack's
 * outputs (`--stack`) or from explicit names; every flag is validated and a bad one is named.
 */
export const VerifyArgsSchema = z
  .strictObject({
    chain: z.string().regex(/^[a-z0-9-]+$/, 'a chain name is lower-case letters, digits and dashes').default(DEFAULT_CHAIN),
    stack: z.string().min(1).optional(),
    table: z.string().min(3).optional(),
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not an S3 bucket name').optional(),
    'signing-key': z.string().min(1).optional(),
    region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1').optional(),
    json: z.boolean().default(false),
  })
  .refine((a) => a.stack !== undefined || (a.table && a.bucket && a['signing-key']), {
    message: 'give --stack, or all of --table, --bucket and --signing-key',
    path: ['stack'],
  });
export type VerifyArgs = z.infer<typeof VerifyArgsSchema>;

export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** Parses `--key value` / `--flag` pairs into an object for the schema. */
export function parseFlags(argv: string[]): Record<string, string | boolean> {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new CliUsageError(`unexpected argument "${arg}"`);
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const next = argv[i + 1];
    if (inline !== undefined) flags[key] = inline;
    else if (next !== undefined && !next.startsWith('--')) {
      flags[key] = next;
      i++;
    } else flags[key] = true;
  }
  return flags;
}

export function parseVerifyArgs(argv: string[]): VerifyArgs {
  const result = VerifyArgsSchema.safeParse(parseFlags(argv));
  if (!result.success) {
    throw new CliUsageError(describeIssues(result.error).replace(/(^|; )([a-z-]+): /g, '$1--$2: ').replace(/\(root\): Unrecognized keys?: /, 'unknown flag: '));
  }
  return result.data;
}

async function stackOutputs(stackName: string, region?: string): Promise<Record<string, string>> {
  const out = await awsClient(CloudFormationClient, { region }).send(new DescribeStacksCommand({ StackName: stackName }));
  return Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
}

export async function runVerify(args: VerifyArgs): Promise<LedgerVerification> {
  const outputs = args.stack ? await stackOutputs(args.stack, args.region) : {};
  const table = args.table ?? outputs.LedgerTableName;
  const bucket = args.bucket ?? outputs.ArchiveBucketName;
  const key = args['signing-key'] ?? outputs.DigestSigningKeyArn;
  if (!table || !bucket || !key) throw new CliUsageError(`stack ${args.stack} has no ledger outputs (LedgerTableName, ArchiveBucketName, DigestSigningKeyArn)`);
  return verifyLedger({
    ledger: new DynamoLedger(documentClient({ region: args.region }), { tableName: table, chain: args.chain }),
    digests: new DigestArchive(awsClient(S3Client, { region: args.region }), bucket),
    signer: new KmsDigestSigner(awsClient(KMSClient, { region: args.region }), key),
  });
}

export function formatVerification(report: LedgerVerification): string {
  const tip = report.tip ? `seq ${report.tip.seq}, hash ${report.tip.hash.slice(0, 12)}…` : 'empty';
  const head = `${report.ok ? 'OK' : 'TAMPERED'}: chain "${report.chain}", ${plural(report.entries, 'entry', 'entries')}, ${plural(report.digests, 'signed digest', 'signed digests')}, tip ${tip}`;
  return [head, ...report.problems.map((p) => `  seq ${p.seq}: ${p.kind} — ${p.detail}`)].join('\n');
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
