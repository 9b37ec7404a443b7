import type { LedgerWriter } from '../ledger/store';
import type { AccountDirectory } from '../shared/account-directory';
import type { EventPublisher } from '../shared/bus';
import { circuitBreaker } from '../shared/circuit-breaker';
import { UnknownAccountError } from '../shared/errors';
import { type Target, type TargetFailure, forEachTarget, recordFailedTargets, serialQueue } from '../shared/fan-out';
import type { Notifier } from '../shared/notifications';
import type { FindingStore, LastScan } from './finding-store';
import { type Finding, type FindingTransition, WASTE_STATES, findingKey, isOpen, markFinding, onScanned, toMark } from './findings';
import { type ObservedResource, WASTE_KINDS, WASTE_TAGS, type WasteKind, type WastePolicy, cleanupAllowed, wasteVerdict } from './policy';
import type { WasteActions, WasteInventory } from './resources';

export interface WasteDeps {
  resources: WasteInventory & WasteActions;
  findings: FindingStore;
  ledger: LedgerWriter;
  accounts: AccountDirectory;
  policy: WastePolicy;
  publisher: EventPublisher;
  notifier: Notifier;
  clock: () => Date;
  actor: string;
  dryRun: boolean;
}

type Totals = Record<WasteKind, { count: number; monthlyUsd: number }>;

/**
 * What the scan of a batch of account-regions reports to the scan workflow, summed over the
 * batch and kept small: the workflow's Map collects one per batch into its 256 KB state.
 */
export interface ScanReport {
  targets: number;
  failed: TargetFailure[];
  /** Resources listed (addresses, available volumes, owned snapshots). */
  listed: number;
  /** Open waste as the scan leaves it, by kind and by account. */
  byKind: Totals;
  byAccount: Record<string, number>;
  found: number;
  reopened: number;
  resolved: number;
  marked: number;
  /** Open findings that cleanup would mark but for `dryRun`. */
  wouldMark: number;
  /** Resources of the kinds cleanup may remove in the scanned targets: the circuit breaker's scope. */
  cleanable: number;
}

/** A run's cleanups at most, whatever the circuit breaker allows (the rest wait for the next run). */
export const CLEANUPS_PER_RUN = 50;

const totals = (): Totals => ({ address: { count: 0, monthlyUsd: 0 }, volume: { count: 0, monthlyUsd: 0 }, snapshot: { count: 0, monthlyUsd: 0 } });
const cents = (usd: number) => Math.round(usd * 100) / 100;

export const emptyScanReport = (): ScanReport => ({
  targets: 0,
  failed: [],
  listed: 0,
  byKind: totals(),
  byAccount: {},
  found: 0,
  reopened: 0,
  resolved: 0,
  marked: 0,
  wouldMark: 0,
  cleanable: 0,
});

export function addScanReport(into: ScanReport, r: ScanReport): ScanReport {
  into.targets += r.targets;
  into.failed.push(...r.failed);
  for (const kind of WASTE_KINDS) {
    into.byKind[kind].count += r.byKind[kind].count;
    into.byKind[kind].monthlyUsd = cents(into.byKind[kind].monthlyUsd + r.byKind[kind].monthlyUsd);
  }
  for (const [account, usd] of Object.entries(r.byAccount)) into.byAccount[account] = cents((into.byAccount[account] ?? 0) + usd);
  for (const k of ['listed', 'found', 'reopened', 'resolved', 'marked', 'wouldMark', 'cleanable'] as const) into[k] += r[k];
  return into;
}

export const totalMonthlyUsd = (r: ScanReport) => cents(WASTE_KINDS.reduce((sum, k) => sum + r.byKind[k].monthlyUsd, 0));
export const totalFindings = (r: ScanReport) => WASTE_KINDS.reduce((sum, k) => sum + r.byKind[k].count, 0);

async function environmentOf(account: string, deps: WasteDeps) {
  const environment = await deps.accounts.environmentOf(account);
  if (!environment) throw new UnknownAccountError(`account ${account} is not one of the configured accounts`);
  return environment;
}

/** Scans a batch of account-regions, a few at once; one that fails is reported failed for this run. */
export async function scanBatch(request: { scanId: string; targets: Target[] }, given: WasteDeps): Promise<ScanReport> {
  const serial = serialQueue();
  const findings: FindingStore = Object.create(given.findings) as FindingStore;
  findings.record = (transitions, eventId, actor) => serial(() => given.findings.record(transitions, eventId, actor));
  const deps = { ...given, findings };
  const lastScan = await deps.findings.lastScan();
  const { results, failed } = await forEachTarget(request.targets, (target) => scanTarget({ ...target, scanId: request.scanId }, lastScan, deps));
  const total = results.reduce(addScanReport, emptyScanReport());
  return addScanReport(total, { ...emptyScanReport(), targets: failed.length, failed });
}

