/**
 * What Fleetwarden does to Kubernetes nodes, as a small port: the use cases (interruption drain,
 * later node swaps and rollbacks) depend on this interface, the adapter on @kubernetes/client-node
 * implements it. Every operation is idempotent: a node already cordoned, a taint already present,
 * a pod already gone or a node that does not exist are outcomes, not errors.
 */

/** The fields of a pod (a V1Pod) that planning reads. */
export interface PodFacts {
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    annotations?: Record<string, string>;
    deletionTimestamp?: Date | string;
    ownerReferences?: { kind: string; name: string; controller?: boolean }[];
  };
  status?: { phase?: string };
}

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** A node as the use cases see it. */
export interface NodeInfo {
  name: string;
  /** `aws:///us-east-1a/i-0123456789abcdef0` on EKS (and on the local KWOK nodes). */
  providerID?: string;
  unschedulable: boolean;
  taints: Taint[];
  annotations: Record<string, string>;
  ready: boolean;
}

export type TaintOutcome =
  | { result: 'tainted'; node: string; before: Taint[] }
  /** Our key is already there: `value` tells whose work it was (an event or execution id). */
  | { result: 'present'; node: string; value?: string }
  | { result: 'node-not-found'; node: string };

export type CordonOutcome =
  | { result: 'cordoned'; node: string }
  /** Already unschedulable; `by` is the id recorded when Fleetwarden cordoned it, if it did. */
  | { result: 'already-cordoned'; node: string; by?: string }
  | { result: 'node-not-found'; node: string };

export type UncordonOutcome = { result: 'uncordoned' | 'already-schedulable' | 'node-not-found'; node: string };

export interface DrainOptions {
  /** Hard cap on the whole drain, evictions and waiting for pods to be gone. */
  timeoutMs: number;
  /** Pods annotated `<annotation>: "true"` are never evicted, only reported. */
  doNotDisruptAnnotations: string[];
  /** Progress as it happens (the demo's timeline, a bench's clock); never required. */
  onProgress?: (event: DrainProgress) => void;
}

export interface PodRef {
  namespace: string;
  name: string;
}

export type DrainProgress =
  | { type: 'evicted'; pod: PodRef; atMs: number; attempt: number }
  | { type: 'blocked'; pod: PodRef; atMs: number; attempt: number; message: string }
  | { type: 'gone'; pod: PodRef; atMs: number }
  | { type: 'skipped'; pod: PodRef; atMs: number; reason: SkipReason };

export type SkipReason = 'daemonset' | 'mirror' | 'do-not-disrupt';

/** What a drain did, pod by pod, with times in ms since the drain started. */
export interface DrainReport {
  node: string;
  /** When the drain began (ISO); the `…Ms` times below count from here. */
  startedAt: string;
  /** Every evictable pod is gone. Protected (do-not-disrupt) pods do not count against it. */
  complete: boolean;
  timedOut: boolean;
  nodeFound: boolean;
  durationMs: number;
  /** `refusal`: what the last 429 said, when a budget held the pod back first. */
  evicted: { pod: string; attempts: number; evictedAtMs: number; goneAtMs?: number; refusal?: string }[];
  /** Pods that were already gone (or going) when the drain reached them. */
  alreadyGone: string[];
  skipped: { pod: string; reason: SkipReason }[];
  /** Evictions refused with 429 (a PodDisruptionBudget), all pods together. */
  refusals: number;
  /** Still on the node when the drain stopped, with why. */
  remaining: { pod: string; reason: string }[];
  /** Evictions the API refused for good (not 429, not 404), with its message. */
  failed: { pod: string; status: number; message: string }[];
}

export interface KubernetesNodes {
  /** The node whose `spec.providerID` names this EC2 instance, if any. */
  findNodeByInstance(instanceId: string): Promise<NodeInfo | undefined>;
  getNode(name: string): Promise<NodeInfo | undefined>;
  taint(node: string, taint: Taint): Promise<TaintOutcome>;
  removeTaint(node: string, key: string): Promise<{ result: 'removed' | 'absent' | 'node-not-found'; node: string }>;
  /** Marks the node unschedulable and records `by` (an event or execution id) in an annotation. */
  cordon(node: string, by: string): Promise<CordonOutcome>;
  uncordon(node: string): Promise<UncordonOutcome>;
  /** Evicts every evictable pod through the Eviction API and waits until they are gone, within the cap. */
  drain(node: string, options: DrainOptions): Promise<DrainReport>;
  /** Waits until the node reports Ready; false when the time is up (or the node does not exist). */
  waitReady(node: string, timeoutMs: number): Promise<boolean>;
  /** The pods bound to the node (what a drain would plan over). */
  podsOn(node: string): Promise<PodFacts[]>;
}

/** Annotation in which Fleetwarden records who cordoned a node, so a retry recognises its own work. */
export const CORDONED_BY_ANNOTATION = 'fleetwarden.io/cordoned-by';
/** Taint key of an interruption; its value is the triggering event id (as the Node Termination Handler does). */
export const INTERRUPTION_TAINT_KEY = 'fleetwarden.io/interruption';
/** Always honoured besides the configured annotation: Karpenter's. */
export const KARPENTER_DO_NOT_DISRUPT = 'karpenter.sh/do-not-disrupt';

export { instanceIdOfProviderId } from '../shared/ids';
