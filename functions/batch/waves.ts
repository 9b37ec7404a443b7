import { createHash } from 'node:crypto';
import type { SwapOutcome, SwapRequest } from '../swap/model';
import type { BatchRequest, Budget, MaintenanceWindow } from './model';
import { windowState } from './window';

/** What the planner sees of one group, read fresh before every wave. */
export interface BatchGroup {
  name: string;
  desired: number;
  instances: { instanceId: string; lifecycleState: string; spot: boolean; doNotDisrupt: boolean }[];
  cluster?: string;
  window?: { name: string; spec: MaintenanceWindow };
  /** The group's own budget (config), used when the batch is of this group alone. */
  budget?: Budget;
}

/**
 * What the batch makes of one swap attempt (read from the swap's own SwapOutcome, or from the
 * error its execution failed with). `deferred`: the swap was refused because another swap held
 * the group; it is tried again and does not count as a failure.
 */
export type AttemptOutcome = 'swapped' | 'skipped' | 'rolled-back' | 'dry-run' | 'deferred';

export interface SwapAttempt {
  instanceId: string;
  group: string;
  wave: number;
  outcome: AttemptOutcome;
  reason?: string;
  replacement?: string;
}

export interface BatchProgress {
  /** Waves run so far. */
  wave: number;
  attempts: SwapAttempt[];
}

export interface Excluded {
  instanceId: string;
  group: string;
  reason: string;
}

export interface WaveItem {
  /** The child execution's name: unique per batch, wave and instance (a retried wave reuses it). */
  executionName: string;
  request: SwapRequest;
}

export interface BatchSummary {
  swapped: number;
  skipped: number;
  deferred: number;
  rolledBack: number;
  excluded: Excluded[];
  remaining: number;
}

export type WavePlan =
  | { action: 'swap'; wave: number; canary: boolean; budget: number; items: WaveItem[]; deferred: Excluded[]; excluded: Excluded[]; progress: BatchProgress }
  | { action: 'wait'; until: string; reason: string; progress: BatchProgress }
  | { action: 'done'; reason: string; summary: BatchSummary; progress: BatchProgress }
  | { action: 'halt'; reason: string; summary: BatchSummary; progress: BatchProgress }
  | { action: 'dry-run'; reason: string; report: DryRunReport; progress: BatchProgress };

export interface DryRunReport {
  budget: number;
  canary: boolean;
  /** The waves the batch would run now, if every swap succeeded and every window were open. */
  waves: { instanceId: string; group: string }[][];
  excluded: Excluded[];
  windows: { group: string; window: string; open: boolean; opensAt?: string; closesAt?: string }[];
}

export interface WaveInputs {
  batchId: string;
  request: BatchRequest;
  groups: BatchGroup[];
  progress: BatchProgress;
  defaults: { budget: Budget; maxFailedSwaps: number };
  dryRun: boolean;
  now: Date;
  /** When the batch must be finished by (its execution's start plus its timeout, less a margin): no wait past it. */
  deadline?: Date;
}

/** How often a swap refused because another swap held its group is tried again before the instance is left. */
export const DEFERRALS_PER_INSTANCE = 5;

/** A rolled-back swap is tried once more in a later wave; a second roll-back leaves the instance as it is. */
export const ATTEMPTS_PER_INSTANCE = 2;

/** Swaps allowed at once: a count, or a percent of the batch's desired capacity rounded down, at least one. */
export function budgetSize(budget: Budget, desiredTotal: number): number {
  return 'count' in budget ? budget.count : Math.max(1, Math.floor((budget.percent / 100) * desiredTotal));
}

/**
 * Plans the next wave of a batch from what is there now (pure; the batch re-plans before every
 * wave, so an instance that changed meanwhile is seen as it is). Rules, in order:
 * - do-not-disrupt always wins: such instances are excluded, whatever the trigger;
 * - too many roll-backs (more than maxFailedSwaps, or the canary's) halt the batch;
 * - a group outside its maintenance window waits for it, unless the batch is urgent;
 * - the canary is one swap; after it has succeeded, waves hold up to the budget, at most one swap
 *   per group (a group's lock serialises its swaps: the budget spreads across groups).
 */
