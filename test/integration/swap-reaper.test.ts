import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { executionArnOf } from '../../functions/shared/executions';
import type { LocalStack } from '../../local/provision';
import { runStateMachine } from '../../local/stepfunctions';
import { fixture, freshStack } from '../support';
import { createGroup, group, lockHolder, orphans } from './swap-support';

let stack: LocalStack;
let groups = 0;

beforeAll(async () => {
  stack = await freshStack();
});

const swapArn = () => [...stack.stateMachines.values()].find((m) => m.logicalId.startsWith('SwapsSwapStateMachine'))!.arn;

/** Step Functions' real "Execution Status Change" event for an execution of the swap machine. */
function statusChange(executionName: string, status: 'ABORTED' | 'TIMED_OUT' | 'FAILED', input: unknown) {
  const event = fixture('stepfunctions-execution-aborted');
  const executionArn = executionArnOf(swapArn(), executionName);
  Object.assign(event.detail, { executionArn, stateMachineArn: swapArn(), name: executionName, status, input: JSON.stringify(input) });
  event.resources = [executionArn];
  return event;
}

/** What the reaper rule starts: the synthesized ReapSwap workflow with the event as its input (its 5-minute settle wait skipped). */
async function reap(event: unknown): Promise<{ action: string; status: string }> {
  const run = await runStateMachine(stack, 'SwapsReapSwapStateMachine', event, { waitMs: 0, retryMs: 0, executionName: `reap-${Math.random().toString(36).slice(2)}` });
  const ended = run.events.filter((e) => e.type === 'StateEntered').at(-1)?.state;
  return { status: run.status, action: ended === 'The stopped swap was rolled back' ? 'rolled-back' : ended === 'Nothing was left half done' ? 'nothing' : `${ended}: ${run.error} ${run.cause}` };
}

async function ledgerActions(executionName: string) {
  const found: { action: string; reason: string }[] = [];
  for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) if (e.eventId === executionName) found.push({ action: String(e.action), reason: String(e.reason) });
  return found;
}

describe('swap reaper: an execution stopped or timed out mid-swap is rolled back from the plan stored with its lock', () => {
  it.each([
    ['ABORTED', 'Attach the replacement to the group'],
    ['TIMED_OUT', "Check the replacement's lifecycle state"],
    ['ABORTED', 'Detach the old instance, decrementing desired capacity'],
  ] as const)('%s after "%s": group restored, no orphan, lock released, recorded once', async (status, state) => {
    const name = `reap-${++groups}`;
    const instances = await createGroup(name);
    const input = { group: name, dryRun: false };
    const executionName = `reap-exec-${groups}`;
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', input, { waitMs: 0, retryMs: 0, executionName, abortAfter: state });
    expect(run.status).toBe('ABORTED');
    // Stopped mid-swap: nothing rolled back, the lock still held.
    expect(await lockHolder(stack, name)).toBe(executionName);

    const outcome = await reap(statusChange(executionName, status, input));
    expect(outcome).toEqual({ status: 'SUCCEEDED', action: 'rolled-back' });
    const after = await group(name);
    expect(after).toMatchObject({ max: 3, desired: 3, inService: 3, suspended: [] });
    expect(await orphans({ instances, executionName })).toEqual([]);
    expect(await lockHolder(stack, name)).toBeUndefined();
    const entries = await ledgerActions(executionName);
    expect(entries.map((e) => e.action)).toEqual(['swap.planned', 'swap.rolled-back']);
    expect(entries.at(-1)!.reason).toMatch(new RegExp(`^rolled back after Execution\\.${status}: execution ${executionName} ended ${status} without its rollback`));

    // Redelivered (EventBridge delivers at least once): nothing more happens.
    expect(await reap(statusChange(executionName, status, input))).toMatchObject({ action: 'nothing' });
    expect(await ledgerActions(executionName)).toHaveLength(2);
  });

  it('leaves alone an execution that rolled itself back (its lock is released) and one that is not the lock holder', async () => {
    const name = `reap-${++groups}`;
    await createGroup(name);
    const input = { group: name, dryRun: false };
    const executionName = `reap-exec-${groups}`;
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', input, {
      waitMs: 0,
      retryMs: 0,
      executionName,
      around: { 'Attach the replacement to the group': async () => Promise.reject(Object.assign(new Error('boom'), { name: 'States.TaskFailed' })) },
    });
    expect(run).toMatchObject({ status: 'FAILED', error: 'Swap.RolledBack' });
    // It failed through its own Fail state (Swap.RolledBack): left alone, whatever the lock says.
    expect(await reap({ ...statusChange(executionName, 'FAILED', input), detail: { ...statusChange(executionName, 'FAILED', input).detail, error: 'Swap.RolledBack' } })).toMatchObject({ action: 'nothing' });
    expect(await reap(statusChange('someone-else', 'ABORTED', input))).toMatchObject({ action: 'nothing' });
  });

  it('an event that is not a Step Functions status change is refused with the field named, and operators are alerted', async () => {
    const run = await runStateMachine(stack, 'SwapsReapSwapStateMachine', { source: 'aws.ec2', 'detail-type': 'EC2 Instance State-change Notification', detail: {} }, { waitMs: 0, retryMs: 0 });
    expect(run).toMatchObject({ status: 'FAILED', error: 'Swap.ReapFailed' });
    expect(run.events.find((e) => e.state === 'Find what the stopped swap still holds' && e.error)?.cause).toMatch(/event\.source/);
    expect(run.events.some((e) => e.state === 'Alert operators that the stopped swap could not be rolled back')).toBe(true);
  });
});
