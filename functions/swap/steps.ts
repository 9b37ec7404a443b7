import type { Gatekeeper } from '../gatekeeper/gatekeeper';
import type { EventPublisher } from '../shared/bus';
import type { LedgerWriter } from '../ledger/store';
import type { EnvironmentClass } from '../shared/environments';
import { RetryableError, TerminalError, UnknownAccountError, causeMessage } from '../shared/errors';
import { CAPACITY_ERRORS, type SwapAws } from './aws';
import { type CompensationAction, decideCompensation } from './compensate';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import type { LockStore } from '../shared/locks';
import { type Candidate, type LaunchResult, LaunchResultSchema, StepErrorSchema, type SwapOutcome, SwapOutcomeSchema, type SwapPlan, SwapPlanSchema, type SwapRequest, SwapRequestSchema } from './model';
import { ExecutionStatusChangeSchema, findHeldWork } from './reaper';
import { planSwap } from './plan';
import { plainJson } from '../shared/validation';

export class NoSpotCapacityError extends TerminalError {
  override name = 'Terminal.NoSpotCapacity';
}
export class PreconditionFailedError extends TerminalError {
  override name = 'Terminal.PreconditionFailed';
}
export class PlanStaleError extends TerminalError {
  override name = 'Terminal.PlanStale';
}
export class OldInstanceDetachingError extends RetryableError {
  override name = 'Retryable.OldInstanceDetaching';
}
export class GroupNotFoundError extends TerminalError {
  override name = 'Terminal.GroupNotFound';
}

export interface SwapDeps {
  aws: SwapAws;
  /** The group locks, as the ReapSwap workflow reads them. */
  locks: Pick<LockStore, 'held'>;
  gatekeeper: Pick<Gatekeeper, 'rank' | 'recordInsufficientCapacity'>;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  region: string;
  /** The home account, whose groups are swapped. */
  account: string;
  /** Its environment class from the config; undefined when the config does not list it (see homeEnvironment). */
  environment: EnvironmentClass | undefined;
  dryRunDefault: boolean;
  clock: () => Date;
  maxCandidates?: number;
  /** kubernetes.clusters by name, and swaps.groups' cluster per group (no clusters: no Kubernetes swaps). */
  kubernetes?: { clusters: readonly string[]; groupClusters?: Readonly<Record<string, string>> };
}

/**
 * The home account's environment class. An account the config does not list is refused, never
 * assumed PROD: what a launch failure there does depends on the class, which only the config knows.
 */
export function homeEnvironment(deps: Pick<SwapDeps, 'account' | 'environment'>): EnvironmentClass {
  if (!deps.environment) throw new UnknownAccountError(`home account ${deps.account} is not in Fleetwarden's config (fleetwarden.accounts): its environment class is unknown, so its groups are not swapped`);
  return deps.environment;
}

export async function planStep(request: SwapRequest, executionId: string, deps: SwapDeps): Promise<SwapPlan> {
  // Refused before anything is read, locked or launched.
  homeEnvironment(deps);
  const group = await deps.aws.group(request.group);
  if (!group) throw new GroupNotFoundError(`Auto Scaling group ${request.group} not found in ${deps.region}`);
  const zones = await deps.aws.zoneIds();
  // A group in a VPC launches into its subnets' zones; one placed by zone only, into its zones.
  const azNames = Object.keys(group.subnetsByAz).length ? Object.keys(group.subnetsByAz) : group.azNames;
  const pools = azNames.flatMap((azName) => group.instanceTypes.map((instanceType) => ({ region: deps.region, azId: zones.get(azName) ?? '', instanceType, azName })));
  const ranked = await deps.gatekeeper.rank(pools.filter((p) => p.azId).map(({ azName: _, ...pool }) => pool));
  const nameOf = new Map([...zones].map(([name, id]) => [id, name]));
  const candidates: Candidate[] = ranked
    .filter((r) => r.allowed)
    .slice(0, deps.maxCandidates ?? 6)
    .map((r) => {
      const azName = nameOf.get(r.pool.azId)!;
      return { azName, azId: r.pool.azId, instanceType: r.pool.instanceType, key: r.key, score: Number(r.score.toFixed(4)), subnetId: group.subnetsByAz[azName] };
    });
  return planSwap({ request, executionId, region: deps.region, group, candidates, dryRun: request.dryRun ?? deps.dryRunDefault, now: deps.clock(), kubernetes: deps.kubernetes });
}

