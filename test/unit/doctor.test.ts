import { describe, expect, it } from 'vitest';
import { DOCTOR_COMMAND, formatDoctor, parseDoctorArgs } from '../../functions/doctor/cli';
import { mapLimit } from '../../functions/doctor/doctor';
import {
  type DeployedRule,
  EXPECTED_FORWARDING,
  type MemberAccess,
  busPolicyResults,
  clusterProblem,
  forwardingProblems,
  forwardingResult,
  homeResourceProblem,
  homeResources,
  memberTargets,
  readBusPolicy,
  report,
} from '../../functions/doctor/model';
import { CliUsageError, parseCommandArgs } from '../../functions/shared/cli';
import { MEMBER_STACK_NAME, buildApp } from '../../lib/app';
import { FORWARDED_EVENTS } from '../../lib/member-stack';

const HOME = '123456789012';
const BUS = `arn:aws:events:us-east-1:${HOME}:event-bus/default`;
const access: MemberAccess = {
  homeAccount: HOME,
  homeRegion: 'us-east-1',
  homeBusArn: BUS,
  memberRoleName: 'fleetwarden-member',
  regions: ['us-east-1', 'eu-west-1'],
  accounts: [
    { id: HOME, name: 'home' },
    { id: '111111111111', name: 'payments-prod' },
    { id: '222222222222', name: 'payments-staging', regions: ['eu-west-1'] },
  ],
};

/** The rules the member stack deploys, as EventBridge lists them. */
const deployed = (targets = [BUS]): DeployedRule[] =>
  EXPECTED_FORWARDING.map((e, i) => ({ name: `FleetwardenMember-Rule${i}`, state: 'ENABLED', eventPattern: JSON.stringify(e.pattern), targets }));

describe('the forwarding rules doctor expects', () => {
  it('are the events the member stack forwards, in its order', () => {
    expect(EXPECTED_FORWARDING.map((e) => e.detailType)).toEqual(FORWARDED_EVENTS.map((f) => f.event.detailType));
  });

  it('carry exactly the patterns of the synthesized member template', () => {
    const { app } = buildApp({ skipBundling: true, nag: false });
    const template = app.synth().getStackByName(MEMBER_STACK_NAME).template as { Resources: Record<string, { Type: string; Properties: { EventPattern: unknown } }> };
    const patterns = Object.values(template.Resources).filter((r) => r.Type === 'AWS::Events::Rule').map((r) => r.Properties.EventPattern);
    expect(patterns).toEqual(EXPECTED_FORWARDING.map((e) => e.pattern));
  });

  it('are all found when each pattern is deployed and sends to the home bus, whatever the key order', () => {
    const reordered = deployed().map((r) => ({ ...r, eventPattern: JSON.stringify(Object.fromEntries(Object.entries(JSON.parse(r.eventPattern!)).reverse())) }));
    expect(forwardingProblems(reordered, BUS)).toEqual([]);
  });

  it('says the member stack is not deployed, naming account and region, when none is there', () => {
    const result = forwardingResult(access, { account: '222222222222', name: 'payments-staging', region: 'eu-west-1', role: true }, forwardingProblems([], BUS));
    expect(result).toMatchObject({ target: '222222222222 eu-west-1', ok: false });
    expect(result.fix).toBe(`deploy FleetwardenMember to 222222222222 in eu-west-1 with HomeAccountId=${HOME} (see README, Member accounts)`);
  });

  it('names a rule that is disabled, missing, or sends to another bus', () => {
    const rules = deployed();
    rules[0]!.state = 'DISABLED';
    rules[1]!.targets = ['arn:aws:events:us-east-1:999999999999:event-bus/default'];
    const problems = forwardingProblems(rules.slice(0, -1), BUS);
    expect(problems.map((p) => p.problem)).toEqual(['disabled', 'wrong target', 'missing']);
    const result = forwardingResult(access, { account: '111111111111', name: 'payments-prod', region: 'us-east-1', role: true }, problems);
    expect(result.detail).toContain(`${EXPECTED_FORWARDING[0]!.detailType}: rule FleetwardenMember-Rule0 is disabled`);
    expect(result.detail).toContain('sends to arn:aws:events:us-east-1:999999999999:event-bus/default');
    expect(result.fix).toMatch(/^update FleetwardenMember in 111111111111 us-east-1 with HomeAccountId=123456789012/);
  });
});

