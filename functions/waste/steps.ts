import * as z from 'zod';
import { AccountIdSchema } from '../shared/ids';
import { type CleanupOutcome, cleanFinding } from './cleanup';
import { WASTE_KINDS } from './policy';
import { type ScanReport, type WasteDeps, reportScan, scanBatch, totalFindings, totalMonthlyUsd } from './scanner';

const TargetSchema = z.strictObject({ account: AccountIdSchema, region: z.string().min(1) });
const Count = z.number().int().min(0);
const Total = z.strictObject({ count: Count, monthlyUsd: z.number().min(0) });
const Totals = z.strictObject({ address: Total, volume: Total, snapshot: Total });
const ReportSchema = z.strictObject({
  targets: Count,
  failed: z.array(z.strictObject({ account: z.string(), region: z.string(), error: z.string().optional() })),
  /** Set by the workflow when the whole batch's step failed: the error of every target in `failed`. */
  batchError: z.string().optional(),
  listed: Count,
  byKind: Totals,
  byAccount: z.record(z.string(), z.number()),
  found: Count,
  reopened: Count,
  resolved: Count,
  marked: Count,
  wouldMark: Count,
  cleanable: Count,
});

/**
 * The three Lambda steps of the WasteScan workflow.
 * @example { "step": "scan", "scanId": "daily-2026-12-04", "targets": [{ "account": "333333333333", "region": "us-east-1" }] }
 * @example { "step": "report", "scanId": "...", "batches": [{ "targets": [...] }], "reports": [{ "targets": 1, "failed": [], "byKind": { ... }, ... }] }
 * @example { "step": "clean", "scanId": "...", "findingId": "333333333333/us-east-1/vol-0abc..." }
 */
export const WasteStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('scan'), scanId: z.string().min(1), targets: z.array(TargetSchema).min(1).max(100) }),
  z.strictObject({ step: z.literal('report'), scanId: z.string().min(1), batches: z.array(z.strictObject({ targets: z.array(TargetSchema) })).max(5_000), reports: z.array(ReportSchema).max(5_000) }),
  z.strictObject({ step: z.literal('clean'), scanId: z.string().min(1), findingId: z.string().regex(/^\d{12}\/[a-z0-9-]+\/(eipalloc|vol|snap)-[0-9a-f]{8,17}$/, 'a finding id is account/region/resource-id') }),
]);
export type WasteStepInput = z.infer<typeof WasteStepInputSchema>;

/** What the report step leaves in the workflow's state: the plan, and the run's totals. */
export interface ReportResult {
  trip: boolean;
  acting: string[];
  planned: number;
  reason?: string;
  findings: number;
  totalMonthlyUsd: number;
  report: ScanReport;
}

export async function runWasteStep(input: WasteStepInput, deps: WasteDeps): Promise<ScanReport | ReportResult | CleanupOutcome> {
  switch (input.step) {
    case 'scan':
      return scanBatch(input, deps);
    case 'report': {
      const reports = input.reports.map(({ batchError, ...r }) => ({ ...r, failed: r.failed.map((f) => ({ ...f, error: f.error ?? batchError ?? 'not scanned' })) })) as ScanReport[];
      const { report, plan } = await reportScan({ scanId: input.scanId, targets: input.batches.flatMap((b) => b.targets), reports }, deps);
      return { ...plan, findings: totalFindings(report), totalMonthlyUsd: totalMonthlyUsd(report), report };
    }
    case 'clean':
      return cleanFinding(input, deps);
  }
}

export interface MetricPoint {
  name: string;
  unit: 'Count' | 'None';
  value: number;
  dimensions?: Record<string, string>;
}

/** The report step's series: 1 when the cleanup's circuit breaker tripped (nothing removed), 0 otherwise; an alarm watches it. */
export const CLEANUP_CIRCUIT_BREAKER_METRIC = 'WasteCleanupCircuitBreakerTripped';

/** What each step counts in CloudWatch: the report step the run's monthly waste, in total, by kind and by account. */
export function stepMetrics(step: WasteStepInput['step'], result: ScanReport | ReportResult | CleanupOutcome): MetricPoint[] {
  if (step === 'scan') {
    const r = result as ScanReport;
    return [
      { name: 'WasteResourcesScanned', unit: 'Count', value: r.listed },
      { name: 'WasteScanTargetsFailed', unit: 'Count', value: r.failed.length },
    ];
  }
  if (step === 'report') {
    const { report, ...r } = result as ReportResult;
    return [
      { name: 'WasteMonthlyUsd', unit: 'None', value: r.totalMonthlyUsd },
      { name: 'WasteFindings', unit: 'Count', value: r.findings },
      { name: CLEANUP_CIRCUIT_BREAKER_METRIC, unit: 'Count', value: r.trip ? 1 : 0 },
      ...WASTE_KINDS.map((kind) => ({ name: 'WasteMonthlyUsd', unit: 'None' as const, value: report.byKind[kind].monthlyUsd, dimensions: { Kind: kind } })),
      ...Object.entries(report.byAccount).map(([account, usd]) => ({ name: 'WasteMonthlyUsd', unit: 'None' as const, value: usd, dimensions: { Account: account } })),
    ];
  }
  const r = result as CleanupOutcome;
  return [{ name: 'WasteCleaned', unit: 'Count', value: r.action === 'waste.released' || r.action === 'waste.deleted' ? 1 : 0 }];
}
