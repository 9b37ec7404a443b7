import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import * as z from 'zod';
import { awsClient, documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { KmsDigestSigner, DigestArchive } from '../adapters';
import { prepareDigest } from '../audit';
import { DEFAULT_CHAIN, DynamoLedger } from '../store';
import { LedgerDigestEnvSchema } from './env';

/**
 * Input of the "Verify the ledger and sign a digest" state.
 * @example { "chain": "fleet" }
 */
export const DigestRequestSchema = z.strictObject({
  chain: z.string().regex(/^[a-z0-9-]+$/).default(DEFAULT_CHAIN),
});

export const handler = fleetHandler({ envSchema: LedgerDigestEnvSchema, inputSchema: DigestRequestSchema }, async (input, { env, metrics, logger }) => {
  const plan = await prepareDigest({
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME, chain: input.chain }),
    digests: new DigestArchive(awsClient(S3Client), env.ARCHIVE_BUCKET_NAME),
    signer: new KmsDigestSigner(awsClient(KMSClient), env.SIGNING_KEY_ID),
  });
  metrics.addMetric('LedgerDigestsSigned', 'Count', plan.hasNew ? 1 : 0);
  logger.info('ledger digest planned', { chain: plan.chain, hasNew: plan.hasNew, toSeq: plan.toSeq });
  return plan;
});
