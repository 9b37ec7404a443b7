import { describe, expect, it } from 'vitest';
import results from '../../bench/results.json' with { type: 'json' };
import { type BenchResults, type CostLine, ASSUMPTIONS, PRICES, costModel, formatCostModel } from '../../scripts/bench/cost';

/** A small bench result with round numbers, shaped like bench/results.json. */
const measured: BenchResults = {
  functions: [
    { function: 'functions/ledger/digest/handler.ts', coldInitMs: { median: 100 } },
    { function: 'functions/interruption/ingest/handler.ts', coldInitMs: { median: 200 } },
    { function: 'functions/interruption/cleanup/handler.ts', coldInitMs: { median: 100 } },
    { function: 'functions/swap/handler/handler.ts', coldInitMs: { median: 200 } },
    { function: 'functions/batch/handler/handler.ts', coldInitMs: { median: 200 } },
    { function: 'functions/drift/handler/handler.ts', coldInitMs: { median: 200 } },
    { function: 'functions/enforcement/steps/handler.ts', coldInitMs: { median: 100 } },
    { function: 'functions/waste/steps/handler.ts', coldInitMs: { median: 100 } },
    { function: 'functions/ledger/archive/handler.ts', coldInitMs: { median: 100 } },
  ],
  ledger: { sequentialAppend: { writeUnitsPerAppend: 1 }, dedupedAppendWithDuplicates: { writeUnitsPerAppend: 4 }, verify: { endToEndFromMoto: { entriesPerSecond: 1000 } } },
  interruptions: {
    awsApiCallsByOperation: { GetItem: 150, Query: 50, PutItem: 150, UpdateItem: 100, TransactWriteItems: 100, PutEvents: 100, DeleteMessage: 150, ReceiveMessage: 15 },
    distinctEvents: 100,
    deliveries: 150,
    writeUnitsPerDistinctEvent: 8,
  },
  swaps: {
    successfulSwap: { stateTransitions: 20, lambdaInvocations: 4, awsApiCallsByOperation: { GetItem: 10, Query: 10, TransactWriteItems: 10, PutItem: 1, DeleteItem: 1, PutEvents: 2 } },
    rollbackAfterAttach: { stateTransitions: 10, lambdaInvocations: 4, awsApiCallsByOperation: { GetItem: 5, Query: 5, TransactWriteItems: 5, PutItem: 1, DeleteItem: 1, PutEvents: 2 } },
    batchOfThree: { batchStateTransitions: 30, batchLambdaInvocations: 8 },
  },
  kubernetes: {
    ingestFunctionMs: { median: 100 },
    drainFunctionReportedDrainMs: { median: 1000 },
    nodeSwaps: { successfulNodeSwap: { stateTransitions: 30, lambdaInvocations: 7 }, nodeSwapRolledBackAfterAttach: { stateTransitions: 20, lambdaInvocations: 7 } },
  },
  workflows: {
    ledgerDigest: { stateTransitions: 15, lambdaInvocations: 1, awsApiCalls: { 'S3:GET': 3, 'S3:LIST': 1, 'S3:PUT': 2, Query: 1, Verify: 1, Sign: 1, PutEvents: 1 } },
  },
};

const find = (lines: CostLine[], workload: CostLine['workload'], unit: string, item = '') => {
  const found = lines.filter((l) => l.workload === workload && l.unit === unit && l.item.includes(item));
  expect(found, `${workload} / ${unit} / ${item}`).toHaveLength(1);
  return found[0]!;
};
const key = (l: CostLine) => `${l.workload}|${l.service}|${l.unit}|${l.item.replace(/\(.*\)/, '')}`;

