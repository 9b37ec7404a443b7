import { DescribeAvailabilityZonesCommand, EC2Client, EC2ServiceException } from '@aws-sdk/client-ec2';
import { beforeAll, describe, expect, it } from 'vitest';
import { Ec2PlacementScores, Ec2SpotPriceSource } from '../../functions/gatekeeper/aws';
import { Gatekeeper, type SpotPriceSource } from '../../functions/gatekeeper/gatekeeper';
import { CachedPlacementScores, type PlacementDegraded, type PlacementScoreSource } from '../../functions/gatekeeper/placement-scores';
import { swapGatekeeper } from '../../functions/gatekeeper/swap-gatekeeper';
import { type Pool, poolKey } from '../../functions/interruption/pool';
import { DynamoPoolRiskStore, type TransactionalPoolRiskStore } from '../../functions/interruption/pool-store';
import { type PoolRiskRecord, type RiskPolicy, type Signal, applySignal } from '../../functions/interruption/risk';
import type { LedgerDraft } from '../../functions/ledger/chain';
import { type AppendOptions, DynamoLedger, type LedgerWriter } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { freshStack } from '../support';

const policy: RiskPolicy = {
  quarantineDays: 15,
  quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false },
  insufficientCapacityMinutes: 7,
  riskHalfLifeHours: 72,
};
const T0 = new Date('2026-11-22T10:00:00.000Z');
const MINUTE = 60_000;
const m5 = (azId: string, region = 'us-east-1'): Pool => ({ region, azId, instanceType: 'm5.large' });

/** moto's us-east-1: zone names map to IDs out of order, as in a real account. */
const MOTO_US_EAST_1 = { 'us-east-1a': 'use1-az6', 'us-east-1b': 'use1-az1', 'us-east-1c': 'use1-az2', 'us-east-1d': 'use1-az4', 'us-east-1e': 'use1-az3', 'us-east-1f': 'use1-az5' };
/** moto's constant Spot price for every offered pool (its history is one 2006 entry per pool). */
const MOTO_SPOT_PRICE = 0.00001;

let stack: LocalStack;
let store: DynamoPoolRiskStore;
let chains = 0;

/** A clock the test moves by hand. */
function manualClock(start = T0) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

function newLedger() {
  return new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain: `gatekeeper-${++chains}` });
}

async function ledgerEntries(ledger: DynamoLedger) {
  const items: Record<string, unknown>[] = [];
  for await (const item of ledger.entries()) items.push(item);
  return items;
}

/** Moto's prices, counting the calls: one per region. */
class CountedSpotPrices implements SpotPriceSource {
  readonly calls: [string, string[]][] = [];
  constructor(private readonly inner: SpotPriceSource) {}
  prices(region: string, instanceTypes: string[]) {
    this.calls.push([region, [...instanceTypes].sort()]);
    return this.inner.prices(region, instanceTypes);
  }
}

/**
 * moto does not implement GetSpotPlacementScores, so the ranking test scores AZs through this
 * in-test implementation of the port; the EC2 adapter is shown degrading against moto below, and
 * answered by a middleware on the real SDK client in the swapGatekeeper tests.
 */
class FixedPlacementScores implements PlacementScoreSource {
  readonly calls: [string, string[]][] = [];
  constructor(private readonly byRegion: Record<string, Record<string, number>>) {}
  async scores(region: string, instanceTypes: readonly string[]) {
    this.calls.push([region, [...instanceTypes].sort()]);
    return { byAzId: new Map(Object.entries(this.byRegion[region] ?? {})) };
  }
}

/** GetSpotPlacementScores on the shared EC2 client of a region answered here; every other call goes to moto. */
function answerPlacementScores(region: string, answer: (input: Record<string, unknown>) => unknown) {
  const client = awsClient(EC2Client, { region });
  const asked: Record<string, unknown>[] = [];
  const name = `placement-${Math.random()}`;
  client.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName !== 'GetSpotPlacementScoresCommand') return next(args);
      asked.push(args.input as Record<string, unknown>);
      const output = answer(args.input as Record<string, unknown>);
      if (output instanceof Error) throw output;
      return { output: output as never, response: {} };
    },
    { step: 'initialize', name, priority: 'low' },
  );
  return { asked, done: () => client.middlewareStack.remove(name) };
}

