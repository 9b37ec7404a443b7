import type { LedgerWriter } from '../ledger/store';
import type { EventPublisher } from '../shared/bus';
import type { AccountDirectory } from '../shared/account-directory';
import { UnknownAccountError } from '../shared/errors';
import { type Target, forEachTarget, recordFailedTargets, serialQueue } from '../shared/fan-out';
import type { Notifier } from '../shared/notifications';
import type { EnforcementEvent } from './events';
import { FlagConflictError, type FlagStore } from './flag-store';
import { type Flag, type FlagTransition, afterStart, flagKey, graceOver, isOpen, onGraceOver, onObserved, planRun, startAction } from './flags';
import type { InstanceActions, InstanceDirectory } from './instances';
import type { EnforcementPolicy, ObservedInstance } from './policy';

export interface EnforcerDeps {
  instances: InstanceDirectory & InstanceActions;
  flags: FlagStore;
  ledger: LedgerWriter;
  accounts: AccountDirectory;
  policy: EnforcementPolicy;
  publisher: EventPublisher;
  notifier: Notifier;
  clock: () => Date;
  actor: string;
  dryRun: boolean;
}

/** What a check or an act did to one instance's flag. */
export interface FlagOutcome {
  instanceKey: string;
  action: FlagTransition['action'] | 'unchanged';
  state?: Flag['state'];
  /** The flag as it is now (after the transition), if there is one. */
  flag?: Flag;
}

/** The event each flag transition publishes on the bus (lib/notifiable-events.ts imports it for webhooks). */
export const DETAIL_TYPES: Record<FlagTransition['action'], string | undefined> = {
  'instance.flagged': 'InstanceFlagged',
  'instance.flag-creator-recorded': 'InstanceFlagCreatorRecorded',
  'instance.flag-resolved': 'InstanceFlagResolved',
  'instance.flag-left': 'InstanceFlagLeft',
  'instance.action-started': undefined,
  'instance.stopped': 'InstanceStopped',
  'instance.terminated': 'InstanceTerminated',
};

/** Writes a transition (flag and ledger entry at once), then announces it. */
async function record(transition: FlagTransition, eventId: string, deps: EnforcerDeps): Promise<void> {
  const { duplicate } = await deps.flags.record(transition, eventId, deps.actor);
  if (duplicate) return;
  const flag = transition.after;
  const detailType = DETAIL_TYPES[transition.action];
  if (detailType) {
    await deps.publisher.publish([
      {
        detailType,
        detail: {
          eventId,
          instanceKey: flag.instanceKey,
          account: flag.account,
          region: flag.region,
          instanceId: flag.instanceId,
          environment: flag.environment,
          state: flag.state,
          reason: transition.reason,
          flaggedAt: flag.flaggedAt,
          graceUntil: flag.graceUntil,
          ...(flag.creator ? { creator: flag.creator } : {}),
        },
      },
    ]);
  }
  if (transition.action === 'instance.flagged' || transition.act) {
    const what = transition.action === 'instance.flagged' ? 'flagged' : flag.outcome;
    await deps.notifier.notify(
      `Fleetwarden ${what} ${flag.instanceId} in ${flag.environment} account ${flag.account}`,
      [
        `${flag.instanceId} in account ${flag.account} (${flag.environment}), ${flag.region}: ${transition.reason}.`,
        `Launched by: ${flag.creator ?? 'not known yet (the CloudTrail record has not arrived)'}.`,
        transition.action === 'instance.flagged'
          ? `Grace until ${flag.graceUntil}; then: ${deps.dryRun ? 'dry run, nothing is done' : deps.policy.actions[flag.environment]}. Tag it ${deps.policy.protectedTag} to exempt it, or make it authorized.`
          : `Event ${eventId}.`,
      ].join('\n'),
    );
  }
}

/**
 * Decides and records one instance's transition; when another writer changed the flag since it
 * was read, reads it again and decides again (at most three times).
 */
async function settle(instanceKey: string, known: Flag | undefined, decide: (current: Flag | undefined) => FlagTransition | undefined, eventId: string, deps: EnforcerDeps): Promise<FlagOutcome> {
  let current = known;
  for (let attempt = 1; ; attempt++) {
    const transition = decide(current);
    if (!transition) return { instanceKey, action: 'unchanged', state: current?.state, flag: current };
    try {
      await record(transition, eventId, deps);
      return { instanceKey, action: transition.action, state: transition.after.state, flag: transition.after };
    } catch (error) {
      if (!(error instanceof FlagConflictError) || attempt === 3) throw error;
      current = await deps.flags.get(instanceKey);
    }
  }
}

async function environmentOf(account: string, deps: EnforcerDeps) {
  const environment = await deps.accounts.environmentOf(account);
  if (!environment) throw new UnknownAccountError(`account ${account} is not one of the configured accounts`);
  return environment;
}

/**
 * The event path: an instance entered `running`, or a RunInstances call names who launched it.
 * Each named instance is described in its own account and checked now; the creator is recorded
 * on its flag whichever of the two events comes first.
 */
