import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Finding, graceOver, markFinding, onScanned, toMark } from '../../functions/waste/findings';
import {
  DEFAULT_PRICES,
  type ObservedSnapshot,
  type ObservedVolume,
  type WastePolicy,
  managedBy,
  monthlyCost,
  pricesIn,
  snapshotReferences,
  wasteVerdict,
} from '../../functions/waste/policy';
import { parseConfig } from '../../lib/config';

const ACCOUNT = '333333333333';
const NOW = new Date('2026-12-04T12:00:00Z');
const DAY = 86_400_000;
const NO = { address: false, volume: false, snapshot: false };
const policy: WastePolicy = {
  unattachedEbsDays: 7,
  unusedSnapshotDays: 30,
  prices: { default: DEFAULT_PRICES, regions: { 'eu-west-1': { gp3: 0.088, snapshot: 0.053 } } },
  protectedTag: 'fleetwarden:protected',
  cleanup: { byEnvironment: { PROD: NO, STAGING: NO, LAB: { address: true, volume: true, snapshot: false } }, graceHours: 168, circuitBreaker: { maxActionsPerRun: 20, maxPercentOfFleet: 10 } },
};
const ctx = (over: Partial<Parameters<typeof wasteVerdict>[1]> = {}) => ({ now: NOW, policy, account: ACCOUNT, region: 'us-east-1', references: new Map<string, string[]>(), ...over });
const snapshot = (over: Partial<ObservedSnapshot> = {}): ObservedSnapshot => ({
  kind: 'snapshot',
  resourceId: 'snap-0123456789abcdef0',
  ownerId: ACCOUNT,
  state: 'completed',
  sizeGiB: 100,
  startTime: new Date(NOW.getTime() - 40 * DAY),
  description: '',
  tags: {},
  ...over,
});
const volume = (over: Partial<ObservedVolume> = {}): ObservedVolume => ({ kind: 'volume', resourceId: 'vol-0123456789abcdef0', state: 'available', sizeGiB: 100, volumeType: 'gp3', createTime: new Date(NOW.getTime() - 90 * DAY), tags: {}, ...over });

describe('prices', () => {
  it('prices volumes by type, provisioned IOPS and gp3 extras, snapshots by GB-month and an idle Elastic IP by the month, per region', () => {
    const p = pricesIn('us-east-1', policy);
    expect(monthlyCost(volume({ volumeType: 'gp2' }), p)).toBe(10);
    expect(monthlyCost(volume(), p)).toBe(8);
    expect(monthlyCost(volume({ iops: 6000, throughput: 250 }), p)).toBe(8 + 3000 * 0.005 + 125 * 0.04);
    expect(monthlyCost(volume({ volumeType: 'io2', iops: 1000 }), p)).toBe(12.5 + 65);
    expect(monthlyCost(volume({ volumeType: 'sc1', sizeGiB: 1000 }), p)).toBe(15);
    expect(monthlyCost(snapshot(), p)).toBe(5);
    expect(monthlyCost({ kind: 'address', resourceId: 'eipalloc-1', associated: false, tags: {} }, p)).toBe(3.6);
    const eu = pricesIn('eu-west-1', policy);
    expect(monthlyCost(volume(), eu)).toBe(8.8);
    expect(monthlyCost(snapshot(), eu)).toBe(5.3);
    expect(eu.gp2).toBe(0.1);
  });

  it('takes the price table and per-region overrides from the config, and names a bad key', () => {
    const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: ACCOUNT, name: 'lab', environment: 'LAB' }] };
    const config = parseConfig({ ...base, policies: { waste: { prices: { default: { gp3: 0.09 }, regions: { 'eu-west-1': { snapshot: 0.06 } } } } } });
    expect(config.policies.waste.prices.default).toEqual({ ...DEFAULT_PRICES, gp3: 0.09 });
    expect(config.policies.waste.cleanup.byEnvironment.LAB).toEqual(NO);
    expect(config.policies.waste.cleanup.graceHours).toBe(168);
    expect(() => parseConfig({ ...base, policies: { waste: { prices: { default: { gp4: 1 } } } } })).toThrow('fleetwarden.policies.waste.prices.default.gp4: unknown key');
    expect(() => parseConfig({ ...base, policies: { waste: { cleanup: { byEnvironment: { LAB: { volume: 'yes' } } } } } })).toThrow('fleetwarden.policies.waste.cleanup.byEnvironment.LAB.volume');
  });
});

