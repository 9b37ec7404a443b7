import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type ActContext,
  type CheckContext,
  type Flag,
  type FlagState,
  type FlagTransition,
  OPEN_STATES,
  afterStart,
  flagKey,
  isOpen,
  onGraceOver,
  onObserved,
  planRun,
  startAction,
} from '../../functions/enforcement/flags';
import type { EnforcementPolicy, ObservedInstance } from '../../functions/enforcement/policy';
import type { EnvironmentClass } from '../../functions/shared/environments';
import { GROUP_NAME_TAG } from '../../functions/shared/groups';

/** The product defaults (config `policies.enforcement`), written out. */
const policy: EnforcementPolicy = {
  graceHours: 24,
  actions: { PROD: 'none', STAGING: 'none', LAB: 'terminate' },
  protectedTag: 'fleetwarden:protected',
  authorizedWhen: { tags: [{ key: 'ManagedBy', value: 'fleetwarden' }, { key: 'eks:cluster-name' }], autoScalingGroup: true },
  allow: { tags: [], amis: [], accounts: [] },
  circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 5 },
};
const stopInLab: EnforcementPolicy = { ...policy, actions: { ...policy.actions, LAB: 'stop' } };

const KEY = { account: '333333333333', region: 'us-east-1', instanceId: 'i-0c1d2e3f4a5b60718' };
const INSTANCE_KEY = '333333333333/us-east-1/i-0c1d2e3f4a5b60718';
const ALICE = 'arn:aws:iam::333333333333:user/alice';
const UNAUTHORIZED = 'unauthorized: none of tag ManagedBy=fleetwarden, tag eks:cluster-name, an Auto Scaling group; not allow-listed';

const t0 = new Date('2026-12-03T09:15:02.000Z');
const hoursLater = (n: number) => new Date(t0.getTime() + n * 3_600_000);

const instance = (over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  ...KEY,
  state: 'running',
  imageId: 'ami-12345678',
  launchTime: new Date('2026-12-03T09:14:58Z'),
  tags: { Name: 'scratch' },
  ...over,
});
const authorized = (over: Partial<ObservedInstance> = {}) => instance({ tags: { Name: 'scratch', ManagedBy: 'fleetwarden' }, ...over });

const check = (over: Partial<CheckContext> = {}): CheckContext => ({ eventId: 'evt-1', now: t0, environment: 'LAB', policy, ...over });
const act = (over: Partial<ActContext> = {}): ActContext => ({ now: hoursLater(25), policy, environment: 'LAB', dryRun: false, ...over });

/** A flag as onObserved raises it at t0 in LAB, without a creator. */
const flag = (over: Partial<Flag> = {}): Flag => ({
  instanceKey: INSTANCE_KEY,
  ...KEY,
  environment: 'LAB',
  state: 'flagged',
  flaggedAt: t0.toISOString(),
  graceUntil: hoursLater(24).toISOString(),
  reason: UNAUTHORIZED,
  flagEventId: 'evt-1',
  version: 1,
  ...over,
});

/** The transition, which must exist. */
function must(transition: FlagTransition | undefined): FlagTransition {
  expect(transition).toBeDefined();
  return transition!;
}

describe('flagKey and the open states', () => {
  it('keys a flag by account, region and instance id', () => {
    expect(flagKey(KEY.account, KEY.region, KEY.instanceId)).toBe(INSTANCE_KEY);
  });

  it('counts flagged, acting and left as open, and acted, resolved and no flag as closed', () => {
    expect([...OPEN_STATES].sort()).toEqual(['acting', 'flagged', 'left']);
    for (const state of ['flagged', 'acting', 'left'] as FlagState[]) expect(isOpen(flag({ state })), state).toBe(true);
    for (const state of ['acted', 'resolved'] as FlagState[]) expect(isOpen(flag({ state })), state).toBe(false);
    expect(isOpen(undefined)).toBe(false);
  });
});

