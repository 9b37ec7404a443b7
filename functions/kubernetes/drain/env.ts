import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';
import { ClusterConfigSchema } from '../cluster-config';

/** @example {"rebalance":"taint","drainTimeoutSeconds":90,"doNotDisruptAnnotation":"fleetwarden.io/do-not-disrupt"} */
export const KubernetesPolicySchema = z.strictObject({
  rebalance: z.enum(['ignore', 'taint', 'drain']),
  drainTimeoutSeconds: z.number().int().min(1),
  doNotDisruptAnnotation: z.string().min(1),
});

export const NodeDrainEnvSchema = BaseEnvSchema.extend({
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
  DEAD_LETTER_QUEUE_URL: z.string().min(1),
  /** The drain queue itself: a record that failed transiently is made visible again within seconds. */
  EVENTS_QUEUE_URL: z.string().min(1),
  /** @example [{"name":"prod-eks","region":"us-east-1"}] */
  KUBERNETES_CLUSTERS: jsonString(z.array(ClusterConfigSchema).min(1)),
  KUBERNETES_POLICY: jsonString(KubernetesPolicySchema),
  /** A lifecycle action is completed in the instance's own account: the home account directly, others through this role. */
  HOME_ACCOUNT_ID: z.string().min(1),
  MEMBER_ROLE_NAME: z.string().min(1),
});
export type NodeDrainEnv = z.infer<typeof NodeDrainEnvSchema>;
