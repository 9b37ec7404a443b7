import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { IdentifiedScheduledEventSchema } from '../../shared/scheduled-event';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { releaseEndedQuarantines } from '../cleanup';
import { DynamoPoolRiskStore } from '../pool-store';
import { QuarantineCleanupEnvSchema } from './env';

export const handler = fleetHandler({ envSchema: QuarantineCleanupEnvSchema, inputSchema: IdentifiedScheduledEventSchema }, async (event, { env, metrics, logger }) => {
  const outcome = await releaseEndedQuarantines(event.id, {
    pools: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.interruption),
    clock: () => new Date(),
    actor: 'quarantine-cleanup',
  });
  metrics.addMetric('QuarantinesActive', MetricUnit.Count, outcome.active);
  // Only when some were released: a series is billed for every hour it is emitted in.
  if (outcome.released.length) metrics.addMetric('QuarantinesReleased', MetricUnit.Count, outcome.released.length);
  logger.info('quarantine cleanup', { ...outcome });
  return outcome;
});