/**
 * Launches the Spot replacement in the best allowed pool, falling through the ranked pools on
 * capacity errors (each blocks its pool for a few minutes through the gatekeeper). A retry finds
 * the replacement it already launched by its tag instead of launching a second one.
 */
export async function launchStep(plan: SwapPlan, deps: SwapDeps): Promise<LaunchResult> {
  const [existing] = await deps.aws.replacements(plan.executionId);
  if (existing) return { instanceId: existing, pool: 'unknown (found by tag)', reused: true, blockedPools: [] };
  // The plan was made before the lock: if another swap changed the group meanwhile, do not build on it.
  const group = await deps.aws.group(plan.group);
  if (!group || group.max !== (plan.original.max) || group.desired !== plan.original.desired) {
    throw new PlanStaleError(`group ${plan.group} changed after the plan (MaxSize ${group?.max}, desired ${group?.desired}; planned ${plan.original.max}/${plan.original.desired})`);
  }
  const blockedPools: string[] = [];
  for (const candidate of plan.candidates) {
    try {
      const instanceId = await deps.aws.launch(plan, candidate);
      return { instanceId, pool: candidate.key, reused: false, blockedPools };
    } catch (error) {
      if (!CAPACITY_ERRORS.includes((error as Error).name)) throw error;
      blockedPools.push(candidate.key);
      await deps.gatekeeper.recordInsufficientCapacity(
        { region: plan.region, azId: candidate.azId, instanceType: candidate.instanceType },
        { eventId: `${plan.executionId}#${candidate.key}`, account: deps.account, environment: homeEnvironment(deps) },
      );
    }
  }
  throw new NoSpotCapacityError(`no Spot capacity in any allowed pool (${blockedPools.join(', ') || 'none allowed'})`);
}

/** Re-checks, right before terminating, that the old instance left the group and N are serving without it. */
export async function terminateOldStep(plan: SwapPlan, launch: LaunchResult, deps: SwapDeps): Promise<{ terminated: string }> {
  const group = await deps.aws.group(plan.group);
  const old = plan.oldInstanceId!;
  const inService = (group?.instances ?? []).filter((i) => i.lifecycleState === 'InService');
  const stillThere = group?.instances.find((i) => i.instanceId === old);
  if (stillThere?.lifecycleState === 'Detaching') throw new OldInstanceDetachingError(`${old} is still detaching from ${plan.group}`);
  if (stillThere) throw new PreconditionFailedError(`${old} is still in group ${plan.group}`);
  if (!inService.some((i) => i.instanceId === launch.instanceId)) throw new PreconditionFailedError(`replacement ${launch.instanceId} is not InService`);
  if (inService.length < plan.original.desired) {
    throw new PreconditionFailedError(`only ${inService.length} of ${plan.original.desired} instances InService without ${old}`);
  }
  await deps.aws.terminate(old);
  return { terminated: old };
}

export async function compensateStep(plan: SwapPlan, deps: SwapDeps): Promise<{ actions: CompensationAction[] }> {
  const seen = await deps.aws.observe(plan);
  const actions = decideCompensation(plan, seen);
  // Still Detaching: nothing is applied and the lock is kept; the state machine retries this step.
  const wait = actions.find((a) => a.kind === 'wait-for-old-detached');
  if (wait) throw new OldInstanceDetachingError(`${wait.instanceId} is still detaching from ${plan.group}; the rollback waits for it`);
  for (const action of actions) await deps.aws.apply(plan, action);
  return { actions };
}

/** What a swap execution outputs (and a rolled-back one fails with, as its cause). */
export interface SwapRecord {
  outcome: SwapOutcome;
  executionId: string;
  group: string | null;
  oldInstanceId: string | null;
  replacementInstanceId: string | null;
  reason: string;
  entries: number;
}

/**
 * The event each outcome publishes (source fleetwarden.swap): it says what happened, so only a
 * swap whose changes were undone is announced as rolled back; a refused or unplannable swap
 * changed nothing and says so.
 */
export const SWAP_OUTCOME_EVENTS: Readonly<Record<SwapOutcome, string>> = {
  succeeded: 'SwapSucceeded',
  'rolled-back': 'SwapRolledBack',
  skipped: 'SwapSkipped',
  'dry-run': 'SwapPlanned',
  'lock-held': 'SwapLockHeld',
  failed: 'SwapFailed',
};

