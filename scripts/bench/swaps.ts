import type { CountingProxy } from '../../local/counting-proxy';
import { seedGroup } from '../../local/fleet';
import type { LocalStack } from '../../local/provision';
import { type ExecutionResult, runStateMachine } from '../../local/stepfunctions';

/**
 * AWS list prices (us-east-1, on-demand, as published on the service pricing pages):
 * Step Functions Standard $0.025 per 1,000 state transitions; Lambda $0.20 per million requests
 * and $0.0000133334 per GB-second on ARM64; DynamoDB on-demand $0.625 per million write and
 * $0.125 per million read request units; EventBridge custom events $1.00 per million. EC2 and
 * Auto Scaling API calls are free.
 */
const PRICE = { transition: 0.025 / 1000, lambdaRequest: 0.2 / 1e6, lambdaGbSecond: 0.0000133334, ddbWrite: 0.625 / 1e6, ddbRead: 0.125 / 1e6, event: 1 / 1e6 };
const LAMBDA_MEMORY_GB = 0.5;
/** Billed duration per invocation assumed for the cost (a logic step is a few AWS calls). */
const ASSUMED_LAMBDA_MS = 300;

const group = (name: string) => seedGroup(name, 3);

function cost(run: { transitions: number; lambdaInvocations: number }, calls: Record<string, number>) {
  const writes = (calls.PutItem ?? 0) + (calls.DeleteItem ?? 0) + (calls.UpdateItem ?? 0) + 2 * 2 * (calls.TransactWriteItems ?? 0); // a ledger transaction writes 2 items at 2 WRU
  const reads = (calls.GetItem ?? 0) + (calls.Query ?? 0) + (calls.BatchGetItem ?? 0);
  const usd =
    run.transitions * PRICE.transition +
    run.lambdaInvocations * (PRICE.lambdaRequest + PRICE.lambdaGbSecond * LAMBDA_MEMORY_GB * (ASSUMED_LAMBDA_MS / 1000)) +
    writes * PRICE.ddbWrite +
    reads * PRICE.ddbRead +
    (calls.PutEvents ?? 0) * PRICE.event;
  return { usd: Number(usd.toFixed(6)), assumptions: `Lambda ${LAMBDA_MEMORY_GB * 1024} MB x ${ASSUMED_LAMBDA_MS} ms per invocation; DynamoDB units from the counted calls` };
}

export async function swapBench(stack: LocalStack, proxy: CountingProxy): Promise<Record<string, unknown>> {
  const results: Record<string, unknown> = {};
  for (const [label, around] of [
    ['successfulSwap', undefined],
    [
      'rollbackAfterAttach',
      {
        'Attach the replacement to the group': async (input: unknown, real: (i: unknown) => Promise<unknown>) => {
          await real(input);
          throw Object.assign(new Error('the response was lost'), { name: 'States.TaskFailed' });
        },
      },
    ],
  ] as const) {
    const name = `bench-${label}`;
    await group(name);
    proxy.reset();
    const run = await runStateMachine(stack, 'SwapsSwapStateMachine', { group: name, dryRun: false }, { waitMs: 0, retryMs: 0, around: around as never, executionName: name });
    const calls = proxy.counts();
    results[label] = {
      status: run.status === 'SUCCEEDED' ? 'SUCCEEDED' : run.error,
      stateTransitions: run.transitions,
      lambdaInvocations: run.lambdaInvocations,
      sdkTaskCalls: run.sdkCalls,
      awsApiCalls: proxy.total(),
      awsApiCallsByOperation: calls,
      costPerSwapUsd: cost(run, calls),
    };
  }

  // Batches of a group of 3: a clean one, and one whose second swap is rolled back (then retried).
  for (const [label, failSecondAttach] of [
    ['batchOfThree', false],
    ['batchOfThreeWithOneRollback', true],
  ] as const) {
    const name = `bench-${label}`;
    await group(name);
    proxy.reset();
    let attaches = 0;
    const around = failSecondAttach
      ? {
          'Attach the replacement to the group': async (input: unknown, real: (i: unknown) => Promise<unknown>) => {
            const out = await real(input);
            if (++attaches === 2) throw Object.assign(new Error('the response was lost'), { name: 'States.TaskFailed' });
            return out;
          },
        }
      : undefined;
    const run = await runStateMachine(stack, 'SwapBatchBatchStateMachine', { groups: [name], dryRun: false, urgent: true }, { waitMs: 0, retryMs: 0, around: around as never, executionName: name });
    const calls = proxy.counts();
    const all = totals(run);
    results[label] = {
      status: run.status === 'SUCCEEDED' ? 'SUCCEEDED' : run.error,
      swapExecutions: run.children.map((c) => (c.status === 'SUCCEEDED' ? 'SUCCEEDED' : c.error)),
      batchStateTransitions: run.transitions,
      batchLambdaInvocations: run.lambdaInvocations,
      stateTransitionsIncludingSwaps: all.transitions,
      lambdaInvocationsIncludingSwaps: all.lambdaInvocations,
      awsApiCalls: proxy.total(),
      costPerBatchUsd: cost(all, calls),
      costPerInstanceSwappedUsd: Number((cost(all, calls).usd / 3).toFixed(6)),
    };
  }
  return results;
}

/** A run with the executions it started (.sync children), added up: what Step Functions and Lambda bill. */
function totals(run: ExecutionResult): { transitions: number; lambdaInvocations: number } {
  return run.children.map(totals).reduce((a, c) => ({ transitions: a.transitions + c.transitions, lambdaInvocations: a.lambdaInvocations + c.lambdaInvocations }), { transitions: run.transitions, lambdaInvocations: run.lambdaInvocations });
}
