import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { AttachVolumeCommand } from '@aws-sdk/client-ec2';
import { formatVerification, runVerify } from '../../functions/ledger/cli';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { formatFindings, listFindings } from '../../functions/waste/cli';
import { WASTE_TAGS } from '../../functions/waste/policy';
import { PROJECT_ROOT } from '../../lib/paths';
import { listenToBus, listenToTopic } from '../../local/listen';
import { provision } from '../../local/provision';
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
import { testInstance } from '../k8s/instances';
import type { DemoContext } from './timeline';

/** Accounts of this chapter only: the earlier chapters' instances and volumes stay out of its report. */
const LAB = '444444444444';
const STAGING = '555555555555';
const GRACE_SECONDS = 4;
const usd = (n: number) => `$${n.toFixed(2)}`;
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- an event's detail is read field by field
type Detail = Record<string, any>;

/**
 * Governance II: the waste scanner and opt-in cleanup on a stack synthesized with cleanup on for
 * LAB (every kind) and a grace of a few seconds instead of 7 days, dry run off. moto dates every
 * resource now, so the chapter's thresholds are 0 days (7 for volumes and 30 for snapshots by
 * default). The scan prices what it finds and leaves alone the snapshots an image, a launch
 * template version or AWS Backup still needs; cleanup marks, waits, re-checks, snapshots the
 * volume before deleting it and releases the Elastic IP.
 */
