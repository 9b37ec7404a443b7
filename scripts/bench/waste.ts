/**
 * The waste scanner at scale, beside Cloud Custodian on the same resources (measures, never
 * asserts; a finding count that differs from the seeding is reported loudly, not hidden).
 *
 * - Fleet: one LAB member account, us-east-1 (one account-region holds everything): 50,000
 *   snapshots, 5,000 volumes, 1,000 Elastic IPs, 2,000 images and 1,000 launch templates of 3
 *   versions each, plus a few launch configurations. Seeded with the member account's
 *   credentials, straight to moto (not through the counting proxy), with batched calls where EC2
 *   has them: RunInstances with block device mappings (20 in-use volumes per instance), and
 *   CreateSnapshots (one snapshot of each of an instance's 20 volumes per call).
 * - What is waste and what only looks like it (the `MIX` below): idle addresses beside associated
 *   and protected ones; available volumes beside in-use and protected ones; unused snapshots
 *   beside those an image refers to (disabled images included), an old launch template version
 *   (v1, neither the default nor the latest), a launch configuration no Auto Scaling group uses,
 *   AWS Backup (by description and by `aws:backup:` tag), Data Lifecycle Manager (`aws:dlm:` tag)
 *   and protected ones. Every seeded id keeps its category: the findings of both tools are
 *   checked against the seeding, and every id where they differ is explained by its category.
 * - Fleetwarden: the synthesized `fleetwarden-waste-scan` state machine, run locally (its Lambda
 *   tasks call the real WasteSteps handler in process), on a stack synthesized with this account
 *   and region, dry run, thresholds of 0 days (moto dates every volume and snapshot now). The
 *   FIRST scan opens a finding for each wasted resource; the SECOND runs over the unchanged fleet.
 * - Cloud Custodian: its usual report-only policies for idle EIPs, unattached volumes and unused
 *   snapshots, with c7n-org over the same account-region (scripts/bench/c7n.ts), through the
 *   same counting proxy.
 *
 * Its own moto and counting proxy, as the enforcement section's (every count is of this
 * section's calls only; the proxy is reset before each measured run).
 *
 * Exported: wasteBench(), for scripts/bench.ts. Standalone (`tsx scripts/bench/waste.ts
 * [--scale 0.1]`) prints the JSON and writes nothing; --scale shrinks every count (development).
 */
import '../quiet-runtime';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { AutoScalingClient, CreateLaunchConfigurationCommand } from '@aws-sdk/client-auto-scaling';
import {
  AllocateAddressCommand,
  AssociateAddressCommand,
  CreateLaunchTemplateCommand,
  CreateLaunchTemplateVersionCommand,
  CreateSnapshotCommand,
  CreateSnapshotsCommand,
  CreateVolumeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  DisableImageCommand,
  EC2Client,
  ModifyLaunchTemplateCommand,
  RegisterImageCommand,
  RunInstancesCommand,
  type Snapshot,
  type Tag,
  type Volume,
  type VolumeType,
} from '@aws-sdk/client-ec2';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { DynamoLedger } from '../../functions/ledger/store';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClientConfig, documentClient } from '../../functions/shared/aws';
import { WASTE_STATES, type FindingState } from '../../functions/waste/findings';
import type { ReportResult } from '../../functions/waste/steps';
import { type ObservedResource, WASTE_KINDS, type WasteKind, type WastePolicy, monthlyCost, pricesIn } from '../../functions/waste/policy';
import { PROJECT_ROOT } from '../../lib/paths';
import { type CountingProxy, startCountingProxy } from '../../local/counting-proxy';
import { motoEnvironment } from '../../local/moto';
import { type LocalStack, provision } from '../../local/provision';
import { type TaskHandler, runStateMachine, taskStates } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { type C7nPolicySet, type C7nRun, ensureC7nVenv, runC7nOrg, runCustodianPerTarget } from './c7n';
import { type Meters, UNTRACKED_DYNAMODB_PRELUDE, installMeters, sampleMemory, startMotoWithPrelude, withLocalTimeouts } from './harness';

const HOME_ACCOUNT = '123456789012'; // the stack's account in local/provision.ts
const MEMBER_ROLE = 'fleetwarden-member';
const ACCOUNT = { id: '310000000001', name: 'bench-waste-lab', environment: 'LAB' } as const;
const REGION = 'us-east-1';
const TARGET = { account: ACCOUNT.id, region: REGION };
const SCAN = 'WasteScanStateMachine';
const STEPS = 'WasteWasteSteps';
/** The WasteSteps function's memory (lib/constructs/waste.ts); it runs on ARM64 (lib/constructs/fleet-function.ts). */
const LAMBDA_MEMORY_MB = 1024;
/** Requests in flight at once while seeding: moto serves one at a time, the overlap hides the client's share. */
const SEED_CONCURRENCY = 8;
/**
 * Every volume of an instance, its root device among them: given block device mappings, moto
 * creates only those (no root volume of its own), so the root is one of them, as on EC2.
 */
const ATTACHED_DEVICES = ['/dev/sda1', ...'fghijklmnopqrstuvwx'.split('').map((c) => `/dev/sd${c}`)];
const VOLUMES_PER_INSTANCE = ATTACHED_DEVICES.length;
const ATTACHED_SIZES = [8, 16, 32, 64, 100];
const VERSIONS_PER_TEMPLATE = 3;
const PROTECTED_TAG = 'fleetwarden:protected';
const BACKUP_DESCRIPTION = 'This snapshot is created by the AWS Backup service.';

/** The scanner's largest pages (functions/waste/resources.ts): a scan cannot read the account-region in fewer. */
const PAGE = { volumes: 500, snapshots: 1_000, images: 1_000, templates: 200, versions: 200, configurations: 100 } as const;
/** The read calls those pages are (an account-region's listing, nothing else). */
const LISTING_CALLS = ['DescribeAddresses', 'DescribeVolumes', 'DescribeSnapshots', 'DescribeImages', 'DescribeLaunchTemplates', 'DescribeLaunchTemplateVersions', 'DescribeLaunchConfigurations'];

