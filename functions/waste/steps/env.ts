export { WasteEnvSchema as WasteStepsEnvSchema, type WasteEnv as WasteStepsEnv } from '../env';
