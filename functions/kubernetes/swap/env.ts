import * as z from 'zod';
import { BaseEnvSchema } from '../../shared/env';
import { jsonString } from '../../shared/validation';
import { ClusterConfigSchema } from '../cluster-config';
import { KubernetesPolicySchema } from '../drain/env';

/** The swap's Kubernetes steps reach the clusters as the node-drain function does (same config slices). */
export const SwapNodesEnvSchema = BaseEnvSchema.extend({
  /** @example [{"name":"prod-eks","region":"us-east-1"}] */
  KUBERNETES_CLUSTERS: jsonString(z.array(ClusterConfigSchema).min(1)),
  KUBERNETES_POLICY: jsonString(KubernetesPolicySchema),
});
export type SwapNodesEnv = z.infer<typeof SwapNodesEnvSchema>;
