import { KMSClient } from '@aws-sdk/client-kms';
import * as z from 'zod';
import { awsClient, documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { KmsDigestSigner } from '../adapters';
import { prepareDigest } from '../audit';
import { ListedDigests, ListedDigestsSchema } from '../listing';
import { DEFAULT_CHAIN, DynamoLedger } from '../store';
import { LedgerDigestEnvSchema } from './env';

/**
 * Input of the "Verify the ledger and sign a digest" state: the chain, and the newest digests the
 * workflow read from the archive.
 * @example { "chain": "fleet", "listed": { "objects": [], "truncated": false } }
 */
export const DigestRequestSchema = z.strictObject({
  chain: z.string().regex(/^[a-z0-9-]+$/).default(DEFAULT_CHAIN),
  listed: ListedDigestsSchema,
});

export const handler = fleetHandler({ envSchema: LedgerDigestEnvSchema, inputSchema: DigestRequestSchema }, async (input, { env, metrics, logger }) => {
  const plan = await prepareDigest({
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME, chain: input.chain }),
    digests: new ListedDigests(input.listed),
    signer: new KmsDigestSigner(awsClient(KMSClient), env.SIGNING_KEY_ID),
  });
  metrics.addMetric('LedgerDigestsSigned', 'Count', plan.hasNew ? 1 : 0);
  logger.info('ledger digest planned', { chain: plan.chain, hasNew: plan.hasNew, toSeq: plan.toSeq });
  return plan;
});
