import * as z from 'zod';
import { jsonString } from './validation';

/** Environment class of an account: decides what an interruption there does to a pool. */
export const EnvironmentClassSchema = z.enum(['PROD', 'STAGING', 'LAB']);
export type EnvironmentClass = z.infer<typeof EnvironmentClassSchema>;

/**
 * The accounts the runtime knows, as the CDK construct passes them in an environment variable:
 * `{"111111111111":"PROD","333333333333":"LAB"}`.
 */
export const AccountEnvironmentsSchema = jsonString(z.record(z.string().regex(/^\d{12}$/), EnvironmentClassSchema));
