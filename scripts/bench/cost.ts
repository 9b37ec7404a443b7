/**
 * A cost model for `npm run bench`: what a month of Fleetwarden costs, from the counts the bench
 * MEASURES per unit of work (bench/results.json: Lambda invocations and durations, state
 * transitions per swap, batch and digest run, DynamoDB calls and write units per interruption
 * event, ledger appends, SQS, EventBridge, S3 and KMS calls per digest), the workload stated in
 * printable assumptions (interruptions per day, swaps per week, sweeps, scans, drift cycles,
 * digests, cleanups) and a table of public list prices.
 *
 * A count the bench does not measure yet is an explicit `unmeasured.*` input with a stated
 * estimate; every line says which `unmeasured.*` fields it rests on, and the formatted table marks
 * those lines with `*`. Pure: no I/O, no clock; `formatCostModel` renders the result.
 *
 * Workloads are the activities that cause a cost: a line belongs to the workload that causes it,
 * so doubling a workload's volume doubles its lines and no other's, except two: the `ledger`
 * workload (digest verification, reads and storage of every workload's ledger entries) and the
 * CloudWatch metric series, which are billed per hour in which they are emitted, not per event.
 */

// ---------------------------------------------------------------------------------------------
// What the model reads from bench/results.json (only these fields; the rest is ignored).

/** Calls counted through the bench's proxy, by operation name (`GetItem`, `PutEvents`, `S3:PUT`…). */
export type CallCounts = Record<string, number>;

interface WorkflowRun {
  stateTransitions: number;
  lambdaInvocations: number;
}

/** The fields of bench/results.json the cost model uses. */
export interface BenchResults {
  functions: { function: string; coldInitMs: { median: number } }[];
  ledger: {
    sequentialAppend: { writeUnitsPerAppend: number };
    dedupedAppendWithDuplicates: { writeUnitsPerAppend: number };
    verify: { endToEndFromMoto: { entriesPerSecond: number } };
  };
  /** The ledger archive (scripts/bench/ledger-archive.ts); results from before it lack it. */
  archive?: { archiver: { perThousandEntries: { s3Requests: number; dynamodbWriteUnits: number }; batches: number; entries: number; bytesPerEntry: number } };
  interruptions: {
    awsApiCallsByOperation: CallCounts;
    distinctEvents: number;
    deliveries: number;
    writeUnitsPerDistinctEvent: number;
    /** Measured since duplicates are answered without the idempotency table; older results lack it. */
    writeUnitsPerDuplicate?: number;
  };
  swaps: {
    successfulSwap: WorkflowRun & { awsApiCallsByOperation: CallCounts };
    rollbackAfterAttach: WorkflowRun & { awsApiCallsByOperation: CallCounts };
    batchOfThree: { batchStateTransitions: number; batchLambdaInvocations: number };
  };
  kubernetes: {
    ingestFunctionMs: { median: number };
    drainFunctionReportedDrainMs: { median: number };
    nodeSwaps: { successfulNodeSwap: WorkflowRun; nodeSwapRolledBackAfterAttach: WorkflowRun };
  };
  workflows: { ledgerDigest: WorkflowRun & { awsApiCalls: CallCounts } };
}

// ---------------------------------------------------------------------------------------------
// Prices.

export type PriceKey =
  | 'lambdaRequests'
  | 'lambdaGbSecondsArm64'
  | 'stepFunctionsTransitions'
  | 'dynamodbWriteUnits'
  | 'dynamodbReadUnits'
  | 'dynamodbStorage'
  | 'sqsRequests'
  | 'eventBridgeCustomEvents'
  | 's3Puts'
  | 's3Gets'
  | 's3Storage'
  | 'kmsRequests'
  | 'kmsKeys'
  | 'cloudWatchMetrics'
  | 'cloudWatchLogsIngestion'
  | 'cloudWatchAlarms'
  | 'xRayTraces'
  | 'ec2ApiRequests';

/** `usd` per `per` units of `unit`: $0.20 per 1,000,000 requests. */
export interface Price {
  service: string;
  usd: number;
  per: number;
  unit: string;
  source: string;
}

export interface PriceTable {
  region: string;
  asOf: string;
  basis: string;
  items: Record<PriceKey, Price>;
}

/** Public list prices, us-east-1, on-demand, as of 2026-12, from each service's pricing page. */
export const PRICES: PriceTable = {
  region: 'us-east-1',
  asOf: '2026-12',
  basis: 'AWS public list prices, on-demand, no free tier applied (the free tiers are per account and usually spent by other workloads)',
  items: {
    lambdaRequests: { service: 'Lambda', usd: 0.2, per: 1_000_000, unit: 'requests', source: 'AWS Lambda pricing (aws.amazon.com/lambda/pricing)' },
    lambdaGbSecondsArm64: { service: 'Lambda', usd: 0.0000133334, per: 1, unit: 'GB-seconds', source: 'AWS Lambda pricing, Arm (Graviton2), first 7.5 billion GB-s; INIT is billed too (since 2025-08)' },
    stepFunctionsTransitions: { service: 'Step Functions', usd: 0.025, per: 1_000, unit: 'state transitions', source: 'AWS Step Functions pricing, Standard workflows (aws.amazon.com/step-functions/pricing)' },
    dynamodbWriteUnits: { service: 'DynamoDB', usd: 0.625, per: 1_000_000, unit: 'write request units', source: 'Amazon DynamoDB on-demand pricing, after the Nov 2024 price cut (aws.amazon.com/dynamodb/pricing/on-demand)' },
    dynamodbReadUnits: { service: 'DynamoDB', usd: 0.125, per: 1_000_000, unit: 'read request units', source: 'Amazon DynamoDB on-demand pricing, after the Nov 2024 price cut' },
    dynamodbStorage: { service: 'DynamoDB', usd: 0.25, per: 1, unit: 'GB-months', source: 'Amazon DynamoDB pricing, Standard table class storage' },
    sqsRequests: { service: 'SQS', usd: 0.4, per: 1_000_000, unit: 'requests', source: 'Amazon SQS pricing, standard queues (aws.amazon.com/sqs/pricing)' },
    eventBridgeCustomEvents: { service: 'EventBridge', usd: 1, per: 1_000_000, unit: 'events', source: 'Amazon EventBridge pricing, custom and cross-account events (aws.amazon.com/eventbridge/pricing)' },
    s3Puts: { service: 'S3', usd: 0.005, per: 1_000, unit: 'PUT requests', source: 'Amazon S3 pricing, S3 Standard requests (aws.amazon.com/s3/pricing)' },
    s3Gets: { service: 'S3', usd: 0.0004, per: 1_000, unit: 'GET requests', source: 'Amazon S3 pricing, S3 Standard requests' },
    s3Storage: { service: 'S3', usd: 0.023, per: 1, unit: 'GB-months', source: 'Amazon S3 pricing, S3 Standard first 50 TB' },
    kmsRequests: { service: 'KMS', usd: 0.03, per: 10_000, unit: 'requests', source: 'AWS KMS pricing (aws.amazon.com/kms/pricing)' },
    kmsKeys: { service: 'KMS', usd: 1, per: 1, unit: 'key-months', source: 'AWS KMS pricing, customer managed key (symmetric or asymmetric)' },
    cloudWatchMetrics: { service: 'CloudWatch Metrics', usd: 0.3, per: 1, unit: 'metric-months', source: 'Amazon CloudWatch pricing, custom metrics (EMF), first 10,000, prorated by the hour (aws.amazon.com/cloudwatch/pricing)' },
    cloudWatchLogsIngestion: { service: 'CloudWatch Logs', usd: 0.5, per: 1, unit: 'GB ingested', source: 'Amazon CloudWatch pricing, Logs standard ingestion (and vended Step Functions logs, first 10 TB)' },
    cloudWatchAlarms: { service: 'CloudWatch Alarms', usd: 0.1, per: 1, unit: 'alarm-months', source: 'Amazon CloudWatch pricing, standard resolution alarm (added: not in the product brief)' },
    xRayTraces: { service: 'X-Ray', usd: 5, per: 1_000_000, unit: 'traces recorded', source: 'AWS X-Ray pricing, traces recorded (aws.amazon.com/xray/pricing; added: every function and workflow is traced)' },
    ec2ApiRequests: { service: 'EC2 / Auto Scaling', usd: 0, per: 1, unit: 'API requests', source: 'EC2 and Auto Scaling API requests are not charged' },
  },
};