beforeAll(async () => {
  stack = await freshStack();
  store = new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable'));
});

describe('Ec2SpotPriceSource (moto)', () => {
  it('should see moto name its us-east-1 zones with AZ IDs out of order', async () => {
    const out = await awsClient(EC2Client, { region: 'us-east-1' }).send(new DescribeAvailabilityZonesCommand({}));
    expect(Object.fromEntries((out.AvailabilityZones ?? []).map((z) => [z.ZoneName, z.ZoneId]))).toEqual(MOTO_US_EAST_1);
  });

  it('should key the newest Spot price of each offered pool by AZ ID, not by zone name', async () => {
    // Act
    const prices = await new Ec2SpotPriceSource().prices('us-east-1', ['m5.large', 'c5.large']);
    // Assess: moto offers neither type in us-east-1e (use1-az3), and prices every pool the same.
    const azIds = ['use1-az6', 'use1-az1', 'use1-az2', 'use1-az4', 'use1-az5'];
    const expected = azIds.flatMap((azId) => ['c5.large', 'm5.large'].map((instanceType) => [poolKey({ region: 'us-east-1', azId, instanceType }), MOTO_SPOT_PRICE] as const));
    expect(new Map([...prices].sort())).toEqual(new Map(expected.sort()));
  });

  it('should answer an empty map for no instance types without calling EC2', async () => {
    expect(await new Ec2SpotPriceSource({ clientFor: () => undefined as unknown as EC2Client }).prices('us-east-1', [])).toEqual(new Map());
  });
});

describe('Ec2PlacementScores (moto)', () => {
  it('should degrade to "no scores", saying why, because moto does not implement GetSpotPlacementScores', async () => {
    // Act
    const told: PlacementDegraded[] = [];
    const api = new Ec2PlacementScores();
    const source = new CachedPlacementScores(api, { onDegraded: (event) => told.push(event) });
    const answer = await source.scores('us-east-1', ['m5.large', 'c5.large', 'r6i.large']);
    // Assess: moto's HTML 500 page is a failure, remembered for a minute.
    expect(answer).toEqual({ byAzId: new Map(), unavailable: expect.stringMatching(/^GetSpotPlacementScores failed \(.+\)$/) });
    expect(told).toMatchObject([{ region: 'us-east-1', instanceTypes: ['c5.large', 'm5.large', 'r6i.large'], failure: 'failed' }]);
    await expect(api.fetch('us-east-1', ['m5.large'])).rejects.toMatchObject({ $metadata: { httpStatusCode: 500 } });
  });
});

