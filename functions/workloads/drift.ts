import { createHash } from 'node:crypto';
import { type Difference, atDeclaredFields, comparable, declaredDifferences, describeDifference, isImagePath } from './compare';
import { type DeclaredObject, apiGroup, objectIdentity } from './desired-state';
import { type DriftDecision, type DriftType, type WorkloadDriftPolicy, decideDriftAction, protectedNamespaces } from './policy';
import { COMMIT_ANNOTATION, type KubeObject, type ObjectRef } from './port';

/**
 * Workload drift, decided (pure): which live objects differ from the declared ones, which
 * workloads run undeclared, and how each drift opens, is acted on and closes.
 */

/** Workload kinds watched for undeclared objects (every declared kind is compared, these are also hunted). */
export const WORKLOAD_KINDS: readonly { apiVersion: string; kind: string }[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
];
/** HPAs are read to know whose replicas they manage. */
export const HPA_KIND = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' } as const;

/**
 * The kinds one cycle lists: each once, cluster-wide (the declared ones, the workloads, the HPAs).
 * A declared kind is listed in its declared version, so its objects are compared in the declared shape.
 */
export function kindsToList(declared: readonly DeclaredObject[]): { apiVersion: string; kind: string }[] {
  const kinds = new Map<string, { apiVersion: string; kind: string }>();
  for (const k of [...declared.map((o) => ({ apiVersion: o.apiVersion, kind: o.kind })), ...WORKLOAD_KINDS, HPA_KIND]) {
    const key = `${apiGroup(k.apiVersion)}/${k.kind}`;
    if (!kinds.has(key)) kinds.set(key, k);
  }
  return [...kinds.values()];
}

/** A live object's identity, as `objectIdentity` names a declared one. */
export const liveIdentity = (o: KubeObject) => objectIdentity({ apiVersion: o.apiVersion ?? '', kind: o.kind ?? '', namespace: o.metadata?.namespace ?? null, name: o.metadata?.name ?? '' });

/** `autoscaling/Deployment web/storefront`-style keys of the objects an HPA scales. */
export function hpaTargets(hpas: readonly KubeObject[]): Set<string> {
  const targets = new Set<string>();
  for (const hpa of hpas) {
    const ref = (hpa.spec as { scaleTargetRef?: { apiVersion?: string; kind?: string; name?: string } } | undefined)?.scaleTargetRef;
    if (ref?.kind && ref.name) targets.add(objectIdentity({ apiVersion: ref.apiVersion ?? 'apps/v1', kind: ref.kind, namespace: hpa.metadata?.namespace ?? null, name: ref.name }));
  }
  return targets;
}

/**
 * The declared manifest as Fleetwarden compares and applies it: without `spec.replicas` when an
 * HPA scales the object (the HPA owns that number), and, when applied, stamped with the commit.
 */
export function effectiveManifest(object: DeclaredObject, scaledByHpa: boolean, commit?: string | null): Record<string, unknown> {
  const manifest = structuredClone(object.manifest);
  const spec = manifest.spec as Record<string, unknown> | undefined;
  if (scaledByHpa && spec && 'replicas' in spec) delete spec.replicas;
  if (commit) {
    const metadata = (manifest.metadata ??= {}) as Record<string, unknown>;
    metadata.annotations = { ...((metadata.annotations as Record<string, string> | undefined) ?? {}), [COMMIT_ANNOTATION]: commit };
  }
  return manifest;
}

export const refOfDeclared = (o: DeclaredObject): ObjectRef => ({ apiVersion: o.apiVersion, kind: o.kind, namespace: o.namespace, name: o.name });

/** One drift as a cycle observed it. */
export interface Observation {
  identity: string;
  ref: ObjectRef;
  type: DriftType;
  /** Short lines, `path: declared -> live` (empty for missing and unauthorized). */
  diff: string[];
  labels: Record<string, string>;
  /** The declared object (absent for unauthorized). */
  declared?: DeclaredObject;
  /** The live object's uid (absent for missing): a removal deletes only this object. */
  uid?: string;
  /** What the cluster says about an undeclared object's creator. */
  creator?: string;
  /** An undeclared object's controller (`Kind name`), which would re-create it. */
  controlledBy?: string;
}

/** A declared object whose declared fields differ from the live ones: confirmed (or not) by a dry run. */
export interface Candidate {
  identity: string;
  declared: DeclaredObject;
  live: KubeObject;
  /** The manifest the dry run applies (effectiveManifest). */
  manifest: Record<string, unknown>;
  differences: Difference[];
}

export const driftType = (differences: readonly Difference[]): 'image' | 'config' => (differences.length && differences.every((d) => isImagePath(d.path)) ? 'image' : 'config');
const shortDiff = (differences: readonly Difference[]) => differences.slice(0, 10).map((d) => describeDifference(d));

