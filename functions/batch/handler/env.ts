import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';
import { BudgetSchema, MaintenanceWindowSchema, SwapGroupSchema } from '../model';

export const BatchPolicySchema = z.strictObject({
  budget: BudgetSchema,
  maxFailedSwaps: z.number().int().min(0),
  /** CloudWatch alarms the health gate requires out of ALARM. */
  alarmNames: z.array(z.string().min(1)),
});

export const SwapBatchEnvSchema = BaseEnvSchema.extend({
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  SWAP_GROUPS: jsonString(z.array(SwapGroupSchema)),
  MAINTENANCE_WINDOWS: jsonString(z.record(z.string(), MaintenanceWindowSchema)),
  BATCH_POLICY: jsonString(BatchPolicySchema),
});
export type SwapBatchEnv = z.infer<typeof SwapBatchEnvSchema>;