describe('Gatekeeper (moto)', () => {
  it('should rank pools from their records in the table, moto prices and placement scores, best first', async () => {
    // Prepare: a PROD quarantine in use1-az2, an interruption three days ago (one half-life) in use1-az4.
    const clock = manualClock();
    const signal = (eventId: string, at: Date, environment: Signal['environment']): Signal => ({ eventId, at, kind: 'spot-interruption', account: '111111111111', environment });
    for (const [pool, s] of [
      [m5('use1-az2'), signal('rank-prod', T0, 'PROD')],
      [m5('use1-az4'), signal('rank-staging', new Date(T0.getTime() - 72 * 3_600_000), 'STAGING')],
    ] as const) {
      const decision = applySignal(await store.get(poolKey(pool)), poolKey(pool), s, policy, clock.now());
      if (decision.changed) await store.put(decision.next);
    }
    const prices = new CountedSpotPrices(new Ec2SpotPriceSource({ clock: clock.now }));
    const placement = new FixedPlacementScores({ 'us-east-1': { 'use1-az6': 9, 'use1-az1': 4 }, 'eu-west-1': { 'euw1-az1': 7 } });
    const gatekeeper = new Gatekeeper({ store, prices, placementScores: placement, ledger: newLedger(), policy, clock: clock.now });

    // Act: use1-az3 offers no m5.large in moto, so it has no price; euw1-az3 is eu-west-1a.
    const ranked = await gatekeeper.rank([m5('use1-az1'), m5('use1-az2'), m5('use1-az3'), m5('use1-az4'), m5('use1-az6'), m5('euw1-az3', 'eu-west-1'), m5('use1-az1')]);

    // Assess
    expect(ranked.map((r) => [r.key, r.allowed, Number(r.components.penalty.toFixed(4))])).toEqual([
      ['us-east-1/use1-az6/m5.large', true, Number((1 / 9).toFixed(4))], // placement 9
      ['us-east-1/use1-az1/m5.large', true, Number((6 / 9).toFixed(4))], // placement 4
      ['eu-west-1/euw1-az3/m5.large', true, 1], // not among eu-west-1's scored AZs: counts as the worst
      ['us-east-1/use1-az4/m5.large', true, 1.5], // risk 0.5, placement unknown
      ['us-east-1/use1-az3/m5.large', true, 2], // no price (not offered), placement unknown
      ['us-east-1/use1-az2/m5.large', false, 2], // closed, whatever its score (risk 1, placement unknown)
    ]);
    expect(ranked[0]!.components).toMatchObject({ spotPrice: MOTO_SPOT_PRICE, pricePremium: 0, placementScore: 9 });
    expect(ranked[5]!.reason).toBe(`quarantined until ${new Date(T0.getTime() + 15 * 86_400_000).toISOString()} after PROD spot interruption in account 111111111111 (event rank-prod)`);
    expect(prices.calls.sort()).toEqual([
      ['eu-west-1', ['m5.large']],
      ['us-east-1', ['m5.large']],
    ]);
    expect(placement.calls.sort()).toEqual(prices.calls);
  });

  it('should block a pool for the configured minutes after InsufficientInstanceCapacity, then open it again', async () => {
    // Prepare
    const clock = manualClock();
    const ledger = newLedger();
    const gatekeeper = new Gatekeeper({ store, prices: new Ec2SpotPriceSource(), ledger, policy, clock: clock.now });
    const pool = m5('use1-az5');
    const blockedUntil = new Date(T0.getTime() + 7 * MINUTE).toISOString();

    // Act
    const result = await gatekeeper.recordInsufficientCapacity(pool, { eventId: 'launch-ice-1', account: '111111111111', environment: 'LAB' });

    // Assess: closed now and a minute before the end, open at the end, from the stored timestamp.
    expect(result.decision).toMatchObject({ changed: true, quarantined: true });
    expect(await gatekeeper.isAllowed(pool)).toEqual({ allowed: false, reason: `blocked until ${blockedUntil} after InsufficientInstanceCapacity`, reopensAt: new Date(blockedUntil) });
    clock.advance(6 * MINUTE);
    expect((await gatekeeper.isAllowed(pool)).allowed).toBe(false);
    expect((await gatekeeper.rank([pool, m5('use1-az6')])).map((r) => [r.key, r.allowed])).toEqual([
      ['us-east-1/use1-az6/m5.large', true],
      ['us-east-1/use1-az5/m5.large', false],
    ]);
    clock.advance(MINUTE);
    expect(await gatekeeper.isAllowed(pool)).toEqual({ allowed: true, reason: 'open' });
    expect(await store.get(poolKey(pool))).toMatchObject({ capacityBlockedUntil: blockedUntil, version: 1 });
    expect(await ledgerEntries(ledger)).toMatchObject([
      {
        seq: 1,
        actor: 'gatekeeper',
        action: 'pool.capacity-blocked',
        subject: 'us-east-1/use1-az5/m5.large',
        eventId: 'launch-ice-1',
        before: { capacityBlockedUntil: null, riskScore: 0 },
        after: { capacityBlockedUntil: blockedUntil, riskScore: 0.5 },
      },
    ]);
  });

  it('should change nothing twice when the same InsufficientInstanceCapacity event is reported again, even concurrently', async () => {
    // Prepare
    const clock = manualClock();
    const ledger = newLedger();
    const gatekeeper = new Gatekeeper({ store, prices: new Ec2SpotPriceSource(), ledger, policy, clock: clock.now });
    const pool = m5('use1-az1', 'us-west-2');
    const failure = { eventId: 'launch-ice-dup', account: '111111111111', environment: 'PROD' as const };
    await gatekeeper.recordInsufficientCapacity(pool, failure);
    const stored = await store.get(poolKey(pool));

    // Act: redelivered later, three times at once.
    clock.advance(3 * MINUTE);
    const again = await Promise.all([1, 2, 3].map(() => gatekeeper.recordInsufficientCapacity(pool, failure)));

    // Assess: the block still ends 7 minutes after the first report, one history entry, one ledger entry.
    expect(again.map((r) => r.decision)).toEqual([1, 2, 3].map(() => ({ changed: false, reason: 'duplicate' })));
    expect(again.every((r) => r.ledger?.duplicate && r.ledger.entry.seq === 1)).toBe(true);
    expect(await store.get(poolKey(pool))).toEqual(stored);
    expect(stored).toMatchObject({ version: 1, capacityBlockedUntil: new Date(T0.getTime() + 7 * MINUTE).toISOString() });
    expect(stored!.history).toHaveLength(1);
    expect(await ledgerEntries(ledger)).toHaveLength(1);
  });

  it('should keep every report when different launches into one pool fail at the same moment', async () => {
    // Prepare
    const clock = manualClock();
    const ledger = newLedger();
    const gatekeeper = new Gatekeeper({ store, prices: new Ec2SpotPriceSource(), ledger, policy, clock: clock.now });
    const pool = m5('use1-az2', 'us-west-2');
    const ids = ['ice-a', 'ice-b', 'ice-c', 'ice-d'];

    // Act
    const results = await Promise.all(ids.map((eventId) => gatekeeper.recordInsufficientCapacity(pool, { eventId, account: '111111111111', environment: 'STAGING' })));

    // Assess: the writes were conditional, losers re-read and re-decided, nothing was lost.
    const record = await store.get(poolKey(pool));
    expect(record!.history.map((h) => h.eventId).sort()).toEqual(ids);
    expect(record!.version).toBe(4);
    expect(results.reduce((sum, r) => sum + r.conflicts, 0)).toBeGreaterThan(0);
    expect((await ledgerEntries(ledger)).map((e) => e.eventId).sort()).toEqual(ids);
  });
});

