import * as z from 'zod';
import { SwapGroupSchema } from '../../batch/model';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';

/**
 * The node drift detector's environment.
 * @example { "SWAP_GROUPS": "[{\"name\":\"web\",\"driftRepair\":true}]", "BATCH_STATE_MACHINE_ARN": "arn:aws:states:us-east-1:111111111111:stateMachine:fleetwarden-swap-batch", "LEDGER_TABLE_NAME": "Ledger", "EVENT_BUS_NAME": "fleetwarden" }
 */
export const NodeDriftEnvSchema = BaseEnvSchema.extend({
  /** config.swaps.groups, as JSON. */
  SWAP_GROUPS: jsonString(z.array(SwapGroupSchema)),
  BATCH_STATE_MACHINE_ARN: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
});
export type NodeDriftEnv = z.infer<typeof NodeDriftEnvSchema>;
