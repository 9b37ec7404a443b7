import { DescribeAvailabilityZonesCommand, DescribeSpotPriceHistoryCommand, EC2Client, GetSpotPlacementScoresCommand, type SpotPrice, type _InstanceType } from '@aws-sdk/client-ec2';
import { type Pool, poolKey } from '../interruption/pool';
import { PoolRiskConflictError, type TransactionalPoolRiskStore } from '../interruption/pool-store';
import { type Decision, type PoolRiskRecord, type RiskPolicy, type Signal, applySignal, riskScore } from '../interruption/risk';
import type { AppendResult, CoWrite, LedgerWriter } from '../ledger/store';
import { awsClient } from '../shared/aws';
import type { EnvironmentClass } from '../shared/environments';
import { type Admission, DEFAULT_RANK_WEIGHTS, type PoolFacts, type RankWeights, type RankedPool, isAllowed, rank } from './gatekeeper';

/** The EC2 client for a region; by default the shared one (which honours the emulator endpoint). */
export type Ec2ClientFor = (region: string) => EC2Client;
const sharedEc2: Ec2ClientFor = (region) => awsClient(EC2Client, { region });

/** Current Spot prices. */
export interface SpotPriceSource {
  /** USD per hour by pool key, for the given instance types in every AZ of the region that offers them. */
  prices(region: string, instanceTypes: string[]): Promise<Map<string, number>>;
}

/**
 * Spot prices from DescribeSpotPriceHistory, the newest per (AZ ID, instance type). The API names
 * zones (`us-east-1a`), which map to different physical zones in every account, so each name is
 * translated to its AZ ID with DescribeAvailabilityZones (cached: the mapping of an account never
 * changes). With StartTime = now the API returns the price in effect now, however old.
 */
export class Ec2SpotPriceSource implements SpotPriceSource {
  private readonly clientFor: Ec2ClientFor;
  private readonly clock: () => Date;
  private readonly zoneIds = new Map<string, Promise<Map<string, string>>>();

  constructor(options: { clientFor?: Ec2ClientFor; clock?: () => Date } = {}) {
    this.clientFor = options.clientFor ?? sharedEc2;
    this.clock = options.clock ?? (() => new Date());
  }

  async prices(region: string, instanceTypes: string[]): Promise<Map<string, number>> {
    const types = [...new Set(instanceTypes)];
    if (!types.length) return new Map();
    const [zoneIds, history] = await Promise.all([this.zoneIdsOf(region), this.history(region, types)]);
    const newest = new Map<string, { price: number; at: number }>();
    for (const entry of history) {
      const azId = entry.AvailabilityZone ? zoneIds.get(entry.AvailabilityZone) : undefined;
      const price = Number(entry.SpotPrice);
      if (!azId || !entry.InstanceType || !Number.isFinite(price) || price <= 0) continue;
      const key = poolKey({ region, azId, instanceType: entry.InstanceType });
      const at = entry.Timestamp?.getTime() ?? 0;
      const known = newest.get(key);
      if (!known || at > known.at) newest.set(key, { price, at });
    }
    return new Map([...newest].map(([key, { price }]) => [key, price]));
  }

