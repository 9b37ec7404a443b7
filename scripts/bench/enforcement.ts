/**
 * The rogue-instance enforcer's backstop sweep at fleet scale, beside Cloud Custodian on the same
 * instances (measures, never asserts).
 *
 * - Fleet: 10 member accounts (PROD, STAGING and LAB mixed) x 2 regions, 500 on-demand instances
 *   in each account-region (10,000), launched in each account with that account's credentials
 *   (moto maps assumed-role credentials to the role's account). 90 % carry an authorizing mark
 *   (ManagedBy=fleetwarden, an Auto Scaling group's aws:autoscaling:groupName, eks:cluster-name),
 *   10 % carry no tag at all: 1,000 unauthorized instances.
 * - Fleetwarden: the synthesized `fleetwarden-enforcement-sweep` state machine, run locally (its
 *   Lambda tasks call the real EnforcementSteps handler in process), on a stack synthesized with
 *   these accounts and regions, dry run, circuit breaker 10 actions / 5 % of the fleet. The FIRST
 *   sweep flags the unauthorized instances; the SECOND runs over the unchanged fleet.
 * - Cloud Custodian: the equivalent report-only policy with c7n-org over the same account-regions
 *   (scripts/bench/c7n.ts), through the same counting proxy.
 *
 * Its own moto (moto_serial.py with one leak stopped: UNTRACKED_DYNAMODB_PRELUDE) and counting proxy: moto's
 * EC2 state is global to one server, so the other sections' instances never mix with these, and
 * every count is of this section's calls only (the proxy is reset before each measured run). The
 * process's SDK clients are pointed at that proxy for the section's duration, then back.
 *
 * Exported: enforcementBench(), for scripts/bench.ts. Standalone (`tsx scripts/bench/enforcement.ts`)
 * prints the JSON and writes nothing.
 */
import '../quiet-runtime';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { type FlagState, OPEN_STATES } from '../../functions/enforcement/flags';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { type CountingProxy, startCountingProxy } from '../../local/counting-proxy';
import { motoEnvironment } from '../../local/moto';
import { type LocalStack, provision } from '../../local/provision';
import { type TaskHandler, runStateMachine, taskStates } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { type C7nRun, ensureC7nVenv, runC7nOrg, runCustodianPerTarget } from './c7n';
import { type Meters, type Totals, UNTRACKED_DYNAMODB_PRELUDE, installMeters, startMotoWithPrelude, withLocalTimeouts } from './harness';

const HOME_ACCOUNT = '123456789012'; // the stack's account in local/provision.ts
const MEMBER_ROLE = 'fleetwarden-member';
const REGIONS = ['us-east-1', 'us-west-2'];
const ENVIRONMENTS = ['PROD', 'STAGING', 'LAB'] as const;
/** 10 member accounts (none is the home account: every one is reached through AssumeRole). */
const ACCOUNTS = Array.from({ length: 10 }, (_, i) => ({
  id: String(200_000_000_001 + i),
  name: `bench-enf-${String(i + 1).padStart(2, '0')}`,
  environment: ENVIRONMENTS[i % ENVIRONMENTS.length]!,
}));
const TARGETS = ACCOUNTS.flatMap((a) => REGIONS.map((region) => ({ account: a.id, region })));
/**
 * One account-region's 500 instances, one RunInstances call each kind: 450 authorized by one of
 * the default rules, 50 (10 %) without any tag.
 */
const MIX: { kind: string; count: number; tags?: (account: string) => Record<string, string> }[] = [
  { kind: 'ManagedBy=fleetwarden', count: 250, tags: () => ({ ManagedBy: 'fleetwarden' }) },
  { kind: 'aws:autoscaling:groupName', count: 125, tags: (account) => ({ 'aws:autoscaling:groupName': `web-${account}` }) },
  { kind: 'eks:cluster-name', count: 75, tags: () => ({ 'eks:cluster-name': 'platform' }) },
  { kind: 'untagged', count: 50 },
];
/** DescribeInstances' largest page: a sweep cannot read an account-region in fewer pages. */
const PAGE_SIZE = 1_000;
const SWEEP = 'EnforcementSweepStateMachine';
/** The EnforcementSteps function's memory (lib/constructs/enforcement.ts). */
const LAMBDA_MEMORY_MB = 1024;
/**
 * The billed duration the cost assumes (moto's latency is not AWS's): 100 ms per invocation, plus
 * 20 ms per AWS call its steps make (a same-region round trip), as if made one after the other
 * (an upper bound: a batch's reads of several account-regions overlap; its writes do not).
 */
