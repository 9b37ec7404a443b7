import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runPoolsCommand } from '../../functions/interruption/cli';
import { DynamoPoolRiskStore } from '../../functions/interruption/pool-store';
import { type RiskPolicy, type Signal, applySignal } from '../../functions/interruption/risk';
import { latestDigestKey } from '../../functions/ledger/digest';
import { runLedgerShowCommand } from '../../functions/ledger/show';
import { DynamoLedger } from '../../functions/ledger/store';
import { driftExecutionPrefix } from '../../functions/drift/nodes';
import { startExecution } from '../../functions/shared/executions';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { runStatusCommand } from '../../functions/status/cli';
import type { StatusReport } from '../../functions/status/report';
import { runSwapCommand } from '../../functions/swap/cli';
import type { WorkloadDrift } from '../../functions/workloads/drift';
import { DynamoDriftStore } from '../../functions/workloads/drift-store';
import { OPEN_FINDINGS_INDEX } from '../../functions/waste/finding-store';
import { PROJECT_ROOT } from '../../lib/paths';
import type { LocalStack } from '../../local/provision';
import { createOutputsStack, publishOutputs } from '../../local/outputs';
import { freshStack } from '../support';

/**
 * The operator commands against moto: the synthesized stack provisioned there, and a
 * CloudFormation stack whose outputs are the synthesized outputs, resolved to what was provisioned.
 */
const run = randomBytes(3).toString('hex');
const stackName = `fleetwarden-ops-${run}`;
const policy: RiskPolicy = { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 };
const now = Date.now();
const ago = (hours: number) => new Date(now - hours * 3_600_000);
let local: LocalStack;
let outputs: Record<string, string>;

/** A pool record as the ingest wrote it when the signal came: the signal applied by the pure decision. */
async function signalPool(table: string, pool: string, signal: Signal, region?: string): Promise<void> {
  const decision = applySignal(undefined, pool, signal, policy, signal.at);
  if (!decision.changed) throw new Error('expected a change');
  await new DynamoPoolRiskStore(documentClient(region ? { region } : {}), table).put(decision.next);
}

const signal = (eventId: string, hoursAgo: number, kind: Signal['kind'], environment: Signal['environment'] = 'PROD'): Signal => ({ eventId, at: ago(hoursAgo), kind, account: '111111111111', environment });

beforeAll(async () => {
  local = await freshStack();
  outputs = await publishOutputs(local, stackName);

  await signalPool(outputs.PoolRiskTableName!, 'us-east-1/use1-az1/m5.large', signal('interrupted-2h-ago', 2, 'spot-interruption'));
  await signalPool(outputs.PoolRiskTableName!, 'eu-west-1/euw1-az2/c5.xlarge', signal('lab-interrupted', 30, 'spot-interruption', 'LAB'));
  // Quarantined 16 days ago for 15 days: over, though nothing has written the record since.
  await signalPool(outputs.PoolRiskTableName!, 'us-east-1/use1-az2/r5.large', signal('long-ago', 16 * 24 - 12, 'spot-interruption'));

  // Ledger entries sealed at known times: two days ago, then within the last hours.
  let clock = ago(48);
  const ledger = new DynamoLedger(documentClient(), { tableName: outputs.LedgerTableName!, clock: () => clock });
  const append = (action: string, subject: string, eventId: string, at: Date) => {
    clock = at;
    return ledger.append({ actor: 'test', action, subject, reason: `${action} of ${subject}`, eventId });
  };
  await append('pool.quarantined', 'us-east-1/use1-az2/r5.large', 'long-ago', ago(48));
  await append('pool.quarantined', 'us-east-1/use1-az1/m5.large', 'interrupted-2h-ago', ago(2));
  await append('instance.flagged', 'i-0123456789abcdef0', 'flag-1', ago(1.5));
  await append('pool.released', 'us-east-1/use1-az2/r5.large', 'cleanup-1', ago(1));
  await append('pooled.other', 'x', 'other-1', ago(0.5));

  // A digest covering the first three entries, written an hour ago.
  const digest = { version: 1, chain: 'fleet', fromSeq: 1, toSeq: 3, tipHash: 'a'.repeat(64), previousDigestHash: null, createdAt: ago(1).toISOString(), signingKeyId: outputs.DigestSigningKeyArn, signingAlgorithm: 'ECDSA_SHA_256', signature: 'MEUCIQ==' };
  await awsClient(S3Client).send(new PutObjectCommand({ Bucket: outputs.ArchiveBucketName, Key: latestDigestKey('fleet'), Body: JSON.stringify(digest), ContentType: 'application/json' }));
});

