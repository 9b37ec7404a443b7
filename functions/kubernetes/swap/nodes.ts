import { createHash } from 'node:crypto';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import { TerminalError } from '../../shared/errors';
import { type CompensationAction, type SwapObservation, decideCompensation } from '../../swap/compensate';
import { type LaunchResult, LaunchResultSchema, type SwapPlan, SwapPlanSchema } from '../../swap/model';
import type { ClusterConnector } from '../connector';
import { doNotDisruptAnnotations as protectingAnnotations, drainBudgetMs, planDrain, podKey } from '../drain';
import type { KubernetesPolicy } from '../interruption';
import { CORDONED_BY_ANNOTATION, type DrainReport, type KubernetesNodes, type NodeInfo } from '../port';

/**
 * The Kubernetes steps of a node swap, on the same port and drain as the interruption
 * path: check that the old node may be disrupted, wait for the replacement's node to be Ready,
 * taint, cordon and drain the old node through the Eviction API (PodDisruptionBudgets honoured),
 * and on rollback put the old node back in service. Every effect carries the execution id (the
 * taint's value, the cordon annotation), so a retried step or a re-run rollback recognises its
 * own work and never undoes anyone else's. `decideNodeRollback` is pure.
 */

/** Taint key of a swap; its value is the swap's execution id. */
export const SWAP_TAINT_KEY = 'fleetwarden.io/swap';

const LABEL_VALUE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * The swap taint's value for an execution: a Kubernetes label value (at most 63 characters), so
 * the execution name when it fits, else its start and a hash of the whole name (a batch's child
 * names run to 80 characters). The cordon annotation keeps the full name.
 */
export function swapTaintValue(executionId: string): string {
  if (LABEL_VALUE.test(executionId)) return executionId;
  const hash = createHash('sha256').update(executionId).digest('hex').slice(0, 16);
  const head = executionId.replace(/^[^A-Za-z0-9]+/, '').slice(0, 46).replace(/[^A-Za-z0-9._-]/g, '-');
  return head ? `${head}-${hash}` : hash;
}

/** The old node is protected: do-not-disrupt always wins. */
export class DoNotDisruptError extends TerminalError {
  override name = 'Terminal.DoNotDisrupt';
}
/** The drain stopped at its cap (a PodDisruptionBudget kept refusing) or an eviction was refused for good. */
export class DrainIncompleteError extends TerminalError {
  override name = 'Terminal.DrainIncomplete';
}
/** A Kubernetes step of a swap that has no cluster: a wiring bug. */
export class NotAKubernetesSwapError extends TerminalError {
  override name = 'Terminal.NotAKubernetesSwap';
}

export interface SwapNodeDeps {
  connector: ClusterConnector;
  policy: KubernetesPolicy;
  /** Fresh AWS facts for the rollback (the group, the replacements by tag, the old instance's state). */
  observe: (plan: SwapPlan) => Promise<SwapObservation>;
  /** Time left in this invocation; a drain stops early enough to return its result. */
  remainingMs?: () => number;
}

const doNotDisruptAnnotations = (policy: KubernetesPolicy) => protectingAnnotations(policy.doNotDisruptAnnotation);

async function connect(plan: SwapPlan, deps: SwapNodeDeps): Promise<{ cluster: string; nodes: KubernetesNodes }> {
  if (!plan.cluster) throw new NotAKubernetesSwapError(`swap ${plan.executionId} of group ${plan.group} has no Kubernetes cluster`);
  return { cluster: plan.cluster, nodes: await deps.connector.connect(plan.cluster) };
}

export interface NodeCheck {
  allowed: boolean;
  reason: string;
  node?: string;
  /** Pods a drain would evict now. */
  toEvict?: number;
  /** Pods that forbid the swap (do-not-disrupt), as namespace/name. */
  protectedPods?: string[];
}