/** Who made an undeclared object, as far as the cluster tells: its controller owner, else the manager of its creation. */
export function creatorOf(o: KubeObject): string {
  const owner = o.metadata?.ownerReferences?.find((r) => r.controller) ?? o.metadata?.ownerReferences?.[0];
  if (owner) return `owned by ${owner.kind} ${owner.name}`;
  const created = o.metadata?.managedFields?.find((f) => f.operation === 'Create' || f.operation === 'Apply') ?? o.metadata?.managedFields?.[0];
  return created?.manager ? `field manager ${created.manager}${created.time ? ` at ${created.time}` : ''}` : 'unknown';
}

/**
 * Everything a cycle can tell from the declared objects and one listing of each kind:
 * missing and unauthorized drifts (final), and the candidates whose declared fields differ
 * (to be confirmed by a dry run). Protected namespaces are not watched for undeclared workloads.
 */
export function examine(input: {
  declared: readonly DeclaredObject[];
  /** Every listed object, of every kind listed. */
  live: readonly KubeObject[];
  policy: WorkloadDriftPolicy;
}): { observations: Observation[]; candidates: Candidate[]; inSync: number } {
  const byIdentity = new Map(input.live.map((o) => [liveIdentity(o), o] as const));
  const scaled = hpaTargets(input.live.filter((o) => o.kind === HPA_KIND.kind));
  const protect = protectedNamespaces(input.policy);
  const observations: Observation[] = [];
  const candidates: Candidate[] = [];
  let inSync = 0;
  const declaredIds = new Set<string>();
  for (const declared of input.declared) {
    const identity = objectIdentity(declared);
    declaredIds.add(identity);
    const live = byIdentity.get(identity);
    const labels = ((declared.manifest.metadata as { labels?: Record<string, string> } | undefined)?.labels ?? {}) as Record<string, string>;
    if (!live || live.metadata?.deletionTimestamp) {
      observations.push({ identity, ref: refOfDeclared(declared), type: 'missing', diff: [], labels, declared });
      continue;
    }
    const manifest = effectiveManifest(declared, scaled.has(identity));
    const differences = declaredDifferences(comparable(manifest), live);
    if (differences.length) candidates.push({ identity, declared, live, manifest, differences });
    else inSync += 1;
  }
  const watched = new Set([...input.declared.flatMap((o) => (o.namespace ? [o.namespace] : [])), ...input.policy.watchNamespaces].filter((ns) => !protect.has(ns)));
  const workloadKinds = new Set(WORKLOAD_KINDS.map((k) => `${apiGroup(k.apiVersion)}/${k.kind}`));
  for (const live of input.live) {
    const ns = live.metadata?.namespace;
    if (!ns || !watched.has(ns) || live.metadata?.deletionTimestamp) continue;
    if (!workloadKinds.has(`${apiGroup(live.apiVersion ?? '')}/${live.kind}`)) continue;
    const identity = liveIdentity(live);
    if (declaredIds.has(identity)) continue;
    const owners = live.metadata?.ownerReferences ?? [];
    // Owned by a declared object: part of it. Owned by another workload: its owner is the one judged.
    if (owners.some((r) => declaredIds.has(objectIdentity({ apiVersion: r.apiVersion, kind: r.kind, namespace: ns, name: r.name })))) continue;
    if (owners.some((r) => r.controller && workloadKinds.has(`${apiGroup(r.apiVersion)}/${r.kind}`))) continue;
    const controller = owners.find((r) => r.controller);
    observations.push({
      identity,
      ref: { apiVersion: live.apiVersion ?? '', kind: live.kind ?? '', namespace: ns, name: live.metadata?.name ?? '' },
      type: 'unauthorized',
      diff: [],
      labels: live.metadata?.labels ?? {},
      uid: live.metadata?.uid,
      creator: creatorOf(live),
      ...(controller ? { controlledBy: `${controller.kind} ${controller.name}` } : {}),
    });
  }
  return { observations, candidates, inSync };
}

/**
 * A candidate judged by its dry run (what the server would store if the declared manifest were
 * applied now): drift when that differs from the live object on the declared fields, else in
 * sync (the first comparison saw only a normalization, or a webhook's rewrite).
 */
