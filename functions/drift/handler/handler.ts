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
 * What invokes a drift cycle: the Scheduled Event of the NodeDrift rule. An operator (or a test)
 * passes the same shape, at least `source`, `detail-type` and an empty `detail`: a cycle takes no
 * parameters, so anything in `detail` is refused rather than ignored. Other envelope fields
 * EventBridge may add (e.g. `replay-name`) are ignored.
 * @example { "version": "0", "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa", "detail-type": "Scheduled Event", "source": "aws.events", "account": "123456789012", "time": "2026-12-01T10:00:00Z", "region": "us-east-1", "resources": ["arn:aws:events:us-east-1:123456789012:rule/Fleetwarden-NodeDriftSchedule"], "detail": {} }
 */
export const DriftCycleInputSchema = z.object({
  version: z.string().optional(),
  id: z.string().min(1).optional(),
  'detail-type': z.literal('Scheduled Event'),
  source: z.literal('aws.events'),
  account: z.string().regex(/^\d{12}$/, 'an account id is 12 digits').optional(),
  time: z.iso.datetime({ offset: true }).optional(),
  region: z.string().min(1).optional(),
  resources: z.array(z.string()).optional(),
  detail: z.strictObject({}),
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
