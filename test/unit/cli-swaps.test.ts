import { describe, expect, it } from 'vitest';
import { formatStarted, formatStatus, manualExecutionName, parseSwapBatchArgs, parseSwapStartArgs, parseSwapStatusArgs, runSwapCommand } from '../../functions/swap/cli';
import { CliUsageError } from '../../functions/shared/cli';
import { EXECUTION_NAME } from '../../functions/shared/executions';

const SM = 'arn:aws:states:us-east-1:111111111111:stateMachine:fleetwarden-node-swap';
const EXECUTION = 'arn:aws:states:us-east-1:111111111111:execution:fleetwarden-node-swap:manual-web-1';

describe('fleetwarden swap start arguments', () => {
  it('builds a validated manual swap request, leaving dry-run to the deployment by default', () => {
    expect(parseSwapStartArgs(['--group', 'web', '--stack', 'Fleetwarden'])).toEqual({
      target: { stack: 'Fleetwarden' },
      request: { group: 'web', trigger: 'manual', reason: 'replace On-Demand with Spot' },
    });
  });

  it('takes an instance, a cluster, a reason, --no-dry-run, a state machine ARN and a region', () => {
    expect(parseSwapStartArgs(['--group', 'web', '--instance', 'i-0123456789abcdef0', '--cluster', 'prod', '--reason', 'kernel CVE', '--no-dry-run', '--state-machine', SM, '--region=eu-west-1'])).toEqual({
      target: { stateMachine: SM },
      region: 'eu-west-1',
      request: { group: 'web', instanceId: 'i-0123456789abcdef0', cluster: 'prod', reason: 'kernel CVE', trigger: 'manual', dryRun: false },
    });
    expect(parseSwapStartArgs(['--group', 'web', '--dry-run', '--stack', 'S']).request.dryRun).toBe(true);
  });

  it.each([
    [['--stack', 'S'], '--group: required'],
    [['--group', '--stack', 'S'], '--group: needs a value'],
    [['--group', 'web', '--instance', 'web-1', '--stack', 'S'], '--instance: an instance id looks like i-0123456789abcdef0'],
    [['--group', 'web'], '--stack: give --stack NAME or --state-machine ARN (one of them)'],
    [['--group', 'web', '--stack', 'S', '--state-machine', SM], '--stack: give --stack NAME or --state-machine ARN (one of them)'],
    [['--group', 'web', '--state-machine', 'arn:aws:sns:us-east-1:111111111111:topic'], '--state-machine: a state machine ARN looks like'],
    [['--group', 'web', '--stack', 'S', '--dry-run', '--no-dry-run'], '--dry-run: give --dry-run or --no-dry-run, not both'],
    [['--group', 'web', '--stack', 'S', '--dry-run', 'yes'], '--dry-run: a switch takes no value'],
    [['--group', 'web', '--stack', 'S', '--region', 'mars'], '--region: a region looks like us-east-1'],
    [['--group', 'web', '--stack', 'S', '--reason', ''], '--reason: needs a value'],
    [['--group', 'x'.repeat(256), '--stack', 'S'], '--group: Too big'],
    [['--group', 'web', '--stack', 'S', '--colour', 'red'], 'unknown flag: --colour'],
    [['web'], 'unexpected argument "web"'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseSwapStartArgs(argv)).toThrow(CliUsageError);
    expect(() => parseSwapStartArgs(argv)).toThrow(message);
  });
});

