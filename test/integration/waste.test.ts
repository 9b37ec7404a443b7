import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AttachVolumeCommand, DetachVolumeCommand, type EC2Client } from '@aws-sdk/client-ec2';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { cleanFinding } from '../../functions/waste/cleanup';
import { runFindingsCommand } from '../../functions/waste/cli';
import { WasteEnvSchema } from '../../functions/waste/env';
import { WASTE_TAGS } from '../../functions/waste/policy';
import { wasteDeps } from '../../functions/waste/wiring';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus, listenToTopic } from '../../local/listen';
import { type LocalStack, provision } from '../../local/provision';
import { runStateMachine } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import {
  addressExists,
  associate,
  availableVolume,
  idleAddress,
  imageWithSnapshot,
  memberEc2,
  snapshotOf,
  snapshotState,
  snapshotsTagged,
  templateUsingSnapshotInOldVersion,
  volumeState,
} from '../../local/waste-fleet';
import { launchInstance } from '../support';

const SCAN = 'WasteScanStateMachine';
const ALL_KINDS = { address: true, volume: true, snapshot: true };

const cdkConfig = () => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden as Record<string, any>;
/**
 * The repository's config over two regions, with thresholds of 0 days: moto dates every volume
 * and snapshot now (the thresholds themselves are covered by the unit tests).
 */
let LAB = '';
let STAGING = '';
let accounts = 0;
/**
 * Accounts of their own for each test (moto keeps one EC2 state per account, shared by every
 * test file of the run): a LAB account watched in us-east-1, a STAGING one in both regions.
 */
const config = (waste: Record<string, unknown> = {}, rest: Record<string, unknown> = {}) => ({
  ...cdkConfig(),
  regions: ['us-east-1', 'eu-west-1'],
  accounts: [
    { id: LAB, name: 'waste-lab', environment: 'LAB', regions: ['us-east-1'] },
    { id: STAGING, name: 'waste-staging', environment: 'STAGING' },
  ],
  policies: { waste: { unattachedEbsDays: 0, unusedSnapshotDays: 0, ...waste } },
  ...rest,
});
const cleaning = (waste: Record<string, unknown> = {}) =>
  config({ cleanup: { byEnvironment: { LAB: ALL_KINDS }, graceHours: 0, circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 100 } }, ...waste }, { dryRun: false });

async function findings(stack: LocalStack) {
  const out = await documentClient().send(new ScanCommand({ TableName: stack.ref('StateStoreFindingsTable') }));
  return new Map((out.Items ?? []).filter((i) => i.resourceId).map((i) => [i.resourceId as string, i]));
}
async function ledger(stack: LocalStack) {
  const items: Record<string, any>[] = [];
  for await (const item of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) items.push(item);
  return items;
}
const envOf = (stack: LocalStack) => [...stack.functions.values()].find((f) => f.logicalId.startsWith('WasteWasteSteps'))!.environment;

/** One account-region's seeded waste and look-alikes that are not waste. */
async function seed(ec2: EC2Client, account: string, region: string) {
  const instance = await launchInstance(account, { spot: false, region });
  const usedAddress = await idleAddress(ec2);
  await associate(ec2, usedAddress.allocationId, instance);
  const base = await availableVolume(ec2, { sizeGiB: 8 });
  const disabledImage = await imageWithSnapshot(ec2, `old-${region}`, { disabled: true });
  const oldVersionSnapshot = await snapshotOf(ec2, base);
  await templateUsingSnapshotInOldVersion(ec2, `web-${account}-${region}`, oldVersionSnapshot);
  return {
    address: await idleAddress(ec2),
    volume: await availableVolume(ec2, { sizeGiB: 100, type: 'gp3', tags: { team: 'payments' } }),
    snapshot: await snapshotOf(ec2, base, { description: 'manual copy' }),
    base,
    usedAddress: usedAddress.allocationId,
    disabledImageSnapshot: disabledImage.snapshotId,
    oldVersionSnapshot,
    backupSnapshot: await snapshotOf(ec2, base, { description: 'This snapshot is created by the AWS Backup service.' }),
    dlmSnapshot: await snapshotOf(ec2, base, { tags: { 'aws:dlm:lifecycle-policy-id': 'policy-0123456789abcdef0' } }),
    protectedSnapshot: await snapshotOf(ec2, base, { tags: { 'fleetwarden:protected': 'true' } }),
  };
}

