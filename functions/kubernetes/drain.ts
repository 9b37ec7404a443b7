import { KARPENTER_DO_NOT_DISRUPT, type PodFacts, type PodRef, type SkipReason, type Taint } from './port';

export type { PodFacts } from './port';

/**
 * Pure drain planning: which pods on a node to evict, which to leave, which are already going.
 * The adapter lists the pods and carries the plan out; nothing here does I/O.
 */

export interface DrainPlan {
  /** To evict through the Eviction API (which honours PodDisruptionBudgets). */
  evict: PlannedPod[];
  /** Already terminating: nothing to evict, only to wait for. */
  terminating: PlannedPod[];
  /** Left alone, with the reason. */
  skip: (PlannedPod & { reason: SkipReason })[];
}

export interface PlannedPod extends PodRef {
  uid?: string;
}

export const MIRROR_POD_ANNOTATION = 'kubernetes.io/config.mirror';

export function podKey(pod: PodRef): string {
  return `${pod.namespace}/${pod.name}`;
}

/**
 * Like `kubectl drain --ignore-daemonsets --force`: DaemonSet pods stay (their controller would
 * put them straight back, and they tolerate unschedulable nodes), mirror (static) pods stay (the
 * API cannot delete them; the kubelet owns them), pods annotated do-not-disrupt stay and are
 * reported. Everything else goes, bare pods included: the node is going away anyway.
 */
export function planDrain(pods: PodFacts[], options: { doNotDisruptAnnotations: string[] }): DrainPlan {
  const plan: DrainPlan = { evict: [], terminating: [], skip: [] };
  for (const pod of pods) {
    const meta = pod.metadata ?? {};
    if (!meta.name || !meta.namespace) continue;
    const ref: PlannedPod = { namespace: meta.namespace, name: meta.name, uid: meta.uid };
    const annotations = meta.annotations ?? {};
    if (MIRROR_POD_ANNOTATION in annotations) plan.skip.push({ ...ref, reason: 'mirror' });
    else if ((meta.ownerReferences ?? []).some((o) => o.kind === 'DaemonSet' && o.controller !== false)) plan.skip.push({ ...ref, reason: 'daemonset' });
    else if (options.doNotDisruptAnnotations.some((a) => annotations[a] === 'true')) plan.skip.push({ ...ref, reason: 'do-not-disrupt' });
    else if (meta.deletionTimestamp) plan.terminating.push(ref);
    else plan.evict.push(ref);
  }
  return plan;
}

/** The node's taints with ours added, or `present` with the value already there. */
export function withTaint(taints: Taint[], taint: Taint): { next: Taint[] } | { present: Taint } {
  const existing = taints.find((t) => t.key === taint.key && t.effect === taint.effect);
  if (existing) return { present: existing };
  return { next: [...taints, taint] };
}

/**
 * Delay before the next round of evictions: short while pods are moving, growing while every
 * eviction is refused (a PodDisruptionBudget waits for a replacement to become Ready), capped
 * so that the drain notices a budget freeing up within a couple of seconds.
 */
export function nextDelayMs(idleRounds: number, options: { baseMs?: number; capMs?: number } = {}): number {
  const base = options.baseMs ?? 200;
  const cap = options.capMs ?? 2_000;
  if (idleRounds <= 0) return Math.min(100, base);
  return Math.min(cap, Math.round(base * 1.5 ** (idleRounds - 1)));
}

/** The reason a PodDisruptionBudget gives in a 429 (`The disruption budget web needs 4 healthy pods…`). */
export function refusalMessage(body: unknown): string {
  let parsed: unknown = body;
  if (typeof body === 'string') {
    try {
      parsed = JSON.parse(body);
    } catch {
      return body.slice(0, 300);
    }
  }
  const status = parsed as { message?: string; details?: { causes?: { message?: string }[] } } | undefined;
  const cause = status?.details?.causes?.find((c) => c.message)?.message;
  return (cause ?? status?.message ?? 'eviction refused').slice(0, 300);
}

/** Time kept back from the invocation after a drain stops, to record and return its result. */
export const RECORDING_MARGIN_MS = 10_000;

/**
 * How long a drain may run: the policy's timeout, but never past what the invocation has left
 * minus the recording margin; at least one second, so that a drain always gets one round.
 */
export function drainBudgetMs(drainTimeoutSeconds: number, remainingMs?: () => number): number {
  return Math.max(1_000, Math.min(drainTimeoutSeconds * 1000, (remainingMs?.() ?? Infinity) - RECORDING_MARGIN_MS));
}

/** The annotations that protect a pod from eviction: the configured one, and Karpenter's always. */
export function doNotDisruptAnnotations(configured: string): string[] {
  return [...new Set([configured, KARPENTER_DO_NOT_DISRUPT])];
}
