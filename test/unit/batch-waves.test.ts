import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BatchRequestSchema, MaintenanceWindowSchema } from '../../functions/batch/model';
import { type BatchGroup, type BatchProgress, type WaveResult, applyResults, budgetSize, childExecutionName, planWave } from '../../functions/batch/waves';
import { windowState } from '../../functions/batch/window';

const NOW = new Date('2026-11-23T11:00:00Z'); // a Monday
const defaults = { budget: { count: 1 } as const, maxFailedSwaps: 1 };
const request = (r: Record<string, unknown> = {}) => BatchRequestSchema.parse({ groups: ['g'], ...r });
const start: BatchProgress = { wave: 0, attempts: [] };
const hex = (n: number) => `i-${n.toString(16).padStart(8, '0')}`;

function group(name: string, n: number, extra: Partial<BatchGroup> & { spot?: number[]; dnd?: number[]; states?: Record<number, string> } = {}): BatchGroup {
  const { spot = [], dnd = [], states = {}, ...rest } = extra;
  return {
    name,
    desired: n,
    instances: Array.from({ length: n }, (_, i) => ({ instanceId: hex(name.length * 100 + i), lifecycleState: states[i] ?? 'InService', spot: spot.includes(i), doNotDisrupt: dnd.includes(i) })),
    ...rest,
  };
}

describe('maintenance windows', () => {
  const weekend = MaintenanceWindowSchema.parse({ cron: '0 2 * * SAT', durationMinutes: 240, timeZone: 'Europe/Paris' });

  it('is open from each start for its duration, in its own time zone', () => {
    expect(windowState(weekend, new Date('2026-11-28T00:59:59Z'))).toEqual({ open: false, opensAt: new Date('2026-11-28T01:00:00Z') });
    expect(windowState(weekend, new Date('2026-11-28T01:00:00Z'))).toEqual({ open: true, closesAt: new Date('2026-11-28T05:00:00Z') });
    expect(windowState(weekend, new Date('2026-11-28T04:59:59Z'))).toEqual({ open: true, closesAt: new Date('2026-11-28T05:00:00Z') });
    expect(windowState(weekend, new Date('2026-11-28T05:00:00Z'))).toEqual({ open: false, opensAt: new Date('2026-12-05T01:00:00Z') });
  });

  it('follows daylight saving time: 02:00 in Paris is 00:00 UTC in summer', () => {
    expect(windowState(weekend, new Date('2026-07-01T00:00:00Z'))).toEqual({ open: false, opensAt: new Date('2026-07-04T00:00:00Z') });
  });

  it('a window longer than its period is always open', () => {
    const hourly = MaintenanceWindowSchema.parse({ cron: '0 * * * *', durationMinutes: 90 });
    fc.assert(fc.property(fc.date({ min: new Date('2026-01-01'), max: new Date('2027-01-01'), noInvalidDate: true }), (d) => windowState(hourly, d).open));
  });

  it('rejects a bad cron expression or time zone, naming the field', () => {
    const bad = MaintenanceWindowSchema.safeParse({ cron: '0 2 * *', durationMinutes: 60, timeZone: 'Mars/Olympus' });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues.map((i) => i.path.join('.'))).toEqual(['cron', 'timeZone']);
  });
});

describe('disruption budget', () => {
  it('is a count, or a percent of the desired capacity rounded down, at least one', () => {
    expect(budgetSize({ count: 3 }, 100)).toBe(3);
    expect(budgetSize({ percent: 25 }, 10)).toBe(2);
    expect(budgetSize({ percent: 10 }, 5)).toBe(1);
  });

  it('rejects a request with neither groups nor cluster, or a budget of zero', () => {
    expect(BatchRequestSchema.safeParse({}).error!.issues[0]!.path).toEqual(['groups']);
    expect(BatchRequestSchema.safeParse({ groups: ['g'], budget: { count: 0 } }).success).toBe(false);
  });
});

