import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoScalingClient, UpdateAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { DescribeInstancesCommand, DescribeSubnetsCommand, EC2Client } from '@aws-sdk/client-ec2';
import { DynamoLedger } from '../../functions/ledger/store';
import type { Candidate, SwapPlan } from '../../functions/swap/model';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { type BusEvent, listenToBus } from '../../local/listen';
import type { LocalStack } from '../../local/provision';
import { runStateMachine } from '../../local/stepfunctions';
import { freshStack } from '../support';
import { DynamoLocks } from '../../functions/shared/locks';
import { createGroup, group, lockHolder, observed, orphans } from './swap-support';

let stack: LocalStack;
let groups = 0;
const definition = () => [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith('SwapsSwapStateMachine'))!.definition;

async function ledgerActions(executionName: string) {
  const actions: string[] = [];
  for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) if (e.eventId === executionName) actions.push(String(e.action));
  return actions;
}

beforeAll(async () => {
  stack = await freshStack();
});

describe('NodeSwap state machine (synthesized definition, aws-local-stepfunctions, moto)', () => {
  it('swaps an On-Demand instance for Spot: N -> N+1 -> N, MaxSize and processes restored, lock released', async () => {
    const name = `web-${++groups}`;
    const instances = await createGroup(name);
    const [old] = instances;
    const watch = observed(definition(), name);
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, instanceId: old, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName: `swap-${name}` });

    expect(run).toMatchObject({ status: 'SUCCEEDED' });
    const after = await group(name);
    expect(after).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
    expect(after.instances.map((i) => i.id)).not.toContain(old);
    expect(watch.minInService()).toBeGreaterThanOrEqual(3);
    expect(await orphans({ instances, executionName: `swap-${name}` })).toEqual([]);
    expect(await lockHolder(stack, name)).toBeUndefined();
    const actions = await ledgerActions(`swap-${name}`);
    expect(actions).toEqual([
      'swap.planned',
      'swap.locked',
      'swap.processes-suspended',
      'swap.replacement-launched',
      'swap.replacement-healthy',
      'swap.max-size-raised',
      'swap.replacement-attached',
      'swap.replacement-in-service',
      'swap.old-detached',
      'swap.old-terminated',
      'swap.max-size-restored',
      'swap.processes-resumed',
      'swap.lock-released',
      'swap.succeeded',
    ]);
  });
});

/** Step Functions error names for each fault, per kind of task. */
const THROTTLE: Record<string, string> = { lambda: 'Lambda.TooManyRequestsException', autoscaling: 'AutoScaling.ThrottlingException', ec2: 'Ec2.Ec2Exception', dynamodb: 'DynamoDB.ThrottlingException', events: 'EventBridge.ThrottlingException' };

function kindOf(resource: string): string {
  if (resource.startsWith('arn:aws:lambda:') || resource.endsWith('lambda:invoke')) return 'lambda';
  return /^arn:aws:states:::(?:aws-sdk:)?([a-z0-9]+):/.exec(resource)![1]!;
}

const fail = (name: string, message: string) => Object.assign(new Error(message), { name });

type Fault = 'throttled' | 'crash before its effect' | 'crash after its effect' | 'timeout';
const FAULTS: Fault[] = ['throttled', 'crash before its effect', 'crash after its effect', 'timeout'];

/** Every Task on the forward path (the recorders and the rollback are retried, not faulted here). */
const FORWARD = [
  'Plan the swap with the gatekeeper',
  'Take the group lock',
  'Announce that the swap started',
  'Suspend AZRebalance and Terminate on the group',
  'Launch the Spot replacement in the best allowed pool',
  "Check the replacement's status checks",
  'Raise MaxSize by one for the replacement',
  'Attach the replacement to the group',
  "Check the replacement's lifecycle state",
  'Detach the old instance, decrementing desired capacity',
  'Re-check and terminate the old instance',
  "Restore the group's MaxSize",
  'Resume the processes the swap suspended',
  'Release the group lock',
];

