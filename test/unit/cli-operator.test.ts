import { afterEach, describe, expect, it } from 'vitest';
import { FINDINGS_COMMAND } from '../../functions/waste/cli';
import { FLAGS_COMMAND } from '../../functions/enforcement/cli';
import { LEDGER_SHOW_COMMAND, actionMatches, entryMatches, formatEntries, parseLedgerShowArgs } from '../../functions/ledger/show';
import { LEDGER_VERIFY_COMMAND } from '../../functions/ledger/cli';
import { POOLS_COMMAND, formatPools, parsePoolsArgs, viewPool } from '../../functions/interruption/cli';
import { type RiskPolicy, applySignal } from '../../functions/interruption/risk';
import { STATUS_COMMAND, parseStatusArgs } from '../../functions/status/cli';
import { type StatusReport, age, countWorkloadDrifts, formatStatus, needsAttention } from '../../functions/status/report';
import { SWAP_BATCH_COMMAND, SWAP_START_COMMAND, SWAP_STATUS_COMMAND } from '../../functions/swap/cli';
import { awsClientConfig } from '../../functions/shared/aws';
import { CliUsageError, parseCommandArgs } from '../../functions/shared/cli';
import { describeMode, parseOperatingMode } from '../../functions/shared/operating-mode';
import { Progress } from '../../functions/shared/progress';

const POOL = 'us-east-1/use1-az1/m5.large';
const policy: RiskPolicy = { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 };
const t0 = new Date('2026-12-01T10:00:00.000Z');
const hours = (n: number) => new Date(t0.getTime() + n * 3_600_000);

function record(kind: 'spot-interruption' | 'insufficient-capacity' | 'rebalance', environment: 'PROD' | 'LAB' = 'PROD') {
  const decision = applySignal(undefined, POOL, { eventId: `e-${kind}`, at: t0, kind, account: '111111111111', environment }, policy, t0);
  if (!decision.changed) throw new Error('expected a change');
  return decision.next;
}

describe('every command', () => {
  const commands = [
    [STATUS_COMMAND, ['--stack', 'S']],
    [POOLS_COMMAND, ['--stack', 'S']],
    [FLAGS_COMMAND, ['--stack', 'S']],
    [FINDINGS_COMMAND, ['--stack', 'S']],
    [LEDGER_SHOW_COMMAND, ['--stack', 'S']],
    [LEDGER_VERIFY_COMMAND, ['--stack', 'S']],
    [SWAP_START_COMMAND, ['--group', 'web', '--stack', 'S']],
    [SWAP_BATCH_COMMAND, ['--groups', 'web', '--stack', 'S']],
    [SWAP_STATUS_COMMAND, ['--execution', 'arn:aws:states:us-east-1:111111111111:execution:fleetwarden-node-swap:manual-web-1']],
  ] as const;

  it.each(commands.map(([c, argv]) => [c.path.join(' '), c, argv] as const))('%s takes --region, --profile and --json as the AWS CLI has them', (_name, command, argv) => {
    const args = parseCommandArgs(command as typeof STATUS_COMMAND, [...argv, '--region', 'eu-west-1', '--profile', 'ops', '--json']) as { region?: string; profile?: string; json?: boolean };
    expect(args).toMatchObject({ region: 'eu-west-1', profile: 'ops', json: true });
  });

  it.each(commands.map(([c, argv]) => [c.path.join(' '), c, argv] as const))('%s names the bad flag and refuses unknown flags and stray words', (_name, command, argv) => {
    const parse = (extra: string[]) => () => parseCommandArgs(command as typeof STATUS_COMMAND, [...argv, ...extra]);
    expect(parse(['--region', 'mars'])).toThrow('--region: a region looks like us-east-1');
    expect(parse(['--profile'])).toThrow('--profile: needs a value');
    expect(parse(['--json', 'yes'])).toThrow('--json: a switch takes no value');
    expect(parse(['--json=1'])).toThrow('--json: a switch takes no value');
    expect(parse(['--regoin', 'us-east-1'])).toThrow('unknown flag: --regoin (did you mean --region?)');
    expect(parse(['now'])).toThrow(CliUsageError);
    expect(parse(['now'])).toThrow('unexpected argument "now"');
  });
});