  private async history(region: string, instanceTypes: string[]): Promise<SpotPrice[]> {
    const ec2 = this.clientFor(region);
    const entries: SpotPrice[] = [];
    let NextToken: string | undefined;
    do {
      const page = await ec2.send(
        // The SDK's type lists only the types it knew when it was built; new types are plain strings.
        new DescribeSpotPriceHistoryCommand({ InstanceTypes: instanceTypes as _InstanceType[], ProductDescriptions: ['Linux/UNIX'], StartTime: this.clock(), NextToken }),
      );
      entries.push(...(page.SpotPriceHistory ?? []));
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return entries;
  }

  private zoneIdsOf(region: string): Promise<Map<string, string>> {
    let cached = this.zoneIds.get(region);
    if (!cached) {
      cached = this.clientFor(region)
        .send(new DescribeAvailabilityZonesCommand({}))
        .then((out) => new Map((out.AvailabilityZones ?? []).flatMap((z) => (z.ZoneName && z.ZoneId ? [[z.ZoneName, z.ZoneId] as const] : []))));
      // A failed lookup is not remembered: the next ranking asks again.
      cached.catch(() => this.zoneIds.delete(region));
      this.zoneIds.set(region, cached);
    }
    return cached;
  }
}

/** Spot placement scores: advisory, so "not available" means "no scores", never a failed ranking. */
export interface PlacementScoreSource {
  /**
   * Score (1-10) by AZ ID for a Spot request diversified over the given instance types. The API
   * scores the set, not each type (one or two types always score low), so the score is the AZ's.
   * AZs missing from the map are unknown (the API returns only the top ten).
   */
  scores(region: string, instanceTypes: string[]): Promise<Map<string, number>>;
}

/** For where the API is off (opted out, not permitted, emulators): every score unknown. */
export class NoPlacementScores implements PlacementScoreSource {
  async scores(): Promise<Map<string, number>> {
    return new Map();
  }
}

/** Error codes meaning that the placement score API is not there for us. */
const UNAVAILABLE_CODES = new Set([
  'UnsupportedOperation',
  'NotImplemented',
  'InvalidAction',
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'OptInRequired',
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
]);

/**
 * True when a GetSpotPlacementScores failure means "no scores now" rather than a bug in the
 * request: a code above, or a server fault the SDK's own retries could not get past. moto does not
 * implement GetSpotPlacementScores and answers it with an HTML 500 page.
 */
export function placementScoresUnavailable(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  const { Code, $metadata } = error as Error & { Code?: string; $metadata?: { httpStatusCode?: number } };
  return UNAVAILABLE_CODES.has(Code ?? error.name) || ($metadata?.httpStatusCode ?? 0) >= 500;
}

/**
 * Scores from GetSpotPlacementScores (SingleAvailabilityZone: one score per AZ ID). moto does not
 * implement this API: the integration tests use an in-test implementation of the port instead.
 */
export class Ec2PlacementScoreSource implements PlacementScoreSource {
  private readonly clientFor: Ec2ClientFor;
  private readonly targetCapacity: number;

  constructor(
    private readonly options: {
      clientFor?: Ec2ClientFor;
      /** Instances the score should assume are requested at once. */
      targetCapacity?: number;
      /** Told when the API was not available (to log a warning); the ranking goes on without scores. */
      onUnavailable?: (error: unknown, region: string) => void;
    } = {},
  ) {
    this.clientFor = options.clientFor ?? sharedEc2;
    this.targetCapacity = options.targetCapacity ?? 1;
  }

  async scores(region: string, instanceTypes: string[]): Promise<Map<string, number>> {
    const types = [...new Set(instanceTypes)];
    const scores = new Map<string, number>();
    if (!types.length) return scores;
    try {
      let NextToken: string | undefined;
      do {
        const page = await this.clientFor(region).send(
          new GetSpotPlacementScoresCommand({
            InstanceTypes: types,
            TargetCapacity: this.targetCapacity,
            TargetCapacityUnitType: 'units',
            SingleAvailabilityZone: true,
            RegionNames: [region],
            NextToken,
          }),
        );
        for (const s of page.SpotPlacementScores ?? []) {
          if (s.AvailabilityZoneId && s.Score !== undefined && (s.Region ?? region) === region) scores.set(s.AvailabilityZoneId, s.Score);
        }
        NextToken = page.NextToken || undefined;
      } while (NextToken);
      return scores;
    } catch (error) {
      if (!placementScoresUnavailable(error)) throw error;
      this.options.onUnavailable?.(error, region);
      return new Map();
    }
  }
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
  /** Defaults to NoPlacementScores. */
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

/** The gatekeeper: gathers the facts about pools and applies the pure decisions in gatekeeper.ts. */
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

  /** Best first (see `rank` in gatekeeper.ts). One record read per 100 pools, one price and one placement call per region. */
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
      return { pool, record: records.get(key), spotPrice: market?.prices.get(key), placementScore: market?.scores.get(pool.azId) };
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