describe('the WasteScan workflow (synthesized definition, real handler, moto in several accounts and regions)', () => {
  beforeEach(() => {
    accounts += 1;
    LAB = String(440_000_000_000 + process.pid * 100 + accounts * 2);
    STAGING = String(440_000_000_001 + process.pid * 100 + accounts * 2);
  });

  it('finds idle Elastic IPs, available volumes and unused snapshots with their monthly cost, and leaves alone what is used, owned by a backup service or protected', async () => {
    const stack = await provision(synthTemplate(config()));
    const bus = await listenToBus(stack, ['fleetwarden.waste']);
    const lab = await seed(await memberEc2(LAB, 'us-east-1'), LAB, 'us-east-1');
    const staging = await seed(await memberEc2(STAGING, 'eu-west-1'), STAGING, 'eu-west-1');

    const run = await runStateMachine(stack, SCAN, {});
    expect(run.status).toBe('SUCCEEDED');

    const stored = await findings(stack);
    for (const [account, region, seeded] of [[LAB, 'us-east-1', lab], [STAGING, 'eu-west-1', staging]] as const) {
      expect(stored.get(seeded.address.allocationId)).toMatchObject({ kind: 'address', account, region, state: 'open', monthlyUsd: 3.6, findingId: `${account}/${region}/${seeded.address.allocationId}` });
      expect(stored.get(seeded.volume)).toMatchObject({ kind: 'volume', state: 'open', monthlyUsd: 8, sizeGiB: 100 });
      expect(stored.get(seeded.snapshot)).toMatchObject({ kind: 'snapshot', state: 'open', monthlyUsd: 0.4, sizeGiB: 8 });
      // Every look-alike: no finding at all.
      for (const id of [seeded.usedAddress, seeded.disabledImageSnapshot, seeded.oldVersionSnapshot, seeded.backupSnapshot, seeded.dlmSnapshot, seeded.protectedSnapshot]) expect(stored.has(id), id).toBe(false);
    }
    // The base volume the snapshots were made from is available too: a finding, 8 GiB gp3.
    expect(stored.get(lab.base)).toMatchObject({ kind: 'volume', monthlyUsd: 0.64 });

    const [report] = (await bus()).filter((e) => e['detail-type'] === 'WasteReport');
    expect(report!.detail).toMatchObject({
      targets: 3,
      failed: 0,
      findings: 8,
      totalMonthlyUsd: 2 * (3.6 + 8 + 0.64 + 0.4),
      byKind: { address: { count: 2, monthlyUsd: 7.2 }, volume: { count: 4, monthlyUsd: 17.28 }, snapshot: { count: 2, monthlyUsd: 0.8 } },
      byAccount: { [LAB]: 12.64, [STAGING]: 12.64 },
      found: 8,
      dryRun: true,
    });
    const entries = await ledger(stack);
    expect(entries.filter((e) => e.action === 'waste.found')).toHaveLength(8);

    // The operator's listing: costliest first, with the total; filtered by kind and account.
    const table = stack.ref('StateStoreFindingsTable');
    const listed = await runFindingsCommand(['--table', table]);
    expect(listed.code).toBe(0);
    expect(listed.text.split('\n')[0]).toMatch(/^volume\s+vol-\w+\s+\d{12} (LAB|STAGING)\s+[a-z0-9-]+\s+100 GiB\s+\$8\.00\/mo\s+open\s+first seen \d{4}-\d\d-\d\d$/);
    expect(listed.text).toMatch(/\n8 open findings, \$25\.28 a month$/);
    const addresses = JSON.parse((await runFindingsCommand(['--table', table, '--kind', 'address', '--account', LAB, '--json'])).text);
    expect(addresses.findings.map((f: { resourceId: string }) => f.resourceId)).toEqual([lab.address.allocationId]);
    expect(addresses.totalMonthlyUsd).toBe(3.6);

    // A second scan over the unchanged accounts: no finding written, no ledger entry.
    const versions = new Map([...stored].map(([id, f]) => [id, f.version]));
    expect((await runStateMachine(stack, SCAN, {})).status).toBe('SUCCEEDED');
    expect((await ledger(stack)).length).toBe(entries.length);
    for (const [id, f] of await findings(stack)) expect(f.version, id).toBe(versions.get(id));
  });

  it('resolves a finding whose resource is used again and reopens the same finding when it is waste again', async () => {
    const stack = await provision(synthTemplate(config()));
    const ec2 = await memberEc2(LAB);
    const volume = await availableVolume(ec2, { sizeGiB: 20, type: 'gp2' });
    const instance = await launchInstance(LAB, { spot: false });
    await runStateMachine(stack, SCAN, {});
    expect((await findings(stack)).get(volume)).toMatchObject({ state: 'open', monthlyUsd: 2, version: 1 });

    await ec2.send(new AttachVolumeCommand({ VolumeId: volume, InstanceId: instance, Device: '/dev/sdh' }));
    await runStateMachine(stack, SCAN, {});
    expect((await findings(stack)).get(volume)).toMatchObject({ state: 'resolved', outcome: 'no longer available (attached or deleted)', version: 2 });

    // moto's DetachVolume needs the instance id (EC2 does not).
    await ec2.send(new DetachVolumeCommand({ VolumeId: volume, InstanceId: instance }));
    await runStateMachine(stack, SCAN, {});
    const reopened = (await findings(stack)).get(volume)!;
    expect(reopened).toMatchObject({ state: 'open', reopened: 1, version: 3, findingId: `${LAB}/us-east-1/${volume}` });
    const actions = (await ledger(stack)).filter((e) => e.subject === reopened.findingId).map((e) => e.action);
    expect(actions).toEqual(['waste.found', 'waste.resolved', 'waste.reopened']);
  });

  it('cleans up in a LAB account: marks, re-checks after the grace, releases the Elastic IP, snapshots then deletes the volume, deletes the snapshot; STAGING is only reported', async () => {
    const stack = await provision(synthTemplate(cleaning()));
    const bus = await listenToBus(stack, ['fleetwarden.waste']);
    const topic = await listenToTopic(stack);
    const lab = await memberEc2(LAB);
    const address = await idleAddress(lab);
    const volume = await availableVolume(lab, { sizeGiB: 50, type: 'gp3', tags: { team: 'payments', Name: 'scratch' } });
    const snapshot = await snapshotOf(lab, volume, { description: 'manual copy' });
    const stagingVolume = await availableVolume(await memberEc2(STAGING), { sizeGiB: 10 });

    const run = await runStateMachine(stack, SCAN, {}, { waitMs: 10 });
    expect(run.status).toBe('SUCCEEDED');

    expect(await addressExists(lab, address.allocationId)).toBe(false);
    expect(await snapshotState(lab, snapshot)).toBeUndefined();
    expect(await volumeState(lab, volume)).toBeUndefined();
    const [backup] = await snapshotsTagged(lab, WASTE_TAGS.deletedVolume, volume);
    expect(backup).toMatchObject({ state: 'completed', tags: { team: 'payments', Name: 'scratch', [WASTE_TAGS.deletedVolume]: volume, [WASTE_TAGS.finding]: `${LAB}/us-east-1/${volume}` } });
    expect(JSON.parse(backup!.tags[WASTE_TAGS.deletedVolumeTags]!)).toEqual({ team: 'payments', Name: 'scratch' });
    expect((await volumeState(await memberEc2(STAGING), stagingVolume))?.state).toBe('available');

    const stored = await findings(stack);
    expect(stored.get(address.allocationId)).toMatchObject({ state: 'cleaned', outcome: `released ${address.publicIp}` });
    expect(stored.get(volume)).toMatchObject({ state: 'cleaned', backupSnapshotId: backup!.snapshotId });
    expect(stored.get(snapshot)).toMatchObject({ state: 'cleaned' });
    expect(stored.get(stagingVolume)).toMatchObject({ state: 'open' });
    // The backup snapshot is the volume's only copy: never a finding.
    expect(stored.has(backup!.snapshotId)).toBe(false);

    const steps = (id: string) => ledger(stack).then((entries) => entries.filter((e) => e.subject === `${LAB}/us-east-1/${id}`));
    expect((await steps(volume)).map((e) => e.action)).toEqual(['waste.found', 'waste.marked', 'waste.cleanup-started', 'waste.deleted']);
    const [, , started, deleted] = await steps(volume);
    expect(started!.after).toMatchObject({ state: 'cleaning', backupSnapshotId: backup!.snapshotId });
    expect(deleted!.before).toMatchObject({ state: 'cleaning' });
    expect(deleted!.after).toMatchObject({ state: 'cleaned' });
    expect((await steps(address.allocationId)).map((e) => e.action)).toEqual(['waste.found', 'waste.marked', 'waste.cleanup-started', 'waste.released']);
    expect((await bus()).filter((e) => e['detail-type'] === 'WasteCleaned')).toHaveLength(3);
    expect((await topic()).map((m) => m.Subject)).toContain('Fleetwarden marked 3 wasted resources for cleanup');
  });

  it('marks with the grace and removes nothing before it is over', async () => {
    const stack = await provision(synthTemplate(cleaning({ cleanup: { byEnvironment: { LAB: ALL_KINDS }, graceHours: 24 } })));
    const lab = await memberEc2(LAB);
    const volume = await availableVolume(lab, { sizeGiB: 5 });
    const before = Date.now();
    await runStateMachine(stack, SCAN, {});
    const tagged = await volumeState(lab, volume);
    expect(tagged?.state).toBe('available');
    const removableAfter = Date.parse(tagged!.tags[WASTE_TAGS.removableAfter]!);
    expect(removableAfter - before).toBeGreaterThanOrEqual(24 * 3_600_000 - 1_000);
    expect((await findings(stack)).get(volume)).toMatchObject({ state: 'marked', removableAfter: tagged!.tags[WASTE_TAGS.removableAfter] });
  });

  it('re-checks right before acting: a volume attached after it was marked is kept, its mark removed, the finding resolved', async () => {
    const stack = await provision(synthTemplate(cleaning()));
    const lab = await memberEc2(LAB);
    const volume = await availableVolume(lab, { sizeGiB: 5 });
    const instance = await launchInstance(LAB, { spot: false });
    const run = await runStateMachine(stack, SCAN, {}, {
      waitMs: 10,
      around: {
        'Re-check and clean up a finding': async (input, real) => {
          await lab.send(new AttachVolumeCommand({ VolumeId: volume, InstanceId: instance, Device: '/dev/sdh' }));
          return real(input);
        },
      },
    });
    expect(run.status).toBe('SUCCEEDED');
    const now = await volumeState(lab, volume);
    expect(now?.state).toBe('in-use');
    expect(now?.tags[WASTE_TAGS.removableAfter]).toBeUndefined();
    expect((await findings(stack)).get(volume)).toMatchObject({ state: 'resolved', outcome: 'volume is in-use' });
    expect(await snapshotsTagged(lab, WASTE_TAGS.deletedVolume, volume)).toEqual([]);
  });

  it('leaves the volume or its snapshot when a step fails mid-way, never neither; the next run finishes with the same snapshot', async () => {
    const stack = await provision(synthTemplate(cleaning({ cleanup: { byEnvironment: { LAB: ALL_KINDS }, graceHours: 24 } })));
    const lab = await memberEc2(LAB);
    const volume = await availableVolume(lab, { sizeGiB: 5 });
    await runStateMachine(stack, SCAN, {});
    const findingId = `${LAB}/us-east-1/${volume}`;
    const deps = wasteDeps(WasteEnvSchema.parse(envOf(stack)), 'waste-scan');
    deps.clock = () => new Date(Date.now() + 25 * 3_600_000);

    // The backup is started and recorded; DeleteVolume then fails (throttled beyond the retries).
    expect(await cleanFinding({ findingId, scanId: 'scan-2' }, deps)).toMatchObject({ done: false, state: 'cleaning', action: 'waste.cleanup-started' });
    const failing = Object.create(deps.resources) as typeof deps.resources;
    failing.deleteVolume = async () => {
      throw Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' });
    };
    await expect(cleanFinding({ findingId, scanId: 'scan-2' }, { ...deps, resources: failing })).rejects.toThrow('Rate exceeded');
    const [backup] = await snapshotsTagged(lab, WASTE_TAGS.deletedVolume, volume);
    expect((await volumeState(lab, volume))?.state).toBe('available');
    expect(backup?.state).toBe('completed');

    // A retry (the next run) finds the same backup and deletes the volume.
    expect(await cleanFinding({ findingId, scanId: 'scan-3' }, deps)).toMatchObject({ done: true, state: 'cleaned', action: 'waste.deleted' });
    expect(await volumeState(lab, volume)).toBeUndefined();
    expect(await snapshotsTagged(lab, WASTE_TAGS.deletedVolume, volume)).toHaveLength(1);

    // A backup that failed: the volume is kept and the finding goes back to marked.
    const other = await availableVolume(lab, { sizeGiB: 5 });
    await runStateMachine(stack, SCAN, {});
    const otherId = `${LAB}/us-east-1/${other}`;
    await cleanFinding({ findingId: otherId, scanId: 'scan-4' }, deps);
    const broken = Object.create(deps.resources) as typeof deps.resources;
    broken.snapshot = async (account, region, id) => ({ ...(await deps.resources.snapshot(account, region, id))!, state: 'error' });
    expect(await cleanFinding({ findingId: otherId, scanId: 'scan-4' }, { ...deps, resources: broken })).toMatchObject({ done: true, state: 'marked', action: 'waste.cleanup-failed' });
    expect((await volumeState(lab, other))?.state).toBe('available');
  });

  it('trips the circuit breaker when the run would remove more than allowed: nothing removed, recorded, announced', async () => {
    const stack = await provision(synthTemplate(cleaning({ cleanup: { byEnvironment: { LAB: ALL_KINDS }, graceHours: 0, circuitBreaker: { maxActionsPerRun: 1, maxPercentOfFleet: 100 } } })));
    const bus = await listenToBus(stack, ['fleetwarden.waste']);
    const lab = await memberEc2(LAB);
    const addresses = [await idleAddress(lab), await idleAddress(lab)];
    const run = await runStateMachine(stack, SCAN, {});
    expect(run.status).toBe('SUCCEEDED');
    expect(run.events.map((e) => e.state)).toContain('Nothing removed: the circuit breaker tripped');
    for (const a of addresses) expect(await addressExists(lab, a.allocationId)).toBe(true);
    expect((await ledger(stack)).find((e) => e.action === 'waste.circuit-breaker-tripped')?.reason).toMatch(/^2 planned actions exceed the limit of 1 per run/);
    expect((await bus()).map((e) => e['detail-type'])).toContain('CircuitBreakerTripped');
  });

  it('in a dry run marks nothing and removes nothing, and reports what it would mark', async () => {
    const stack = await provision(synthTemplate({ ...cleaning(), dryRun: true }));
    const bus = await listenToBus(stack, ['fleetwarden.waste']);
    const lab = await memberEc2(LAB);
    const volume = await availableVolume(lab, { sizeGiB: 5 });
    await runStateMachine(stack, SCAN, {});
    expect((await volumeState(lab, volume))?.tags[WASTE_TAGS.removableAfter]).toBeUndefined();
    expect((await findings(stack)).get(volume)).toMatchObject({ state: 'open' });
    const [report] = (await bus()).filter((e) => e['detail-type'] === 'WasteReport');
    expect(report!.detail).toMatchObject({ dryRun: true, marked: 0, wouldMark: 1 });
  });
});