/**
 * AWS list prices (us-east-1): Step Functions Standard $0.025 per 1,000 state transitions;
 * Lambda $0.20 per million requests and $0.0000133334 per GB-second on ARM64; DynamoDB
 * on-demand $0.625 per million write and $0.125 per million read request units; EventBridge
 * custom events $1.00 per million entries. EC2, Auto Scaling Describe* and STS AssumeRole are free.
 */
const PRICE = { transition: 0.025 / 1000, lambdaRequest: 0.2 / 1e6, lambdaGbSecond: 0.0000133334, ddbWrite: 0.625 / 1e6, ddbRead: 0.125 / 1e6, event: 1 / 1e6 };

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const cents = (usd: number) => Math.round(usd * 100) / 100;
const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
const pages = (items: number, size: number) => Math.max(1, Math.ceil(items / size));

// ---------------------------------------------------------------------------------------------
// The fleet's shape.

/** How many of each, at a scale (1: the issue's sizes). Every share of a kind is a fixed part of it. */
function fleetShape(scale: number) {
  const n = (full: number, min = 1) => Math.max(min, Math.round(full * scale));
  const instances = n(200);
  const volumes = n(5_000, instances * VOLUMES_PER_INSTANCE + 2);
  const available = volumes - instances * VOLUMES_PER_INSTANCE;
  const addresses = n(1_000, instances + 2);
  const images = n(2_000, 2);
  const templates = n(1_000);
  const launchConfigurations = n(10);
  const special = { backupDescription: n(300), backupTag: n(100), dlm: n(200), protected: n(100) };
  const snapshots = n(50_000, images + sum(Object.values(special)) + templates + launchConfigurations + 1);
  return {
    instances,
    volumes: { total: volumes, inUse: instances * VOLUMES_PER_INSTANCE, available, protected: Math.max(1, Math.round(available * 0.05)) },
    addresses: { total: addresses, associated: instances, protected: Math.max(1, Math.round(addresses * 0.05)) },
    images: { total: images, disabled: Math.max(1, Math.round(images * 0.1)) },
    templates,
    launchConfigurations,
    snapshots: { total: snapshots, ofImages: images, ...special, plain: snapshots - images - sum(Object.values(special)) },
  };
}
type Shape = ReturnType<typeof fleetShape>;

/** The fewest pages a scan of the account-region can read (each listing at its largest page, at least one call each), from what moto holds. */
function minimumPages(held: { availableVolumes: number; snapshots: number; images: number }, shape: Shape) {
  const byCall = {
    DescribeAddresses: 1,
    DescribeVolumes: pages(held.availableVolumes, PAGE.volumes),
    DescribeSnapshots: pages(held.snapshots, PAGE.snapshots),
    DescribeImages: pages(held.images, PAGE.images),
    DescribeLaunchTemplates: pages(shape.templates, PAGE.templates),
    DescribeLaunchTemplateVersions: shape.templates * Math.ceil(VERSIONS_PER_TEMPLATE / PAGE.versions),
    DescribeLaunchConfigurations: pages(shape.launchConfigurations, PAGE.configurations),
  };
  return { total: sum(Object.values(byCall)), byCall };
}

/** cdk.json's config with this account and region, dry run, thresholds of 0 days. */
function benchConfig(): Record<string, unknown> {
  const cdk = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: { fleetwarden: Record<string, unknown> } };
  const base = cdk.context.fleetwarden;
  const policies = (base.policies ?? {}) as Record<string, Record<string, unknown>>;
  return {
    ...base,
    regions: [REGION],
    accounts: [ACCOUNT],
    dryRun: true,
    policies: { ...policies, waste: { ...(policies.waste ?? {}), unattachedEbsDays: 0, unusedSnapshotDays: 0 } },
  };
}

// ---------------------------------------------------------------------------------------------
// The section's moto.

/**
 * test/emulators/moto_serial.py (one request at a time, the EC2 listings paged), with three
 * changes to moto, none of them in what is measured:
 * - DynamoDB's models untracked (BaseModel.instances_tracked keeps every model instance ever
 *   created, for the /moto-api listing nothing here reads), as in the enforcement section;
 * - TransactWriteItems' rollback made per item: moto deep-copies the whole table for each item
 *   of a transaction before applying it (99 copies of a ledger growing to ~100,000 items per
 *   transaction, ~1,500 transactions in the first scan: hours, and gigabytes). Here each item's
 *   previous version is kept instead (and the table's stream length), and put back if the
 *   transaction is cancelled: the same outcome, as the server runs one request at a time;
 * - DescribeImages leaves disabled images out unless IncludeDisabled is true, as EC2 does (moto
 *   ignores the parameter and always returns them); asked by id, an image is returned as it is.
 */
