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
 * Input of the "Verify the ledger and sign a digest" state: the chain, the newest digests the
 * workflow read from the archive, and its listing of the segments no digest lists yet (S3's
 * ListObjectsV2 answer as it is: `Contents` is absent when there is none; other fields ignored).
 * @example { "chain": "fleet", "listed": { "objects": [], "truncated": false },
 *   "segments": { "Contents": [{ "Key": "segments/fleet/000000000001-000000000350-9f2c….ndjson.zst" }] } }
 */
export const DigestRequestSchema = z.strictObject({
  chain: z.string().regex(/^[a-z0-9-]+$/).default(DEFAULT_CHAIN),
  listed: ListedDigestsSchema,
  segments: z.object({ Contents: z.array(z.object({ Key: z.string().min(1) })).optional() }).optional(),
});

export const handler = fleetHandler({ envSchema: LedgerDigestEnvSchema, inputSchema: DigestRequestSchema }, async (input, { env, metrics, logger }) => {
  const plan = await prepareDigest({
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME, chain: input.chain }),
    digests: new ListedDigests(input.listed),
    segments: { keys: (input.segments?.Contents ?? []).map((o) => o.Key) },
    signer: new KmsDigestSigner(awsClient(KMSClient), env.SIGNING_KEY_ID),
  });
  metrics.addMetric('LedgerDigestsSigned', 'Count', plan.hasNew ? 1 : 0);
  logger.info('ledger digest planned', { chain: plan.chain, hasNew: plan.hasNew, toSeq: plan.toSeq });
  return plan;
});