// ---------------------------------------------------------------------------------------------
// Assumptions.

/** Per-unit counts the bench does not measure yet: explicit estimates, labelled in the output. */
export interface Unmeasured {
  writeUnitsPerDuplicate: number;
  readUnitsPerReadCall: number;
  ledgerAppendReadUnits: number;
  ledgerEntryBytes: number;
  plainWriteUnits: number;
  swapStepMs: number;
  nodeSwapExtraLedgerAppends: number;
  batchStepMs: number;
  batchLedgerAppends: number;
  batchPutEvents: number;
  drainLedgerAppendsPerEvent: number;
  drainPutEventsPerEvent: number;
  kubernetesColdInitMs: number;
  quarantinesPerInterruption: number;
  digestBaseMs: number;
  archiveBatchMs: number;
  digestObjectBytes: number;
  cleanupMs: number;
  cleanupReadUnitsPerRun: number;
  driftMsPerRun: number;
  driftedInstancesPerMonth: number;
  enforcementBaseMs: number;
  describeInstancesPageMs: number;
  instancesPerDescribeInstancesPage: number;
  enforcementReadUnitsPerRun: number;
  enforcementLedgerAppendsPerRun: number;
  wasteScanMs: number;
  wasteWriteUnitsPerRun: number;
  wasteLedgerAppendsPerRun: number;
  logBytesPerLambdaInvocation: number;
  logBytesPerStateTransition: number;
  sqsIdlePollsPerMinutePerMapping: number;
  kmsDataKeyRequestsPerMonth: number;
  kmsKeys: number;
  alarms: number;
  sqsEventSourceMappings: number;
  metricSeries: {
    ingestPerInvocation: number;
    ingestPerEventKind: number;
    ingestPerInterruption: number;
    drainPerEvent: number;
    drainPerDrainedNode: number;
    swapPerSwap: number;
    swapPerRollback: number;
    swapPerNodeSwap: number;
    batchPerBatch: number;
    driftPerRun: number;
    digestPerRun: number;
    cleanupPerRun: number;
    enforcementPerRun: number;
    wastePerRun: number;
  };
}

/** An `unmeasured.*` field, as lines cite it (`metricSeries.driftPerRun` for the nested ones). */
export type UnmeasuredField = Exclude<keyof Unmeasured, 'metricSeries'> | `metricSeries.${keyof Unmeasured['metricSeries']}`;

type Workers = 'ingest' | 'drain' | 'swaps' | 'batches' | 'drift' | 'digest' | 'archive' | 'cleanup' | 'enforcement' | 'waste';

export interface Assumptions {
  instances: number;
  spotShare: number;
  interruptedSharePerDay: number;
  eventsPerInterruption: number;
  duplicateDeliveryRate: number;
  deliveriesPerIngestInvocation: number;
  crossAccountEventShare: number;
  kubernetesNodeShare: number;
  swapsPerWeek: number;
  swapRollbackShare: number;
  batchesPerWeek: number;
  accountRegions: number;
  enforcementSweepsPerDay: number;
  wasteScansPerDay: number;
  driftCycleMinutes: number;
  driftRunsPerCycle: number;
  digestsPerDay: number;
  cleanupRunsPerDay: number;
  hoursPerMonth: number;
  storageMonth: number;
  dataKeyRotationsSoFar: number;
  xRaySampledShare: number;
  memoryMb: Record<Workers, number>;
  coldStartShare: Record<Workers, number>;
  goalUsdPerThousandInstances: number;
  unmeasured: Unmeasured;
}

export const ASSUMPTIONS: Assumptions = {
  instances: 1_000,
  spotShare: 1,
  interruptedSharePerDay: 0.02,
  eventsPerInterruption: 3,
  duplicateDeliveryRate: 0.01,
  deliveriesPerIngestInvocation: 1,
  crossAccountEventShare: 1,
  kubernetesNodeShare: 0.5,
  swapsPerWeek: 50,
  swapRollbackShare: 0.05,
  batchesPerWeek: 10,
  accountRegions: 10,
  enforcementSweepsPerDay: 24,
  wasteScansPerDay: 1,
  driftCycleMinutes: 1,
  driftRunsPerCycle: 1,
  digestsPerDay: 24,
  cleanupRunsPerDay: 96,
  hoursPerMonth: 730,
  storageMonth: 12,
  dataKeyRotationsSoFar: 0,
  xRaySampledShare: 1,
  memoryMb: { ingest: 512, drain: 512, swaps: 512, batches: 512, drift: 256, digest: 512, archive: 1024, cleanup: 512, enforcement: 512, waste: 512 },
  coldStartShare: { ingest: 0.7, drain: 0.8, swaps: 0.25, batches: 0.25, drift: 0.01, digest: 1, archive: 0.5, cleanup: 1, enforcement: 1, waste: 1 },
  goalUsdPerThousandInstances: 10,
  unmeasured: {
    writeUnitsPerDuplicate: 1,
    readUnitsPerReadCall: 1,
    ledgerAppendReadUnits: 2,
    ledgerEntryBytes: 1_024,
    plainWriteUnits: 1,
    swapStepMs: 300,
    nodeSwapExtraLedgerAppends: 3,
    batchStepMs: 300,
    batchLedgerAppends: 3,
    batchPutEvents: 1,
    drainLedgerAppendsPerEvent: 2,
    drainPutEventsPerEvent: 3,
    kubernetesColdInitMs: 247,
    quarantinesPerInterruption: 0.25,
    digestBaseMs: 400,
    archiveBatchMs: 150,
    digestObjectBytes: 1_024,
    cleanupMs: 300,
    cleanupReadUnitsPerRun: 10,
    driftMsPerRun: 800,
    driftedInstancesPerMonth: 100,
    enforcementBaseMs: 600,
    describeInstancesPageMs: 300,
    instancesPerDescribeInstancesPage: 500,
    enforcementReadUnitsPerRun: 2,
    enforcementLedgerAppendsPerRun: 0.05,
    wasteScanMs: 3_000,
    wasteWriteUnitsPerRun: 2,
    wasteLedgerAppendsPerRun: 0.5,
    logBytesPerLambdaInvocation: 2_048,
    logBytesPerStateTransition: 4_096,
    sqsIdlePollsPerMinutePerMapping: 15,
    kmsDataKeyRequestsPerMonth: 10_000,
    kmsKeys: 2,
    alarms: 7,
    sqsEventSourceMappings: 2,
    metricSeries: {
      ingestPerInvocation: 2,
      ingestPerEventKind: 1,
      ingestPerInterruption: 1,
      drainPerEvent: 1,
      drainPerDrainedNode: 3,
      swapPerSwap: 4,
      swapPerRollback: 2,
      swapPerNodeSwap: 3,
      batchPerBatch: 4,
      driftPerRun: 2,
      digestPerRun: 1,
      cleanupPerRun: 2,
      enforcementPerRun: 2,
      wastePerRun: 18,
    },
  },
};

