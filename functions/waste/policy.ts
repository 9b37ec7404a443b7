import * as z from 'zod';
import { CircuitBreakerSchema } from '../shared/circuit-breaker';
import { EnvironmentClassSchema } from '../shared/environments';

export const WASTE_KINDS = ['address', 'volume', 'snapshot'] as const;
export type WasteKind = (typeof WASTE_KINDS)[number];

/**
 * Monthly list prices in USD: EBS storage per GB-month by volume type, provisioned IOPS and gp3
 * throughput above the included baseline, snapshot storage per GB-month, an idle Elastic IP.
 */
export const PriceTableSchema = z.strictObject({
  gp2: z.number().min(0),
  gp3: z.number().min(0),
  io1: z.number().min(0),
  io2: z.number().min(0),
  st1: z.number().min(0),
  sc1: z.number().min(0),
  standard: z.number().min(0),
  /** Per provisioned IOPS-month (io1, io2). */
  piops: z.number().min(0),
  /** Per IOPS-month above gp3's included 3,000. */
  gp3Iops: z.number().min(0),
  /** Per MB/s-month above gp3's included 125 MB/s. */
  gp3Throughput: z.number().min(0),
  snapshot: z.number().min(0),
  idleAddress: z.number().min(0),
});
export type PriceTable = z.infer<typeof PriceTableSchema>;

/** us-east-1 public list prices (2026): the defaults of `policies.waste.prices.default`. */
export const DEFAULT_PRICES: PriceTable = {
  gp2: 0.1,
  gp3: 0.08,
  io1: 0.125,
  io2: 0.125,
  st1: 0.045,
  sc1: 0.015,
  standard: 0.05,
  piops: 0.065,
  gp3Iops: 0.005,
  gp3Throughput: 0.04,
  snapshot: 0.05,
  idleAddress: 3.6,
};

const CleanupKindsSchema = z.strictObject({ address: z.boolean(), volume: z.boolean(), snapshot: z.boolean() });

/**
 * What the waste scanner applies, as the CDK construct passes it from `policies.waste` (and the
 * protected tag of `policies.enforcement`: one tag exempts a resource from every action).
 */
export const WastePolicySchema = z.strictObject({
  unattachedEbsDays: z.number().min(0),
  unusedSnapshotDays: z.number().min(0),
  prices: z.strictObject({ default: PriceTableSchema, regions: z.record(z.string(), PriceTableSchema.partial()) }),
  protectedTag: z.string().min(1),
  cleanup: z.strictObject({
    byEnvironment: z.record(EnvironmentClassSchema, CleanupKindsSchema),
    graceHours: z.number().min(0),
    circuitBreaker: CircuitBreakerSchema,
  }),
});
export type WastePolicy = z.infer<typeof WastePolicySchema>;

/** Tags Fleetwarden writes: the mark (ISO time after which the resource may be removed) and the volume backup's provenance. */
export const WASTE_TAGS = {
  removableAfter: 'fleetwarden:removable-after',
  finding: 'fleetwarden:finding',
  deletedVolume: 'fleetwarden:deleted-volume',
  deletedVolumeTags: 'fleetwarden:deleted-volume-tags',
} as const;

export interface ObservedAddress {
  kind: 'address';
  resourceId: string;
  publicIp?: string;
  /** Associated with an instance or a network interface. */
  associated: boolean;
  tags: Record<string, string>;
}

export interface ObservedVolume {
  kind: 'volume';
  resourceId: string;
  state: string;
  sizeGiB: number;
  volumeType: string;
  iops?: number;
  throughput?: number;
  createTime: Date;
  tags: Record<string, string>;
}

export interface ObservedSnapshot {
  kind: 'snapshot';
  resourceId: string;
  ownerId: string;
  state: string;
  sizeGiB: number;
  startTime: Date;
  description: string;
  volumeId?: string;
  tags: Record<string, string>;
}

export type ObservedResource = ObservedAddress | ObservedVolume | ObservedSnapshot;

/** Snapshot id -> what refers to it (an image, disabled or deprecated included; any launch template version; a launch configuration). */
export type SnapshotReferences = Map<string, string[]>;

/** Pure: every snapshot the images, launch template versions and launch configurations name, with who names it. */
export function snapshotReferences(sources: { referrer: string; snapshotIds: (string | undefined)[] }[]): SnapshotReferences {
  const refs: SnapshotReferences = new Map();
  for (const { referrer, snapshotIds } of sources) {
    for (const id of snapshotIds) {
      if (!id) continue;
      const list = refs.get(id);
      if (list) list.push(referrer);
      else refs.set(id, [referrer]);
    }
  }
  return refs;
}

/** AWS Backup and Data Lifecycle Manager own their snapshots' lifecycle: theirs are never waste. */
export function managedBy(snapshot: ObservedSnapshot): string | undefined {
  if (Object.keys(snapshot.tags).some((k) => k.startsWith('aws:backup:')) || /created by the AWS Backup service/i.test(snapshot.description)) return 'AWS Backup';
  if (Object.keys(snapshot.tags).some((k) => k.startsWith('aws:dlm:'))) return 'Data Lifecycle Manager';
  // The snapshot Fleetwarden took of a volume before deleting it is the volume's only copy.
  if (snapshot.tags[WASTE_TAGS.deletedVolume]) return `Fleetwarden (the backup of deleted volume ${snapshot.tags[WASTE_TAGS.deletedVolume]})`;
  return undefined;
}

