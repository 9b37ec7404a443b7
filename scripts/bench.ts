/**
 * `npm run bench`: measures, never asserts. Writes bench/results.json with
 * - per-function bundle size (the esbuild output `cdk synth` stages) and cold init (module load);
 * - ledger append rate (sequential, deduplicated, concurrent) against moto, write units per append;
 * - ledger verify rate (pure, and end to end from DynamoDB + digests);
 * - interruption events per second through the ingest handler, with duplicates, and DynamoDB
 *   write units per event;
 * - state transitions, Lambda invocations and SDK calls per digest workflow run.
 *
 * `tsx scripts/bench.ts --only interruptions[,swaps,…]` runs only the named sections (functions,
 * ledger, interruptions, swaps, workflows, kubernetes) and replaces only their keys in
 * bench/results.json, leaving the other figures as they were measured.
 */
import './quiet-runtime';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { AccountSessions } from '../functions/shared/accounts';
import { DigestArchive, KmsDigestSigner } from '../functions/ledger/adapters';
import { verifyLedger } from '../functions/ledger/audit';
import { type LedgerEntry, seal, verifyChain } from '../functions/ledger/chain';
import { DynamoLedger } from '../functions/ledger/store';
import { awsClient, documentClient } from '../functions/shared/aws';
import { ENTRY_METADATA_KEY } from '../lib/constructs/fleet-function';
import { PROJECT_ROOT } from '../lib/paths';
import { type CountingProxy, startCountingProxy } from '../local/counting-proxy';
import { itemBytes } from './bench/harness';
import { costModel, formatCostModel } from './bench/cost';
import { swapBench } from './bench/swaps';
import { motoEnvironment, startMoto } from '../local/moto';
import { type LocalStack, provision } from '../local/provision';
import { deliverToQueue, pumpQueue } from '../local/sqs-source';
import { runStateMachine } from '../local/stepfunctions';
import { type CfnResource, synthTemplate } from '../local/template';

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
};
const round = (n: number, digits = 1) => Number(n.toFixed(digits));

