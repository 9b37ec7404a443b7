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
  | { kind: 'terminate-replacement-in-group'; instanceId: string }
  | { kind: 'terminate-replacement'; instanceId: string }
  | { kind: 'terminate-detached-old'; instanceId: string }
  | { kind: 'reattach-old'; instanceId: string }
  | { kind: 'restore-max'; maxSize: number }
  | { kind: 'restore-desired'; desired: number }
  | { kind: 'resume-processes'; processes: string[] }
  | { kind: 'release-lock' }
  /** Not an effect: the old instance is still Detaching, so the rollback is tried again later (see decideCompensation). */
  | { kind: 'wait-for-old-detached'; instanceId: string };

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
 * - While the old instance is still Detaching (e.g. a load balancer's deregistration delay) the
 *   only decision is to wait: once Detached it must be re-attached or terminated, and the lock
 *   is what stops another swap from building on the group before that.
 */
export function decideCompensation(plan: SwapPlan, seen: SwapObservation): CompensationAction[] {
  const actions: CompensationAction[] = [];
  const old = plan.oldInstanceId;
  if (old && seen.members.get(old) === 'Detaching') return [{ kind: 'wait-for-old-detached', instanceId: old }];
  // An instance that is Detaching has left, as far as capacity and ownership go.
  const member = (id: string) => seen.members.has(id) && !['Detaching', 'Detached'].includes(seen.members.get(id)!);
  const inService = (id: string) => seen.members.get(id) === 'InService';
  const oldInGroup = old !== undefined && member(old);
  const oldRunning = seen.oldState === 'running' || seen.oldState === 'pending';
  let desiredAfter = seen.desired;

  if (old && !oldInGroup && oldRunning) {
    const kept = seen.replacements.some((r) => member(r) && inService(r));
    // The old instance left the group: if a replacement serves in its place, finish the swap;
    // if not, it goes back in first (an instance running outside its group is an orphan, and in
    // a group with MinSize = desired the replacement can only leave once the old one is back).
    if (kept) actions.push({ kind: 'terminate-detached-old', instanceId: old });
    else {
      actions.push({ kind: 'reattach-old', instanceId: old });
      desiredAfter += 1;
    }
  }
  const oldServes = oldInGroup || actions.some((a) => a.kind === 'reattach-old');
  for (const replacement of seen.replacements) {
    const attached = member(replacement);
    if (!oldServes && attached && inService(replacement)) continue; // it is the swap's result: keep
    if (attached && inService(replacement)) {
      actions.push({ kind: 'detach-replacement', instanceId: replacement });
      actions.push({ kind: 'terminate-replacement', instanceId: replacement });
      desiredAfter -= 1;
    } else if (attached) {
      actions.push({ kind: 'terminate-replacement-in-group', instanceId: replacement });
      desiredAfter -= 1;
    } else actions.push({ kind: 'terminate-replacement', instanceId: replacement });
  }
  if (desiredAfter < plan.original.desired) actions.push({ kind: 'restore-desired', desired: plan.original.desired });
  // Only undo our own raise: a MaxSize someone else set meanwhile is theirs.
  if (plan.raisedMax !== undefined && seen.maxSize === plan.raisedMax) actions.push({ kind: 'restore-max', maxSize: plan.original.max });
  const toResume = plan.suspend.filter((p) => seen.suspended.includes(p));
  if (toResume.length) actions.push({ kind: 'resume-processes', processes: toResume });
  if (seen.lockOwner === plan.executionId) actions.push({ kind: 'release-lock' });
  return actions;
}