describe('swapGatekeeper (moto, GetSpotPlacementScores answered at the SDK client)', () => {
  it('should rank with EC2 placement scores and moto prices, asking EC2 once for every gatekeeper of the container', async () => {
    // Prepare: the swap builds a gatekeeper per invocation (two here); the scores EC2 would answer.
    // (ap-southeast-2: no other test writes its pools.)
    const { asked, done } = answerPlacementScores('ap-southeast-2', () => ({
      $metadata: { httpStatusCode: 200 },
      SpotPlacementScores: [
        { Region: 'ap-southeast-2', AvailabilityZoneId: 'apse2-az3', Score: 9 },
        { Region: 'ap-southeast-2', AvailabilityZoneId: 'apse2-az1', Score: 2 },
      ],
    }));
    const region = 'ap-southeast-2';
    const pools = [m5('apse2-az1', region), m5('apse2-az3', region), m5('apse2-az2', region), { region, azId: 'apse2-az3', instanceType: 'c5.large' }];
    try {
      // Act
      const first = await swapGatekeeper({ store, ledger: newLedger(), policy }).rank(pools);
      const second = await swapGatekeeper({ store, ledger: newLedger(), policy }).rank(pools);
      // Assess: prices are equal in moto, so the scores decide; apse2-az2 was not scored (the worst).
      expect(first.map((r) => [r.key, r.components.placementScore, Number(r.components.penalty.toFixed(4))])).toEqual([
        ['ap-southeast-2/apse2-az3/c5.large', 9, Number((1 / 9).toFixed(4))],
        ['ap-southeast-2/apse2-az3/m5.large', 9, Number((1 / 9).toFixed(4))],
        ['ap-southeast-2/apse2-az1/m5.large', 2, Number((8 / 9).toFixed(4))],
        ['ap-southeast-2/apse2-az2/m5.large', undefined, 1],
      ]);
      expect(first[0]!.reason).toBe(`open; risk 0.00, spot $${MOTO_SPOT_PRICE}/h (the cheapest), placement score 9/10`);
      expect(second).toEqual(first);
      expect(asked).toEqual([{ InstanceTypes: ['c5.large', 'm5.large'], TargetCapacity: 1, TargetCapacityUnitType: 'units', SingleAvailabilityZone: true, RegionNames: ['ap-southeast-2'], NextToken: undefined }]);
    } finally {
      done();
    }
  });

  it('should rank by risk and price when GetSpotPlacementScores is denied, saying so, and not ask again in that region', async () => {
    // Prepare: the function's role lacks ec2:GetSpotPlacementScores; a pool interrupted a half-life ago.
    const denial = new EC2ServiceException({ name: 'UnauthorizedOperation', message: 'You are not authorized to perform this operation.', $fault: 'client', $metadata: { httpStatusCode: 403 } });
    const { asked, done } = answerPlacementScores('us-west-2', () => denial);
    const interrupted = m5('usw2-az2', 'us-west-2');
    const decision = applySignal(undefined, poolKey(interrupted), { eventId: 'placement-denied', at: new Date(Date.now() - 72 * 3_600_000), kind: 'spot-interruption', account: '111111111111', environment: 'STAGING' }, policy, new Date());
    if (decision.changed) await store.put(decision.next);
    try {
      // Act
      const ranked = await swapGatekeeper({ store, ledger: newLedger(), policy }).rank([interrupted, m5('usw2-az1', 'us-west-2')]);
      const again = await swapGatekeeper({ store, ledger: newLedger(), policy }).rank([m5('usw2-az3', 'us-west-2'), { region: 'us-west-2', azId: 'usw2-az3', instanceType: 'c5.large' }]);
      // Assess
      expect(ranked.map((r) => [r.key, Number(r.components.penalty.toFixed(2))])).toEqual([
        ['us-west-2/usw2-az1/m5.large', 0],
        ['us-west-2/usw2-az2/m5.large', 0.5],
      ]);
      expect(ranked[0]!.components.placementUnavailable).toBe('GetSpotPlacementScores denied (UnauthorizedOperation)');
      expect(ranked[0]!.reason).toMatch(/no placement score \(placement scores unavailable: GetSpotPlacementScores denied \(UnauthorizedOperation\); ranked by risk and price\)$/);
      expect(again.every((r) => r.components.placementUnavailable === 'GetSpotPlacementScores denied (UnauthorizedOperation)')).toBe(true);
      expect(asked).toHaveLength(1);
    } finally {
      done();
    }
  });
});

