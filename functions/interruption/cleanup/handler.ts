import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { EventBridgePublisher } from '../../shared/bus';
import { releaseEndedQuarantines } from '../cleanup';
import { DynamoPoolRiskStore } from '../pool-store';
import { QuarantineCleanupEnvSchema } from './env';

/**
 * The EventBridge scheduled event that triggers the run; its id goes into the ledger.
 * @example { "id": "53dc4d37-...", "detail-type": "Scheduled Event", "source": "aws.events", "time": "2026-11-22T10:15:00Z", "detail": {} }
 */
export const ScheduledEventSchema = z.object({
  id: z.string().min(1),
  'detail-type': z.literal('Scheduled Event'),
  source: z.literal('aws.events'),
  time: z.iso.datetime({ offset: true }),
});

export const handler = fleetHandler({ envSchema: QuarantineCleanupEnvSchema, inputSchema: ScheduledEventSchema }, async (event, { env, metrics, logger }) => {
  const outcome = await releaseEndedQuarantines(event.id, {
    pools: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, 'fleetwarden.interruption'),
    clock: () => new Date(),
    actor: 'quarantine-cleanup',
  });
  metrics.addMetric('QuarantinesActive', MetricUnit.Count, outcome.active);
  metrics.addMetric('QuarantinesReleased', MetricUnit.Count, outcome.released.length);
  logger.info('quarantine cleanup', { ...outcome });
  return outcome;
});