/** Why a node may not be disrupted (node or pod annotation), or undefined. */
async function protection(nodes: KubernetesNodes, node: NodeInfo, policy: KubernetesPolicy): Promise<{ reason?: string; protectedPods: string[]; toEvict: number }> {
  const annotations = doNotDisruptAnnotations(policy);
  const onNode = annotations.find((a) => node.annotations[a] === 'true');
  if (onNode) return { reason: `node ${node.name} is annotated ${onNode}=true`, protectedPods: [], toEvict: 0 };
  const pods = await nodes.podsOn(node.name);
  const plan = planDrain(pods, { doNotDisruptAnnotations: annotations });
  const byKey = new Map(pods.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.annotations ?? {}]));
  const protectedPods = plan.skip.filter((p) => p.reason === 'do-not-disrupt').map((p) => podKey(p));
  if (!protectedPods.length) return { protectedPods, toEvict: plan.evict.length };
  const described = protectedPods.map((key) => `${key} (${annotations.find((a) => byKey.get(key)?.[a] === 'true')}=true)`);
  return { reason: `node ${node.name} runs ${protectedPods.length} pod(s) annotated do-not-disrupt: ${described.join(', ')}`, protectedPods, toEvict: plan.evict.length };
}

/** Before anything is launched: the old instance's node exists and nothing on it says do-not-disrupt. */
export async function checkOldNode(plan: SwapPlan, deps: SwapNodeDeps): Promise<NodeCheck> {
  const { cluster, nodes } = await connect(plan, deps);
  const old = plan.oldInstanceId!;
  const node = await nodes.findNodeByInstance(old);
  // Without its node the swap could neither drain it nor tell the replacement's node from a stranger's.
  if (!node) return { allowed: false, reason: `no node of cluster ${cluster} has spec.providerID naming ${old}` };
  const found = await protection(nodes, node, deps.policy);
  if (found.reason) return { allowed: false, reason: found.reason, node: node.name, protectedPods: found.protectedPods };
  return { allowed: true, reason: `node ${node.name} of cluster ${cluster}, ${found.toEvict} pod(s) to evict`, node: node.name, toEvict: found.toEvict };
}

/** The replacement's node (spec.providerID names the instance) and whether it is Ready; polled by the state machine. */
export async function checkReplacementNode(plan: SwapPlan, launch: LaunchResult, deps: SwapNodeDeps): Promise<{ ready: boolean; node?: string }> {
  const { nodes } = await connect(plan, deps);
  const node = await nodes.findNodeByInstance(launch.instanceId);
  return node ? { ready: node.ready, node: node.name } : { ready: false };
}

export interface DrainSummary {
  node?: string;
  result: 'drained' | 'node-not-found';
  taint?: string;
  cordon?: string;
  evicted: number;
  alreadyGone: number;
  refusals: number;
  skipped: DrainReport['skipped'];
  durationMs: number;
}

/**
 * Taints (`fleetwarden.io/swap=<execution id, or its hash if longer than a label value>:NoSchedule`), cordons and drains the old node.
 * Anything short of every evictable pod gone fails the step, and the swap rolls back: a
 * PodDisruptionBudget that refuses until the cap, an eviction refused for good, or a
 * do-not-disrupt pod (or node annotation) that appeared since the check.
 */