describe('fleetwarden swap batch arguments', () => {
  it('builds a validated batch request from groups, a percent budget and the switches', () => {
    expect(parseSwapBatchArgs(['--groups', 'web, api', '--budget', '25%', '--no-canary', '--max-failed', '2', '--urgent', '--reason', 'quarterly', '--stack', 'S'])).toEqual({
      target: { stack: 'S' },
      request: { groups: ['web', 'api'], trigger: 'manual', reason: 'quarterly', budget: { percent: 25 }, canary: false, maxFailedSwaps: 2, urgent: true },
    });
  });

  it('builds one for a cluster, some instances and a count budget, with the canary on by default', () => {
    expect(parseSwapBatchArgs(['--cluster', 'prod', '--instances', 'i-0123456789abcdef0,i-0123456789abcdef1', '--budget', '2', '--dry-run', '--state-machine', SM]).request).toEqual({
      cluster: 'prod',
      instanceIds: ['i-0123456789abcdef0', 'i-0123456789abcdef1'],
      trigger: 'manual',
      reason: 'replace On-Demand with Spot',
      budget: { count: 2 },
      canary: true,
      urgent: false,
      dryRun: true,
    });
  });

  it.each([
    [['--stack', 'S'], '--groups: name the groups or the cluster to work through'],
    [['--groups', 'web', '--budget', 'lots', '--stack', 'S'], '--budget: a count like 2 or a percent like 25%'],
    [['--groups', 'web', '--budget', '0', '--stack', 'S'], '--budget: a count like 2 or a percent like 25%'],
    [['--groups', 'web', '--budget', '150%', '--stack', 'S'], '--budget: a count like 2 or a percent like 25%'],
    [['--groups', 'web', '--budget', '--stack', 'S'], '--budget: needs a value'],
    [['--groups', 'web,,api', '--stack', 'S'], '--groups: an empty item in the list'],
    [['--groups', 'web', '--instances', 'i-0123456789abcdef0,web-2', '--stack', 'S'], '--instances: an instance id looks like i-0123456789abcdef0'],
    [['--groups', 'web', '--max-failed', '-1', '--stack', 'S'], '--max-failed: a whole number from 0 to 100'],
    [['--groups', 'web', '--max-failed', '101', '--stack', 'S'], '--max-failed: a whole number from 0 to 100'],
    [['--groups', 'web', '--urgent', 'please', '--stack', 'S'], '--urgent: a switch takes no value'],
    [['--groups', 'web', '--no-canary', 'x', '--stack', 'S'], '--no-canary: a switch takes no value'],
    [['--groups', 'web', '--dry-run', '--no-dry-run', '--stack', 'S'], '--dry-run: give --dry-run or --no-dry-run, not both'],
    [['--groups', 'web'], '--stack: give --stack NAME or --state-machine ARN (one of them)'],
    [['--groups', 'web', '--stack', 'S', '--budgett', '2'], 'unknown flag: --budgett'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseSwapBatchArgs(argv)).toThrow(CliUsageError);
    expect(() => parseSwapBatchArgs(argv)).toThrow(message);
  });
});

describe('fleetwarden swap status arguments', () => {
  it('takes an execution ARN, a region and --json', () => {
    expect(parseSwapStatusArgs(['--execution', EXECUTION, '--region', 'us-east-1', '--json'])).toEqual({ execution: EXECUTION, region: 'us-east-1', json: true });
  });

  it.each([
    [[], '--execution: required'],
    [['--execution', SM], '--execution: an execution ARN looks like'],
    [['--execution', EXECUTION, '--json', 'yes'], '--json: a switch takes no value'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseSwapStatusArgs(argv)).toThrow(message);
  });

  it('refuses an unknown swap command', async () => {
    await expect(runSwapCommand('stop', [])).rejects.toThrow('unknown swap command "stop"');
    await expect(runSwapCommand(undefined, [])).rejects.toThrow(CliUsageError);
  });
});

describe('output', () => {
  it('names executions safely and uniquely', () => {
    const a = manualExecutionName('web:blue/green', new Date('2026-12-01T10:00:00.123Z'));
    expect(a).toMatch(/^manual-web-blue-green-20261201T100000Z-[0-9a-f]{6}$/);
    expect(a).toMatch(EXECUTION_NAME);
    expect(manualExecutionName('x'.repeat(300))).toMatch(EXECUTION_NAME);
    expect(manualExecutionName('web')).not.toBe(manualExecutionName('web'));
  });

  it('prints the execution ARN and how to follow it', () => {
    const text = formatStarted({ started: true, executionArn: EXECUTION, stateMachineArn: SM, name: 'manual-web-1', input: { group: 'web', trigger: 'manual', reason: 'r' } }, 'us-east-1');
    expect(text.split('\n')).toEqual([`started ${EXECUTION}`, 'input {"group":"web","trigger":"manual","reason":"r"}', `follow it: fleetwarden swap status --execution ${EXECUTION} --region us-east-1`]);
  });

  it('prints the status, and the output or the error once done', () => {
    expect(formatStatus({ executionArn: EXECUTION, name: 'manual-web-1', status: 'RUNNING', startDate: new Date('2026-12-01T10:00:00Z') })).toBe('RUNNING: manual-web-1, started 2026-12-01T10:00:00.000Z');
    expect(formatStatus({ executionArn: EXECUTION, name: 'n', status: 'SUCCEEDED', output: { swapped: 2 } })).toBe('SUCCEEDED: n\noutput {\n  "swapped": 2\n}');
    expect(formatStatus({ executionArn: EXECUTION, name: 'n', status: 'FAILED', error: 'Swap.RolledBack', cause: 'see the ledger' })).toBe('FAILED: n\nerror Swap.RolledBack: see the ledger');
  });
});