export async function wasteSteps({ timeline }: DemoContext): Promise<void> {
  timeline.section('Governance II: waste found, priced, marked and cleaned up');
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  const config = {
    ...base,
    dryRun: false,
    accounts: [
      { id: LAB, name: 'data-lab', environment: 'LAB' },
      { id: STAGING, name: 'data-staging', environment: 'STAGING' },
    ],
    policies: {
      waste: {
        unattachedEbsDays: 0,
        unusedSnapshotDays: 0,
        cleanup: { byEnvironment: { LAB: { address: true, volume: true, snapshot: true } }, graceHours: GRACE_SECONDS / 3600, circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 100 } },
      },
    },
  };
  const stack = await provision(synthTemplate(config), { prefix: 'demo-waste' });
  timeline.step('cdk synth', `the stack with policies.waste.cleanup: LAB every kind, STAGING report only, grace ${GRACE_SECONDS} s (7 days by default), dry run off`);
  timeline.detail('thresholds 0 days here (moto dates every resource now); by default 7 days available for a volume, 30 days for a snapshot');
  const published = await listenToBus(stack, ['fleetwarden.waste'], 'bus');
  const notified = await listenToTopic(stack, 'topic');

  const lab = await memberEc2(LAB);
  const instance = await testInstance(LAB, { spot: false, tags: { ManagedBy: 'fleetwarden' } });
  const used = await idleAddress(lab);
  await associate(lab, used.allocationId, instance);
  const data = await availableVolume(lab, { sizeGiB: 8, type: 'gp3', tags: { Name: 'data' } });
  const address = await idleAddress(lab);
  const scratch = await availableVolume(lab, { sizeGiB: 500, type: 'gp2', tags: { Name: 'scratch', team: 'analytics' } });
  const copy = await snapshotOf(lab, data, { description: 'manual copy before upgrade' });
  const disabled = await imageWithSnapshot(lab, 'web-2025-06', { disabled: true });
  const oldVersion = await snapshotOf(lab, data, { description: 'seed data' });
  const template = await templateUsingSnapshotInOldVersion(lab, 'web', oldVersion);
  const backup = await snapshotOf(lab, data, { description: 'This snapshot is created by the AWS Backup service.' });
  await lab.send(new AttachVolumeCommand({ VolumeId: data, InstanceId: instance, Device: '/dev/sdf' }));
  const staging = await availableVolume(await memberEc2(STAGING, 'us-east-1'), { sizeGiB: 200, type: 'gp3' });
  timeline.step('fleet', `LAB ${LAB}: Elastic IP ${address.publicIp} unassociated, ${scratch} (gp2, 500 GiB) available, ${copy} (a manual copy) referenced by nothing`);
  timeline.detail(`look-alikes: ${disabled.snapshotId} used only by the disabled image ${disabled.imageId}, ${oldVersion} used only by version 1 of ${template} (default: version 2), ${backup} made by AWS Backup, ${used.publicIp} associated, ${data} attached`);
  timeline.detail(`STAGING ${STAGING}: ${staging} (gp3, 200 GiB) available`);

  const first = await runStateMachine(stack, 'WasteScanStateMachine', {}, { retryMs: 0 });
  timeline.step('step functions', `WasteScan: ${first.status}, ${first.transitions} state transitions, ${first.lambdaInvocations} Lambda invocations`);
  for (const e of await published()) {
    if (e['detail-type'] !== 'WasteReport') continue;
    const d = e.detail as Detail;
    timeline.step('fleetwarden bus', `WasteReport: ${d.findings} findings, ${usd(d.totalMonthlyUsd)} a month (${d.targets} account-regions, ${d.found} new, ${d.marked} marked)`);
    timeline.detail(`by kind: ${Object.entries(d.byKind as Record<string, { count: number; monthlyUsd: number }>).map(([k, v]) => `${k} ${v.count} ${usd(v.monthlyUsd)}`).join(', ')}; by account: ${Object.entries(d.byAccount as Record<string, number>).map(([a, v]) => `${a} ${usd(v)}`).join(', ')}`);
  }
  for (const m of await notified()) timeline.step('sns', `"${m.Subject}"`);
  timeline.detail(`${scratch} now carries ${WASTE_TAGS.removableAfter}=${(await volumeState(lab, scratch))?.tags[WASTE_TAGS.removableAfter]}`);

  timeline.step('fleetwarden findings', '');
  const table = stack.ref('StateStoreFindingsTable');
  for (const line of formatFindings(await listFindings({ table, state: 'open', json: false })).split('\n')) timeline.detail(line);

  await new Promise((resolve) => setTimeout(resolve, GRACE_SECONDS * 1000 + 200));
  const second = await runStateMachine(stack, 'WasteScanStateMachine', {}, { retryMs: 0, waitMs: 50 });
  timeline.step('step functions', `WasteScan after the grace: ${second.status}, ${second.transitions} state transitions, ${second.lambdaInvocations} Lambda invocations`);
  for (const e of await published()) {
    const d = e.detail as Detail;
    if (e['detail-type'] === 'WasteReport') timeline.detail(`WasteReport: ${d.found} new findings, ${d.plannedCleanups} cleanups planned, circuit breaker ${d.tripped ? 'tripped' : 'not tripped'}`);
    if (e['detail-type'] === 'WasteCleaned') timeline.ok(`${d.kind} ${d.resourceId} (${usd(d.monthlyUsd)}/mo): ${d.outcome}`);
  }
  const [kept] = await snapshotsTagged(lab, WASTE_TAGS.deletedVolume, scratch);
  timeline.step('ec2', `${address.publicIp} ${(await addressExists(lab, address.allocationId)) ? 'still allocated' : 'released'}; ${scratch} ${(await volumeState(lab, scratch))?.state ?? 'deleted'}, its snapshot ${kept?.snapshotId} ${kept?.state} tagged ${WASTE_TAGS.deletedVolume}=${kept?.tags[WASTE_TAGS.deletedVolume]}, team=${kept?.tags.team}`);
  const left = await Promise.all([disabled.snapshotId, oldVersion, backup].map(async (id) => `${id} ${(await snapshotState(lab, id))?.state ?? 'gone'}`));
  timeline.detail(`left alone: ${left.join(', ')}; STAGING ${staging} ${(await volumeState(await memberEc2(STAGING), staging))?.state} (report only)`);

  const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
  const actions: string[] = [];
  for await (const entry of ledger.entries()) actions.push(String(entry.action));
  timeline.step('ledger', `${actions.length} entries: ${[...new Set(actions)].map((a) => `${a} ×${actions.filter((x) => x === a).length}`).join(', ')}`);
  const report = await runVerify({ chain: 'fleet', table: stack.ref('StateStoreLedgerTable'), bucket: stack.ref('LedgerArchive'), 'signing-key': stack.attr('LedgerDigestSigningKey', 'Arn'), json: false });
  (report.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(`this chapter's ledger: ${formatVerification(report).split('\n')[0]}`);
}
