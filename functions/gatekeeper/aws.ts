import { DescribeAvailabilityZonesCommand, DescribeSpotPriceHistoryCommand, EC2Client, GetSpotPlacementScoresCommand, type SpotPrice, type _InstanceType } from '@aws-sdk/client-ec2';
import { poolKey } from '../interruption/pool';
import { awsClient } from '../shared/aws';
import type { SpotPriceSource } from './gatekeeper';
import type { PlacementScoreApi } from './placement-scores';

/** The gatekeeper's AWS adapters: Spot prices and Spot placement scores from EC2. */

/** The EC2 client for a region; by default the shared one (which honours the emulator endpoint). */
export type Ec2ClientFor = (region: string) => EC2Client;
const sharedEc2: Ec2ClientFor = (region) => awsClient(EC2Client, { region });

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

/**
 * GetSpotPlacementScores with SingleAvailabilityZone: one score per AZ ID of the region, for a
 * Spot request of `targetCapacity` instances of any of the instance types. Fails as EC2 does:
 * CachedPlacementScores (placement-scores.ts) keeps the calls few and turns failures into "no
 * scores". moto does not implement this call (tests capture the request at the SDK client instead).
 */
export class Ec2PlacementScores implements PlacementScoreApi {
  private readonly clientFor: Ec2ClientFor;
  private readonly targetCapacity: number;

  constructor(
    options: {
      clientFor?: Ec2ClientFor;
      /** Instances the score should assume are requested at once (default 1: a swap launches one replacement). */
      targetCapacity?: number;
    } = {},
  ) {
    this.clientFor = options.clientFor ?? sharedEc2;
    this.targetCapacity = options.targetCapacity ?? 1;
  }

  async fetch(region: string, instanceTypes: readonly string[]): Promise<Map<string, number>> {
    const types = [...new Set(instanceTypes)].sort();
    const scores = new Map<string, number>();
    if (!types.length) return scores;
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
        // A region-level score has no AZ ID; another region's AZs are not asked for.
        if (!s.AvailabilityZoneId || s.Score === undefined || !Number.isFinite(s.Score) || (s.Region ?? region) !== region) continue;
        scores.set(s.AvailabilityZoneId, Math.max(s.Score, scores.get(s.AvailabilityZoneId) ?? -Infinity));
      }
      NextToken = page.NextToken || undefined;
    } while (NextToken);
    return scores;
  }
}
