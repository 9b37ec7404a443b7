import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { EnforcementStepInputSchema, runEnforcementStep } from '../steps';
import { enforcerDeps } from '../wiring';
import { type EnforcementStepsEnv, EnforcementStepsEnvSchema } from './env';

const wire = perEnvironment((env: EnforcementStepsEnv) => enforcerDeps(env, 'enforcement-sweep'));

/** The sweep, plan and act steps of the EnforcementSweep workflow. */
export const handler = fleetHandler({ envSchema: EnforcementStepsEnvSchema, inputSchema: EnforcementStepInputSchema }, (input, { env }) => runEnforcementStep(input, wire(env)));
