import * as z from 'zod';

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
