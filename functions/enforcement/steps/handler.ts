import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { EnforcementStepInputSchema, runEnforcementStep, stepMetrics } from '../steps';
import { enforcerDeps } from '../wiring';
import { type EnforcementStepsEnv, EnforcementStepsEnvSchema } from './env';

const wire = perEnvironment((env: EnforcementStepsEnv) => enforcerDeps(env, 'enforcement-sweep'));

/** The sweep, plan and act steps of the EnforcementSweep workflow. */
export const handler = fleetHandler({ envSchema: EnforcementStepsEnvSchema, inputSchema: EnforcementStepInputSchema }, async (input, { env, metrics }) => {
  const result = await runEnforcementStep(input, wire(env));
  for (const [name, value] of Object.entries(stepMetrics(input.step, result))) metrics.addMetric(name, 'Count', value);
  return result;
});