/** What each assumption means, printed beside the table. */
export const ASSUMPTION_NOTES: Record<Exclude<keyof Assumptions, 'unmeasured'>, string> = {
  instances: 'instances under Fleetwarden',
  spotShare: 'share of them on Spot',
  interruptedSharePerDay: 'Spot instances interrupted per day (2% of 1,000 = 20/day)',
  eventsPerInterruption: 'events per interruption: rebalance recommendation, interruption warning, state change',
  duplicateDeliveryRate: 'extra deliveries per event (at-least-once EventBridge and SQS)',
  deliveriesPerIngestInvocation: 'deliveries per ingest (and node drain) invocation (events arrive apart; the bench batched 10)',
  crossAccountEventShare: 'share of events sent from a member account to the central bus (billed as custom events)',
  kubernetesNodeShare: 'share of instances that are nodes of a configured cluster (drains, node swaps)',
  swapsPerWeek: 'NodeSwap executions a week, those the batches start included (a monthly AMI roll of every instance would be ~230)',
  swapRollbackShare: 'share of swaps that roll back',
  batchesPerWeek: 'SwapBatch executions a week (their own overhead; their swaps are in swapsPerWeek)',
  accountRegions: 'member account-regions swept and scanned',
  enforcementSweepsPerDay: 'enforcement sweeps a day, one Lambda run per account-region each',
  wasteScansPerDay: 'waste scans a day, one Lambda run per account-region each',
  driftCycleMinutes: 'policies.drift.cycleMinutes',
  driftRunsPerCycle: 'NodeDrift runs per cycle (one function covers every group: lib/constructs/drift.ts)',
  digestsPerDay: 'ledger digests a day (ledger.digestSchedule rate(1 hour))',
  cleanupRunsPerDay: 'QuarantineCleanup runs a day (every 15 minutes)',
  hoursPerMonth: 'hours in a month (AWS pricing convention)',
  storageMonth: 'storage lines show the bill of this month of operation (ledger and digests accumulate)',
  dataKeyRotationsSoFar: 'yearly rotations of the data key so far (each of the first two adds $1/month)',
  xRaySampledShare: 'share of invocations and executions X-Ray records (the default rule samples nearly all at these rates)',
  memoryMb: 'function memory (construct defaults: 512 MB, NodeDrift 256 MB)',
  coldStartShare: 'share of invocations that start cold (INIT is billed): rare events and hourly runs start cold, a minute cycle stays warm',
  goalUsdPerThousandInstances: 'the product goal',
};

/** Why each unmeasured estimate has the value it has, printed beside the table. */
export const UNMEASURED_NOTES: Record<UnmeasuredField, string> = {
  writeUnitsPerDuplicate: "a duplicate's failed conditional idempotency PutItem (billed; the bench's counter misses it: the call throws)",
  readUnitsPerReadCall: 'RRU per GetItem/Query/BatchGetItem call (strongly consistent, ≤ 4 KB)',
  ledgerAppendReadUnits: 'reads per ledger append not counted by the bench (dedupe marker + chain tip, as the swaps count them)',
  ledgerEntryBytes: 'bytes of a ledger entry (≤ 1 KB: a plain append costs 1 WRU, measured)',
  plainWriteUnits: 'WRU per PutItem/UpdateItem/DeleteItem of a swap (items ≤ 1 KB, as scripts/bench/swaps.ts counts them)',
  swapStepMs: 'billed ms per swap logic step (as scripts/bench/swaps.ts assumes)',
  nodeSwapExtraLedgerAppends: "ledger appends of a node swap's Kubernetes steps (the bench counts no calls for node swaps)",
  batchStepMs: 'billed ms per batch logic step',
  batchLedgerAppends: "a batch's own ledger appends (wave plans, outcome); the bench counts 30 calls beyond its swaps, not by operation",
  batchPutEvents: "a batch's own PutEvents (its outcome)",
  drainLedgerAppendsPerEvent: 'ledger appends per node-drain event (tainted, cordoned, drained; duplicates record nothing)',
  drainPutEventsPerEvent: 'PutEvents per node-drain event (NodeTainted, NodeCordoned, NodeDrained; republished at least once)',
  kubernetesColdInitMs: 'cold init of NodeDrain/SwapNodes (247 ms: layers/kubernetes-client/measurement.json, not in results.json)',
  quarantinesPerInterruption: 'interruptions that open a pool quarantine the cleanup later records as ended',
  digestBaseMs: 'billed ms of a digest run besides verifying its new entries (S3, Query, KMS Sign)',
  archiveBatchMs: 'billed ms of an archive run: read the position, claim, put one segment of a few entries, advance (the bench measures it only against moto)',
  digestObjectBytes: 'bytes of a digest object (and of each latest.json version kept under Object Lock)',
  cleanupMs: 'billed ms of a QuarantineCleanup run',
  cleanupReadUnitsPerRun: 'RRU of a cleanup run (reading the pool risk records)',
  driftMsPerRun: 'billed ms of a NodeDrift run (DescribeAutoScalingGroups, launch template versions, DescribeInstances)',
  driftedInstancesPerMonth: 'drifted instances recorded a month (node.drifted + NodeDrifted; their repairs are swaps)',
  enforcementBaseMs: 'billed ms of an enforcement sweep besides its DescribeInstances pages (built; not measured by the bench yet)',
  describeInstancesPageMs: 'ms per DescribeInstances page',
  instancesPerDescribeInstancesPage: 'instances per DescribeInstances page',
  enforcementReadUnitsPerRun: 'RRU of a sweep (authorizations of the account)',
  enforcementLedgerAppendsPerRun: 'ledger appends per sweep (only on a new finding or action)',
  wasteScanMs: 'billed ms of a waste scan (addresses, volumes, snapshots and the images, launch templates and launch configurations that refer to them; not measured by the bench yet)',
  wasteWriteUnitsPerRun: 'WRU per waste scan (findings)',
  wasteLedgerAppendsPerRun: 'ledger appends per waste scan',
  logBytesPerLambdaInvocation: 'log bytes per invocation: JSON platform start/report lines, the EMF blob, an INFO line',
  logBytesPerStateTransition: 'log bytes per state transition (Step Functions logging ALL with execution data)',
  sqsIdlePollsPerMinutePerMapping: 'ReceiveMessage calls of an idle SQS event source mapping (5 pollers × one 20 s long poll)',
  kmsDataKeyRequestsPerMonth: 'KMS requests of the services encrypting with the data key (SQS and DynamoDB key caches of 5 min, S3 bucket key)',
  kmsKeys: 'customer managed keys (AWS::KMS::Key in the synthesized template: data key, digest signing key)',
  alarms: 'alarms (6 in the default template + 1 for the node drain queue)',
  sqsEventSourceMappings: 'SQS event source mappings (interruption queue, node drain queue)',
  'metricSeries.ingestPerInvocation': 'ingest series per invocation: HandlerLatency, EventAgeAtIngest',
  'metricSeries.ingestPerEventKind': 'ingest series per event kind: InterruptionEvents by DetailType',
  'metricSeries.ingestPerInterruption': 'ingest series per interruption: PoolsQuarantined',
  'metricSeries.drainPerEvent': 'drain series per event: NodeInterruptions',
  'metricSeries.drainPerDrainedNode': 'drain series per drained node: NodesDrained, PodsEvicted, DrainDuration',
  'metricSeries.swapPerSwap': 'swap series: SwapsPlanned, SpotReplacementsLaunched, OldInstancesTerminated, SwapsSucceeded',
  'metricSeries.swapPerRollback': 'rollback series: SwapRollbacks, SwapsRolledBack',
  'metricSeries.swapPerNodeSwap': 'node swap series: SwapNodeDisruptionChecks, SwapReplacementNodeChecks, SwapNodeDrains',
  'metricSeries.batchPerBatch': 'batch series: BatchWavesPlanned, BatchSwapsStarted, BatchHealthGateFailures, BatchesCompleted',
  'metricSeries.driftPerRun': 'drift series: DriftedNodes, DriftBatchesStarted (emitted only by a cycle that found drift)',
  'metricSeries.digestPerRun': 'digest series: LedgerDigestsSigned (every run)',
  'metricSeries.cleanupPerRun': 'cleanup series: QuarantinesActive (every run), QuarantinesReleased (only by a run that released one)',
  'metricSeries.enforcementPerRun': 'enforcement series (built; not measured by the bench yet)',
  'metricSeries.wastePerRun': 'waste series per scan: WasteMonthlyUsd (total, 3 kinds), WasteFindings, WasteCleanupCircuitBreakerTripped, 2 of the scan step, WasteCleaned, plus WasteMonthlyUsd by Account (10 accounts assumed)',
};

// ---------------------------------------------------------------------------------------------
// The model's output.

export type Workload = 'interruptions' | 'swaps' | 'batches' | 'drift' | 'digest' | 'cleanup' | 'enforcement' | 'waste' | 'ledger' | 'fixed';

export interface CostLine {
  item: string;
  service: string;
  workload: Workload;
  quantityPerMonth: number;
  unit: string;
  usd: number;
  /** The results.json fields the quantity comes from. */
  measured: string[];
  /** The `unmeasured.*` estimates the quantity rests on (empty: measured counts and stated volumes only). */
  unmeasured: string[];
}