describe('onObserved: what an observation of an instance changes', () => {
  it('flags a new unauthorized running instance: grace until now + graceHours, the reason, the creator when given, the environment, version 1', () => {
    // Act
    const transition = onObserved(undefined, KEY, instance(), check({ creator: ALICE }));
    // Assert
    expect(transition).toEqual({
      action: 'instance.flagged',
      before: undefined,
      after: flag({ creator: ALICE }),
      reason: `${UNAUTHORIZED}; grace until 2026-12-04T09:15:02.000Z`,
    });
  });

  it('flags without a creator when the event names none (the CloudTrail record has not arrived)', () => {
    const transition = must(onObserved(undefined, KEY, instance(), check()));
    expect(transition.after).toEqual(flag());
    expect('creator' in transition.after).toBe(false);
  });

  it('flags a pending instance too, in the environment class of its account now', () => {
    const transition = must(onObserved(undefined, KEY, instance({ state: 'pending' }), check({ environment: 'PROD', eventId: 'evt-9' })));
    expect(transition.after).toMatchObject({ state: 'flagged', environment: 'PROD', flagEventId: 'evt-9', version: 1 });
  });

  it('computes the end of grace from graceHours, fractional or zero', () => {
    expect(must(onObserved(undefined, KEY, instance(), check({ policy: { ...policy, graceHours: 1.5 } }))).after.graceUntil).toBe('2026-12-03T10:45:02.000Z');
    expect(must(onObserved(undefined, KEY, instance(), check({ policy: { ...policy, graceHours: 0 } }))).after.graceUntil).toBe(t0.toISOString());
  });

  it('changes nothing for an authorized instance without a flag (by tag, by Auto Scaling group)', () => {
    expect(onObserved(undefined, KEY, authorized(), check())).toBeUndefined();
    expect(onObserved(undefined, KEY, instance({ tags: { [GROUP_NAME_TAG]: 'web' } }), check())).toBeUndefined();
  });

  it('changes nothing for an instance without a flag that is not pending or running, or no longer exists', () => {
    for (const state of ['stopping', 'stopped', 'shutting-down', 'terminated']) expect(onObserved(undefined, KEY, instance({ state }), check()), state).toBeUndefined();
    expect(onObserved(undefined, KEY, undefined, check())).toBeUndefined();
  });

  it('resolves an open flag when the instance has become authorized, naming the rule', () => {
    const transition = onObserved(flag(), KEY, authorized(), check({ now: hoursLater(2) }));
    expect(transition).toEqual({
      action: 'instance.flag-resolved',
      before: flag(),
      after: flag({ state: 'resolved', outcome: 'authorized by tag ManagedBy=fleetwarden', closedAt: hoursLater(2).toISOString(), version: 2 }),
      reason: 'authorized by tag ManagedBy=fleetwarden',
    });
  });

  it('resolves an open flag when the instance is stopped or no longer exists', () => {
    expect(onObserved(flag(), KEY, instance({ state: 'stopped' }), check())).toMatchObject({ action: 'instance.flag-resolved', reason: 'instance is stopped', after: { state: 'resolved', outcome: 'instance is stopped', version: 2 } });
    expect(onObserved(flag(), KEY, undefined, check())).toMatchObject({
      action: 'instance.flag-resolved',
      reason: 'instance no longer exists',
      after: { state: 'resolved', outcome: 'instance no longer exists', version: 2 },
    });
  });

  it('resolves left and acting flags the same way (they are open)', () => {
    for (const state of ['left', 'acting'] as FlagState[]) {
      expect(onObserved(flag({ state, version: 3 }), KEY, undefined, check()), state).toMatchObject({ action: 'instance.flag-resolved', after: { state: 'resolved', version: 4 } });
    }
  });

  it('records the creator on an open flag that has none: instance.flag-creator-recorded, version + 1', () => {
    const transition = onObserved(flag(), KEY, instance(), check({ creator: ALICE, eventId: 'evt-cloudtrail' }));
    expect(transition).toEqual({ action: 'instance.flag-creator-recorded', before: flag(), after: flag({ creator: ALICE, version: 2 }), reason: `launched by ${ALICE}` });
  });

  it('records the creator on a left flag too, and keeps its state', () => {
    expect(onObserved(flag({ state: 'left', version: 2 }), KEY, instance(), check({ creator: ALICE }))).toMatchObject({ action: 'instance.flag-creator-recorded', after: { state: 'left', creator: ALICE, version: 3 } });
  });

  it('changes nothing on an open flag whose creator is already set, even when another creator is named', () => {
    expect(onObserved(flag({ creator: ALICE }), KEY, instance(), check({ creator: ALICE }))).toBeUndefined();
    expect(onObserved(flag({ creator: ALICE }), KEY, instance(), check({ creator: 'arn:aws:iam::333333333333:user/bob' }))).toBeUndefined();
  });

  it('changes nothing on an open flag when the observation names no creator (a state-change event, a sweep)', () => {
    expect(onObserved(flag(), KEY, instance(), check())).toBeUndefined();
  });

  it('replaces a closed flag (resolved, acted) by a new flag with version + 1 when the instance runs unauthorized again', () => {
    for (const closed of [flag({ state: 'resolved', outcome: 'instance is stopped', closedAt: hoursLater(1).toISOString(), version: 2 }), flag({ state: 'acted', outcome: 'stopped', creator: ALICE, version: 3 })]) {
      const transition = must(onObserved(closed, KEY, instance(), check({ now: hoursLater(30), eventId: 'evt-2' })));
      expect(transition.action, closed.state).toBe('instance.flagged');
      expect(transition.before).toBe(closed);
      expect(transition.after).toEqual(flag({ flaggedAt: hoursLater(30).toISOString(), graceUntil: hoursLater(54).toISOString(), flagEventId: 'evt-2', version: closed.version + 1 }));
    }
  });

  it('changes nothing on a closed flag when the instance is authorized, stopped or gone', () => {
    const closed = flag({ state: 'resolved', version: 2 });
    expect(onObserved(closed, KEY, authorized(), check())).toBeUndefined();
    expect(onObserved(closed, KEY, instance({ state: 'stopped' }), check())).toBeUndefined();
    expect(onObserved(closed, KEY, undefined, check())).toBeUndefined();
  });

  it('changes nothing when the same observation is delivered again (redelivery), whichever transition it caused', () => {
    const cases: { name: string; before: Flag | undefined; observed: ObservedInstance | undefined; ctx: CheckContext }[] = [
      { name: 'flagged with a creator', before: undefined, observed: instance(), ctx: check({ creator: ALICE }) },
      { name: 'flagged without a creator', before: undefined, observed: instance(), ctx: check() },
      { name: 'creator recorded', before: flag(), observed: instance(), ctx: check({ creator: ALICE }) },
      { name: 'resolved as authorized', before: flag(), observed: authorized(), ctx: check() },
      { name: 'resolved as stopped', before: flag(), observed: instance({ state: 'stopped' }), ctx: check() },
      { name: 'resolved as gone', before: flag(), observed: undefined, ctx: check() },
      { name: 'flagged again', before: flag({ state: 'resolved', version: 2 }), observed: instance(), ctx: check({ now: hoursLater(30) }) },
    ];
    for (const { name, before, observed, ctx } of cases) {
      // Act
      const first = must(onObserved(before, KEY, observed, ctx));
      const again = onObserved(first.after, KEY, observed, ctx);
      // Assert
      expect(again, name).toBeUndefined();
    }
  });

  // Regression (found while writing this suite, fixed in c0cfa51): onObserved spread `key` into
  // the new flag, and sweepTarget passes the observed instance itself as the key, so a flag
  // raised by a sweep carried `tags`, `imageId` and `launchTime` (a Date, which the DynamoDB
  // marshaller refuses: "Unsupported type passed").
  it('raises a flag with the flag fields only, even when the key given is the observed instance (as the sweep gives it)', () => {
    const observed = instance();
    const transition = must(onObserved(undefined, observed, observed, check()));
    expect(Object.keys(transition.after).sort()).toEqual(Object.keys(flag()).sort());
  });
});

