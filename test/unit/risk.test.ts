import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import { placeDraft } from '../../functions/ledger/pending';
import { MAX_HISTORY, type PoolRiskRecord, type RiskPolicy, type Signal, applySignal, expiredQuarantine, isQuarantined, riskScore, signalCount } from '../../functions/interruption/risk';

const policy: RiskPolicy = {
  quarantineDays: 15,
  quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false },
  insufficientCapacityMinutes: 10,
  riskHalfLifeHours: 72,
};
const POOL = 'us-east-1/use1-az1/m5.large';
const t0 = new Date('2026-11-22T10:00:00Z');
const hours = (n: number) => new Date(t0.getTime() + n * 3_600_000);
const signal = (over: Partial<Signal> = {}): Signal => ({ eventId: 'e1', at: t0, kind: 'spot-interruption', account: '111111111111', environment: 'PROD', ...over });

function apply(record: PoolRiskRecord | undefined, s: Signal, now = t0) {
  const d = applySignal(record, POOL, s, policy, now);
  return d.changed ? d.next : record;
}

describe('pool risk decisions', () => {
  it('quarantines for 15 days from the event time on a PROD Spot interruption', () => {
    const decision = applySignal(undefined, POOL, signal(), policy, hours(1));
    expect(decision).toMatchObject({ changed: true, quarantined: true, next: { quarantinedUntil: '2026-12-07T10:00:00.000Z', quarantineEventId: 'e1', version: 1 } });
  });

  it('records LAB and STAGING interruptions without quarantining', () => {
    for (const environment of ['LAB', 'STAGING'] as const) {
      const decision = applySignal(undefined, POOL, signal({ environment }), policy, t0);
      expect(decision).toMatchObject({ changed: true, quarantined: false, recordedOnly: true });
      expect(isQuarantined(decision.changed ? decision.next : undefined, t0)).toBe(false);
    }
  });

  it('follows the per-environment config: STAGING quarantines when told to', () => {
    const d = applySignal(undefined, POOL, signal({ environment: 'STAGING' }), { ...policy, quarantineByEnvironment: { PROD: true, STAGING: true, LAB: false } }, t0);
    expect(d).toMatchObject({ quarantined: true });
  });

  it('decides expiry on read from the stored timestamp, whatever TTL has or has not deleted', () => {
    const record = apply(undefined, signal());
    expect(isQuarantined(record, hours(15 * 24 - 1))).toBe(true);
    expect(isQuarantined(record, hours(15 * 24))).toBe(false);
    expect(expiredQuarantine(record!, hours(15 * 24))).toBe(true);
    expect(expiredQuarantine({ ...record!, releasedAt: hours(15 * 24).toISOString() }, hours(15 * 24 + 1))).toBe(false);
  });

  it('blocks a pool for minutes after InsufficientInstanceCapacity', () => {
    const record = apply(undefined, signal({ kind: 'insufficient-capacity', environment: 'LAB' }));
    expect(record?.capacityBlockedUntil).toBe('2026-11-22T10:10:00.000Z');
    expect(isQuarantined(record, new Date('2026-11-22T10:09:59Z'))).toBe(true);
    expect(isQuarantined(record, new Date('2026-11-22T10:10:00Z'))).toBe(false);
  });

  it('halves the risk score every half-life', () => {
    const record = apply(undefined, signal());
    expect(riskScore(record, t0, 72)).toBeCloseTo(1);
    expect(riskScore(record, hours(72), 72)).toBeCloseTo(0.5);
    expect(riskScore(record, hours(144), 72)).toBeCloseTo(0.25);
    const withRebalance = apply(record, signal({ eventId: 'e2', kind: 'rebalance' }));
    expect(riskScore(withRebalance, t0, 72)).toBeCloseTo(1.3);
  });

  it('never shortens a quarantine when an older event arrives late', () => {
    const late = apply(apply(undefined, signal({ eventId: 'new', at: hours(48) })), signal({ eventId: 'old', at: t0 }), hours(49));
    expect(late?.quarantinedUntil).toBe(new Date(hours(48).getTime() + 15 * 86_400_000).toISOString());
    expect(late?.quarantineEventId).toBe('new');
  });

  it('does not close a pool for a late interruption whose quarantine would already be over', () => {
    const d = applySignal(undefined, POOL, signal({ at: hours(-16 * 24) }), policy, t0);
    expect(d).toMatchObject({ changed: true, quarantined: false });
    expect(d.changed && d.next.quarantinedUntil).toBeUndefined();
  });

  it('ignores a signal older than the history it would have to be recognised in', () => {
    expect(applySignal(undefined, POOL, signal({ at: hours(-31 * 24) }), policy, t0)).toEqual({ changed: false, reason: 'stale' });
  });

  const signalArb = fc.record({
    eventId: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f'),
    at: fc.integer({ min: 0, max: 30 * 24 }).map(hours),
    kind: fc.constantFrom('spot-interruption' as const, 'rebalance' as const, 'insufficient-capacity' as const),
    account: fc.constantFrom('111111111111', '333333333333'),
    environment: fc.constantFrom('PROD' as const, 'STAGING' as const, 'LAB' as const),
  });

  it('is idempotent: any delivery order with any duplicates gives the same record as one delivery each', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(signalArb, { selector: (s) => s.eventId, minLength: 1, maxLength: 6 }).chain((signals) =>
          fc.tuple(fc.constant(signals), fc.shuffledSubarray([...signals, ...signals, ...signals], { minLength: signals.length * 3 }), fc.nat()),
        ),
        ([signals, shuffled, extra]) => {
        const now = hours(31 * 24);
        const once = signals.reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined);
        // Every signal up to three times, in any order.
        const deliveries = shuffled.slice(0, signals.length + (extra % (signals.length * 2 + 1)));
        for (const s of signals) if (!deliveries.includes(s)) deliveries.push(s);
        const withDuplicates = deliveries.reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined);
        // Same facts, same record, and duplicates cost no write (the version counts writes).
        expect(withDuplicates).toEqual(once);
        expect(riskScore(withDuplicates, now, 72)).toBeCloseTo(riskScore(once, now, 72));
        },
      ),
    );
  });

  describe('bounded history', () => {
    const many = (n: number, over: (i: number) => Partial<Signal> = () => ({})) =>
      Array.from({ length: n }, (_, i) => signal({ eventId: `e${String(i).padStart(3, '0')}`, at: hours(i), kind: i % 2 ? 'rebalance' : 'spot-interruption', ...over(i) }));
    const unbounded = (signals: Signal[], now: Date) => signals.reduce((sum, s) => sum + (s.kind === 'rebalance' ? 0.3 : s.kind === 'insufficient-capacity' ? 0.5 : 1) * 0.5 ** ((now.getTime() - s.at.getTime()) / (72 * 3_600_000)), 0);

    it(`keeps the newest ${MAX_HISTORY} signals one by one and sums up the others, without losing any of their weight`, () => {
      const signals = many(20);
      const now = hours(20);
      const record = signals.reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined)!;
      expect(record.history.map((h) => h.eventId)).toEqual(signals.slice(-MAX_HISTORY).map((s) => s.eventId));
      expect(record.forgotten).toMatchObject({ count: 20 - MAX_HISTORY, eventId: signals[20 - MAX_HISTORY - 1]!.eventId });
      expect(signalCount(record)).toBe(20);
      expect(riskScore(record, now, 72)).toBeCloseTo(unbounded(signals, now), 10);
      expect(record.version).toBe(20);
    });

    it('cannot tell a signal at or before the newest forgotten one from those: forgotten, until the caller says it is new', () => {
      const now = hours(20);
      const record = many(10).reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined)!;
      const late = signal({ eventId: 'late', at: hours(1.5), kind: 'rebalance', seq: 42 });
      expect(applySignal(record, POOL, late, policy, now)).toEqual({ changed: false, reason: 'stale', forgotten: true });
      // A redelivery of a forgotten one looks the same.
      expect(applySignal(record, POOL, many(10)[0]!, policy, now)).toEqual({ changed: false, reason: 'stale', forgotten: true });
      const absorbed = applySignal(record, POOL, late, policy, now, { late: 'new' });
      expect(absorbed).toMatchObject({ changed: true, next: { version: record.version + 1, history: record.history } });
      const next = absorbed.changed ? absorbed.next : record;
      expect(next.forgotten).toMatchObject({ count: record.forgotten!.count + 1, eventId: record.forgotten!.eventId, at: record.forgotten!.at, fromSeq: 42 });
      expect(riskScore(next, now, 72)).toBeCloseTo(riskScore(record, now, 72) + 0.3 * 0.5 ** (18.5 / 72), 10);
      // Still forgotten afterwards: its redelivery is looked up again, never applied twice by the record.
      expect(applySignal(next, POOL, late, policy, now)).toEqual({ changed: false, reason: 'stale', forgotten: true });
    });

    it('still closes the pool for a late PROD interruption the caller found to be new', () => {
      const now = hours(20);
      const rebalances = many(10, () => ({ kind: 'rebalance' }));
      const record = rebalances.reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined)!;
      const d = applySignal(record, POOL, signal({ eventId: 'late-spot', at: hours(2) }), policy, now, { late: 'new' });
      expect(d).toMatchObject({ changed: true, quarantined: true, next: { quarantinedUntil: new Date(hours(2).getTime() + 15 * 86_400_000).toISOString(), quarantineEventId: 'late-spot' } });
    });

    it('notes where the ledger entries of forgotten signals start (their earliest seq)', () => {
      const now = hours(20);
      const record = many(MAX_HISTORY + 3, (i) => ({ seq: 100 + i })).reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined)!;
      expect(record.forgotten?.fromSeq).toBe(100);
      expect(record.history.every((h) => h.seq !== undefined)).toBe(true);
    });

    it('marks a summary holding interruption signals recorded before their seq was noted (their markers find them)', () => {
      const now = hours(20);
      const build = (over: (i: number) => Partial<Signal>) => many(MAX_HISTORY + 1, over).reduce<PoolRiskRecord | undefined>((r, s) => apply(r, s, now), undefined)!;
      expect(build((i) => ({ seq: i + 1 })).forgotten?.marked).toBeUndefined();
      expect(build(() => ({})).forgotten).toMatchObject({ marked: true });
      // The gatekeeper's capacity signals have markers of their own, which the ingest never looks up.
      expect(build(() => ({ kind: 'insufficient-capacity' })).forgotten?.marked).toBeUndefined();
    });

    it('keeps every signal a redelivery could still bring, whatever the half-life and quarantine (15 days)', () => {
      const short = { ...policy, riskHalfLifeHours: 1, quarantineDays: 1 };
      expect(applySignal(undefined, POOL, signal({ at: hours(-14 * 24) }), short, t0)).toMatchObject({ changed: true });
      expect(applySignal(undefined, POOL, signal({ at: hours(-16 * 24) }), short, t0)).toEqual({ changed: false, reason: 'stale' });
    });

    it('counts every signal once whatever the order and the duplicates, given a ledger that says which ones it recorded', () => {
      fc.assert(
        fc.property(
          fc.uniqueArray(signalArb, { selector: (s) => s.eventId, minLength: 1, maxLength: 6 }).chain((base) => {
            // Up to 18 distinct signals: three copies of each base one under new ids and times.
            const signals = base.flatMap((s, i) => [0, 1, 2].map((k) => ({ ...s, eventId: `${s.eventId}${k}`, at: hours(s.at.getTime() / 3_600_000 - t0.getTime() / 3_600_000 + k * 0.5 + i / 10) })));
            return fc.tuple(fc.constant(signals), fc.shuffledSubarray([...signals, ...signals], { minLength: signals.length * 2 }));
          }),
          ([signals, deliveries]) => {
            const now = hours(31 * 24);
            const recorded = new Set<string>();
            let record: PoolRiskRecord | undefined;
            for (const s of deliveries) {
              let d = applySignal(record, POOL, s, policy, now);
              if (!d.changed && d.reason === 'stale' && d.forgotten && !recorded.has(s.eventId)) d = applySignal(record, POOL, s, policy, now, { late: 'new' });
              if (d.changed) {
                expect(recorded.has(s.eventId)).toBe(false); // never applied twice
                recorded.add(s.eventId);
                record = d.next;
              }
            }
            // Older than the 30-day horizon (10 half-lives): ignored, as before.
            const kept = signals.filter((s) => s.at.getTime() >= now.getTime() - 30 * 86_400_000);
            expect(recorded.size).toBe(kept.length);
            expect(signalCount(record)).toBe(kept.length);
            expect(record?.history.length ?? 0).toBeLessThanOrEqual(MAX_HISTORY);
            expect(riskScore(record, now, 72)).toBeCloseTo(unbounded(kept, now), 8);
          },
        ),
      );
    });

    it('keeps a full record, with the ledger entry it carries, within 2 KB (two write units): UUID event ids, the longest values', () => {
      const now = hours(20);
      const ids = Array.from({ length: 12 }, () => randomUUID());
      let record: PoolRiskRecord | undefined;
      for (const [i, eventId] of ids.entries()) {
        record = apply(record, signal({ eventId, at: hours(i), kind: 'insufficient-capacity', environment: 'STAGING', account: '999999999999', seq: 123_456 + i }), now);
      }
      record = apply(record, signal({ eventId: randomUUID(), at: hours(19), environment: 'STAGING', seq: 999_999 }), now);
      const full: PoolRiskRecord = {
        ...record!,
        pool: 'ap-southeast-2/apse2-az3/m7gd.metal-48xl',
        quarantinedUntil: hours(24 * 15).toISOString(),
        quarantineEventId: randomUUID(),
        quarantineReason: 'STAGING spot interruption in account 999999999999',
        capacityBlockedUntil: hours(21).toISOString(),
        releasedAt: hours(20).toISOString(),
        version: 999_999,
        pending: placeDraft(
          'fleet',
          {
            actor: 'interruption-ingest',
            action: 'pool.interruption-recorded',
            subject: 'ap-southeast-2/apse2-az3/m7gd.metal-48xl',
            reason: 'spot-interruption of i-0123456789abcdef0 in STAGING account 999999999999: recorded, STAGING does not quarantine',
            eventId: randomUUID(),
            before: { quarantinedUntil: hours(24 * 15).toISOString(), riskScore: 12.3456, interruptions: 12 },
            after: { quarantinedUntil: hours(24 * 15).toISOString(), riskScore: 13.3456, interruptions: 13, instanceId: 'i-0123456789abcdef0' },
          },
          { seq: 999_998, hash: 'f'.repeat(64) },
          now,
        ),
      };
      expect(full.history).toHaveLength(MAX_HISTORY);
      expect(dynamoItemBytes(full)).toBeLessThanOrEqual(2048);
    });
  });
});

/** An item's size as DynamoDB bills it: attribute names and values (numbers ~1 byte per 2 digits), maps and lists 3 bytes plus their members. */
function dynamoItemBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(String(Math.abs(value)).replace(/[.-]/g, '').length / 2) + 1;
  if (Array.isArray(value)) return 3 + value.reduce((sum: number, v) => sum + 1 + dynamoItemBytes(v), 0);
  return 3 + Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).reduce((sum, [k, v]) => sum + Buffer.byteLength(k) + 1 + dynamoItemBytes(v), 0);
}
