import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { z } from 'zod';
import { fleetHandler } from '../../shared/middleware';
import { SwapAws } from '../../swap/aws';
import { LaunchResultSchema, SwapPlanSchema } from '../../swap/model';
import { type ClusterConnector, clusterConnector } from '../connector';
import { type SwapNodesEnv, SwapNodesEnvSchema } from './env';
import { checkOldNode, checkReplacementNode, drainOldNode, restoreNodes, type SwapNodeDeps } from './nodes';

/**
 * Input of the swap's Kubernetes steps; the NodeSwap state machine passes `step` and the plan.
 * @example { "step": "drain-old-node", "plan": { "action": "swap", "group": "web", "cluster": "prod-eks", … } }
 */
export const SwapNodesInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('check-old-node'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('check-replacement-node'), plan: SwapPlanSchema, launch: LaunchResultSchema }),
  z.strictObject({ step: z.literal('drain-old-node'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('restore-nodes'), plan: SwapPlanSchema }),
]);

let wired: { env: SwapNodesEnv; connector: ClusterConnector } | undefined;

/** The connector (and its cached connections) once per cold start; again if the environment changes, as in local runs. */
function connector(env: SwapNodesEnv): ClusterConnector {
  if (wired?.env !== env) wired = { env, connector: clusterConnector(env.KUBERNETES_CLUSTERS) };
  return wired.connector;
}

/** One CloudWatch metric per step (EMF, namespace Fleetwarden). */
const STEP_METRICS = { 'check-old-node': 'SwapNodeDisruptionChecks', 'check-replacement-node': 'SwapReplacementNodeChecks', 'drain-old-node': 'SwapNodeDrains', 'restore-nodes': 'SwapNodeRestores' } as const;

export const handler = fleetHandler({ envSchema: SwapNodesEnvSchema, inputSchema: SwapNodesInputSchema }, async (input, tools) => {
  const region = process.env.AWS_REGION ?? 'us-east-1';
  const aws = new SwapAws(region, '');
  const deps: SwapNodeDeps = {
    connector: connector(tools.env),
    policy: tools.env.KUBERNETES_POLICY,
    // The lock is the AWS rollback's business; this function has no access to its table.
    observe: (plan) => aws.observe(plan, { lock: false }),
    remainingMs: () => tools.lambda.getRemainingTimeInMillis(),
  };
  tools.metrics.addMetric(STEP_METRICS[input.step], MetricUnit.Count, 1);
  switch (input.step) {
    case 'check-old-node':
      return checkOldNode(input.plan, deps);
    case 'check-replacement-node':
      return checkReplacementNode(input.plan, input.launch, deps);
    case 'drain-old-node': {
      const summary = await drainOldNode(input.plan, deps);
      tools.logger.info('old node drained for the swap', { executionId: input.plan.executionId, ...summary });
      return summary;
    }
    case 'restore-nodes': {
      const result = await restoreNodes(input.plan, deps);
      tools.logger.info('nodes restored for the rollback', { executionId: input.plan.executionId, ...result });
      return result;
    }
  }
});
