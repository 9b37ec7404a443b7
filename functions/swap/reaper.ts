import { z } from 'zod';
import { type SwapPlan, SwapPlanSchema } from './model';
import { type SwapDeps, compensateStep, recordStep } from './steps';

/**
 * Step Functions' own event when an execution ends (default bus, source `aws.states`). The
 * NodeSwap machine's Catch covers every failing state, but not an execution that is stopped (by
 * an operator, or by a parent batch stopped mid-wave) or that runs out of time: those end with
 * no rollback at all. This event is how they are found.
 * @example { "source": "aws.states", "detail-type": "Step Functions Execution Status Change", "detail": { "status": "ABORTED", "name": "swap-1", "input": "{\"group\":\"web\"}", … } }
 */
export const ExecutionStatusChangeSchema = z.looseObject({
  source: z.literal('aws.states'),
  'detail-type': z.literal('Step Functions Execution Status Change'),
  detail: z.looseObject({
    executionArn: z.string().min(1),
    stateMachineArn: z.string().min(1),
    name: z.string().min(1),
    status: z.enum(['RUNNING', 'SUCCEEDED', 'FAILED', 'TIMED_OUT', 'ABORTED', 'PENDING_REDRIVE']),
    input: z.string().nullish(),
    error: z.string().nullish(),
    cause: z.string().nullish(),
  }),
});
export type ExecutionStatusChange = z.infer<typeof ExecutionStatusChangeSchema>;

/** The swap lock, as the state machine wrote it: its owner and the plan it worked from. */
export interface HeldLock {
  owner: string;
  plan?: string;
}

export interface ReaperDeps extends SwapDeps {
  lock(lockId: string): Promise<HeldLock | undefined>;
}

export type ReapOutcome =
  | { action: 'nothing'; reason: string }
  | { action: 'rolled-back'; executionId: string; actions: string[] };

/**
 * Rolls back a swap whose execution ended without its own rollback. Its lock tells: a swap that
 * completed or rolled back released it, so a lock still held by the ended execution means work
 * may be half done. The plan stored with the lock drives the same observing compensation as the
 * state machine's rollback (replacement removed or kept, old instance re-attached or terminated,
 * MaxSize, desired capacity and processes restored, lock released), then it is recorded and
 * announced as SwapRolledBack. Idempotent: once the lock is released, a redelivery does nothing.
 */
export async function reapStep(event: ExecutionStatusChange, deps: ReaperDeps): Promise<ReapOutcome> {
  const { status, name, input } = event.detail;
  if (status === 'RUNNING' || status === 'SUCCEEDED') return { action: 'nothing', reason: `execution ${name} is ${status}` };
  const group = groupOf(input);
  if (!group) return { action: 'nothing', reason: `execution ${name} has no group in its input` };
  const lockId = `swap-lock#${deps.region}#${group}`;
  const held = await deps.lock(lockId);
  if (!held || held.owner !== name) return { action: 'nothing', reason: `the lock of ${group} is not held by ${name}: it finished or rolled back itself` };
  const plan = parsePlan(held.plan);
  if (!plan) throw new Error(`the lock of ${group} held by ${name} carries no readable plan: roll back by hand (see the runbook)`);
  const { actions } = await compensateStep(plan, deps);
  const nodes = plan.cluster ? `; Kubernetes: the old node may still carry the taint fleetwarden.io/swap=${name} and be cordoned (uncordon it once its instance is back in service)` : '';
  const error = { Error: `Execution.${status}`, Cause: `execution ${name} ended ${status}${event.detail.error ? ` (${event.detail.error})` : ''} without its rollback; rolled back from the plan stored with its lock${nodes}` };
  await recordStep('rolled-back', { plan, compensation: { actions, by: 'reaper' }, error }, name, deps);
  return { action: 'rolled-back', executionId: name, actions: actions.map((a) => a.kind) };
}

function groupOf(input: string | null | undefined): string | undefined {
  try {
    const parsed = JSON.parse(input ?? '') as { group?: unknown };
    return typeof parsed.group === 'string' ? parsed.group : undefined;
  } catch {
    return undefined;
  }
}

function parsePlan(text: string | undefined): SwapPlan | undefined {
  if (!text) return undefined;
  try {
    const result = SwapPlanSchema.safeParse(JSON.parse(text));
    return result.success ? result.data : undefined;
  } catch {
    return undefined;
  }
}