const ASSUMED = { msPerInvocation: 100, msPerCall: 20 };

/**
 * AWS list prices (us-east-1, as published on the service pricing pages; the house table of
 * scripts/bench/swaps.ts plus SNS): Step Functions Standard $0.025 per 1,000 state transitions;
 * Lambda $0.20 per million requests and $0.0000133334 per GB-second on ARM64; DynamoDB on-demand
 * $0.625 per million write and $0.125 per million read request units; EventBridge custom events
 * $1.00 per million (per entry of 64 KB); SNS standard topics $0.50 per million publishes
 * (deliveries, e.g. $2.00 per 100,000 e-mails, depend on the subscriptions and are left out).
 * EC2 Describe* and STS AssumeRole calls are free.
 */
const PRICE = { transition: 0.025 / 1000, lambdaRequest: 0.2 / 1e6, lambdaGbSecond: 0.0000133334, ddbWrite: 0.625 / 1e6, ddbRead: 0.125 / 1e6, event: 1 / 1e6, snsPublish: 0.5 / 1e6 };

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/** cdk.json's config with this fleet's accounts and regions, dry run, the section's circuit breaker. */
function benchConfig(): Record<string, unknown> {
  const cdk = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: { fleetwarden: Record<string, unknown> } };
  const base = cdk.context.fleetwarden;
  const policies = (base.policies ?? {}) as Record<string, Record<string, unknown>>;
  return {
    ...base,
    regions: REGIONS,
    accounts: ACCOUNTS,
    dryRun: true,
    policies: { ...policies, enforcement: { ...(policies.enforcement ?? {}), circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 5 } } },
  };
}

// ---------------------------------------------------------------------------------------------
// The section's moto.

// moto keeps every model instance it ever creates (BaseModel.instances_tracked, for its
// /moto-api listing), and its TransactWriteItems deep-copies each table a transaction touches,
// for the rollback: every transaction leaks a copy of the whole ledger table (quadratic: the first
// sweep's ~1,000 appends grew moto past 14 GB before two-thirds of them were done). So the
// section's moto is test/emulators/moto_serial.py, unchanged, with DynamoDB's models untracked
// (UNTRACKED_DYNAMODB_PRELUDE, scripts/bench/harness.ts).

// ---------------------------------------------------------------------------------------------
// Seeding.

interface Fleet {
  /** `account/region/instance-id` of every instance launched without an authorizing mark. */
  unauthorized: Set<string>;
  /** Instances in scope (pending or running) per `account/region`. */
  perTarget: Map<string, number>;
  byKind: Record<string, number>;
  runInstancesCalls: number;
  seconds: number;
}

async function seedFleet(): Promise<Fleet> {
  const sessions = new AccountSessions(HOME_ACCOUNT, MEMBER_ROLE);
  const fleet: Fleet = { unauthorized: new Set(), perTarget: new Map(), byKind: {}, runInstancesCalls: 0, seconds: 0 };
  const started = performance.now();
  for (const { account, region } of TARGETS) {
    const ec2 = awsClient(EC2Client, await sessions.options(account, region));
    for (const { kind, count, tags } of MIX) {
      const out = await ec2.send(
        new RunInstancesCommand({
          ImageId: 'ami-12345678',
          InstanceType: 'm5.large',
          MinCount: count,
          MaxCount: count,
          ...(tags ? { TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags(account)).map(([Key, Value]) => ({ Key, Value })) }] } : {}),
        }),
      );
      fleet.runInstancesCalls += 1;
      const ids = (out.Instances ?? []).map((i) => i.InstanceId!);
      if (!tags) for (const id of ids) fleet.unauthorized.add(`${account}/${region}/${id}`);
      fleet.byKind[kind] = (fleet.byKind[kind] ?? 0) + ids.length;
      fleet.perTarget.set(`${account}/${region}`, (fleet.perTarget.get(`${account}/${region}`) ?? 0) + ids.length);
    }
  }
  fleet.seconds = round((performance.now() - started) / 1000);
  return fleet;
}