/**
 * The scan of one account and region: the snapshots every image (disabled and deprecated
 * included), launch template version and launch configuration refers to; then every Elastic IP,
 * available volume and owned snapshot against the policy. A resource that became waste opens
 * (or reopens) its finding, one that no longer is resolves it; cleanup marks what it may remove.
 * Writes only what changed: a second scan of an unchanged account writes nothing.
 */
export async function scanTarget(target: Target & { scanId: string }, lastScan: LastScan | undefined, deps: WasteDeps): Promise<ScanReport> {
  const { account, region, scanId } = target;
  const environment = await environmentOf(account, deps);
  const now = deps.clock();
  const report: ScanReport = { ...emptyScanReport(), targets: 1 };
  const open = new Map((await deps.findings.openIn(account, region)).map((f) => [f.resourceId, f]));
  const previousScan = lastScan?.scanned[`${account}/${region}`];
  const references = await deps.resources.references(account, region);
  const ctx = { now, environment };
  const transitions: FindingTransition[] = [];
  const seen = new Set<string>();
  // Waste without an open finding: its closed finding, if any, is read in bulk before deciding.
  const unknown: { resource: ObservedResource; verdict: ReturnType<typeof wasteVerdict>; availableSince?: string }[] = [];

  const consider = (resource: ObservedResource) => {
    seen.add(resource.resourceId);
    report.listed += 1;
    if (cleanupAllowed(resource.kind, environment, deps.policy)) report.cleanable += 1;
    const current = open.get(resource.resourceId);
    // A volume created after the previous complete scan of its account-region, and available now, was never seen attached: it counts from its creation.
    const availableSince = resource.kind === 'volume' ? (current?.availableSince ?? (previousScan && resource.createTime.toISOString() > previousScan ? resource.createTime.toISOString() : undefined)) : undefined;
    const verdict = wasteVerdict(resource, { now, policy: deps.policy, account, region, references, ...(availableSince ? { availableSince } : {}) });
    if (!current && verdict.waste === false) return;
    if (!current) {
      unknown.push({ resource, verdict, ...(availableSince ? { availableSince } : {}) });
      return;
    }
    const t = onScanned(current, { account, region, kind: resource.kind, resourceId: resource.resourceId }, { resource, verdict, ...(availableSince ? { availableSince } : {}) }, ctx);
    if (t) transitions.push(t);
  };

  for (const address of await deps.resources.addresses(account, region)) consider(address);
  for await (const page of deps.resources.availableVolumes(account, region)) for (const volume of page) consider(volume);
  for await (const page of deps.resources.snapshots(account, region)) for (const snapshot of page) consider(snapshot);

  const closed = await deps.findings.getMany(unknown.map((u) => findingKey(account, region, u.resource.resourceId)));
  for (const u of unknown) {
    const current = closed.get(findingKey(account, region, u.resource.resourceId));
    const t = onScanned(current, { account, region, kind: u.resource.kind, resourceId: u.resource.resourceId }, u, ctx);
    if (t) transitions.push(t);
  }
  // Open findings the listings did not show: released, attached, deleted.
  for (const finding of open.values()) {
    if (seen.has(finding.resourceId)) continue;
    const t = onScanned(finding, finding, undefined, ctx);
    if (t) transitions.push(t);
  }
  await deps.findings.record(transitions, scanId, deps.actor);

  const after = new Map(open);
  for (const t of transitions) {
    if (isOpen(t.after)) after.set(t.after.resourceId, t.after);
    else after.delete(t.after.resourceId);
    if (t.action === 'waste.found') report.found += 1;
    if (t.action === 'waste.reopened') report.reopened += 1;
    if (t.action === 'waste.resolved') report.resolved += 1;
  }

  // Cleanup's mark: the resource carries the time after which it may be removed, then the finding says so.
  const marking = [...after.values()].filter((f) => toMark(f, deps.policy, deps.dryRun));
  report.wouldMark = deps.dryRun ? [...after.values()].filter((f) => toMark(f, deps.policy, false)).length : 0;
  if (marking.length) {
    const marks = marking.map((f) => markFinding(f, now, deps.policy));
    await deps.resources.tag(account, region, marking.map((f) => f.resourceId), { [WASTE_TAGS.removableAfter]: marks[0]!.after.removableAfter! });
    await deps.findings.record(marks, scanId, deps.actor);
    for (const m of marks) after.set(m.after.resourceId, m.after);
    report.marked = marks.length;
  }

  for (const f of after.values()) {
    if (!WASTE_STATES.includes(f.state)) continue;
    report.byKind[f.kind].count += 1;
    report.byKind[f.kind].monthlyUsd = cents(report.byKind[f.kind].monthlyUsd + f.monthlyUsd);
    report.byAccount[account] = cents((report.byAccount[account] ?? 0) + f.monthlyUsd);
  }
  return report;
}