/** The steps in the order they run, with the execution-state key each writes its result to. */
export const SWAP_STEPS = [
  ['plan', 'swap.planned'],
  // Kubernetes swaps only (plan.cluster): the old node may be disrupted (or why not).
  ['nodeCheck', 'swap.old-node-checked'],
  ['lock', 'swap.locked'],
  ['suspended', 'swap.processes-suspended'],
  ['launch', 'swap.replacement-launched'],
  ['statusChecks', 'swap.replacement-healthy'],
  ['replacementNode', 'swap.replacement-node-ready'],
  ['raisedMax', 'swap.max-size-raised'],
  ['attached', 'swap.replacement-attached'],
  ['inService', 'swap.replacement-in-service'],
  ['drained', 'swap.old-node-drained'],
  ['detached', 'swap.old-detached'],
  ['terminated', 'swap.old-terminated'],
  ['restoredMax', 'swap.max-size-restored'],
  ['resumed', 'swap.processes-resumed'],
  ['released', 'swap.lock-released'],
  ['nodeRollback', 'swap.nodes-restored'],
  // The Kubernetes half of the rollback failed for good (the AWS half still ran; operators are alerted).
  ['nodeRollbackError', 'swap.nodes-restore-failed'],
  ['compensation', 'swap.rolled-back'],
] as const;

/**
 * Writes every step the execution went through into the ledger (deduplicated by execution and
 * step, so a retried recorder appends nothing twice) and announces the outcome.
 */
export async function recordStep(outcome: SwapOutcome, state: Record<string, unknown>, executionId: string, deps: SwapDeps): Promise<SwapRecord> {
  const plan = state.plan as SwapPlan | undefined;
  const launch = state.launch as LaunchResult | undefined;
  const error = state.error as { Error?: string; Cause?: string } | undefined;
  const nodeCheck = state.nodeCheck as { allowed?: boolean; reason?: string } | undefined;
  const subject = plan ? `${plan.region}/${plan.group}` : 'unknown-group';
  // Every entry and event of a batch's swap names the batch.
  const batch = plan?.batchId ? { batchId: plan.batchId } : {};
  const withBatch = (detail: unknown) => (detail && typeof detail === 'object' && !Array.isArray(detail) ? { ...detail, ...batch } : detail);
  const skipReason = plan?.action === 'skip' ? plan.skipReason : nodeCheck?.allowed === false ? nodeCheck.reason : undefined;
  let entries = 0;
  for (const [key, action] of SWAP_STEPS) {
    if (state[key] === undefined) continue;
    const raw =
      key === 'plan'
        ? summarizePlan(plan!)
        : key === 'launch'
          ? launch
          : key === 'compensation'
            ? { ...(state[key] as object), error }
            : state[key];
    const detail = withBatch(raw);
    const reason =
      key === 'plan'
        ? plan!.action === 'skip'
          ? `nothing to swap: ${plan!.skipReason}`
          : `swap ${plan!.oldInstanceId} for Spot (${(state.request as SwapRequest | undefined)?.reason ?? 'swap'})`
        : key === 'nodeCheck'
          ? nodeCheck?.allowed === false
            ? `the old node may not be disrupted: ${nodeCheck.reason}`
            : `the old node may be disrupted: ${nodeCheck?.reason ?? ''}`
        : key === 'compensation'
          ? `rolled back after ${error?.Error ?? 'an error'}: ${truncate(causeMessage(error?.Cause))}`
          : key === 'nodeRollbackError'
            ? `the nodes could not be put back: ${(raw as { Error?: string }).Error}: ${truncate((raw as { Cause?: string }).Cause)}`
            : `step ${action} of swap ${executionId}`;
    await deps.ledger.append({ actor: 'node-swap', action, subject, reason, eventId: executionId, after: plainJson(detail) }, { dedupeKey: `${executionId}#${action}` });
    entries += 1;
  }
  await deps.ledger.append(
    {
      actor: 'node-swap',
      action: `swap.${outcome}`,
      subject,
      reason: outcome === 'rolled-back' || outcome === 'failed' ? `${error?.Error}: ${truncate(causeMessage(error?.Cause))}` : outcome === 'skipped' && skipReason ? `swap skipped: ${skipReason}` : `swap ${outcome}`,
      eventId: executionId,
      after: plainJson({ replacement: launch?.instanceId ?? null, old: plan?.oldInstanceId ?? null, ...batch }),
    },
    { dedupeKey: `${executionId}#swap.${outcome}` },
  );
  const reason = outcome === 'succeeded' ? undefined : error ? `${error.Error}: ${truncate(causeMessage(error.Cause))}` : skipReason;
  await deps.publisher.publish([
    {
      detailType: SWAP_OUTCOME_EVENTS[outcome],
      detail: plainJson<Record<string, unknown>>({
        executionId,
        outcome,
        group: plan?.group,
        region: plan?.region,
        oldInstanceId: plan?.oldInstanceId,
        replacementInstanceId: launch?.instanceId,
        pool: launch?.pool,
        batchId: plan?.batchId ?? undefined,
        cluster: plan?.cluster,
        reason,
      }),
    },
  ]);
  // The execution's output (its Succeed states output this): what a batch, the CLI or the console reads.
  return { outcome, executionId, group: plan?.group ?? null, oldInstanceId: plan?.oldInstanceId ?? null, replacementInstanceId: launch?.instanceId ?? null, reason: reason ?? `swap ${outcome}`, entries: entries + 1 };
}