function bundles() {
  const outdir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bench-'));
  try {
    execFileSync('cdk', ['synth', '--quiet', '--output', outdir], { cwd: PROJECT_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
    const template = JSON.parse(readFileSync(path.join(outdir, 'Fleetwarden.template.json'), 'utf8'));
    const results: Record<string, unknown>[] = [];
    for (const [logicalId, resource] of Object.entries<CfnResource>(template.Resources)) {
      if (resource.Type !== 'AWS::Lambda::Function') continue;
      const assetDir = path.join(outdir, String(resource.Metadata?.['aws:asset:path']));
      const files = readdirSync(assetDir);
      const code = readFileSync(path.join(assetDir, 'index.mjs'));
      const coldInit: number[] = [];
      for (let i = 0; i < 7; i++) {
        // A fresh Node 22 process each time: what a Lambda cold start pays for loading the module.
        const ms = execFileSync(
          'node',
          ['--input-type=module', '-e', `const t=performance.now(); await import(${JSON.stringify(path.join(assetDir, 'index.mjs'))}); console.log(performance.now()-t)`],
          { env: { ...process.env, ...(resource.Properties?.Environment as { Variables: Record<string, string> }).Variables, AWS_REGION: 'us-east-1' }, encoding: 'utf8' },
        );
        coldInit.push(Number(ms.trim()));
      }
      results.push({
        function: resource.Metadata?.[ENTRY_METADATA_KEY],
        logicalId,
        bundleBytes: code.length,
        bundleGzipBytes: gzipSync(code).length,
        sourceMapBytes: files.includes('index.mjs.map') ? statSync(path.join(assetDir, 'index.mjs.map')).size : 0,
        coldInitMs: { median: round(median(coldInit)), min: round(Math.min(...coldInit)), max: round(Math.max(...coldInit)), runs: coldInit.length },
      });
    }
    return results;
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

function pureVerifyRate(n: number) {
  const entries: LedgerEntry[] = [];
  for (let i = 0; i < n; i++) {
    const tip = entries.at(-1);
    entries.push(seal('bench', { actor: 'bench', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'bench', eventId: `e-${i}`, after: { i } }, tip, new Date()));
  }
  const started = performance.now();
  const report = verifyChain('bench', entries);
  const seconds = (performance.now() - started) / 1000;
  if (!report.ok) throw new Error('bench chain failed verification');
  return { entries: n, entriesPerSecond: Math.round(n / seconds) };
}


/**
 * Counts DynamoDB write units on the shared client, for every caller (Fleetwarden's adapters and
 * Powertools alike): asks for ReturnConsumedCapacity on every write and adds up what comes back.
 * moto reports none for TransactWriteItems, so those are estimated as AWS bills them: 2 WCU per
 * started KB of each item. Installed once; read with `since()`.
 */
function installWriteUnitCounter() {
  const totals = { units: 0, writes: 0 };
  awsClient(DynamoDBClient).middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as { ReturnConsumedCapacity?: string; TransactItems?: { Put?: { Item: Record<string, unknown> } }[] };
      const isWrite = /^(PutItem|UpdateItem|DeleteItem|TransactWriteItems|BatchWriteItem)Command$/.test(command);
      if (isWrite) input.ReturnConsumedCapacity = 'TOTAL';
      const result = await next(args);
      if (isWrite) {
        totals.writes += 1;
        const consumed = (result.output as { ConsumedCapacity?: { CapacityUnits?: number } | { CapacityUnits?: number }[] }).ConsumedCapacity;
        const reported = [consumed ?? []].flat().reduce((sum, c) => sum + (c.CapacityUnits ?? 0), 0);
        totals.units +=
          command === 'TransactWriteItemsCommand' && reported === 0
            ? (input.TransactItems ?? []).reduce((sum, t) => sum + 2 * Math.ceil(itemBytes(t.Put?.Item ?? {}) / 1024), 0)
            : reported;
      }
      return result;
    },
    { step: 'initialize', name: 'fleetwardenBenchWriteUnits' },
  );
  const since = (mark: { units: number; writes: number }) => ({ units: totals.units - mark.units, writes: totals.writes - mark.writes });
  return { mark: () => ({ ...totals }), since };
}
type WriteUnitCounter = ReturnType<typeof installWriteUnitCounter>;

/** The value of a key attribute, plain or marshalled ({ S: … } / { N: … }). */
const keyValue = (v: unknown) => (v && typeof v === 'object' ? Object.values(v as Record<string, unknown>)[0] : v);

/**
 * DynamoDB write units as DynamoDB bills them, counted on the client for the interruptions
 * section: moto answers 1 for every PutItem whatever its size, nothing for a write whose condition
 * failed (the call throws) and nothing for a transaction. Billed instead: a PutItem or DeleteItem
 * costs the larger of the item written and the item it replaces, in started KB; a write whose
 * condition fails still costs the size of the existing item (at least 1); an UpdateItem the larger
 * of the item before and the attributes it sets (approximated: both added up); a transaction
 * item twice its write (a cancelled transaction counted as if written: conservative). Item sizes
 * by DynamoDB's rules (itemBytes); the size of what each key holds is tracked from the writes seen.
 * Also keeps the largest item written per kind (pool record, ledger entry, dedupe marker).
 */
function installBilledWriteCounter(tables: { poolRisk: string; ledger: string }) {
  const sizes = new Map<string, number>();
  const totals = { units: 0, writes: 0, failedConditions: 0 };
  const largest: Record<string, number> = {};
  const keyOf = (table: string, item: Record<string, unknown>) =>
    `${table}|${['pool', 'id', 'chain', 'seq'].filter((k) => k in item).map((k) => String(keyValue(item[k]))).join('|')}`;
  const kindOf = (table: string, item: Record<string, unknown>) =>
    table === tables.poolRisk ? 'poolRecord' : table === tables.ledger ? (Number(keyValue(item.seq)) === 0 ? 'dedupeMarker' : 'ledgerEntry') : table.replace(/^.*?-/, '');
  const units = (bytes: number) => Math.max(1, Math.ceil(bytes / 1024));
  type Write = { table: string; key: string; bytes?: number; kind: string };
  /** A write request's input, plain or marshalled, as far as the counter reads it. */
  type WriteInput = { TableName: string; Item: Record<string, unknown>; Key: Record<string, unknown>; ExpressionAttributeValues?: Record<string, unknown>; TransactItems: Record<string, WriteInput | undefined>[] };
  const writesOf = (command: string, input: WriteInput): Write[] => {
    if (command === 'PutItemCommand') return [{ table: input.TableName, key: keyOf(input.TableName, input.Item), bytes: itemBytes(input.Item), kind: kindOf(input.TableName, input.Item) }];
    if (command === 'DeleteItemCommand') return [{ table: input.TableName, key: keyOf(input.TableName, input.Key), bytes: 0, kind: 'delete' }];
    if (command === 'UpdateItemCommand') {
      const key = keyOf(input.TableName, input.Key);
      return [{ table: input.TableName, key, bytes: (sizes.get(key) ?? 0) + itemBytes(input.ExpressionAttributeValues ?? {}), kind: 'update' }];
    }
    if (command === 'TransactWriteItemsCommand') {
      return input.TransactItems.flatMap((t) => (t.Put ? writesOf('PutItemCommand', t.Put) : t.Delete ? writesOf('DeleteItemCommand', t.Delete) : t.Update ? writesOf('UpdateItemCommand', t.Update) : []));
    }
    return [];
  };
  awsClient(DynamoDBClient).middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const writes = writesOf(command, args.input as WriteInput);
      if (!writes.length) return next(args);
      const factor = command === 'TransactWriteItemsCommand' ? 2 : 1;
      totals.writes += 1;
      try {
        const result = await next(args);
        for (const w of writes) {
          totals.units += factor * units(Math.max(w.bytes ?? 0, sizes.get(w.key) ?? 0));
          sizes.set(w.key, w.bytes ?? 0);
          if (w.bytes) largest[w.kind] = Math.max(largest[w.kind] ?? 0, w.bytes);
        }
        return result;
      } catch (error) {
        const name = (error as Error).name;
        if (name === 'ConditionalCheckFailedException') {
          totals.failedConditions += 1;
          for (const w of writes) totals.units += units(sizes.get(w.key) ?? 0);
        } else if (name === 'TransactionCanceledException') {
          for (const w of writes) totals.units += factor * units(Math.max(w.bytes ?? 0, sizes.get(w.key) ?? 0));
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'fleetwardenBenchBilledWriteUnits' },
  );
  const mark = () => ({ ...totals });
  const since = (m: ReturnType<typeof mark>) => ({ units: totals.units - m.units, writes: totals.writes - m.writes, failedConditions: totals.failedConditions - m.failedConditions });
  return { mark, since, largest: () => ({ ...largest }) };
}

/** Calls by operation in `a` but not in `b` (counts taken from one proxy at two moments). */
const minus = (a: Record<string, number>, b: Record<string, number>) =>
  Object.fromEntries(Object.entries(a).flatMap(([op, n]) => (n > (b[op] ?? 0) ? [[op, n - (b[op] ?? 0)] as const] : [])));

const NOTE_INTERRUPTIONS =
  'write units as DynamoDB bills them (installBilledWriteCounter), per distinct event: the pool record carrying its pending ledger entry (within 2 KB: 2) then the entry (1), or for an event without a pool its dedupe marker holding the entry (1) then the entry (1); no transaction, no idempotency table. The duplicates are answered from the warm container\'s memory (0 calls, 0 units); in a cold one (coldContainerDuplicates, measured apart) a duplicate reads its pool record and the ledger, and publishes its events again; one without a pool costs a refused marker put (1). API calls per delivery without the event source mapping\'s ReceiveMessage/DeleteMessage (Lambda makes those), and with them; DescribeInstances once per account and region of a batch, the ledger tip once per batch';

async function interruptionThroughput(stack: LocalStack, proxy: CountingProxy, writeUnits: WriteUnitCounter) {
  const instances: string[] = [];
  for (const [i, type] of ['m5.large', 'm5.xlarge', 'c5.large', 'c5.xlarge', 'r5.large'].entries()) {
    const ec2 = awsClient(EC2Client, await new AccountSessions('123456789012', 'fleetwarden-member').options(i % 2 ? '333333333333' : '111111111111', 'us-east-1'));
    const out = await ec2.send(new RunInstancesCommand({ ImageId: 'ami-12345678', MinCount: 1, MaxCount: 1, InstanceType: type as never, Placement: { AvailabilityZone: 'us-east-1b' }, InstanceMarketOptions: { MarketType: 'spot' } }));
    instances.push(out.Instances![0]!.InstanceId!);
  }
  const kinds = ['spot-interruption-warning', 'rebalance-recommendation', 'state-change-shutting-down'];
  const distinct = Array.from({ length: 150 }, (_, i) => {
    const e = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', `${kinds[i % 3]}.json`), 'utf8'));
    const instanceId = instances[i % instances.length]!;
    Object.assign(e, { id: `bench-${i}`, account: i % instances.length % 2 ? '333333333333' : '111111111111', time: new Date().toISOString() });
    e.detail['instance-id'] = instanceId;
    return e;
  });
  // Every third event is delivered twice (at-least-once), as separate messages, after them all:
  // the distinct events are pumped first, then the duplicates, so each is measured on its own.
  const duplicates = distinct.filter((_, i) => i % 3 === 0);
  const deliveries = [...distinct, ...duplicates];
  const billed = installBilledWriteCounter({ poolRisk: stack.ref('StateStorePoolRiskTable'), ledger: stack.ref('StateStoreLedgerTable') });
  await deliverToQueue(stack, 'InterruptionsEventsQueue', distinct);
  const mark = writeUnits.mark();
  proxy.reset();
  let billedMark = billed.mark();
  const started = performance.now();
  const pump = await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest', { maxBatches: 1000 });
  let seconds = (performance.now() - started) / 1000;
  const billedDistinct = billed.since(billedMark);
  const distinctCalls = proxy.counts();
  await deliverToQueue(stack, 'InterruptionsEventsQueue', duplicates);
  const delivering = minus(proxy.counts(), distinctCalls); // the bench's own SendMessage calls
  billedMark = billed.mark();
  const duplicateStarted = performance.now();
  const duplicatePump = await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest', { maxBatches: 1000 });
  seconds += (performance.now() - duplicateStarted) / 1000;
  const billedDuplicates = billed.since(billedMark);
  const written = writeUnits.since(mark);
  const calls = minus(proxy.counts(), delivering);
  // The event source mapping's own SQS calls are Lambda's, not the function's: counted apart.
  const esm = (c: Record<string, number>) => (c.ReceiveMessage ?? 0) + (c.DeleteMessage ?? 0) + (c.DeleteMessageBatch ?? 0) + (c.ChangeMessageVisibility ?? 0);
  const total = (c: Record<string, number>) => Object.values(c).reduce((a, b) => a + b, 0);
  const duplicateCalls = minus(calls, distinctCalls);

  // The same duplicates once more, to a cold container (a new environment is a new one locally):
  // no memory of the events it completed, so they take the durable path (the pool history, the
  // ledger), and republish their events.
  const ingest = [...stack.functions.values()].find((f) => f.logicalId.startsWith('InterruptionsInterruptionIngest'))!;
  await deliverToQueue(stack, 'InterruptionsEventsQueue', duplicates);
  const coldMark = proxy.counts();
  billedMark = billed.mark();
  ingest.environment.FLEETWARDEN_BENCH_CONTAINER = 'cold';
  const coldPump = await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest', { maxBatches: 1000 });
  delete ingest.environment.FLEETWARDEN_BENCH_CONTAINER;
  const billedCold = billed.since(billedMark);
  const coldCalls = minus(proxy.counts(), coldMark);
  return {
    awsApiCallsPerDelivery: round((total(calls) - esm(calls)) / deliveries.length, 2),
    awsApiCallsPerDeliveryWithEventSourceMapping: round(total(calls) / deliveries.length, 2),
    awsApiCallsPerDistinctEvent: round((total(distinctCalls) - esm(distinctCalls)) / distinct.length, 2),
    awsApiCallsPerDuplicate: round((total(duplicateCalls) - esm(duplicateCalls)) / duplicates.length, 2),
    awsApiCallsByOperation: calls,
    motoRoundTripMs: await motoRoundTrip(),
    distinctEvents: distinct.length,
    deliveries: deliveries.length,
    failedDeliveries: pump.failed + duplicatePump.failed,
    batches: pump.batches + duplicatePump.batches,
    deliveriesPerSecond: round(deliveries.length / seconds),
    dynamodbWrites: billedDistinct.writes + billedDuplicates.writes,
    failedConditionalWrites: billedDistinct.failedConditions + billedDuplicates.failedConditions,
    writeUnitsPerDelivery: round((billedDistinct.units + billedDuplicates.units) / deliveries.length, 2),
    writeUnitsPerDistinctEvent: round(billedDistinct.units / distinct.length, 2),
    writeUnitsPerDuplicate: round(billedDuplicates.units / duplicates.length, 2),
    largestItemBytes: billed.largest(),
    coldContainerDuplicates: {
      deliveries: duplicates.length,
      failedDeliveries: coldPump.failed,
      writeUnitsPerDuplicate: round(billedCold.units / duplicates.length, 2),
      awsApiCallsPerDuplicate: round((total(coldCalls) - esm(coldCalls)) / duplicates.length, 2),
      awsApiCallsByOperation: coldCalls,
    },
    // The figures as this bench counted them before (moto's 1 per successful write, transactions
    // estimated, failed conditional writes missed), over all deliveries per distinct event.
    writeUnitsAsMotoReports: { perDelivery: round(written.units / deliveries.length, 2), perDistinctEvent: round(written.units / distinct.length, 2) },
    note: NOTE_INTERRUPTIONS,
  };
}

/** Median latency of one cheap call, to read the throughput figures against. */
async function motoRoundTrip(): Promise<number> {
  const { ListTablesCommand } = await import('@aws-sdk/client-dynamodb');
  const times: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = performance.now();
    await awsClient(DynamoDBClient).send(new ListTablesCommand({ Limit: 1 }));
    times.push(performance.now() - t);
  }
  return round(median(times), 2);
}

const SECTIONS = ['functions', 'ledger', 'archive', 'interruptions', 'swaps', 'workflows', 'kubernetes', 'nth', 'enforcement', 'waste', 'workloads'] as const;
type Section = (typeof SECTIONS)[number];

/** The sections `--only a,b` names (all of them without the flag). */
function selectedSections(argv: string[]): Set<Section> {
  const at = argv.indexOf('--only');
  if (at === -1) return new Set(SECTIONS);
  const names = (argv[at + 1] ?? '').split(',').filter(Boolean);
  const unknown = names.filter((n) => !(SECTIONS as readonly string[]).includes(n));
  if (!names.length || unknown.length) throw new Error(`--only takes a comma-separated list of ${SECTIONS.join(', ')}${unknown.length ? ` (not: ${unknown.join(', ')})` : ''}`);
  return new Set(names as Section[]);
}

async function main() {
  const sections = selectedSections(process.argv.slice(2));
  const partial = sections.size < SECTIONS.length;
  let functionResults: Record<string, unknown>[] | undefined;
  if (sections.has('functions')) {
    console.log('bundling every function (cdk synth) and timing cold init…');
    functionResults = bundles();
  }

  console.log('starting moto…');
  const moto = await startMoto();
  const proxy = await startCountingProxy(moto.endpoint);
  Object.assign(process.env, motoEnvironment(proxy.endpoint), { POWERTOOLS_LOG_LEVEL: 'SILENT', POWERTOOLS_METRICS_DISABLED: 'true', POWERTOOLS_TRACE_ENABLED: 'false' });
  // Every DynamoDB client goes through awsClient's shared instance: one counter sees all writes.
  const writeUnits = installWriteUnitCounter();
  try {
    const stack = await provision(synthTemplate(), { prefix: 'bench' });
    const tableName = stack.ref('StateStoreLedgerTable');
    const ledgerBench: Record<string, unknown> = {};
    const sequential = new DynamoLedger(documentClient(), { tableName });
    let started: number;
    let seconds: number;

    if (sections.has('ledger')) {
    const appendN = 300;
    let mark = writeUnits.mark();
    started = performance.now();
    for (let i = 0; i < appendN; i++) await sequential.append({ actor: 'bench', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'bench', eventId: `seq-${i}` });
    seconds = (performance.now() - started) / 1000;
    ledgerBench.sequentialAppend = { appends: appendN, appendsPerSecond: round(appendN / seconds), writeUnitsPerAppend: round(writeUnits.since(mark).units / appendN, 2) };

    mark = writeUnits.mark();
    const deduped = new DynamoLedger(documentClient(), { tableName, chain: 'dedupe' });
    started = performance.now();
    for (let i = 0; i < appendN; i++) {
      const draft = { actor: 'bench', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'bench', eventId: `dup-${i}` };
      await deduped.append(draft, { dedupeKey: draft.eventId });
      await deduped.append(draft, { dedupeKey: draft.eventId }); // every fact delivered twice
    }
    seconds = (performance.now() - started) / 1000;
    ledgerBench.dedupedAppendWithDuplicates = {
      deliveries: appendN * 2,
      appended: appendN,
      deliveriesPerSecond: round((appendN * 2) / seconds),
      // Transactions estimated as AWS bills them (moto reports none); the duplicates' failed
      // transactions write nothing.
      writeUnitsPerAppend: round(writeUnits.since(mark).units / appendN, 2),
      note: 'moto copies table state for each transaction, so this rate is an emulator artifact, not a DynamoDB figure',
    };

    const writers = 4;
    const perWriter = 50;
    let conflicts = 0;
    started = performance.now();
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        const ledger = new DynamoLedger(documentClient(), { tableName, chain: 'concurrent', maxAttempts: 200 });
        for (let i = 0; i < perWriter; i++) conflicts += (await ledger.append({ actor: `writer-${w}`, action: 'pool.quarantined', subject: `p-${i}`, reason: 'bench', eventId: `c-${w}-${i}` })).conflicts;
      }),
    );
    seconds = (performance.now() - started) / 1000;
    ledgerBench.concurrentAppend = { writers, appends: writers * perWriter, appendsPerSecond: round((writers * perWriter) / seconds), lostRacesRetried: conflicts };
    }

    let archive: Record<string, unknown> | undefined;
    if (sections.has('archive')) {
      console.log('ledger archive: the archiver on the stream, then verify of 1,000,000 entries from segment files…');
      const bench = await import('./bench/ledger-archive');
      archive = { archiver: await bench.archiverBench(stack, proxy, writeUnits), verify: await bench.archiveVerifyBench() };
    }
    let interruptions: Record<string, unknown> | undefined;
    if (sections.has('interruptions')) {
      console.log('interruption events through the handler…');
      interruptions = await interruptionThroughput(stack, proxy, writeUnits);
    }
    let swaps: Record<string, unknown> | undefined;
    if (sections.has('swaps')) {
      console.log('node swaps…');
      swaps = await swapBench(stack, proxy);
    }
    let workflows: Record<string, unknown> | undefined;
    if (sections.has('workflows')) {
      // The chain's first digest, then an hourly run as every later one is: a previous digest to
      // read and verify, one new entry to digest.
      await sequential.append({ actor: 'bench', action: 'pool.quarantined', subject: 'pool-first', reason: 'bench', eventId: 'digest-first' });
      const first = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
      await sequential.append({ actor: 'bench', action: 'pool.quarantined', subject: 'pool-next', reason: 'bench', eventId: 'digest-next' });
      proxy.reset();
      const digest = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
      const digestCalls = proxy.counts();
      workflows = {
        ledgerDigest: { status: digest.status, stateTransitions: digest.transitions, lambdaInvocations: digest.lambdaInvocations, sdkTaskCalls: digest.sdkCalls, awsApiCalls: digestCalls },
        ledgerFirstDigest: { status: first.status, stateTransitions: first.transitions, sdkTaskCalls: first.sdkCalls },
      };
    }
    if (sections.has('ledger')) {
    started = performance.now();
    const verification = await verifyLedger({
      ledger: sequential,
      digests: new DigestArchive(awsClient(S3Client), stack.ref('LedgerArchive')),
      signer: new KmsDigestSigner(awsClient(KMSClient), stack.attr('LedgerDigestSigningKey', 'Arn')),
    });
    seconds = (performance.now() - started) / 1000;
    ledgerBench.verify = {
      pureInMemory: pureVerifyRate(20_000),
      endToEndFromMoto: { entries: verification.entries, ok: verification.ok, entriesPerSecond: round(verification.entries / seconds) },
    };
    }

    const results = {
      measuredAt: new Date().toISOString(),
      node: process.version,
      machine: { cpus: (await import('node:os')).cpus().length },
      functions: functionResults,
      ledger: ledgerBench,
      archive,
      interruptions,
      swaps,
      kubernetes: sections.has('kubernetes') ? await (await import('./bench/kubernetes')).kubernetesBench() : undefined,
      workflows,
      // AWS Node Termination Handler side by side with Fleetwarden (builds NTH on first use).
      nth: sections.has('nth') ? await (await import('./bench/nth')).nthComparison({ motoEndpoint: moto.endpoint, proxy }) : undefined,
      // The enforcement sweep over 10,000 instances beside Cloud Custodian (its own moto and proxy).
      enforcement: sections.has('enforcement') ? await (await import('./bench/enforcement')).enforcementBench() : undefined,
      // The waste scan over 50,000 snapshots and more in one account-region beside Cloud Custodian (its own moto and proxy).
      waste: sections.has('waste') ? await (await import('./bench/waste')).wasteBench() : undefined,
      // One workload drift cycle over 2,000 Deployments on the local control plane beside kubectl diff --server-side (its own control plane).
      workloads: sections.has('workloads') ? await (await import('./bench/workloads')).workloadsBench() : undefined,
    };
    const file = path.join(PROJECT_ROOT, 'bench', 'results.json');
    mkdirSync(path.dirname(file), { recursive: true });
    // A partial run replaces only the sections it measured; the rest stay as measured before.
    const written: Record<string, unknown> = partial
      ? { ...(JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>), ...Object.fromEntries([...sections].map((s) => [s, results[s]])) }
      : results;
    // Derived, not measured: the monthly cost from whatever the file now holds, recomputed every run.
    const cost = costModel(written as never);
    written.cost = cost;
    writeFileSync(file, `${JSON.stringify(written, null, 2)}\n`);
    console.log(`\n${formatCostModel(cost, { layout: 'below' })}`);
    console.log(JSON.stringify(partial ? Object.fromEntries([...sections].map((s) => [s, results[s]])) : results, null, 2));
    console.log('\nwritten to bench/results.json');
  } finally {
    await proxy.stop();
    await moto.stop();
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
