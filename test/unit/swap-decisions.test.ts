import { describe, expect, it } from 'vitest';
import { decideCompensation, type SwapObservation } from '../../functions/swap/compensate';
import type { SwapPlan } from '../../functions/swap/model';
import { planSwap } from '../../functions/swap/plan';

const plan: SwapPlan = {
  action: 'swap',
  trigger: 'manual',
  reason: 'test',
  dryRun: false,
  executionId: 'exec-1',
  group: 'web',
  region: 'us-east-1',
  oldInstanceId: 'i-0000000000000old0',
  original: { min: 3, max: 3, desired: 3 },
  raisedMax: 4,
  suspend: ['AZRebalance', 'Terminate'],
  candidates: [],
  lock: { id: 'swap-lock#us-east-1#web', owner: 'exec-1', now: '2026-11-22T10:00:00.000Z', leaseUntil: '2026-11-22T13:00:00.000Z', expiresAt: '0' },
};
const OLD = plan.oldInstanceId!;
const NEW = 'i-0000000000000new0';
const seen = (over: Partial<SwapObservation>): SwapObservation => ({
  members: new Map([[OLD, 'InService'], ['i-a', 'InService'], ['i-b', 'InService']]),
  maxSize: 4,
  desired: 3,
  suspended: ['AZRebalance', 'Terminate'],
  replacements: [],
  oldState: 'running',
  lockOwner: 'exec-1',
  ...over,
});

describe('swap compensation decisions', () => {
  it('removes an attached, serving replacement (detach with decrement, terminate) and restores the group', () => {
    expect(decideCompensation(plan, seen({ members: new Map([[OLD, 'InService'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), desired: 4, replacements: [NEW] }))).toEqual([
      { kind: 'detach-replacement', instanceId: NEW },
      { kind: 'terminate-replacement', instanceId: NEW },
      { kind: 'restore-max', maxSize: 3 },
      { kind: 'resume-processes', processes: ['AZRebalance', 'Terminate'] },
      { kind: 'release-lock' },
    ]);
  });

  it('terminates a replacement that is attached but not InService through Auto Scaling (detach would be refused)', () => {
    const actions = decideCompensation(plan, seen({ members: new Map([[OLD, 'InService'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'Pending']]), desired: 4, replacements: [NEW] }));
    expect(actions[0]).toEqual({ kind: 'terminate-replacement-in-group', instanceId: NEW });
  });

  it('in a group with MinSize = desired, puts the detached old instance back before removing the replacement', () => {
    const actions = decideCompensation(plan, seen({ members: new Map([['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'Pending']]), desired: 3, replacements: [NEW] }));
    expect(actions.slice(0, 2)).toEqual([
      { kind: 'reattach-old', instanceId: OLD },
      { kind: 'terminate-replacement-in-group', instanceId: NEW },
    ]);
  });

  it('finishes the swap when the old instance left and the replacement serves (forward recovery)', () => {
    const actions = decideCompensation(plan, seen({ members: new Map([['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] }));
    expect(actions[0]).toEqual({ kind: 'terminate-detached-old', instanceId: OLD });
    expect(actions.map((a) => a.kind)).not.toContain('terminate-replacement');
  });

  it('counts a Detaching old instance as gone, and neither re-attaches nor terminates it while it detaches', () => {
    const actions = decideCompensation(plan, seen({ members: new Map([[OLD, 'Detaching'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] }));
    expect(actions.map((a) => a.kind)).toEqual(['restore-max', 'resume-processes', 'release-lock']);
  });

  it('leaves a MaxSize someone else set, and a lock someone else holds', () => {
    const actions = decideCompensation(plan, seen({ maxSize: 6, lockOwner: 'exec-2' }));
    expect(actions).toEqual([{ kind: 'resume-processes', processes: ['AZRebalance', 'Terminate'] }]);
  });
});

describe('swap planning', () => {
  const group = {
    name: 'web',
    min: 3,
    max: 3,
    desired: 3,
    instances: ['i-1', 'i-2', 'i-3'].map((instanceId, n) => ({ instanceId, lifecycleState: 'InService', azName: 'us-east-1a', instanceType: 'm5.large', spot: n === 0, doNotDisrupt: n === 1, protectedFromScaleIn: false })),
    suspended: ['AZRebalance'],
    launchTemplate: { LaunchTemplateId: 'lt-1', Version: '$Latest' },
    instanceTypes: ['m5.large'],
    azNames: ['us-east-1a'],
    subnetsByAz: {},
  };
  const candidates = [{ azName: 'us-east-1a', azId: 'use1-az6', instanceType: 'm5.large', key: 'us-east-1/use1-az6/m5.large', score: 1 }];
  const base = { executionId: 'e', region: 'us-east-1', group, candidates, dryRun: false, now: new Date('2026-11-22T10:00:00Z') };

  it('picks the first On-Demand instance without do-not-disrupt, raises MaxSize for N+1 and suspends only what is not suspended', () => {
    expect(planSwap({ ...base, request: { group: 'web', reason: 'r', trigger: 'manual' } })).toMatchObject({ action: 'swap', oldInstanceId: 'i-3', raisedMax: 4, suspend: ['Terminate'] });
  });

  it.each([
    ['i-1', 'i-1 is already Spot'],
    ['i-2', 'i-2 carries the do-not-disrupt tag'],
    ['i-9', 'i-9 is not in group web'],
  ])('skips %s with a reason', (instanceId, reason) => {
    expect(planSwap({ ...base, request: { group: 'web', instanceId, reason: 'r', trigger: 'manual' } })).toMatchObject({ action: 'skip', skipReason: reason });
  });

  it('skips when the gatekeeper allows no pool, and holds its lock longer than the workflow may run', () => {
    const skipped = planSwap({ ...base, candidates: [], request: { group: 'web', reason: 'r', trigger: 'manual' } });
    expect(skipped).toMatchObject({ action: 'skip', skipReason: 'no Spot pool the gatekeeper allows for this group' });
    expect(Date.parse(skipped.lock.leaseUntil) - Date.parse(skipped.lock.now)).toBeGreaterThan(2 * 3600_000);
  });
});
