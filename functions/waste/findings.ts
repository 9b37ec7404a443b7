import type { EnvironmentClass } from '../shared/environments';
import { type ObservedResource, type WasteKind, type WastePolicy, type WasteVerdict, cleanupAllowed } from './policy';

/**
 * A finding is the scanner's memory of one wasted resource, one item in the findings table keyed
 * by account, region and resource id:
 *
 *   watching --(available long enough)--> open --(cleanup on, mark tag)--> marked --(grace over,
 *      re-checked)--> cleaning --(snapshot completed, volume deleted / released / deleted)--> cleaned
 *   any open state --(used again, protected, referenced, gone)--> resolved --(waste again)--> open
 *
 * `watching` is a volume seen available for less than unattachedEbsDays: its first-seen time is
 * the only record of since when it is detached (AWS keeps none). `cleaning` is recorded before
 * the first destructive call: a volume's backup snapshot id is kept there, so a run that dies
 * mid-way resumes with the same snapshot and deletes the volume only once it is completed.
 * A finding that comes back is the same finding (same id), reopened.
 */
export type FindingState = 'watching' | 'open' | 'marked' | 'cleaning' | 'cleaned' | 'resolved';
export const OPEN_FINDING_STATES: readonly FindingState[] = ['watching', 'open', 'marked', 'cleaning'];
/** The states that count as waste in reports and totals. */
export const WASTE_STATES: readonly FindingState[] = ['open', 'marked', 'cleaning'];

export interface Finding {
  findingId: string;
  kind: WasteKind;
  account: string;
  region: string;
  resourceId: string;
  environment: EnvironmentClass;
  state: FindingState;
  monthlyUsd: number;
  sizeGiB?: number;
  detail: string;
  firstSeen: string;
  /** The last scan that saw it (written when the finding changes; every scan in between saw it too). */
  lastSeen: string;
  /** Volumes: since when it is known to be available. */
  availableSince?: string;
  openedAt?: string;
  closedAt?: string;
  /** After this time a marked resource may be removed. */
  removableAfter?: string;
  /** The snapshot taken of a volume before it is deleted. */
  backupSnapshotId?: string;
  outcome?: string;
  reopened?: number;
  version: number;
}

export type FindingAction =
  | 'waste.watching'
  | 'waste.found'
  | 'waste.reopened'
  | 'waste.resolved'
  | 'waste.marked'
  | 'waste.cleanup-started'
  | 'waste.cleanup-failed'
  | 'waste.released'
  | 'waste.deleted';

export interface FindingTransition {
  action: FindingAction;
  before?: Finding;
  after: Finding;
  reason: string;
}

/** `waste.watching` is bookkeeping (when a volume was first seen detached): no ledger entry. */
export const isLedgered = (t: FindingTransition): boolean => t.action !== 'waste.watching' && !(t.action === 'waste.resolved' && t.before?.state === 'watching');

export const findingKey = (account: string, region: string, resourceId: string) => `${account}/${region}/${resourceId}`;
export const isOpen = (f: Finding): boolean => OPEN_FINDING_STATES.includes(f.state);

export interface ScanContext {
  now: Date;
  environment: EnvironmentClass;
}

const next = (f: Finding, changes: Partial<Finding>): Finding => ({ ...f, ...changes, version: f.version + 1 });

/**
 * Pure: a finding's transition after a scan saw the resource (with its verdict) or did not
 * (`observed` undefined: released, attached, deleted). Nothing when nothing changed: an
 * unchanged finding costs no write. A finding being cleaned belongs to the cleanup.
 */