describe('onGraceOver: the re-check right before acting', () => {
  it('changes nothing before the end of grace', () => {
    expect(onGraceOver(flag(), instance(), act({ now: hoursLater(23.999) }))).toBeUndefined();
  });

  it('acts at the end of grace exactly', () => {
    expect(onGraceOver(flag(), instance(), act({ now: hoursLater(24) }))).toMatchObject({ action: 'instance.terminated', act: 'terminate' });
  });

  it('changes nothing on a flag that is left, resolved or acted, however late', () => {
    for (const state of ['left', 'resolved', 'acted'] as FlagState[]) expect(onGraceOver(flag({ state }), instance(), act({ now: hoursLater(1000) })), state).toBeUndefined();
  });

  it('resolves when the instance no longer exists, is not running, or has become authorized', () => {
    expect(onGraceOver(flag(), undefined, act())).toMatchObject({ action: 'instance.flag-resolved', reason: 'instance no longer exists', after: { state: 'resolved', version: 2 } });
    expect(onGraceOver(flag(), instance({ state: 'stopped' }), act())).toMatchObject({ action: 'instance.flag-resolved', reason: 'instance is stopped' });
    expect(onGraceOver(flag(), authorized(), act())).toMatchObject({ action: 'instance.flag-resolved', reason: 'authorized by tag ManagedBy=fleetwarden' });
    expect(onGraceOver(flag(), instance({ tags: { [GROUP_NAME_TAG]: 'web' } }), act())).toMatchObject({ reason: 'authorized by Auto Scaling group web' });
  });

  it('leaves a protected instance (instance.flag-left, state left), even in a class that terminates', () => {
    const transition = onGraceOver(flag(), instance({ tags: { 'fleetwarden:protected': 'true' } }), act());
    expect(transition).toEqual({
      action: 'instance.flag-left',
      before: flag(),
      after: flag({ state: 'left', outcome: 'protected by tag fleetwarden:protected: never acted on', closedAt: hoursLater(25).toISOString(), version: 2 }),
      reason: 'protected by tag fleetwarden:protected: never acted on',
    });
    expect(transition?.act).toBeUndefined();
  });

  it("leaves the flag when the account's environment class changed since it was flagged, or is no longer known", () => {
    expect(onGraceOver(flag(), instance(), act({ environment: 'PROD' }))).toMatchObject({
      action: 'instance.flag-left',
      reason: 'account 333333333333 is now PROD, not LAB as when flagged',
      after: { state: 'left' },
    });
    expect(onGraceOver(flag(), instance(), act({ environment: undefined }))).toMatchObject({ action: 'instance.flag-left', reason: 'account 333333333333 is now unknown, not LAB as when flagged' });
  });

  it("leaves the flag when its class's action is none (PROD and STAGING by default)", () => {
    for (const environment of ['PROD', 'STAGING'] as EnvironmentClass[]) {
      const transition = onGraceOver(flag({ environment }), instance(), act({ environment }));
      expect(transition, environment).toMatchObject({ action: 'instance.flag-left', reason: `action for ${environment} is none: flagged and notified only`, after: { state: 'left', version: 2 } });
      expect(transition?.act).toBeUndefined();
    }
  });

  it('leaves the flag in dry run, saying what it would have done', () => {
    expect(onGraceOver(flag(), instance(), act({ dryRun: true }))).toMatchObject({ action: 'instance.flag-left', reason: 'dry run: would terminate it', after: { state: 'left', outcome: 'dry run: would terminate it' } });
    expect(onGraceOver(flag(), instance(), act({ dryRun: true, policy: stopInLab }))).toMatchObject({ action: 'instance.flag-left', reason: 'dry run: would stop it' });
  });

  it("otherwise acts per the class's action: terminate", () => {
    const transition = onGraceOver(flag(), instance(), act());
    expect(transition).toEqual({
      action: 'instance.terminated',
      before: flag(),
      after: flag({ state: 'acted', outcome: 'terminated', closedAt: hoursLater(25).toISOString(), version: 2 }),
      reason: `terminated after its grace: still running, still ${UNAUTHORIZED}`,
      act: 'terminate',
    });
  });

  it("otherwise acts per the class's action: stop", () => {
    expect(onGraceOver(flag(), instance(), act({ policy: stopInLab }))).toMatchObject({ action: 'instance.stopped', act: 'stop', after: { state: 'acted', outcome: 'stopped', version: 2 } });
  });

  it('acts again, after the re-check, on a flag left acting by a run that died after startAction', () => {
    const acting = flag({ state: 'acting', outcome: 'terminating', version: 2 });
    expect(onGraceOver(acting, instance(), act())).toMatchObject({ action: 'instance.terminated', act: 'terminate', before: acting, after: { state: 'acted', outcome: 'terminated', version: 3 } });
    // The re-check still applies: gone by now, it resolves; protected by now, it is left.
    expect(onGraceOver(acting, undefined, act())).toMatchObject({ action: 'instance.flag-resolved', after: { version: 3 } });
    expect(onGraceOver(acting, instance({ tags: { 'fleetwarden:protected': '' } }), act())).toMatchObject({ action: 'instance.flag-left' });
  });
});

