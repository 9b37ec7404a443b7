import { swapGatekeeper } from '../../gatekeeper/swap-gatekeeper';
import { DynamoPoolRiskStore } from '../../interruption/pool-store';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { DynamoLocks } from '../../shared/locks';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { SwapAws } from '../aws';
import { type SwapDeps, SwapStepInputSchema, runSwapStep } from '../steps';
import { type SwapStepsEnv, SwapStepsEnvSchema } from './env';

const wire = perEnvironment((env: SwapStepsEnv): SwapDeps => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  const locks = new DynamoLocks(env.LOCKS_TABLE_NAME);
  return {
    aws: new SwapAws(region, locks),
    locks,
    // Ranked by quarantine, risk, price and Spot placement scores (cached; degraded to risk and price when unavailable).
    gatekeeper: swapGatekeeper({ store: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME), ledger, policy: env.RISK_POLICY }),
    ledger,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.swap),
    region,
    account: env.HOME_ACCOUNT_ID,
    // Undefined for an account the config does not list: planning then fails, naming it.
    environment: env.ACCOUNT_ENVIRONMENTS[env.HOME_ACCOUNT_ID],
    dryRunDefault: env.FLEETWARDEN_DRY_RUN,
    clock: () => new Date(),
    kubernetes: { clusters: env.KUBERNETES_CLUSTER_NAMES, groupClusters: env.SWAP_GROUP_CLUSTERS },
  };
});

export const handler = fleetHandler({ envSchema: SwapStepsEnvSchema, inputSchema: SwapStepInputSchema }, (input, { env, metrics }) => runSwapStep(input, wire(env), metrics));