describe('the AWS client factory with a profile', () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  it('passes the profile to the SDK, and leaves the region to the profile when none is given or set', () => {
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    const config = awsClientConfig({ profile: 'ops' });
    expect(config.profile).toBe('ops');
    expect(config.region).toBeUndefined();
  });

  it('prefers --region, then AWS_REGION, to the profile’s region, as the AWS CLI does', () => {
    process.env.AWS_REGION = 'ap-southeast-2';
    expect(awsClientConfig({ profile: 'ops' }).region).toBe('ap-southeast-2');
    expect(awsClientConfig({ profile: 'ops', region: 'eu-west-1' }).region).toBe('eu-west-1');
  });
});

describe('fleetwarden pools', () => {
  it('names the bad flag', () => {
    expect(() => parsePoolsArgs(['--stack', 'S', '--table', 'pools'])).toThrow('--stack: give --stack or --table (one of them)');
    expect(() => parsePoolsArgs(['--stack', 'S', '--half-life', 'long'])).toThrow('--half-life: hours, like 72');
    expect(() => parsePoolsArgs(['--stack', 'S', '--pool-region', 'moon-1'])).toThrow('--pool-region: a region looks like us-east-1');
    expect(() => parsePoolsArgs(['--stack', 'S', '--quarantined', 'yes'])).toThrow('--quarantined: a switch takes no value');
    expect(parsePoolsArgs(['--table', 'pools', '--quarantined', '--half-life', '24'])).toEqual({ table: 'pools', quarantined: true, 'half-life': 24, json: false });
  });

  it('shows a PROD interruption as quarantined until 15 days after the event, decided on read', () => {
    const quarantined = record('spot-interruption');
    expect(viewPool(quarantined, hours(1), 72)).toMatchObject({
      pool: POOL,
      region: 'us-east-1',
      azId: 'use1-az1',
      instanceType: 'm5.large',
      state: 'quarantined',
      until: '2026-12-16T10:00:00.000Z',
      reason: 'PROD spot interruption in account 111111111111',
      riskScore: 0.99,
      signals: 1,
      lastSignal: { at: t0.toISOString(), kind: 'spot-interruption', environment: 'PROD' },
    });
    // The stored timestamp has passed: open, though nothing wrote the record since.
    expect(viewPool(quarantined, hours(15 * 24 + 1), 72)).toMatchObject({ state: 'open', signals: 1 });
  });

  it('shows a capacity error as a short block, and a LAB interruption as open with its risk', () => {
    expect(viewPool(record('insufficient-capacity'), t0, 72)).toMatchObject({ state: 'capacity-blocked', until: '2026-12-01T10:10:00.000Z', reason: 'insufficient capacity', riskScore: 0.5 });
    expect(viewPool(record('spot-interruption', 'LAB'), hours(72), 72)).toMatchObject({ state: 'open', riskScore: 0.5 });
  });

  it('prints one row per pool and how many are closed', () => {
    const text = formatPools([viewPool(record('spot-interruption'), hours(1), 72)]);
    expect(text.split('\n')[0]).toMatch(/^POOL\s+STATE\s+RISK\s+SIGNALS\s+LAST SIGNAL$/);
    expect(text).toContain(`${POOL}  quarantined until 2026-12-16T10:00:00.000Z  0.99  1        2026-12-01T10:00:00.000Z spot-interruption (PROD 111111111111)`);
    expect(text).toContain('1 pool, 1 closed now');
    expect(formatPools([])).toBe('no pools');
  });
});