export async function checkEvent(event: EnforcementEvent, deps: EnforcerDeps): Promise<FlagOutcome[]> {
  const environment = await environmentOf(event.account, deps);
  const observed = await deps.instances.describe(event.account, event.region, event.instanceIds);
  const outcomes: FlagOutcome[] = [];
  for (const instanceId of event.instanceIds) {
    const key = { account: event.account, region: event.region, instanceId };
    const instanceKey = flagKey(event.account, event.region, instanceId);
    const ctx = { eventId: event.eventId, now: deps.clock(), environment, policy: deps.policy, creator: event.creator };
    const current = await deps.flags.get(instanceKey);
    outcomes.push(await settle(instanceKey, current, (c) => onObserved(c, key, observed.get(instanceId), ctx), event.eventId, deps));
  }
  return outcomes;
}

/**
 * What the sweep of a batch of account-regions reports to the sweep workflow. Kept small and
 * summed over the batch: the workflow's Map collects one per batch into its 256 KB state.
 */
export interface SweepReport {
  targets: number;
  /** Account-regions that could not be swept this run, with the error. */
  failed: { account: string; region: string; error: string }[];
  /** Instances pending or running. */
  instances: number;
  /** DescribeInstances pages read. */
  pages: number;
  flagged: number;
  resolved: number;
  /** Open flags whose grace is over, by environment class of the flag. */
  expiredByEnvironment: Partial<Record<Flag['environment'], number>>;
  /** The first of them (at most EXPIRED_PER_BATCH): the acts of this run. */
  expired: { instanceKey: string; environment: Flag['environment'] }[];
}

/** Enough for a run's acts (the circuit breaker caps them), small enough for 1,000 batch reports in 256 KB. */
export const EXPIRED_PER_BATCH = 10;

export const emptyReport = (): SweepReport => ({ targets: 0, failed: [], instances: 0, pages: 0, flagged: 0, resolved: 0, expiredByEnvironment: {}, expired: [] });

/** Adds one report into another (the batch's, or the run's). */
export function addReport(into: SweepReport, report: SweepReport): SweepReport {
  into.targets += report.targets;
  into.failed.push(...report.failed);
  into.instances += report.instances;
  into.pages += report.pages;
  into.flagged += report.flagged;
  into.resolved += report.resolved;
  for (const [environment, n] of Object.entries(report.expiredByEnvironment)) {
    const key = environment as Flag['environment'];
    into.expiredByEnvironment[key] = (into.expiredByEnvironment[key] ?? 0) + (n ?? 0);
  }
  into.expired.push(...report.expired.slice(0, Math.max(0, EXPIRED_PER_BATCH - into.expired.length)));
  return into;
}

/** The deps with flag transitions recorded one at a time (reads still go on in parallel). */
function oneWriterAtATime(deps: EnforcerDeps): EnforcerDeps {
  const serial = serialQueue();
  const flags: FlagStore = Object.create(deps.flags) as FlagStore;
  flags.record = (transition, eventId, actor) => serial(() => deps.flags.record(transition, eventId, actor));
  return { ...deps, flags };
}

/** Sweeps a batch of account-regions, a few at once; one that fails is reported failed for this run. */
export async function sweepBatch(request: { sweepId: string; targets: Target[] }, given: EnforcerDeps): Promise<SweepReport> {
  const deps = oneWriterAtATime(given);
  const { results, failed } = await forEachTarget(request.targets, (target) => sweepTarget({ ...target, sweepId: request.sweepId }, deps));
  const total = results.reduce(addReport, emptyReport());
  return addReport(total, { ...emptyReport(), targets: failed.length, failed });
}

/**
 * The backstop sweep of one account and region: every pending or running instance is checked
 * (what the event path missed is flagged), open flags whose instance is gone or authorized
 * resolve, and the flags whose grace is over are reported for this run's acts. Writes only what
 * changed: a second sweep over an unchanged fleet writes nothing.
 */
export async function sweepTarget(target: { account: string; region: string; sweepId: string }, deps: EnforcerDeps): Promise<SweepReport> {
  const { account, region, sweepId } = target;
  const environment = await environmentOf(account, deps);
  const now = deps.clock();
  const open = new Map((await deps.flags.openIn(account, region)).map((f) => [f.instanceId, f]));
  const report: SweepReport = { ...emptyReport(), targets: 1 };
  const ctx = { eventId: sweepId, now, environment, policy: deps.policy };
  const seen = new Set<string>();
  // The open flags as this sweep leaves them: a flag raised now is acted on in this run when
  // its grace is already over (a grace of 0).
  const keep = (instanceId: string, outcome: FlagOutcome) => {
    if (outcome.flag && isOpen(outcome.flag)) open.set(instanceId, outcome.flag);
    else open.delete(instanceId);
  };
  const count = (outcome: FlagOutcome) => {
    if (outcome.action === 'instance.flagged') report.flagged += 1;
    if (outcome.action === 'instance.flag-resolved') report.resolved += 1;
  };
  for await (const page of deps.instances.pages(account, region)) {
    report.pages += 1;
    for (const instance of page) {
      seen.add(instance.instanceId);
      report.instances += 1;
      const current = open.get(instance.instanceId);
      // Unflagged and authorized (the most common case): decided without a read or a write.
      if (!current && onObserved(undefined, instance, instance, ctx) === undefined) continue;
      const instanceKey = flagKey(account, region, instance.instanceId);
      const outcome = await settle(instanceKey, current, (c) => onObserved(c, instance, instance, ctx), sweepId, deps);
      count(outcome);
      keep(instance.instanceId, outcome);
    }
  }
  // Open flags whose instance the listing did not show: stopped, or gone.
  const missing = [...open.values()].filter((f) => !seen.has(f.instanceId));
  if (missing.length) {
    const described = await deps.instances.describe(account, region, missing.map((f) => f.instanceId));
    for (const flag of missing) {
      const outcome = await settle(flag.instanceKey, flag, (c) => onObserved(c, flag, described.get(flag.instanceId), ctx), sweepId, deps);
      count(outcome);
      keep(flag.instanceId, outcome);
    }
  }
  for (const flag of open.values()) {
    if (!graceOver(flag, now)) continue;
    report.expiredByEnvironment[flag.environment] = (report.expiredByEnvironment[flag.environment] ?? 0) + 1;
    if (report.expired.length < EXPIRED_PER_BATCH) report.expired.push({ instanceKey: flag.instanceKey, environment: flag.environment });
  }
  return report;
}

