import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../../shared/aws';
import { LedgerTamperedError } from '../../shared/errors';
import { fleetHandler } from '../../shared/middleware';
import { S3ArchiveReader, kmsPublicKey } from '../adapters';
import { describeProblem } from '../archive-verify';
import { verifyDay } from '../daily-verify';
import { PublicKeyVerifier } from '../digest';
import { DynamoLedger } from '../store';
import { LedgerVerifyEnvSchema } from './env';

/**
 * What the daily schedule hands the LedgerVerify function: the chain, and optionally where the
 * window starts (by default the start of yesterday, UTC).
 * @example { "chain": "fleet" }
 */
export const LedgerVerifyRequestSchema = z.strictObject({ chain: z.string().regex(/^[a-z0-9-]+$/), since: z.iso.datetime().optional() });

const startOfYesterday = (now: Date) => new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1));

/** Yesterday's entries in the table, their digests and their segments; a failure is a metric, a log line and Terminal.LedgerTampered. */
export const handler = fleetHandler({ envSchema: LedgerVerifyEnvSchema, inputSchema: LedgerVerifyRequestSchema }, async (input, { env, metrics, logger }) => {
  const verifier = new PublicKeyVerifier(await kmsPublicKey(awsClient(KMSClient), env.SIGNING_KEY_ID));
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME, chain: input.chain });
  const report = await verifyDay({ ledger, archive: new S3ArchiveReader(awsClient(S3Client), env.ARCHIVE_BUCKET_NAME), verifier }, input.chain, input.since ? new Date(input.since) : startOfYesterday(new Date()));
  metrics.addMetric('LedgerVerificationFailed', 'Count', report.ok ? 0 : 1);
  metrics.addMetric('LedgerEntriesVerified', 'Count', report.entries);
  const { problems, ...summary } = report;
  if (report.ok) logger.info('ledger verified', summary);
  else {
    logger.error('ledger failed verification', { ...summary, problems: problems.slice(0, 20) });
    throw new LedgerTamperedError(`chain ${input.chain} since ${report.since}: ${describeProblem(problems[0]!)}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
  return summary;
});
