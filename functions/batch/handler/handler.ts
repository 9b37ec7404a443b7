import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { AwsBatchPorts } from '../aws';
import { type BatchDeps, BatchStepInputSchema, runBatchStep } from '../steps';
import { type SwapBatchEnv, SwapBatchEnvSchema } from './env';

const wire = perEnvironment((env: SwapBatchEnv): BatchDeps => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  return {
    ports: new AwsBatchPorts(region),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.swap),
    groups: env.SWAP_GROUPS,
    windows: env.MAINTENANCE_WINDOWS,
    policy: env.BATCH_POLICY,
    region,
    dryRunDefault: env.FLEETWARDEN_DRY_RUN,
    clock: () => new Date(),
  };
});

export const handler = fleetHandler({ envSchema: SwapBatchEnvSchema, inputSchema: BatchStepInputSchema }, (input, { env, metrics }) => runBatchStep(input, wire(env), metrics));