/**
 * Acts on one flag whose grace is over, after re-checking it right before: the instance still
 * runs, is still unauthorized, not protected, and its account still in the same environment
 * class. Records `acting` before the EC2 call and the result after it.
 */
export async function actOnFlag(request: { instanceKey: string; sweepId: string }, deps: EnforcerDeps): Promise<FlagOutcome> {
  const flag = await deps.flags.get(request.instanceKey);
  if (!flag) return { instanceKey: request.instanceKey, action: 'unchanged' };
  const now = deps.clock();
  const observed: ObservedInstance | undefined = (await deps.instances.describe(flag.account, flag.region, [flag.instanceId])).get(flag.instanceId);
  const ctx = { now, policy: deps.policy, environment: await deps.accounts.environmentOf(flag.account), dryRun: deps.dryRun };
  const transition = onGraceOver(flag, observed, ctx);
  if (!transition) return { instanceKey: flag.instanceKey, action: 'unchanged', state: flag.state };
  if (!transition.act) {
    await record(transition, request.sweepId, deps);
    return { instanceKey: flag.instanceKey, action: transition.action, state: transition.after.state };
  }
  let started = flag;
  if (flag.state !== 'acting') {
    const intent = startAction(flag, transition);
    await record(intent, request.sweepId, deps);
    started = intent.after;
  }
  if (transition.act === 'stop') await deps.instances.stop(flag.account, flag.region, flag.instanceId);
  else await deps.instances.terminate(flag.account, flag.region, flag.instanceId);
  const done = afterStart(transition, started);
  await record(done, request.sweepId, deps);
  return { instanceKey: flag.instanceKey, action: done.action, state: done.after.state };
}

/** What the sweep workflow does after the sweep: act on these flags, or nothing (tripped). */
export interface ActPlan {
  trip: boolean;
  acting: string[];
  planned: number;
  fleet: number;
  reason?: string;
}

/**
 * After every batch was swept: records and announces the account-regions that failed, then the
 * circuit breaker over the run's planned actions (tripped: recorded, announced, notified, and no
 * flag acted on), and announces the run's counts.
 */
export async function planActions(request: { sweepId: string; reports: SweepReport[] }, deps: EnforcerDeps): Promise<ActPlan> {
  const run = request.reports.reduce(addReport, emptyReport());
  await recordFailedTargets(run.failed, { runId: request.sweepId, idField: 'sweepId', action: 'enforcement.sweep-failed', detailType: 'SweepTargetFailed', what: 'swept' }, deps);
  const plan = planRun(run.expiredByEnvironment, run.expired, run.instances, deps.policy);
  const summary = { sweepId: request.sweepId, targets: run.targets, failed: run.failed.length, instances: run.instances, pages: run.pages, flagged: run.flagged, resolved: run.resolved, planned: plan.planned, tripped: plan.trip };
  if (plan.trip) {
    const { duplicate } = await deps.ledger.append(
      { actor: deps.actor, action: 'enforcement.circuit-breaker-tripped', subject: 'enforcement', reason: `${plan.reason}: nothing acted on, flags kept for the next run`, eventId: request.sweepId, after: summary },
      { dedupeKey: `${request.sweepId}#circuit-breaker` },
    );
    if (!duplicate) {
      await deps.publisher.publish([{ detailType: 'CircuitBreakerTripped', detail: { ...summary, reason: plan.reason } }]);
      await deps.notifier.notify('Fleetwarden enforcement circuit breaker tripped', `${plan.reason}. Nothing was acted on in sweep ${request.sweepId}; the flags stay for the next run.`);
    }
  }
  await deps.publisher.publish([{ detailType: 'SweepChecked', detail: summary }]);
  return { trip: plan.trip, acting: plan.acting.map((f) => f.instanceKey), planned: plan.planned, fleet: plan.fleet, ...(plan.trip ? { reason: plan.reason } : {}) };
}
