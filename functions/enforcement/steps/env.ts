export { EnforcementEnvSchema as EnforcementStepsEnvSchema, type EnforcementEnv as EnforcementStepsEnv } from '../env';
