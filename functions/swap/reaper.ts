import * as z from 'zod';
import { type SwapPlan, SwapPlanSchema } from './model';
import { type LockStore, groupLockId } from '../shared/locks';
import { TerminalError } from '../shared/errors';

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

export interface ReaperDeps {
  region: string;
  locks: Pick<LockStore, 'held'>;
}

export type HeldWork =
  | { action: 'nothing'; reason: string }
  | { action: 'roll-back'; executionId: string; plan: SwapPlan; error: { Error: string; Cause: string } };

/**
 * What a swap execution that ended without its own rollback still holds. Its lock tells: a swap
 * that completed or rolled back released it, so a lock still held by the ended execution means
 * work may be half done, and the plan stored with the lock says what to undo (the ReapSwap
 * workflow then runs the same rollback as the swap: nodes first, then the group, then records).
 * An execution that failed through one of its own Fail states (`Swap.*`: rolled back, or its
 * rollback failed and operators were alerted) is left alone. Idempotent: once the lock is
 * released, a redelivered event finds nothing.
 */
export async function findHeldWork(event: ExecutionStatusChange, deps: ReaperDeps): Promise<HeldWork> {
  const { status, name, input, error } = event.detail;
  if (status === 'RUNNING' || status === 'SUCCEEDED' || status === 'PENDING_REDRIVE') return { action: 'nothing', reason: `execution ${name} is ${status}` };
  if (status === 'FAILED' && error?.startsWith('Swap.')) return { action: 'nothing', reason: `execution ${name} ended through its own ${error}: its rollback ran (and alerted if it failed)` };
  const group = groupOf(input);
  if (!group) return { action: 'nothing', reason: `execution ${name} has no group in its input` };
  const held = await deps.locks.held(groupLockId(deps.region, group));
  if (!held || held.owner !== name) return { action: 'nothing', reason: `the lock of ${group} is not held by ${name}: it finished or rolled back itself` };
  const plan = parsePlan(held.plan);
  if (!plan) throw new NoPlanError(`the lock of ${group} held by ${name} carries no readable plan: roll back by hand (see the runbook)`);
  return {
    action: 'roll-back',
    executionId: name,
    plan,
    error: { Error: `Execution.${status}`, Cause: `execution ${name} ended ${status}${error ? ` (${error})` : ''} without its rollback; rolled back from the plan stored with its lock` },
  };
}

export class NoPlanError extends TerminalError {
  override name = 'Terminal.NoPlanWithLock';
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
