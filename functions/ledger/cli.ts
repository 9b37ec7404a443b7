import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../shared/aws';
import { AwsFlags, flagValue, jsonFlag, type CliResult, CliUsageError, awsOptions, cliCommand, parseCommandArgs, stackOutputs } from '../shared/cli';
import { existsSync, readFileSync } from 'node:fs';
import { Progress, type ProgressOptions } from '../shared/progress';
import { S3ArchiveReader, kmsPublicKey } from './adapters';
import { DirectoryArchive } from './archive-directory';
import { type ArchiveProgress, type ArchiveVerification, describeProblem, verifyArchive } from './archive-verify';
import { PublicKeyVerifier } from './digest';
import { DEFAULT_CHAIN, DynamoLedger } from './store';

/**
 * `fleetwarden ledger verify`: the chain in the table, the archive's segments against the signed
 * digests, the digests' signatures (with the signing key's public half), and that table and
 * archive agree. Online, the table, bucket and key come from the deployed stack's outputs
 * (`--stack`) or from explicit names; offline, `--archive DIR --public-key FILE` verifies a
 * downloaded copy of the bucket with no AWS access at all.
 */
export const VerifyArgsSchema = z
  .strictObject({
    chain: flagValue().regex(/^[a-z0-9-]+$/, 'a chain name is lower-case letters, digits and dashes').default(DEFAULT_CHAIN).describe(`the chain to verify (default ${DEFAULT_CHAIN})`),
    stack: flagValue().min(1, 'needs a value').optional().describe('the Fleetwarden stack, whose outputs name the table, bucket and key'),
    table: flagValue().min(3, 'a table name has at least 3 characters').optional().describe('the ledger table, instead of --stack'),
    bucket: flagValue().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'not an S3 bucket name').optional().describe('the archive bucket, instead of --stack'),
    'signing-key': flagValue().min(1, 'needs a value').optional().describe('the digest signing key ARN, instead of --stack'),
    archive: flagValue().min(1, 'needs a value').optional().describe('offline: a directory holding a copy of the archive bucket (aws s3 sync s3://BUCKET DIR)'),
    'public-key': flagValue().min(1, 'needs a value').optional().describe('offline: the signing key\'s public half, DER or PEM (aws kms get-public-key)'),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .refine((a) => (a.archive === undefined) === (a['public-key'] === undefined), { message: 'give --archive and --public-key together', path: ['archive'] })
  .refine((a) => a.archive === undefined || (a.stack === undefined && a.table === undefined && a.bucket === undefined && a['signing-key'] === undefined), {
    message: 'an offline verification (--archive) reads nothing from AWS: drop --stack, --table, --bucket and --signing-key',
    path: ['archive'],
  })
  .refine((a) => a.archive !== undefined || a.stack !== undefined || (a.table && a.bucket && a['signing-key']), {
    message: 'give --stack, or all of --table, --bucket and --signing-key, or --archive and --public-key',
    path: ['stack'],
  });
export type VerifyArgs = z.infer<typeof VerifyArgsSchema>;

export const LEDGER_VERIFY_USAGE = `usage: fleetwarden ledger verify (--stack NAME | --table T --bucket B --signing-key ARN) [--chain fleet] [--region R] [--profile P] [--json]
       fleetwarden ledger verify --archive DIR --public-key FILE [--chain fleet] [--json]

Exit status: 0 verified, 1 tampered, 2 bad usage.`;

export function parseVerifyArgs(argv: readonly string[]): VerifyArgs {
  return parseCommandArgs(LEDGER_VERIFY_COMMAND, argv);
}

/** `fleetwarden ledger verify`: exit status 1 when the chain, its archive or its digests were tampered with. */
export const LEDGER_VERIFY_COMMAND = cliCommand({
  path: ['ledger', 'verify'],
  summary: 'Verify the ledger: the table, the archive against its signed digests, and that they agree.',
  flags: VerifyArgsSchema,
  args: (flags) => flags,
  notes: 'Exit status: 0 verified, 1 tampered (or failed), 2 bad usage.',
  run: async (args: VerifyArgs): Promise<CliResult> => {
    const report = await runVerify(args);
    return { text: args.json ? JSON.stringify(report, null, 2) : formatVerification(report), code: report.ok ? 0 : 1 };
  },
});

export async function runVerify(args: VerifyArgs, progress?: ProgressOptions): Promise<ArchiveVerification> {
  const shown = new Progress('verifying the archive', 'entries', progress);
  let reported = 0;
  const onProgress = (p: ArchiveProgress) => {
    shown.add(p.entries - reported);
    reported = p.entries;
  };
  try {
    if (args.archive) {
      if (!existsSync(args['public-key']!)) throw new CliUsageError(`--public-key: no file ${args['public-key']}`);
      if (!existsSync(args.archive)) throw new CliUsageError(`--archive: no directory ${args.archive}`);
      const verifier = publicKeyOf(readFileSync(args['public-key']!), args['public-key']!);
      return await verifyArchive({ archive: new DirectoryArchive(args.archive), verifier, chain: args.chain, onProgress });
    }
    const outputs = args.stack ? await stackOutputs(args.stack, awsOptions(args)) : {};
    const table = args.table ?? outputs.LedgerTableName;
    const bucket = args.bucket ?? outputs.ArchiveBucketName;
    const key = args['signing-key'] ?? outputs.DigestSigningKeyArn;
    if (!table || !bucket || !key) throw new CliUsageError(`--stack: stack ${args.stack} has no ledger outputs (LedgerTableName, ArchiveBucketName, DigestSigningKeyArn)`);
    const verifier = new PublicKeyVerifier(await kmsPublicKey(awsClient(KMSClient, awsOptions(args)), key));
    return await verifyArchive({
      archive: new S3ArchiveReader(awsClient(S3Client, awsOptions(args)), bucket),
      verifier,
      chain: args.chain,
      table: new DynamoLedger(documentClient(awsOptions(args)), { tableName: table, chain: args.chain }),
      onProgress,
    });
  } finally {
    shown.done();
  }
}

function publicKeyOf(bytes: Buffer, file: string): PublicKeyVerifier {
  try {
    return new PublicKeyVerifier(bytes);
  } catch (cause) {
    throw new CliUsageError(`--public-key: ${file} is not a public key in DER or PEM (${(cause as Error).message})`);
  }
}

export function formatVerification(report: ArchiveVerification): string {
  const tip = report.archive.tip ?? report.table?.tip;
  const parts = [
    report.table ? `table ${plural(report.table.entries, 'entry', 'entries')}` : undefined,
    `archive ${plural(report.archive.entries, 'entry', 'entries')} in ${plural(report.segments.vouched + report.segments.newerThanDigests, 'segment', 'segments')}`,
    plural(report.digests, 'signed digest', 'signed digests'),
  ].filter(Boolean);
  const head = `${report.ok ? 'OK' : 'TAMPERED'}: chain "${report.chain}", ${parts.join(', ')}, tip ${tip ? `seq ${tip.seq}, hash ${tip.hash.slice(0, 12)}…` : 'empty'}`;
  const notes = [
    report.segments.newerThanDigests ? `  ${plural(report.segments.newerThanDigests, 'segment is', 'segments are')} newer than the newest digest (the next digest vouches for them)` : undefined,
    report.table?.notYetArchived ? `  ${plural(report.table.notYetArchived, 'entry is', 'entries are')} in the table and not archived yet` : undefined,
  ].filter(Boolean);
  const [first, ...rest] = report.problems;
  const problems = first ? [`  first broken point: ${describeProblem(first)}`, ...rest.slice(0, 20).map((p) => `  also: ${describeProblem(p)}`), ...(rest.length > 20 ? [`  and ${rest.length - 20} more`] : [])] : [];
  return [head, ...notes, ...problems].join('\n');
}

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
