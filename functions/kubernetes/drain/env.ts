import { z } from 'zod';
import { BaseEnvSchema } from '../../shared/env';
import { ClusterConfigSchema } from '../cluster-config';

const json = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

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
  /** @example [{"name":"prod-eks","region":"us-east-1"}] */
  KUBERNETES_CLUSTERS: json(z.array(ClusterConfigSchema).min(1)),
  KUBERNETES_POLICY: json(KubernetesPolicySchema),
});
export type NodeDrainEnv = z.infer<typeof NodeDrainEnvSchema>;
