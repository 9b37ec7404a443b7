import { AutoScalingClient, DescribeLaunchConfigurationsCommand } from '@aws-sdk/client-auto-scaling';
import {
  CreateSnapshotCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeleteTagsCommand,
  DeleteVolumeCommand,
  DescribeAddressesCommand,
  DescribeImagesCommand,
  DescribeLaunchTemplateVersionsCommand,
  DescribeLaunchTemplatesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Address,
  type Snapshot,
  type Tag,
  type Volume,
  ReleaseAddressCommand,
} from '@aws-sdk/client-ec2';
import type { AccountSessions } from '../shared/accounts';
import { awsClient } from '../shared/aws';
import { type ObservedAddress, type ObservedSnapshot, type ObservedVolume, type SnapshotReferences, snapshotReferences } from './policy';

/** What the scanner reads in one account and region; listings page, and each page counts. */
export interface WasteInventory {
  addresses(account: string, region: string): Promise<ObservedAddress[]>;
  /** Volumes in state `available`, a page at a time. */
  availableVolumes(account: string, region: string): AsyncIterable<ObservedVolume[]>;
  /** Snapshots this account owns, a page at a time. */
  snapshots(account: string, region: string): AsyncIterable<ObservedSnapshot[]>;
  /** Every snapshot an image (disabled and deprecated included), a launch template version (every one) or a launch configuration names. */
  references(account: string, region: string): Promise<SnapshotReferences>;
  /** One resource as it is now; undefined when it no longer exists. */
  address(account: string, region: string, allocationId: string): Promise<ObservedAddress | undefined>;
  volume(account: string, region: string, volumeId: string): Promise<ObservedVolume | undefined>;
  snapshot(account: string, region: string, snapshotId: string): Promise<ObservedSnapshot | undefined>;
  /** The backup snapshot Fleetwarden started of a volume, if any (found by its tag). */
  backupOf(account: string, region: string, volumeId: string): Promise<ObservedSnapshot | undefined>;
  /** API calls made so far (each page is one). */
  readonly calls: number;
}

/** What cleanup does. Each call is idempotent in EC2 or guarded by the finding's recorded state. */
export interface WasteActions {
  tag(account: string, region: string, resourceIds: string[], tags: Record<string, string>): Promise<void>;
  untag(account: string, region: string, resourceIds: string[], keys: string[]): Promise<void>;
  releaseAddress(account: string, region: string, allocationId: string): Promise<void>;
  snapshotVolume(account: string, region: string, volume: ObservedVolume, tags: Record<string, string>): Promise<string>;
  deleteVolume(account: string, region: string, volumeId: string): Promise<void>;
  deleteSnapshot(account: string, region: string, snapshotId: string): Promise<void>;
}

const tagsOf = (tags: Tag[] | undefined) => Object.fromEntries((tags ?? []).map((t) => [t.Key!, t.Value ?? '']));
const tagList = (tags: Record<string, string>) => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const address = (a: Address): ObservedAddress => ({
  kind: 'address',
  resourceId: a.AllocationId ?? a.PublicIp!,
  ...(a.PublicIp ? { publicIp: a.PublicIp } : {}),
  associated: !!(a.AssociationId || a.InstanceId || a.NetworkInterfaceId),
  tags: tagsOf(a.Tags),
});
const volume = (v: Volume): ObservedVolume => ({
  kind: 'volume',
  resourceId: v.VolumeId!,
  state: v.State ?? 'unknown',
  sizeGiB: v.Size ?? 0,
  volumeType: v.VolumeType ?? 'gp2',
  ...(v.Iops !== undefined ? { iops: v.Iops } : {}),
  ...(v.Throughput !== undefined ? { throughput: v.Throughput } : {}),
  createTime: v.CreateTime ?? new Date(0),
  tags: tagsOf(v.Tags),
});
const snapshot = (s: Snapshot): ObservedSnapshot => ({
  kind: 'snapshot',
  resourceId: s.SnapshotId!,
  ownerId: s.OwnerId ?? '',
  state: s.State ?? 'unknown',
  sizeGiB: s.VolumeSize ?? 0,
  startTime: s.StartTime ?? new Date(),
  description: s.Description ?? '',
  ...(s.VolumeId && s.VolumeId !== 'vol-ffffffff' ? { volumeId: s.VolumeId } : {}),
  tags: tagsOf(s.Tags),
});

