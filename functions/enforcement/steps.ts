import * as z from 'zod';
import { EnvironmentClassSchema } from '../shared/environments';
import { AccountIdSchema } from '../shared/ids';
import { type ActPlan, type EnforcerDeps, type FlagOutcome, type SweepReport, actOnFlag, planActions, sweepBatch } from './enforcer';

const TargetSchema = z.strictObject({ account: AccountIdSchema, region: z.string().min(1) });
const ReportSchema = z.strictObject({
  targets: z.number().int().min(0),
  failed: z.array(z.strictObject({ account: z.string(), region: z.string(), error: z.string().optional() })),
  /** Set by the workflow when the whole batch's step failed: the error of every target in `failed`. */
  batchError: z.string().optional(),
  instances: z.number().int().min(0),
  pages: z.number().int().min(0),
  flagged: z.number().int().min(0),
  resolved: z.number().int().min(0),
  expiredByEnvironment: z.partialRecord(EnvironmentClassSchema, z.number().int().min(0)),
  expired: z.array(z.strictObject({ instanceKey: z.string().min(1), environment: EnvironmentClassSchema })),
});

/**
 * The three Lambda steps of the EnforcementSweep workflow.
 * @example { "step": "sweep", "sweepId": "hourly-2026-12-03T10", "targets": [{ "account": "333333333333", "region": "us-east-1" }] }
 * @example { "step": "plan", "sweepId": "...", "reports": [{ "targets": 1, "failed": [], "instances": 3, ... }] }
 * @example { "step": "act", "sweepId": "...", "instanceKey": "333333333333/us-east-1/i-0abc..." }
 */
export const EnforcementStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('sweep'), sweepId: z.string().min(1), targets: z.array(TargetSchema).min(1).max(100) }),
  z.strictObject({ step: z.literal('plan'), sweepId: z.string().min(1), reports: z.array(ReportSchema).max(5_000) }),
  z.strictObject({ step: z.literal('act'), sweepId: z.string().min(1), instanceKey: z.string().regex(/^\d{12}\/[a-z0-9-]+\/i-[0-9a-f]{8,17}$/, 'an instance key is account/region/instance-id') }),
]);
export type EnforcementStepInput = z.infer<typeof EnforcementStepInputSchema>;

export async function runEnforcementStep(input: EnforcementStepInput, deps: EnforcerDeps) {
  switch (input.step) {
    case 'sweep':
      return sweepBatch(input, deps);
    case 'plan':
      return planActions({ sweepId: input.sweepId, reports: input.reports.map(({ batchError, ...r }) => ({ ...r, failed: r.failed.map((f) => ({ ...f, error: f.error ?? batchError ?? 'not swept' })) })) }, deps);
    case 'act':
      return actOnFlag(input, deps);
  }
}

/** The plan step's series: 1 when the circuit breaker tripped (nothing acted on), 0 otherwise; an alarm watches it. */
export const CIRCUIT_BREAKER_METRIC = 'CircuitBreakerTripped';

/** What each step counts in CloudWatch (every step emits at least one series, zero included). */
export function stepMetrics(step: EnforcementStepInput['step'], result: SweepReport | ActPlan | FlagOutcome): Record<string, number> {
  if (step === 'sweep') {
    const r = result as SweepReport;
    return { InstancesSwept: r.instances, InstancesFlagged: r.flagged, SweepTargetsFailed: r.failed.length };
  }
  if (step === 'plan') {
    const r = result as ActPlan;
    return { PlannedActions: r.planned, [CIRCUIT_BREAKER_METRIC]: r.trip ? 1 : 0 };
  }
  const r = result as FlagOutcome;
  return { EnforcementActions: r.action === 'instance.stopped' || r.action === 'instance.terminated' ? 1 : 0 };
}
