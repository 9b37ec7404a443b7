import * as z from 'zod';
import { BaseEnvSchema, MemberAccountEnvSchema } from '../shared/env';
import { jsonString } from '../shared/validation';
import { EnforcementPolicySchema } from './policy';

/** What both enforcement functions need: the flags, the ledger, the bus, the topic, the accounts and the policy. */
export const EnforcementEnvSchema = BaseEnvSchema.extend(MemberAccountEnvSchema.shape).extend({
  AUTHORIZATIONS_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  NOTIFICATION_TOPIC_ARN: z.string().min(1),
  ENFORCEMENT_POLICY: jsonString(EnforcementPolicySchema),
});
export type EnforcementEnv = z.infer<typeof EnforcementEnvSchema>;