const notFound = (error: unknown) => /NotFound|Malformed/.test((error as Error).name);

/** The call's result, or undefined when EC2 says the resource does not exist (any more). */
async function unlessGone<T>(call: () => Promise<T>): Promise<T | undefined> {
  try {
    return await call();
  } catch (error) {
    if (notFound(error)) return undefined;
    throw error;
  }
}

/** Largest pages: DescribeSnapshots and DescribeImages 1,000, DescribeVolumes 500, launch templates 200, launch configurations 100. */
const PAGE = { snapshots: 1_000, images: 1_000, volumes: 500, templates: 200, versions: 200, configurations: 100 } as const;

/** EC2 and Auto Scaling through the member role of each account (the home account: the function's own role). */
export class Ec2Waste implements WasteInventory, WasteActions {
  calls = 0;

  constructor(private readonly sessions: AccountSessions) {}

  private async ec2(account: string, region: string): Promise<EC2Client> {
    return awsClient(EC2Client, await this.sessions.options(account, region));
  }

  /** Counts one API call (a page is one). */
  private count<T>(call: Promise<T>): Promise<T> {
    this.calls += 1;
    return call;
  }

  async addresses(account: string, region: string): Promise<ObservedAddress[]> {
    // DescribeAddresses does not page: one call returns every address of the region.
    const out = await this.count((await this.ec2(account, region)).send(new DescribeAddressesCommand({})));
    return (out.Addresses ?? []).map(address);
  }

  async *availableVolumes(account: string, region: string): AsyncIterable<ObservedVolume[]> {
    const ec2 = await this.ec2(account, region);
    let NextToken: string | undefined;
    do {
      const out = await this.count((ec2).send(new DescribeVolumesCommand({ Filters: [{ Name: 'status', Values: ['available'] }], MaxResults: PAGE.volumes, NextToken })));
      yield (out.Volumes ?? []).map(volume);
      NextToken = out.NextToken;
    } while (NextToken);
  }

