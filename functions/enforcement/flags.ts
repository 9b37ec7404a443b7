import type { EnvironmentClass } from '../shared/environments';
import { circuitBreaker } from '../shared/circuit-breaker';
import { type EnforcementAction, type EnforcementPolicy, type ObservedInstance, authorize, inScope, isProtected } from './policy';

/**
 * A flag is the enforcer's memory of one unauthorized instance, one item in the authorizations
 * table keyed by account, region and instance id:
 *
 *   flagged --(grace over, re-checked)--> acting --(stop/terminate)--> acted
 *      |                              \-> left (protected, action none, dry run, class changed)
 *      \--(authorized, stopped or gone)--> resolved          (left flags resolve the same way)
 *
 * `acting` is recorded before the call to EC2 and `acted` after it: a run that dies between the
 * two leaves an open `acting` flag, and the next run re-checks and finishes it (stop and
 * terminate are idempotent), so no action is ever taken without its ledger entry.
 *
 * Authorized instances are never written: a check that finds nothing to change writes nothing.
 * Every transition is one ledger entry written in the same transaction as the flag.
 */
export type FlagState = 'flagged' | 'acting' | 'left' | 'acted' | 'resolved';
export const OPEN_STATES: readonly FlagState[] = ['flagged', 'acting', 'left'];

export interface Flag {
  instanceKey: string;
  account: string;
  region: string;
  instanceId: string;
  environment: EnvironmentClass;
  state: FlagState;
  flaggedAt: string;
  graceUntil: string;
  reason: string;
  /** Who launched the instance, from the CloudTrail RunInstances call once it arrived. */
  creator?: string;
  /** The event that raised the flag. */
  flagEventId: string;
  /** What was decided when the grace was over (acted or left), or how the flag resolved. */
  outcome?: string;
  closedAt?: string;
  version: number;
}

export const flagKey = (account: string, region: string, instanceId: string) => `${account}/${region}/${instanceId}`;
export const isOpen = (flag: Flag | undefined): flag is Flag => !!flag && OPEN_STATES.includes(flag.state);

/** A change to one flag and the ledger entry that explains it. */
export interface FlagTransition {
  action:
    | 'instance.flagged'
    | 'instance.flag-creator-recorded'
    | 'instance.flag-resolved'
    | 'instance.flag-left'
    | 'instance.action-started'
    | 'instance.stopped'
    | 'instance.terminated';
  before?: Flag;
  after: Flag;
  reason: string;
  /** Set when the transition is an action on the instance: do it, then record. */
  act?: Exclude<EnforcementAction, 'none'>;
}

export interface CheckContext {
  eventId: string;
  now: Date;
  environment: EnvironmentClass;
  policy: EnforcementPolicy;
  creator?: string;
}

const resolve = (flag: Flag, reason: string, now: Date): FlagTransition => ({
  action: 'instance.flag-resolved',
  before: flag,
  after: { ...flag, state: 'resolved', outcome: reason, closedAt: now.toISOString(), version: flag.version + 1 },
  reason,
});

/**
 * Pure: what an observation of an instance (from an event or a sweep) changes. `observed` is
 * undefined when the instance no longer exists.
 */
export function onObserved(current: Flag | undefined, key: { account: string; region: string; instanceId: string }, observed: ObservedInstance | undefined, ctx: CheckContext): FlagTransition | undefined {
  if (!observed || !inScope(observed)) {
    return isOpen(current) ? resolve(current, observed ? `instance is ${observed.state}` : 'instance no longer exists', ctx.now) : undefined;
  }
  const authorization = authorize(observed, ctx.policy);
  if (authorization.authorized) return isOpen(current) ? resolve(current, `authorized by ${authorization.by}`, ctx.now) : undefined;
  // A closed flag (resolved, acted) is replaced by a new one: the instance runs unauthorized again.
  const priorVersion = current?.version ?? 0;
  if (isOpen(current)) {
    if (!current.creator && ctx.creator) {
      return { action: 'instance.flag-creator-recorded', before: current, after: { ...current, creator: ctx.creator, version: current.version + 1 }, reason: `launched by ${ctx.creator}` };
    }
    return undefined;
  }
  const graceUntil = new Date(ctx.now.getTime() + ctx.policy.graceHours * 3_600_000);
  const flag: Flag = {
    instanceKey: flagKey(key.account, key.region, key.instanceId),
    account: key.account,
    region: key.region,
    instanceId: key.instanceId,
    environment: ctx.environment,
    state: 'flagged',
    flaggedAt: ctx.now.toISOString(),
    graceUntil: graceUntil.toISOString(),
    reason: `unauthorized: ${authorization.reason}`,
    ...(ctx.creator ? { creator: ctx.creator } : {}),
    flagEventId: ctx.eventId,
    version: priorVersion + 1,
  };
  return { action: 'instance.flagged', before: current, after: flag, reason: `${flag.reason}; grace until ${flag.graceUntil}` };
}

