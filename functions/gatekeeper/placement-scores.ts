/**
 * Spot placement scores for the gatekeeper's ranking: the port the Gatekeeper consults
 * (`PlacementScoreSource`, which never fails), the port to the API itself (`PlacementScoreApi`,
 * which fails as EC2 does; its adapter, `Ec2PlacementScores`, is in `aws.ts`), and between the two
 * the cache that keeps the calls few and turns failures into a ranking by risk and price.
 *
 * moto does not implement GetSpotPlacementScores (it answers an HTML 500 page), so the tests reach
 * the API only through these ports and a real SDK client whose requests a middleware takes.
 */

/** A region's placement scores, as one ranking sees them. */
export interface PlacementScores {
  /**
   * Score (1-10) by AZ ID for a Spot request of the ranked instance types in one AZ. The API scores
   * the set, not each type (one or two types always score low), so the score is the AZ's. An AZ
   * missing from the map was not scored.
   */
  byAzId: ReadonlyMap<string, number>;
  /** Set when the region has no scores because the API could not be used: `GetSpotPlacementScores denied (UnauthorizedOperation)`. */
  unavailable?: string;
}

/** What the Gatekeeper consults. Scores are advisory: "not available" is an answer, never a failed ranking. */
export interface PlacementScoreSource {
  scores(region: string, instanceTypes: readonly string[]): Promise<PlacementScores>;
}

/** GetSpotPlacementScores itself: fails with the SDK's errors (their `name` is EC2's error code). */
export interface PlacementScoreApi {
  /** Score by AZ ID for a single-AZ Spot request of these instance types (unique, sorted) in the region. */
  fetch(region: string, instanceTypes: readonly string[]): Promise<Map<string, number>>;
}

/** For where scores are not wanted (emulators, the demo): every score unknown, and nothing degraded. */
export class NoPlacementScores implements PlacementScoreSource {
  async scores(): Promise<PlacementScores> {
    return { byAzId: new Map() };
  }
}

/**
 * How a call failed: `denied` (not permitted: IAM, an SCP, an opt-in), `unsupported` (the API is
 * not there, as in some partitions and emulators), `throttled`, or `failed` (anything else: a
 * server fault the SDK's retries could not get past, the network, a request EC2 refused).
 */
export type PlacementFailure = 'denied' | 'unsupported' | 'throttled' | 'failed';

const FAILURES: Readonly<Record<string, PlacementFailure>> = {
  UnauthorizedOperation: 'denied',
  AccessDenied: 'denied',
  AccessDeniedException: 'denied',
  OptInRequired: 'denied',
  UnsupportedOperation: 'unsupported',
  InvalidAction: 'unsupported',
  NotImplemented: 'unsupported',
  RequestLimitExceeded: 'throttled',
  Throttling: 'throttled',
  ThrottlingException: 'throttled',
  TooManyRequestsException: 'throttled',
};

/** The failure an error means, from its EC2 error code (the SDK error's `name`, or `Code`). */
export function placementFailureOf(error: unknown): PlacementFailure {
  return FAILURES[errorCode(error)] ?? 'failed';
}

const errorCode = (error: unknown): string => {
  if (!(error instanceof Error)) return 'unknown error';
  return (error as Error & { Code?: string }).Code ?? error.name;
};

export interface PlacementDegraded {
  region: string;
  instanceTypes: readonly string[];
  failure: PlacementFailure;
  error: unknown;
  /** Until when the failure is remembered (no call for the region, or the set, before). */
  until: Date;
}

export interface PlacementScoreCacheOptions {
  /** How long scores, and a denial, are kept (default 15 minutes). */
  ttlMs?: number;
  /** How long a throttle or another failure is kept before the API is asked again (default 1 minute). */
  retryAfterFailureMs?: number;
  /** Answers kept at most; the oldest go first (default 256). */
  maxEntries?: number;
  clock?: () => Date;
  /** Told once per failed call (not for the rankings the remembered failure then degrades): to log a warning. */
  onDegraded?: (event: PlacementDegraded) => void;
}

export const PLACEMENT_SCORES_TTL_MS = 15 * 60_000;
export const PLACEMENT_RETRY_AFTER_FAILURE_MS = 60_000;

