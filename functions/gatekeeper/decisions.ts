import { type Pool, poolKey } from '../interruption/pool';
import { type PoolRiskRecord, type RiskPolicy, quarantineEndsAt, riskScore } from '../interruption/risk';
import { InvalidInputError } from '../shared/errors';

/**
 * The gatekeeper's decisions, consulted before every Spot launch Fleetwarden makes: is this pool
 * open, and which of these pools is best? Pure: every fact (the pool's risk record, its Spot
 * price, its placement score, the time) is passed in; the Gatekeeper (`gatekeeper.ts`) gathers
 * them through its ports, whose AWS adapters are in `aws.ts`.
 */
export interface PoolFacts {
  pool: Pool;
  record?: PoolRiskRecord;
  /** Current Spot price, USD per hour. */
  spotPrice?: number;
  /** On-Demand price, USD per hour: only explains the saving, it does not change the order. */
  onDemandPrice?: number;
  /** Spot placement score of the pool's AZ, 1 (unlikely) to 10 (very likely to be fulfilled). */
  placementScore?: number;
  /**
   * Why the pool's region has no placement scores for this ranking (`GetSpotPlacementScores denied
   * (UnauthorizedOperation)`): the pool is then ranked by risk and price alone, and its reason says so.
   */
  placementUnavailable?: string;
  /** The region's placement answer scored other AZs, not this one's: it counts as the worst (see `rank`). */
  placementOmitted?: boolean;
}

export interface Admission {
  allowed: boolean;
  /** A sentence, for logs and the ledger: `blocked until 2026-11-22T10:10:00.000Z after InsufficientInstanceCapacity`. */
  reason: string;
  /** When a closed pool opens again. */
  reopensAt?: Date;
}

/**
 * Closed while a quarantine or a capacity block lasts. Decided from the stored timestamps on
 * every read: an expired quarantine whose item TTL has not deleted yet is open.
 */
export function isAllowed(facts: Pick<PoolFacts, 'record'>, now: Date): Admission {
  const { record } = facts;
  const reopensAt = quarantineEndsAt(record, now);
  if (reopensAt === undefined) {
    const ended = record?.quarantinedUntil;
    return { allowed: true, reason: ended ? `open: its quarantine ended at ${ended}` : 'open' };
  }
  const closures: string[] = [];
  if (record?.quarantinedUntil && Date.parse(record.quarantinedUntil) > now.getTime()) {
    const why = record.quarantineReason ?? 'a spot interruption';
    const event = record.quarantineEventId ? ` (event ${record.quarantineEventId})` : '';
    closures.push(`quarantined until ${isoOf(record.quarantinedUntil)} after ${why}${event}`);
  }
  if (record?.capacityBlockedUntil && Date.parse(record.capacityBlockedUntil) > now.getTime()) {
    closures.push(`blocked until ${isoOf(record.capacityBlockedUntil)} after InsufficientInstanceCapacity`);
  }
  return { allowed: false, reason: closures.join(' and '), reopensAt };
}

/**
 * How much each penalty counts. With the defaults, one fresh Spot interruption in a pool's
 * history (risk 1) weighs as much as paying twice the cheapest candidate's price (premium 1), and
 * as much as placement score 1 against 10 (penalty 1).
 */
export interface RankWeights {
  risk: number;
  price: number;
  placement: number;
}

export const DEFAULT_RANK_WEIGHTS: Readonly<RankWeights> = { risk: 1, price: 1, placement: 1 };

/**
 * A price that is not known counts as this much above the most expensive known one: Spot price
 * history lists every type an AZ offers, so a pool without a price is most likely not offered
 * there at all, and must not win over a pool with a known price.
 */
export const UNKNOWN_PRICE_EXTRA_PREMIUM = 1;

/** Everything the score was computed from, so that the caller (and the ledger) can explain a choice. */
export interface ScoreComponents {
  /** Decaying interruption risk (risk.ts): 1 is one fresh interruption. */
  risk: number;
  spotPrice?: number;
  /** spotPrice / cheapest price among the open candidates − 1 (0 = the cheapest). */
  pricePremium: number;
  placementScore?: number;
  /** (10 − placement score) / 9: 0 for a 10, 1 for a 1 (see `rank` for unknown scores). */
  placementPenalty: number;
  /** Why no placement score could be had for the pool's region (a degraded ranking). */
  placementUnavailable?: string;
  onDemandPrice?: number;
  /** 1 − spotPrice / onDemandPrice, when both are known. */
  savingsVsOnDemand?: number;
  /** weights.risk × risk + weights.price × pricePremium + weights.placement × placementPenalty. */
  penalty: number;
}

export interface RankedPool {
  pool: Pool;
  key: string;
  allowed: boolean;
  reason: string;
  reopensAt?: Date;
  /** 1 / (1 + penalty): 1 for a risk-free, cheapest pool with placement score 10; higher is better. */
  score: number;
  components: ScoreComponents;
}