describe('what a swap announces (detail-type and outcome say what happened)', () => {
  const ofExecution = (events: BusEvent[], executionName: string) => events.filter((e) => e.detail.executionId === executionName).map((e) => [e['detail-type'], e.detail.outcome]);

  it("should publish SwapLockHeld, not SwapRolledBack, when another swap holds the group's lock", async () => {
    // Prepare: another execution holds the group, its lease running.
    const name = `held-${++groups}`;
    const instances = await createGroup(name);
    const published = await listenToBus(stack, ['fleetwarden.swap'], name);
    const leaseUntil = new Date(Date.now() + 3_600_000).toISOString();
    await awsClient(DynamoDBClient).send(
      new PutItemCommand({
        TableName: stack.ref('StateStoreLocksTable'),
        Item: { lockId: { S: `swap-lock#us-east-1#${name}` }, owner: { S: 'another-swap' }, leaseUntil: { S: leaseUntil }, expiresAt: { N: '0' } },
      }),
    );
    const executionName = `swap-${name}`;
    // Act
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, executionName });
    // Assess: refused, nothing launched or undone, the other swap's lock untouched.
    expect(run.error).toBe('Swap.LockHeld');
    expect(ofExecution(await published(), executionName)).toEqual([['SwapLockHeld', 'lock-held']]);
    expect(await ledgerActions(executionName)).toEqual(['swap.planned', 'swap.lock-held']);
    expect(await group(name)).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
    expect(await orphans({ instances, executionName })).toEqual([]);
    expect(await lockHolder(stack, name)).toBe('another-swap');
  });

  it('should publish SwapFailed, not SwapRolledBack, when the swap could not be planned (nothing launched, nothing to roll back)', async () => {
    // Prepare
    const name = `absent-${++groups}`;
    const published = await listenToBus(stack, ['fleetwarden.swap'], name);
    const executionName = `swap-${name}`;
    // Act: the group does not exist.
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, executionName });
    // Assess
    expect(run.error).toBe('Swap.PlanFailed');
    const events = (await published()).filter((e) => e.detail.executionId === executionName);
    expect(events.map((e) => [e['detail-type'], e.detail.outcome])).toEqual([['SwapFailed', 'failed']]);
    expect(events[0]!.detail.reason).toContain('Terminal.GroupNotFound');
    expect(await ledgerActions(executionName)).toEqual(['swap.failed']);
  });

  it('should fail the swap at planning with Terminal.UnknownAccount, naming the home account, when the config does not classify it (never assumed PROD)', async () => {
    // Prepare: the deployed swap function, configured with member accounts only.
    const name = `unclassified-${++groups}`;
    const instances = await createGroup(name);
    const published = await listenToBus(stack, ['fleetwarden.swap'], name);
    const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith('SwapsSwapSteps'))!;
    const configured = fn.environment.ACCOUNT_ENVIRONMENTS!;
    const home = fn.environment.HOME_ACCOUNT_ID!;
    fn.environment.ACCOUNT_ENVIRONMENTS = JSON.stringify({ '111111111111': 'PROD', '333333333333': 'LAB' });
    const executionName = `swap-${name}`;
    try {
      // Act
      const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, executionName });
      // Assess: nothing was touched, and the reason says which account to configure.
      expect(run.error).toBe('Swap.PlanFailed');
      const events = (await published()).filter((e) => e.detail.executionId === executionName);
      expect(events.map((e) => e['detail-type'])).toEqual(['SwapFailed']);
      expect(events[0]!.detail.reason).toMatch(new RegExp(`^Terminal\\.UnknownAccount: .*account ${home} is not in Fleetwarden's config`));
      expect(await group(name)).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
      expect((await group(name)).instances.map((i) => i.id).sort()).toEqual([...instances].sort());
      expect(await lockHolder(stack, name)).toBeUndefined();
    } finally {
      fn.environment.ACCOUNT_ENVIRONMENTS = configured;
    }
  });

  it('should publish SwapRolledBack when the rollback undid what the swap did', async () => {
    // Prepare: the attach happens, then its response is lost.
    const name = `undone-${++groups}`;
    const instances = await createGroup(name);
    const published = await listenToBus(stack, ['fleetwarden.swap'], name);
    const executionName = `swap-${name}`;
    const around = {
      'Attach the replacement to the group': async (input: unknown, real: (i: unknown) => Promise<unknown>) => {
        await real(input);
        throw fail('States.TaskFailed', 'the response was lost');
      },
    };
    // Act
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { around, waitMs: 0, retryMs: 0, executionName });
    // Assess
    expect(run.error).toBe('Swap.RolledBack');
    expect(ofExecution(await published(), executionName)).toEqual([
      ['SwapStarted', undefined],
      ['SwapRolledBack', 'rolled-back'],
    ]);
    expect(await group(name)).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
    expect(await orphans({ instances, executionName })).toEqual([]);
  });
});