describe('startAction and afterStart: acting is recorded before the EC2 call, acted after it', () => {
  it('chains the versions: flagged v1 -> acting v2 -> acted v3 (terminate)', () => {
    // Arrange
    const flagged = flag();
    const transition = must(onGraceOver(flagged, instance(), act()));
    // Act
    const started = startAction(flagged, transition);
    const done = afterStart(transition, started.after);
    // Assert
    expect(started).toEqual({
      action: 'instance.action-started',
      before: flagged,
      after: flag({ state: 'acting', outcome: 'terminating', version: 2 }),
      reason: 'terminating after its grace (re-checked: still running, unauthorized, not protected, still LAB)',
    });
    expect(done).toEqual({ ...transition, before: started.after, after: { ...transition.after, version: 3 } });
    expect(done.after).toMatchObject({ state: 'acted', outcome: 'terminated', version: 3 });
    expect(done.act).toBe('terminate');
  });

  it('says stopping for a stop', () => {
    const transition = must(onGraceOver(flag(), instance(), act({ policy: stopInLab })));
    const started = startAction(flag(), transition);
    expect(started.after).toMatchObject({ state: 'acting', outcome: 'stopping', version: 2 });
    expect(started.reason).toMatch(/^stopping after its grace/);
    expect(afterStart(transition, started.after)).toMatchObject({ action: 'instance.stopped', before: started.after, after: { state: 'acted', outcome: 'stopped', version: 3 } });
  });
});