/** The real pool table, with a concurrent writer that changes the pool right after each of the first `races` reads. */
class RacedPoolStore implements TransactionalPoolRiskStore {
  reads = 0;
  constructor(
    private readonly inner: DynamoPoolRiskStore,
    private readonly races: number,
    private readonly concurrent: (key: string, current: PoolRiskRecord | undefined, race: number) => PoolRiskRecord,
  ) {}
  async get(key: string) {
    const current = await this.inner.get(key);
    this.reads += 1;
    if (this.reads <= this.races) await this.inner.put(this.concurrent(key, current, this.reads));
    return current;
  }
  getMany(keys: string[]) {
    return this.inner.getMany(keys);
  }
  put(next: PoolRiskRecord) {
    return this.inner.put(next);
  }
  conditionalPut(next: PoolRiskRecord) {
    return this.inner.conditionalPut(next);
  }
  all() {
    return this.inner.all();
  }
}

/** The real ledger, dying once on the way to DynamoDB (before) or once its write is done and the response lost (after). */
function crashingLedger(inner: DynamoLedger, when: 'before' | 'after'): LedgerWriter {
  let crashed = false;
  return {
    append: async (draft: LedgerDraft, options?: AppendOptions) => {
      if (crashed) return inner.append(draft, options);
      crashed = true;
      if (when === 'after') await inner.append(draft, options);
      throw Object.assign(new Error('the process died'), { name: 'Crash' });
    },
  };
}