export function pricesIn(region: string, policy: WastePolicy): PriceTable {
  return { ...policy.prices.default, ...policy.prices.regions[region] };
}

const round = (usd: number) => Math.round(usd * 100) / 100;

/** Pure: the estimated monthly cost of a resource at the region's list prices. */
export function monthlyCost(resource: ObservedResource, prices: PriceTable): number {
  switch (resource.kind) {
    case 'address':
      return prices.idleAddress;
    case 'snapshot':
      // Snapshots are incremental: the volume size is an upper bound of what one stores.
      return round(resource.sizeGiB * prices.snapshot);
    case 'volume': {
      const type = resource.volumeType as keyof PriceTable;
      const perGb = ['gp2', 'gp3', 'io1', 'io2', 'st1', 'sc1', 'standard'].includes(type) ? prices[type] : prices.gp2;
      let usd = resource.sizeGiB * perGb;
      if ((type === 'io1' || type === 'io2') && resource.iops) usd += resource.iops * prices.piops;
      if (type === 'gp3') usd += Math.max(0, (resource.iops ?? 3000) - 3000) * prices.gp3Iops + Math.max(0, (resource.throughput ?? 125) - 125) * prices.gp3Throughput;
      return round(usd);
    }
  }
}

export type WasteVerdict =
  | { waste: true; monthlyUsd: number; detail: string; sizeGiB?: number }
  /** Waste once it has been so long: a volume available for less than unattachedEbsDays. */
  | { waste: 'not-yet'; detail: string }
  | { waste: false; why: string };

const DAY_MS = 86_400_000;
const ageDays = (since: Date | string, now: Date) => (now.getTime() - new Date(since).getTime()) / DAY_MS;

export interface VerdictContext {
  now: Date;
  policy: WastePolicy;
  account: string;
  region: string;
  references: SnapshotReferences;
  /** Since when the volume is known to be available (its finding's). */
  availableSince?: string;
}

/**
 * Pure: whether an observed resource is waste now. The protected tag exempts every kind. An
 * Elastic IP is waste while unassociated; a volume once it has been `available` for
 * unattachedEbsDays; a snapshot of this account once it is older than unusedSnapshotDays, is
 * completed, and nothing refers to it and no backup service owns it.
 */
export function wasteVerdict(resource: ObservedResource, ctx: VerdictContext): WasteVerdict {
  const { policy, now } = ctx;
  if (Object.hasOwn(resource.tags, policy.protectedTag)) return { waste: false, why: `protected by tag ${policy.protectedTag}` };
  const usd = monthlyCost(resource, pricesIn(ctx.region, policy));
  switch (resource.kind) {
    case 'address':
      return resource.associated ? { waste: false, why: 'associated' } : { waste: true, monthlyUsd: usd, detail: `Elastic IP ${resource.publicIp ?? ''} not associated`.replace('  ', ' ') };
    case 'volume': {
      if (resource.state !== 'available') return { waste: false, why: `volume is ${resource.state}` };
      const since = ctx.availableSince ?? now.toISOString();
      const days = ageDays(since, now);
      const what = `${resource.volumeType} ${resource.sizeGiB} GiB available since ${since}`;
      if (days < policy.unattachedEbsDays) return { waste: 'not-yet', detail: `${what} (${days.toFixed(1)} of ${policy.unattachedEbsDays} days)` };
      return { waste: true, monthlyUsd: usd, sizeGiB: resource.sizeGiB, detail: what };
    }
    case 'snapshot': {
      if (resource.ownerId !== ctx.account) return { waste: false, why: `owned by account ${resource.ownerId}` };
      const referrers = ctx.references.get(resource.resourceId);
      if (referrers?.length) return { waste: false, why: `referenced by ${referrers.slice(0, 3).join(', ')}${referrers.length > 3 ? ` and ${referrers.length - 3} more` : ''}` };
      const manager = managedBy(resource);
      if (manager) return { waste: false, why: `managed by ${manager}` };
      if (resource.state !== 'completed') return { waste: false, why: `snapshot is ${resource.state}` };
      const days = ageDays(resource.startTime, now);
      if (days < policy.unusedSnapshotDays) return { waste: false, why: `${days.toFixed(1)} days old, under ${policy.unusedSnapshotDays}` };
      return { waste: true, monthlyUsd: usd, sizeGiB: resource.sizeGiB, detail: `${resource.sizeGiB} GiB snapshot${resource.volumeId ? ` of ${resource.volumeId}` : ''} from ${resource.startTime.toISOString()}, referenced by no image, launch template or launch configuration` };
    }
  }
}

export const cleanupAllowed = (kind: WasteKind, environment: z.infer<typeof EnvironmentClassSchema>, policy: WastePolicy): boolean => policy.cleanup.byEnvironment[environment]?.[kind] ?? false;