/** What the scan workflow does after the scans: clean up these findings, or nothing (tripped). */
export interface CleanupPlan {
  trip: boolean;
  acting: string[];
  planned: number;
  reason?: string;
}

/**
 * After every batch was scanned: dates the scan for every account-region it covered, records
 * the ones that failed, announces the WasteReport, notifies what was marked, and puts the run's
 * cleanups under the circuit breaker (tripped: recorded, announced, notified; nothing removed).
 */
export async function reportScan(request: { scanId: string; targets: Target[]; reports: ScanReport[] }, deps: WasteDeps): Promise<{ report: ScanReport; plan: CleanupPlan }> {
  const run = request.reports.reduce(addScanReport, emptyScanReport());
  const at = deps.clock().toISOString();
  const failed = new Set(run.failed.map((f) => `${f.account}/${f.region}`));
  const scanned = request.targets.map((t) => `${t.account}/${t.region}`).filter((t) => !failed.has(t));
  if (scanned.length) {
    const previous = await deps.findings.lastScan();
    await deps.findings.saveLastScan({ scanId: request.scanId, at, scanned: { ...previous?.scanned, ...Object.fromEntries(scanned.map((t) => [t, at])) } });
  }
  await recordFailedTargets(run.failed, { runId: request.scanId, idField: 'scanId', action: 'waste.scan-failed', detailType: 'WasteScanTargetFailed', what: 'scanned' }, deps);

  // Marked findings whose grace is over, in every account-region (a cleanup a run left mid-way included).
  const due = deps.dryRun ? { count: 0, findingIds: [] } : await deps.findings.dueForCleanup(deps.clock(), CLEANUPS_PER_RUN);
  const planned = due.count;
  const verdict = circuitBreaker(planned, run.cleanable, deps.policy.cleanup.circuitBreaker, 'resources of the kinds cleanup removes');
  const summary = {
    scanId: request.scanId,
    at,
    dryRun: deps.dryRun,
    targets: run.targets,
    failed: run.failed.length,
    totalMonthlyUsd: totalMonthlyUsd(run),
    findings: totalFindings(run),
    byKind: run.byKind,
    byAccount: run.byAccount,
    found: run.found,
    reopened: run.reopened,
    resolved: run.resolved,
    marked: run.marked,
    wouldMark: run.wouldMark,
    plannedCleanups: planned,
    tripped: verdict.trip,
  };
  if (verdict.trip) {
    const { duplicate } = await deps.ledger.append(
      { actor: deps.actor, action: 'waste.circuit-breaker-tripped', subject: 'waste', reason: `${verdict.reason}: nothing removed, the marks kept for the next run`, eventId: request.scanId, after: { planned, cleanable: run.cleanable } },
      { dedupeKey: `${request.scanId}#circuit-breaker` },
    );
    if (!duplicate) {
      await deps.publisher.publish([{ detailType: 'CircuitBreakerTripped', detail: { scanId: request.scanId, reason: verdict.reason, planned } }]);
      await deps.notifier.notify('Fleetwarden waste cleanup circuit breaker tripped', `${verdict.reason}. Nothing was removed in scan ${request.scanId}; the marked resources wait for the next run.`);
    }
  }
  if (run.marked) {
    const until = new Date(Date.parse(at) + deps.policy.cleanup.graceHours * 3_600_000).toISOString();
    await deps.notifier.notify(
      `Fleetwarden marked ${run.marked} wasted resources for cleanup`,
      `Scan ${request.scanId} marked ${run.marked} resources with the tag ${WASTE_TAGS.removableAfter}=${until}. After then each is re-checked and removed if it is still waste (a volume is snapshotted first). Tag one ${deps.policy.protectedTag} to keep it.`,
    );
  }
  await deps.publisher.publish([{ detailType: 'WasteReport', detail: summary }]);
  const plan: CleanupPlan = verdict.trip ? { trip: true, acting: [], planned, reason: verdict.reason } : { trip: false, acting: due.findingIds, planned };
  return { report: run, plan };
}

/** The WasteReport's open findings as one sorted list (for the operator). */
export const byMonthlyCost = (findings: Finding[]) => [...findings].sort((a, b) => b.monthlyUsd - a.monthlyUsd || a.findingId.localeCompare(b.findingId));
