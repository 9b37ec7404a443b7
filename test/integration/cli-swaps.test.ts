import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { CreateStateMachineCommand, DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { beforeAll, describe, expect, it } from 'vitest';
import { runSwapCommand } from '../../functions/swap/cli';
import { awsClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { createOutputsStack } from '../../local/outputs';

const run = randomBytes(3).toString('hex');
const sfn = () => awsClient(SFNClient);
let swapArn: string;
let batchArn: string;
const stackName = `fleetwarden-cli-${run}`;
const oldStackName = `fleetwarden-cli-old-${run}`;

/** A stand-in workflow in moto (moto records executions; it does not run them). */
async function machine(name: string): Promise<string> {
  const out = await sfn().send(
    new CreateStateMachineCommand({ name, definition: JSON.stringify({ StartAt: 'Swap', States: { Swap: { Type: 'Pass', End: true } } }), roleArn: 'arn:aws:iam::123456789012:role/states', type: 'STANDARD' }),
  );
  return out.stateMachineArn!;
}

/** A deployed stack as the CLI sees it: its outputs. */
const stack = (name: string, outputs: Record<string, string>): Promise<void> => createOutputsStack(name, outputs);

async function inputOf(executionArn: string): Promise<unknown> {
  return JSON.parse((await sfn().send(new DescribeExecutionCommand({ executionArn }))).input!);
}

const executionArnIn = (text: string) => /^started (\S+)$/m.exec(text)![1]!;

beforeAll(async () => {
  swapArn = await machine(`cli-swap-${run}`);
  batchArn = await machine(`cli-batch-${run}`);
  await stack(stackName, { NodeSwapStateMachineArn: swapArn, SwapBatchStateMachineArn: batchArn, LedgerTableName: 'unused' });
  await stack(oldStackName, { NodeSwapStateMachineArn: swapArn });
});

describe('fleetwarden swap against moto', () => {
  it('starts a swap on the state machine given, with the validated request as input', async () => {
    // Act
    const { text, code } = await runSwapCommand('start', ['--group', 'web', '--instance', 'i-0123456789abcdef0', '--no-dry-run', '--state-machine', swapArn]);
    // Assess
    expect(code).toBe(0);
    const executionArn = executionArnIn(text);
    expect(executionArn).toMatch(new RegExp(`^arn:aws:states:us-east-1:123456789012:execution:cli-swap-${run}:manual-web-\\d{8}T\\d{6}Z-[0-9a-f]{6}$`));
    expect(text).toContain(`follow it: fleetwarden swap status --execution ${executionArn}`);
    expect(await inputOf(executionArn)).toEqual({ group: 'web', instanceId: 'i-0123456789abcdef0', reason: 'replace On-Demand with Spot', trigger: 'manual', dryRun: false });
  });

  it('finds the batch machine through the stack outputs and starts the batch there', async () => {
    const { text } = await runSwapCommand('batch', ['--groups', 'web,api', '--budget', '25%', '--max-failed', '0', '--stack', stackName]);
    const executionArn = executionArnIn(text);
    const listed = (await sfn().send(new ListExecutionsCommand({ stateMachineArn: batchArn }))).executions!;
    expect(listed.map((e) => e.executionArn)).toContain(executionArn);
    expect(await inputOf(executionArn)).toEqual({ groups: ['web', 'api'], trigger: 'manual', reason: 'replace On-Demand with Spot', budget: { percent: 25 }, canary: true, maxFailedSwaps: 0, urgent: false });
  });

  it('says which output is missing when the stack predates batch swaps, and which stack does not exist', async () => {
    await expect(runSwapCommand('batch', ['--groups', 'web', '--stack', oldStackName])).rejects.toThrow(`--stack: stack ${oldStackName} has no output SwapBatchStateMachineArn`);
    await expect(runSwapCommand('start', ['--group', 'web', '--stack', `no-such-stack-${run}`])).rejects.toThrow(`--stack: no stack no-such-stack-${run}`);
  });

  it('reports an execution’s status, and fails the status of one that was stopped', async () => {
    const started = executionArnIn((await runSwapCommand('start', ['--group', 'api', '--stack', stackName])).text);
    const running = await runSwapCommand('status', ['--execution', started]);
    expect(running.code).toBe(0);
    expect(running.text).toMatch(/^RUNNING: manual-api-\S+, started \d{4}-\d\d-\d\dT/);
    const json = JSON.parse((await runSwapCommand('status', ['--execution', started, '--json'])).text) as { status: string; input: unknown };
    expect(json).toMatchObject({ status: 'RUNNING', input: { group: 'api', trigger: 'manual' } });

    await sfn().send(new StopExecutionCommand({ executionArn: started, error: 'Operator', cause: 'changed my mind' }));
    const stopped = await runSwapCommand('status', ['--execution', started]);
    expect(stopped.code).toBe(1);
    expect(stopped.text.split('\n')[0]).toMatch(/^ABORTED: manual-api-/);
  });
});

describe('the fleetwarden binary', () => {
  const cli = (args: string[]) =>
    promisify(execFile)(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [path.join(PROJECT_ROOT, 'bin', 'fleetwarden-cli.ts'), ...args], { env: process.env, cwd: PROJECT_ROOT }).then(
      (out) => ({ code: 0, stdout: out.stdout, stderr: out.stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('starts a swap and prints the ARN to follow, exit status 0', async () => {
    const out = await cli(['swap', 'start', '--group', 'web', '--state-machine', swapArn]);
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^started arn:aws:states:us-east-1:123456789012:execution:cli-swap-${run}:manual-web-`));
  });

  it('answers bad input with the flag and the swap usage, exit status 2', async () => {
    const out = await cli(['swap', 'batch', '--groups', 'web', '--budget', 'half', '--stack', stackName]);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('fleetwarden: --budget: a count like 2 or a percent like 25%');
    expect(out.stderr).toContain('usage: fleetwarden swap start');
  });

  it('still dispatches ledger verify and refuses an unknown command', async () => {
    const verify = await cli(['ledger', 'verify', '--table', 'ledger']);
    expect(verify.code).toBe(2);
    expect(verify.stderr).toContain('--stack: give --stack, or all of --table, --bucket and --signing-key');
    const unknown = await cli(['fleet', 'explode']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "fleet explode"');
  });
});