describe('planRun: the circuit breaker over one run', () => {
  const listed = (n: number, environment: EnvironmentClass = 'LAB') => Array.from({ length: n }, (_, i) => ({ instanceKey: `333333333333/us-east-1/i-${String(i).padStart(17, '0')}`, environment }));

  it('acts on every listed flag at the limits (10 actions, 5 % of the fleet)', () => {
    expect(planRun({ LAB: 10 }, listed(10), 200, policy)).toEqual({ trip: false, acting: listed(10), planned: 10, fleet: 200 });
    expect(planRun({ LAB: 5 }, listed(5), 100, policy)).toEqual({ trip: false, acting: listed(5), planned: 5, fleet: 100 });
  });

  it('trips when the planned actions exceed maxActionsPerRun, and acts on none', () => {
    expect(planRun({ LAB: 11 }, listed(11), 100_000, policy)).toEqual({ trip: true, acting: [], planned: 11, fleet: 100_000, reason: '11 planned actions exceed the limit of 10 per run' });
  });

  it('trips when the planned actions exceed maxPercentOfFleet of the instances in scope', () => {
    expect(planRun({ LAB: 6 }, listed(6), 100, policy)).toEqual({ trip: true, acting: [], planned: 6, fleet: 100, reason: '6 planned actions are 6.0 % of the 100 instances in scope, over 5 %' });
  });

  it('trips on a fleet of 0 with any planned action (100 %), and not on a fleet of 0 with none', () => {
    expect(planRun({ LAB: 1 }, listed(1), 0, policy)).toMatchObject({ trip: true, acting: [], planned: 1, fleet: 0, reason: '1 planned actions are 100.0 % of the 0 instances in scope, over 5 %' });
    expect(planRun({}, [], 0, policy)).toEqual({ trip: false, acting: [], planned: 0, fleet: 0 });
  });

  it('counts only the classes whose action is not none, and still lists every expired flag to be re-checked (and left)', () => {
    const flags = [...listed(2, 'PROD'), ...listed(1, 'LAB'), ...listed(2, 'STAGING')];
    expect(planRun({ PROD: 500, STAGING: 500, LAB: 1 }, flags, 100, policy)).toEqual({ trip: false, acting: flags, planned: 1, fleet: 100 });
    const stopInStaging = { ...policy, actions: { ...policy.actions, STAGING: 'stop' as const } };
    expect(planRun({ PROD: 500, STAGING: 500, LAB: 1 }, flags, 100, stopInStaging)).toMatchObject({ trip: true, planned: 501 });
  });

  it('counts the run, not the listed batch: the expired flags of every class, however few are listed', () => {
    expect(planRun({ LAB: 400 }, listed(50), 1_000_000, policy)).toMatchObject({ trip: true, planned: 400 });
  });
});

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

const STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'];
const CREATORS = [ALICE, 'arn:aws:iam::333333333333:role/ci via autoscaling.amazonaws.com', 'arn:aws:sts::333333333333:assumed-role/dev/bob'];

type Observation = { gone: true; creator?: string; minutes: number } | { gone: false; authorizedBy?: 'tag' | 'eks' | 'group'; state: string; creator?: string; minutes: number };

const observationArb: fc.Arbitrary<Observation> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ gone: fc.constant(true as const), creator: fc.option(fc.constantFrom(...CREATORS), { nil: undefined }), minutes: fc.nat(3 * 24 * 60) }) },
  {
    weight: 5,
    arbitrary: fc.record({
      gone: fc.constant(false as const),
      authorizedBy: fc.option(fc.constantFrom('tag' as const, 'eks' as const, 'group' as const), { nil: undefined, freq: 2 }),
      state: fc.constantFrom(...STATES),
      creator: fc.option(fc.constantFrom(...CREATORS), { nil: undefined }),
      minutes: fc.nat(3 * 24 * 60),
    }),
  },
);

function observe(o: Observation): ObservedInstance | undefined {
  if (o.gone) return undefined;
  const tags: Record<string, string> = { Name: 'scratch' };
  if (o.authorizedBy === 'tag') tags.ManagedBy = 'fleetwarden';
  if (o.authorizedBy === 'eks') tags['eks:cluster-name'] = 'prod-eks';
  if (o.authorizedBy === 'group') tags[GROUP_NAME_TAG] = 'web';
  return instance({ state: o.state, tags });
}

describe('onObserved over any sequence of observations of one instance (properties)', () => {
  it('raises versions by exactly 1 per transition, re-bases each on the flag it saw, never transitions twice on the same observation, and ends open exactly when the instance runs unauthorized', () => {
    fc.assert(
      fc.property(fc.array(observationArb, { minLength: 1, maxLength: 30 }), fc.constantFrom<EnvironmentClass>('PROD', 'STAGING', 'LAB'), (observations, environment) => {
        let current: Flag | undefined;
        let now = t0.getTime();
        let versions = 0;
        observations.forEach((o, i) => {
          now += o.minutes * 60_000;
          const observed = observe(o);
          const ctx = check({ now: new Date(now), environment, eventId: `evt-${i}`, creator: o.creator });
          const transition = onObserved(current, KEY, observed, ctx);
          if (transition) {
            expect(transition.before).toBe(current);
            expect(transition.after.version).toBe((current?.version ?? 0) + 1);
            expect(transition.after.version).toBe(versions + 1);
            expect(transition.after).toMatchObject({ instanceKey: INSTANCE_KEY, ...KEY });
            versions = transition.after.version;
            current = transition.after;
          }
          // Idempotence: the same decision on the same observation changes nothing.
          expect(onObserved(current, KEY, observed, ctx)).toBeUndefined();
          // What the instance is now decides whether a flag is open.
          const runsUnauthorized = !o.gone && !o.authorizedBy && (o.state === 'pending' || o.state === 'running');
          expect(isOpen(current)).toBe(runsUnauthorized);
          if (runsUnauthorized && o.creator) expect(current?.creator).toBeDefined();
        });
      }),
      { numRuns: 1_000 },
    );
  });

  it('chains versions by 1 through the whole life of a flag: observations, grace over, acting and acted (with the EC2 call done as the enforcer does it)', () => {
    const graceStepArb = fc.record({
      grace: fc.constant(true as const),
      minutes: fc.nat(2 * 24 * 60),
      environment: fc.option(fc.constantFrom<EnvironmentClass>('PROD', 'STAGING', 'LAB'), { nil: undefined, freq: 5 }),
      dryRun: fc.boolean(),
      stop: fc.boolean(),
      protect: fc.boolean(),
      dies: fc.boolean(),
    });
    const stepArb = fc.oneof(observationArb.map((o) => ({ grace: false as const, o })), graceStepArb);
    fc.assert(
      fc.property(fc.array(stepArb, { minLength: 1, maxLength: 30 }), (steps) => {
        let current: Flag | undefined;
        let now = t0.getTime();
        const apply = (transition: FlagTransition | undefined) => {
          if (!transition) return;
          expect(transition.before).toBe(current);
          expect(transition.after.version).toBe((current?.version ?? 0) + 1);
          current = transition.after;
        };
        for (const step of steps) {
          if (!step.grace) {
            now += step.o.minutes * 60_000;
            apply(onObserved(current, KEY, observe(step.o), check({ now: new Date(now), creator: step.o.creator })));
            continue;
          }
          now += step.minutes * 60_000;
          if (!current) continue;
          const observed = instance({ tags: step.protect ? { 'fleetwarden:protected': 'true' } : {} });
          const ctx = act({ now: new Date(now), environment: step.environment, dryRun: step.dryRun, policy: step.stop ? stopInLab : policy });
          const transition = onGraceOver(current, observed, ctx);
          if (transition?.act) {
            expect(step.protect || step.dryRun || step.environment !== 'LAB').toBe(false);
            // As actOnFlag: record acting unless already acting, call EC2, record the result.
            if (current.state !== 'acting') apply(startAction(current, transition));
            if (step.dies) continue; // the run died after recording acting
            apply(afterStart(transition, current));
            expect(current).toMatchObject({ state: 'acted', outcome: step.stop ? 'stopped' : 'terminated' });
          } else {
            apply(transition);
            if (transition) expect(onGraceOver(current, observed, ctx)).toBeUndefined();
          }
        }
      }),
      { numRuns: 1_000 },
    );
  });
});