describe('the bench cost model', () => {
  it('makes the total the sum of its lines, and the cost per 1,000 instances the total scaled to 1,000', () => {
    // Prepare
    const assumptions = { instances: 4_000 };

    // Act
    const model = costModel(measured, assumptions);

    // Assess
    expect(model.lines.length).toBeGreaterThan(20);
    expect(model.totalUsd).toBeCloseTo(model.lines.reduce((sum, l) => sum + l.usd, 0), 10);
    expect(model.perThousandInstancesUsd).toBeCloseTo(model.totalUsd / 4, 10);
    expect(model.byWorkload.reduce((sum, w) => sum + w.usd, 0)).toBeCloseTo(model.totalUsd, 10);
    expect(model.byService.reduce((sum, s) => sum + s.usd, 0)).toBeCloseTo(model.totalUsd, 10);
    expect(model.topItems.map((t) => t.usd)).toEqual([...model.lines].map((l) => l.usd).sort((a, b) => b - a).slice(0, 5));
  });

  it('applies each price per its unit: a digest month checked by hand', () => {
    // Prepare: 30 days of hourly digests = 720 runs.
    const assumptions = { hoursPerMonth: 720, digestsPerDay: 24, unmeasured: { digestBaseMs: 400 } };

    // Act
    const { lines } = costModel(measured, assumptions);

    // Assess
    // 720 runs × 15 transitions = 10,800 × $0.025 / 1,000
    expect(find(lines, 'digest', 'state transitions').usd).toBeCloseTo(0.27, 10);
    // 720 runs × 2 PUTs = 1,440 × $0.005 / 1,000
    expect(find(lines, 'digest', 'PUT requests', 'PUTs').usd).toBeCloseTo(0.0072, 10);
    // 720 LISTs, priced as PUTs: × $0.005 / 1,000
    expect(find(lines, 'digest', 'PUT requests', 'Listing').usd).toBeCloseTo(0.0036, 10);
    // 720 runs × 3 GETs = 2,160 × $0.0004 / 1,000
    expect(find(lines, 'digest', 'GET requests').usd).toBeCloseTo(0.000864, 10);
    // 720 KMS Sign × $0.03 / 10,000, and as many Verify
    expect(find(lines, 'digest', 'requests', 'KMS Sign').usd).toBeCloseTo(0.00216, 10);
    expect(find(lines, 'digest', 'requests', 'KMS Verify').usd).toBeCloseTo(0.00216, 10);
    // 720 invocations × $0.20 / 1,000,000
    expect(find(lines, 'digest', 'requests', 'invocations').usd).toBeCloseTo(0.000144, 10);
    // 720 × 0.5 GB × (400 ms + 100% cold × 100 ms INIT) = 180 GB-s × $0.0000133334
    const compute = find(lines, 'digest', 'GB-seconds');
    expect(compute.quantityPerMonth).toBeCloseTo(180, 10);
    expect(compute.usd).toBeCloseTo(180 * 0.0000133334, 12);
    // 720 LedgerDigestSigned events × $1 / 1,000,000
    expect(find(lines, 'digest', 'events').usd).toBeCloseTo(0.00072, 10);
  });

  it('uses the price table it is given, per unit', () => {
    // Prepare
    const base = costModel(measured);

    // Act
    const dearer = costModel(measured, undefined, { items: { stepFunctionsTransitions: { usd: 0.05 } } });

    // Assess
    for (const line of dearer.lines) {
      const before = base.lines.find((l) => key(l) === key(line))!;
      expect(line.usd).toBeCloseTo(line.service === 'Step Functions' ? 2 * before.usd : before.usd, 12);
    }
    expect(dearer.prices.items.stepFunctionsTransitions).toMatchObject({ usd: 0.05, per: 1_000, unit: 'state transitions' });
    expect(PRICES.items.stepFunctionsTransitions.usd).toBe(0.025);
  });

  it('doubles every interruption line when interruptions per day double, and no other workload’s lines but the ledger’s', () => {
    // Prepare
    const base = costModel(measured, { interruptedSharePerDay: 0.02 });

    // Act
    const doubled = costModel(measured, { interruptedSharePerDay: 0.04 });

    // Assess
    expect(doubled.lines.map(key)).toEqual(base.lines.map(key));
    doubled.lines.forEach((line, i) => {
      const before = base.lines[i]!;
      if (line.workload === 'interruptions' && line.service !== 'CloudWatch Metrics') {
        expect(line.usd).toBeGreaterThan(0);
        expect(line.quantityPerMonth).toBeCloseTo(2 * before.quantityPerMonth, 8);
        expect(line.usd).toBeCloseTo(2 * before.usd, 12);
      } else if (line.workload === 'ledger') {
        // Every workload's ledger entries are verified, read and stored: more entries, more cost.
        expect(line.usd).toBeGreaterThan(before.usd);
      } else if (line.workload === 'interruptions') {
        // A metric series is billed per hour it is emitted in: it grows, but less than the events.
        expect(line.quantityPerMonth).toBeGreaterThanOrEqual(before.quantityPerMonth);
        expect(line.quantityPerMonth).toBeLessThan(2 * before.quantityPerMonth);
      } else {
        expect(line.usd).toBe(before.usd);
      }
    });
  });

  it('bills a metric series at most one metric-month, however many events emit it', () => {
    // Prepare: every Spot instance interrupted ten times a day.
    const assumptions = { interruptedSharePerDay: 10 };

    // Act
    const { lines } = costModel(measured, assumptions);

    // Assess
    const metric = find(lines, 'interruptions', 'metric-months', 'InterruptionEvents by DetailType');
    expect(metric.quantityPerMonth).toBeLessThanOrEqual(3);
    expect(metric.quantityPerMonth).toBeCloseTo(3, 6);
    expect(metric.usd).toBeCloseTo(0.9, 6);
  });

  it('labels a line that rests on an unmeasured count, and lists the count with its estimate and why', () => {
    // Prepare
    const assumptions = { duplicateDeliveryRate: 0.5, unmeasured: { writeUnitsPerDuplicate: 2 } };

    // Act
    const model = costModel(measured, assumptions);

    // Assess
    const duplicates = find(model.lines, 'interruptions', 'write request units', 'duplicate');
    expect(duplicates.unmeasured).toEqual(['unmeasured.writeUnitsPerDuplicate']);
    // 20 interruptions a day × 3 events × 0.5 duplicates × 2 WRU × 30.4 days
    expect(duplicates.quantityPerMonth).toBeCloseTo(1_000 * 0.02 * 3 * 0.5 * 2 * (730 / 24), 8);
    const distinct = find(model.lines, 'interruptions', 'write request units', 'distinct events');
    expect(distinct.unmeasured).toEqual([]);
    expect(distinct.measured).toEqual(['interruptions.writeUnitsPerDistinctEvent']);
    expect(model.unmeasured).toContainEqual({ field: 'unmeasured.writeUnitsPerDuplicate', value: 2, note: expect.stringContaining('conditional') });
    expect(model.unmeasured).toContainEqual(expect.objectContaining({ field: 'unmeasured.metricSeries.driftPerRun', value: 2 }));
    const table = formatCostModel(model, { layout: 'below' });
    expect(table).toMatch(/^ \* DynamoDB writes of duplicate deliveries/m);
    expect(table).toMatch(/^ {3}DynamoDB writes of distinct events/m);
    expect(table).toContain('writeUnitsPerDuplicate = 2');
  });

  it('prints the total against the goal, with the assumptions and the price table beside the lines', () => {
    // Prepare
    const model = costModel(measured);

    // Act
    const table = formatCostModel(model);

    // Assess
    const rows = table.split('\n');
    expect(rows[0]).toMatch(/^Fleetwarden monthly cost: 1,000 instances.*Assumptions$/);
    expect(rows[1]).toMatch(/Total \$\d+\.\d\d\/month = \$\d+\.\d\d per 1,000 instances; goal ≤ \$10\.00: (met|NOT met)/);
    expect(rows[1]).toContain('instances = 1000');
    expect(table).toContain('Where the money goes');
    expect(table).toContain('Prices (us-east-1, 2026-12');
    expect(table).toContain('Step Functions: $0.025 per 1,000 state transitions');
    expect(model.goal).toEqual({ usdPerThousandInstances: 10, met: model.perThousandInstancesUsd <= 10 });
  });

  it('refuses an assumption that is negative, not a number, or not one it knows', () => {
    expect(() => costModel(measured, { swapsPerWeek: -1 })).toThrow(RangeError);
    expect(() => costModel(measured, { unmeasured: { driftMsPerRun: Number.NaN } })).toThrow(/unmeasured\.driftMsPerRun/);
    expect(() => costModel(measured, { deliveriesPerIngestInvocation: 0 })).toThrow('deliveriesPerIngestInvocation must be > 0');
    expect(() => costModel(measured, JSON.parse('{"swapsPerWeek":"50"}'))).toThrow('swapsPerWeek must be a number');
    expect(() => costModel(measured, JSON.parse('{"unmeasured":{"driftMs":900}}'))).toThrow('unknown field unmeasured.driftMs');
    expect(() => costModel(measured, undefined, JSON.parse('{"items":{"lambda":{"usd":1}}}'))).toThrow('unknown field items.lambda');
  });

  it('says which function a result lacks when the bench did not time its cold init', () => {
    const withoutDrift = { ...measured, functions: measured.functions.filter((f) => !f.function.includes('drift')) };
    expect(() => costModel(withoutDrift)).toThrow('bench results have no cold init for functions/drift/handler/handler.ts');
  });

  it('prices the measured bench/results.json with every line finite, non-negative and named for its sources', () => {
    // Act
    const model = costModel(results);

    // Assess
    expect(model.assumptions).toEqual(ASSUMPTIONS);
    expect(model.totalUsd).toBeGreaterThan(0);
    for (const line of model.lines) {
      expect(Number.isFinite(line.usd) && line.usd >= 0, line.item).toBe(true);
      expect(Number.isFinite(line.quantityPerMonth) && line.quantityPerMonth >= 0, line.item).toBe(true);
      for (const field of line.unmeasured) expect(model.unmeasured.map((u) => u.field)).toContain(field);
    }
    expect(find(model.lines, 'swaps', 'state transitions').measured).toContain('swaps.{successfulSwap,rollbackAfterAttach}.stateTransitions');
  });
});