describe('the member accounts and regions doctor visits', () => {
  it('are every account in its regions, but for the home account in the home region, with the role outside the home account', () => {
    expect(memberTargets(access)).toEqual([
      { account: HOME, name: 'home', region: 'eu-west-1', role: false },
      { account: '111111111111', name: 'payments-prod', region: 'us-east-1', role: true },
      { account: '111111111111', name: 'payments-prod', region: 'eu-west-1', role: true },
      { account: '222222222222', name: 'payments-staging', region: 'eu-west-1', role: true },
    ]);
  });
});

describe('reading the home bus policy', () => {
  const statement = (principal: unknown, extra: Record<string, unknown> = {}) => ({ Sid: 's', Effect: 'Allow', Principal: principal, Action: 'events:PutEvents', Resource: BUS, ...extra });
  const policy = (...statements: unknown[]) => JSON.stringify({ Version: '2012-10-17', Statement: statements });

  it('finds the accounts named by root ARN or by id', () => {
    const read = readBusPolicy(policy(statement({ AWS: 'arn:aws:iam::111111111111:root' }), statement({ AWS: ['222222222222'] })));
    expect([...read.accounts]).toEqual(['111111111111', '222222222222']);
    expect(read.anyone).toBe(false);
  });

  it('finds an organization by its aws:PrincipalOrgID condition, and does not take that for anyone', () => {
    const read = readBusPolicy(policy(statement('*', { Condition: { StringEquals: { 'aws:PrincipalOrgID': 'o-a1b2c3d4e5' } } })));
    expect([...read.organizations]).toEqual(['o-a1b2c3d4e5']);
    expect(read.anyone).toBe(false);
  });

  it('ignores Deny statements and other actions, and accepts nobody without a policy or with garbage', () => {
    const read = readBusPolicy(policy({ ...statement({ AWS: '111111111111' }), Effect: 'Deny' }, { ...statement({ AWS: '222222222222' }), Action: 'events:DescribeRule' }));
    expect(read.accounts.size).toBe(0);
    expect(readBusPolicy(undefined).accounts.size).toBe(0);
    expect(readBusPolicy('{not json').anyone).toBe(false);
  });

  it('fails each member account the policy lacks, with the fix naming the stack, and never asks it of the home account', () => {
    const results = busPolicyResults(access, policy(statement({ AWS: 'arn:aws:iam::111111111111:root' })), 'Fleetwarden');
    expect(results.map((r) => [r.check, r.ok])).toEqual([
      ['accepts 111111111111 (payments-prod)', true],
      ['accepts 222222222222 (payments-staging)', false],
    ]);
    expect(results[1]!.fix).toContain('cdk deploy Fleetwarden');
  });

  it('checks the organization alone when one is configured', () => {
    const results = busPolicyResults({ ...access, organizationId: 'o-a1b2c3d4e5' }, policy(statement({ AWS: '111111111111' })), 'Fleetwarden');
    expect(results).toEqual([expect.objectContaining({ check: 'accepts organization o-a1b2c3d4e5', ok: false })]);
  });
});

describe('the home resources doctor checks', () => {
  it('are the tables, queues, state machines, bus, archive bucket and signing key the outputs name', () => {
    const outputs = { LedgerTableName: 't', InterruptionQueueUrl: 'https://sqs/q', NodeSwapStateMachineArn: 'arn:sm', EventBusName: 'fleetwarden', ArchiveBucketName: 'b', DigestSigningKeyArn: 'arn:key', DashboardName: 'd', OperatingMode: '{}' };
    expect(homeResources(outputs).map((r) => `${r.kind} ${r.output}`)).toEqual(['table LedgerTableName', 'queue InterruptionQueueUrl', 'state machine NodeSwapStateMachineArn', 'bus EventBusName', 'bucket ArchiveBucketName', 'key DigestSigningKeyArn']);
  });

  it('say a resource that is gone does not exist, and to redeploy the stack', () => {
    const problem = homeResourceProblem({ kind: 'queue', output: 'EnforcementQueueUrl', id: 'http://localhost/123456789012/fw-EnforcementQueue' }, 'Fleetwarden', Object.assign(new Error('gone'), { name: 'QueueDoesNotExist' }));
    expect(problem).toEqual({ detail: 'queue fw-EnforcementQueue does not exist', fix: 'redeploy the home stack (cdk deploy Fleetwarden) to recreate EnforcementQueueUrl; if it was deleted by hand, its data is gone' });
  });
});

