import { S3Client } from '@aws-sdk/client-s3';
import { awsClient, documentClient } from '../../shared/aws';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { DynamoArchivePositions, S3SegmentStore, TableEntries } from '../adapters';
import { archiveChain, archiveChanges } from '../archiver';
import { type LedgerArchiveEnv, LedgerArchiveEnvSchema } from './env';
import { ArchiveRequestSchema, changesOf } from './events';

const deps = perEnvironment((env: LedgerArchiveEnv) => ({
  positions: new DynamoArchivePositions(documentClient(), env.LOCKS_TABLE_NAME),
  segments: new S3SegmentStore(awsClient(S3Client), env.ARCHIVE_BUCKET_NAME),
  entries: new TableEntries(documentClient(), env.LEDGER_TABLE_NAME),
}));

/** The ledger table's stream (or the catch-up schedule) in, segments in the locked archive out. */
export const handler = fleetHandler({ envSchema: LedgerArchiveEnvSchema, inputSchema: ArchiveRequestSchema }, async (input, { env, metrics, logger }) => {
  const { runs, rewritten } = 'chain' in input ? { runs: [await archiveChain(deps(env), input.chain, [])], rewritten: [] } : await archiveChanges(deps(env), changesOf(input));
  if (rewritten.length) logger.error('ledger entries were changed or removed in the table after they were written', { rewritten });
  metrics.addMetric('LedgerEntriesRewritten', 'Count', rewritten.length);
  metrics.addMetric('LedgerSegmentsArchived', 'Count', runs.reduce((n, r) => n + r.segments.length, 0));
  metrics.addMetric('LedgerEntriesFilledFromTable', 'Count', runs.reduce((n, r) => n + r.filledFromTable, 0));
  logger.info('ledger archived', { runs: runs.map((r) => ({ chain: r.chain, archivedTo: r.archivedTo, segments: r.segments.length, filledFromTable: r.filledFromTable })) });
  return { archivedTo: Object.fromEntries(runs.map((r) => [r.chain, r.archivedTo])), rewritten };
});