describe('fleetwarden ledger show', () => {
  it('reads --since as a time or as how long ago, and defaults the limit and chain', () => {
    const before = Date.now();
    const args = parseLedgerShowArgs(['--table', 'ledger', '--since', '24h']);
    expect(Date.parse(args.since!)).toBeGreaterThanOrEqual(before - 24 * 3_600_000);
    expect(Date.parse(args.since!)).toBeLessThanOrEqual(Date.now() - 24 * 3_600_000);
    expect(args).toMatchObject({ limit: 50, chain: 'fleet', json: false });
    expect(parseLedgerShowArgs(['--stack', 'S', '--since', '2026-12-01T00:00:00+01:00']).since).toBe('2026-11-30T23:00:00.000Z');
    expect(parseLedgerShowArgs(['--stack', 'S', '--since', '2026-12-01']).since).toBe('2026-12-01T00:00:00.000Z');
  });

  it.each([
    [['--table', 'ledger', '--since', 'yesterday'], '--since: a time like 2026-12-01T00:00:00Z, or how long ago like 90m, 24h or 7d'],
    [['--table', 'ledger', '--limit', '0'], '--limit: a whole number from 1 to 10000'],
    [['--table', 'ledger', '--limit', 'all'], '--limit: a whole number from 1 to 10000'],
    [['--table', 'ledger', '--kind', 'Pool!'], '--kind: an action or its prefix, like pool or pool.quarantined'],
    [['--table', 'ledger', '--event-id'], '--event-id: needs a value'],
    [['--since', '1h'], '--stack: give --stack or --table (one of them)'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseLedgerShowArgs(argv)).toThrow(message);
  });

  it('matches an action kind at a dot, so pool is pool.* and never pooled.*', () => {
    expect(actionMatches('pool.quarantined', 'pool')).toBe(true);
    expect(actionMatches('pool.quarantined', 'pool.quarantined')).toBe(true);
    expect(actionMatches('pooled.thing', 'pool')).toBe(false);
    expect(entryMatches({ at: '2026-12-01T10:00:00.000Z', action: 'pool.released', eventId: 'e1' }, { since: '2026-12-01T09:00:00.000Z', eventId: 'e1', kind: 'pool' })).toBe(true);
    expect(entryMatches({ at: '2026-12-01T08:00:00.000Z', action: 'pool.released', eventId: 'e1' }, { since: '2026-12-01T09:00:00.000Z' })).toBe(false);
  });

  it('says when the limit cut the list', () => {
    const entry = { chain: 'fleet', seq: 7, at: '2026-12-01T10:00:00.000Z', action: 'pool.quarantined', subject: POOL, actor: 'interruption-ingest', eventId: 'e1', reason: 'PROD spot interruption', prevHash: '0'.repeat(64), hash: '1'.repeat(64) };
    expect(formatEntries({ chain: 'fleet', entries: [entry], truncated: true, read: 3 }, 1)).toBe(
      [`seq 7  2026-12-01T10:00:00.000Z  pool.quarantined  ${POOL}`, '  by interruption-ingest, event e1: PROD spot interruption', '', '1 entry (the newest 1; more match: raise --limit or narrow --since)'].join('\n'),
    );
  });
});

