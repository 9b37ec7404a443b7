import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { Ec2SpotPriceSource, Gatekeeper, NoPlacementScores } from '../../gatekeeper/adapters';
import { EventBridgePublisher } from '../../shared/bus';
import { DynamoPoolRiskStore } from '../../interruption/pool-store';
import { DynamoLedger } from '../../ledger/store';
import { DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { awsClient, documentClient } from '../../shared/aws';
import { fleetHandler } from '../../shared/middleware';
import { SwapAws } from '../aws';
import { LaunchResultSchema, StepErrorSchema, type SwapOutcome, SwapOutcomeSchema, SwapPlanSchema, SwapRequestSchema } from '../model';
import { type SwapDeps, compensateStep, launchStep, planStep, recordStep, terminateOldStep } from '../steps';
import { ExecutionStatusChangeSchema, type HeldLock, findHeldWork } from '../reaper';
import { type SwapStepsEnv, SwapStepsEnvSchema } from './env';

/** The swap lock as the state machine wrote it (consistent read: the reaper acts on it). */
async function lockOf(tableName: string, lockId: string): Promise<HeldLock | undefined> {
  const out = await awsClient(DynamoDBClient).send(new GetItemCommand({ TableName: tableName, Key: { lockId: { S: lockId } }, ConsistentRead: true }));
  const owner = out.Item?.owner?.S;
  return owner ? { owner, plan: out.Item?.plan?.S } : undefined;
}

export const EVENT_SOURCE = 'fleetwarden.swap';

/**
 * Input of the swap's logic steps; the state machine passes `step` and what that step needs.
 * @example { "step": "launch", "plan": { "action": "swap", "group": "web", … } }
 */
export const SwapStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('plan'), request: SwapRequestSchema, executionId: z.string().min(1) }),
  z.strictObject({ step: z.literal('launch'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('terminate-old'), plan: SwapPlanSchema, launch: LaunchResultSchema }),
  z.strictObject({ step: z.literal('compensate'), plan: SwapPlanSchema, error: StepErrorSchema.optional() }),
  z.strictObject({
    step: z.literal('record'),
    outcome: SwapOutcomeSchema,
    executionId: z.string().min(1),
    state: z.record(z.string(), z.unknown()),
  }),
  // Step Functions' "Execution Status Change" event of a swap execution (the ReapSwap workflow).
  z.strictObject({ step: z.literal('find-held-work'), event: ExecutionStatusChangeSchema }),
]);

function deps(env: SwapStepsEnv): SwapDeps {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const pools = new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME);
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  return {
    aws: new SwapAws(region, env.LOCKS_TABLE_NAME),
    // Placement scores are off here until the function gets ec2:GetSpotPlacementScores; moto lacks the API.
    gatekeeper: new Gatekeeper({ store: pools, prices: new Ec2SpotPriceSource(), placementScores: new NoPlacementScores(), ledger, policy: env.RISK_POLICY }),
    ledger,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCE),
    region,
    account: env.HOME_ACCOUNT_ID,
    // Undefined for an account the config does not list: planning then fails, naming it.
    environment: env.ACCOUNT_ENVIRONMENTS[env.HOME_ACCOUNT_ID],
    dryRunDefault: env.FLEETWARDEN_DRY_RUN,
    clock: () => new Date(),
    kubernetes: { clusters: env.KUBERNETES_CLUSTER_NAMES, groupClusters: env.SWAP_GROUP_CLUSTERS },
  };
}

/** Swap outcomes as CloudWatch metrics (EMF, namespace Fleetwarden). */
const OUTCOME_METRICS: Readonly<Record<SwapOutcome, string>> = { succeeded: 'SwapsSucceeded', 'rolled-back': 'SwapsRolledBack', skipped: 'SwapsSkipped', 'dry-run': 'SwapsDryRun', 'lock-held': 'SwapsLockHeld', failed: 'SwapsFailed' };

export const handler = fleetHandler({ envSchema: SwapStepsEnvSchema, inputSchema: SwapStepInputSchema }, async (input, { env, metrics }) => {
  const d = deps(env);
  /** One metric per step: swaps planned, launched, rolled back, by outcome. */
  const counted = async <R>(metric: string, work: Promise<R>, value: (result: R) => number = () => 1): Promise<R> => {
    const result = await work;
    metrics.addMetric(metric, MetricUnit.Count, value(result));
    return result;
  };
  switch (input.step) {
    case 'plan':
      return counted('SwapsPlanned', planStep(input.request, input.executionId, d));
    case 'launch':
      return counted('SpotReplacementsLaunched', launchStep(input.plan, d));
    case 'terminate-old':
      return counted('OldInstancesTerminated', terminateOldStep(input.plan, input.launch, d));
    case 'compensate':
      return counted('SwapRollbacks', compensateStep(input.plan, d));
    case 'record':
      return counted(OUTCOME_METRICS[input.outcome], recordStep(input.outcome, input.state, input.executionId, d));
    case 'find-held-work':
      return counted('StoppedSwapsFound', findHeldWork(input.event, { region: d.region, lock: (lockId) => lockOf(env.LOCKS_TABLE_NAME, lockId) }), (held) => (held.action === 'roll-back' ? 1 : 0));
  }
});
