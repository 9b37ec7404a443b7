import * as z from 'zod';
import { AccountEnvironmentsSchema, EnvironmentClassSchema } from '../../shared/environments';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';

/** @example {"quarantineDays":15,"quarantineByEnvironment":{"PROD":true,"STAGING":false,"LAB":false},"insufficientCapacityMinutes":10,"riskHalfLifeHours":72} */
export const RiskPolicySchema = z.strictObject({
  quarantineDays: z.number().int().min(1),
  quarantineByEnvironment: z.record(EnvironmentClassSchema, z.boolean()),
  insufficientCapacityMinutes: z.number().int().min(1),
  riskHalfLifeHours: z.number().positive(),
});

export const InterruptionIngestEnvSchema = BaseEnvSchema.extend({
  POOL_RISK_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  DEAD_LETTER_QUEUE_URL: z.string().min(1),
  HOME_ACCOUNT_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().min(1),
  ACCOUNT_ENVIRONMENTS: AccountEnvironmentsSchema,
  /** Organizations account tag that names an unlisted account's environment class; empty: off. */
  ORGANIZATIONS_ENVIRONMENT_TAG: z.string().optional().transform((v) => v || undefined),
  RISK_POLICY: jsonString(RiskPolicySchema),
});
export type InterruptionIngestEnv = z.infer<typeof InterruptionIngestEnvSchema>;