export interface CostModel {
  assumptions: Assumptions;
  prices: PriceTable;
  lines: CostLine[];
  totalUsd: number;
  perThousandInstancesUsd: number;
  topItems: (CostLine & { share: number })[];
  byWorkload: { workload: Workload; usd: number; share: number }[];
  byService: { service: string; usd: number; share: number }[];
  goal: { usdPerThousandInstances: number; met: boolean };
  unmeasured: { field: string; value: number; note: string }[];
}

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

// ---------------------------------------------------------------------------------------------

const op = (calls: CallCounts, name: string) => calls[name] ?? 0;
const GB = 1024 ** 3;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** `base` with `over` laid on it, field by field; a field `base` does not have is refused (a typo would be ignored). */
function merge<T>(base: T, over: DeepPartial<T> | undefined, path = ''): T {
  if (over === undefined) return base;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [key, value] of Object.entries(over as Record<string, unknown>)) {
    if (value === undefined) continue;
    const where = path ? `${path}.${key}` : key;
    if (!(key in out)) throw new TypeError(`unknown field ${where}`);
    const current = out[key];
    out[key] = isPlainObject(current) && isPlainObject(value) ? merge(current, value, where) : value;
  }
  return out as T;
}

function checkNumbers(value: unknown, path: string): void {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new RangeError(`${path} must be a finite number ≥ 0, not ${value}`);
  } else if (isPlainObject(value)) {
    for (const [key, v] of Object.entries(value)) checkNumbers(v, path ? `${path}.${key}` : key);
  } else {
    throw new TypeError(`${path} must be a number, not ${JSON.stringify(value)}`);
  }
}

function coldInitOf(measured: BenchResults, entry: string): number {
  const fn = measured.functions.find((f) => f.function === entry);
  if (!fn) throw new Error(`bench results have no cold init for ${entry}`);
  return fn.coldInitMs.median;
}

/** A metric series emitted at `perHour` is billed for the hours it is emitted in. */
function activeShare(perHour: number, kind: 'random' | 'scheduled'): number {
  // Random events (Poisson): an hour has one with probability 1 - e^-λ. A schedule firing at
  // least hourly is emitted every hour; a daily one in 1 hour of 24.
  return kind === 'random' ? 1 - Math.exp(-perHour) : Math.min(1, perHour);
}

const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits });

/**
 * The monthly cost of the workload in `assumptions` (defaults: ASSUMPTIONS, 1,000 instances) at
 * `prices` (defaults: PRICES), from the per-unit counts in `measured` (bench/results.json).
 */
