import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import { z } from 'zod';
import { EventBridgePublisher } from '../../shared/bus';
import { DynamoLedger } from '../../ledger/store';
import { awsClient, documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { SwapAws } from '../../swap/aws';
import { SwapRequestSchema } from '../../swap/model';
import { BatchRequestSchema } from '../model';
import { type BatchDeps, type BatchPorts, healthStep, planWaveStep, recordBatchStep } from '../steps';
import { type SwapBatchEnv, SwapBatchEnvSchema } from './env';

export const EVENT_SOURCE = 'fleetwarden.swap';

const ProgressSchema = z.strictObject({
  wave: z.number().int().min(0),
  attempts: z.array(
    z.strictObject({
      instanceId: z.string(),
      group: z.string(),
      wave: z.number().int(),
      outcome: z.enum(['swapped', 'skipped', 'rolled-back', 'dry-run', 'deferred']),
      reason: z.string().optional(),
      replacement: z.string().optional(),
    }),
  ),
});
/** One item of the Map's output: the swap it ran and how its execution ended (lenient: it is Step Functions' shape). */
const WaveResultSchema = z.looseObject({
  request: SwapRequestSchema,
  execution: z.looseObject({ status: z.string(), output: z.unknown().optional() }).optional(),
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

/**
 * Input of the batch's logic steps.
 * @example { "step": "plan-wave", "request": { "groups": ["web"] }, "batchId": "b-1" }
 */
export const BatchStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('plan-wave'), request: BatchRequestSchema, batchId: z.string().min(1), startedAt: z.iso.datetime({ offset: true }).optional(), progress: ProgressSchema.optional(), results: z.array(WaveResultSchema).optional() }),
  z.strictObject({ step: z.literal('health'), request: BatchRequestSchema }),
  z.strictObject({ step: z.literal('record'), outcome: z.enum(['completed', 'halted', 'dry-run', 'failed']), state: z.looseObject({ batchId: z.string().min(1) }) }),
]);

/** Reads groups through the swap's own reader and alarms through CloudWatch. */
class AwsBatchPorts implements BatchPorts {
  private readonly swaps: SwapAws;
  constructor(region: string, locksTable: string) {
    this.swaps = new SwapAws(region, locksTable);
  }
  group(name: string) {
    return this.swaps.group(name);
  }
  async alarming(alarmNames: string[]): Promise<string[]> {
    if (alarmNames.length === 0) return [];
    const found: string[] = [];
    for (let i = 0; i < alarmNames.length; i += 100) {
      const out = await awsClient(CloudWatchClient).send(new DescribeAlarmsCommand({ AlarmNames: alarmNames.slice(i, i + 100), StateValue: 'ALARM' }));
      // Filtered again here: the state filter is a request parameter an endpoint may ignore (moto does).
      found.push(...[...(out.MetricAlarms ?? []), ...(out.CompositeAlarms ?? [])].filter((a) => a.StateValue === 'ALARM').map((a) => a.AlarmName!));
    }
    return found;
  }
}

function deps(env: SwapBatchEnv): BatchDeps {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  return {
    ports: new AwsBatchPorts(region, env.LOCKS_TABLE_NAME),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCE),
    groups: env.SWAP_GROUPS,
    windows: env.MAINTENANCE_WINDOWS,
    policy: env.BATCH_POLICY,
    region,
    dryRunDefault: env.FLEETWARDEN_DRY_RUN,
    clock: () => new Date(),
  };
}

export const handler = fleetHandler({ envSchema: SwapBatchEnvSchema, inputSchema: BatchStepInputSchema }, async (input, { env, metrics }) => {
  const d = deps(env);
  switch (input.step) {
    case 'plan-wave': {
      const plan = await planWaveStep(input, d);
      metrics.addMetric('BatchWavesPlanned', MetricUnit.Count, plan.action === 'swap' ? 1 : 0);
      metrics.addMetric('BatchSwapsStarted', MetricUnit.Count, plan.action === 'swap' ? plan.items.length : 0);
      return plan;
    }
    case 'health': {
      const health = await healthStep(input.request, d);
      metrics.addMetric('BatchHealthGateFailures', MetricUnit.Count, health.healthy ? 0 : 1);
      return health;
    }
    case 'record':
      metrics.addMetric(input.outcome === 'completed' ? 'BatchesCompleted' : input.outcome === 'dry-run' ? 'BatchesPlanned' : 'BatchesHalted', MetricUnit.Count, 1);
      return recordBatchStep(input.outcome, input.state as Parameters<typeof recordBatchStep>[1], d);
  }
});
