import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type PoolFacts, isAllowed, rank } from '../../functions/gatekeeper/decisions';
import { type Pool, poolKey } from '../../functions/interruption/pool';
import { type HistoryEntry, type PoolRiskRecord, type RiskPolicy } from '../../functions/interruption/risk';

const NOW = new Date('2026-11-22T10:00:00.000Z');
const HOUR = 3_600_000;
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs).toISOString();
const policy: RiskPolicy = {
  quarantineDays: 15,
  quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false },
  insufficientCapacityMinutes: 10,
  riskHalfLifeHours: 72,
};

const pool = (azId: string, instanceType = 'm5.large', region = 'us-east-1'): Pool => ({ region, azId, instanceType });
const record = (p: Pool, fields: Partial<PoolRiskRecord> = {}): PoolRiskRecord => ({ pool: poolKey(p), history: [], version: 1, ...fields });
const interruption = (hoursAgo: number, eventId = `e-${hoursAgo}`) => ({
  eventId,
  at: at(-hoursAgo * HOUR),
  kind: 'spot-interruption' as const,
  account: '222222222222',
  environment: 'STAGING' as const,
});
const keys = (ranked: { key: string }[]) => ranked.map((r) => r.key);

describe('isAllowed', () => {
  it('should allow a pool that Fleetwarden has never seen', () => {
    expect(isAllowed({}, NOW)).toEqual({ allowed: true, reason: 'open' });
  });

  it('should close a pool quarantined after a PROD interruption, saying until when and why', () => {
    // Prepare
    const p = pool('use1-az1');
    const facts = {
      record: record(p, {
        quarantinedUntil: at(5 * 24 * HOUR),
        quarantineEventId: 'evt-1',
        quarantineReason: 'PROD spot interruption in account 111111111111',
      }),
    };
    // Act
    const admission = isAllowed(facts, NOW);
    // Assess
    expect(admission).toEqual({
      allowed: false,
      reason: `quarantined until ${at(5 * 24 * HOUR)} after PROD spot interruption in account 111111111111 (event evt-1)`,
      reopensAt: new Date(at(5 * 24 * HOUR)),
    });
  });

  it('should close a pool for the minutes of an InsufficientInstanceCapacity block', () => {
    const admission = isAllowed({ record: record(pool('use1-az1'), { capacityBlockedUntil: at(10 * 60_000) }) }, NOW);
    expect(admission).toEqual({ allowed: false, reason: `blocked until ${at(10 * 60_000)} after InsufficientInstanceCapacity`, reopensAt: new Date(at(10 * 60_000)) });
  });

  it('should name both closures and reopen at the later one when a quarantined pool is also blocked', () => {
    const admission = isAllowed(
      { record: record(pool('use1-az1'), { quarantinedUntil: at(HOUR), quarantineReason: 'PROD spot interruption in account 1', capacityBlockedUntil: at(2 * HOUR) }) },
      NOW,
    );
    expect(admission.allowed).toBe(false);
    expect(admission.reason).toBe(`quarantined until ${at(HOUR)} after PROD spot interruption in account 1 and blocked until ${at(2 * HOUR)} after InsufficientInstanceCapacity`);
    expect(admission.reopensAt).toEqual(new Date(at(2 * HOUR)));
  });

  it('should allow a pool whose quarantine has ended even though TTL has not deleted the item yet', () => {
    // Prepare: ended an hour ago; the item's TTL passed a day ago and DynamoDB has not acted on it.
    const stale = record(pool('use1-az1'), { quarantinedUntil: at(-HOUR), capacityBlockedUntil: at(-HOUR), expiresAt: Math.floor(NOW.getTime() / 1000) - 86_400 });
    // Act + Assess
    expect(isAllowed({ record: stale }, NOW)).toEqual({ allowed: true, reason: `open: its quarantine ended at ${at(-HOUR)}` });
  });

  it('should decide expiry on read from the stored timestamp alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: -30 * 24, max: 30 * 24 }), fc.integer({ min: -30 * 24, max: 30 * 24 }), (untilHours, nowHours) => {
        const r = record(pool('use1-az1'), { quarantinedUntil: at(untilHours * HOUR), expiresAt: 0 });
        const admission = isAllowed({ record: r }, new Date(NOW.getTime() + nowHours * HOUR));
        expect(admission.allowed).toBe(nowHours >= untilHours);
      }),
    );
  });
});

