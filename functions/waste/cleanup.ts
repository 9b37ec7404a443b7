import { type Finding, type FindingTransition, cleaned, cleanupFailed, cleanupStarted, graceOver, resolvedAtRecheck } from './findings';
import { type ObservedResource, WASTE_TAGS, cleanupAllowed, wasteVerdict } from './policy';
import type { WasteDeps } from './scanner';

/** What one cleanup step did; `done: false` while a volume's backup snapshot is still pending (the workflow waits and calls again). */
export interface CleanupOutcome {
  findingId: string;
  done: boolean;
  state?: Finding['state'];
  action: FindingTransition['action'] | 'unchanged';
}

/** Tags a volume's backup snapshot carries: where it came from, and the volume's own tags (`aws:` ones cannot be set). */
function backupTags(finding: Finding, volume: ObservedResource): Record<string, string> {
  const own = Object.fromEntries(Object.entries(volume.tags).filter(([k]) => !k.startsWith('aws:') && k !== WASTE_TAGS.removableAfter));
  return {
    ...own,
    [WASTE_TAGS.deletedVolume]: finding.resourceId,
    [WASTE_TAGS.finding]: finding.findingId,
    [WASTE_TAGS.deletedVolumeTags]: JSON.stringify(own).slice(0, 256),
  };
}

async function observe(finding: Finding, deps: WasteDeps): Promise<ObservedResource | undefined> {
  const { account, region, resourceId } = finding;
  if (finding.kind === 'address') return deps.resources.address(account, region, resourceId);
  if (finding.kind === 'volume') return deps.resources.volume(account, region, resourceId);
  return deps.resources.snapshot(account, region, resourceId);
}

/**
 * One step of the cleanup of a marked finding whose grace is over, re-checked right before each
 * destructive call: the resource is still waste (still unassociated, still available, still
 * referenced by nothing), not protected, and its account's class still cleans up its kind.
 * An Elastic IP is released, a snapshot deleted. A volume is snapshotted first (the backup's id
 * recorded before anything else), and deleted only once that snapshot is completed: a failure
 * at any point leaves the volume or its snapshot, never neither.
 */
export async function cleanFinding(request: { findingId: string; scanId: string }, deps: WasteDeps): Promise<CleanupOutcome> {
  const finding = await deps.findings.get(request.findingId);
  const now = deps.clock();
  const unchanged = (f: Finding | undefined, done = true): CleanupOutcome => ({ findingId: request.findingId, done, state: f?.state, action: 'unchanged' });
  if (!finding || !graceOver(finding, now)) return unchanged(finding);
  const { account, region, resourceId } = finding;
  const record = async (t: FindingTransition, done = true): Promise<CleanupOutcome> => {
    await deps.findings.record([t], request.scanId, deps.actor);
    if (t.after.state === 'cleaned') {
      await deps.publisher.publish([{ detailType: 'WasteCleaned', detail: { scanId: request.scanId, findingId: t.after.findingId, kind: t.after.kind, account, region, resourceId, monthlyUsd: t.after.monthlyUsd, outcome: t.after.outcome } }]);
    }
    return { findingId: finding.findingId, done, state: t.after.state, action: t.action };
  };
  const resource = await observe(finding, deps);
  const environment = await deps.accounts.environmentOf(account);

  if (finding.state === 'cleaning' && finding.kind === 'volume') {
    const backup = finding.backupSnapshotId ? await deps.resources.snapshot(account, region, finding.backupSnapshotId) : undefined;
    if (!resource) return record(cleaned(finding, now, `deleted; its snapshot ${finding.backupSnapshotId} is kept`));
    if (!backup || backup.state === 'error') return record(cleanupFailed(finding, now, `the snapshot ${finding.backupSnapshotId} of the volume ${backup ? 'failed' : 'is missing'}`));
    if (backup.state !== 'completed') return unchanged(finding, false);
    if (resource.kind !== 'volume' || resource.state !== 'available' || Object.hasOwn(resource.tags, deps.policy.protectedTag)) {
      // The volume is in use (or protected) again: it lives, so its backup is not needed.
      await deps.resources.deleteSnapshot(account, region, backup.resourceId);
      await deps.resources.untag(account, region, [resourceId], [WASTE_TAGS.removableAfter]);
      return record(resolvedAtRecheck(finding, now, resource.kind === 'volume' && resource.state !== 'available' ? `volume is ${resource.state}` : `protected by tag ${deps.policy.protectedTag}`));
    }
    await deps.resources.deleteVolume(account, region, resourceId);
    return record(cleaned(finding, now, `deleted after its snapshot ${backup.resourceId} completed (tagged with the volume's id and tags)`));
  }

  if (finding.state === 'cleaning' && !resource) return record(cleaned(finding, now, finding.kind === 'address' ? 'released' : 'deleted'));
  const references = finding.kind === 'snapshot' ? await deps.resources.references(account, region) : new Map<string, string[]>();
  const verdict = resource ? wasteVerdict(resource, { now, policy: deps.policy, account, region, references, ...(finding.availableSince ? { availableSince: finding.availableSince } : {}) }) : undefined;
  const allowed = !!environment && cleanupAllowed(finding.kind, environment, deps.policy) && !deps.dryRun;
  if (!resource || verdict?.waste !== true || !allowed) {
    const why = !resource ? 'gone already' : verdict?.waste === false ? verdict.why : verdict?.waste === 'not-yet' ? verdict.detail : deps.dryRun ? 'dry run' : `cleanup of ${finding.kind}s is off for ${environment ?? 'unknown'} accounts now`;
    if (resource) await deps.resources.untag(account, region, [resourceId], [WASTE_TAGS.removableAfter]);
    return record(resolvedAtRecheck(finding, now, why));
  }

  if (finding.kind === 'volume') {
    // A backup a run started before it died is reused: one volume, one backup.
    const existing = await deps.resources.backupOf(account, region, resourceId);
    const snapshotId = existing?.resourceId ?? (await deps.resources.snapshotVolume(account, region, resource as Extract<ObservedResource, { kind: 'volume' }>, backupTags(finding, resource)));
    return record(cleanupStarted(finding, now, snapshotId), false);
  }
  let started = finding;
  if (finding.state !== 'cleaning') {
    const intent = cleanupStarted(finding, now);
    await deps.findings.record([intent], request.scanId, deps.actor);
    started = intent.after;
  }
  if (finding.kind === 'address') {
    await deps.resources.releaseAddress(account, region, resourceId);
    return record(cleaned(started, now, `released ${resource.kind === 'address' ? (resource.publicIp ?? '') : ''}`.trim()));
  }
  await deps.resources.deleteSnapshot(account, region, resourceId);
  return record(cleaned(started, now, 'deleted (re-checked: referenced by no image, launch template version or launch configuration)'));
}
