/**
 * The gatekeeper's port to Spot placement scores (EC2 GetSpotPlacementScores, adapted in
 * `aws.ts`). moto does not implement that call, so the tests reach it only through this port.
 */

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