/**
 * Orders candidate pools, best first:
 *
 * 1. open pools before closed ones, whatever their score: quarantine and capacity blocks always
 *    win, no price or placement score reopens a pool or puts it ahead of an open one;
 * 2. open pools by score, highest first, where
 *    `score = 1 / (1 + weights.risk × risk + weights.price × pricePremium + weights.placement × placementPenalty)`,
 *    the three penalties adding up (with the default weights, one fresh interruption = paying
 *    twice the cheapest price = placement score 1 instead of 10):
 *    - `risk` is the decaying interruption risk of the pool (risk.ts);
 *    - `pricePremium` is relative to the cheapest known Spot price among the open candidates (all
 *      candidates when none is open); an unknown price counts as the most expensive known premium
 *      plus UNKNOWN_PRICE_EXTRA_PREMIUM, or 0 for everyone when no price is known;
 *    - `placementPenalty` is `(10 − score) / 9` for the placement score of the pool's AZ. Scores
 *      are compared within a region (one API answer per region): an AZ the answer leaves out
 *      (`placementOmitted`, or another candidate of its region has a score) counts as the worst
 *      (1), since the API lists the AZs it scores; a pool whose region has no scores counts 0: no
 *      answer asked for, an empty one, or the API denied, throttled or failed
 *      (`placementUnavailable`), so that the region is ranked by risk and price alone, and the
 *      reason of a degraded one says so;
 * 3. closed pools by the time they reopen, soonest first, then by score;
 * 4. ties by pool key, so the order never depends on the order of the input.
 *
 * Each pool may appear once.
 */
export function rank(
  candidates: readonly PoolFacts[],
  now: Date,
  policy: Pick<RiskPolicy, 'riskHalfLifeHours'>,
  weights: RankWeights = DEFAULT_RANK_WEIGHTS,
): RankedPool[] {
  for (const [name, weight] of Object.entries(weights)) {
    if (!Number.isFinite(weight) || weight < 0) throw new InvalidInputError(`invalid rank weights: ${name} must be a finite number ≥ 0, got ${weight}`);
  }
  const seen = new Set<string>();
  for (const candidate of candidates) {
    const key = poolKey(candidate.pool);
    if (seen.has(key)) throw new InvalidInputError(`invalid candidates: pool ${key} appears more than once`);
    seen.add(key);
  }

  const admitted = candidates.map((facts) => ({ facts, key: poolKey(facts.pool), admission: isAllowed(facts, now) }));
  const priced = (list: typeof admitted) => list.map((c) => knownPrice(c.facts.spotPrice)).filter((p): p is number => p !== undefined);
  const openPrices = priced(admitted.filter((c) => c.admission.allowed));
  const allPrices = priced(admitted);
  const cheapest = openPrices.length ? Math.min(...openPrices) : allPrices.length ? Math.min(...allPrices) : undefined;
  const premiumOf = (price: number) => Math.max(0, price / cheapest! - 1);
  const unknownPremium = cheapest === undefined ? 0 : Math.max(...allPrices.map(premiumOf)) + UNKNOWN_PRICE_EXTRA_PREMIUM;
  const scoredRegions = new Set(admitted.filter((c) => knownPlacement(c.facts.placementScore) !== undefined).map((c) => c.facts.pool.region));

  const ranked = admitted.map(({ facts, key, admission }): RankedPool => {
    const risk = riskScore(facts.record, now, policy.riskHalfLifeHours);
    const spotPrice = knownPrice(facts.spotPrice);
    const pricePremium = spotPrice === undefined ? unknownPremium : premiumOf(spotPrice);
    const placementScore = knownPlacement(facts.placementScore);
    const placementUnavailable = placementScore === undefined && facts.placementUnavailable ? facts.placementUnavailable : undefined;
    const omitted = !placementUnavailable && (facts.placementOmitted === true || scoredRegions.has(facts.pool.region));
    const placementPenalty = placementScore !== undefined ? (10 - placementScore) / 9 : omitted ? 1 : 0;
    const penalty = weights.risk * risk + weights.price * pricePremium + weights.placement * placementPenalty;
    const onDemandPrice = knownPrice(facts.onDemandPrice);
    const components: ScoreComponents = { risk, pricePremium, placementPenalty, penalty };
    if (spotPrice !== undefined) components.spotPrice = spotPrice;
    if (placementScore !== undefined) components.placementScore = placementScore;
    if (placementUnavailable !== undefined) components.placementUnavailable = placementUnavailable;
    if (onDemandPrice !== undefined) components.onDemandPrice = onDemandPrice;
    if (spotPrice !== undefined && onDemandPrice !== undefined) components.savingsVsOnDemand = 1 - spotPrice / onDemandPrice;
    const result: RankedPool = {
      pool: facts.pool,
      key,
      allowed: admission.allowed,
      reason: admission.allowed ? `${admission.reason}; ${explain(components)}` : admission.reason,
      score: 1 / (1 + penalty),
      components,
    };
    if (admission.reopensAt) result.reopensAt = admission.reopensAt;
    return result;
  });

  return ranked.sort(
    (a, b) =>
      Number(b.allowed) - Number(a.allowed) ||
      (a.reopensAt?.getTime() ?? 0) - (b.reopensAt?.getTime() ?? 0) ||
      b.score - a.score ||
      (a.key < b.key ? -1 : a.key > b.key ? 1 : 0),
  );
}

function knownPrice(price: number | undefined): number | undefined {
  return price !== undefined && Number.isFinite(price) && price > 0 ? price : undefined;
}

function knownPlacement(score: number | undefined): number | undefined {
  return score !== undefined && Number.isFinite(score) ? Math.min(10, Math.max(1, score)) : undefined;
}

function explain(c: ScoreComponents): string {
  const price =
    c.spotPrice === undefined
      ? 'no known spot price'
      : `spot $${c.spotPrice}/h (${c.pricePremium === 0 ? 'the cheapest' : `${(c.pricePremium * 100).toFixed(0)} % above the cheapest`})`;
  const placement =
    c.placementScore !== undefined
      ? `placement score ${c.placementScore}/10`
      : c.placementUnavailable
        ? `no placement score (placement scores unavailable: ${c.placementUnavailable}; ranked by risk and price)`
        : 'no placement score';
  return `risk ${c.risk.toFixed(2)}, ${price}, ${placement}`;
}

const isoOf = (timestamp: string) => new Date(timestamp).toISOString();
