import { z } from 'zod';
import { EventBridgePublisher } from '../../shared/bus';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { runningExecutions, startExecution } from '../../shared/executions';
import { fleetHandler } from '../../shared/middleware';
import { AwsDriftFacts } from '../aws';
import { type BatchStarter, DRIFT_EVENT_SOURCE, type DriftDeps, runDriftCycle } from '../repair';
import { type NodeDriftEnv, NodeDriftEnvSchema } from './env';

/**
 * What invokes a drift cycle: the EventBridge schedule (a Scheduled Event) or an operator with `{}`.
 * @example { "source": "aws.events", "detail-type": "Scheduled Event", "time": "2026-12-01T10:00:00Z", "detail": {} }
 */
export const DriftCycleInputSchema = z.looseObject({
  'detail-type': z.literal('Scheduled Event').optional(),
  time: z.iso.datetime().optional(),
});

function deps(env: NodeDriftEnv): DriftDeps {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const batches: BatchStarter = {
    running: async (prefix) => (await runningExecutions(env.BATCH_STATE_MACHINE_ARN, prefix, { region })).map((e) => e.name),
    start: (name, request) => startExecution(env.BATCH_STATE_MACHINE_ARN, name, request, { region }),
  };
  return {
    facts: new AwsDriftFacts(region),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, DRIFT_EVENT_SOURCE),
    batches,
    region,
    clock: () => new Date(),
  };
}

export const handler = fleetHandler({ envSchema: NodeDriftEnvSchema, inputSchema: DriftCycleInputSchema }, async (_input, { env, logger, metrics }) => {
  const reports = await runDriftCycle(env.SWAP_GROUPS, deps(env));
  for (const report of reports) {
    if (report.status === 'missing') logger.warn('configured group not found', { group: report.group });
    if (report.status === 'drifted') logger.info('node drift', { ...report });
  }
  metrics.addMetric('DriftedNodes', 'Count', reports.reduce((n, r) => n + r.drifted.length, 0));
  metrics.addMetric('DriftBatchesStarted', 'Count', reports.filter((r) => r.batch?.outcome === 'started').length);
  return { groups: reports };
});
