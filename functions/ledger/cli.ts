import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../shared/aws';
import { AwsFlags, flagValue, jsonFlag, type CliResult, CliUsageError, awsOptions, cliCommand, parseCommandArgs, stackOutputs } from '../shared/cli';
import { DigestArchive, KmsDigestSigner } from './adapters';
import { type LedgerVerification, verifyLedger } from './audit';
import { DEFAULT_CHAIN, DynamoLedger } from './store';

/**
 * `fleetwarden ledger verify`: where the ledger lives comes either from the deployed stack's
 * outputs (`--stack`) or from explicit names; every flag is validated and a bad one is named.
 */
export const VerifyArgsSchema = z
  .strictObject({
    chain: flagValue().regex(/^[a-z0-9-]+$/, 'a chain name is lower-case letters, digits and dashes').default(DEFAULT_CHAIN).describe(`the chain to verify (default ${DEFAULT_CHAIN})`),
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the table, bucket and key'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the ledger table, instead of --stack'),
    bucket: flagValue().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not an S3 bucket name').optional().describe('the digest archive bucket, instead of --stack'),
    'signing-key': flagValue().min(1, 'needs a value').optional().describe('the digest signing key ARN, instead of --stack'),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => a.stack !== undefined || (a.table && a.bucket && a['signing-key']), {
    message: 'give --stack, or all of --table, --bucket and --signing-key',
    path: ['stack'],
  });
export type VerifyArgs = z.infer<typeof VerifyArgsSchema>;

export const LEDGER_VERIFY_USAGE = `usage: fleetwarden ledger verify (--stack NAME | --table T --bucket B --signing-key ARN) [--chain fleet] [--region R] [--profile P] [--json]

Exit status: 0 verified, 1 tampered, 2 bad usage.`;

export function parseVerifyArgs(argv: readonly string[]): VerifyArgs {
  return parseCommandArgs(LEDGER_VERIFY_COMMAND, argv);
}

/** `fleetwarden ledger verify`: exit status 1 when the chain or its digests were tampered with. */
export const LEDGER_VERIFY_COMMAND = cliCommand({
  path: ['ledger', 'verify'],
  summary: 'Verify the ledger chain against its signed digests.',
  flags: VerifyArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 verified, 1 tampered (or failed), 2 bad usage.',
  run: async (args: VerifyArgs): Promise<CliResult> => {
    const report = await runVerify(args);
    return { text: args.json ? JSON.stringify(report, null, 2) : formatVerification(report), code: report.ok ? 0 : 1 };
  },
});

export async function runVerify(args: VerifyArgs): Promise<LedgerVerification> {
  const outputs = args.stack ? await stackOutputs(args.stack, awsOptions(args)) : {};
  const table = args.table ?? outputs.LedgerTableName;
  const bucket = args.bucket ?? outputs.ArchiveBucketName;
  const key = args['signing-key'] ?? outputs.DigestSigningKeyArn;
  if (!table || !bucket || !key) throw new CliUsageError(`stack ${args.stack} has no ledger outputs (LedgerTableName, ArchiveBucketName, DigestSigningKeyArn)`);
  return verifyLedger({
    ledger: new DynamoLedger(documentClient(awsOptions(args)), { tableName: table, chain: args.chain }),
    digests: new DigestArchive(awsClient(S3Client, awsOptions(args)), bucket),
    signer: new KmsDigestSigner(awsClient(KMSClient, awsOptions(args)), key),
  });
}

export function formatVerification(report: LedgerVerification): string {
  const tip = report.tip ? `seq ${report.tip.seq}, hash ${report.tip.hash.slice(0, 12)}…` : 'empty';
  const head = `${report.ok ? 'OK' : 'TAMPERED'}: chain "${report.chain}", ${plural(report.entries, 'entry', 'entries')}, ${plural(report.digests, 'signed digest', 'signed digests')}, tip ${tip}`;
  return [head, ...report.problems.map((p) => `  seq ${p.seq}: ${p.kind} — ${p.detail}`)].join('\n');
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
