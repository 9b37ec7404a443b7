import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PoolRiskRecord, type RiskPolicy, type Signal, applySignal, expiredQuarantine, isQuarantined, riskScore } from '../../functions/interruption/risk';

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
});
