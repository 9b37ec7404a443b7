import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { SwapAws } from '../../swap/aws';
import { clusterConnector } from '../connector';
import { type SwapNodesEnv, SwapNodesEnvSchema } from './env';
import { SwapNodesInputSchema, runSwapNodeStep } from './nodes';

/** The connector (and its cached connections) once per cold start. */
const wire = perEnvironment((env: SwapNodesEnv) => ({
  connector: clusterConnector(env.KUBERNETES_CLUSTERS),
  // No lock store: the lock is the AWS rollback's business; this function has no access to its table.
  aws: new SwapAws(process.env.AWS_REGION ?? 'us-east-1'),
}));

export const handler = fleetHandler({ envSchema: SwapNodesEnvSchema, inputSchema: SwapNodesInputSchema }, async (input, tools) => {
  const { connector, aws } = wire(tools.env);
  const deps = { connector, policy: tools.env.KUBERNETES_POLICY, observe: aws.observe.bind(aws), remainingMs: () => tools.lambda.getRemainingTimeInMillis() };
  return runSwapNodeStep(input, deps, tools);
});