describe('NodeSwap fault matrix: every forward step x every fault', () => {
  const cases = FORWARD.flatMap((state) => FAULTS.map((fault) => [state, fault] as const));
  const matrix: string[] = [];

  it.each(cases)('%s, %s: capacity never below N, no orphan, group restored, lock released, every step in the ledger', async (state, fault) => {
    const name = `fm-${++groups}`;
    const instances = await createGroup(name);
    const resource = (definition().States as Record<string, any>)[state]?.Resource ?? findResource(definition(), state);
    const kind = kindOf(resource);
    let injected = 0;
    const watch = observed(definition(), name, {
      state,
      inject: async (input, real) => {
        injected += 1;
        if (injected > 1) return real(input); // one fault per execution: a retry meets the real thing
        switch (fault) {
          case 'throttled':
            throw fail(THROTTLE[kind]!, 'Rate exceeded');
          case 'crash before its effect':
            throw fail(kind === 'lambda' ? 'Lambda.Unknown' : 'States.TaskFailed', 'the task crashed');
          case 'crash after its effect': {
            await real(input);
            throw fail(kind === 'lambda' ? 'Lambda.Unknown' : 'States.TaskFailed', 'the response was lost');
          }
          case 'timeout':
            throw fail('States.Timeout', 'the task timed out');
        }
      },
    });
    const executionName = `fm-${name}`;
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName });
    const after = await group(name);
    const actions = await ledgerActions(executionName);
    const outcome = run.status === 'SUCCEEDED' ? 'succeeded' : run.error;
    matrix.push(`${state} | ${fault} | ${outcome}`);

    expect(injected).toBeGreaterThan(0);
    expect(watch.minInService()).toBeGreaterThanOrEqual(3);
    expect(await orphans({ instances, executionName })).toEqual([]);
    expect(after).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
    expect(await lockHolder(stack, name)).toBeUndefined();
    if (run.status === 'SUCCEEDED') {
      expect(actions[0]).toBe('swap.planned');
      expect(actions.at(-1)).toBe('swap.succeeded');
    } else if (state === 'Plan the swap with the gatekeeper') {
      // Nothing was changed; the failure itself is recorded.
      expect(run.error).toBe('Swap.PlanFailed');
      expect(actions).toEqual(['swap.failed']);
    } else {
      expect(actions[0]).toBe('swap.planned');
      expect(run.error).toBe('Swap.RolledBack');
      expect(actions.at(-1)).toBe('swap.rolled-back');
    }
    // Throttling is retried, never rolled back for.
    if (fault === 'throttled') expect(run.status).toBe('SUCCEEDED');
  });

  it('runs out of Spot capacity in every allowed pool: rolled back, nothing left behind', async () => {
    const name = `fm-${++groups}`;
    const instances = await createGroup(name);
    const watch = observed(definition(), name, {
      state: 'Launch the Spot replacement in the best allowed pool',
      inject: async () => {
        throw fail('Terminal.NoSpotCapacity', 'no Spot capacity in any allowed pool (us-east-1/use1-az6/m5.large, us-east-1/use1-az1/m5.large)');
      },
    });
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { around: watch.around, waitMs: 0, retryMs: 0, executionName: `fm-${name}` });
    expect(run.error).toBe('Swap.RolledBack');
    expect(await group(name)).toMatchObject({ max: 3, desired: 3, suspended: [], inService: 3 });
    expect(await orphans({ instances, executionName: `fm-${name}` })).toEqual([]);
    matrix.push(`Launch the Spot replacement in the best allowed pool | InsufficientInstanceCapacity in every pool | ${run.error}`);
  });

  afterAll(() => {
    // The matrix, for the closing note and the README.
    console.log(`\nfault matrix (${matrix.length} cases)\n${matrix.join('\n')}`);
  });
});

function findResource(definition: Record<string, any>, state: string): string {
  for (const s of Object.values<any>(definition.States)) {
    for (const branch of s.Branches ?? []) {
      const found = findResource(branch, state);
      if (found) return found;
    }
  }
  return definition.States?.[state]?.Resource ?? '';
}

