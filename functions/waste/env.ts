import * as z from 'zod';
import { AccountEnvironmentsSchema } from '../shared/environments';
import { BaseEnvSchema } from '../shared/env';
import { jsonString } from '../shared/validation';
import { WastePolicySchema } from './policy';

/** What the waste steps need: the findings, the ledger, the bus, the topic, the accounts and the policy. */
export const WasteEnvSchema = BaseEnvSchema.extend({
  FINDINGS_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  NOTIFICATION_TOPIC_ARN: z.string().min(1),
  HOME_ACCOUNT_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().min(1),
  ACCOUNT_ENVIRONMENTS: AccountEnvironmentsSchema,
  /** Organizations account tag that names an unlisted account's environment class; empty: off. */
  ORGANIZATIONS_ENVIRONMENT_TAG: z.string().optional().transform((v) => v || undefined),
  WASTE_POLICY: jsonString(WastePolicySchema),
});
export type WasteEnv = z.infer<typeof WasteEnvSchema>;