// ---------------------------------------------------------------------------------------------
// Meters on the SDK clients (the proxy counts calls; these read what the calls carry).


// ---------------------------------------------------------------------------------------------
// One sweep.

/** What the sweep workflow's state holds at the end (the Pass state's batches, the Map's reports, the plan). */
interface SweepOutput {
  reports?: { targets: number; failed: { account: string; region: string; error?: string }[]; batchError?: string; instances: number; pages: number; flagged: number; resolved: number }[];
  plan?: { trip: boolean; acting: string[]; planned: number; fleet: number; reason?: string };
}

const lambdaComputeUsd = (ms: number) => (ms / 1000) * (LAMBDA_MEMORY_MB / 1024) * PRICE.lambdaGbSecond;

/** The cost of one sweep from its counted units, at the list prices above, Lambda billed for the ASSUMED duration. */
function sweepCost(run: { transitions: number; invocations: number; awsApiCalls: number; localLambdaMs: number }, units: Totals, snsPublishes: number) {
  const assumedMs = run.invocations * ASSUMED.msPerInvocation + run.awsApiCalls * ASSUMED.msPerCall;
  const lines = {
    stepFunctionsTransitions: run.transitions * PRICE.transition,
    lambdaRequests: run.invocations * PRICE.lambdaRequest,
    lambdaCompute: lambdaComputeUsd(assumedMs),
    dynamodbWrites: (units.writeUnits + units.cancelledWriteUnits) * PRICE.ddbWrite,
    dynamodbReads: units.readUnits * PRICE.ddbRead,
    eventBridgeEvents: units.eventBridgeEntries * PRICE.event,
    snsPublishes: snsPublishes * PRICE.snsPublish,
  };
  return {
    usd: round(sum(Object.values(lines)), 6),
    lines: Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, round(v, 7)])),
    assumptions: `Lambda ${LAMBDA_MEMORY_MB} MB (ARM64) billed ${Math.round(assumedMs)} ms in all: ${ASSUMED.msPerInvocation} ms per invocation plus ${ASSUMED.msPerCall} ms per AWS call, one after the other; DynamoDB units as metered on the clients, cancelled transactions' write units included; SNS deliveries not included`,
    // Lambda billed instead for the wall time measured here (moto answering, one request at a time).
    lambdaComputeAtLocalDurationUsd: round(lambdaComputeUsd(run.localLambdaMs), 7),
  };
}

async function sweep(stack: LocalStack, proxy: CountingProxy, meters: Meters, label: string, minimumPages: number) {
  const machine = [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith(SWEEP))!;
  // Every Lambda task timed here, from the invocation to its answer (reported; the cost assumes its own durations).
  const lambdaMs: Record<string, number[]> = {};
  const around: Record<string, (input: unknown, real: TaskHandler) => Promise<unknown>> = {};
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
  const mark = meters.mark();
  proxy.reset();
  const started = performance.now();
  // A long run says where it is, once a minute.
  const progress = setInterval(() => console.log(`enforcement: ${label} sweep, ${Math.round((performance.now() - started) / 1000)} s, ${proxy.counts().TransactWriteItems ?? 0} transactions so far`), 60_000);
  const run = await runStateMachine(stack, SWEEP, {}, { around, executionName: `bench-enforcement-${label}` }).finally(() => clearInterval(progress));
  const durationMs = Math.round(performance.now() - started);
  const calls = proxy.counts();
  const units = meters.since(mark);
  const output = (run.output ?? {}) as SweepOutput;
  const reports = output.reports ?? [];
  const describeCalls = calls.DescribeInstances ?? 0;
  return {
    status: run.status === 'SUCCEEDED' ? 'SUCCEEDED' : `${run.status}: ${run.error ?? ''} ${run.cause ?? ''}`.trim(),
    durationMs,
    stateTransitions: run.transitions,
    lambdaInvocations: run.lambdaInvocations,
    localLambdaMsByStep: lambdaMs,
    swept: {
      targets: sum(reports.map((r) => r.targets)),
      failed: reports.flatMap((r) => r.failed.map((f) => ({ ...f, error: f.error ?? r.batchError }))),
      instances: sum(reports.map((r) => r.instances)),
      pages: sum(reports.map((r) => r.pages)),
      flagged: sum(reports.map((r) => r.flagged)),
      resolved: sum(reports.map((r) => r.resolved)),
      plan: output.plan ?? null,
    },
    awsApiCalls: proxy.total(),
    awsApiCallsByOperation: calls,
    describeInstances: { calls: describeCalls, minimumPages, callsPerMinimumPage: round(describeCalls / minimumPages, 2), target: '<= 1.1' },
    dynamodb: {
      writeUnits: units.writeUnits,
      writeUnitsByTable: units.writeUnitsByTable,
      readUnits: units.readUnits,
      transactions: units.transactions,
      cancelledTransactionsRetried: units.cancelledTransactions,
      cancelledTransactionWriteUnits: units.cancelledWriteUnits,
    },
    eventBridgeEntries: units.eventBridgeEntries,
    snsPublishes: calls.Publish ?? 0,
    costUsd: sweepCost({ transitions: run.transitions, invocations: run.lambdaInvocations, awsApiCalls: proxy.total(), localLambdaMs: sum(Object.values(lambdaMs).flat()) }, units, calls.Publish ?? 0),
  };
}