describe('waste verdicts', () => {
  it('counts a volume from since when it is known available, against unattachedEbsDays', () => {
    expect(wasteVerdict(volume(), ctx()).waste).toBe('not-yet');
    expect(wasteVerdict(volume(), ctx({ availableSince: new Date(NOW.getTime() - 6.9 * DAY).toISOString() })).waste).toBe('not-yet');
    expect(wasteVerdict(volume(), ctx({ availableSince: new Date(NOW.getTime() - 7 * DAY).toISOString() }))).toMatchObject({ waste: true, monthlyUsd: 8 });
    expect(wasteVerdict(volume({ state: 'in-use' }), ctx())).toEqual({ waste: false, why: 'volume is in-use' });
  });

  it('takes a snapshot as waste only when old enough, completed, of this account, unreferenced, unmanaged and unprotected', () => {
    expect(wasteVerdict(snapshot(), ctx())).toMatchObject({ waste: true, monthlyUsd: 5 });
    expect(wasteVerdict(snapshot({ startTime: new Date(NOW.getTime() - 29 * DAY) }), ctx())).toMatchObject({ waste: false, why: '29.0 days old, under 30' });
    expect(wasteVerdict(snapshot({ state: 'pending' }), ctx())).toMatchObject({ waste: false });
    expect(wasteVerdict(snapshot({ ownerId: '111111111111' }), ctx())).toMatchObject({ waste: false, why: 'owned by account 111111111111' });
    expect(wasteVerdict(snapshot({ tags: { 'fleetwarden:protected': '' } }), ctx())).toMatchObject({ waste: false, why: 'protected by tag fleetwarden:protected' });
    expect(wasteVerdict(snapshot({ description: 'This snapshot is created by the AWS Backup service.' }), ctx())).toMatchObject({ why: 'managed by AWS Backup' });
    expect(wasteVerdict(snapshot({ tags: { 'aws:backup:source-resource': 'arn:aws:ec2:us-east-1:333333333333:volume/vol-1' } }), ctx())).toMatchObject({ why: 'managed by AWS Backup' });
    expect(wasteVerdict(snapshot({ tags: { 'aws:dlm:lifecycle-policy-id': 'policy-1' } }), ctx())).toMatchObject({ why: 'managed by Data Lifecycle Manager' });
    expect(managedBy(snapshot({ tags: { 'fleetwarden:deleted-volume': 'vol-1' } }))).toMatch(/^Fleetwarden/);
    const refs = snapshotReferences([{ referrer: 'image ami-1 (disabled)', snapshotIds: ['snap-0123456789abcdef0'] }, { referrer: 'launch template lt-1 v1', snapshotIds: ['snap-0123456789abcdef0', undefined] }]);
    expect(wasteVerdict(snapshot(), ctx({ references: refs }))).toEqual({ waste: false, why: 'referenced by image ami-1 (disabled), launch template lt-1 v1' });
  });

  it('never takes a snapshot that anything refers to, whatever else holds (property)', () => {
    const id = fc.integer({ min: 0, max: 30 }).map((n) => `snap-${n.toString(16).padStart(17, '0')}`);
    const referrer = fc.constantFrom('image ami-1', 'image ami-2 (disabled)', 'image ami-3 (deprecated)', 'launch template lt-1 v1', 'launch template lt-1 v7', 'launch configuration web');
    fc.assert(
      fc.property(
        fc.array(fc.record({ referrer, snapshotIds: fc.array(fc.option(id, { nil: undefined }), { maxLength: 6 }) }), { maxLength: 20 }),
        fc.array(fc.record({ id, ageDays: fc.double({ min: 0, max: 400, noNaN: true }), state: fc.constantFrom('completed', 'pending', 'error'), owner: fc.constantFrom(ACCOUNT, '111111111111'), tagged: fc.boolean() }), { maxLength: 30 }),
        (sources, snapshots) => {
          const refs = snapshotReferences(sources);
          const referenced = new Set(sources.flatMap((s) => s.snapshotIds.filter(Boolean)));
          for (const s of snapshots) {
            const observed = snapshot({ resourceId: s.id, ownerId: s.owner, state: s.state, startTime: new Date(NOW.getTime() - s.ageDays * DAY), tags: s.tagged ? { 'aws:dlm:lifecycle-policy-id': 'p' } : {} });
            const verdict = wasteVerdict(observed, ctx({ references: refs }));
            if (referenced.has(s.id)) expect(verdict.waste).toBe(false);
            if (verdict.waste === true) expect(!referenced.has(s.id) && s.owner === ACCOUNT && s.state === 'completed' && !s.tagged && s.ageDays >= 30).toBe(true);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('finding transitions', () => {
  const key = { account: ACCOUNT, region: 'us-east-1', kind: 'volume' as const, resourceId: 'vol-0123456789abcdef0' };
  const scan = { now: NOW, environment: 'LAB' as const };
  const seen = (availableSince?: string) => {
    const resource = volume();
    return { resource, verdict: wasteVerdict(resource, ctx(availableSince ? { availableSince } : {})), ...(availableSince ? { availableSince } : {}) };
  };

  it('watches a newly available volume, opens it after unattachedEbsDays from first seen, and writes nothing while nothing changes', () => {
    const watching = onScanned(undefined, key, seen(), scan)!;
    expect(watching).toMatchObject({ action: 'waste.watching', after: { state: 'watching', firstSeen: NOW.toISOString(), availableSince: NOW.toISOString(), version: 1 } });
    const later = { now: new Date(NOW.getTime() + DAY), environment: 'LAB' as const };
    expect(onScanned(watching.after, key, { ...seen(), verdict: wasteVerdict(volume(), { ...ctx(), now: later.now, availableSince: watching.after.availableSince! }) }, later)).toBeUndefined();
    const week = { now: new Date(NOW.getTime() + 7 * DAY), environment: 'LAB' as const };
    const opened = onScanned(watching.after, key, { ...seen(), verdict: wasteVerdict(volume(), { ...ctx(), now: week.now, availableSince: watching.after.availableSince! }) }, week)!;
    expect(opened).toMatchObject({ action: 'waste.found', after: { state: 'open', monthlyUsd: 8, firstSeen: NOW.toISOString(), version: 2 } });
    expect(onScanned(opened.after, key, { ...seen(), verdict: { waste: true, monthlyUsd: 8, detail: 'x' } }, week)).toBeUndefined();
  });

  it('resolves when the resource is gone and reopens the same finding when it comes back', () => {
    const found = onScanned(undefined, key, seen(new Date(NOW.getTime() - 8 * DAY).toISOString()), scan)!.after;
    const resolved = onScanned(found, key, undefined, scan)!;
    expect(resolved).toMatchObject({ action: 'waste.resolved', after: { state: 'resolved', outcome: 'no longer available (attached or deleted)' } });
    const again = onScanned(resolved.after, key, seen(new Date(NOW.getTime() - 8 * DAY).toISOString()), scan)!;
    expect(again).toMatchObject({ action: 'waste.reopened', after: { findingId: found.findingId, state: 'open', reopened: 1, version: 3 } });
  });

  it('marks only what cleanup may remove in its class, never in a dry run, and the grace runs from the mark', () => {
    const open = onScanned(undefined, key, seen(new Date(NOW.getTime() - 8 * DAY).toISOString()), scan)!.after;
    expect(toMark(open, policy, false)).toBe(true);
    expect(toMark(open, policy, true)).toBe(false);
    expect(toMark({ ...open, environment: 'PROD' }, policy, false)).toBe(false);
    expect(toMark({ ...open, kind: 'snapshot' } as Finding, policy, false)).toBe(false);
    const marked = markFinding(open, NOW, policy).after;
    expect(marked.removableAfter).toBe(new Date(NOW.getTime() + 168 * 3_600_000).toISOString());
    expect(graceOver(marked, new Date(NOW.getTime() + 167 * 3_600_000))).toBe(false);
    expect(graceOver(marked, new Date(NOW.getTime() + 168 * 3_600_000))).toBe(true);
    expect(onScanned({ ...marked, state: 'cleaning' }, key, undefined, scan)).toBeUndefined();
  });
});