export function confirm(candidate: Candidate, dryRun: KubeObject): Observation | undefined {
  const wouldBe = atDeclaredFields(comparable(candidate.manifest), dryRun);
  const differences = declaredDifferences(wouldBe, candidate.live);
  if (!differences.length) return undefined;
  // Reported with the declared values (what a person reads in git), at the paths the server confirmed.
  const confirmed = new Set(differences.map((d) => d.path));
  const shown = candidate.differences.filter((d) => confirmed.has(d.path));
  const diff = shown.length ? shown : differences;
  return {
    identity: candidate.identity,
    ref: refOfDeclared(candidate.declared),
    type: driftType(diff),
    diff: shortDiff(diff),
    labels: candidate.live.metadata?.labels ?? {},
    declared: candidate.declared,
    uid: candidate.live.metadata?.uid,
  };
}

// ---------------------------------------------------------------------------- open and close

export type DriftState = 'open' | 'rolling-back' | 'rolled-back' | 'rollback-failed' | 'resolved';

/** A drift as Fleetwarden keeps it, from opening to closing (the findings table). */
export interface WorkloadDrift {
  driftId: string;
  cluster: string;
  apiVersion: string;
  kind: string;
  namespace: string | null;
  name: string;
  type: DriftType;
  diff: string[];
  /** The commit that declared the object (null: unknown, or an undeclared object). */
  declaredCommit: string | null;
  /** Who made an undeclared object, as the cluster tells. */
  creator?: string;
  uid?: string;
  state: DriftState;
  action: 'alert' | 'rollback';
  because: string;
  openedAt: string;
  /** When the action is due (openedAt + grace). */
  actAfter: string;
  closedAt?: string;
  execution?: string;
  outcome?: string;
  version: number;
}

export const driftIdOf = (cluster: string, identity: string) => `workload-drift#${cluster}#${identity}`;
export const isOpenDrift = (d: WorkloadDrift) => d.state !== 'resolved';

export type DriftLedgerAction = 'workload.drift-detected' | 'workload.rollback-started' | 'workload.rolled-back' | 'workload.rollback-failed' | 'workload.drift-resolved' | 'workload.removed';

export interface DriftTransition {
  action: DriftLedgerAction;
  reason: string;
  before?: WorkloadDrift;
  after: WorkloadDrift;
  /**
   * How the drift's item is written with the entry: `update` (the default; `before`'s version must
   * still be there, or nothing when there is no `before`), `create` (no open drift may be there),
   * `none` (a later transition of the same cycle writes it: one item, one write per transaction).
   */
  write?: 'update' | 'create' | 'none';
}

/** The Step Functions execution that acts on one opened drift: one per opening, so it can never be started twice. */
export function rollbackExecutionName(drift: Pick<WorkloadDrift, 'driftId' | 'openedAt' | 'kind' | 'name'>): string {
  const hash = createHash('sha256').update(`${drift.driftId}\0${drift.openedAt}`).digest('hex').slice(0, 16);
  return `${drift.kind}-${drift.name}`.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 60) + `-${hash}`;
}

export interface CyclePlan {
  transitions: DriftTransition[];
  /** Rollbacks (re-apply or removal) due now, each for a transition to `rolling-back` above. */
  rollbacks: WorkloadDrift[];
  /** Rollbacks recorded as started before: started again under their name, which runs at most once. */
  resumed: WorkloadDrift[];
  ignored: number;
}

/**
 * One cluster's cycle, decided: observed drifts not yet open are opened (unless a rule ignores
 * them), open drifts no longer observed are resolved, and open drifts whose action is rollback and
 * whose grace is over start their rollback, once: a rollback that failed is never started again
 * for the same opening (the drift stays open, alerted, until it resolves).
 */
