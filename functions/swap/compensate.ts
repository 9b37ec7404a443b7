import type { SwapPlan } from './model';

/** What compensation sees of the world, read fresh (never trusted from the execution's state). */
export interface SwapObservation {
  /** Instances currently in the group, by id, with their lifecycle state. */
  members: Map<string, string>;
  maxSize: number;
  desired: number;
  suspended: string[];
  /** Replacement(s) this execution launched (found by tag), running or pending. */
  replacements: string[];
  /** The old instance's EC2 state (running, terminated, …) or undefined if gone. */
  oldState?: string;
  lockOwner?: string;
}

export type CompensationAction =
  | { kind: 'detach-replacement'; instanceId: string }
  | { kind: 'terminate-replacement'; instanceId: string }
  | { kind: 'terminate-detached-old'; instanceId: string }
  | { kind: 'reattach-old'; instanceId: string }
  | { kind: 'restore-max'; maxSize: number }
  | { kind: 'restore-desired'; desired: number }
  | { kind: 'resume-processes'; processes: string[] }
  | { kind: 'release-lock' };

/**
 * Decides, from what is actually there, how to put the group back: pure and re-entrant, so a
 * rollback that itself fails half-way is simply run again.
 *
 * - A replacement that is not serving alongside the old instance is removed (detached with
 *   decrement if attached, then terminated): no orphan, capacity back to N.
 * - If the old instance was already detached (the swap failed after the point of no return),
 *   the replacement is kept and the old, detached instance is terminated: forward recovery,
 *   never an instance running outside its group, never below N.
 * - MaxSize, desired capacity, the processes this swap suspended and the lock are restored.
 */
export function decideCompensation(plan: SwapPlan, seen: SwapObservation): CompensationAction[] {
  const actions: CompensationAction[] = [];
  const old = plan.oldInstanceId;
  const oldInGroup = old !== undefined && seen.members.has(old);
  const oldRunning = seen.oldState === 'running' || seen.oldState === 'pending';
  const inService = (id: string) => seen.members.get(id) === 'InService';
  let desiredAfter = seen.desired;

  for (const replacement of seen.replacements) {
    const attached = seen.members.has(replacement);
    const keep = !oldInGroup && attached && inService(replacement);
    if (keep) continue;
    if (attached) {
      actions.push({ kind: 'detach-replacement', instanceId: replacement });
      desiredAfter -= 1;
    }
    actions.push({ kind: 'terminate-replacement', instanceId: replacement });
  }
  if (old && !oldInGroup && oldRunning) {
    const kept = seen.replacements.some((r) => seen.members.has(r) && inService(r));
    // The old instance left the group: if a replacement serves in its place, finish the swap;
    // if not, it goes back in (an instance running outside its group is an orphan).
    if (kept) actions.push({ kind: 'terminate-detached-old', instanceId: old });
    else {
      actions.push({ kind: 'reattach-old', instanceId: old });
      desiredAfter += 1;
    }
  }
  if (desiredAfter < plan.original.desired) actions.push({ kind: 'restore-desired', desired: plan.original.desired });
  // Only undo our own raise: a MaxSize someone else set meanwhile is theirs.
  if (plan.raisedMax !== undefined && seen.maxSize === plan.raisedMax) actions.push({ kind: 'restore-max', maxSize: plan.original.max });
  const toResume = plan.suspend.filter((p) => seen.suspended.includes(p));
  if (toResume.length) actions.push({ kind: 'resume-processes', processes: toResume });
  if (seen.lockOwner === plan.executionId) actions.push({ kind: 'release-lock' });
  return actions;
}
