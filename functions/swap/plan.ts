import type { Candidate, GroupFacts, SwapPlan, SwapRequest } from './model';
import { SCALING_PROCESSES_TO_SUSPEND } from './model';

/** Longer than the state machine's own timeout (2 h): a live swap never loses its lock. */
export const LOCK_LEASE_MS = 3 * 60 * 60_000;

export interface PlanInputs {
  request: SwapRequest;
  executionId: string;
  region: string;
  group: GroupFacts;
  /** Allowed pools, best first, from the gatekeeper (quarantined and blocked pools removed). */
  candidates: Candidate[];
  dryRun: boolean;
  now: Date;
}

/**
 * Decides the swap: which On-Demand instance to replace, whether MaxSize must be raised so that
 * N+1 fits, which processes to suspend, and the pools to try. Pure. A swap that must not happen
 * (nothing On-Demand left, do-not-disrupt, no allowed pool) is a `skip` with the reason.
 */
export function planSwap({ request, executionId, region, group, candidates, dryRun, now }: PlanInputs): SwapPlan {
  const base = {
    trigger: request.trigger,
    reason: request.reason,
    dryRun,
    executionId,
    group: group.name,
    region,
    original: { min: group.min, max: group.max, desired: group.desired },
    suspend: SCALING_PROCESSES_TO_SUSPEND.filter((p) => !group.suspended.includes(p)),
    launchTemplate: group.launchTemplate,
    candidates,
    lock: {
      id: `swap-lock#${region}#${group.name}`,
      owner: executionId,
      now: now.toISOString(),
      leaseUntil: new Date(now.getTime() + LOCK_LEASE_MS).toISOString(),
      // DynamoDB TTL (epoch seconds) cleans up an abandoned lock a day after its lease.
      expiresAt: String(Math.ceil((now.getTime() + LOCK_LEASE_MS) / 1000) + 86_400),
    },
  };
  const skip = (skipReason: string, oldInstanceId?: string): SwapPlan => ({ ...base, action: 'skip', skipReason, oldInstanceId });

  const inService = group.instances.filter((i) => i.lifecycleState === 'InService');
  const old = request.instanceId ? group.instances.find((i) => i.instanceId === request.instanceId) : inService.find((i) => !i.spot && !i.doNotDisrupt);
  if (!old) return skip(request.instanceId ? `${request.instanceId} is not in group ${group.name}` : `group ${group.name} has no On-Demand instance left to swap`);
  if (old.lifecycleState !== 'InService') return skip(`${old.instanceId} is ${old.lifecycleState}, not InService`, old.instanceId);
  if (old.spot) return skip(`${old.instanceId} is already Spot`, old.instanceId);
  if (old.doNotDisrupt) return skip(`${old.instanceId} carries the do-not-disrupt tag`, old.instanceId);
  if (!group.launchTemplate) return skip(`group ${group.name} has no launch template to launch a replacement from`, old.instanceId);
  if (candidates.length === 0) return skip('no Spot pool the gatekeeper allows for this group', old.instanceId);
  if (inService.length < group.desired) return skip(`group ${group.name} is below its desired capacity (${inService.length}/${group.desired} InService)`, old.instanceId);
  return {
    ...base,
    action: 'swap',
    oldInstanceId: old.instanceId,
    raisedMax: group.desired + 1 > group.max ? group.desired + 1 : undefined,
  };
}