  async *snapshots(account: string, region: string): AsyncIterable<ObservedSnapshot[]> {
    const ec2 = await this.ec2(account, region);
    let NextToken: string | undefined;
    do {
      const out = await this.count((ec2).send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], MaxResults: PAGE.snapshots, NextToken })));
      yield (out.Snapshots ?? []).map(snapshot);
      NextToken = out.NextToken;
    } while (NextToken);
  }

  async references(account: string, region: string): Promise<SnapshotReferences> {
    const ec2 = await this.ec2(account, region);
    const sources: { referrer: string; snapshotIds: (string | undefined)[] }[] = [];
    let NextToken: string | undefined;
    do {
      // Disabled images are left out unless asked for; deprecated ones are returned to their owner anyway.
      const out = await this.count((ec2).send(new DescribeImagesCommand({ Owners: ['self'], IncludeDisabled: true, IncludeDeprecated: true, MaxResults: PAGE.images, NextToken })));
      for (const image of out.Images ?? []) {
        const how = image.State === 'disabled' ? ' (disabled)' : image.DeprecationTime && Date.parse(image.DeprecationTime) < Date.now() ? ' (deprecated)' : '';
        sources.push({ referrer: `image ${image.ImageId}${how}`, snapshotIds: (image.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId) });
      }
      NextToken = out.NextToken;
    } while (NextToken);
    const templates: string[] = [];
    do {
      const out = await this.count((ec2).send(new DescribeLaunchTemplatesCommand({ MaxResults: PAGE.templates, NextToken })));
      templates.push(...(out.LaunchTemplates ?? []).map((t) => t.LaunchTemplateId!));
      NextToken = out.NextToken;
    } while (NextToken);
    for (const LaunchTemplateId of templates) {
      // Every version of the template, not only the default and the latest: any can be launched.
      do {
        const out = await this.count((ec2).send(new DescribeLaunchTemplateVersionsCommand({ LaunchTemplateId, MaxResults: PAGE.versions, NextToken })));
        for (const v of out.LaunchTemplateVersions ?? []) {
          sources.push({ referrer: `launch template ${LaunchTemplateId} v${v.VersionNumber}`, snapshotIds: (v.LaunchTemplateData?.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId) });
        }
        NextToken = out.NextToken;
      } while (NextToken);
    }
    const autoscaling = awsClient(AutoScalingClient, await this.sessions.options(account, region));
    do {
      const out = await this.count((autoscaling).send(new DescribeLaunchConfigurationsCommand({ MaxRecords: PAGE.configurations, NextToken })));
      for (const c of out.LaunchConfigurations ?? []) {
        sources.push({ referrer: `launch configuration ${c.LaunchConfigurationName}`, snapshotIds: (c.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId) });
      }
      NextToken = out.NextToken;
    } while (NextToken);
    return snapshotReferences(sources);
  }

  async address(account: string, region: string, allocationId: string): Promise<ObservedAddress | undefined> {
    const ec2 = await this.ec2(account, region);
    const found = (await unlessGone(() => this.count(ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] })))))?.Addresses?.[0];
    return found ? address(found) : undefined;
  }

  async volume(account: string, region: string, volumeId: string): Promise<ObservedVolume | undefined> {
    const ec2 = await this.ec2(account, region);
    const found = (await unlessGone(() => this.count(ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] })))))?.Volumes?.[0];
    return found ? volume(found) : undefined;
  }

  async snapshot(account: string, region: string, snapshotId: string): Promise<ObservedSnapshot | undefined> {
    const ec2 = await this.ec2(account, region);
    const found = (await unlessGone(() => this.count(ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] })))))?.Snapshots?.[0];
    return found ? snapshot(found) : undefined;
  }

  async backupOf(account: string, region: string, volumeId: string): Promise<ObservedSnapshot | undefined> {
    const out = await this.count((await this.ec2(account, region)).send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: [{ Name: 'tag:fleetwarden:deleted-volume', Values: [volumeId] }] })));
    return (out.Snapshots ?? []).map(snapshot).find((s) => s.state !== 'error');
  }

  async tag(account: string, region: string, resourceIds: string[], tags: Record<string, string>): Promise<void> {
    const ec2 = await this.ec2(account, region);
    // CreateTags takes many resources per call; 100 keeps the request small.
    for (let i = 0; i < resourceIds.length; i += 100) await this.count((ec2).send(new CreateTagsCommand({ Resources: resourceIds.slice(i, i + 100), Tags: tagList(tags) })));
  }

  async untag(account: string, region: string, resourceIds: string[], keys: string[]): Promise<void> {
    const ec2 = await this.ec2(account, region);
    for (let i = 0; i < resourceIds.length; i += 100) await this.count((ec2).send(new DeleteTagsCommand({ Resources: resourceIds.slice(i, i + 100), Tags: keys.map((Key) => ({ Key })) })));
  }

  async releaseAddress(account: string, region: string, allocationId: string): Promise<void> {
    await this.count((await this.ec2(account, region)).send(new ReleaseAddressCommand({ AllocationId: allocationId })));
  }

  async snapshotVolume(account: string, region: string, v: ObservedVolume, tags: Record<string, string>): Promise<string> {
    const out = await this.count((await this.ec2(account, region)).send(new CreateSnapshotCommand({ VolumeId: v.resourceId, Description: `Fleetwarden: ${v.resourceId} before its deletion as waste`, TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList(tags) }] }),));
    return out.SnapshotId!;
  }

  /** Idempotent: a volume that is gone already is deleted. */
  async deleteVolume(account: string, region: string, volumeId: string): Promise<void> {
    const ec2 = await this.ec2(account, region);
    await unlessGone(() => this.count(ec2.send(new DeleteVolumeCommand({ VolumeId: volumeId }))));
  }

  /** Idempotent: a snapshot that is gone already is deleted. */
  async deleteSnapshot(account: string, region: string, snapshotId: string): Promise<void> {
    const ec2 = await this.ec2(account, region);
    await unlessGone(() => this.count(ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }))));
  }
}