export const graceOver = (flag: Flag, now: Date) => (flag.state === 'flagged' || flag.state === 'acting') && Date.parse(flag.graceUntil) <= now.getTime();

export interface ActContext {
  now: Date;
  policy: EnforcementPolicy;
  /** The account's environment class now (the flag keeps the one it was raised in). */
  environment: EnvironmentClass | undefined;
  dryRun: boolean;
}

/**
 * Pure: the re-check right before acting on a flag whose grace is over. Acts only when the
 * instance still runs, is still unauthorized, is not protected, and its account is still in the
 * environment class the flag was raised in; otherwise the flag resolves or is left, once.
 */
export function onGraceOver(flag: Flag, observed: ObservedInstance | undefined, ctx: ActContext): FlagTransition | undefined {
  if (!graceOver(flag, ctx.now)) return undefined;
  if (!observed || !inScope(observed)) return resolve(flag, observed ? `instance is ${observed.state}` : 'instance no longer exists', ctx.now);
  const authorization = authorize(observed, ctx.policy);
  if (authorization.authorized) return resolve(flag, `authorized by ${authorization.by}`, ctx.now);
  const leave = (because: string): FlagTransition => ({
    action: 'instance.flag-left',
    before: flag,
    after: { ...flag, state: 'left', outcome: because, closedAt: ctx.now.toISOString(), version: flag.version + 1 },
    reason: because,
  });
  if (isProtected(observed, ctx.policy)) return leave(`protected by tag ${ctx.policy.protectedTag}: never acted on`);
  if (ctx.environment !== flag.environment) return leave(`account ${flag.account} is now ${ctx.environment ?? 'unknown'}, not ${flag.environment} as when flagged`);
  const action = ctx.policy.actions[flag.environment];
  if (action === 'none') return leave(`action for ${flag.environment} is none: flagged and notified only`);
  if (ctx.dryRun) return leave(`dry run: would ${action} it`);
  const done = action === 'stop' ? 'stopped' : 'terminated';
  return {
    action: action === 'stop' ? 'instance.stopped' : 'instance.terminated',
    before: flag,
    after: { ...flag, state: 'acted', outcome: done, closedAt: ctx.now.toISOString(), version: flag.version + 1 },
    reason: `${done} after its grace: still running, still ${flag.reason}`,
    act: action,
  };
}

/** Pure: the `acting` record written before the EC2 call of an acting transition. */
export function startAction(flag: Flag, transition: FlagTransition): FlagTransition {
  const doing = transition.act === 'stop' ? 'stopping' : 'terminating';
  return {
    action: 'instance.action-started',
    before: flag,
    after: { ...flag, state: 'acting', outcome: doing, version: flag.version + 1 },
    reason: `${doing} after its grace (re-checked: still running, unauthorized, not protected, still ${flag.environment})`,
  };
}

/** The acting transition re-based on the flag as it is after `startAction`. */
export const afterStart = (transition: FlagTransition, started: Flag): FlagTransition => ({
  ...transition,
  before: started,
  after: { ...transition.after, version: started.version + 1 },
});

export type RunPlan<F = Flag> =
  | { trip: false; acting: F[]; planned: number; fleet: number }
  | { trip: true; acting: []; planned: number; fleet: number; reason: string };

/**
 * Pure: the circuit breaker over one sweep's planned actions. Planned are the expired flags
 * whose environment class acts (stop or terminate), counted over the whole run; when they exceed
 * the count or the percent of the fleet in scope, none is acted on and the flags wait for the
 * next run. Otherwise every listed expired flag is re-checked (those whose class does nothing
 * are left, once).
 */
export function planRun<F extends Pick<Flag, 'instanceKey' | 'environment'>>(
  expiredByEnvironment: Partial<Record<EnvironmentClass, number>>,
  listed: readonly F[],
  fleetInScope: number,
  policy: EnforcementPolicy,
): RunPlan<F> {
  const planned = Object.entries(expiredByEnvironment).reduce((sum, [environment, n]) => sum + (policy.actions[environment as EnvironmentClass] !== 'none' ? (n ?? 0) : 0), 0);
  const verdict = circuitBreaker(planned, fleetInScope, policy.circuitBreaker, 'instances');
  if (verdict.trip) return { trip: true, acting: [], planned, fleet: fleetInScope, reason: verdict.reason };
  return { trip: false, acting: [...listed], planned, fleet: fleetInScope };
}
