import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateSnapshotCommand,
  CreateVolumeCommand,
  DescribeAddressesCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DisableImageCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
  RegisterImageCommand,
  type Tag,
} from '@aws-sdk/client-ec2';
import { AccountSessions } from '../functions/shared/accounts';
import { awsClient } from '../functions/shared/aws';

/** EC2 of a member account in moto, with that account's own (assumed-role) credentials. */
export async function memberEc2(account: string, region = 'us-east-1'): Promise<EC2Client> {
  return awsClient(EC2Client, await new AccountSessions('123456789012', 'fleetwarden-member').options(account, region));
}

const tagSpec = (ResourceType: 'volume' | 'snapshot' | 'elastic-ip', tags?: Record<string, string>) =>
  tags && Object.keys(tags).length ? [{ ResourceType, Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }] : undefined;

export async function idleAddress(ec2: EC2Client, tags?: Record<string, string>): Promise<{ allocationId: string; publicIp: string }> {
  const out = await ec2.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: tagSpec('elastic-ip', tags) }));
  return { allocationId: out.AllocationId!, publicIp: out.PublicIp! };
}

export async function associate(ec2: EC2Client, allocationId: string, instanceId: string): Promise<void> {
  await ec2.send(new AssociateAddressCommand({ AllocationId: allocationId, InstanceId: instanceId }));
}

export async function availableVolume(ec2: EC2Client, options: { sizeGiB?: number; type?: 'gp2' | 'gp3' | 'io1' | 'io2' | 'st1' | 'sc1' | 'standard'; iops?: number; tags?: Record<string, string>; zone?: string } = {}): Promise<string> {
  const region = await ec2.config.region();
  const out = await ec2.send(
    new CreateVolumeCommand({
      AvailabilityZone: options.zone ?? `${region}a`,
      Size: options.sizeGiB ?? 100,
      VolumeType: options.type ?? 'gp3',
      ...(options.iops ? { Iops: options.iops } : {}),
      TagSpecifications: tagSpec('volume', options.tags),
    }),
  );
  return out.VolumeId!;
}

export async function snapshotOf(ec2: EC2Client, volumeId: string, options: { description?: string; tags?: Record<string, string> } = {}): Promise<string> {
  const out = await ec2.send(new CreateSnapshotCommand({ VolumeId: volumeId, Description: options.description ?? 'seeded', TagSpecifications: tagSpec('snapshot', options.tags) }));
  return out.SnapshotId!;
}

/** An image of this account and the snapshot it refers to (EC2 makes one for the image); disabled when asked. */
export async function imageWithSnapshot(ec2: EC2Client, name: string, options: { disabled?: boolean } = {}): Promise<{ imageId: string; snapshotId: string }> {
  const { ImageId } = await ec2.send(new RegisterImageCommand({ Name: name, RootDeviceName: '/dev/xvda', VirtualizationType: 'hvm', Architecture: 'x86_64' }));
  const out = await ec2.send(new DescribeImagesCommand({ ImageIds: [ImageId!] }));
  const snapshotId = out.Images![0]!.BlockDeviceMappings!.find((m) => m.Ebs?.SnapshotId)!.Ebs!.SnapshotId!;
  if (options.disabled) await ec2.send(new DisableImageCommand({ ImageId }));
  return { imageId: ImageId!, snapshotId };
}

/** A launch template whose first version refers to the snapshot and whose later (default) version does not. */
export async function templateUsingSnapshotInOldVersion(ec2: EC2Client, name: string, snapshotId: string): Promise<string> {
  const lt = await ec2.send(
    new CreateLaunchTemplateCommand({
      LaunchTemplateName: name,
      LaunchTemplateData: { ImageId: 'ami-12345678', BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snapshotId, VolumeSize: 8 } }] },
    }),
  );
  const id = lt.LaunchTemplate!.LaunchTemplateId!;
  const v2 = await ec2.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId: id, LaunchTemplateData: { ImageId: 'ami-12345678', InstanceType: 'm5.large' } }));
  await ec2.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId: id, DefaultVersion: String(v2.LaunchTemplateVersion!.VersionNumber) }));
  return id;
}

const tagsOf = (tags?: Tag[]) => Object.fromEntries((tags ?? []).map((t) => [t.Key!, t.Value ?? '']));

export async function volumeState(ec2: EC2Client, volumeId: string): Promise<{ state: string; tags: Record<string, string> } | undefined> {
  try {
    const v = (await ec2.send(new DescribeVolumesCommand({ VolumeIds: [volumeId] }))).Volumes?.[0];
    return v ? { state: v.State!, tags: tagsOf(v.Tags) } : undefined;
  } catch (error) {
    if ((error as Error).name.includes('NotFound')) return undefined;
    throw error;
  }
}

export async function snapshotState(ec2: EC2Client, snapshotId: string): Promise<{ state: string; tags: Record<string, string> } | undefined> {
  try {
    const s = (await ec2.send(new DescribeSnapshotsCommand({ SnapshotIds: [snapshotId] }))).Snapshots?.[0];
    return s ? { state: s.State!, tags: tagsOf(s.Tags) } : undefined;
  } catch (error) {
    if ((error as Error).name.includes('NotFound')) return undefined;
    throw error;
  }
}

export async function snapshotsTagged(ec2: EC2Client, key: string, value: string): Promise<{ snapshotId: string; state: string; tags: Record<string, string> }[]> {
  const out = await ec2.send(new DescribeSnapshotsCommand({ Filters: [{ Name: `tag:${key}`, Values: [value] }] }));
  return (out.Snapshots ?? []).map((s) => ({ snapshotId: s.SnapshotId!, state: s.State!, tags: tagsOf(s.Tags) }));
}

export async function addressExists(ec2: EC2Client, allocationId: string): Promise<boolean> {
  try {
    return !!(await ec2.send(new DescribeAddressesCommand({ AllocationIds: [allocationId] }))).Addresses?.length;
  } catch (error) {
    if (/NotFound/.test((error as Error).name)) return false;
    throw error;
  }
}