describe('Gatekeeper.recordInsufficientCapacity: the block and its ledger entry are one write (moto)', () => {
  const failure = { eventId: 'launch-ice-crash', account: '111111111111', environment: 'PROD' as const };

  it.each([
    ['before the write', 'before' as const],
    ['after the write, its response lost', 'after' as const],
  ])('should leave nothing half done when the process dies %s, and record the block once when retried', async (_, when) => {
    // Prepare
    const clock = manualClock();
    const ledger = newLedger();
    const pool = m5('use1-az6', when === 'before' ? 'ap-south-1' : 'ap-northeast-1');
    const crashing = new Gatekeeper({ store, prices: new Ec2SpotPriceSource(), ledger: crashingLedger(ledger, when), policy, clock: clock.now });

    // Act
    await expect(crashing.recordInsufficientCapacity(pool, failure)).rejects.toThrow('the process died');
    const record = await store.get(poolKey(pool));
    const entries = await ledgerEntries(ledger);

    // Assess: either both the block and its entry are there, or neither is.
    expect({ blocked: record?.capacityBlockedUntil !== undefined, recorded: entries.length }).toEqual(when === 'before' ? { blocked: false, recorded: 0 } : { blocked: true, recorded: 1 });

    // Act: the launch step is retried and reports the same failure.
    const retried = await crashing.recordInsufficientCapacity(pool, failure);

    // Assess
    expect(retried.ledger?.entry).toMatchObject({ action: 'pool.capacity-blocked', eventId: failure.eventId });
    expect(await store.get(poolKey(pool))).toMatchObject({ version: 1, capacityBlockedUntil: new Date(T0.getTime() + 7 * MINUTE).toISOString() });
    expect(await ledgerEntries(ledger)).toMatchObject([{ seq: 1, action: 'pool.capacity-blocked', after: { capacityBlockedUntil: new Date(T0.getTime() + 7 * MINUTE).toISOString() } }]);
  });

  it('should re-read and re-decide when a concurrent writer changed the pool first, keeping both events', async () => {
    // Prepare: between the first read and the write, another handler records a rebalance.
    const clock = manualClock();
    const ledger = newLedger();
    const pool = m5('use1-az4', 'ap-south-1');
    const raced = new RacedPoolStore(store, 1, (key, current) => {
      const other = applySignal(current, key, { eventId: 'other', at: T0, kind: 'rebalance', account: '1', environment: 'LAB' }, policy, T0);
      if (!other.changed) throw new Error('the concurrent rebalance changed nothing');
      return other.next;
    });
    const gatekeeper = new Gatekeeper({ store: raced, prices: new Ec2SpotPriceSource(), ledger, policy, clock: clock.now });
    // Act
    const result = await gatekeeper.recordInsufficientCapacity(pool, { ...failure, eventId: 'launch-ice-raced' });
    // Assess
    expect(result.conflicts).toBe(1);
    const record = await store.get(poolKey(pool));
    expect(record).toMatchObject({ version: 2, capacityBlockedUntil: new Date(T0.getTime() + 7 * MINUTE).toISOString() });
    expect(record!.history.map((h) => h.eventId).sort()).toEqual(['launch-ice-raced', 'other']);
    expect(await ledgerEntries(ledger)).toMatchObject([{ action: 'pool.capacity-blocked', eventId: 'launch-ice-raced' }]);
  });

  it('should give up with the retryable conflict error after its attempts, having recorded nothing', async () => {
    // Prepare: every read is overtaken by another writer.
    const ledger = newLedger();
    const pool = m5('use1-az5', 'ap-south-1');
    const raced = new RacedPoolStore(store, Infinity, (key, current) => ({ pool: key, history: [], version: (current?.version ?? 0) + 1 }));
    const gatekeeper = new Gatekeeper({ store: raced, prices: new Ec2SpotPriceSource(), ledger, policy, clock: manualClock().now });
    // Act
    const attempt = gatekeeper.recordInsufficientCapacity(pool, { ...failure, eventId: 'launch-ice-overtaken' });
    // Assess
    await expect(attempt).rejects.toMatchObject({ name: 'Retryable.PoolRiskConflict' });
    expect(raced.reads).toBe(5);
    expect((await store.get(poolKey(pool)))?.capacityBlockedUntil).toBeUndefined();
    expect(await ledgerEntries(ledger)).toEqual([]);
  });

  it('should ignore a failure too old to count, recording nothing', async () => {
    const ledger = newLedger();
    const pool = m5('use1-az1', 'ap-south-1');
    const gatekeeper = new Gatekeeper({ store, prices: new Ec2SpotPriceSource(), ledger, policy, clock: manualClock().now });
    const result = await gatekeeper.recordInsufficientCapacity(pool, { ...failure, eventId: 'launch-ice-old', at: new Date(T0.getTime() - 31 * 24 * 3_600_000) });
    expect(result).toEqual({ decision: { changed: false, reason: 'stale' }, conflicts: 0 });
    expect(await store.get(poolKey(pool))).toBeUndefined();
    expect(await ledgerEntries(ledger)).toEqual([]);
  });
});
