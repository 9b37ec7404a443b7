import * as z from 'zod';
import { ClusterConfigSchema } from '../kubernetes/cluster-config';
import { BaseEnvSchema } from '../shared/env';
import { jsonString } from '../shared/validation';
import { WorkloadDriftPolicySchema } from './policy';

/**
 * What the workload drift functions (the detector and the rollback steps) need: where the
 * published desired state is, the clusters, the policy, the drifts and the ledger, the bus.
 * @example { "DESIRED_STATE_BUCKET": "cdk-hnb659fds-assets-111111111111-us-east-1", "DESIRED_STATE_KEY": "3f2c….json", "KUBERNETES_CLUSTERS": "[{\"name\":\"prod-eks\",\"region\":\"us-east-1\"}]", "WORKLOAD_DRIFT_POLICY": "{\"rules\":[]}", "FINDINGS_TABLE_NAME": "Findings", "LEDGER_TABLE_NAME": "Ledger", "EVENT_BUS_NAME": "fleetwarden" }
 */
export const WorkloadDriftEnvSchema = BaseEnvSchema.extend({
  DESIRED_STATE_BUCKET: z.string().min(1),
  DESIRED_STATE_KEY: z.string().min(1),
  KUBERNETES_CLUSTERS: jsonString(z.array(ClusterConfigSchema)),
  WORKLOAD_DRIFT_POLICY: jsonString(WorkloadDriftPolicySchema),
  FINDINGS_TABLE_NAME: z.string().min(1),
  LEDGER_TABLE_NAME: z.string().min(1),
  EVENT_BUS_NAME: z.string().min(1),
});
export type WorkloadDriftEnv = z.infer<typeof WorkloadDriftEnvSchema>;

/** The detector also starts rollbacks. */
export const WorkloadDriftDetectorEnvSchema = WorkloadDriftEnvSchema.extend({
  ROLLBACK_STATE_MACHINE_ARN: z.string().min(1),
});
export type WorkloadDriftDetectorEnv = z.infer<typeof WorkloadDriftDetectorEnvSchema>;