export function onScanned(current: Finding | undefined, key: { account: string; region: string; kind: WasteKind; resourceId: string }, observed: { resource: ObservedResource; verdict: WasteVerdict; availableSince?: string } | undefined, ctx: ScanContext): FindingTransition | undefined {
  const now = ctx.now.toISOString();
  if (current?.state === 'cleaning') return undefined;
  const verdict = observed?.verdict;
  if (!verdict || verdict.waste === false) {
    if (!current || !isOpen(current)) return undefined;
    const why = verdict?.waste === false ? verdict.why : key.kind === 'volume' ? 'no longer available (attached or deleted)' : key.kind === 'address' ? 'released' : 'deleted';
    return { action: 'waste.resolved', before: current, after: next(current, { state: 'resolved', closedAt: now, lastSeen: now, outcome: why }), reason: `no longer waste: ${why}` };
  }
  const base = (): Finding => ({
    findingId: findingKey(key.account, key.region, key.resourceId),
    ...key,
    environment: ctx.environment,
    state: 'watching',
    monthlyUsd: 0,
    detail: verdict.detail,
    firstSeen: now,
    lastSeen: now,
    ...(key.kind === 'volume' ? { availableSince: observed?.availableSince ?? now } : {}),
    version: 0,
  });
  if (verdict.waste === 'not-yet') {
    if (current && isOpen(current)) return undefined;
    const start = current ? next(current, { state: 'watching', detail: verdict.detail, lastSeen: now, availableSince: observed?.availableSince ?? now, closedAt: undefined, outcome: undefined }) : { ...base(), version: 1 };
    return { action: 'waste.watching', before: current, after: start, reason: verdict.detail };
  }
  const opened = { state: 'open' as const, monthlyUsd: verdict.monthlyUsd, detail: verdict.detail, lastSeen: now, openedAt: now, ...(verdict.sizeGiB !== undefined ? { sizeGiB: verdict.sizeGiB } : {}) };
  if (!current) return { action: 'waste.found', after: { ...base(), ...opened, version: 1 }, reason: verdict.detail };
  if (current.state === 'watching') return { action: 'waste.found', before: current, after: next(current, opened), reason: verdict.detail };
  if (!isOpen(current)) {
    const reopened = next(current, { ...opened, closedAt: undefined, outcome: undefined, removableAfter: undefined, backupSnapshotId: undefined, reopened: (current.reopened ?? 0) + 1, ...(key.kind === 'volume' ? { availableSince: observed?.availableSince ?? now } : {}) });
    return { action: 'waste.reopened', before: current, after: reopened, reason: `waste again: ${verdict.detail}` };
  }
  return undefined;
}

/** Pure: whether an open finding is marked for cleanup now (its class and kind clean up, and not a dry run). */
export function toMark(finding: Finding, policy: WastePolicy, dryRun: boolean): boolean {
  return finding.state === 'open' && !dryRun && cleanupAllowed(finding.kind, finding.environment, policy);
}

/** Pure: the mark, after the resource was tagged with the time after which it may be removed. */
export function markFinding(finding: Finding, now: Date, policy: WastePolicy): FindingTransition {
  const removableAfter = new Date(now.getTime() + policy.cleanup.graceHours * 3_600_000).toISOString();
  return {
    action: 'waste.marked',
    before: finding,
    after: next(finding, { state: 'marked', removableAfter }),
    reason: `marked for cleanup: tagged ${removableAfter}; removed after then if it is still waste`,
  };
}

export const graceOver = (f: Finding, now: Date): boolean => (f.state === 'marked' || f.state === 'cleaning') && !!f.removableAfter && Date.parse(f.removableAfter) <= now.getTime();

export const cleanupStarted = (f: Finding, now: Date, backupSnapshotId?: string): FindingTransition => ({
  action: 'waste.cleanup-started',
  before: f,
  after: next(f, { state: 'cleaning', lastSeen: now.toISOString(), ...(backupSnapshotId ? { backupSnapshotId } : {}) }),
  reason: backupSnapshotId ? `re-checked, still waste: snapshot ${backupSnapshotId} of the volume started before its deletion` : 're-checked right before acting: still waste',
});

export const cleaned = (f: Finding, now: Date, outcome: string): FindingTransition => ({
  action: f.kind === 'address' ? 'waste.released' : 'waste.deleted',
  before: f,
  after: next(f, { state: 'cleaned', closedAt: now.toISOString(), outcome }),
  reason: outcome,
});

export const cleanupFailed = (f: Finding, now: Date, why: string): FindingTransition => ({
  action: 'waste.cleanup-failed',
  before: f,
  after: next(f, { state: 'marked', lastSeen: now.toISOString(), backupSnapshotId: undefined, outcome: why }),
  reason: `${why}: the resource is kept, and re-checked next run`,
});

export const resolvedAtRecheck = (f: Finding, now: Date, why: string): FindingTransition => ({
  action: 'waste.resolved',
  before: f,
  after: next(f, { state: 'resolved', closedAt: now.toISOString(), outcome: why }),
  reason: `re-checked before cleanup, no longer waste: ${why}`,
});
