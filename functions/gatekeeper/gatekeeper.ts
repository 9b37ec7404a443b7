import { type Pool, poolKey } from '../interruption/pool';
import { PoolRiskConflictError, type TransactionalPoolRiskStore } from '../interruption/pool-store';
import { type Decision, type PoolRiskRecord, type RiskPolicy, type Signal, applySignal, riskScore } from '../interruption/risk';
import type { AppendResult, CoWrite, LedgerWriter } from '../ledger/store';
import type { EnvironmentClass } from '../shared/environments';
import { type Admission, DEFAULT_RANK_WEIGHTS, type PoolFacts, type RankWeights, type RankedPool, isAllowed, rank } from './decisions';
import { NoPlacementScores, type PlacementScoreSource } from './placement-scores';

/** Current Spot prices. */
export interface SpotPriceSource {
  /** USD per hour by pool key, for the given instance types in every AZ of the region that offers them. */
  prices(region: string, instanceTypes: string[]): Promise<Map<string, number>>;
}

/** The failed launch: its id makes the report idempotent (a retried step recognises its own report). */
export interface CapacityFailure {
  eventId: string;
  account: string;
  environment: EnvironmentClass;
  /** When the launch failed; the block lasts from then. Defaults to now. */
  at?: Date;
}

export interface CapacityBlockResult {
  /** What applySignal decided: `duplicate` for a repeated event id, `stale` for a failure too old to count. */
  decision: Decision;
  /** The `pool.capacity-blocked` ledger entry (the earlier one, `duplicate: true`, for a repeat); none for a stale report. */
  ledger?: AppendResult;
  /** How many times a concurrent writer changed the pool first. */
  conflicts: number;
}

export interface GatekeeperOptions {
  /** Its writes join the ledger's transaction: a pool is blocked if and only if the block is in the ledger. */
  store: TransactionalPoolRiskStore;
  prices: SpotPriceSource;
  /** Defaults to NoPlacementScores; `CachedPlacementScores` over `Ec2PlacementScores` for the real API. */
  placementScores?: PlacementScoreSource;
  /** Every capacity block is recorded here, deduplicated by `${eventId}#pool.capacity-blocked`. */
  ledger: LedgerWriter;
  policy: RiskPolicy;
  clock?: () => Date;
  weights?: RankWeights;
  /** Attempts at a pool write that keeps losing to concurrent writers (default 5). */
  maxAttempts?: number;
  /** Who the ledger names as acting (default `gatekeeper`). */
  actor?: string;
}

export const CAPACITY_BLOCKED_ACTION = 'pool.capacity-blocked';

/**
 * The gatekeeper, the use case every Spot launch consults: gathers the facts about pools through
 * its ports (the pool table, Spot prices, placement scores) and applies the pure decisions of
 * `decisions.ts`; records capacity blocks in the pool table and the ledger.
 */
export class Gatekeeper {
  private readonly clock: () => Date;
  private readonly placementScores: PlacementScoreSource;

  constructor(private readonly options: GatekeeperOptions) {
    this.clock = options.clock ?? (() => new Date());
    this.placementScores = options.placementScores ?? new NoPlacementScores();
  }

  async isAllowed(pool: Pool): Promise<Admission> {
    return isAllowed({ record: await this.options.store.get(poolKey(pool)) }, this.clock());
  }