describe('fleetwarden status', () => {
  const mode = parseOperatingMode(
    JSON.stringify({
      dryRun: false,
      enforcementActions: { PROD: 'none', STAGING: 'stop', LAB: 'terminate' },
      wasteCleanup: { PROD: { address: false, volume: false, snapshot: false }, STAGING: { address: false, volume: false, snapshot: false }, LAB: { address: true, volume: true, snapshot: false } },
      quarantine: { days: 15, byEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 },
    }),
  );
  const base: Omit<StatusReport, 'attention'> = {
    stack: 'Fleetwarden',
    region: 'us-east-1',
    at: '2026-12-01T12:00:00.000Z',
    ...(mode ? { mode } : {}),
    quarantinedPools: [],
    swaps: [],
    batches: [],
    flags: { open: 0, byState: {} },
    findings: { open: 0, monthlyUsd: 0 },
    drift: { node: { deployed: false }, workload: 'not deployed' },
    digest: null,
    deadLetters: [{ queue: 'AsyncDeadLetterQueue', url: 'u', messages: 0 }],
  };

  it('needs the stack', () => {
    expect(() => parseStatusArgs([])).toThrow('--stack: required');
  });

  it('says what acts where when dry-run is off, and that nothing acts when it is on', () => {
    expect(describeMode(mode)).toEqual([
      'dry-run OFF: Fleetwarden acts where the policies below allow',
      'enforcement: PROD none, STAGING stop, LAB terminate (none: flags and notifies only)',
      'waste cleanup: PROD report only, STAGING report only, LAB address+volume',
      'risk: pools close for 15 days after a Spot interruption in PROD; swaps, batches and drains act',
    ]);
    expect(describeMode(mode && { ...mode, dryRun: true })[0]).toMatch(/^dry-run ON: every capability decides and records, nothing acts/);
    expect(describeMode(undefined)).toEqual(['unknown: the stack has no OperatingMode output (deployed before it existed)']);
  });

  it('needs attention for parked dead letters and for a part it could not read, and only then', () => {
    expect(needsAttention(base)).toEqual([]);
    expect(needsAttention({ ...base, deadLetters: [{ queue: 'InterruptionDeadLetterQueue', url: 'u', messages: 2 }], swaps: { error: 'AccessDeniedException: no' } })).toEqual([
      '2 messages in InterruptionDeadLetterQueue: inspect their reason attribute, then redrive',
      'swaps could not be read: AccessDeniedException: no',
    ]);
  });

  it('fits on one screen and says honestly that workload drift is not deployed', () => {
    const text = formatStatus({ ...base, digest: { createdAt: '2026-12-01T10:45:00.000Z', ageSeconds: 4500, toSeq: 40, tipSeq: 43 }, attention: [] });
    expect(text).toContain('Workload drift  not deployed (no manifests under kubernetes.desiredState.path for a configured cluster)');
    expect(text).toContain('Node drift      not deployed (no swap group has driftRepair)');
    expect(text).toContain('Last digest     2026-12-01T10:45:00.000Z (1h 15m ago), up to seq 40; 3 entries since');
    expect(text.endsWith('Nothing needs attention.')).toBe(true);
    expect(age(59)).toBe('59s');
    expect(age(3 * 86_400 + 7200)).toBe('3d 2h');
  });

  it('counts the open workload drifts of a cluster by type and by state, leaving resolved ones out', () => {
    const drifts = [
      { type: 'image', state: 'open' },
      { type: 'image', state: 'rolling-back' },
      { type: 'unauthorized', state: 'rollback-failed' },
      { type: 'config', state: 'resolved' },
    ] as const;
    expect(countWorkloadDrifts('prod-eks', drifts)).toEqual({ cluster: 'prod-eks', open: 3, byType: { unauthorized: 1, image: 2 }, byState: { open: 1, 'rolling-back': 1, 'rollback-failed': 1 } });
    expect(countWorkloadDrifts('lab-eks', [])).toEqual({ cluster: 'lab-eks', open: 0, byType: {}, byState: {} });
  });

  it('shows the open workload drifts of each cluster, naming the rollbacks under way and failed, and needs attention when they cannot be read', () => {
    const clusters = [
      countWorkloadDrifts('prod-eks', [
        { type: 'image', state: 'rolling-back' },
        { type: 'image', state: 'open' },
        { type: 'unauthorized', state: 'rollback-failed' },
      ]),
      countWorkloadDrifts('stage-eks', [{ type: 'config', state: 'open' }]),
      countWorkloadDrifts('lab-eks', []),
    ];
    const text = formatStatus({ ...base, drift: { ...base.drift, workload: { clusters } }, attention: [] });
    expect(text).toContain(['Workload drift  prod-eks: 3 open (1 unauthorized, 2 image); 1 rolling-back, 1 rollback-failed', '                stage-eks: 1 open (1 config)', '                lab-eks: none open'].join('\n'));
    expect(needsAttention({ ...base, drift: { ...base.drift, workload: { clusters } } })).toEqual([]);

    const unreadable = { ...base, drift: { ...base.drift, workload: { error: 'ResourceNotFoundException: no table' } } };
    expect(needsAttention(unreadable)).toEqual(['workload drift could not be read: ResourceNotFoundException: no table']);
    expect(formatStatus({ ...unreadable, attention: [] })).toContain('Workload drift  unavailable: ResourceNotFoundException: no table');
  });
});

describe('progress on a long read', () => {
  const sink = () => {
    const lines: string[] = [];
    return { lines, out: { write: (text: string) => lines.push(text) } };
  };

  it('says nothing when the read is over before the first second', () => {
    const { lines, out } = sink();
    const progress = new Progress('reading the ledger', 'entries', { out });
    progress.add(10);
    progress.done();
    expect(lines).toEqual([]);
  });

  it('writes a line once the read goes on, and a closing line, to the stream it was given (stderr), never stdout', async () => {
    const { lines, out } = sink();
    const progress = new Progress('reading the ledger', 'entries', { out, afterMs: 5, everyMs: 5 });
    progress.add(1200);
    await new Promise((resolve) => setTimeout(resolve, 30));
    progress.done();
    expect(lines[0]).toBe('fleetwarden: reading the ledger… 1,200 entries so far\n');
    expect(lines.at(-1)).toMatch(/^fleetwarden: reading the ledger: 1,200 entries in \d+\.\d s\n$/);
  });
});