export async function drainOldNode(plan: SwapPlan, deps: SwapNodeDeps): Promise<DrainSummary> {
  const { cluster, nodes } = await connect(plan, deps);
  const old = plan.oldInstanceId!;
  const node = await nodes.findNodeByInstance(old);
  // Gone since the check (the instance left the cluster): no pods left to move.
  if (!node) return { result: 'node-not-found', evicted: 0, alreadyGone: 0, refusals: 0, skipped: [], durationMs: 0 };
  const found = await protection(nodes, node, deps.policy);
  if (found.reason) throw new DoNotDisruptError(`${found.reason}: the old node of ${old} may not be disrupted`);

  const taint = await nodes.taint(node.name, { key: SWAP_TAINT_KEY, value: swapTaintValue(plan.executionId), effect: 'NoSchedule' });
  const cordon = await nodes.cordon(node.name, plan.executionId);
  const budget = drainBudgetMs(deps.policy.drainTimeoutSeconds, deps.remainingMs);
  const report = await nodes.drain(node.name, { timeoutMs: budget, doNotDisruptAnnotations: doNotDisruptAnnotations(deps.policy) });
  const protectedPods = report.skipped.filter((s) => s.reason === 'do-not-disrupt').map((s) => s.pod);
  if (protectedPods.length) throw new DoNotDisruptError(`pod(s) ${protectedPods.join(', ')} on node ${node.name} of ${cluster} are annotated do-not-disrupt`);
  if (!report.complete) {
    const why = report.timedOut ? `the drain stopped at its ${Math.round(budget / 1000)} s cap` : `${report.failed.length} eviction(s) refused for good`;
    const left = [...report.remaining.map((r) => `${r.pod}: ${r.reason}`), ...report.failed.map((f) => `${f.pod}: HTTP ${f.status} ${f.message}`)];
    throw new DrainIncompleteError(`${why} on node ${node.name} of ${cluster} (${report.evicted.length} evicted, ${report.refusals} refusal(s) from PodDisruptionBudgets); left: ${left.join('; ').slice(0, 600)}`);
  }
  return {
    node: node.name,
    result: 'drained',
    taint: taint.result === 'present' ? `present (${taint.value})` : taint.result,
    cordon: cordon.result === 'already-cordoned' ? `already cordoned (${cordon.by ?? 'not by Fleetwarden'})` : cordon.result,
    evicted: report.evicted.length,
    alreadyGone: report.alreadyGone.length,
    refusals: report.refusals,
    skipped: report.skipped,
    durationMs: report.durationMs,
  };
}

export type NodeRollbackAction =
  | { kind: 'remove-taint'; node: string }
  | { kind: 'uncordon'; node: string }
  /** A replacement the AWS rollback removes: its pods go back first (cordon, drain within the cap, best effort). */
  | { kind: 'drain-replacement'; node: string; instanceId: string };

/**
 * What the rollback does to nodes, decided from what is there (re-entrant, like decideCompensation):
 * if the old instance stays in service (still in the group, or put back), the swap's taint and
 * cordon come off its node, only if they are this execution's; every replacement the AWS rollback
 * removes has its node cordoned and drained first, so that its pods move rather than die with it.
 * An old instance that leaves (forward recovery) keeps its cordon.
 */
export function decideNodeRollback(
  plan: SwapPlan,
  aws: { actions: CompensationAction[]; seen: SwapObservation },
  oldNode: NodeInfo | undefined,
  replacementNodes: { instanceId: string; node: NodeInfo }[],
): NodeRollbackAction[] {
  const actions: NodeRollbackAction[] = [];
  const old = plan.oldInstanceId;
  const state = old ? aws.seen.members.get(old) : undefined;
  const inGroup = state !== undefined && !['Detaching', 'Detached'].includes(state);
  const stays = inGroup || aws.actions.some((a) => a.kind === 'reattach-old');
  if (stays && oldNode) {
    if (oldNode.taints.some((t) => t.key === SWAP_TAINT_KEY && t.value === swapTaintValue(plan.executionId))) actions.push({ kind: 'remove-taint', node: oldNode.name });
    if (oldNode.unschedulable && oldNode.annotations[CORDONED_BY_ANNOTATION] === plan.executionId) actions.push({ kind: 'uncordon', node: oldNode.name });
  }
  const removed = new Set(
    aws.actions.flatMap((a) => (a.kind === 'detach-replacement' || a.kind === 'terminate-replacement' || a.kind === 'terminate-replacement-in-group' ? [a.instanceId] : [])),
  );
  for (const { instanceId, node } of replacementNodes) if (removed.has(instanceId)) actions.push({ kind: 'drain-replacement', node: node.name, instanceId });
  return actions;
}

