import type { Metrics } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import type { EventPublisher } from '../shared/bus';
import type { LedgerWriter } from '../ledger/store';
import { TerminalError, causeMessage } from '../shared/errors';
import { type GroupFacts, SwapRequestSchema } from '../swap/model';
import { BATCH_DEADLINE_MARGIN_HOURS, BATCH_TIMEOUT_DAYS, type BatchRequest, BatchRequestSchema, type Budget, type MaintenanceWindow, type SwapGroup } from './model';
import { type BatchGroup, type BatchProgress, type WavePlan, type WaveResult, applyResults, planWave } from './waves';
import { plainJson } from '../shared/validation';

export class NoSuchGroupsError extends TerminalError {
  override name = 'Terminal.NoSuchGroups';
}

/** What the batch's logic reads of the world. */
export interface BatchPorts {
  group(name: string): Promise<GroupFacts | undefined>;
  /** Names of the given CloudWatch alarms that are in ALARM now. */
  alarming(alarmNames: string[]): Promise<string[]>;
}

export interface BatchPolicy {
  budget: Budget;
  maxFailedSwaps: number;
  alarmNames: string[];
}

export interface BatchDeps {
  ports: BatchPorts;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  /** swaps.groups and swaps.maintenanceWindows of the config. */
  groups: SwapGroup[];
  windows: Record<string, MaintenanceWindow>;
  policy: BatchPolicy;
  region: string;
  dryRunDefault: boolean;
  clock: () => Date;
}

/** The groups a batch works through: those named, or every configured group of the cluster. */
export function batchGroupNames(request: BatchRequest, configured: SwapGroup[]): string[] {
  if (request.groups) return request.groups;
  const names = configured.filter((g) => g.cluster === request.cluster).map((g) => g.name);
  if (names.length === 0) throw new NoSuchGroupsError(`no group of cluster ${request.cluster} is configured in swaps.groups`);
  return names;
}

async function readGroups(request: BatchRequest, deps: BatchDeps): Promise<BatchGroup[]> {
  const names = batchGroupNames(request, deps.groups);
  const facts = await Promise.all(names.map((name) => deps.ports.group(name)));
  const missing = names.filter((_, i) => !facts[i]);
  if (missing.length) throw new NoSuchGroupsError(`Auto Scaling group(s) ${missing.join(', ')} not found in ${deps.region}`);
  return facts.map((g) => {
    const config = deps.groups.find((c) => c.name === g!.name);
    const window = config?.maintenanceWindow ? { name: config.maintenanceWindow, spec: deps.windows[config.maintenanceWindow]! } : undefined;
    return {
      name: g!.name,
      desired: g!.desired,
      instances: g!.instances.map(({ instanceId, lifecycleState, spot, doNotDisrupt }) => ({ instanceId, lifecycleState, spot, doNotDisrupt })),
      ...(config?.cluster ? { cluster: config.cluster } : {}),
      ...(window ? { window } : {}),
      ...(config?.budget ? { budget: config.budget } : {}),
    };
  });
}

/**
 * Folds the last wave's results into the progress, re-reads the groups and plans the next wave;
 * every plan is recorded in the ledger (once per batch and wave, whatever the retries).
 */
export async function planWaveStep(input: { request: BatchRequest; batchId: string; startedAt?: string; progress?: BatchProgress; results?: WaveResult[] }, deps: BatchDeps): Promise<WavePlan> {
  const progress = applyResults(input.progress ?? { wave: 0, attempts: [] }, input.results ?? []);
  const groups = await readGroups(input.request, deps);
  const plan = planWave({
    batchId: input.batchId,
    request: input.request,
    groups,
    progress,
    defaults: { budget: deps.policy.budget, maxFailedSwaps: deps.policy.maxFailedSwaps },
    dryRun: input.request.dryRun ?? deps.dryRunDefault,
    now: deps.clock(),
    ...(input.startedAt ? { deadline: new Date(new Date(input.startedAt).getTime() + (BATCH_TIMEOUT_DAYS * 24 - BATCH_DEADLINE_MARGIN_HOURS) * 3_600_000) } : {}),
  });
  const subject = `${deps.region}/${groups.map((g) => g.name).join(',')}`;
  const step = plan.action === 'swap' ? `wave-${plan.wave}` : `${plan.action}-after-wave-${progress.wave}`;
  const reason =
    plan.action === 'swap'
      ? `${plan.canary ? 'canary' : `wave ${plan.wave}`}: swap ${plan.items.map((i) => i.request.instanceId).join(', ')} (budget ${plan.budget})`
      : plan.reason;
  // A wait is re-planned after it, possibly many times: each wait is its own entry.
  const dedupeKey = `${input.batchId}#batch.${step}${plan.action === 'wait' ? `#${plan.until}` : ''}`;
  await deps.ledger.append({ actor: 'swap-batch', action: `batch.${plan.action === 'swap' ? 'wave-planned' : plan.action === 'wait' ? 'waiting-for-window' : 'planned'}`, subject, reason, eventId: input.batchId, after: plainJson(withoutProgress(plan)) }, { dedupeKey });
  return plan;
}

/**
 * The health gate after a wave: every group of the batch back at (or above) its desired
 * capacity with every member InService, and none of the configured alarms in ALARM.
 */