describe('planWave', () => {
  const plan = (groups: BatchGroup[], r: Record<string, unknown> = {}, progress = start, dryRun = false) =>
    planWave({ batchId: 'b1', request: request({ groups: groups.map((g) => g.name), ...r }), groups, progress, defaults, dryRun, now: NOW });

  it('starts with a canary of one, On-Demand only', () => {
    const wave = plan([group('g', 3, { spot: [0] })], { budget: { count: 3 } });
    expect(wave).toMatchObject({ action: 'swap', wave: 1, canary: true, budget: 3 });
    expect(wave.action === 'swap' && wave.items.map((i) => i.request.instanceId)).toEqual([hex(101)]);
    expect(wave.action === 'swap' && wave.items[0]!.request).toEqual({ group: 'g', instanceId: hex(101), reason: 'replace On-Demand with Spot', trigger: 'manual', dryRun: false, batchId: 'b1' });
  });

  it('after a successful canary, takes up to the budget, one per group', () => {
    const groups = [group('a', 2), group('bb', 2), group('ccc', 2)];
    const progress: BatchProgress = { wave: 1, attempts: [{ instanceId: hex(100), group: 'a', wave: 1, outcome: 'swapped' }] };
    const remaining = [{ ...groups[0]!, instances: groups[0]!.instances.slice(1) }, groups[1]!, groups[2]!];
    const wave = plan(remaining, { budget: { count: 2 } }, progress);
    expect(wave.action === 'swap' && wave.items.map((i) => i.request.group)).toEqual(['a', 'bb']);
  });

  it('do-not-disrupt always wins, even for an urgent drift repair naming the instance', () => {
    const g = group('g', 2, { dnd: [0] });
    const wave = plan([g], { urgent: true, trigger: 'drift', instanceIds: [hex(100)] });
    expect(wave).toMatchObject({ action: 'done', summary: { excluded: [{ instanceId: hex(100), reason: 'carries the do-not-disrupt tag' }] } });
  });

  it('a drift repair replaces a named Spot instance; a plain batch leaves Spot alone', () => {
    const g = group('g', 1, { spot: [0] });
    expect(plan([g])).toMatchObject({ action: 'done', reason: 'nothing to swap' });
    expect(plan([g], { trigger: 'drift', instanceIds: [hex(100)] })).toMatchObject({ action: 'swap' });
  });

  it('halts when the canary was rolled back, or when roll-backs exceed maxFailedSwaps', () => {
    const canary: BatchProgress = { wave: 1, attempts: [{ instanceId: hex(100), group: 'g', wave: 1, outcome: 'rolled-back', reason: 'Swap.RolledBack' }] };
    expect(plan([group('g', 3)], {}, canary)).toMatchObject({ action: 'halt', reason: `the canary swap of ${hex(100)} was rolled back (Swap.RolledBack)` });
    const later: BatchProgress = {
      wave: 3,
      attempts: [
        { instanceId: hex(100), group: 'g', wave: 1, outcome: 'swapped' },
        { instanceId: hex(101), group: 'g', wave: 2, outcome: 'rolled-back' },
        { instanceId: hex(102), group: 'g', wave: 3, outcome: 'rolled-back' },
      ],
    };
    expect(plan([group('g', 3)], {}, later)).toMatchObject({ action: 'halt', reason: '2 swaps were rolled back, more than the 1 this batch tolerates' });
  });

  it('waits for the earliest window among the remaining groups, unless urgent', () => {
    const spec = MaintenanceWindowSchema.parse({ cron: '0 2 * * SAT', durationMinutes: 240, timeZone: 'Europe/Paris' });
    const g = group('g', 2, { window: { name: 'weekend', spec } });
    expect(plan([g])).toMatchObject({ action: 'wait', until: '2026-11-28T01:00:00.000Z' });
    expect(plan([g], { urgent: true })).toMatchObject({ action: 'swap' });
  });

  it('dry-run reports every wave it would run and acts on nothing', () => {
    const wave = plan([group('a', 3), group('bb', 1)], { budget: { percent: 50 } }, start, true);
    expect(wave.action).toBe('dry-run');
    expect(wave.action === 'dry-run' && wave.report.waves.map((w) => w.map((i) => i.group))).toEqual([['a'], ['a', 'bb'], ['a']]);
  });

  it('retries a rolled-back instance once, then leaves it', () => {
    const once: BatchProgress = { wave: 2, attempts: [{ instanceId: hex(100), group: 'g', wave: 1, outcome: 'swapped' }, { instanceId: hex(101), group: 'g', wave: 2, outcome: 'rolled-back' }] };
    const g = { ...group('g', 2), instances: group('g', 2).instances.slice(1) };
    expect(plan([g], { maxFailedSwaps: 5 }, once)).toMatchObject({ action: 'swap', items: [{ request: { instanceId: hex(101) } }] });
    const twice: BatchProgress = { ...once, attempts: [...once.attempts, { instanceId: hex(101), group: 'g', wave: 3, outcome: 'rolled-back' }] };
    expect(plan([g], { maxFailedSwaps: 5 }, twice)).toMatchObject({ action: 'done', summary: { rolledBack: 2, excluded: [{ instanceId: hex(101) }] } });
  });

  it('folds Map results: a failed child is a roll-back with its reason, LockHeld is deferred, only a completed swap counts as swapped', () => {
    const req = (n: number) => ({ group: 'g', instanceId: hex(n), reason: 'r', trigger: 'manual' as const });
    const results: WaveResult[] = [
      { request: req(1), error: { Error: 'States.TaskFailed', Cause: JSON.stringify({ Error: 'Swap.RolledBack', Cause: 'Terminal.StatusChecksTimeout' }) } },
      { request: req(2), error: { Error: 'States.TaskFailed', Cause: JSON.stringify({ Error: 'Swap.LockHeld', Cause: 'another swap holds the group' }) } },
      { request: req(3), execution: { status: 'SUCCEEDED', output: { outcome: 'skipped', reason: 'carries the do-not-disrupt tag' } } },
      { request: req(4), execution: { status: 'SUCCEEDED', output: { outcome: 'succeeded', replacementInstanceId: hex(9) } } },
      // A swap that ended without completing (e.g. its node refused disruption) is not a swap.
      { request: req(5), execution: { status: 'SUCCEEDED', output: { outcome: 'refused', reason: 'node runs a do-not-disrupt pod' } } },
    ];
    expect(applyResults({ wave: 4, attempts: [] }, results).attempts).toEqual([
      { instanceId: hex(1), group: 'g', wave: 4, outcome: 'rolled-back', reason: 'Swap.RolledBack: Terminal.StatusChecksTimeout' },
      { instanceId: hex(2), group: 'g', wave: 4, outcome: 'deferred', reason: 'Swap.LockHeld: another swap holds the group' },
      { instanceId: hex(3), group: 'g', wave: 4, outcome: 'skipped', reason: 'carries the do-not-disrupt tag' },
      { instanceId: hex(4), group: 'g', wave: 4, outcome: 'swapped', replacement: hex(9) },
      { instanceId: hex(5), group: 'g', wave: 4, outcome: 'skipped', reason: 'node runs a do-not-disrupt pod' },
    ]);
  });

  it('the canary stays one swap and still halts the batch when a canary after a skipped one is rolled back', () => {
    const progress: BatchProgress = {
      wave: 2,
      attempts: [
        { instanceId: hex(100), group: 'g', wave: 1, outcome: 'skipped' },
        { instanceId: hex(101), group: 'g', wave: 2, outcome: 'rolled-back', reason: 'Swap.RolledBack' },
      ],
    };
    expect(plan([group('g', 3)], { maxFailedSwaps: 5 }, progress)).toMatchObject({ action: 'halt', reason: `the canary swap of ${hex(101)} was rolled back (Swap.RolledBack)` });
  });

  it('a deferred swap (another swap held the group) is tried again and is not a failure', () => {
    const progress: BatchProgress = { wave: 1, attempts: [{ instanceId: hex(100), group: 'g', wave: 1, outcome: 'deferred', reason: 'Swap.LockHeld' }] };
    expect(plan([group('g', 1)], { maxFailedSwaps: 0 }, progress)).toMatchObject({ action: 'swap', canary: true, items: [{ request: { instanceId: hex(100) } }] });
  });

  it('does not wait for a window that opens after the batch deadline: halts with the reason', () => {
    const spec = MaintenanceWindowSchema.parse({ cron: '0 2 1 * *', durationMinutes: 60, timeZone: 'UTC' });
    const g = group('g', 2, { window: { name: 'monthly', spec } });
    const wave = planWave({ batchId: 'b', request: request(), groups: [g], progress: start, defaults, dryRun: false, now: NOW, deadline: new Date('2026-12-01T00:00:00Z') });
    expect(wave).toMatchObject({ action: 'halt', reason: "the next maintenance window opens 2026-12-01T02:00:00.000Z, after this batch's deadline 2026-12-01T00:00:00.000Z; 2 instance(s) left for a later batch" });
  });

  it('child execution names fit in 80 characters and differ between batches whose ids share a long prefix', () => {
    const long = `drift-${'eks-ng-general-20240101-a1b2c3d4'}-b08e77-20261122-`;
    const a = childExecutionName(`${long}aaaaaaaaaaaa`, 12, 'i-0123456789abcdef0');
    const b = childExecutionName(`${long}bbbbbbbbbbbb`, 12, 'i-0123456789abcdef0');
    expect(a).not.toBe(b);
    expect(a.length).toBeLessThanOrEqual(80);
    expect(a).toMatch(/^[A-Za-z0-9_-]+$/);
    fc.assert(fc.property(fc.stringMatching(/^[A-Za-z0-9_-]{1,80}$/), fc.integer({ min: 1, max: 999 }), (id, w) => childExecutionName(id, w, 'i-0123456789abcdef0').length <= 80));
  });

  it('rejects a window whose cron never matches', () => {
    expect(MaintenanceWindowSchema.safeParse({ cron: '0 0 30 2 *', durationMinutes: 60 }).success).toBe(false);
  });

  it('property: a wave never exceeds the budget, never takes two of a group, never touches do-not-disrupt or a non-InService instance, and a batch whose swaps all succeed ends', () => {
    const groupArb = fc.record({ n: fc.integer({ min: 1, max: 6 }), spot: fc.array(fc.integer({ min: 0, max: 5 })), dnd: fc.array(fc.integer({ min: 0, max: 5 })), pending: fc.array(fc.integer({ min: 0, max: 5 })) });
    fc.assert(
      fc.property(fc.array(groupArb, { minLength: 1, maxLength: 4 }), fc.oneof(fc.record({ count: fc.integer({ min: 1, max: 5 }) }), fc.record({ percent: fc.integer({ min: 1, max: 100 }) })), fc.boolean(), (specs, budget, canary) => {
        let groups = specs.map((s, i) => group('g'.repeat(i + 1), s.n, { spot: s.spot, dnd: s.dnd, states: Object.fromEntries(s.pending.map((p) => [p, 'Pending'])) }));
        const size = budgetSize(budget, groups.reduce((n, g) => n + g.desired, 0));
        let progress: BatchProgress = start;
        for (let step = 0; step < 100; step++) {
          const wave = planWave({ batchId: 'b', request: request({ groups: groups.map((g) => g.name), budget, canary }), groups, progress, defaults, dryRun: false, now: NOW });
          if (wave.action === 'done') return true;
          if (wave.action !== 'swap') return false;
          expect(wave.items.length).toBeLessThanOrEqual(canary && step === 0 ? 1 : size);
          expect(new Set(wave.items.map((i) => i.request.group)).size).toBe(wave.items.length);
          for (const item of wave.items) {
            const instance = groups.find((g) => g.name === item.request.group)!.instances.find((i) => i.instanceId === item.request.instanceId)!;
            expect(instance).toMatchObject({ doNotDisrupt: false, lifecycleState: 'InService', spot: false });
          }
          // Every swap succeeds: the old instance leaves, a Spot one takes its place.
          const swapped = new Set(wave.items.map((i) => i.request.instanceId));
          groups = groups.map((g) => ({ ...g, instances: g.instances.map((i) => (swapped.has(i.instanceId) ? { ...i, instanceId: `${i.instanceId}0`, spot: true } : i)) }));
          progress = applyResults(wave.progress, wave.items.map((i) => ({ request: i.request, execution: { status: 'SUCCEEDED', output: { outcome: 'succeeded' } } })));
        }
        return false;
      }),
      { numRuns: 200 },
    );
  });

  it('property: whatever each swap does (succeed, roll back, be refused by a held lock, skip), the batch ends, waves stay within the budget and the canary stays one until a swap succeeded', () => {
    const outcomes = ['succeeded', 'rolled-back', 'lock-held', 'skipped'] as const;
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 1, max: 3 }), fc.infiniteStream(fc.constantFrom(...outcomes)), fc.integer({ min: 0, max: 3 }), (sizes, count, stream, maxFailedSwaps) => {
        let groups = sizes.map((n, i) => group('g'.repeat(i + 1), n));
        let progress: BatchProgress = start;
        const picks = stream[Symbol.iterator]();
        for (let step = 0; step < 200; step++) {
          const wave = planWave({ batchId: 'b', request: request({ groups: groups.map((g) => g.name), budget: { count }, maxFailedSwaps }), groups, progress, defaults, dryRun: false, now: NOW });
          if (wave.action === 'done' || wave.action === 'halt') return true;
          if (wave.action !== 'swap') return false;
          const swappedBefore = progress.attempts.some((a) => a.outcome === 'swapped');
          expect(wave.items.length).toBeLessThanOrEqual(swappedBefore ? count : 1);
          expect(new Set(wave.items.map((i) => i.request.group)).size).toBe(wave.items.length);
          const results: WaveResult[] = wave.items.map((item) => {
            const outcome = picks.next().value as (typeof outcomes)[number];
            if (outcome === 'succeeded') {
              groups = groups.map((g) => ({ ...g, instances: g.instances.map((i) => (i.instanceId === item.request.instanceId ? { ...i, instanceId: `${i.instanceId}0`, spot: true } : i)) }));
              return { request: item.request, execution: { status: 'SUCCEEDED', output: { outcome: 'succeeded' } } };
            }
            if (outcome === 'skipped') return { request: item.request, execution: { status: 'SUCCEEDED', output: { outcome: 'skipped', reason: 'x' } } };
            const error = outcome === 'lock-held' ? 'Swap.LockHeld' : 'Swap.RolledBack';
            return { request: item.request, error: { Error: 'States.TaskFailed', Cause: JSON.stringify({ Error: error, Cause: 'x' }) } };
          });
          progress = applyResults(wave.progress, results);
        }
        return false;
      }),
      { numRuns: 300 },
    );
  });
});