const WASTE_MOTO_PRELUDE = `${UNTRACKED_DYNAMODB_PRELUDE}
import copy
from moto.core.responses import ActionResult
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.ec2.responses import EC2Response


transact_write_items = DynamoDBBackend.transact_write_items

def put_back(table, hash_value, range_value, before):
    if range_value is None:
        if before is None:
            table.items.pop(hash_value, None)
        else:
            table.items[hash_value] = before
    elif before is None:
        table.items.get(hash_value, {}).pop(range_value, None)
    else:
        table.items[hash_value][range_value] = before

def transact_write_items_undoable(self, transact_items):
    saved, streams = [], {}
    for item in transact_items:
        try:
            op_type, op = next(iter(item.items()))
            table = self.get_table(op["TableName"])
            hash_value, range_value = self.get_keys_value(table, op["Item"] if op_type == "Put" else op["Key"])
        except Exception:
            continue  # moto's own checks reject the transaction before writing anything of it
        saved.append((table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value))))
        if table.stream_shard is not None:
            streams.setdefault(id(table), (table.stream_shard, len(table.stream_shard.items)))
    Table.__deepcopy__ = lambda table, memo: table
    try:
        transact_write_items(self, transact_items)
    except Exception:
        for table, hash_value, range_value, before in reversed(saved):
            put_back(table, hash_value, range_value, before)
        for shard, length in streams.values():
            del shard.items[length:]
        raise
    finally:
        del Table.__deepcopy__

DynamoDBBackend.transact_write_items = transact_write_items_undoable

describe_images = EC2Response.describe_images

def describe_images_without_disabled(self):
    result = describe_images(self)
    if self._get_param("ImageIds") or self._get_bool_param("IncludeDisabled", False):
        return result
    body = dict(result.result)
    body["Images"] = [image for image in body.get("Images") or [] if getattr(image, "state", None) != "disabled"]
    return ActionResult(body)

EC2Response.describe_images = describe_images_without_disabled
`;

/** A process's resident set now and at its highest (VmRSS, VmHWM), in MB; undefined where /proc has none. */
function processMemory(pid: number): { rssMb: number; peakRssMb: number } | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    return { rssMb: round(kb('VmRSS') / 1024), peakRssMb: round(kb('VmHWM') / 1024) };
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Seeding.

/** What a seeded resource is, as both tools should see it: `waste` is the one category either should report. */
type Category =
  | 'waste'
  | 'associated'
  | 'protected'
  | 'of an image'
  | 'of a disabled image'
  | 'in launch template v1 (neither default nor latest)'
  | 'in a launch configuration no Auto Scaling group uses'
  | 'AWS Backup (description)'
  | 'AWS Backup (aws:backup: tag)'
  | 'Data Lifecycle Manager (aws:dlm: tag)';

interface Fleet {
  shape: Shape;
  /** `account/region/id` -> its kind and category, for every address, available volume and snapshot seeded. */
  seeded: Map<string, { kind: WasteKind; category: Category }>;
  /** The waste Fleetwarden should find, with its monthly cost at the scanner's prices. */
  expected: Record<WasteKind, Map<string, number>>;
  /** What moto holds after seeding, listed back (direct, not counted). */
  listed: { volumes: number; availableVolumes: number; snapshots: number; images: number; imagesWithoutIncludeDisabled: number };
  calls: number;
  seconds: number;
}

/** Runs the tasks, `concurrency` at a time; resolves with their results in order. */
async function pool<T>(tasks: (() => Promise<T>)[], concurrency = SEED_CONCURRENCY): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, tasks.length) }, worker));
  return results;
}

const tagSpec = (ResourceType: 'volume' | 'snapshot' | 'elastic-ip', tags?: Record<string, string>) =>
  tags ? [{ ResourceType, Tags: Object.entries(tags).map(([Key, Value]): Tag => ({ Key, Value })) }] : undefined;

/** The available volumes' types and sizes, in turn (gp3 above its included IOPS and throughput among them). */
const AVAILABLE_VOLUMES: { type: VolumeType; sizeGiB: number; iops?: number; throughput?: number }[] = [
  { type: 'gp3', sizeGiB: 100 },
  { type: 'gp2', sizeGiB: 50 },
  { type: 'io1', sizeGiB: 200, iops: 2_000 },
  { type: 'st1', sizeGiB: 500 },
  { type: 'sc1', sizeGiB: 1_000 },
  { type: 'gp3', sizeGiB: 200, iops: 6_000, throughput: 250 },
];

