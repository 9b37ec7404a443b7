import * as z from 'zod';
import { AccountEnvironmentsSchema } from '../../shared/environments';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';
import { RiskPolicySchema } from '../../interruption/ingest/env';

export const SwapStepsEnvSchema = BaseEnvSchema.extend({
  POOL_RISK_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  LOCKS_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  HOME_ACCOUNT_ID: z.string().min(1),
  ACCOUNT_ENVIRONMENTS: AccountEnvironmentsSchema,
  RISK_POLICY: jsonString(RiskPolicySchema),
  /** Names in kubernetes.clusters: a swap in one of them runs the Kubernetes states. @example ["prod-eks"] */
  KUBERNETES_CLUSTER_NAMES: jsonString(z.array(z.string().min(1))),
  /** swaps.groups' cluster per group. @example {"web":"prod-eks"} */
  SWAP_GROUP_CLUSTERS: jsonString(z.record(z.string(), z.string().min(1))),
});
export type SwapStepsEnv = z.infer<typeof SwapStepsEnvSchema>;