describe('NodeSwap in the group\'s own network, under contention and without capacity', () => {
  it('launches the replacement into the group\'s subnet for the chosen zone', async () => {
    const subnets = (await awsClient(EC2Client).send(new DescribeSubnetsCommand({ Filters: [{ Name: 'default-for-az', Values: ['true'] }] }))).Subnets!;
    const chosen = subnets.filter((sn) => ['us-east-1a', 'us-east-1b'].includes(sn.AvailabilityZone!)).map((sn) => sn.SubnetId!);
    const name = `vpc-${++groups}`;
    await createGroup(name, 3, { subnets: chosen });
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, executionName: `swap-${name}` });
    expect(run.status).toBe('SUCCEEDED');
    const members = (await group(name)).instances.map((i) => i.id);
    const described = await awsClient(EC2Client).send(new DescribeInstancesCommand({ InstanceIds: members }));
    const spot = described.Reservations!.flatMap((r) => r.Instances!).filter((i) => i.InstanceLifecycle === 'spot');
    expect(spot).toHaveLength(1);
    expect(chosen).toContain(spot[0]!.SubnetId);
  });

  it('rolls back instead of building on a group that changed between the plan and the lock', async () => {
    const name = `stale-${++groups}`;
    const instances = await createGroup(name);
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, {
      waitMs: 0,
      retryMs: 0,
      executionName: `swap-${name}`,
      around: {
        'Launch the Spot replacement in the best allowed pool': async (input, real) => {
          // An operator raises MaxSize while the swap waits for its lock.
          await awsClient(AutoScalingClient).send(new UpdateAutoScalingGroupCommand({ AutoScalingGroupName: name, MaxSize: 5 }));
          return real(input);
        },
      },
    });
    expect(run.error).toBe('Swap.RolledBack');
    expect(run.events.find((e) => e.error === 'Terminal.PlanStale')).toBeDefined();
    // The operator's MaxSize stays; nothing else was changed.
    expect(await group(name)).toMatchObject({ max: 5, desired: 3, suspended: [], inService: 3 });
    expect(await orphans({ instances, executionName: `swap-${name}` })).toEqual([]);
    expect(await lockHolder(stack, name)).toBeUndefined();
  });
});

describe('launching with the gatekeeper (moto, InsufficientInstanceCapacity injected at RunInstances)', () => {
  it('blocks a pool without capacity for a few minutes and launches in the next one', async () => {
    const name = `ice-${++groups}`;
    await createGroup(name);
    const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith('SwapsSwapSteps'))!;
    const saved = process.env;
    process.env = { ...saved, ...fn.environment };
    try {
      const { SwapAws } = await import('../../functions/swap/aws');
      const { launchStep, planStep } = await import('../../functions/swap/steps');
      const { Gatekeeper } = await import('../../functions/gatekeeper/gatekeeper');
      const { Ec2SpotPriceSource } = await import('../../functions/gatekeeper/aws');
      const { NoPlacementScores } = await import('../../functions/gatekeeper/placement-scores');
      const { DynamoPoolRiskStore } = await import('../../functions/interruption/pool-store');
      const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
      const pools = new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable'));
      /** The real adapter, with EC2 answering InsufficientInstanceCapacity for the first pool tried. */
      class NoCapacityFirst extends SwapAws {
        tried: string[] = [];
        override async launch(plan: SwapPlan, candidate: Candidate) {
          this.tried.push(candidate.key);
          if (this.tried.length === 1) throw Object.assign(new Error('We currently do not have sufficient capacity'), { name: 'InsufficientInstanceCapacity' });
          return super.launch(plan, candidate);
        }
      }
      const locks = new DynamoLocks(stack.ref('StateStoreLocksTable'));
      const aws = new NoCapacityFirst('us-east-1', locks);
      const policy = { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 };
      const deps = {
        aws,
        locks,
        gatekeeper: new Gatekeeper({ store: pools, prices: new Ec2SpotPriceSource(), placementScores: new NoPlacementScores(), ledger, policy }),
        ledger,
        publisher: { publish: async () => undefined },
        region: 'us-east-1',
        account: '123456789012',
        environment: 'PROD' as const,
        dryRunDefault: false,
        clock: () => new Date(),
      };
      const plan = await planStep({ group: name, reason: 'test', trigger: 'manual', dryRun: false }, `ice-${name}`, deps);
      const launched = await launchStep(plan, deps);
      expect(aws.tried).toHaveLength(2);
      expect(launched).toMatchObject({ blockedPools: [aws.tried[0]], pool: aws.tried[1] });
      expect(await deps.gatekeeper.isAllowed({ region: 'us-east-1', azId: plan.candidates[0]!.azId, instanceType: plan.candidates[0]!.instanceType })).toMatchObject({ allowed: false });
      // No state machine rolls this launch back: leave no orphan for other files' checks (one moto per run).
      await aws.terminate(launched.instanceId);
    } finally {
      process.env = saved;
    }
  });
});