describe('rank', () => {
  const rankAt = (candidates: PoolFacts[]) => rank(candidates, NOW, policy);

  it('should put the cheapest pool first when nothing else tells the pools apart', () => {
    const ranked = rankAt([
      { pool: pool('use1-az1'), spotPrice: 0.05 },
      { pool: pool('use1-az2'), spotPrice: 0.04 },
      { pool: pool('use1-az3'), spotPrice: 0.06 },
    ]);
    expect(keys(ranked)).toEqual(['us-east-1/use1-az2/m5.large', 'us-east-1/use1-az1/m5.large', 'us-east-1/use1-az3/m5.large']);
    expect(ranked[0]).toMatchObject({ allowed: true, score: 1, components: { risk: 0, spotPrice: 0.04, pricePremium: 0, placementPenalty: 0, penalty: 0 } });
    expect(ranked[1]!.components.pricePremium).toBeCloseTo(0.25);
    expect(ranked[1]!.reason).toBe('open; risk 0.00, spot $0.05/h (25 % above the cheapest), no placement score');
  });

  it('should prefer a pricier pool when the cheaper one was interrupted recently', () => {
    const cheap = pool('use1-az1');
    const ranked = rankAt([
      { pool: cheap, spotPrice: 0.04, record: record(cheap, { history: [interruption(1)] }) },
      { pool: pool('use1-az2'), spotPrice: 0.045 },
    ]);
    expect(keys(ranked)).toEqual(['us-east-1/use1-az2/m5.large', 'us-east-1/use1-az1/m5.large']);
    expect(ranked[1]!.components.risk).toBeCloseTo(0.5 ** (1 / 72));
  });

  it('should let an old, decayed interruption count less than a price difference', () => {
    const cheap = pool('use1-az1');
    const ranked = rankAt([
      { pool: cheap, spotPrice: 0.04, record: record(cheap, { history: [interruption(30 * 24)] }) },
      { pool: pool('use1-az2'), spotPrice: 0.05 },
    ]);
    expect(ranked[0]!.key).toBe(poolKey(cheap));
  });

  it('should prefer the higher placement score when prices and risk are equal', () => {
    const ranked = rankAt([
      { pool: pool('use1-az1'), spotPrice: 0.04, placementScore: 3 },
      { pool: pool('use1-az2'), spotPrice: 0.04, placementScore: 9 },
    ]);
    expect(keys(ranked)).toEqual(['us-east-1/use1-az2/m5.large', 'us-east-1/use1-az1/m5.large']);
    expect(ranked[1]!.components.placementPenalty).toBeCloseTo(7 / 9);
  });

  it('should never let a pool with an unknown price win over pools with known prices', () => {
    const ranked = rankAt([
      { pool: pool('use1-az1') },
      { pool: pool('use1-az2'), spotPrice: 0.04 },
      { pool: pool('use1-az3'), spotPrice: 0.08 },
    ]);
    expect(keys(ranked).at(-1)).toBe('us-east-1/use1-az1/m5.large');
    expect(ranked.at(-1)!.components.pricePremium).toBe(2);
    expect(ranked.at(-1)!.reason).toContain('no known spot price');
  });

  it('should count an unknown placement score as the worst when other pools have one, and as nothing when none has', () => {
    const someKnown = rankAt([{ pool: pool('use1-az1'), placementScore: 1 }, { pool: pool('use1-az2') }]);
    expect(someKnown.map((r) => r.components.placementPenalty)).toEqual([1, 1]);
    const noneKnown = rankAt([{ pool: pool('use1-az1') }, { pool: pool('use1-az2') }]);
    expect(noneKnown.map((r) => [r.key, r.score])).toEqual([
      ['us-east-1/use1-az1/m5.large', 1],
      ['us-east-1/use1-az2/m5.large', 1],
    ]);
  });

  it('should let a much better placement score outweigh a moderate price premium, and not a large one', () => {
    // Penalties add up: placement 10 vs 1 is worth one whole premium (paying twice the cheapest).
    const ranked = rankAt([
      { pool: pool('use1-az1'), spotPrice: 0.04, placementScore: 1 },
      { pool: pool('use1-az2'), spotPrice: 0.06, placementScore: 10 },
      { pool: pool('use1-az3'), spotPrice: 0.1, placementScore: 10 },
    ]);
    expect(ranked.map((r) => [r.key, Number(r.components.penalty.toFixed(4))])).toEqual([
      ['us-east-1/use1-az2/m5.large', 0.5], // 50 % premium, placement 10
      ['us-east-1/use1-az1/m5.large', 1], // the cheapest, placement 1
      ['us-east-1/use1-az3/m5.large', 1.5], // 150 % premium, placement 10
    ]);
    expect(ranked[0]!.reason).toBe('open; risk 0.00, spot $0.06/h (50 % above the cheapest), placement score 10/10');
  });

  it('should let a fresh interruption outweigh a better placement score', () => {
    const scored = pool('use1-az1');
    const ranked = rankAt([
      { pool: scored, spotPrice: 0.04, placementScore: 9, record: record(scored, { history: [interruption(0)] }) },
      { pool: pool('use1-az2'), spotPrice: 0.04, placementScore: 5 },
    ]);
    expect(keys(ranked)).toEqual(['us-east-1/use1-az2/m5.large', 'us-east-1/use1-az1/m5.large']);
  });

  it('should never let a placement score of 10 put a quarantined pool ahead of an open one', () => {
    const quarantined = pool('use1-az1');
    const ranked = rankAt([
      { pool: quarantined, spotPrice: 0.01, placementScore: 10, record: record(quarantined, { quarantinedUntil: at(HOUR), quarantineReason: 'PROD spot interruption in account 1' }) },
      { pool: pool('use1-az2'), spotPrice: 0.5, placementScore: 1, record: record(pool('use1-az2'), { history: [interruption(0)] }) },
    ]);
    expect(ranked.map((r) => [r.key, r.allowed])).toEqual([
      ['us-east-1/use1-az2/m5.large', true],
      ['us-east-1/use1-az1/m5.large', false],
    ]);
    expect(ranked[1]!.reason).toBe(`quarantined until ${at(HOUR)} after PROD spot interruption in account 1`);
  });

  it('should rank a region whose placement scores were unavailable by risk and price, saying so', () => {
    // Prepare: GetSpotPlacementScores was denied in us-east-1.
    const unavailable = 'GetSpotPlacementScores denied (UnauthorizedOperation)';
    const cheap = pool('use1-az1');
    // Act
    const ranked = rankAt([
      { pool: cheap, spotPrice: 0.04, placementUnavailable: unavailable, record: record(cheap, { history: [interruption(72)] }) },
      { pool: pool('use1-az2'), spotPrice: 0.05, placementUnavailable: unavailable },
      { pool: pool('use1-az3'), spotPrice: 0.045, placementUnavailable: unavailable },
    ]);
    // Assess: no placement penalty for anyone; the order is risk (0.5 after one half-life) + price.
    expect(keys(ranked)).toEqual(['us-east-1/use1-az3/m5.large', 'us-east-1/use1-az2/m5.large', 'us-east-1/use1-az1/m5.large']);
    expect(ranked.map((r) => r.components.placementPenalty)).toEqual([0, 0, 0]);
    expect(ranked[0]!.components.placementUnavailable).toBe(unavailable);
    expect(ranked[0]!.reason).toBe(
      'open; risk 0.00, spot $0.045/h (13 % above the cheapest), no placement score (placement scores unavailable: GetSpotPlacementScores denied (UnauthorizedOperation); ranked by risk and price)',
    );
  });

  it('should compare placement scores within a region: a region without scores is not penalised for another region\'s', () => {
    const ranked = rankAt([
      { pool: pool('use1-az1'), spotPrice: 0.04, placementScore: 8 },
      { pool: pool('use1-az2'), spotPrice: 0.04 }, // us-east-1 answered without this AZ: the worst
      { pool: pool('euw1-az1', 'm5.large', 'eu-west-1'), spotPrice: 0.04, placementUnavailable: 'GetSpotPlacementScores throttled (RequestLimitExceeded)' },
      { pool: pool('usw2-az1', 'm5.large', 'us-west-2'), spotPrice: 0.04 }, // no scores for us-west-2
      { pool: pool('aps1-az1', 'm5.large', 'ap-south-1'), spotPrice: 0.04, placementOmitted: true }, // ap-south-1 scored only other AZs
    ]);
    expect(Object.fromEntries(ranked.map((r) => [r.key, Number(r.components.placementPenalty.toFixed(4))]))).toEqual({
      'us-east-1/use1-az1/m5.large': Number((2 / 9).toFixed(4)),
      'us-east-1/use1-az2/m5.large': 1,
      'eu-west-1/euw1-az1/m5.large': 0,
      'us-west-2/usw2-az1/m5.large': 0,
      'ap-south-1/aps1-az1/m5.large': 1,
    });
  });

  it('should put closed pools after open ones, soonest to reopen first, each with its reason', () => {
    // Prepare: the closed pools are the cheapest and best placed; they still come last.
    const quarantined = pool('use1-az1');
    const blocked = pool('use1-az2');
    const ranked = rankAt([
      { pool: quarantined, spotPrice: 0.01, placementScore: 10, record: record(quarantined, { quarantinedUntil: at(24 * HOUR), quarantineReason: 'PROD spot interruption in account 1' }) },
      { pool: blocked, spotPrice: 0.01, placementScore: 10, record: record(blocked, { capacityBlockedUntil: at(5 * 60_000) }) },
      { pool: pool('use1-az3'), spotPrice: 0.09, placementScore: 2 },
    ]);
    expect(ranked.map((r) => [r.key, r.allowed, r.reopensAt?.toISOString()])).toEqual([
      ['us-east-1/use1-az3/m5.large', true, undefined],
      ['us-east-1/use1-az2/m5.large', false, at(5 * 60_000)],
      ['us-east-1/use1-az1/m5.large', false, at(24 * HOUR)],
    ]);
    expect(ranked[1]!.reason).toBe(`blocked until ${at(5 * 60_000)} after InsufficientInstanceCapacity`);
    // Prices are relative to the cheapest open pool, so the closed ones are not a reference.
    expect(ranked[0]!.components.pricePremium).toBe(0);
  });

  it('should break ties by pool key', () => {
    const ranked = rankAt([{ pool: pool('use1-az2', 'c5.large') }, { pool: pool('use1-az1', 'm5.large') }, { pool: pool('use1-az1', 'c5.large') }]);
    expect(keys(ranked)).toEqual(['us-east-1/use1-az1/c5.large', 'us-east-1/use1-az1/m5.large', 'us-east-1/use1-az2/c5.large']);
  });

  it('should explain the saving against On-Demand without letting it change the order', () => {
    const [best] = rankAt([{ pool: pool('use1-az1'), spotPrice: 0.03, onDemandPrice: 0.096 }]);
    expect(best!.components.savingsVsOnDemand).toBeCloseTo(0.6875);
    expect(best!.score).toBe(1);
  });

  it('should follow the weights it is given', () => {
    const candidates = [
      { pool: pool('use1-az1'), spotPrice: 0.04, placementScore: 2 },
      { pool: pool('use1-az2'), spotPrice: 0.06, placementScore: 10 },
    ];
    expect(rank(candidates, NOW, policy, { risk: 1, price: 1, placement: 0 })[0]!.key).toBe('us-east-1/use1-az1/m5.large');
    expect(rank(candidates, NOW, policy, { risk: 1, price: 0.1, placement: 1 })[0]!.key).toBe('us-east-1/use1-az2/m5.large');
    expect(() => rank(candidates, NOW, policy, { risk: -1, price: 1, placement: 1 })).toThrow(/risk must be a finite number/);
  });

  it('should refuse a pool that appears twice among the candidates', () => {
    expect(() => rankAt([{ pool: pool('use1-az1') }, { pool: pool('use1-az1'), spotPrice: 1 }])).toThrow(/pool us-east-1\/use1-az1\/m5.large appears more than once/);
  });

  describe('properties', () => {
    const poolArb = fc.record({
      region: fc.constantFrom('us-east-1', 'eu-west-1'),
      azId: fc.constantFrom('use1-az1', 'use1-az2', 'use1-az4', 'euw1-az3'),
      instanceType: fc.constantFrom('m5.large', 'c5.large', 'r6i.xlarge'),
    });
    const offsetArb = fc.integer({ min: -20 * 24, max: 20 * 24 }).map((hours) => at(hours * HOUR));
    const historyArb = fc.array(
      fc.record({
        eventId: fc.uuid(),
        at: fc.integer({ min: 0, max: 60 * 24 }).map((hours) => at(-hours * HOUR)),
        kind: fc.constantFrom('spot-interruption' as const, 'rebalance' as const, 'insufficient-capacity' as const),
        account: fc.constant('111111111111'),
        environment: fc.constantFrom('PROD' as const, 'STAGING' as const, 'LAB' as const),
      }),
      { maxLength: 4 },
    );
    const factsArb: fc.Arbitrary<PoolFacts> = fc
      .record({
        pool: poolArb,
        quarantinedUntil: fc.option(offsetArb, { nil: undefined }),
        capacityBlockedUntil: fc.option(offsetArb, { nil: undefined }),
        history: fc.oneof(fc.constant<HistoryEntry[]>([]), historyArb),
        // Few distinct values, so that ties (which only the pool key breaks) are common.
        spotPrice: fc.option(fc.oneof(fc.constantFrom(0.02, 0.04), fc.double({ min: 0.001, max: 5, noNaN: true })), { nil: undefined, freq: 2 }),
        placementScore: fc.option(fc.constantFrom(1, 5, 10), { nil: undefined, freq: 2 }),
        placementUnavailable: fc.option(fc.constant('GetSpotPlacementScores throttled (RequestLimitExceeded)'), { nil: undefined, freq: 3 }),
        placementOmitted: fc.option(fc.boolean(), { nil: undefined }),
      })
      .map(({ pool: p, quarantinedUntil, capacityBlockedUntil, history, ...market }) => ({
        pool: p,
        record: record(p, { quarantinedUntil, capacityBlockedUntil, history }),
        ...market,
      }));
    const candidatesArb = fc.uniqueArray(factsArb, { selector: (f) => poolKey(f.pool), maxLength: 12 });

    it('should never rank a closed pool above an open one', () => {
      fc.assert(
        fc.property(candidatesArb, (candidates) => {
          const ranked = rankAt(candidates);
          const allowed = ranked.map((r) => r.allowed);
          expect(allowed).toEqual([...allowed].sort((a, b) => Number(b) - Number(a)));
          for (const r of ranked) expect(r.allowed).toBe(isAllowed(candidates.find((c) => poolKey(c.pool) === r.key)!, NOW).allowed);
        }),
      );
    });

    it('should rank the same candidates the same way whatever order they come in', () => {
      fc.assert(
        fc.property(
          candidatesArb.chain((candidates) => fc.tuple(fc.constant(candidates), fc.shuffledSubarray(candidates, { minLength: candidates.length, maxLength: candidates.length }))),
          ([candidates, shuffled]) => {
            expect(rankAt(shuffled)).toEqual(rankAt(candidates));
          },
        ),
      );
    });

    it('should score every pool between 0 and 1 and order open pools by score', () => {
      fc.assert(
        fc.property(candidatesArb, (candidates) => {
          const ranked = rankAt(candidates);
          for (const r of ranked) expect(r.score > 0 && r.score <= 1).toBe(true);
          const open = ranked.filter((r) => r.allowed).map((r) => r.score);
          expect(open).toEqual([...open].sort((a, b) => b - a));
        }),
      );
    });
  });
});
