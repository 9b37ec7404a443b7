import { ScheduledEventSchema } from '../../shared/scheduled-event';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { runningExecutions, startExecution } from '../../shared/executions';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { AwsDriftFacts } from '../aws';
import { type BatchStarter, type DriftDeps, reportDriftCycle, runDriftCycle } from '../repair';
import { type NodeDriftEnv, NodeDriftEnvSchema } from './env';

/** What invokes a drift cycle: the Scheduled Event of the NodeDrift rule (or an operator passing its minimal shape). */
export const DriftCycleInputSchema = ScheduledEventSchema;

const wire = perEnvironment((env: NodeDriftEnv): DriftDeps => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const batches: BatchStarter = {
    running: async (prefix) => (await runningExecutions(env.BATCH_STATE_MACHINE_ARN, prefix, { region })).map((e) => e.name),
    start: (name, request) => startExecution(env.BATCH_STATE_MACHINE_ARN, name, request, { region }),
  };
  return {
    facts: new AwsDriftFacts(region),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.drift),
    batches,
    region,
    clock: () => new Date(),
  };
});

export const handler = fleetHandler({ envSchema: NodeDriftEnvSchema, inputSchema: DriftCycleInputSchema }, async (_input, tools) => {
  const reports = await runDriftCycle(tools.env.SWAP_GROUPS, wire(tools.env));
  reportDriftCycle(reports, tools);
  return { groups: reports };
});
