import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../shared/aws';
import { CliUsageError, parseCliArgs, stackOutputs } from '../shared/cli';
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

export function parseVerifyArgs(argv: string[]): VerifyArgs {
  return parseCliArgs(VerifyArgsSchema, argv);
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