export function planCycle(input: {
  cluster: string;
  observations: readonly Observation[];
  open: readonly WorkloadDrift[];
  commit: string | null;
  policy: WorkloadDriftPolicy;
  dryRun: boolean;
  now: Date;
  /** Drifts (ids) whose workload's rollout has not settled: a failed rollback's drift stays open while so. */
  unsettled?: ReadonlySet<string>;
}): CyclePlan {
  const at = input.now.toISOString();
  const openById = new Map(input.open.map((d) => [d.driftId, d] as const));
  const transitions: DriftTransition[] = [];
  const rollbacks: WorkloadDrift[] = [];
  const resumed: WorkloadDrift[] = [];
  let ignored = 0;
  const seen = new Set<string>();
  for (const o of input.observations) {
    const driftId = driftIdOf(input.cluster, o.identity);
    seen.add(driftId);
    let drift = openById.get(driftId);
    if (!drift) {
      let decision: DriftDecision = decideDriftAction(input.policy, { cluster: input.cluster, namespace: o.ref.namespace, kind: o.ref.kind, name: o.ref.name, labels: o.labels, type: o.type }, input.dryRun);
      // Its controller would re-create it: removing it would only start a fight. Its owner is what to remove.
      if (o.type === 'unauthorized' && o.controlledBy && decision.action === 'rollback') decision = { ...decision, action: 'alert', because: `${decision.because}, but it is controlled by ${o.controlledBy}: alert only` };
      if (decision.action === 'ignore') {
        ignored += 1;
        continue;
      }
      drift = {
        driftId,
        cluster: input.cluster,
        ...o.ref,
        type: o.type,
        diff: o.diff,
        declaredCommit: o.declared ? (o.declared.lastChange?.commit ?? input.commit) : null,
        ...(o.creator ? { creator: o.creator } : {}),
        ...(o.uid ? { uid: o.uid } : {}),
        state: 'open',
        action: decision.action,
        because: decision.because,
        openedAt: at,
        actAfter: new Date(input.now.getTime() + decision.graceMinutes * 60_000).toISOString(),
        version: 1,
      };
      transitions.push({ action: 'workload.drift-detected', reason: `${o.type} drift of ${o.ref.kind} ${o.ref.namespace ?? ''}/${o.ref.name}: ${o.diff.join('; ') || (o.type === 'missing' ? 'declared, not in the cluster' : `not declared (${o.creator ?? 'creator unknown'})`)}`, after: drift });
    }
    // Rolled back and drifted again before a cycle saw it in sync: something fights the declared
    // state (another deployer, a controller). Rolling back again would loop: alert, once.
    if (drift.state === 'rolled-back') {
      transitions.push({
        action: 'workload.rollback-failed',
        reason: `${o.ref.kind} ${o.ref.namespace ?? ''}/${o.ref.name} drifted again after its rollback (${o.diff.join('; ') || o.type}): something else writes it; not rolled back again`,
        before: drift,
        after: { ...drift, state: 'rollback-failed', outcome: 'drifted again after the rollback', version: drift.version + 1 },
      });
      continue;
    }
    if (drift.state === 'open' && drift.action === 'rollback' && Date.parse(drift.actAfter) <= input.now.getTime()) {
      const after: WorkloadDrift = { ...drift, state: 'rolling-back', execution: rollbackExecutionName(drift), version: drift.version + 1 };
      const how = drift.type === 'unauthorized' ? 'remove the undeclared workload' : drift.type === 'missing' ? 'deploy the declared object' : 're-apply the declared object';
      // A drift opened and acted on in the same cycle is written once, as its later state.
      const opened = transitions.at(-1)?.after.driftId === driftId ? transitions.pop() : undefined;
      if (opened) transitions.push({ ...opened, write: 'none' }, { action: 'workload.rollback-started', reason: `${drift.because}: ${how}`, before: drift, after, write: 'create' });
      else transitions.push({ action: 'workload.rollback-started', reason: `${drift.because}: ${how}`, before: drift, after });
      rollbacks.push(after);
    }
  }
  for (const drift of input.open) {
    // Started before, perhaps not through (a crash between recording and starting): start again,
    // under the same name, which Step Functions runs at most once. Its workflow closes it.
    if (drift.state === 'rolling-back' && drift.execution) resumed.push(drift);
    if (seen.has(drift.driftId) || drift.state === 'rolling-back') continue;
    // A rollback that did not settle keeps its drift open (alerted, never acted on again) until the workload is healthy.
    if (drift.state === 'rollback-failed' && input.unsettled?.has(drift.driftId)) continue;
    transitions.push({ action: 'workload.drift-resolved', reason: drift.state === 'rolled-back' ? 'in sync again after the rollback' : 'in sync again', before: drift, after: { ...drift, state: 'resolved', closedAt: at, version: drift.version + 1 } });
  }
  return { transitions, rollbacks, resumed, ignored };
}

/** The Fleetwarden events for a cycle's transitions: an opening and a closing each announce once. */
export function driftEvents(transitions: readonly DriftTransition[]): { detailType: string; detail: Record<string, unknown> }[] {
  return transitions.flatMap((t) => {
    const detailType = t.action === 'workload.drift-detected' ? 'WorkloadDriftDetected' : t.action === 'workload.drift-resolved' ? 'WorkloadDriftResolved' : t.action === 'workload.rollback-failed' ? 'WorkloadRollbackFailed' : undefined;
    if (!detailType) return [];
    const d = t.after;
    return [
      {
        detailType,
        detail: {
          driftId: d.driftId,
          cluster: d.cluster,
          namespace: d.namespace,
          kind: d.kind,
          name: d.name,
          driftType: d.type,
          diff: d.diff,
          declaredCommit: d.declaredCommit,
          action: d.action,
          ...(d.creator ? { creator: d.creator } : {}),
          openedAt: d.openedAt,
          ...(d.closedAt ? { closedAt: d.closedAt } : {}),
          ...(d.outcome ? { outcome: d.outcome } : {}),
          reason: t.reason,
        },
      },
    ];
  });
}