export function costModel(measured: BenchResults, assumptions?: DeepPartial<Assumptions>, prices?: DeepPartial<PriceTable>): CostModel {
  const a = merge(ASSUMPTIONS, assumptions);
  const p = merge(PRICES, prices);
  checkNumbers(a, '');
  for (const [name, value] of Object.entries({ hoursPerMonth: a.hoursPerMonth, deliveriesPerIngestInvocation: a.deliveriesPerIngestInvocation, driftCycleMinutes: a.driftCycleMinutes })) {
    if (value <= 0) throw new RangeError(`${name} must be > 0, not ${value}`);
  }
  for (const [key, price] of Object.entries(p.items)) if (!(price.per > 0) || !(price.usd >= 0)) throw new RangeError(`price ${key} must have usd ≥ 0 and per > 0`);
  const u = a.unmeasured;
  const days = a.hoursPerMonth / 24;
  const weeks = days / 7;
  const lines: CostLine[] = [];

  const add = (workload: Workload, item: string, key: PriceKey, quantity: number, measuredFields: string[] = [], unmeasuredFields: UnmeasuredField[] = []) => {
    const price = p.items[key];
    lines.push({
      item,
      service: price.service,
      workload,
      quantityPerMonth: quantity,
      unit: price.unit,
      usd: (quantity * price.usd) / price.per,
      measured: measuredFields,
      unmeasured: unmeasuredFields.map((f) => `unmeasured.${f}`),
    });
  };

  /** Requests and compute (run + billed INIT) of a function. */
  const lambda = (workload: Workload, name: string, worker: Workers, invocations: number, ms: number, coldInitMs: number, m: { run: string[]; init: string[]; runUnmeasured?: UnmeasuredField[]; initUnmeasured?: UnmeasuredField[] }) => {
    const memoryGb = a.memoryMb[worker] / 1024;
    const cold = a.coldStartShare[worker];
    add(workload, `${name} invocations`, 'lambdaRequests', invocations, m.run, m.runUnmeasured);
    add(
      workload,
      `${name} compute (${a.memoryMb[worker]} MB × ${fmt(ms)} ms; ${fmt(cold * 100)}% cold × ${fmt(coldInitMs)} ms INIT)`,
      'lambdaGbSecondsArm64',
      invocations * memoryGb * ((ms + cold * coldInitMs) / 1000),
      [...m.run, ...m.init],
      [...(m.runUnmeasured ?? []), ...(m.initUnmeasured ?? [])],
    );
  };
  const logs = (workload: Workload, name: string, invocations: number, transitions: number, m: string[] = []) => {
    const fields: UnmeasuredField[] = [];
    if (invocations > 0) fields.push('logBytesPerLambdaInvocation');
    if (transitions > 0) fields.push('logBytesPerStateTransition');
    add(workload, `${name} logs ingested`, 'cloudWatchLogsIngestion', (invocations * u.logBytesPerLambdaInvocation + transitions * u.logBytesPerStateTransition) / GB, m, fields);
  };
  const traces = (workload: Workload, name: string, count: number, m: string[] = []) => add(workload, `${name} traces`, 'xRayTraces', count * a.xRaySampledShare, m);
  /** Metric series, each billed for the share of hours it is emitted in. */
  const series = (workload: Workload, name: string, count: number, perMonth: number, kind: 'random' | 'scheduled', fields: UnmeasuredField[], m: string[] = []) => {
    if (count > 0) add(workload, `${name} (${fmt(count, 2)} series × ${fmt(activeShare(perMonth / a.hoursPerMonth, kind) * 100)}% of hours)`, 'cloudWatchMetrics', count * activeShare(perMonth / a.hoursPerMonth, kind), m, fields);
  };
  /** Powertools' ColdStart series of a function: `runs` are its invocations, or its schedule's firings for a scheduled one. */
  const coldStartSeries = (workload: Workload, fn: string, worker: Workers, runs: number, kind: 'random' | 'scheduled' = 'random') =>
    series(workload, `${fn} ColdStart metric`, 1, runs * a.coldStartShare[worker], kind, []);

  /** Ledger appends made through DynamoLedger (dedupe transaction), for workloads the bench counts no calls of. */
  const ledgerWrites = (workload: Workload, name: string, appends: number, fields: UnmeasuredField[]) => {
    add(workload, `${name}: ledger appends (${fmt(measured.ledger.dedupedAppendWithDuplicates.writeUnitsPerAppend, 2)} WRU each)`, 'dynamodbWriteUnits', appends * measured.ledger.dedupedAppendWithDuplicates.writeUnitsPerAppend, ['ledger.dedupedAppendWithDuplicates.writeUnitsPerAppend'], fields);
    add(workload, `${name}: ledger append reads`, 'dynamodbReadUnits', appends * u.ledgerAppendReadUnits, [], [...fields, 'ledgerAppendReadUnits']);
  };
  const ledgerAppends: { workload: Workload; appends: number }[] = [];

  // --- Interruption events (and the node drains and quarantine ends they cause) --------------
  {
    const m = measured.interruptions;
    const calls = m.awsApiCallsByOperation;
    const interruptions = a.instances * a.spotShare * a.interruptedSharePerDay * days;
    const events = interruptions * a.eventsPerInterruption;
    const duplicates = events * a.duplicateDeliveryRate;
    const deliveries = events + duplicates;
    const invocations = deliveries / a.deliveriesPerIngestInvocation;
    const deletesPerDelivery = (op(calls, 'DeleteMessage') + op(calls, 'DeleteMessageBatch')) / m.deliveries;
    const readsPerDelivery = (op(calls, 'GetItem') + op(calls, 'Query') + op(calls, 'BatchGetItem') + op(calls, 'Scan')) / m.deliveries;
    // Each distinct event is two single-item puts (the pool record or dedupe marker carrying the entry, then the entry): one append.
    const appendsPerEvent = op(calls, 'PutItem') / 2 / m.distinctEvents;
    const putEventsPerEvent = op(calls, 'PutEvents') / m.distinctEvents;
    const w: Workload = 'interruptions';

    add(w, 'Interruption events sent from member accounts to the central bus', 'eventBridgeCustomEvents', events * a.crossAccountEventShare);
    add(w, 'Interruption queue: SendMessage (EventBridge), ReceiveMessage, DeleteMessage', 'sqsRequests', deliveries * (1 + 1 / a.deliveriesPerIngestInvocation + deletesPerDelivery), ['interruptions.awsApiCallsByOperation.DeleteMessage', 'interruptions.deliveries']);
    lambda(w, 'InterruptionIngest', 'ingest', invocations, measured.kubernetes.ingestFunctionMs.median, coldInitOf(measured, 'functions/interruption/ingest/handler.ts'), {
      run: ['kubernetes.ingestFunctionMs.median'],
      init: ['functions[interruption/ingest].coldInitMs.median'],
    });
    add(w, `DynamoDB writes of distinct events (${fmt(m.writeUnitsPerDistinctEvent, 2)} WRU: pool record or dedupe marker carrying the entry, then the entry)`, 'dynamodbWriteUnits', events * m.writeUnitsPerDistinctEvent, ['interruptions.writeUnitsPerDistinctEvent']);
    add(w, 'DynamoDB writes of duplicate deliveries (answered from the pool history, the ledger or the container)', 'dynamodbWriteUnits', duplicates * (m.writeUnitsPerDuplicate ?? u.writeUnitsPerDuplicate), m.writeUnitsPerDuplicate === undefined ? [] : ['interruptions.writeUnitsPerDuplicate'], m.writeUnitsPerDuplicate === undefined ? ['writeUnitsPerDuplicate'] : []);
    add(w, `DynamoDB reads (${fmt(readsPerDelivery, 2)} read calls per delivery)`, 'dynamodbReadUnits', deliveries * readsPerDelivery * u.readUnitsPerReadCall, ['interruptions.awsApiCallsByOperation.{GetItem,Query}', 'interruptions.deliveries'], ['readUnitsPerReadCall']);
    add(w, 'InstanceInterrupted events on the Fleetwarden bus', 'eventBridgeCustomEvents', events * putEventsPerEvent, ['interruptions.awsApiCallsByOperation.PutEvents', 'interruptions.distinctEvents']);
    ledgerAppends.push({ workload: w, appends: events * appendsPerEvent });

    const quarantines = interruptions * u.quarantinesPerInterruption;
    add(w, 'Quarantine ends recorded by the cleanup: pool record updates', 'dynamodbWriteUnits', quarantines * u.plainWriteUnits, [], ['quarantinesPerInterruption', 'plainWriteUnits']);
    ledgerWrites(w, 'Quarantine ends', quarantines, ['quarantinesPerInterruption']);
    series(w, 'QuarantinesReleased metric', u.metricSeries.cleanupPerRun - 1, quarantines, 'random', ['metricSeries.cleanupPerRun', 'quarantinesPerInterruption']);
    ledgerAppends.push({ workload: w, appends: quarantines });

    const nodeEvents = events * a.kubernetesNodeShare;
    const drainInvocations = nodeEvents / a.deliveriesPerIngestInvocation;
    add(w, 'Node drain queue: SendMessage (EventBridge), ReceiveMessage, DeleteMessage', 'sqsRequests', nodeEvents * (1 + 1 / a.deliveriesPerIngestInvocation + deletesPerDelivery), ['interruptions.awsApiCallsByOperation.DeleteMessage', 'interruptions.deliveries']);
    lambda(w, 'NodeDrain', 'drain', drainInvocations, measured.kubernetes.drainFunctionReportedDrainMs.median, u.kubernetesColdInitMs, {
      run: ['kubernetes.drainFunctionReportedDrainMs.median'],
      init: [],
      initUnmeasured: ['kubernetesColdInitMs'],
    });
    ledgerWrites(w, 'Node drains', nodeEvents * u.drainLedgerAppendsPerEvent, ['drainLedgerAppendsPerEvent']);
    ledgerAppends.push({ workload: w, appends: nodeEvents * u.drainLedgerAppendsPerEvent });
    add(w, 'NodeTainted / NodeCordoned / NodeDrained events', 'eventBridgeCustomEvents', nodeEvents * u.drainPutEventsPerEvent, [], ['drainPutEventsPerEvent']);
    logs(w, 'InterruptionIngest and NodeDrain', invocations + drainInvocations, 0);
    traces(w, 'InterruptionIngest and NodeDrain', invocations + drainInvocations);
    const s = u.metricSeries;
    series(w, 'InterruptionIngest metrics per invocation', s.ingestPerInvocation, invocations, 'random', ['metricSeries.ingestPerInvocation']);
    series(w, 'InterruptionEvents by DetailType', s.ingestPerEventKind * a.eventsPerInterruption, interruptions, 'random', ['metricSeries.ingestPerEventKind']);
    series(w, 'PoolsQuarantined metric', s.ingestPerInterruption, interruptions, 'random', ['metricSeries.ingestPerInterruption']);
    coldStartSeries(w, 'InterruptionIngest', 'ingest', invocations);
    if (a.kubernetesNodeShare > 0) {
      series(w, 'NodeDrain metrics per event', s.drainPerEvent, drainInvocations, 'random', ['metricSeries.drainPerEvent']);
      series(w, 'NodeDrain metrics per drained node', s.drainPerDrainedNode, interruptions * a.kubernetesNodeShare, 'random', ['metricSeries.drainPerDrainedNode']);
      coldStartSeries(w, 'NodeDrain', 'drain', drainInvocations);
    }
  }

  // --- Swaps (NodeSwap executions, plain and Kubernetes node, successful and rolled back) ----
  {
    const { successfulSwap: ok, rollbackAfterAttach: rb } = measured.swaps;
    const { successfulNodeSwap: nodeOk, nodeSwapRolledBackAfterAttach: nodeRb } = measured.kubernetes.nodeSwaps;
    const k = a.kubernetesNodeShare;
    const r = a.swapRollbackShare;
    // The bench counts no calls for node swaps: they are taken as the plain swap's, plus the node steps' ledger appends.
    const kinds = [
      { share: (1 - k) * (1 - r), run: ok, calls: ok.awsApiCallsByOperation, extraAppends: 0 },
      { share: (1 - k) * r, run: rb, calls: rb.awsApiCallsByOperation, extraAppends: 0 },
      { share: k * (1 - r), run: nodeOk, calls: ok.awsApiCallsByOperation, extraAppends: u.nodeSwapExtraLedgerAppends },
      { share: k * r, run: nodeRb, calls: rb.awsApiCallsByOperation, extraAppends: u.nodeSwapExtraLedgerAppends },
    ];
    const avg = (f: (x: (typeof kinds)[number]) => number) => kinds.reduce((sum, x) => sum + x.share * f(x), 0);
    const transactionWru = measured.ledger.dedupedAppendWithDuplicates.writeUnitsPerAppend;
    const perSwap = {
      transitions: avg((x) => x.run.stateTransitions),
      invocations: avg((x) => x.run.lambdaInvocations),
      wru: avg((x) => (op(x.calls, 'PutItem') + op(x.calls, 'UpdateItem') + op(x.calls, 'DeleteItem')) * u.plainWriteUnits + (op(x.calls, 'TransactWriteItems') + x.extraAppends) * transactionWru),
      rru: avg((x) => (op(x.calls, 'GetItem') + op(x.calls, 'Query') + op(x.calls, 'BatchGetItem')) * u.readUnitsPerReadCall + x.extraAppends * u.ledgerAppendReadUnits),
      putEvents: avg((x) => op(x.calls, 'PutEvents')),
      appends: avg((x) => op(x.calls, 'TransactWriteItems') + x.extraAppends),
    };
    const swaps = a.swapsPerWeek * weeks;
    const w: Workload = 'swaps';
    const runFields = ['swaps.{successfulSwap,rollbackAfterAttach}', 'kubernetes.nodeSwaps.{successfulNodeSwap,nodeSwapRolledBackAfterAttach}'];
    const callFields = ['swaps.{successfulSwap,rollbackAfterAttach}.awsApiCallsByOperation'];
    const nodeFields: UnmeasuredField[] = k > 0 ? ['nodeSwapExtraLedgerAppends'] : [];
    add(w, `NodeSwap state transitions (${fmt(perSwap.transitions, 1)} per swap)`, 'stepFunctionsTransitions', swaps * perSwap.transitions, runFields.map((f) => `${f}.stateTransitions`));
    lambda(w, `SwapSteps/SwapNodes (${fmt(perSwap.invocations, 1)} per swap)`, 'swaps', swaps * perSwap.invocations, u.swapStepMs, coldInitOf(measured, 'functions/swap/handler/handler.ts'), {
      run: runFields.map((f) => `${f}.lambdaInvocations`),
      init: ['functions[swap/handler].coldInitMs.median'],
      runUnmeasured: ['swapStepMs'],
    });
    add(w, `DynamoDB writes (${fmt(perSwap.wru, 1)} WRU per swap: lock, ledger transactions)`, 'dynamodbWriteUnits', swaps * perSwap.wru, [...callFields, 'ledger.dedupedAppendWithDuplicates.writeUnitsPerAppend'], ['plainWriteUnits', ...nodeFields]);
    add(w, `DynamoDB reads (${fmt(perSwap.rru, 1)} RRU per swap)`, 'dynamodbReadUnits', swaps * perSwap.rru, callFields, ['readUnitsPerReadCall', ...(k > 0 ? (['ledgerAppendReadUnits', 'nodeSwapExtraLedgerAppends'] as const) : [])]);
    add(w, 'SwapStarted / SwapSucceeded / SwapRolledBack events', 'eventBridgeCustomEvents', swaps * perSwap.putEvents, callFields);
    ledgerAppends.push({ workload: w, appends: swaps * perSwap.appends });
    logs(w, 'NodeSwap', swaps * perSwap.invocations, swaps * perSwap.transitions, runFields);
    traces(w, 'NodeSwap executions', swaps);
    const s = u.metricSeries;
    series(w, 'Swap metrics', s.swapPerSwap, swaps, 'random', ['metricSeries.swapPerSwap']);
    series(w, 'Rollback metrics', s.swapPerRollback, swaps * r, 'random', ['metricSeries.swapPerRollback']);
    series(w, 'Node swap metrics', s.swapPerNodeSwap, swaps * k, 'random', ['metricSeries.swapPerNodeSwap']);
    // SwapNodes runs the node steps: what a node swap invokes beyond a plain one.
    const swapNodesInvocations = swaps * k * ((1 - r) * (nodeOk.lambdaInvocations - ok.lambdaInvocations) + r * (nodeRb.lambdaInvocations - rb.lambdaInvocations));
    coldStartSeries(w, 'SwapSteps', 'swaps', swaps * perSwap.invocations - swapNodesInvocations);
    if (k > 0) coldStartSeries(w, 'SwapNodes', 'swaps', swapNodesInvocations);
  }

  // --- Batches (their own overhead; the swaps they start are counted as swaps) --------------
  {
    const b = measured.swaps.batchOfThree;
    const batches = a.batchesPerWeek * weeks;
    const w: Workload = 'batches';
    add(w, `SwapBatch state transitions (${b.batchStateTransitions} per batch, its swaps apart)`, 'stepFunctionsTransitions', batches * b.batchStateTransitions, ['swaps.batchOfThree.batchStateTransitions']);
    lambda(w, `BatchSteps (${b.batchLambdaInvocations} per batch)`, 'batches', batches * b.batchLambdaInvocations, u.batchStepMs, coldInitOf(measured, 'functions/batch/handler/handler.ts'), {
      run: ['swaps.batchOfThree.batchLambdaInvocations'],
      init: ['functions[batch/handler].coldInitMs.median'],
      runUnmeasured: ['batchStepMs'],
    });
    ledgerWrites(w, 'Batches', batches * u.batchLedgerAppends, ['batchLedgerAppends']);
    ledgerAppends.push({ workload: w, appends: batches * u.batchLedgerAppends });
    add(w, 'Batch outcome events', 'eventBridgeCustomEvents', batches * u.batchPutEvents, [], ['batchPutEvents']);
    logs(w, 'SwapBatch', batches * b.batchLambdaInvocations, batches * b.batchStateTransitions, ['swaps.batchOfThree']);
    traces(w, 'SwapBatch executions', batches);
    series(w, 'Batch metrics', u.metricSeries.batchPerBatch, batches, 'random', ['metricSeries.batchPerBatch']);
    coldStartSeries(w, 'BatchSteps', 'batches', batches * b.batchLambdaInvocations);
  }

  // --- Node drift cycle ----------------------------------------------------------------------
  {
    const runs = (1440 / a.driftCycleMinutes) * a.driftRunsPerCycle * days;
    const w: Workload = 'drift';
    lambda(w, 'NodeDrift', 'drift', runs, u.driftMsPerRun, coldInitOf(measured, 'functions/drift/handler/handler.ts'), {
      run: [],
      init: ['functions[drift/handler].coldInitMs.median'],
      runUnmeasured: ['driftMsPerRun'],
    });
    ledgerWrites(w, 'Drifted instances', u.driftedInstancesPerMonth, ['driftedInstancesPerMonth']);
    ledgerAppends.push({ workload: w, appends: u.driftedInstancesPerMonth });
    add(w, 'NodeDrifted events', 'eventBridgeCustomEvents', u.driftedInstancesPerMonth, [], ['driftedInstancesPerMonth']);
    logs(w, 'NodeDrift', runs, 0);
    traces(w, 'NodeDrift', runs);
    // Emitted only by a cycle that found drift: in at most as many hours as drifted instances a month.
    series(w, 'Drift metrics', u.metricSeries.driftPerRun, u.driftedInstancesPerMonth, 'random', ['metricSeries.driftPerRun', 'driftedInstancesPerMonth']);
    coldStartSeries(w, 'NodeDrift', 'drift', runs); // a warm minute cycle: cold only when Lambda recycles the environment
  }

  // --- Ledger digests ------------------------------------------------------------------------
  {
    const d = measured.workflows.ledgerDigest;
    const runs = a.digestsPerDay * days;
    const w: Workload = 'digest';
    const f = (name: string) => `workflows.ledgerDigest.${name}`;
    add(w, `LedgerDigest state transitions (${d.stateTransitions} per run)`, 'stepFunctionsTransitions', runs * d.stateTransitions, [f('stateTransitions')]);
    lambda(w, 'LedgerDigest (its new entries apart: see ledger)', 'digest', runs * d.lambdaInvocations, u.digestBaseMs, coldInitOf(measured, 'functions/ledger/digest/handler.ts'), {
      run: [f('lambdaInvocations')],
      init: ['functions[ledger/digest].coldInitMs.median'],
      runUnmeasured: ['digestBaseMs'],
    });
    add(w, 'Digest and latest.json PUTs', 's3Puts', runs * op(d.awsApiCalls, 'S3:PUT'), [f('awsApiCalls.S3:PUT')]);
    add(w, 'latest.json and previous digest GETs', 's3Gets', runs * op(d.awsApiCalls, 'S3:GET'), [f('awsApiCalls.S3:GET')]);
    add(w, 'Listing of the newest digests (a LIST, billed at the PUT rate)', 's3Puts', runs * op(d.awsApiCalls, 'S3:LIST'), [f('awsApiCalls.S3:LIST')]);
    add(w, 'KMS Sign of the digest', 'kmsRequests', runs * op(d.awsApiCalls, 'Sign'), [f('awsApiCalls.Sign')]);
    add(w, "KMS Verify of the previous digest's signature", 'kmsRequests', runs * op(d.awsApiCalls, 'Verify'), [f('awsApiCalls.Verify')]);
    add(w, 'Ledger Query of the new entries (a page at least)', 'dynamodbReadUnits', runs * op(d.awsApiCalls, 'Query') * u.readUnitsPerReadCall, [f('awsApiCalls.Query')], ['readUnitsPerReadCall']);
    add(w, 'LedgerDigestSigned events', 'eventBridgeCustomEvents', runs * op(d.awsApiCalls, 'PutEvents'), [f('awsApiCalls.PutEvents')]);
    add(w, `Digests stored under Object Lock (month ${a.storageMonth})`, 's3Storage', (runs * op(d.awsApiCalls, 'S3:PUT') * a.storageMonth * u.digestObjectBytes) / GB, [f('awsApiCalls.S3:PUT')], ['digestObjectBytes']);
    logs(w, 'LedgerDigest', runs * d.lambdaInvocations, runs * d.stateTransitions, [f('stateTransitions')]);
    traces(w, 'LedgerDigest executions', runs);
    series(w, 'Digest metrics', u.metricSeries.digestPerRun, runs, 'scheduled', ['metricSeries.digestPerRun']);
    coldStartSeries(w, 'LedgerDigest', 'digest', runs, 'scheduled');
  }

  // --- Quarantine cleanup ---------------------------------------------------------------------
  {
    const runs = a.cleanupRunsPerDay * days;
    const w: Workload = 'cleanup';
    lambda(w, 'QuarantineCleanup', 'cleanup', runs, u.cleanupMs, coldInitOf(measured, 'functions/interruption/cleanup/handler.ts'), {
      run: [],
      init: ['functions[interruption/cleanup].coldInitMs.median'],
      runUnmeasured: ['cleanupMs'],
    });
    add(w, 'Pool risk reads', 'dynamodbReadUnits', runs * u.cleanupReadUnitsPerRun, [], ['cleanupReadUnitsPerRun']);
    logs(w, 'QuarantineCleanup', runs, 0);
    traces(w, 'QuarantineCleanup', runs);
    // QuarantinesActive every run; QuarantinesReleased only by a run that released a quarantine
    // (with the quarantine ends, under interruptions).
    series(w, 'QuarantinesActive metric', 1, runs, 'scheduled', ['metricSeries.cleanupPerRun']);
    coldStartSeries(w, 'QuarantineCleanup', 'cleanup', runs, 'scheduled');
  }

  // --- Enforcement sweeps and waste scans (not measured by the bench yet: every per-run count is an estimate) ---
  {
    const perAccountRegion = a.instances / Math.max(1, a.accountRegions);
    const pages = Math.max(1, Math.ceil(perAccountRegion / Math.max(1, u.instancesPerDescribeInstancesPage)));
    const runs = a.enforcementSweepsPerDay * a.accountRegions * days;
    const w: Workload = 'enforcement';
    lambda(w, 'Enforcement sweep', 'enforcement', runs, u.enforcementBaseMs + pages * u.describeInstancesPageMs, coldInitOf(measured, 'functions/enforcement/steps/handler.ts'), {
      run: [],
      init: ['functions[enforcement/steps].coldInitMs.median'],
      runUnmeasured: ['enforcementBaseMs', 'describeInstancesPageMs', 'instancesPerDescribeInstancesPage'],
    });
    add(w, `DescribeInstances pages (${pages} per account-region and sweep; not charged)`, 'ec2ApiRequests', runs * pages, [], ['instancesPerDescribeInstancesPage']);
    add(w, 'Authorization reads', 'dynamodbReadUnits', runs * u.enforcementReadUnitsPerRun, [], ['enforcementReadUnitsPerRun']);
    ledgerWrites(w, 'Sweep findings', runs * u.enforcementLedgerAppendsPerRun, ['enforcementLedgerAppendsPerRun']);
    ledgerAppends.push({ workload: w, appends: runs * u.enforcementLedgerAppendsPerRun });
    logs(w, 'Enforcement sweep', runs, 0);
    traces(w, 'Enforcement sweep', runs);
    series(w, 'Enforcement metrics', u.metricSeries.enforcementPerRun, a.enforcementSweepsPerDay * days, 'scheduled', ['metricSeries.enforcementPerRun']);
    coldStartSeries(w, 'Enforcement', 'enforcement', a.enforcementSweepsPerDay * days, 'scheduled');
  }
  {
    const runs = a.wasteScansPerDay * a.accountRegions * days;
    const w: Workload = 'waste';
    lambda(w, 'Waste scan', 'waste', runs, u.wasteScanMs, coldInitOf(measured, 'functions/waste/steps/handler.ts'), { run: [], init: ['functions[waste/steps].coldInitMs.median'], runUnmeasured: ['wasteScanMs'] });
    add(w, 'Finding writes', 'dynamodbWriteUnits', runs * u.wasteWriteUnitsPerRun, [], ['wasteWriteUnitsPerRun']);
    ledgerWrites(w, 'Waste findings', runs * u.wasteLedgerAppendsPerRun, ['wasteLedgerAppendsPerRun']);
    ledgerAppends.push({ workload: w, appends: runs * u.wasteLedgerAppendsPerRun });
    logs(w, 'Waste scan', runs, 0);
    traces(w, 'Waste scan', runs);
    series(w, 'Waste metrics', u.metricSeries.wastePerRun, a.wasteScansPerDay * days, 'scheduled', ['metricSeries.wastePerRun']);
    coldStartSeries(w, 'Waste scan', 'waste', a.wasteScansPerDay * days, 'scheduled');
  }

  // --- The ledger: what every appended entry costs afterwards (digest verification, reads, storage)
  {
    const appends = ledgerAppends.reduce((sum, x) => sum + x.appends, 0);
    const w: Workload = 'ledger';
    const verifyRate = measured.ledger.verify.endToEndFromMoto.entriesPerSecond;
    add(w, `Digest verifying the new entries (${fmt(appends)} a month at ${fmt(verifyRate)} entries/s end to end)`, 'lambdaGbSecondsArm64', (appends / verifyRate) * (a.memoryMb.digest / 1024), ['ledger.verify.endToEndFromMoto.entriesPerSecond']);
    add(w, 'Digest reading the new entries', 'dynamodbReadUnits', ((appends * u.ledgerEntryBytes) / 4096) * u.readUnitsPerReadCall, [], ['ledgerEntryBytes', 'readUnitsPerReadCall']);
    add(w, `Ledger entries stored (month ${a.storageMonth}, ${fmt(appends)} a month)`, 'dynamodbStorage', (appends * a.storageMonth * u.ledgerEntryBytes) / GB, [], ['ledgerEntryBytes']);
    const archive = measured.archive?.archiver;
    if (archive) {
      // The archive: per segment one PutObject and two conditional writes of its position; one
      // invocation per stream batch. At this fleet's append rate a five-minute window holds a few
      // entries, so segments are small: the per-entry figures measured at 100,000 a day are a floor.
      const segments = Math.min(appends, (30 * 24 * 60) / 5);
      const f = (name: string) => `archive.archiver.${name}`;
      add(w, `Archive segment PUTs (${fmt(segments)} a month: one per five-minute window with entries)`, 's3Puts', segments * (archive.perThousandEntries.s3Requests / 1000) * (archive.entries / archive.batches), [f('perThousandEntries.s3Requests')]);
      add(w, 'Archive position writes (claim and advance per segment)', 'dynamodbWriteUnits', segments * (archive.perThousandEntries.dynamodbWriteUnits / 1000) * (archive.entries / archive.batches), [f('perThousandEntries.dynamodbWriteUnits')]);
      lambda(w, 'LedgerArchive (one run per segment, plus the hourly catch-up)', 'archive', segments + 30 * 24, u.archiveBatchMs, coldInitOf(measured, 'functions/ledger/archive/handler.ts'), { run: [f('batches')], init: ['functions[ledger/archive].coldInitMs.median'], runUnmeasured: ['archiveBatchMs'] });
      add(w, `Archive stored under Object Lock (month ${a.storageMonth})`, 's3Storage', (appends * a.storageMonth * archive.bytesPerEntry) / GB, [f('bytesPerEntry')]);
    }
  }

  // --- Fixed: keys, alarms, idle pollers, data-key requests ----------------------------------
  {
    const w: Workload = 'fixed';
    add(w, `Customer managed keys (${fmt(u.kmsKeys)}; ${fmt(a.dataKeyRotationsSoFar)} data key rotations so far)`, 'kmsKeys', u.kmsKeys + Math.min(2, a.dataKeyRotationsSoFar), [], ['kmsKeys']);
    add(w, 'KMS requests for the data key (SQS, DynamoDB, S3 bucket key)', 'kmsRequests', u.kmsDataKeyRequestsPerMonth, [], ['kmsDataKeyRequestsPerMonth']);
    add(w, `Idle long polls of ${fmt(u.sqsEventSourceMappings)} SQS event source mappings`, 'sqsRequests', u.sqsEventSourceMappings * u.sqsIdlePollsPerMinutePerMapping * 60 * a.hoursPerMonth, [], ['sqsEventSourceMappings', 'sqsIdlePollsPerMinutePerMapping']);
    add(w, 'Alarms (DLQs, failed executions)', 'cloudWatchAlarms', u.alarms, [], ['alarms']);
  }

  const totalUsd = lines.reduce((sum, l) => sum + l.usd, 0);
  const share = (usd: number) => (totalUsd > 0 ? usd / totalUsd : 0);
  const groupBy = <K extends string>(key: (l: CostLine) => K) => {
    const sums = new Map<K, number>();
    for (const l of lines) sums.set(key(l), (sums.get(key(l)) ?? 0) + l.usd);
    return [...sums].map(([k, usd]) => ({ k, usd, share: share(usd) })).sort((x, y) => y.usd - x.usd);
  };
  const unmeasuredList = Object.entries(u).flatMap(([field, value]) =>
    isPlainObject(value)
      ? Object.entries(value).map(([sub, v]) => ({ field: `unmeasured.${field}.${sub}`, value: v as number, note: UNMEASURED_NOTES[`${field}.${sub}` as keyof typeof UNMEASURED_NOTES] ?? '' }))
      : [{ field: `unmeasured.${field}`, value: value as number, note: UNMEASURED_NOTES[field as keyof typeof UNMEASURED_NOTES] ?? '' }],
  );
  const perThousandInstancesUsd = a.instances > 0 ? (totalUsd * 1000) / a.instances : 0;
  return {
    assumptions: a,
    prices: p,
    lines,
    totalUsd,
    perThousandInstancesUsd,
    topItems: [...lines]
      .sort((x, y) => y.usd - x.usd)
      .slice(0, 5)
      .map((l) => ({ ...l, share: share(l.usd) })),
    byWorkload: groupBy((l) => l.workload).map(({ k, usd, share }) => ({ workload: k, usd, share })),
    byService: groupBy((l) => l.service).map(({ k, usd, share }) => ({ service: k, usd, share })),
    goal: { usdPerThousandInstances: a.goalUsdPerThousandInstances, met: perThousandInstancesUsd <= a.goalUsdPerThousandInstances },
    unmeasured: unmeasuredList,
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering.

const usd = (n: number) => (n === 0 ? '$0' : n < 0.0001 ? `$${n.toPrecision(2)}` : n < 0.01 ? `$${n.toFixed(4)}` : `$${n.toFixed(2)}`);
const pct = (n: number) => `${(n * 100).toFixed(1)}%`;
function quantity(n: number): string {
  if (n === 0) return '0';
  if (n >= 100) return fmt(n);
  if (n >= 1) return fmt(n, 2);
  return n.toPrecision(3);
}
const pad = (s: string, n: number) => (s.length >= n ? s : s + ' '.repeat(n - s.length));
const padStart = (s: string, n: number) => (s.length >= n ? s : ' '.repeat(n - s.length) + s);
function cut(s: string, n: number) {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}
function wrap(text: string, width: number, indent: string): string[] {
  const lead = /^ */.exec(text)![0];
  const out: string[] = [];
  let current = lead;
  for (const word of text.slice(lead.length).split(' ')) {
    if (current.trim() && current.length + 1 + word.length > width) {
      out.push(current);
      current = indent + word;
    } else current = current.trim() ? `${current} ${word}` : current + word;
  }
  if (current.trim()) out.push(current);
  return out;
}

/**
 * A readable table of the model: total against the goal, where the money goes, every line by
 * workload (`*`: rests on an unmeasured estimate), with the assumptions, the unmeasured estimates
 * and the price table printed beside it (`layout: 'below'` for a narrow terminal).
 */
export function formatCostModel(model: CostModel, options: { layout?: 'beside' | 'below' } = {}): string {
  const a = model.assumptions;
  const left: string[] = [];
  left.push(`Fleetwarden monthly cost: ${fmt(a.instances)} instances, ${model.prices.region}, ${fmt(a.hoursPerMonth)} h/month, prices as of ${model.prices.asOf}`);
  left.push(
    `Total ${usd(model.totalUsd)}/month = ${usd(model.perThousandInstancesUsd)} per 1,000 instances; goal ≤ ${usd(model.goal.usdPerThousandInstances)}: ${model.goal.met ? 'met' : 'NOT met'}`,
  );
  left.push('');
  left.push('Where the money goes');
  const services = model.byService.filter((x) => x.usd > 0);
  left.push(`  ${pad('by service', 38)} by workload`);
  for (let i = 0; i < Math.max(services.length, model.byWorkload.length); i++) {
    const s = services[i];
    const w = model.byWorkload[i];
    left.push(`  ${pad(s ? `${pad(s.service, 20)} ${padStart(usd(s.usd), 8)} ${padStart(pct(s.share), 6)}` : '', 38)} ${w ? `${pad(w.workload, 14)} ${padStart(usd(w.usd), 8)} ${padStart(pct(w.share), 6)}` : ''}`.trimEnd());
  }
  left.push('  top lines');
  model.topItems.forEach((l, i) => left.push(`  ${i + 1}. ${pad(cut(`${l.service}: ${l.item} (${l.workload})`, 90), 90)} ${padStart(usd(l.usd), 8)} ${padStart(pct(l.share), 6)}`));
  left.push('');
  const header = `${pad('  item', 68)} ${pad('service', 18)} ${padStart('quantity/month', 14)} ${pad('unit', 19)} ${padStart('USD', 9)}`;
  left.push(header);
  left.push('-'.repeat(header.length));
  for (const w of model.byWorkload.map((x) => x.workload)) {
    const rows = model.lines.filter((l) => l.workload === w);
    left.push(`${pad(w, header.length - 9)}${padStart(usd(rows.reduce((s, l) => s + l.usd, 0)), 9)}`);
    for (const l of rows) {
      left.push(`${l.unmeasured.length ? ' *' : '  '} ${pad(cut(l.item, 65), 65)} ${pad(cut(l.service, 18), 18)} ${padStart(quantity(l.quantityPerMonth), 14)} ${pad(cut(l.unit, 19), 19)} ${padStart(usd(l.usd), 9)}`);
    }
  }
  left.push('-'.repeat(header.length));
  left.push(`${pad('total', header.length - 9)}${padStart(usd(model.totalUsd), 9)}`);
  left.push('* rests on at least one unmeasured.* estimate (listed with the assumptions)');

  const right: string[] = [];
  const width = 84;
  right.push('Assumptions');
  for (const [key, note] of Object.entries(ASSUMPTION_NOTES)) {
    const value = a[key as keyof typeof ASSUMPTION_NOTES];
    const shown = isPlainObject(value) ? Object.entries(value).map(([k, v]) => `${k} ${v}`).join(', ') : String(value);
    right.push(...wrap(`  ${key} = ${shown}: ${note}`, width, '      '));
  }
  right.push('');
  right.push('Unmeasured (estimates; the bench does not count these yet)');
  for (const x of model.unmeasured) right.push(...wrap(`  ${x.field.replace(/^unmeasured\./, '')} = ${x.value}: ${x.note}`, width, '      '));
  right.push('');
  right.push(`Prices (${model.prices.region}, ${model.prices.asOf}; ${model.prices.basis})`);
  for (const price of Object.values(model.prices.items)) {
    right.push(...wrap(`  ${price.service}: $${price.usd} per ${price.per === 1 ? '' : `${fmt(price.per)} `}${price.unit} — ${price.source}`, width, '      '));
  }

  if (options.layout === 'below') return [...left, '', ...right].join('\n');
  const leftWidth = Math.max(...left.map((l) => l.length)) + 3;
  const rows = Math.max(left.length, right.length);
  const out: string[] = [];
  for (let i = 0; i < rows; i++) out.push(`${pad(left[i] ?? '', leftWidth)}${right[i] ?? ''}`.trimEnd());
  return out.join('\n');
}