  /**
   * Best first (see `rank` in decisions.ts). One record read per 100 pools, one price call per
   * region and at most one placement call per region (none while the source's cache answers); a
   * region without placement scores is ranked by risk and price, and its pools' reasons say why.
   */
  async rank(pools: Pool[]): Promise<RankedPool[]> {
    const unique = [...new Map(pools.map((pool) => [poolKey(pool), pool])).values()];
    const now = this.clock();
    const regions = [...new Set(unique.map((pool) => pool.region))];
    const [records, perRegion] = await Promise.all([
      this.options.store.getMany(unique.map(poolKey)),
      Promise.all(
        regions.map(async (region) => {
          const types = [...new Set(unique.filter((pool) => pool.region === region).map((pool) => pool.instanceType))];
          const [prices, scores] = await Promise.all([this.options.prices.prices(region, types), this.placementScores.scores(region, types)]);
          return [region, { prices, scores }] as const;
        }),
      ),
    ]);
    const byRegion = new Map(perRegion);
    const facts = unique.map((pool): PoolFacts => {
      const key = poolKey(pool);
      const market = byRegion.get(pool.region);
      return {
        pool,
        record: records.get(key),
        spotPrice: market?.prices.get(key),
        placementScore: market?.scores.byAzId.get(pool.azId),
        placementUnavailable: market?.scores.unavailable,
        placementOmitted: market !== undefined && market.scores.byAzId.size > 0 && !market.scores.byAzId.has(pool.azId),
      };
    });
    return rank(facts, now, this.options.policy, this.options.weights ?? DEFAULT_RANK_WEIGHTS);
  }

  /**
   * A launch into the pool failed with InsufficientInstanceCapacity: block the pool for
   * `policy.insufficientCapacityMinutes` (from the failure time) and record it in the ledger.
   * Idempotent per event id; a failure older than the risk history is ignored. The pool record
   * and its `pool.capacity-blocked` entry are one transaction (the ledger append with the record's
   * conditional put), so a crash never leaves a block the ledger does not explain; on a conflict
   * (the pool changed since it was read) nothing is written and it re-reads and re-decides. A
   * repeated event id changes nothing and answers the entry already written.
   */
  async recordInsufficientCapacity(pool: Pool, failure: CapacityFailure): Promise<CapacityBlockResult> {
    const { store, policy } = this.options;
    const key = poolKey(pool);
    const signal: Signal = { eventId: failure.eventId, at: failure.at ?? this.clock(), kind: 'insufficient-capacity', account: failure.account, environment: failure.environment };
    const maxAttempts = this.options.maxAttempts ?? 5;
    let conflicts = 0;
    for (let attempt = 1; ; attempt++) {
      const current = await store.get(key);
      const now = this.clock();
      const decision = applySignal(current, key, signal, policy, now);
      if (!decision.changed) {
        if (decision.reason === 'stale') return { decision, conflicts };
        // Applied before, with its entry: the append is deduplicated and answers that entry.
        return { decision, ledger: await this.recordBlock(pool, failure, current, now), conflicts };
      }
      try {
        const ledger = await this.recordBlock(pool, failure, decision.next, now, { record: current }, [store.conditionalPut(decision.next)]);
        return { decision, ledger, conflicts };
      } catch (error) {
        if (!(error instanceof PoolRiskConflictError) || attempt >= maxAttempts) throw error;
        conflicts += 1;
        await sleep(Math.random() * Math.min(200, 10 * 2 ** attempt));
      }
    }
  }

  /** `before` is known only to the call that decided; `alsoWrite` is the pool record written in the same transaction. */
  private recordBlock(
    pool: Pool,
    failure: CapacityFailure,
    after: PoolRiskRecord | undefined,
    now: Date,
    before?: { record: PoolRiskRecord | undefined },
    alsoWrite: CoWrite[] = [],
  ): Promise<AppendResult> {
    const halfLife = this.options.policy.riskHalfLifeHours;
    const state = (record: PoolRiskRecord | undefined) => ({
      capacityBlockedUntil: record?.capacityBlockedUntil ?? null,
      riskScore: Math.round(riskScore(record, now, halfLife) * 10_000) / 10_000,
    });
    const until = after?.capacityBlockedUntil ?? 'unknown';
    return this.options.ledger.append(
      {
        actor: this.options.actor ?? 'gatekeeper',
        action: CAPACITY_BLOCKED_ACTION,
        subject: poolKey(pool),
        reason: `InsufficientInstanceCapacity launching ${pool.instanceType} in ${pool.azId} (account ${failure.account}, ${failure.environment}): pool blocked until ${until}`,
        eventId: failure.eventId,
        ...(before ? { before: state(before.record) } : {}),
        after: state(after),
      },
      { dedupeKey: `${failure.eventId}#${CAPACITY_BLOCKED_ACTION}`, alsoWrite },
    );
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