describe('planRun over any run (properties)', () => {
  const environmentArb = fc.constantFrom<EnvironmentClass>('PROD', 'STAGING', 'LAB');
  const actionArb = fc.constantFrom('none' as const, 'stop' as const, 'terminate' as const);
  const policyArb = fc
    .record({
      actions: fc.record({ PROD: actionArb, STAGING: actionArb, LAB: actionArb }),
      maxActionsPerRun: fc.nat(30),
      maxPercentOfFleet: fc.oneof(fc.integer({ min: 0, max: 100 }), fc.double({ min: 0, max: 100, noNaN: true })),
    })
    .map(({ actions, maxActionsPerRun, maxPercentOfFleet }): EnforcementPolicy => ({ ...policy, actions, circuitBreaker: { maxActionsPerRun, maxPercentOfFleet } }));
  const expiredArb = fc.record({ PROD: fc.nat(60), STAGING: fc.nat(60), LAB: fc.nat(60) }, { requiredKeys: [] });
  const listedArb = fc.array(fc.record({ instanceKey: fc.string({ minLength: 1, maxLength: 30 }), environment: environmentArb }), { maxLength: 50 });

  it('never acts on a flag when tripped; when not tripped, stays within maxActionsPerRun and maxPercentOfFleet and lists every flag', () => {
    fc.assert(
      fc.property(expiredArb, listedArb, fc.oneof(fc.constant(0), fc.nat(2_000)), policyArb, (expired, flags, fleet, p) => {
        const plan = planRun(expired, flags, fleet, p);
        const planned = (Object.keys(expired) as EnvironmentClass[]).reduce((sum, env) => sum + (p.actions[env] === 'none' ? 0 : expired[env]!), 0);
        expect(plan.planned).toBe(planned);
        expect(plan.fleet).toBe(fleet);
        const { maxActionsPerRun, maxPercentOfFleet } = p.circuitBreaker;
        if (plan.trip) {
          expect(plan.acting).toEqual([]);
          expect(plan.reason).toMatch(/^\d+ planned actions /);
          expect(planned > maxActionsPerRun || (fleet > 0 ? (planned / fleet) * 100 > maxPercentOfFleet : planned > 0 && maxPercentOfFleet < 100)).toBe(true);
        } else {
          expect(plan.planned).toBeLessThanOrEqual(maxActionsPerRun);
          if (fleet > 0) expect((plan.planned / fleet) * 100).toBeLessThanOrEqual(maxPercentOfFleet);
          expect(plan.acting).toEqual(flags);
          expect(plan.acting).not.toBe(flags);
        }
      }),
      { numRuns: 5_000 },
    );
  });
});