async function seedFleet(motoEndpoint: string, shape: Shape, policy: WastePolicy): Promise<Fleet> {
  const started = performance.now();
  const credentials = await new AccountSessions(HOME_ACCOUNT, MEMBER_ROLE).options(ACCOUNT.id, REGION);
  // Straight to moto: the seeding is not measured, and the proxy would only slow it.
  const direct = { ...awsClientConfig(credentials), endpoint: motoEndpoint };
  const ec2Client = new EC2Client(direct);
  const autoscaling = new AutoScalingClient(direct);
  let calls = 0;
  const counted = { step: 'initialize', name: 'fleetwardenBenchWasteSeedCalls' } as const;
  ec2Client.middlewareStack.add((next) => (args) => ((calls += 1), next(args)), counted);
  autoscaling.middlewareStack.add((next) => (args) => ((calls += 1), next(args)), counted);
  const prices = pricesIn(REGION, policy);
  const seeded: Fleet['seeded'] = new Map();
  const expected: Fleet['expected'] = { address: new Map(), volume: new Map(), snapshot: new Map() };
  const key = (id: string) => `${ACCOUNT.id}/${REGION}/${id}`;
  const note = (kind: WasteKind, id: string, category: Category, resource?: ObservedResource) => {
    seeded.set(key(id), { kind, category });
    if (category === 'waste') expected[kind].set(key(id), monthlyCost(resource!, prices));
  };

  // Instances, each with 20 in-use volumes (its root volume and 19 more), in one call.
  const run = await ec2Client.send(
    new RunInstancesCommand({
      ImageId: 'ami-12345678',
      InstanceType: 'm5.large',
      MinCount: shape.instances,
      MaxCount: shape.instances,
      BlockDeviceMappings: ATTACHED_DEVICES.map((DeviceName, i) => ({ DeviceName, Ebs: { VolumeSize: ATTACHED_SIZES[i % ATTACHED_SIZES.length]!, VolumeType: 'gp3', DeleteOnTermination: true } })),
    }),
  );
  const instances = (run.Instances ?? []).map((i) => i.InstanceId!);

  // Available volumes (some protected), addresses (some protected), images: independent of each other.
  const volumeTasks = Array.from({ length: shape.volumes.available }, (_, i) => async () => {
    const spec = AVAILABLE_VOLUMES[i % AVAILABLE_VOLUMES.length]!;
    const isProtected = i < shape.volumes.protected;
    const v = (await ec2Client.send(
      new CreateVolumeCommand({
        AvailabilityZone: `${REGION}a`,
        Size: spec.sizeGiB,
        VolumeType: spec.type,
        ...(spec.iops ? { Iops: spec.iops } : {}),
        ...(spec.throughput ? { Throughput: spec.throughput } : {}),
        TagSpecifications: tagSpec('volume', isProtected ? { [PROTECTED_TAG]: 'true' } : { team: `team-${i % 7}` }),
      }),
    )) as Volume;
    const observed: ObservedResource = {
      kind: 'volume',
      resourceId: v.VolumeId!,
      state: v.State ?? 'available',
      sizeGiB: v.Size ?? 0,
      volumeType: v.VolumeType ?? 'gp2',
      ...(v.Iops !== undefined ? { iops: v.Iops } : {}),
      ...(v.Throughput !== undefined ? { throughput: v.Throughput } : {}),
      createTime: v.CreateTime ?? new Date(),
      tags: {},
    };
    note('volume', v.VolumeId!, isProtected ? 'protected' : 'waste', observed);
    return v.VolumeId!;
  });
  const addressTasks = Array.from({ length: shape.addresses.total }, (_, i) => async () => {
    const isProtected = i >= shape.addresses.associated && i < shape.addresses.associated + shape.addresses.protected;
    const out = await ec2Client.send(new AllocateAddressCommand({ Domain: 'vpc', TagSpecifications: tagSpec('elastic-ip', isProtected ? { [PROTECTED_TAG]: 'true' } : undefined) }));
    if (i < shape.addresses.associated) {
      await ec2Client.send(new AssociateAddressCommand({ AllocationId: out.AllocationId!, InstanceId: instances[i]! }));
      note('address', out.AllocationId!, 'associated');
    } else note('address', out.AllocationId!, isProtected ? 'protected' : 'waste', { kind: 'address', resourceId: out.AllocationId!, publicIp: out.PublicIp ?? '', associated: false, tags: {} });
    return out.AllocationId!;
  });
  const imageTasks = Array.from({ length: shape.images.total }, (_, i) => async () => {
    const out = await ec2Client.send(new RegisterImageCommand({ Name: `bench-waste-image-${i}`, RootDeviceName: '/dev/xvda', VirtualizationType: 'hvm', Architecture: 'x86_64' }));
    if (i < shape.images.disabled) await ec2Client.send(new DisableImageCommand({ ImageId: out.ImageId! }));
    return out.ImageId!;
  });
  const [availableVolumes, , imageIds] = await Promise.all([pool(volumeTasks), pool(addressTasks), pool(imageTasks)]);
  const disabledImages = new Set(imageIds.slice(0, shape.images.disabled));

  // The image's snapshots (EC2 makes one per image): read back, disabled images included.
  let NextToken: string | undefined;
  do {
    const out = await ec2Client.send(new DescribeImagesCommand({ Owners: ['self'], IncludeDisabled: true, MaxResults: 1_000, NextToken }));
    for (const image of out.Images ?? []) {
      for (const m of image.BlockDeviceMappings ?? []) if (m.Ebs?.SnapshotId) note('snapshot', m.Ebs.SnapshotId, disabledImages.has(image.ImageId!) ? 'of a disabled image' : 'of an image');
    }
    NextToken = out.NextToken;
  } while (NextToken);

  // Snapshots of the instances' volumes, 20 a call; a remainder one at a time, of available volumes.
  const snapshotGroup = async (count: number, options: { description?: string; tags?: Record<string, string> } = {}) => {
    const tasks: (() => Promise<Snapshot[]>)[] = [];
    for (let i = 0; i < Math.floor(count / VOLUMES_PER_INSTANCE); i++) {
      const InstanceId = instances[i % instances.length]!;
      tasks.push(async () => (await ec2Client.send(new CreateSnapshotsCommand({ InstanceSpecification: { InstanceId }, Description: options.description ?? 'nightly copy', TagSpecifications: tagSpec('snapshot', options.tags) }))).Snapshots ?? []);
    }
    for (let i = 0; i < count % VOLUMES_PER_INSTANCE; i++) {
      const VolumeId = availableVolumes[i % availableVolumes.length]!;
      tasks.push(async () => [(await ec2Client.send(new CreateSnapshotCommand({ VolumeId, Description: options.description ?? 'manual copy', TagSpecifications: tagSpec('snapshot', options.tags) }))) as Snapshot]);
    }
    return (await pool(tasks)).flat();
  };
  const s = shape.snapshots;
  for (const snap of await snapshotGroup(s.backupDescription, { description: BACKUP_DESCRIPTION })) note('snapshot', snap.SnapshotId!, 'AWS Backup (description)');
  for (const snap of await snapshotGroup(s.backupTag, { tags: { 'aws:backup:source-resource': 'arn:aws:ec2:us-east-1:000000000000:volume/vol-0' } })) note('snapshot', snap.SnapshotId!, 'AWS Backup (aws:backup: tag)');
  for (const snap of await snapshotGroup(s.dlm, { tags: { 'aws:dlm:lifecycle-policy-id': 'policy-0123456789abcdef0' } })) note('snapshot', snap.SnapshotId!, 'Data Lifecycle Manager (aws:dlm: tag)');
  for (const snap of await snapshotGroup(s.protected, { tags: { [PROTECTED_TAG]: 'true' } })) note('snapshot', snap.SnapshotId!, 'protected');
  const plain = await snapshotGroup(s.plain);

  // Launch templates whose v1 refers to a plain snapshot (v2 is the default, v3 the latest);
  // launch configurations that refer to one, used by no Auto Scaling group.
  const inTemplates = plain.slice(0, shape.templates);
  const inConfigurations = plain.slice(shape.templates, shape.templates + shape.launchConfigurations);
  await pool(
    inTemplates.map((snap, i) => async () => {
      const lt = await ec2Client.send(
        new CreateLaunchTemplateCommand({
          LaunchTemplateName: `bench-waste-${i}`,
          LaunchTemplateData: { ImageId: 'ami-12345678', BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snap.SnapshotId!, VolumeSize: snap.VolumeSize ?? 8 } }] },
        }),
      );
      const LaunchTemplateId = lt.LaunchTemplate!.LaunchTemplateId!;
      for (const InstanceType of ['m5.large', 'm5.xlarge'] as const) await ec2Client.send(new CreateLaunchTemplateVersionCommand({ LaunchTemplateId, LaunchTemplateData: { ImageId: 'ami-12345678', InstanceType } }));
      await ec2Client.send(new ModifyLaunchTemplateCommand({ LaunchTemplateId, DefaultVersion: '2' }));
    }),
  );
  await pool(
    inConfigurations.map((snap, i) => async () => {
      await autoscaling.send(
        new CreateLaunchConfigurationCommand({
          LaunchConfigurationName: `bench-waste-${i}`,
          ImageId: imageIds[imageIds.length - 1]!,
          InstanceType: 'm5.large',
          BlockDeviceMappings: [{ DeviceName: '/dev/sdf', Ebs: { SnapshotId: snap.SnapshotId!, VolumeSize: snap.VolumeSize ?? 8 } }],
        }),
      );
    }),
  );
  for (const snap of inTemplates) note('snapshot', snap.SnapshotId!, 'in launch template v1 (neither default nor latest)');
  for (const snap of inConfigurations) note('snapshot', snap.SnapshotId!, 'in a launch configuration no Auto Scaling group uses');
  for (const snap of plain.slice(shape.templates + shape.launchConfigurations)) {
    note('snapshot', snap.SnapshotId!, 'waste', {
      kind: 'snapshot',
      resourceId: snap.SnapshotId!,
      ownerId: ACCOUNT.id,
      state: 'completed',
      sizeGiB: snap.VolumeSize ?? 0,
      startTime: new Date(),
      description: '',
      tags: {},
    });
  }

  // What moto holds now, listed back in one unpaged call each.
  const seedCalls = calls;
  const listed = {
    volumes: (await ec2Client.send(new DescribeVolumesCommand({}))).Volumes?.length ?? 0,
    availableVolumes: (await ec2Client.send(new DescribeVolumesCommand({ Filters: [{ Name: 'status', Values: ['available'] }] }))).Volumes?.length ?? 0,
    snapshots: (await ec2Client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots?.length ?? 0,
    images: (await ec2Client.send(new DescribeImagesCommand({ Owners: ['self'], IncludeDisabled: true }))).Images?.length ?? 0,
    imagesWithoutIncludeDisabled: (await ec2Client.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images?.length ?? 0,
  };
  ec2Client.destroy();
  autoscaling.destroy();
  return { shape, seeded, expected, listed, calls: seedCalls, seconds: round((performance.now() - started) / 1000) };
}

// ---------------------------------------------------------------------------------------------
// Meters on the SDK clients (the proxy counts calls; these read what the calls carry).



// ---------------------------------------------------------------------------------------------
// One scan.

/** What the scan workflow's state holds at the end: the report step's plan (the Map's reports summed in it). */
interface ScanOutput {
  plan?: ReportResult;
}

const lambdaComputeUsd = (ms: number) => (ms / 1000) * (LAMBDA_MEMORY_MB / 1024) * PRICE.lambdaGbSecond;

/** The findings table as a scan left it (read after it, not counted): the waste findings' ids by kind, and every state's count. */
async function storedFindings(table: string) {
  const waste: Record<WasteKind, Set<string>> = { address: new Set(), volume: new Set(), snapshot: new Set() };
  const states: Record<string, number> = {};
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await documentClient().send(new ScanCommand({ TableName: table, ExclusiveStartKey }));
    for (const item of page.Items ?? []) {
      if (!item.resourceId) continue;
      states[item.state as string] = (states[item.state as string] ?? 0) + 1;
      if (WASTE_STATES.includes(item.state as FindingState)) waste[item.kind as WasteKind].add(String(item.findingId));
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return { waste, states };
}

async function scan(stack: LocalStack, proxy: CountingProxy, meters: Meters, ledger: DynamoLedger, label: string, floor: ReturnType<typeof minimumPages>) {
  const lambdaMs: Record<string, number[]> = {};
  const around: Record<string, (input: unknown, real: TaskHandler) => Promise<unknown>> = {};
  const machine = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(SCAN))!;
  for (const name of taskStates(machine.definition).keys()) {
    around[name] = async (input, real) => {
      const started = performance.now();
      try {
        return await real(input);
      } finally {
        (lambdaMs[name] ??= []).push(Math.ceil(performance.now() - started));
      }
    };
  }
  const seqBefore = (await ledger.tip())?.seq ?? 0;
  const mark = meters.mark();
  proxy.reset();
  const memory = sampleMemory(50);
  const started = performance.now();
  const progress = setInterval(() => console.log(`waste: ${label} scan, ${Math.round((performance.now() - started) / 1000)} s, ${proxy.counts().TransactWriteItems ?? 0} transactions so far`), 60_000);
  const run = await runStateMachine(stack, SCAN, {}, { around, executionName: `bench-waste-${label}` }).finally(() => clearInterval(progress));
  const durationMs = Math.round(performance.now() - started);
  const peakMemory = memory();
  const calls = proxy.counts();
  const units = meters.since(mark);
  const ledgerEntries = ((await ledger.tip())?.seq ?? 0) - seqBefore;
  const plan = ((run.output ?? {}) as ScanOutput).plan;
  const report = plan?.report;
  const listingCalls = sum(LISTING_CALLS.map((c) => calls[c] ?? 0));
  const localLambdaMs = sum(Object.values(lambdaMs).flat());
  const lines = {
    stepFunctionsTransitions: run.transitions * PRICE.transition,
    lambdaRequests: run.lambdaInvocations * PRICE.lambdaRequest,
    lambdaCompute: lambdaComputeUsd(localLambdaMs),
    dynamodbWrites: (units.writeUnits + units.cancelledWriteUnits) * PRICE.ddbWrite,
    dynamodbReads: units.readUnits * PRICE.ddbRead,
    eventBridgeEvents: units.eventBridgeEntries * PRICE.event,
  };
  const wasteReport = units.details.at(-1);
  return {
    status: run.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${run.status}: ${run.error ?? ''} ${run.cause ?? ''}`.trim(),
    durationMs,
    stateTransitions: run.transitions,
    lambdaInvocations: run.lambdaInvocations,
    localLambdaMsByStep: lambdaMs,
    scanned: report
      ? { targets: report.targets, failed: report.failed, listed: report.listed, found: report.found, reopened: report.reopened, resolved: report.resolved, wouldMark: report.wouldMark }
      : null,
    findings: report ? { total: plan.findings, totalMonthlyUsd: plan.totalMonthlyUsd, byKind: report.byKind } : null,
    wasteReportEvent: wasteReport ? { findings: wasteReport.findings, totalMonthlyUsd: wasteReport.totalMonthlyUsd, found: wasteReport.found, resolved: wasteReport.resolved, dryRun: wasteReport.dryRun } : null,
    awsApiCalls: proxy.total(),
    awsApiCallsByOperation: calls,
    listingPages: {
      calls: listingCalls,
      minimumPages: floor.total,
      callsPerMinimumPage: round(listingCalls / floor.total, 3),
      target: '<= 1.1',
      byCall: Object.fromEntries(LISTING_CALLS.map((c) => [c, { calls: calls[c] ?? 0, minimum: floor.byCall[c as keyof typeof floor.byCall] }])),
    },
    dynamodb: {
      writeUnits: units.writeUnits,
      writeUnitsByTable: units.writeUnitsByTable,
      writesByTable: units.writesByTable,
      readUnits: units.readUnits,
      transactions: units.transactions,
      cancelledTransactionsRetried: units.cancelledTransactions,
      cancelledTransactionWriteUnits: units.cancelledWriteUnits,
    },
    ledgerEntriesAppended: ledgerEntries,
    eventBridgeEntries: units.eventBridgeEntries,
    memory: peakMemory,
    costUsd: {
      usd: round(sum(Object.values(lines)), 6),
      lines: Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, round(v, 7)])),
      assumptions: `an estimate from local timings: Lambda ${LAMBDA_MEMORY_MB} MB ARM64 billed for the ${localLambdaMs} ms its tasks took here (against moto, one request at a time); DynamoDB units as metered on the clients; EC2 and Auto Scaling Describe* and STS free`,
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Cloud Custodian beside it.

/**
 * Custodian's usual report-only policies for the three kinds: an Elastic IP without an
 * association; a volume in state `available` (listed whole, filtered client side); a snapshot of
 * this account the `unused` filter keeps (age 0 days and over: the bench's threshold). No actions.
 */
const POLICY_SET: C7nPolicySet = {
  yaml: `policies:
  - name: waste-idle-eips
    resource: aws.network-addr
    filters:
      - AssociationId: absent
  - name: waste-unattached-volumes
    resource: aws.ebs
    filters:
      - State: available
  - name: waste-unused-snapshots
    resource: aws.ebs-snapshot
    filters:
      - type: age
        days: 0
        op: ge
      - type: unused
        value: true
`,
  policies: [
    { name: 'waste-idle-eips', idField: 'AllocationId' },
    { name: 'waste-unattached-volumes', idField: 'VolumeId' },
    { name: 'waste-unused-snapshots', idField: 'SnapshotId' },
  ],
};
const POLICY_KIND: Record<string, WasteKind> = { 'waste-idle-eips': 'address', 'waste-unattached-volumes': 'volume', 'waste-unused-snapshots': 'snapshot' };

/** Why Custodian's findings differ from Fleetwarden's, by category (from c7n's source, the version run). */
const WHY: Partial<Record<Category, string>> = {
  protected: 'the usual policies have no exemption tag (Fleetwarden: the protected tag exempts every kind)',
  'of a disabled image': "c7n's `unused` reads the images of the `ami` resource, DescribeImages Owners=self without IncludeDisabled: EC2 leaves disabled images out, so their snapshots look unused",
  'in launch template v1 (neither default nor latest)': "c7n's `unused` reads only the launch template versions Auto Scaling groups name (each group's version, $Default when none), never a template no group uses nor its other versions",
  'in a launch configuration no Auto Scaling group uses': "c7n's `unused` reads launch configurations only when some Auto Scaling group uses one",
  'AWS Backup (description)': "c7n's `unused` does not know AWS Backup's snapshots",
  'AWS Backup (aws:backup: tag)': "c7n's `unused` does not know AWS Backup's snapshots",
  'Data Lifecycle Manager (aws:dlm: tag)': "c7n's `unused` does not know Data Lifecycle Manager's snapshots",
};

const byCategory = (ids: string[], fleet: Fleet) => {
  const counts: Record<string, number> = {};
  for (const id of ids) {
    const c = fleet.seeded.get(id)?.category ?? 'not seeded';
    counts[c] = (counts[c] ?? 0) + 1;
  }
  return counts;
};

async function custodian(proxy: CountingProxy, fleet: Fleet, fleetwarden: Record<WasteKind, Set<string>>) {
  await ensureC7nVenv();
  const workdir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-c7n-waste-'));
  const sessions = new AccountSessions(HOME_ACCOUNT, MEMBER_ROLE);
  try {
    proxy.reset();
    let c7nOrgError: string | undefined;
    let result: C7nRun | undefined;
    try {
      result = await runC7nOrg({ endpoint: proxy.endpoint, workdir, targets: [TARGET], roleName: MEMBER_ROLE, policySet: POLICY_SET });
      if (result.missingOutputs.length) throw new Error(`no resources.json for ${result.missingOutputs.join(', ')}:\n${result.logTail.join('\n')}`);
    } catch (error) {
      // c7n-org could not run here: the fallback, `custodian run`, counted anew.
      const e = error as Error & { stderr?: string };
      c7nOrgError = `${e.message}${e.stderr ? `\n${e.stderr.slice(-2000)}` : ''}`;
      console.log(`c7n-org failed, falling back to custodian run:\n${c7nOrgError}`);
      proxy.reset();
      result = await runCustodianPerTarget({ endpoint: proxy.endpoint, workdir, targets: [TARGET], assume: async (t) => (await sessions.options(t.account, t.region)).credentials!, policySet: POLICY_SET });
    }
    const calls = proxy.counts();
    const byKind = Object.fromEntries(
      POLICY_SET.policies.map(({ name }) => {
        const kind = POLICY_KIND[name]!;
        const found = new Set(result.findingsByPolicy[name] ?? []);
        const onlyCustodian = [...found].filter((k) => !fleetwarden[kind].has(k));
        const onlyFleetwarden = [...fleetwarden[kind]].filter((k) => !found.has(k));
        const why = byCategory(onlyCustodian, fleet);
        return [
          kind,
          {
            policy: name,
            custodian: found.size,
            fleetwarden: fleetwarden[kind].size,
            same: onlyCustodian.length === 0 && onlyFleetwarden.length === 0,
            onlyCustodian: { count: onlyCustodian.length, byCategory: why, sample: onlyCustodian.slice(0, 3) },
            onlyFleetwarden: { count: onlyFleetwarden.length, byCategory: byCategory(onlyFleetwarden, fleet), sample: onlyFleetwarden.slice(0, 3) },
            why: Object.fromEntries(Object.keys(why).map((c) => [c, WHY[c as Category] ?? 'unexplained'])),
          },
        ];
      }),
    );
    return {
      mode: result.mode,
      command: result.command,
      versions: result.versions,
      ...(c7nOrgError ? { c7nOrgError } : {}),
      policies: POLICY_SET.yaml,
      durationMs: result.durationMs,
      findings: result.findings.length,
      byKind,
      missingOutputs: result.missingOutputs,
      awsApiCalls: proxy.total(),
      awsApiCallsByOperation: calls,
      logTail: result.logTail,
      note: "report only, no resource cache (--cache-period 0). Its listings: DescribeSnapshots OwnerIds=self with MaxResults 1000 (c7n's ebs-snapshot resource sets it), DescribeVolumes MaxResults 1000 with no status filter (every volume listed, `State: available` filtered client side; moto_serial.py pages at the asked size), DescribeAddresses (unpaged), and for `unused`: DescribeImages Owners=self without MaxResults (one unpaged call: moto and EC2 both answer it whole) and DescribeAutoScalingGroups (the groups' launch configurations and template versions; none here)",
    };
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

/** Fleetwarden's waste findings against the seeding: the same ids, and the same dollars. */
function againstSeeding(fleet: Fleet, stored: Record<WasteKind, Set<string>>, reported: ReportResult['report']['byKind'] | undefined) {
  return Object.fromEntries(
    WASTE_KINDS.map((kind) => {
      const expected = fleet.expected[kind];
      const missing = [...expected.keys()].filter((id) => !stored[kind].has(id));
      const unexpected = [...stored[kind]].filter((id) => !expected.has(id));
      let usd = 0;
      for (const v of expected.values()) usd = cents(usd + v);
      const match = !missing.length && !unexpected.length && reported?.[kind].count === expected.size && Math.abs((reported?.[kind].monthlyUsd ?? -1) - usd) < 0.005;
      return [
        kind,
        {
          match,
          expected: expected.size,
          expectedMonthlyUsd: usd,
          stored: stored[kind].size,
          reported: reported?.[kind] ?? null,
          ...(missing.length ? { missing: { count: missing.length, sample: missing.slice(0, 5) } } : {}),
          ...(unexpected.length ? { unexpected: { count: unexpected.length, byCategory: byCategory(unexpected, fleet), sample: unexpected.slice(0, 5) } } : {}),
        },
      ];
    }),
  );
}

const NOTE =
  "thresholds set to 0 days (unattachedEbsDays, unusedSnapshotDays): moto dates every volume and snapshot at its creation, now. Dry run (the default): cleanup is not benched. First scan: the account-region listed at the scanner's page sizes, every wasted resource's finding opened: its closed finding looked for (BatchGetItem, 100 keys), then one ledger entry each, appended 33 to a TransactWriteItems (entry, dedupe marker and finding: 2 WRU each per KB), a WasteReport on the bus. Second scan over the unchanged fleet (target: 0 write units): the open findings read from the sparse GSI, every resource decided from the listing, nothing written but the scan's date (the findings table's last-scan item, one PutItem); its container is warm, so the member credentials of the first scan are reused. Minimum pages: 1 DescribeAddresses + ceil(available volumes/500) + ceil(snapshots/1000) + ceil(images/1000) + ceil(templates/200) + one DescribeLaunchTemplateVersions per template (3 versions each, 200 a page) + ceil(launch configurations/100). moto answers one request at a time (test/emulators/moto_serial.py), its transaction rollback per item and DescribeImages' IncludeDisabled as EC2's (WASTE_MOTO_PRELUDE): the durations and the cost's Lambda share are emulator-bound, and only as quiet as the machine (loadAverage)";

export async function wasteBench(options: { scale?: number } = {}): Promise<Record<string, unknown>> {
  const scale = options.scale ?? 1;
  const sectionStarted = performance.now();
  const loadAtStart = loadavg()[0]!;
  const moto = await startMotoWithPrelude(WASTE_MOTO_PRELUDE);
  const proxy = await startCountingProxy(moto.endpoint);
  // The section's clients (and the handler's, which copy process.env) go to this proxy; the
  // environment object itself is put back at the end, whatever the runs did to it.
  const savedEnv = process.env;
  process.env = { ...savedEnv, ...motoEnvironment(proxy.endpoint) };
  try {
    const stack = await provision(synthTemplate(benchConfig()), { prefix: 'bench-waste' });
    const tables = { findings: stack.ref('StateStoreFindingsTable'), ledger: stack.ref('StateStoreLedgerTable') };
    const meters = installMeters(tables, { keepDetailsOf: 'WasteReport' });
    const ledger = new DynamoLedger(documentClient(), { tableName: tables.ledger });
    const steps = [...stack.functions.values()].find((f) => f.logicalId.startsWith(STEPS))!;
    const policy = JSON.parse(steps.environment.WASTE_POLICY ?? '{}') as WastePolicy;

    const shape = fleetShape(scale);
    console.log(`waste: seeding ${shape.snapshots.total} snapshots, ${shape.volumes.total} volumes, ${shape.addresses.total} addresses, ${shape.images.total} images, ${shape.templates} launch templates…`);
    const fleet = await seedFleet(moto.endpoint, shape, policy);
    console.log(`waste: seeded in ${fleet.seconds} s (${fleet.calls} calls)`);
    const floor = minimumPages(fleet.listed, shape);
    const planned = { volumes: shape.volumes.total, availableVolumes: shape.volumes.available, snapshots: shape.snapshots.total, images: shape.images.total, imagesWithoutIncludeDisabled: shape.images.total - shape.images.disabled };
    const seededAsPlanned = Object.entries(planned).every(([k, n]) => fleet.listed[k as keyof typeof planned] === n);
    if (!seededAsPlanned) console.error(`waste: MOTO HOLDS OTHER COUNTS THAN PLANNED: ${JSON.stringify({ planned, listed: fleet.listed })}`);
    // The handler module loaded once beforehand (Lambda's init, not billed per scan).
    await import(pathToFileURL(path.join(PROJECT_ROOT, steps.entry)).href);

    const local = withLocalTimeouts(stack);
    console.log('waste: first scan…');
    const first = await scan(local, proxy, meters, ledger, 'first', floor);
    const afterFirst = await storedFindings(tables.findings);
    console.log('waste: second scan (nothing changed)…');
    const second = await scan(local, proxy, meters, ledger, 'second', floor);
    const afterSecond = await storedFindings(tables.findings);

    const seeding = againstSeeding(fleet, afterSecond.waste, second.findings?.byKind);
    const matchesSeeding = Object.values(seeding).every((k) => k.match);
    if (!matchesSeeding) console.error(`waste: FLEETWARDEN'S FINDINGS DO NOT MATCH THE SEEDING:\n${JSON.stringify(seeding, null, 2)}`);

    console.log('waste: Cloud Custodian (c7n-org) over the same account-region…');
    const cloudCustodian = await custodian(proxy, fleet, afterSecond.waste).catch((error: Error & { stderr?: string }) => ({ failed: `${error.message}${error.stderr ? `\n${error.stderr.slice(-2000)}` : ''}` }));
    const categories: Record<string, Record<string, number>> = {};
    for (const { kind, category } of fleet.seeded.values()) (categories[kind] ??= {})[category] = (categories[kind]![category] ?? 0) + 1;
    return {
      scale,
      fleet: {
        account: `${ACCOUNT.id} ${ACCOUNT.environment}`,
        region: REGION,
        instances: shape.instances,
        snapshots: shape.snapshots.total,
        volumes: shape.volumes,
        addresses: shape.addresses,
        images: shape.images,
        launchTemplates: { templates: shape.templates, versionsEach: VERSIONS_PER_TEMPLATE, defaultVersion: 2 },
        launchConfigurations: shape.launchConfigurations,
        byCategory: categories,
        listedBackFromMoto: fleet.listed,
        seededAsPlanned,
        seedCalls: fleet.calls,
        seedSeconds: fleet.seconds,
      },
      minimumPages: floor,
      // As the stack passes it to the function (dry run from the config).
      policy: { dryRun: steps.environment.FLEETWARDEN_DRY_RUN === 'true', unattachedEbsDays: policy.unattachedEbsDays, unusedSnapshotDays: policy.unusedSnapshotDays, protectedTag: policy.protectedTag },
      firstScan: first,
      secondScan: second,
      findingsTable: { afterFirstScan: afterFirst.states, afterSecondScan: afterSecond.states },
      fleetwardenMatchesSeeding: matchesSeeding,
      againstSeeding: seeding,
      cloudCustodian,
      moto: processMemory(moto.pid) ?? null,
      sectionSeconds: round((performance.now() - sectionStarted) / 1000),
      // The machine's 1-minute load average (it has 2 cores): the durations are only as quiet as it was.
      loadAverage: { atStart: round(loadAtStart, 2), atEnd: round(loadavg()[0]!, 2) },
      note: NOTE,
    };
  } finally {
    process.env = savedEnv;
    await proxy.stop();
    await moto.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--scale');
  const scale = at === -1 ? 1 : Number(process.argv[at + 1]);
  if (!(scale > 0 && scale <= 1)) throw new Error('--scale takes a number in (0, 1]');
  wasteBench({ scale })
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
