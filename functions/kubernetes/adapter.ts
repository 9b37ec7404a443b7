import { CoreV1Api, type KubeConfig, PatchStrategy, type V1Node, type V1Pod, setHeaderOptions } from '@kubernetes/client-node';
import { type PlannedPod, nextDelayMs, planDrain, podKey, refusalMessage, withTaint } from './drain';
import { RetryableError, TerminalError } from '../shared/errors';
import { classify, statusOf } from './errors';
import {
  CORDONED_BY_ANNOTATION,
  type CordonOutcome,
  type DrainOptions,
  type DrainReport,
  type KubernetesNodes,
  type NodeInfo,
  type Taint,
  type TaintOutcome,
  type UncordonOutcome,
  instanceIdOfProviderId,
} from './port';

const MERGE_PATCH = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
const CONFLICT_RETRIES = 5;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function toNodeInfo(node: V1Node): NodeInfo {
  return {
    name: node.metadata?.name ?? '',
    providerID: node.spec?.providerID,
    unschedulable: node.spec?.unschedulable === true,
    taints: (node.spec?.taints ?? []).map((t) => ({ key: t.key, value: t.value, effect: t.effect as Taint['effect'] })),
    annotations: node.metadata?.annotations ?? {},
    ready: (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
  };
}

/**
 * KubernetesNodes on @kubernetes/client-node: merge patches (with the read resourceVersion where
 * a list is replaced, so a concurrent writer costs a retry, never a lost taint), evictions
 * through policy/v1 (the API enforces PodDisruptionBudgets and answers 429 while one is spent),
 * and a drain loop with backoff that stops at its hard cap whatever state it is in.
 */
export interface KubernetesNodesAdapterOptions {
  /**
   * A fresh kubeconfig after the API server answered 401 (an EKS token, or the credentials that
   * signed it, expired): the call that got the 401 is retried once with it. Without it a 401 is
   * only classified (retryable).
   */
  reauthenticate?: () => Promise<KubeConfig>;
}

export class KubernetesNodesAdapter implements KubernetesNodes {
  private core: CoreV1Api;
  private renewing: Promise<void> | undefined;

  constructor(
    kubeConfig: KubeConfig,
    private readonly options: KubernetesNodesAdapterOptions = {},
  ) {
    this.core = kubeConfig.makeApiClient(CoreV1Api);
  }

  async findNodeByInstance(instanceId: string): Promise<NodeInfo | undefined> {
    let _continue: string | undefined;
    do {
      const page = await this.call('list nodes', (core) => core.listNode({ limit: 500, _continue }));
      const match = page.items.find((n) => instanceIdOfProviderId(n.spec?.providerID) === instanceId);
      if (match) return toNodeInfo(match);
      _continue = page.metadata?._continue || undefined;
    } while (_continue);
    return undefined;
  }

  async getNode(name: string): Promise<NodeInfo | undefined> {
    const node = await this.readNode(name);
    return node && toNodeInfo(node);
  }

  async taint(name: string, taint: Taint): Promise<TaintOutcome> {
    for (let attempt = 1; ; attempt++) {
      const node = await this.readNode(name);
      if (!node) return { result: 'node-not-found', node: name };
      const before = toNodeInfo(node).taints;
      const change = withTaint(before, taint);
      if ('present' in change) return { result: 'present', node: name, value: change.present.value };
      // The whole list is replaced: only if nobody changed the node since we read it.
      const patched = await this.patchNode(name, { metadata: { resourceVersion: node.metadata?.resourceVersion }, spec: { taints: change.next } }, attempt);
      if (patched === 'conflict') continue;
      if (patched === 'not-found') return { result: 'node-not-found', node: name };
      return { result: 'tainted', node: name, before };
    }
  }

  async removeTaint(name: string, key: string): Promise<{ result: 'removed' | 'absent' | 'node-not-found'; node: string }> {
    for (let attempt = 1; ; attempt++) {
      const node = await this.readNode(name);
      if (!node) return { result: 'node-not-found', node: name };
      const taints = toNodeInfo(node).taints;
      if (!taints.some((t) => t.key === key)) return { result: 'absent', node: name };
      const patched = await this.patchNode(
        name,
        { metadata: { resourceVersion: node.metadata?.resourceVersion }, spec: { taints: taints.filter((t) => t.key !== key) } },
        attempt,
      );
      if (patched === 'conflict') continue;
      if (patched === 'not-found') return { result: 'node-not-found', node: name };
      return { result: 'removed', node: name };
    }
  }

  async cordon(name: string, by: string): Promise<CordonOutcome> {
    const node = await this.readNode(name);
    if (!node) return { result: 'node-not-found', node: name };
    const info = toNodeInfo(node);
    if (info.unschedulable) return { result: 'already-cordoned', node: name, by: info.annotations[CORDONED_BY_ANNOTATION] };
    const patched = await this.patchNode(name, { metadata: { annotations: { [CORDONED_BY_ANNOTATION]: by } }, spec: { unschedulable: true } });
    return patched === 'not-found' ? { result: 'node-not-found', node: name } : { result: 'cordoned', node: name };
  }

  async uncordon(name: string): Promise<UncordonOutcome> {
    const node = await this.readNode(name);
    if (!node) return { result: 'node-not-found', node: name };
    if (!toNodeInfo(node).unschedulable) return { result: 'already-schedulable', node: name };
    // null deletes a key in a merge patch.
    const patched = await this.patchNode(name, { metadata: { annotations: { [CORDONED_BY_ANNOTATION]: null } }, spec: { unschedulable: null } });
    return { result: patched === 'not-found' ? 'node-not-found' : 'uncordoned', node: name };
  }

  async waitReady(name: string, timeoutMs: number): Promise<boolean> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const node = await this.readNode(name);
      if (node && toNodeInfo(node).ready) return true;
      if (performance.now() + 250 > deadline) return false;
      await sleep(250);
    }
  }

  async drain(name: string, options: DrainOptions): Promise<DrainReport> {
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    const deadline = started + options.timeoutMs;
    const remainingMs = () => deadline - performance.now();
    const report: DrainReport = {
      node: name,
      startedAt: new Date().toISOString(),
      complete: false,
      timedOut: false,
      nodeFound: true,
      durationMs: 0,
      evicted: [],
      alreadyGone: [],
      skipped: [],
      refusals: 0,
      remaining: [],
      failed: [],
    };
    const finish = () => ({ ...report, durationMs: elapsed() });

    if (!(await this.readNode(name))) {
      // Nothing left to drain: a node that is gone has no pods to move.
      report.nodeFound = false;
      report.complete = true;
      return finish();
    }

    const plan = planDrain(await this.podsOn(name), options);
    for (const pod of plan.skip) {
      report.skipped.push({ pod: podKey(pod), reason: pod.reason });
      options.onProgress?.({ type: 'skipped', pod, atMs: elapsed(), reason: pod.reason });
    }
    // To evict (with attempts and the last refusal), and evicted or terminating: waiting to be gone.
    const pending = new Map(plan.evict.map((p) => [podKey(p), { pod: p, attempts: 0, lastRefusal: '' }]));
    const going = new Map<string, { pod: PlannedPod; evicted?: DrainReport['evicted'][number]; waitingFor?: string }>(plan.terminating.map((p) => [podKey(p), { pod: p }]));
    for (const key of going.keys()) report.alreadyGone.push(key);

    let idleRounds = 0;
    while ((pending.size || going.size) && remainingMs() > 0) {
      let progress = false;
      await withDeadline(
        Promise.all(
          [...pending.entries()].map(async ([key, entry]) => {
            entry.attempts += 1;
            const outcome = await this.evict(entry.pod);
            if (outcome.status === 'evicted') {
              pending.delete(key);
              const record: DrainReport['evicted'][number] = { pod: key, attempts: entry.attempts, evictedAtMs: elapsed(), ...(entry.lastRefusal ? { refusal: entry.lastRefusal } : {}) };
              report.evicted.push(record);
              going.set(key, { pod: entry.pod, evicted: record });
              options.onProgress?.({ type: 'evicted', pod: entry.pod, atMs: record.evictedAtMs, attempt: entry.attempts });
              progress = true;
            } else if (outcome.status === 'gone') {
              pending.delete(key);
              report.alreadyGone.push(key);
              progress = true;
            } else if (outcome.status === 'namespace-terminating') {
              // As kubectl drain: the namespace controller deletes the pod; wait for it like an evicted one.
              pending.delete(key);
              report.alreadyGone.push(key);
              going.set(key, { pod: entry.pod, waitingFor: outcome.message });
              progress = true;
            } else if (outcome.status === 'refused') {
              report.refusals += 1;
              entry.lastRefusal = outcome.message;
              options.onProgress?.({ type: 'blocked', pod: entry.pod, atMs: elapsed(), attempt: entry.attempts, message: outcome.message });
            } else if (outcome.status === 'failed') {
              pending.delete(key);
              report.failed.push({ pod: key, status: outcome.code, message: outcome.message });
              progress = true;
            }
          }),
        ),
        remainingMs(),
      );
      if (going.size && remainingMs() > 0) {
        const present = await withDeadline(this.podsOn(name), remainingMs());
        if (present) {
          const uids = new Map(present.map((p) => [`${p.metadata?.namespace}/${p.metadata?.name}`, p.metadata?.uid]));
          for (const [key, entry] of going) {
            // Gone, or replaced by a new pod of the same name (a StatefulSet), is gone.
            if (uids.has(key) && (!entry.pod.uid || uids.get(key) === entry.pod.uid)) continue;
            going.delete(key);
            if (entry.evicted) entry.evicted.goneAtMs = elapsed();
            options.onProgress?.({ type: 'gone', pod: entry.pod, atMs: elapsed() });
            progress = true;
          }
        }
      }
      if (!pending.size && !going.size) break;
      idleRounds = progress ? 0 : idleRounds + 1;
      await sleep(Math.max(0, Math.min(nextDelayMs(idleRounds), remainingMs())));
    }

    report.timedOut = pending.size + going.size > 0;
    report.complete = !report.timedOut && report.failed.length === 0;
    for (const [key, entry] of pending) report.remaining.push({ pod: key, reason: entry.lastRefusal ? `eviction refused: ${entry.lastRefusal}` : 'not evicted yet' });
    for (const [key, entry] of going) report.remaining.push({ pod: key, reason: entry.waitingFor ?? (entry.evicted ? 'evicted, still terminating' : 'terminating') });
    return finish();
  }

  private async evict(
    pod: PlannedPod,
  ): Promise<{ status: 'evicted' | 'gone' } | { status: 'refused' | 'retry' | 'namespace-terminating'; message: string } | { status: 'failed'; code: number; message: string }> {
    try {
      await this.api((core) => core.createNamespacedPodEviction({
        name: pod.name,
        namespace: pod.namespace,
        // The uid precondition: never evict a same-named successor by mistake.
        body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.name, namespace: pod.namespace }, deleteOptions: pod.uid ? { preconditions: { uid: pod.uid } } : undefined },
      }));
      return { status: 'evicted' };
    } catch (error) {
      if (error instanceof RetryableError || error instanceof TerminalError) throw error;
      const code = statusOf(error);
      const body = (error as { body?: unknown }).body;
      if (code === 404) return { status: 'gone' };
      // 409: the uid precondition failed, so the pod we planned for is gone.
      if (code === 409 && /precondition|UID/i.test(JSON.stringify(body ?? ''))) return { status: 'gone' };
      if (code === 429) return { status: 'refused', message: refusalMessage(body) };
      // Evictions are creations, refused in a namespace being deleted; the namespace controller deletes the pod.
      if (code === 403 && hasCause(body, NAMESPACE_TERMINATING_CAUSE)) return { status: 'namespace-terminating', message: `namespace ${pod.namespace} is terminating: waiting for the pod to go` };
      if (code === 401 || code === 403) throw classify(error, `evict ${podKey(pod)}`);
      if (code === undefined || code >= 500 || code === 409) {
        // More than one budget covers the pod: the API cannot decide, and neither can a retry.
        if (/more than one PodDisruptionBudget/i.test(JSON.stringify(body ?? ''))) return { status: 'failed', code: code ?? 0, message: refusalMessage(body) };
        return { status: 'retry', message: refusalMessage(body ?? (error as Error).message) };
      }
      return { status: 'failed', code, message: refusalMessage(body) };
    }
  }

  async podsOn(node: string): Promise<V1Pod[]> {
    const pods: V1Pod[] = [];
    let _continue: string | undefined;
    do {
      const page = await this.call(`list pods on ${node}`, (core) => core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}`, limit: 500, _continue }));
      pods.push(...page.items);
      _continue = page.metadata?._continue || undefined;
    } while (_continue);
    return pods;
  }

  private async readNode(name: string): Promise<V1Node | undefined> {
    try {
      return await this.api((core) => core.readNode({ name }));
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw classify(error, `read node ${name}`);
    }
  }

  private async patchNode(name: string, body: unknown, attempt = 1): Promise<'patched' | 'conflict' | 'not-found'> {
    try {
      await this.api((core) => core.patchNode({ name, body }, MERGE_PATCH));
      return 'patched';
    } catch (error) {
      const status = statusOf(error);
      if (status === 404) return 'not-found';
      if (status === 409 && attempt < CONFLICT_RETRIES) return 'conflict';
      throw classify(error, `patch node ${name}`);
    }
  }

  private async call<T>(what: string, fn: (core: CoreV1Api) => Promise<T>): Promise<T> {
    try {
      return await this.api(fn);
    } catch (error) {
      throw classify(error, what);
    }
  }

  /** One API call; on 401, once: a fresh kubeconfig (shared by the calls in flight), and the call again. */
  private async api<T>(fn: (core: CoreV1Api) => Promise<T>): Promise<T> {
    const core = this.core;
    try {
      return await fn(core);
    } catch (error) {
      if (statusOf(error) !== 401 || !this.options.reauthenticate) throw error;
      await this.renew(core);
      return fn(this.core);
    }
  }

  private async renew(stale: CoreV1Api): Promise<void> {
    if (this.core !== stale) return; // another call renewed it already
    this.renewing ??= this.options.reauthenticate!()
      .then((kubeConfig) => {
        this.core = kubeConfig.makeApiClient(CoreV1Api);
      })
      .finally(() => {
        this.renewing = undefined;
      });
    await this.renewing;
  }
}

const NAMESPACE_TERMINATING_CAUSE = 'NamespaceTerminating';

/**
 * Whether a Status body (JSON text or object) names this cause. Go's StatusCause.Type is `reason`
 * on the wire (`"causes":[{"reason":"NamespaceTerminating",…}]`); `type` is accepted as well.
 */
function hasCause(body: unknown, type: string): boolean {
  let status: unknown = body;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body);
    } catch {
      return false;
    }
  }
  const causes = (status as { details?: { causes?: { reason?: string; type?: string }[] } } | undefined)?.details?.causes;
  return Array.isArray(causes) && causes.some((c) => c?.reason === type || c?.type === type);
}

/** Resolves with the promise's value, or undefined once `ms` have passed (the call is abandoned). */
async function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