describe('fleetwarden pools against moto', () => {
  it('lists every pool, closed first, with its state decided on read from the stored timestamps', async () => {
    const { text, code } = await runPoolsCommand(['--stack', stackName]);
    expect(code).toBe(0);
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^POOL\s+STATE\s+RISK\s+SIGNALS\s+LAST SIGNAL$/);
    expect(lines[1]).toMatch(/^us-east-1\/use1-az1\/m5\.large\s+quarantined until \S+Z\s+0\.98\s+1\s+\S+Z spot-interruption \(PROD 111111111111\)$/);
    expect(text).toMatch(/eu-west-1\/euw1-az2\/c5\.xlarge\s+open\s+0\.75/);
    expect(text).toMatch(/us-east-1\/use1-az2\/r5\.large\s+open\s+0\.03/);
    expect(text).toContain('3 pools, 1 closed now');
    expect(text).toContain('  us-east-1/use1-az1/m5.large: PROD spot interruption in account 111111111111');
  });

  it('keeps only the quarantined pools, or those of one region, as JSON', async () => {
    const quarantined = JSON.parse((await runPoolsCommand(['--table', outputs.PoolRiskTableName!, '--quarantined', '--json'])).text) as { pool: string; state: string; until: string }[];
    expect(quarantined).toEqual([expect.objectContaining({ pool: 'us-east-1/use1-az1/m5.large', state: 'quarantined', until: new Date(ago(2).getTime() + 15 * 86_400_000).toISOString() })]);
    const inIreland = JSON.parse((await runPoolsCommand(['--stack', stackName, '--pool-region', 'eu-west-1', '--json'])).text) as { pool: string }[];
    expect(inIreland.map((p) => p.pool)).toEqual(['eu-west-1/euw1-az2/c5.xlarge']);
  });
});

describe('fleetwarden ledger show against moto', () => {
  it('shows the newest entries oldest last, each with who, which event and why', async () => {
    const { text, code } = await runLedgerShowCommand(['--stack', stackName]);
    expect(code).toBe(0);
    expect(text.split('\n').filter((l) => l.startsWith('seq ')).map((l) => l.split('  ')[0])).toEqual(['seq 1', 'seq 2', 'seq 3', 'seq 4', 'seq 5']);
    expect(text).toContain('  by test, event interrupted-2h-ago: pool.quarantined of us-east-1/use1-az1/m5.large');
    expect(text.endsWith('5 entries')).toBe(true);
  });

  it('filters by --since (a duration), --kind (an action prefix) and --event-id', async () => {
    const since = JSON.parse((await runLedgerShowCommand(['--table', outputs.LedgerTableName!, '--since', '24h', '--json'])).text) as { entries: { seq: number }[] };
    expect(since.entries.map((e) => e.seq)).toEqual([2, 3, 4, 5]);
    const pools = JSON.parse((await runLedgerShowCommand(['--stack', stackName, '--kind', 'pool', '--json'])).text) as { entries: { action: string }[] };
    expect(pools.entries.map((e) => e.action)).toEqual(['pool.quarantined', 'pool.quarantined', 'pool.released']);
    const event = JSON.parse((await runLedgerShowCommand(['--stack', stackName, '--event-id', 'flag-1', '--json'])).text) as { entries: { subject: string }[] };
    expect(event.entries.map((e) => e.subject)).toEqual(['i-0123456789abcdef0']);
  });

  it('keeps the newest --limit entries and says that more match', async () => {
    const { text } = await runLedgerShowCommand(['--stack', stackName, '--kind', 'pool', '--limit', '2']);
    expect(text.split('\n').filter((l) => l.startsWith('seq ')).map((l) => l.split('  ')[0])).toEqual(['seq 2', 'seq 4']);
    expect(text).toContain('2 entries (the newest 2; more match: raise --limit or narrow --since)');
  });
});