/**
 * Placement scores through a cache, in memory (one per warm container, shared by every Gatekeeper
 * built on it). The rule:
 *
 * - scores are kept per (region, sorted set of instance types) for `ttlMs` (15 minutes): the
 *   same request within that time is not sent again, whatever order the types come in;
 * - a denial (UnauthorizedOperation, AccessDenied, OptInRequired) or an unsupported API is kept
 *   per region for `ttlMs`: permissions are not per instance type, and asking on every launch
 *   would fail on every launch;
 * - a throttle (RequestLimitExceeded) is kept per region for `retryAfterFailureMs` (1 minute): the
 *   rate limit is the region's, and the SDK has already retried;
 * - any other failure is kept per (region, set) for `retryAfterFailureMs`;
 * - meanwhile the answer is "no scores", with `unavailable` saying why, and the ranking goes on
 *   with risk and price; concurrent asks for one key share one call.
 */
export class CachedPlacementScores implements PlacementScoreSource {
  private readonly ttlMs: number;
  private readonly retryAfterFailureMs: number;
  private readonly maxEntries: number;
  private readonly clock: () => Date;
  /** Answers (scores, or a failure of that set) by `${region}|${types}`. */
  private readonly bySet = new Map<string, { until: number; answer: PlacementScores }>();
  /** Denials, unsupported APIs and throttles by region. */
  private readonly byRegion = new Map<string, { until: number; answer: PlacementScores }>();
  private readonly inFlight = new Map<string, Promise<PlacementScores>>();

  constructor(
    private readonly api: PlacementScoreApi,
    private readonly options: PlacementScoreCacheOptions = {},
  ) {
    this.ttlMs = options.ttlMs ?? PLACEMENT_SCORES_TTL_MS;
    this.retryAfterFailureMs = options.retryAfterFailureMs ?? PLACEMENT_RETRY_AFTER_FAILURE_MS;
    this.maxEntries = options.maxEntries ?? 256;
    this.clock = options.clock ?? (() => new Date());
  }

  async scores(region: string, instanceTypes: readonly string[]): Promise<PlacementScores> {
    const types = [...new Set(instanceTypes)].sort();
    if (!types.length) return { byAzId: new Map() };
    const key = `${region}|${types.join(',')}`;
    const now = this.clock().getTime();
    // Scores still fresh are used even when the region failed since: they were true when asked.
    const known = fresh(this.bySet, key, now) ?? fresh(this.byRegion, region, now);
    if (known) return known;
    let call = this.inFlight.get(key);
    if (!call) {
      call = this.ask(region, types, key).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, call);
    }
    return call;
  }

  private async ask(region: string, types: string[], key: string): Promise<PlacementScores> {
    try {
      const answer: PlacementScores = { byAzId: await this.api.fetch(region, types) };
      this.keep(this.bySet, key, this.ttlMs, answer);
      return answer;
    } catch (error) {
      const failure = placementFailureOf(error);
      const answer: PlacementScores = { byAzId: new Map(), unavailable: `GetSpotPlacementScores ${failure} (${errorCode(error)})` };
      const perRegion = failure !== 'failed';
      const forMs = failure === 'denied' || failure === 'unsupported' ? this.ttlMs : this.retryAfterFailureMs;
      const until = this.keep(perRegion ? this.byRegion : this.bySet, perRegion ? region : key, forMs, answer);
      this.options.onDegraded?.({ region, instanceTypes: types, failure, error, until: new Date(until) });
      return answer;
    }
  }

  private keep(map: Map<string, { until: number; answer: PlacementScores }>, key: string, forMs: number, answer: PlacementScores): number {
    const until = this.clock().getTime() + forMs;
    map.delete(key);
    map.set(key, { until, answer });
    while (map.size > this.maxEntries) map.delete(map.keys().next().value!);
    return until;
  }
}

function fresh(map: Map<string, { until: number; answer: PlacementScores }>, key: string, now: number): PlacementScores | undefined {
  const entry = map.get(key);
  if (!entry) return undefined;
  if (entry.until > now) return entry.answer;
  map.delete(key);
  return undefined;
}