export interface NodeRollbackResult {
  oldNode?: string;
  actions: NodeRollbackAction[];
  /** Per replacement node drained: whether every pod left within the cap (best effort: the instance goes either way). */
  drains: { node: string; complete: boolean; evicted: number; remaining: number }[];
}

/** The Kubernetes half of the rollback; runs before the AWS half, which it observes but leaves to it. */
export async function restoreNodes(plan: SwapPlan, deps: SwapNodeDeps): Promise<NodeRollbackResult> {
  const { nodes } = await connect(plan, deps);
  const seen = await deps.observe(plan);
  const awsActions = decideCompensation(plan, seen);
  const oldNode = plan.oldInstanceId ? await nodes.findNodeByInstance(plan.oldInstanceId) : undefined;
  const replacementNodes: { instanceId: string; node: NodeInfo }[] = [];
  for (const instanceId of seen.replacements) {
    const node = await nodes.findNodeByInstance(instanceId);
    if (node) replacementNodes.push({ instanceId, node });
  }
  const actions = decideNodeRollback(plan, { actions: awsActions, seen }, oldNode, replacementNodes);
  const result: NodeRollbackResult = { oldNode: oldNode?.name, actions, drains: [] };
  // The old node first: the replacement's pods need somewhere to go.
  for (const action of actions) {
    if (action.kind === 'remove-taint') await nodes.removeTaint(action.node, SWAP_TAINT_KEY);
    else if (action.kind === 'uncordon') await nodes.uncordon(action.node);
    else {
      await nodes.cordon(action.node, plan.executionId);
      const report = await nodes.drain(action.node, { timeoutMs: drainBudgetMs(deps.policy.drainTimeoutSeconds, deps.remainingMs), doNotDisruptAnnotations: doNotDisruptAnnotations(deps.policy) });
      result.drains.push({ node: action.node, complete: report.complete, evicted: report.evicted.length, remaining: report.remaining.length });
    }
  }
  return result;
}

/**
 * Input of the swap's Kubernetes steps; the NodeSwap state machine passes `step` and the plan.
 * @example { "step": "drain-old-node", "plan": { "action": "swap", "group": "web", "cluster": "prod-eks", … } }
 */
export const SwapNodesInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('check-old-node'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('check-replacement-node'), plan: SwapPlanSchema, launch: LaunchResultSchema }),
  z.strictObject({ step: z.literal('drain-old-node'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('restore-nodes'), plan: SwapPlanSchema }),
]);
export type SwapNodesInput = z.infer<typeof SwapNodesInputSchema>;

/** One CloudWatch metric per step (EMF, namespace Fleetwarden). */
const STEP_METRICS = { 'check-old-node': 'SwapNodeDisruptionChecks', 'check-replacement-node': 'SwapReplacementNodeChecks', 'drain-old-node': 'SwapNodeDrains', 'restore-nodes': 'SwapNodeRestores' } as const;

/** One Kubernetes step of NodeSwap, counted by one metric; drains and restores are logged with what they did. */
export async function runSwapNodeStep(input: SwapNodesInput, deps: SwapNodeDeps, tools: { metrics: Pick<Metrics, 'addMetric'>; logger: Pick<Logger, 'info'> }): Promise<unknown> {
  tools.metrics.addMetric(STEP_METRICS[input.step], 'Count', 1);
  switch (input.step) {
    case 'check-old-node':
      return checkOldNode(input.plan, deps);
    case 'check-replacement-node':
      return checkReplacementNode(input.plan, input.launch, deps);
    case 'drain-old-node': {
      const summary = await drainOldNode(input.plan, deps);
      tools.logger.info('old node drained for the swap', { executionId: input.plan.executionId, ...summary });
      return summary;
    }
    case 'restore-nodes': {
      const result = await restoreNodes(input.plan, deps);
      tools.logger.info('nodes restored for the rollback', { executionId: input.plan.executionId, ...result });
      return result;
    }
  }
}
