import { Cron } from 'croner';
import { InstanceIdSchema } from '../shared/ids';
import * as z from 'zod';

const GroupNameSchema = z.string().min(1).max(255);

/** How many swaps may be under way at once: a count, or a percent of the batch's desired capacity (at least one). */
export const BudgetSchema = z.union([
  z.strictObject({ count: z.number().int().min(1).max(1000) }),
  z.strictObject({ percent: z.number().gt(0).max(100) }),
]);
export type Budget = z.infer<typeof BudgetSchema>;

/** How long a batch may run, waits for windows included (the state machine's timeout). */
export const BATCH_TIMEOUT_DAYS = 10;
/** A batch does not wait for a window that opens later than this before its timeout. */
export const BATCH_DEADLINE_MARGIN_HOURS = 12;

function validCron(expression: string): boolean {
  try {
    // An expression that never matches (0 0 30 2 *) would fail every batch of its group later.
    return new Cron(expression, { paused: true }).nextRun() !== null;
  } catch {
    return false;
  }
}
function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * When non-urgent swaps may run: opening at each match of a 5-field cron expression, in the
 * window's time zone, for `durationMinutes`.
 * @example { "cron": "0 2 * * SAT", "durationMinutes": 240, "timeZone": "Europe/Paris" }
 */
export const MaintenanceWindowSchema = z.strictObject({
  cron: z.string().refine((c) => c.trim().split(/\s+/).length === 5 && validCron(c), 'a 5-field cron expression that matches some day: minute hour day-of-month month day-of-week'),
  durationMinutes: z.number().int().min(1).max(7 * 24 * 60),
  timeZone: z.string().refine(validTimeZone, 'an IANA time zone such as Europe/Paris').default('UTC'),
});
export type MaintenanceWindow = z.infer<typeof MaintenanceWindowSchema>;

/** EventBridge's schedule expressions. */
const ScheduleSchema = z.string().regex(/^(cron\([^)]+\)|rate\(\d+ (minute|minutes|hour|hours|day|days)\))$/, 'an EventBridge schedule expression: cron(0 3 ? * SUN *) or rate(1 day)');

/** One Auto Scaling group under Fleetwarden's care (home region). */
export const SwapGroupSchema = z.strictObject({
  name: GroupNameSchema,
  /** The EKS cluster whose nodes this group runs (a name from kubernetes.clusters): nodes are drained in swaps. */
  cluster: z.string().min(1).optional(),
  /** Runs a batch for the group on this schedule (On-Demand instances swapped to Spot). */
  schedule: ScheduleSchema.optional(),
  /** Overrides swaps.budget for batches of this group. */
  budget: BudgetSchema.optional(),
  /** Name of a swaps.maintenanceWindows entry; without one, swaps may run at any time. */
  maintenanceWindow: z.string().min(1).optional(),
  /** Instances whose AMI or launch template version differs from the group's are swapped. */
  driftRepair: z.boolean().default(true),
});
export type SwapGroup = z.infer<typeof SwapGroupSchema>;

/**
 * What starts a batch: the console, the CLI, a group's schedule or the node drift detector.
 * @example { "groups": ["web"], "trigger": "manual", "budget": { "percent": 25 } }
 */
export const BatchRequestSchema = z.strictObject({
  /** Groups to work through (configured in swaps.groups or not). */
  groups: z.array(GroupNameSchema).min(1).optional(),
  /** Or every configured group of this cluster. */
  cluster: z.string().min(1).optional(),
  /** Only these instances (the drift detector names the drifted ones). */
  instanceIds: z.array(InstanceIdSchema).min(1).optional(),
  trigger: z.enum(['manual', 'schedule', 'drift']).default('manual'),
  reason: z.string().min(1).default('replace On-Demand with Spot'),
  budget: BudgetSchema.optional(),
  /** One swap first, then a health gate, before any batch (default true). */
  canary: z.boolean().default(true),
  maxFailedSwaps: z.number().int().min(0).max(100).optional(),
  /** Ignore maintenance windows (do-not-disrupt still wins). */
  urgent: z.boolean().default(false),
  /** Plan and report, act on nothing; defaults to the deployment's dry-run setting. */
  dryRun: z.boolean().optional(),
}).refine((r) => r.groups || r.cluster, { message: 'name the groups or the cluster to work through', path: ['groups'] });
export type BatchRequest = z.infer<typeof BatchRequestSchema>;