describe('fleetwarden status against moto', () => {
  it('puts it all on one screen, and exits 1 when a dead-letter queue holds messages', async () => {
    // Prepare: a swap under way, a node found drifted and its repair batch under way, and a message parked in the interruption DLQ.
    await runSwapCommand('start', ['--group', 'web', '--stack', stackName]);
    await new DynamoLedger(documentClient(), { tableName: outputs.LedgerTableName! }).append({ actor: 'node-drift', action: 'node.drifted', subject: 'us-east-1/demo-web/i-0123456789abcdef0', reason: 'launch template version 2, wants 3', eventId: 'drift-demo-web-1' });
    const repair = await startExecution(outputs.SwapBatchStateMachineArn!, `${driftExecutionPrefix('demo-web')}20261201-abc`, { groups: ['demo-web'], trigger: 'drift' });
    const calm = JSON.parse((await runStatusCommand(['--stack', stackName, '--json'])).text) as StatusReport;
    expect(calm.attention).toEqual([]);
    expect(calm.drift.workload).toBe('not deployed');
    await awsClient(SQSClient).send(new SendMessageCommand({ QueueUrl: outputs.InterruptionDeadLetterQueueUrl, MessageBody: '{}' }));

    // Act
    const { text, code } = await runStatusCommand(['--stack', stackName]);

    // Assess
    expect(code).toBe(1);
    expect(text.split('\n')[0]).toMatch(new RegExp(`^Fleetwarden stack ${stackName} in us-east-1, \\d{4}-\\d\\d-\\d\\dT`));
    expect(text).toMatch(/^Mode {12}dry-run ON: every capability decides and records, nothing acts/m);
    expect(text).toMatch(/^Pools {11}1 pool closed\n {18}us-east-1\/use1-az1\/m5\.large {2}quarantined until \S+ {2}PROD spot interruption in account 111111111111$/m);
    expect(text).toMatch(/^Swaps {11}1 swap running\n {18}manual-web-\S+, started \S+$/m);
    expect(text).toMatch(new RegExp(`^Batches {9}1 batch running\\n {18}${repair.executionArn.split(':').at(-1)}, started \\S+$`, 'm'));
    expect(text).toContain('Flags           none open');
    expect(text).toContain('Findings        none open');
    expect(text).toContain(`Node drift      1 node found drifted in the last 24h; 1 repair batch running\n                  ${repair.executionArn.split(':').at(-1)}`);
    expect(text).toContain('Workload drift  not deployed');
    expect(text).toMatch(/^Last digest {5}\S+ \(1h 0m ago\), up to seq 3; 3 entries since$/m);
    expect(text).toMatch(/^Dead letters {4}AsyncDeadLetterQueue 0\n {16}EnforcementDeadLetterQueue 0\n {16}InterruptionDeadLetterQueue 1$/m);
    expect(text).toContain('Needs attention:\n  1 message in InterruptionDeadLetterQueue: inspect their reason attribute, then redrive');
  });
});