function summarizePlan(plan: SwapPlan) {
  return { action: plan.action, skipReason: plan.skipReason, old: plan.oldInstanceId, trigger: plan.trigger, cluster: plan.cluster, original: plan.original, raisedMax: plan.raisedMax, candidates: plan.candidates.map((c) => c.key), dryRun: plan.dryRun };
}
const truncate = (s: string | undefined) => (s ?? '').slice(0, 500);

/**
 * Input of the swap's logic steps; the state machine passes `step` and what that step needs.
 * @example { "step": "launch", "plan": { "action": "swap", "group": "web", … } }
 */
export const SwapStepInputSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('plan'), request: SwapRequestSchema, executionId: z.string().min(1) }),
  z.strictObject({ step: z.literal('launch'), plan: SwapPlanSchema }),
  z.strictObject({ step: z.literal('terminate-old'), plan: SwapPlanSchema, launch: LaunchResultSchema }),
  z.strictObject({ step: z.literal('compensate'), plan: SwapPlanSchema, error: StepErrorSchema.optional() }),
  z.strictObject({ step: z.literal('record'), outcome: SwapOutcomeSchema, executionId: z.string().min(1), state: z.record(z.string(), z.unknown()) }),
  // Step Functions' "Execution Status Change" event of a swap execution (the ReapSwap workflow).
  z.strictObject({ step: z.literal('find-held-work'), event: ExecutionStatusChangeSchema }),
]);
export type SwapStepInput = z.infer<typeof SwapStepInputSchema>;

/** Swap outcomes as CloudWatch metrics (EMF, namespace Fleetwarden). */
const OUTCOME_METRICS: Readonly<Record<SwapOutcome, string>> = { succeeded: 'SwapsSucceeded', 'rolled-back': 'SwapsRolledBack', skipped: 'SwapsSkipped', 'dry-run': 'SwapsDryRun', 'lock-held': 'SwapsLockHeld', failed: 'SwapsFailed' };

/** One logic step of NodeSwap or ReapSwap, counted by one metric: swaps planned, launched, rolled back, by outcome. */
export async function runSwapStep(input: SwapStepInput, deps: SwapDeps, metrics: Pick<Metrics, 'addMetric'>): Promise<unknown> {
  const counted = async <R>(metric: string, work: Promise<R>, value: (result: R) => number = () => 1): Promise<R> => {
    const result = await work;
    metrics.addMetric(metric, 'Count', value(result));
    return result;
  };
  switch (input.step) {
    case 'plan':
      return counted('SwapsPlanned', planStep(input.request, input.executionId, deps));
    case 'launch':
      return counted('SpotReplacementsLaunched', launchStep(input.plan, deps));
    case 'terminate-old':
      return counted('OldInstancesTerminated', terminateOldStep(input.plan, input.launch, deps));
    case 'compensate':
      return counted('SwapRollbacks', compensateStep(input.plan, deps));
    case 'record':
      return counted(OUTCOME_METRICS[input.outcome], recordStep(input.outcome, input.state, input.executionId, deps));
    case 'find-held-work':
      return counted('StoppedSwapsFound', findHeldWork(input.event, { region: deps.region, locks: deps.locks }), (held) => (held.action === 'roll-back' ? 1 : 0));
  }
}
