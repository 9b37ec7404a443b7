import * as z from 'zod';
import { AccountEnvironmentsSchema } from '../shared/environments';
import { BaseEnvSchema } from '../shared/env';
import { jsonString } from '../shared/validation';
import { EnforcementPolicySchema } from './policy';

/** What both enforcement functions need: the flags, the ledger, the bus, the topic, the accounts and the policy. */
export const EnforcementEnvSchema = BaseEnvSchema.extend({
  AUTHORIZATIONS_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  NOTIFICATION_TOPIC_ARN: z.string().min(1),
  HOME_ACCOUNT_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().min(1),
  ACCOUNT_ENVIRONMENTS: AccountEnvironmentsSchema,
  /** Organizations account tag that names an unlisted account's environment class; empty: off. */
  ORGANIZATIONS_ENVIRONMENT_TAG: z.string().optional().transform((v) => v || undefined),
  ENFORCEMENT_POLICY: jsonString(EnforcementPolicySchema),
});
export type EnforcementEnv = z.infer<typeof EnforcementEnvSchema>;
