import * as z from 'zod';
import { InstanceIdSchema } from '../shared/ids';


/**
 * What starts a swap (console, CLI, schedule or drift detector).
 * @example { "group": "web", "instanceId": "i-0abc…", "reason": "on-demand to Spot", "trigger": "manual" }
 */
export const SwapRequestSchema = z.strictObject({
  group: z.string().min(1).max(255),
  instanceId: InstanceIdSchema.optional(),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/).optional(),
  reason: z.string().min(1).default('replace On-Demand with Spot'),
  trigger: z.enum(['manual', 'schedule', 'drift']).default('manual'),
  dryRun: z.boolean().optional(),
  /** The batch this swap belongs to (its execution name), for the ledger and the events. */
  batchId: z.string().min(1).max(80).optional(),
  /** The EKS cluster whose node this instance is (a name from kubernetes.clusters). */
  cluster: z.string().min(1).optional(),
});
export type SwapRequest = z.infer<typeof SwapRequestSchema>;

/**
 * How a swap execution ended: the one list of swap outcomes (the recorder's input, the ledger's
 * `swap.<outcome>`, the execution's output, the Swap* event's `outcome`).
 * - `succeeded`: the old instance was replaced.
 * - `rolled-back`: the swap took the group and changed it, then the rollback undid what it did.
 * - `skipped`: nothing to swap, or the old node may not be disrupted.
 * - `dry-run`: planned, nothing changed.
 * - `lock-held`: another swap holds the group; nothing was changed.
 * - `failed`: the swap could not be planned; nothing was changed.
 * @example "rolled-back"
 */
export const SwapOutcomeSchema = z.enum(['succeeded', 'rolled-back', 'skipped', 'dry-run', 'lock-held', 'failed']);
export type SwapOutcome = z.infer<typeof SwapOutcomeSchema>;

export const SCALING_PROCESSES_TO_SUSPEND = ['AZRebalance', 'Terminate'] as const;

export const CandidateSchema = z.strictObject({ azName: z.string(), azId: z.string(), instanceType: z.string(), key: z.string(), score: z.number(), subnetId: z.string().optional() });
export type Candidate = z.infer<typeof CandidateSchema>;

/** The plan every later step works from; compensation reads it to know what to undo. */
export const SwapPlanSchema = z.strictObject({
  action: z.enum(['swap', 'skip']),
  /** The request as validated, defaults filled in: later states read only validated data. */
  trigger: SwapRequestSchema.shape.trigger,
  /** The batch this swap belongs to; planSwap writes null outside a batch (a state reads it by path, so it is always there). */
  batchId: z.string().nullable().optional(),
  /**
   * The configured EKS cluster whose node the old instance is (the request's, the group's in
   * swaps.groups, or the group's eks:cluster-name tag): present means the Kubernetes states run.
   */
  cluster: z.string().optional(),
  reason: z.string(),
  skipReason: z.string().optional(),
  dryRun: z.boolean(),
  executionId: z.string().min(1),
  group: z.string(),
  region: z.string(),
  oldInstanceId: z.string().optional(),
  original: z.strictObject({ min: z.number().int(), max: z.number().int(), desired: z.number().int() }),
  /** MaxSize while the replacement and the old instance are both in the group (N+1), if it must be raised. */
  raisedMax: z.number().int().optional(),
  /** Processes this swap suspends (those not already suspended); only these are resumed. */
  suspend: z.array(z.string()),
  launchTemplate: z.strictObject({ LaunchTemplateId: z.string(), Version: z.string() }).optional(),
  candidates: z.array(CandidateSchema),
  lock: z.strictObject({ id: z.string(), owner: z.string(), now: z.iso.datetime(), leaseUntil: z.iso.datetime(), expiresAt: z.string() }),
});
export type SwapPlan = z.infer<typeof SwapPlanSchema>;

export const LaunchResultSchema = z.strictObject({ instanceId: InstanceIdSchema, pool: z.string(), reused: z.boolean(), blockedPools: z.array(z.string()) });
export type LaunchResult = z.infer<typeof LaunchResultSchema>;

/**
 * What a failed Step Functions state hands its Catch (`ResultPath: $.error`). Lenient on
 * purpose: a rollback must never fail because the error it is handed looks odd.
 */
export const StepErrorSchema = z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() });

export interface GroupFacts {
  name: string;
  min: number;
  max: number;
  desired: number;
  instances: { instanceId: string; lifecycleState: string; azName: string; instanceType: string; spot: boolean; doNotDisrupt: boolean; protectedFromScaleIn: boolean }[];
  suspended: string[];
  launchTemplate?: { LaunchTemplateId: string; Version: string };
  instanceTypes: string[];
  azNames: string[];
  /** The group's subnet in each zone (VPCZoneIdentifier); empty for a group placed by zones only. */
  subnetsByAz: Record<string, string>;
  /** The EKS cluster the group's tags name (`eks:cluster-name`, or `kubernetes.io/cluster/<name>`). */
  clusterTag?: string;
}
