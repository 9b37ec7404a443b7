import * as z from 'zod';
import { BaseEnvSchema, MemberAccountEnvSchema } from '../shared/env';
import { jsonString } from '../shared/validation';
import { WastePolicySchema } from './policy';

/** What the waste steps need: the findings, the ledger, the bus, the topic, the accounts and the policy. */
export const WasteEnvSchema = BaseEnvSchema.extend(MemberAccountEnvSchema.shape).extend({
  FINDINGS_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  NOTIFICATION_TOPIC_ARN: z.string().min(1),
  WASTE_POLICY: jsonString(WastePolicySchema),
});
export type WasteEnv = z.infer<typeof WasteEnvSchema>;