describe('a cluster that does not answer an authenticated request', () => {
  const error = (name: string, message: string) => Object.assign(new Error(message), { name });

  it('is sent to the RBAC manifest when the identity is forbidden', () => {
    expect(clusterProblem('prod-eks', error('Terminal.KubernetesForbidden', 'read node x: HTTP 403')).fix).toContain('apply manifests/fleetwarden-rbac.yaml to prod-eks');
  });

  it('is sent to the identity mapping when the token is refused', () => {
    expect(clusterProblem('prod-eks', error('Retryable.KubernetesUnavailable', 'read node x: HTTP 401: Unauthorized')).fix).toContain("map Fleetwarden's identity in prod-eks");
  });

  it('is sent to the config when EKS does not know the cluster', () => {
    expect(clusterProblem('prod-eks', error('Terminal.UnknownCluster', 'EKS cluster prod-eks not found in us-east-1')).fix).toContain('check kubernetes.clusters');
  });
});

describe('fleetwarden doctor arguments', () => {
  it('need --stack, and take --member-role, --concurrency, --region, --profile and --json', () => {
    expect(parseDoctorArgs(['--stack', 'Fleetwarden', '--member-role', 'OrganizationAccountAccessRole', '--concurrency', '16', '--region', 'eu-west-1', '--profile', 'ops', '--json'])).toEqual({
      stack: 'Fleetwarden',
      'member-role': 'OrganizationAccountAccessRole',
      concurrency: 16,
      region: 'eu-west-1',
      profile: 'ops',
      json: true,
    });
  });

  it.each([
    [[], '--stack: required'],
    [['--stack'], '--stack: needs a value'],
    [['--stack', 'S', '--concurrency', '0'], '--concurrency: a whole number from 1 to 64'],
    [['--stack', 'S', '--concurrency', 'many'], '--concurrency: a whole number from 1 to 64'],
    [['--stack', 'S', '--member-role', 'no/slash'], '--member-role: an IAM role name'],
    [['--stack', 'S', '--region', 'mars'], '--region: a region looks like us-east-1'],
    [['--stack', 'S', '--json', 'yes'], '--json: a switch takes no value'],
    [['--stack', 'S', '--stak', 'T'], 'unknown flag: --stak'],
  ])('%j is refused naming the flag: %s', (argv, message) => {
    const parse = () => parseCommandArgs(DOCTOR_COMMAND, argv as string[]);
    expect(parse).toThrow(CliUsageError);
    expect(parse).toThrow(message);
  });
});

describe('the doctor report', () => {
  it('lists each check, explains each failure with its fix, and sums up', () => {
    const r = report('Fleetwarden', 'us-east-1', new Date('2026-12-07T10:00:00Z'), [
      { target: 'home us-east-1', check: 'table LedgerTableName', ok: true },
      { target: '222222222222 eu-west-1', check: 'forwarding rules (6)', ok: false, detail: 'no forwarding rule', fix: 'deploy FleetwardenMember to 222222222222 in eu-west-1' },
    ]);
    const text = formatDoctor(r);
    expect(r.failed).toBe(1);
    expect(text).toMatch(/^TARGET\s+CHECK\s+RESULT$/m);
    expect(text).toMatch(/^home us-east-1\s+table LedgerTableName\s+ok$/m);
    expect(text).toMatch(/^222222222222 eu-west-1\s+forwarding rules \(6\)\s+FAIL$/m);
    expect(text).toMatch(/^\s+fix: deploy FleetwardenMember to 222222222222 in eu-west-1$/m);
    expect(text.split('\n').at(-1)).toBe('1 of 2 checks failed.');
  });

  it('runs at most the given number of checks at once, results in order', async () => {
    let running = 0;
    let most = 0;
    const out = await mapLimit([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      most = Math.max(most, ++running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running--;
      return n * 2;
    });
    expect(out).toEqual([2, 4, 6, 8, 10, 12, 14]);
    expect(most).toBe(3);
  });
});