describe('fleetwarden status with workload drift deployed, against moto', () => {
  it('counts the open workload drifts of each configured cluster by type and state, on the screen and in --json', async () => {
    // Prepare: drifts recorded as the detector and the rollback workflow record them (item and ledger entry), in a
    // findings table of this test's own, and a stack whose outputs say workload drift is deployed for two clusters.
    const table = `findings-${run}`;
    await awsClient(DynamoDBClient).send(
      new CreateTableCommand({
        TableName: table,
        KeySchema: [{ AttributeName: 'findingId', KeyType: 'HASH' }],
        AttributeDefinitions: [
          { AttributeName: 'findingId', AttributeType: 'S' },
          { AttributeName: OPEN_FINDINGS_INDEX.partitionKey, AttributeType: 'S' },
        ],
        GlobalSecondaryIndexes: [{ IndexName: OPEN_FINDINGS_INDEX.name, KeySchema: [{ AttributeName: OPEN_FINDINGS_INDEX.partitionKey, KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
    const drifts = new DynamoDriftStore(documentClient(), table, new DynamoLedger(documentClient(), { tableName: outputs.LedgerTableName! }));
    const openedAt = ago(1).toISOString();
    const drift = (kind: string, name: string, type: WorkloadDrift['type'], state: WorkloadDrift['state']): WorkloadDrift => ({
      driftId: `workload-drift#prod-eks#apps/${kind} shop/${name}`,
      cluster: 'prod-eks',
      apiVersion: 'apps/v1',
      kind,
      namespace: 'shop',
      name,
      type,
      diff: type === 'image' ? ['spec.template.spec.containers[name=web].image: nginx:1.27.2 -> nginx:1.28.0'] : [],
      declaredCommit: type === 'unauthorized' ? null : 'c0ffee',
      state,
      action: state === 'open' ? 'alert' : 'rollback',
      because: 'rule 1 (rollback)',
      openedAt,
      actAfter: openedAt,
      ...(state === 'resolved' ? { closedAt: ago(0.5).toISOString() } : {}),
      version: 1,
    });
    const recorded = [drift('Deployment', 'storefront', 'image', 'rolling-back'), drift('Deployment', 'checkout', 'image', 'open'), drift('Deployment', 'debug', 'unauthorized', 'rollback-failed'), drift('Deployment', 'catalog', 'config', 'resolved')];
    await drifts.record(recorded.map((d) => ({ action: 'workload.drift-detected', reason: `${d.type} drift of ${d.kind} shop/${d.name}`, after: d })), `workloads-${run}`, 'workload-drift');
    const clusters = [{ name: 'prod-eks', region: 'us-east-1' }, { name: 'lab-eks', region: 'us-east-1' }];
    const withWorkloads = `${stackName}-workloads`;
    await createOutputsStack(withWorkloads, { ...outputs, FindingsTableName: table, WorkloadDriftDetectorName: 'fleetwarden-workload-drift-detector', KubernetesClusters: JSON.stringify(clusters) });

    // Act
    const { text } = await runStatusCommand(['--stack', withWorkloads]);
    const json = JSON.parse((await runStatusCommand(['--stack', withWorkloads, '--json'])).text) as StatusReport;

    // Assess
    expect(text).toContain('Workload drift  prod-eks: 3 open (1 unauthorized, 2 image); 1 rolling-back, 1 rollback-failed\n                lab-eks: none open\n');
    expect(json.drift.workload).toEqual({
      clusters: [
        { cluster: 'prod-eks', open: 3, byType: { unauthorized: 1, image: 2 }, byState: { open: 1, 'rolling-back': 1, 'rollback-failed': 1 } },
        { cluster: 'lab-eks', open: 0, byType: {}, byState: {} },
      ],
    });
    expect(json.attention.filter((a) => a.startsWith('workload drift'))).toEqual([]);
  });
});

describe('the fleetwarden binary', () => {
  const cli = (args: string[], env: NodeJS.ProcessEnv = process.env) =>
    promisify(execFile)(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [path.join(PROJECT_ROOT, 'bin', 'fleetwarden-cli.ts'), ...args], { env, cwd: PROJECT_ROOT }).then(
      (out) => ({ code: 0, stdout: out.stdout, stderr: out.stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('prints clean JSON on stdout for scripts, with the exit status the command defines', async () => {
    const status = await cli(['status', '--stack', stackName, '--json']);
    expect(status.code).toBe(1);
    expect((JSON.parse(status.stdout) as StatusReport).attention).toHaveLength(1);
    const pools = await cli(['pools', '--stack', stackName, '--quarantined', '--json']);
    expect(pools.code).toBe(0);
    expect(JSON.parse(pools.stdout)).toHaveLength(1);
  });

  it('answers bad usage with the flag, the command’s usage and exit status 2', async () => {
    const out = await cli(['ledger', 'show', '--stack', stackName, '--since', 'last week']);
    expect(out.code).toBe(2);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain('fleetwarden: --since: a time like 2026-12-01T00:00:00Z, or how long ago like 90m, 24h or 7d');
    expect(out.stderr).toContain('usage: fleetwarden ledger show');
    const help = await cli(['pools', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--quarantined');
  });

  it('takes the region from --profile’s config when none is given, and --region wins over it', async () => {
    // Prepare: the same commands' stack and pool table in eu-west-1, and a profile that points there.
    const region = 'eu-west-1';
    const table = `pools-${run}`;
    await awsClient(DynamoDBClient, { region }).send(
      new CreateTableCommand({ TableName: table, KeySchema: [{ AttributeName: 'pool', KeyType: 'HASH' }], AttributeDefinitions: [{ AttributeName: 'pool', AttributeType: 'S' }], BillingMode: 'PAY_PER_REQUEST' }),
    );
    await signalPool(table, 'eu-west-1/euw1-az1/m5.large', signal('dublin-1', 1, 'spot-interruption'), region);
    await createOutputsStack(`${stackName}-dublin`, { PoolRiskTableName: table }, region);
    const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-profile-'));
    writeFileSync(path.join(dir, 'config'), '[profile dublin]\nregion = eu-west-1\n');
    const { AWS_REGION: _r, AWS_DEFAULT_REGION: _d, ...rest } = process.env;
    const env = { ...rest, AWS_CONFIG_FILE: path.join(dir, 'config'), AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'credentials') };

    // Act
    const viaProfile = await cli(['pools', '--stack', `${stackName}-dublin`, '--profile', 'dublin', '--json'], env);
    const overridden = await cli(['pools', '--stack', `${stackName}-dublin`, '--profile', 'dublin', '--region', 'us-east-1'], env);

    // Assess
    expect(viaProfile.code).toBe(0);
    expect((JSON.parse(viaProfile.stdout) as { pool: string }[]).map((p) => p.pool)).toEqual(['eu-west-1/euw1-az1/m5.large']);
    expect(overridden.code).toBe(2);
    expect(overridden.stderr).toContain(`--stack: no stack ${stackName}-dublin in us-east-1`);
  });
});