export function planWave({ batchId, request, groups, progress, defaults, dryRun, now, deadline }: WaveInputs): WavePlan {
  const maxFailed = request.maxFailedSwaps ?? defaults.maxFailedSwaps;
  const budget = budgetSize(request.budget ?? (groups.length === 1 ? groups[0]!.budget : undefined) ?? defaults.budget, groups.reduce((n, g) => n + g.desired, 0));
  const { targets, excluded } = selectTargets(request, groups, progress);
  const rolledBack = progress.attempts.filter((a) => a.outcome === 'rolled-back');
  const summary = (): BatchSummary => ({
    swapped: progress.attempts.filter((a) => a.outcome === 'swapped').length,
    skipped: progress.attempts.filter((a) => a.outcome === 'skipped').length,
    deferred: progress.attempts.filter((a) => a.outcome === 'deferred').length,
    rolledBack: rolledBack.length,
    excluded,
    remaining: targets.length,
  });
  const swappedAny = progress.attempts.some((a) => a.outcome === 'swapped');
  const canaryPending = request.canary && !swappedAny;

  if (dryRun) return { action: 'dry-run', reason: 'dry run: planned, nothing changed', report: dryRunReport(targets, excluded, groups, budget, request.canary, now), progress };
  if (canaryPending && rolledBack.length > 0) {
    return { action: 'halt', reason: `the canary swap of ${rolledBack[0]!.instanceId} was rolled back (${rolledBack[0]!.reason ?? 'see its execution'})`, summary: summary(), progress };
  }
  if (rolledBack.length > maxFailed) {
    return { action: 'halt', reason: `${rolledBack.length} swaps were rolled back, more than the ${maxFailed} this batch tolerates`, summary: summary(), progress };
  }
  if (targets.length === 0) {
    return { action: 'done', reason: progress.wave === 0 ? 'nothing to swap' : 'every instance of the batch was handled', summary: summary(), progress };
  }

  const open: typeof targets = [];
  const deferred: Excluded[] = [];
  let opensAt: Date | undefined;
  for (const target of targets) {
    const window = target.group.window;
    const state = window && !request.urgent ? windowState(window.spec, now) : undefined;
    if (!state || state.open) open.push(target);
    else {
      deferred.push({ instanceId: target.instanceId, group: target.group.name, reason: `outside maintenance window ${window!.name} (opens ${state.opensAt.toISOString()})` });
      if (!opensAt || state.opensAt < opensAt) opensAt = state.opensAt;
    }
  }
  if (open.length === 0) {
    if (deadline && opensAt! > deadline) {
      return { action: 'halt', reason: `the next maintenance window opens ${opensAt!.toISOString()}, after this batch's deadline ${deadline.toISOString()}; ${targets.length} instance(s) left for a later batch`, summary: summary(), progress };
    }
    return { action: 'wait', until: opensAt!.toISOString(), reason: `every remaining group is outside its maintenance window until ${opensAt!.toISOString()}`, progress };
  }

  const wave = progress.wave + 1;
  const items: WaveItem[] = pickWave(open, canaryPending ? 1 : budget).map((target) => ({
    executionName: childExecutionName(batchId, wave, target.instanceId),
    request: {
      group: target.group.name,
      instanceId: target.instanceId,
      reason: request.reason,
      trigger: request.trigger,
      dryRun: false,
      batchId,
      ...(target.group.cluster ? { cluster: target.group.cluster } : {}),
    },
  }));
  return { action: 'swap', wave, canary: canaryPending, budget, items, deferred, excluded, progress: { ...progress, wave } };
}

/**
 * A child execution's name: unique per batch (a hash of the whole batch id, since names are cut
 * to fit), wave and instance, and at most 80 characters. Step Functions keeps a name for 90 days,
 * so two batches must never produce the same one; a retried wave reuses it on purpose.
 */
export function childExecutionName(batchId: string, wave: number, instanceId: string): string {
  const hash = createHash('sha256').update(batchId).digest('hex').slice(0, 8);
  const suffix = `-${hash}-w${wave}-${instanceId}`;
  return `${batchId.slice(0, 80 - suffix.length)}${suffix}`;
}

/** One wave: the first targets in order, up to `size`, at most one per group (its lock serialises its swaps). */
function pickWave(targets: Target[], size: number): Target[] {
  const wave: Target[] = [];
  const used = new Set<string>();
  for (const target of targets) {
    if (wave.length >= size) break;
    if (used.has(target.group.name)) continue;
    used.add(target.group.name);
    wave.push(target);
  }
  return wave;
}

interface Target {
  instanceId: string;
  group: BatchGroup;
}

