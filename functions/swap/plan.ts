import type { Candidate, GroupFacts, SwapPlan, SwapRequest } from './model';
import { groupLockId, lease } from '../shared/locks';
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
  /** The clusters in kubernetes.clusters, and the cluster swaps.groups names for each group. */
  kubernetes?: { clusters: readonly string[]; groupClusters?: Readonly<Record<string, string>> };
}

/**
 * The cluster whose node the old instance is: the request's (it must be configured), else the one
 * swaps.groups gives the group, else the group's EKS tag if it names a configured cluster. A tag
 * naming a cluster that is not configured refuses the swap: a node is never terminated undrained.
 */
export function swapCluster(request: SwapRequest, group: GroupFacts, kubernetes: PlanInputs['kubernetes']): { cluster?: string; refused?: string } {
  const clusters = kubernetes?.clusters ?? [];
  if (request.cluster) return clusters.includes(request.cluster) ? { cluster: request.cluster } : { refused: `cluster ${request.cluster} is not in kubernetes.clusters: its node cannot be drained` };
  const configured = kubernetes?.groupClusters?.[group.name];
  if (configured && clusters.includes(configured)) return { cluster: configured };
  if (group.clusterTag && clusters.includes(group.clusterTag)) return { cluster: group.clusterTag };
  // The group runs nodes of a cluster Fleetwarden cannot reach: swapping would terminate a node
  // without draining it (its pods outside their PodDisruptionBudgets). Refused with the reason.
  if (group.clusterTag) return { refused: `group ${group.name} runs nodes of cluster ${group.clusterTag}, which is not in kubernetes.clusters: its nodes cannot be drained` };
  return {};
}

/**
 * Decides the swap: which On-Demand instance to replace, whether MaxSize must be raised so that
 * N+1 fits, which processes to suspend, and the pools to try. Pure. A swap that must not happen
 * (nothing On-Demand left, do-not-disrupt, no allowed pool) is a `skip` with the reason.
 */
export function planSwap({ request, executionId, region, group, candidates, dryRun, now, kubernetes }: PlanInputs): SwapPlan {
  const { cluster, refused } = swapCluster(request, group, kubernetes);
  const base = {
    trigger: request.trigger,
    batchId: request.batchId ?? null,
    ...(cluster ? { cluster } : {}),
    reason: request.reason,
    dryRun,
    executionId,
    group: group.name,
    region,
    original: { min: group.min, max: group.max, desired: group.desired },
    suspend: SCALING_PROCESSES_TO_SUSPEND.filter((p) => !group.suspended.includes(p)),
    launchTemplate: group.launchTemplate,
    candidates,
    lock: lease(groupLockId(region, group.name), executionId, now, LOCK_LEASE_MS),
  };
  const skip = (skipReason: string, oldInstanceId?: string): SwapPlan => ({ ...base, action: 'skip', skipReason, oldInstanceId });

  const inService = group.instances.filter((i) => i.lifecycleState === 'InService');
  const old = request.instanceId ? group.instances.find((i) => i.instanceId === request.instanceId) : inService.find((i) => !i.spot && !i.doNotDisrupt);
  if (!old) return skip(request.instanceId ? `${request.instanceId} is not in group ${group.name}` : `group ${group.name} has no On-Demand instance left to swap`);
  if (old.lifecycleState !== 'InService') return skip(`${old.instanceId} is ${old.lifecycleState}, not InService`, old.instanceId);
  // do-not-disrupt always wins, drift included.
  if (old.doNotDisrupt) return skip(`${old.instanceId} carries the do-not-disrupt tag`, old.instanceId);
  // A drifted instance named by the drift detector is replaced whatever its market: the
  // replacement comes from the group's current launch template.
  const driftRepair = request.trigger === 'drift' && request.instanceId !== undefined;
  if (old.spot && !driftRepair) return skip(`${old.instanceId} is already Spot`, old.instanceId);
  if (refused) return skip(refused, old.instanceId);
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
