import type { TransactionalPoolRiskStore } from '../interruption/pool-store';
import type { RiskPolicy } from '../interruption/risk';
import type { LedgerWriter } from '../ledger/store';
import { logger } from '../shared/middleware';
import { Ec2PlacementScores, Ec2SpotPriceSource } from './aws';
import { Gatekeeper } from './gatekeeper';
import { CachedPlacementScores, PLACEMENT_SCORES_TTL_MS, type PlacementDegraded } from './placement-scores';

export interface SwapGatekeeperOptions {
  /** The pool table. */
  store: TransactionalPoolRiskStore;
  /** Where capacity blocks are recorded. */
  ledger: LedgerWriter;
  policy: RiskPolicy;
  /** Instances a placement score assumes are launched at once (default 1: a swap launches one replacement). */
  targetCapacity?: number;
  /** How long placement scores, and a denial of the API, are kept (default 15 minutes). */
  placementScoresTtlMs?: number;
}

/** Adapters by their settings, built once per container: their caches outlive an invocation. */
const adapters = new Map<string, { prices: Ec2SpotPriceSource; placementScores: CachedPlacementScores }>();

/** A failed GetSpotPlacementScores call, once per call (not per ranking it then degrades). */
const warn = ({ region, instanceTypes, failure, error, until }: PlacementDegraded) =>
  logger.warn('Spot placement scores unavailable: ranking by risk and price', { region, instanceTypes, failure, until: until.toISOString(), error: error instanceof Error ? error.name : String(error) });

/**
 * The Gatekeeper of the swap's Spot launches: Spot prices from DescribeSpotPriceHistory and
 * placement scores from GetSpotPlacementScores (SingleAvailabilityZone, the candidate types,
 * TargetCapacity 1), cached for 15 minutes per (region, sorted instance types) and degrading to a
 * ranking by risk and price when the call is denied, throttled or fails (placement-scores.ts).
 * The adapters, with their caches, are shared by every Gatekeeper this builds in a container, so a
 * handler may call it on every invocation. Needs `ec2:GetSpotPlacementScores`,
 * `ec2:DescribeSpotPriceHistory` and `ec2:DescribeAvailabilityZones` (all on `*`).
 */
export function swapGatekeeper(options: SwapGatekeeperOptions): Gatekeeper {
  const targetCapacity = options.targetCapacity ?? 1;
  const ttlMs = options.placementScoresTtlMs ?? PLACEMENT_SCORES_TTL_MS;
  const key = `${targetCapacity}|${ttlMs}`;
  let shared = adapters.get(key);
  if (!shared) {
    shared = {
      prices: new Ec2SpotPriceSource(),
      placementScores: new CachedPlacementScores(new Ec2PlacementScores({ targetCapacity }), { ttlMs, onDegraded: warn }),
    };
    adapters.set(key, shared);
  }
  return new Gatekeeper({ store: options.store, ledger: options.ledger, policy: options.policy, prices: shared.prices, placementScores: shared.placementScores });
}