function selectTargets(request: BatchRequest, groups: BatchGroup[], progress: BatchProgress): { targets: Target[]; excluded: Excluded[] } {
  const wanted = request.instanceIds ? new Set(request.instanceIds) : undefined;
  const targets: Target[] = [];
  const excluded: Excluded[] = [];
  const tries = new Map<string, SwapAttempt[]>();
  for (const attempt of progress.attempts) tries.set(attempt.instanceId, [...(tries.get(attempt.instanceId) ?? []), attempt]);
  for (const group of groups) {
    for (const instance of [...group.instances].sort((a, b) => a.instanceId.localeCompare(b.instanceId))) {
      if (wanted && !wanted.has(instance.instanceId)) continue;
      // A named (drifted) instance is replaced whatever it runs on; otherwise only On-Demand goes to Spot.
      if (!wanted && instance.spot) continue;
      const exclude = (reason: string) => excluded.push({ instanceId: instance.instanceId, group: group.name, reason });
      if (instance.doNotDisrupt) {
        exclude('carries the do-not-disrupt tag');
        continue;
      }
      const previous = tries.get(instance.instanceId) ?? [];
      const last = previous.at(-1);
      if (last && last.outcome !== 'rolled-back' && last.outcome !== 'deferred') continue; // handled: swapped (gone) or skipped by the swap itself
      const failures = previous.filter((a) => a.outcome === 'rolled-back').length;
      const deferrals = previous.filter((a) => a.outcome === 'deferred').length;
      if (failures >= ATTEMPTS_PER_INSTANCE) {
        exclude(`its swap was rolled back ${failures} times; left as it is`);
        continue;
      }
      if (deferrals >= DEFERRALS_PER_INSTANCE) {
        exclude(`another swap held group ${group.name} ${deferrals} times; left for a later batch`);
        continue;
      }
      if (instance.lifecycleState !== 'InService') {
        exclude(`is ${instance.lifecycleState}, not InService`);
        continue;
      }
      targets.push({ instanceId: instance.instanceId, group });
    }
  }
  if (wanted) {
    const seen = new Set(groups.flatMap((g) => g.instances.map((i) => i.instanceId)));
    for (const id of wanted) if (!seen.has(id) && !tries.has(id)) excluded.push({ instanceId: id, group: '-', reason: 'not in any group of the batch' });
  }
  return { targets, excluded };
}

function dryRunReport(targets: Target[], excluded: Excluded[], groups: BatchGroup[], budget: number, canary: boolean, now: Date): DryRunReport {
  const waves: DryRunReport['waves'] = [];
  // The waves the batch would run, picked as the batch picks them.
  for (let queue = targets; queue.length; ) {
    const wave = pickWave(queue, canary && waves.length === 0 ? 1 : budget);
    waves.push(wave.map((t) => ({ instanceId: t.instanceId, group: t.group.name })));
    queue = queue.filter((t) => !wave.includes(t));
  }
  const windows = groups
    .filter((g) => g.window)
    .map((g) => {
      const state = windowState(g.window!.spec, now);
      return { group: g.name, window: g.window!.name, open: state.open, ...(state.open ? { closesAt: state.closesAt.toISOString() } : { opensAt: state.opensAt.toISOString() }) };
    });
  return { budget, canary, waves, excluded, windows };
}

/**
 * Folds a wave's results (the Map's output: each item's request, with the child execution's
 * status and output, or the error it failed with) into the batch's progress.
 */
export function applyResults(progress: BatchProgress, results: WaveResult[]): BatchProgress {
  const attempts = results.map((r): SwapAttempt => {
    const base = { instanceId: r.request.instanceId!, group: r.request.group, wave: progress.wave };
    if (!r.execution) {
      const reason = childError(r.error);
      return { ...base, outcome: reason.startsWith('Swap.LockHeld') ? 'deferred' : 'rolled-back', reason };
    }
    // The swap ends with its outcome (see NodeSwap's recorders): only a completed swap counts as one.
    const output = (r.execution.output ?? {}) as { outcome?: SwapOutcome; reason?: string; replacementInstanceId?: string };
    if (output.outcome === 'succeeded') return { ...base, outcome: 'swapped', ...(output.replacementInstanceId ? { replacement: output.replacementInstanceId } : {}) };
    if (output.outcome === 'dry-run') return { ...base, outcome: 'dry-run' };
    return { ...base, outcome: 'skipped', reason: output.reason ?? `the swap ended ${output.outcome ?? 'without an outcome'}` };
  });
  return { ...progress, attempts: [...progress.attempts, ...attempts] };
}

export interface WaveResult {
  request: SwapRequest;
  execution?: { status: string; output?: unknown };
  error?: { Error?: string; Cause?: string };
}

/** The reason a child swap failed: its own error, out of the `States.TaskFailed` cause. */
function childError(error: WaveResult['error']): string {
  try {
    const cause = JSON.parse(error?.Cause ?? '{}') as { Error?: string; Cause?: string };
    if (cause.Error) return `${cause.Error}${cause.Cause ? `: ${cause.Cause.slice(0, 300)}` : ''}`;
  } catch {
    // not JSON: use it as it is
  }
  return `${error?.Error ?? 'failed'}${error?.Cause ? `: ${error.Cause.slice(0, 300)}` : ''}`;
}