export async function healthStep(request: BatchRequest, deps: BatchDeps): Promise<{ healthy: boolean; reasons: string[] }> {
  const reasons: string[] = [];
  for (const name of batchGroupNames(request, deps.groups)) {
    const g = await deps.ports.group(name);
    if (!g) {
      reasons.push(`group ${name} is gone`);
      continue;
    }
    const inService = g.instances.filter((i) => i.lifecycleState === 'InService').length;
    if (inService < g.desired) reasons.push(`group ${name}: ${inService} of ${g.desired} InService`);
    const others = g.instances.filter((i) => i.lifecycleState !== 'InService');
    if (others.length) reasons.push(`group ${name}: ${others.map((i) => `${i.instanceId} ${i.lifecycleState}`).join(', ')}`);
  }
  const alarming = await deps.ports.alarming(deps.policy.alarmNames);
  if (alarming.length) reasons.push(`alarm(s) in ALARM: ${alarming.join(', ')}`);
  return { healthy: reasons.length === 0, reasons };
}

export type BatchOutcome = 'completed' | 'halted' | 'dry-run' | 'failed';

/** Records how the batch ended in the ledger and announces it. */
export async function recordBatchStep(outcome: BatchOutcome, state: { batchId: string; request?: BatchRequest; wave?: WavePlan; health?: { reasons: string[] }; error?: { Error?: string; Cause?: string } }, deps: BatchDeps): Promise<{ outcome: BatchOutcome }> {
  const wave = state.wave;
  const reason =
    outcome === 'failed'
      ? `${state.error?.Error ?? 'error'}: ${causeMessage(state.error?.Cause).slice(0, 500)}`
      : outcome === 'halted' && state.health?.reasons.length
        ? `health gate failed: ${state.health.reasons.join('; ')}`
        : wave && 'reason' in wave
          ? wave.reason
          : outcome;
  const summary = wave && 'summary' in wave ? wave.summary : wave && 'report' in wave ? wave.report : undefined;
  const subject = `${deps.region}/${state.request ? (state.request.groups?.join(',') ?? `cluster ${state.request.cluster}`) : 'unknown'}`;
  await deps.ledger.append({ actor: 'swap-batch', action: `batch.${outcome}`, subject, reason, eventId: state.batchId, after: plainJson({ summary, attempts: wave?.progress.attempts ?? [] }) }, { dedupeKey: `${state.batchId}#batch.${outcome}` });
  const detailType = outcome === 'completed' ? 'SwapBatchCompleted' : outcome === 'dry-run' ? 'SwapBatchPlanned' : 'SwapBatchHalted';
  await deps.publisher.publish([{ detailType, detail: plainJson<Record<string, unknown>>({ batchId: state.batchId, outcome, reason, groups: state.request?.groups, cluster: state.request?.cluster, summary }) }]);
  return { outcome };
}

function withoutProgress(plan: WavePlan) {
  const { progress, ...rest } = plan;
  return { ...rest, attempts: progress.attempts.length };
}

const ProgressSchema = z.strictObject({
  wave: z.number().int().min(0),
  attempts: z.array(
    z.strictObject({
      instanceId: z.string(),
      group: z.string(),
      wave: z.number().int(),
      outcome: z.enum(['swapped', 'skipped', 'rolled-back', 'dry-run', 'deferred']),
      reason: z.string().optional(),
      replacement: z.string().optional(),
    }),
  ),
});
/** One item of the Map's output: the swap it ran and how its execution ended (lenient: it is Step Functions' shape). */
const WaveResultSchema = z.looseObject({
  request: SwapRequestSchema,
  execution: z.looseObject({ status: z.string(), output: z.unknown().optional() }).optional(),
  error: z.looseObject({ Error: z.string().optional(), Cause: z.string().optional() }).optional(),
});

/**
 * Input of the batch's logic steps.
 * @example { "step": "plan-wave", "request": { "groups": ["web"] }, "batchId": "b-1" }
 */
export const BatchStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('plan-wave'), request: BatchRequestSchema, batchId: z.string().min(1), startedAt: z.iso.datetime({ offset: true }).optional(), progress: ProgressSchema.optional(), results: z.array(WaveResultSchema).optional() }),
  z.strictObject({ step: z.literal('health'), request: BatchRequestSchema }),
  z.strictObject({ step: z.literal('record'), outcome: z.enum(['completed', 'halted', 'dry-run', 'failed']), state: z.looseObject({ batchId: z.string().min(1) }) }),
]);
export type BatchStepInput = z.infer<typeof BatchStepInputSchema>;

/** One logic step of SwapBatch, counted by its metrics. */
export async function runBatchStep(input: BatchStepInput, deps: BatchDeps, metrics: Pick<Metrics, 'addMetric'>): Promise<unknown> {
  switch (input.step) {
    case 'plan-wave': {
      const plan = await planWaveStep(input, deps);
      metrics.addMetric('BatchWavesPlanned', 'Count', plan.action === 'swap' ? 1 : 0);
      metrics.addMetric('BatchSwapsStarted', 'Count', plan.action === 'swap' ? plan.items.length : 0);
      return plan;
    }
    case 'health': {
      const health = await healthStep(input.request, deps);
      metrics.addMetric('BatchHealthGateFailures', 'Count', health.healthy ? 0 : 1);
      return health;
    }
    case 'record':
      metrics.addMetric(input.outcome === 'completed' ? 'BatchesCompleted' : input.outcome === 'dry-run' ? 'BatchesPlanned' : 'BatchesHalted', 'Count', 1);
      return recordBatchStep(input.outcome, input.state as Parameters<typeof recordBatchStep>[1], deps);
  }
}
