import * as z from 'zod';
import { AccountEnvironmentsSchema } from './environments';

/**
 * Environment every Fleetwarden function gets from the FleetFunction construct. Each function
 * extends it with its own keys; the construct types `environment` from the same schema and the
 * handler validates `process.env` against it at cold start, so both sides cannot disagree.
 */
export const BaseEnvSchema = z.object({
  POWERTOOLS_SERVICE_NAME: z.string().min(1),
  POWERTOOLS_METRICS_NAMESPACE: z.string().min(1),
  FLEETWARDEN_DRY_RUN: z.enum(['true', 'false']).transform((v) => v === 'true'),
});

export type BaseEnv = z.infer<typeof BaseEnvSchema>;
/** The keys a function's construct must provide on top of the base ones. */
export type FunctionEnvInput<S extends z.ZodObject> = Omit<z.input<S>, keyof z.input<typeof BaseEnvSchema>>;

/** What every function that works in member accounts needs: whose role to assume where, and each account's environment class. */
export const MemberAccountEnvSchema = z.object({
  HOME_ACCOUNT_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().min(1),
  ACCOUNT_ENVIRONMENTS: AccountEnvironmentsSchema,
  /** Organizations account tag that names an unlisted account's environment class; empty: off. */
  ORGANIZATIONS_ENVIRONMENT_TAG: z.string().optional().transform((v) => v || undefined),
});
