import { describe, expect, it } from 'vitest';
import { CORDONED_BY_ANNOTATION, type NodeInfo } from '../../functions/kubernetes/port';
import { SWAP_TAINT_KEY, decideNodeRollback, swapTaintValue } from '../../functions/kubernetes/swap/nodes';
import { decideCompensation, type SwapObservation } from '../../functions/swap/compensate';
import type { SwapPlan } from '../../functions/swap/model';
import { planSwap } from '../../functions/swap/plan';
import { type SwapDeps, compensateStep } from '../../functions/swap/steps';

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

  it('should keep the lock and undo nothing while the old instance is still Detaching: the rollback waits for it', () => {
    // Prepare: the old instance is leaving (a load balancer's deregistration delay), the replacement serves.
    const detaching = seen({ members: new Map([[OLD, 'Detaching'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] });
    // Act
    const actions = decideCompensation(plan, detaching);
    // Assess: once Detached it must be re-attached or terminated, so nothing is released before.
    expect(actions).toEqual([{ kind: 'wait-for-old-detached', instanceId: OLD }]);
    expect(actions.map((a) => a.kind)).not.toContain('release-lock');
  });

  it('should finish the rollback once the old instance has detached (forward recovery when the replacement serves)', () => {
    const detached = seen({ members: new Map([['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] });
    expect(decideCompensation(plan, detached).map((a) => a.kind)).toEqual(['terminate-detached-old', 'restore-max', 'resume-processes', 'release-lock']);
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

describe('swap planning: drift, batches and Kubernetes clusters', () => {
  const instance = (instanceId: string, over: Partial<{ spot: boolean; doNotDisrupt: boolean }> = {}) => ({ instanceId, lifecycleState: 'InService', azName: 'us-east-1a', instanceType: 'm5.large', spot: false, doNotDisrupt: false, protectedFromScaleIn: false, ...over });
  const group = {
    name: 'web',
    min: 3,
    max: 3,
    desired: 3,
    instances: [instance('i-1', { spot: true }), instance('i-2', { spot: true, doNotDisrupt: true }), instance('i-3')],
    suspended: [],
    launchTemplate: { LaunchTemplateId: 'lt-1', Version: '$Latest' },
    instanceTypes: ['m5.large'],
    azNames: ['us-east-1a'],
    subnetsByAz: {},
  };
  const candidates = [{ azName: 'us-east-1a', azId: 'use1-az6', instanceType: 'm5.large', key: 'us-east-1/use1-az6/m5.large', score: 1 }];
  const base = { executionId: 'e', region: 'us-east-1', group, candidates, dryRun: false, now: new Date('2026-11-22T10:00:00Z') };
  const request = { group: 'web', reason: 'r', trigger: 'manual' as const };

  it('replaces a drifted instance the drift detector names even when it is already Spot', () => {
    expect(planSwap({ ...base, request: { ...request, trigger: 'drift', instanceId: 'i-1' } })).toMatchObject({ action: 'swap', oldInstanceId: 'i-1', trigger: 'drift' });
  });

  it('still skips a Spot instance for a manual or scheduled swap, and for drift without an instance', () => {
    expect(planSwap({ ...base, request: { ...request, instanceId: 'i-1' } })).toMatchObject({ action: 'skip', skipReason: 'i-1 is already Spot' });
    expect(planSwap({ ...base, request: { ...request, trigger: 'schedule', instanceId: 'i-1' } })).toMatchObject({ action: 'skip', skipReason: 'i-1 is already Spot' });
    // Without a named instance a drift swap picks an On-Demand one, as any swap does.
    expect(planSwap({ ...base, request: { ...request, trigger: 'drift' } })).toMatchObject({ action: 'swap', oldInstanceId: 'i-3' });
  });

  it('lets do-not-disrupt win over drift', () => {
    expect(planSwap({ ...base, request: { ...request, trigger: 'drift', instanceId: 'i-2' } })).toMatchObject({ action: 'skip', skipReason: 'i-2 carries the do-not-disrupt tag' });
  });

  it('carries the batch id into the plan (null outside a batch)', () => {
    expect(planSwap({ ...base, request: { ...request, batchId: 'batch-7' } }).batchId).toBe('batch-7');
    expect(planSwap({ ...base, request }).batchId).toBeNull();
  });

  it('takes the cluster from the request, then swaps.groups, then the group tag, only when it is configured', () => {
    const kubernetes = { clusters: ['prod-eks', 'other-eks'] };
    expect(planSwap({ ...base, request: { ...request, cluster: 'prod-eks' }, kubernetes })).toMatchObject({ action: 'swap', cluster: 'prod-eks' });
    expect(planSwap({ ...base, request, kubernetes: { ...kubernetes, groupClusters: { web: 'other-eks' } }, group: { ...group, clusterTag: 'prod-eks' } })).toMatchObject({ cluster: 'other-eks' });
    expect(planSwap({ ...base, request, kubernetes, group: { ...group, clusterTag: 'prod-eks' } })).toMatchObject({ action: 'swap', cluster: 'prod-eks' });
    // A tag naming a cluster Fleetwarden is not configured for: refused, its node could not be drained.
    expect(planSwap({ ...base, request, kubernetes, group: { ...group, clusterTag: 'someone-elses' } })).toMatchObject({
      action: 'skip',
      skipReason: 'group web runs nodes of cluster someone-elses, which is not in kubernetes.clusters: its nodes cannot be drained',
    });
    expect(planSwap({ ...base, request }).cluster).toBeUndefined();
  });

  it('refuses a request naming a cluster that is not configured (its node could not be drained)', () => {
    expect(planSwap({ ...base, request: { ...request, cluster: 'unknown-eks' }, kubernetes: { clusters: ['prod-eks'] } })).toMatchObject({
      action: 'skip',
      skipReason: 'cluster unknown-eks is not in kubernetes.clusters: its node cannot be drained',
    });
  });
});

describe('swap rollback decisions for Kubernetes nodes', () => {
  const k8sPlan: SwapPlan = { ...plan, cluster: 'prod-eks' };
  const node = (name: string, over: Partial<NodeInfo> = {}): NodeInfo => ({ name, unschedulable: false, taints: [], annotations: {}, ready: true, ...over });
  const ours = node('old-node', { unschedulable: true, taints: [{ key: SWAP_TAINT_KEY, value: 'exec-1', effect: 'NoSchedule' }], annotations: { [CORDONED_BY_ANNOTATION]: 'exec-1' } });
  const decide = (observation: SwapObservation, oldNode: NodeInfo | undefined, replacementNodes: { instanceId: string; node: NodeInfo }[] = []) =>
    decideNodeRollback(k8sPlan, { actions: decideCompensation(k8sPlan, observation), seen: observation }, oldNode, replacementNodes);

  it('puts the old node back in service and drains the replacement that goes', () => {
    const observation = seen({ members: new Map([[OLD, 'InService'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), desired: 4, replacements: [NEW] });
    expect(decide(observation, ours, [{ instanceId: NEW, node: node('new-node') }])).toEqual([
      { kind: 'remove-taint', node: 'old-node' },
      { kind: 'uncordon', node: 'old-node' },
      { kind: 'drain-replacement', node: 'new-node', instanceId: NEW },
    ]);
  });

  it('also when the old instance left the group without a serving replacement (it is put back)', () => {
    const observation = seen({ members: new Map([['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'Pending']]), desired: 3, replacements: [NEW] });
    expect(decide(observation, ours).map((a) => a.kind)).toEqual(['remove-taint', 'uncordon']);
  });

  it('leaves the old node cordoned when its instance goes (forward recovery), and keeps the serving replacement', () => {
    const observation = seen({ members: new Map([['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] });
    expect(decide(observation, ours, [{ instanceId: NEW, node: node('new-node') }])).toEqual([]);
  });

  it("never undoes another execution's taint or cordon, and has nothing to do once it is undone (re-entrant)", () => {
    const theirs = node('old-node', { unschedulable: true, taints: [{ key: SWAP_TAINT_KEY, value: 'exec-0', effect: 'NoSchedule' }], annotations: { [CORDONED_BY_ANNOTATION]: 'exec-0' } });
    expect(decide(seen({}), theirs)).toEqual([]);
    expect(decide(seen({}), node('old-node'))).toEqual([]);
    expect(decide(seen({}), undefined)).toEqual([]);
  });
});

describe('the swap taint value', () => {
  it('is the execution name when it is a label value, else a 63-character value unique to the name', () => {
    expect(swapTaintValue('swap-web-1')).toBe('swap-web-1');
    const long = (suffix: string) => `drift-eks-ng-general-20240101-a1b2c3d4-b08e77-20261122-d9acceb6-${suffix}-w12-i-0123456789abcdef0`;
    const a = swapTaintValue(long('a'));
    expect(a.length).toBeLessThanOrEqual(63);
    expect(a).toMatch(/^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/);
    expect(a).not.toBe(swapTaintValue(long('b')));
  });
});

describe('the rollback and an old instance still Detaching', () => {
  it('waits (a retryable error, nothing applied, the lock kept) instead of leaving it to run outside any group', async () => {
    const applied: unknown[] = [];
    // moto never shows Detaching: the observation is given through the swap's own port.
    const aws = { observe: async () => seen({ members: new Map([[OLD, 'Detaching'], ['i-a', 'InService'], ['i-b', 'InService'], [NEW, 'InService']]), replacements: [NEW] }), apply: async (_: unknown, action: unknown) => void applied.push(action) };
    await expect(compensateStep(plan, { aws } as unknown as SwapDeps)).rejects.toMatchObject({ name: 'Retryable.OldInstanceDetaching' });
    expect(applied).toEqual([]);
  });
});