// ---------------------------------------------------------------------------------------------
// Cloud Custodian beside it.

async function custodian(proxy: CountingProxy, fleetwardenFlags: Set<string>) {
  await ensureC7nVenv();
  const workdir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-c7n-'));
  const sessions = new AccountSessions(HOME_ACCOUNT, MEMBER_ROLE);
  try {
    proxy.reset();
    let c7nOrgError: string | undefined;
    let result: C7nRun | undefined;
    try {
      result = await runC7nOrg({ endpoint: proxy.endpoint, workdir, targets: TARGETS, roleName: MEMBER_ROLE });
      if (result.missingOutputs.length) throw new Error(`no resources.json for ${result.missingOutputs.join(', ')}:\n${result.logTail.join('\n')}`);
    } catch (error) {
      // c7n-org could not run here: the fallback, `custodian run` per account-region, counted anew.
      const e = error as Error & { stderr?: string };
      c7nOrgError = `${e.message}${e.stderr ? `\n${e.stderr.slice(-2000)}` : ''}`;
      console.log(`c7n-org failed, falling back to custodian run per account-region:\n${c7nOrgError}`);
      proxy.reset();
      result = await runCustodianPerTarget({ endpoint: proxy.endpoint, workdir, targets: TARGETS, assume: async (t) => (await sessions.options(t.account, t.region)).credentials! });
    }
    const calls = proxy.counts();
    const findings = new Set(result.findings);
    const onlyCustodian = [...findings].filter((k) => !fleetwardenFlags.has(k));
    const onlyFleetwarden = [...fleetwardenFlags].filter((k) => !findings.has(k));
    return {
      mode: result.mode,
      command: result.command,
      versions: result.versions,
      ...(c7nOrgError ? { c7nOrgError } : {}),
      durationMs: result.durationMs,
      findings: result.findings.length,
      sameInstancesAsFleetwarden: onlyCustodian.length === 0 && onlyFleetwarden.length === 0,
      ...(onlyCustodian.length || onlyFleetwarden.length ? { onlyCustodian: onlyCustodian.slice(0, 10), onlyFleetwarden: onlyFleetwarden.slice(0, 10) } : {}),
      missingOutputs: result.missingOutputs,
      awsApiCalls: proxy.total(),
      awsApiCallsByOperation: calls,
      logTail: result.logTail,
      note: 'report only, no resource cache (--cache-period 0): no actions (mark-for-op would tag every finding, a write the dry-run Fleetwarden sweep does not make); the ec2 resource asks DescribeInstances with the instance-state-name filter (its `query`), without MaxResults, and filters the tags client side. When the first instance it samples has no Tags key, c7n also calls DescribeTags for the whole region (its AWOL-tags check)',
    };
  } finally {
    rmSync(workdir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

const NOTE =
  'first sweep: every account-region listed (DescribeInstances, up to 1,000 per page), each unauthorized instance flagged: GetItem of its dedupe marker, the chain tip (Query), one 3-item transaction (ledger entry, dedupe marker, flag: 2 WRU each per KB), one PutEvents entry and one SNS notification each. Second sweep over the unchanged fleet (target: 0 write units): the open flags of each account-region read from the sparse GSI (Query), every instance decided from the listing, nothing written; its container is warm, so the member credentials of the first sweep are reused (a cold one adds an AssumeRole per account-region). Dry run, grace 24 h: nothing is acted on in either. The local run lifts the steps\' and the function\'s timeouts (withLocalTimeouts), and moto answers every request one at a time (test/emulators/moto_serial.py) and copies each table a transaction touches: the durations are emulator-bound, and only as quiet as the machine (loadAverage)';

export async function enforcementBench(): Promise<Record<string, unknown>> {
  const sectionStarted = performance.now();
  const loadAtStart = loadavg()[0]!;
  const moto = await startMotoWithPrelude(UNTRACKED_DYNAMODB_PRELUDE);
  const proxy = await startCountingProxy(moto.endpoint);
  // The section's clients (and the handlers', which copy process.env) go to this proxy; the
  // environment object itself is put back at the end, whatever the runs did to it.
  const savedEnv = process.env;
  process.env = { ...savedEnv, ...motoEnvironment(proxy.endpoint) };
  try {
    const config = benchConfig();
    const stack = await provision(synthTemplate(config), { prefix: 'bench-enf' });
    const tables = { authorizations: stack.ref('StateStoreAuthorizationsTable'), ledger: stack.ref('StateStoreLedgerTable') };
    const meters = installMeters(tables);
    console.log('enforcement: seeding 10,000 instances in 10 accounts x 2 regions…');
    const fleet = await seedFleet();
    const minimumPages = sum([...fleet.perTarget.values()].map((n) => Math.ceil(n / PAGE_SIZE)));
    // The handler module loaded once beforehand (Lambda's init, not billed per sweep): the first
    // sweep's time is the sweep's, not tsx compiling the handler.
    const steps = [...stack.functions.values()].find((f) => f.logicalId.startsWith('EnforcementEnforcementSteps'))!;
    await import(pathToFileURL(path.join(PROJECT_ROOT, steps.entry)).href);

    console.log('enforcement: first sweep…');
    const local = withLocalTimeouts(stack);
    const first = await sweep(local, proxy, meters, 'first', minimumPages);
    console.log('enforcement: second sweep (nothing changed)…');
    const second = await sweep(local, proxy, meters, 'second', minimumPages);

    // What the sweeps left (read after them, not counted): the open flags, against the seeded fleet.
    const flags = new Set<string>();
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await documentClient().send(new ScanCommand({ TableName: tables.authorizations, ExclusiveStartKey }));
      for (const item of page.Items ?? []) if (OPEN_STATES.includes(item.state as FlagState)) flags.add(String(item.instanceKey));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    const flaggedAsSeeded = flags.size === fleet.unauthorized.size && [...flags].every((k) => fleet.unauthorized.has(k));

    console.log('enforcement: Cloud Custodian (c7n-org) over the same account-regions…');
    // A Custodian that cannot run at all is reported as such (the command's error), not measured.
    const cloudCustodian = await custodian(proxy, flags).catch((error: Error & { stderr?: string }) => ({ failed: `${error.message}${error.stderr ? `\n${error.stderr.slice(-2000)}` : ''}` }));
    return {
      fleet: {
        accounts: ACCOUNTS.map((a) => `${a.id} ${a.environment}`),
        regions: REGIONS,
        accountRegions: TARGETS.length,
        instances: sum(fleet.perTarget.values()),
        instancesPerAccountRegion: MIX.reduce((n, m) => n + m.count, 0),
        byKind: fleet.byKind,
        unauthorized: fleet.unauthorized.size,
        runInstancesCalls: fleet.runInstancesCalls,
        seedSeconds: fleet.seconds,
      },
      // As the stack passes it to the function (dry run from the config).
      policy: { dryRun: steps.environment.FLEETWARDEN_DRY_RUN === 'true', ...(JSON.parse(steps.environment.ENFORCEMENT_POLICY ?? '{}') as Record<string, unknown>) },
      firstSweep: first,
      secondSweep: second,
      openFlagsAfter: flags.size,
      flaggedExactlyTheUnauthorized: flaggedAsSeeded,
      cloudCustodian,
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
  enforcementBench()
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
