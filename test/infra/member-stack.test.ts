import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ENFORCEMENT_EVENTS } from '../../functions/enforcement/events';
import { HANDLED_EVENTS } from '../../functions/interruption/events';
import { buildApp, MEMBER_STACK_NAME } from '../../lib/app';
import { SPOT_INSTANCE_TARGET, SPOT_INTERRUPTION_ACTION } from '../../lib/constructs/chaos';
import { MEMBER_ROLE_TRUSTEES } from '../../lib/constructs/member-access';

const HOME_REGION = 'eu-west-1';
const ORG_ID = 'o-a1b2c3d4e5';
const base = {
  homeRegion: HOME_REGION,
  regions: [HOME_REGION, 'us-east-1'],
  accounts: [
    { id: '111111111111', name: 'payments-prod', environment: 'PROD' },
    { id: '222222222222', name: 'sandbox', environment: 'LAB' },
  ],
};

type Resource = { Type: string; Properties?: Record<string, any>; Condition?: string };
type Statement = { Sid?: string; Effect: string; Action: string | string[]; Principal?: any; Resource?: unknown; Condition?: Record<string, any> };

function build(config: Record<string, unknown> = base) {
  const { app, stack, member } = buildApp({ skipBundling: true, config });
  return { app, stack, memberStack: member, home: Template.fromStack(stack), member: Template.fromStack(member) };
}

let built: ReturnType<typeof build>;
let resources: [string, Resource][];
const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
const memberRole = () => ofType('AWS::IAM::Role').find(([, r]) => r.Properties!.RoleName === 'fleetwarden-member')![1];
const actionsOf = (s: Statement) => [s.Action].flat();

beforeAll(() => {
  built = build();
  resources = Object.entries(built.member.toJSON().Resources as Record<string, Resource>);
});

/** The ARNs as CDK writes them: joins of the partition, the HomeAccountId parameter and literals. */
const homeRoleArn = (name: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::', { Ref: 'HomeAccountId' }, `:role/${name}`]] });
const homeBusArn = { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, `:events:${HOME_REGION}:`, { Ref: 'HomeAccountId' }, ':event-bus/default']] };

/** Evaluates a CloudFormation condition as CloudFormation does, for one account and region. */
function holds(template: Template, name: string, where: { account: string; region: string; homeAccount: string }): boolean {
  const conditions = template.toJSON().Conditions as Record<string, unknown>;
  const value = (v: any): unknown => {
    if (typeof v === 'string') return v;
    const refs: Record<string, string> = { 'AWS::AccountId': where.account, 'AWS::Region': where.region, HomeAccountId: where.homeAccount };
    if (v.Ref in refs) return refs[v.Ref];
    throw new Error(`cannot evaluate ${JSON.stringify(v)}`);
  };
  const evaluate = (c: any): boolean => {
    if ('Fn::Equals' in c) return value(c['Fn::Equals'][0]) === value(c['Fn::Equals'][1]);
    if ('Fn::Not' in c) return !evaluate(c['Fn::Not'][0]);
    if ('Fn::And' in c) return c['Fn::And'].every(evaluate);
    if ('Fn::Or' in c) return c['Fn::Or'].some(evaluate);
    if ('Condition' in c) return evaluate(conditions[c.Condition]);
    throw new Error(`cannot evaluate ${JSON.stringify(c)}`);
  };
  return evaluate(conditions[name]);
}

describe('member role', () => {
  it('is trusted by exactly the named home roles, never the home account root', () => {
    const trust = memberRole().Properties!.AssumeRolePolicyDocument.Statement as Statement[];
    const principals = trust.flatMap((s) => [s.Principal.AWS].flat());
    expect(trust.every((s) => s.Effect === 'Allow' && s.Action === 'sts:AssumeRole')).toBe(true);
    const { kubernetesDrain: _drain, ...always } = MEMBER_ROLE_TRUSTEES;
    expect(principals).toEqual(expect.arrayContaining(Object.values(always).map(homeRoleArn)));
    expect(principals).toHaveLength(Object.keys(always).length);
    expect(JSON.stringify(trust)).not.toContain(':root');
    expect(trust.every((s) => s.Condition === undefined)).toBe(true);
  });

  it('requires the organization of whoever assumes it when the organization id is configured', () => {
    const { member } = build({ ...base, organizations: { id: ORG_ID } });
    const role = Object.values(member.findResources('AWS::IAM::Role')).find((r) => r.Properties.RoleName === 'fleetwarden-member')!;
    const trust = role.Properties.AssumeRolePolicyDocument.Statement as Statement[];
    expect(trust).toHaveLength(Object.keys(MEMBER_ROLE_TRUSTEES).length - 1);
    for (const s of trust) expect(s.Condition).toEqual({ StringEquals: { 'aws:PrincipalOrgID': ORG_ID } });
  });

  it('trusts the Kubernetes drain role too when clusters are configured (the home stack then creates it), and lets it complete lifecycle actions', () => {
    const cluster = { name: 'prod-eks', accountId: '111111111111', region: HOME_REGION };
    const { member } = build({ ...base, kubernetes: { clusters: [cluster] } });
    const role = Object.values(member.findResources('AWS::IAM::Role')).find((r) => r.Properties.RoleName === 'fleetwarden-member')!;
    const principals = (role.Properties.AssumeRolePolicyDocument.Statement as Statement[]).flatMap((s) => [s.Principal.AWS].flat());
    expect(principals).toContainEqual(homeRoleArn(MEMBER_ROLE_TRUSTEES.kubernetesDrain));
    expect(principals).toHaveLength(Object.keys(MEMBER_ROLE_TRUSTEES).length);
    const statements = (role.Properties.Policies as { PolicyDocument: { Statement: Statement[] } }[]).flatMap((p) => p.PolicyDocument.Statement);
    expect(statements.find((s) => actionsOf(s).includes('autoscaling:CompleteLifecycleAction'))?.Resource).toBeDefined();
  });

  it('reads the fleet, stops or terminates only instances without the protected tag, and cleans up only unprotected waste', () => {
    const statements = memberRole().Properties!.Policies.flatMap((p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement) as Statement[];
    const read = statements.find((s) => s.Resource === '*')!;
    expect(actionsOf(read).sort()).toEqual(
      [
        'ec2:DescribeInstances',
        'ec2:DescribeAvailabilityZones',
        'ec2:DescribeImages',
        'ec2:DescribeVolumes',
        'ec2:DescribeSnapshots',
        'ec2:DescribeAddresses',
        'ec2:DescribeLaunchTemplates',
        'ec2:DescribeLaunchTemplateVersions',
        'autoscaling:DescribeAutoScalingGroups',
        'autoscaling:DescribeLaunchConfigurations',
      ].sort(),
    );
    const cleanup = statements.find((s) => s.Sid === 'CleanUpUnprotectedWaste')!;
    expect(actionsOf(cleanup).sort()).toEqual(['ec2:CreateSnapshot', 'ec2:CreateTags', 'ec2:DeleteSnapshot', 'ec2:DeleteTags', 'ec2:DeleteVolume', 'ec2:ReleaseAddress']);
    expect(JSON.stringify(cleanup.Resource)).toMatch(/elastic-ip\/\*.*volume\/\*.*snapshot\/\*/);
    expect(cleanup.Condition).toEqual({ Null: { 'aws:ResourceTag/fleetwarden:protected': 'true' } });
    // The snapshot CreateSnapshot makes has no tags yet: only that action, on new snapshots.
    expect(actionsOf(statements.find((s) => s.Sid === 'SnapshotBeforeDeleting')!)).toEqual(['ec2:CreateSnapshot']);
    const act = statements.filter((s) => actionsOf(s).some((a) => a === 'ec2:StopInstances' || a === 'ec2:TerminateInstances'));
    expect(act).toEqual([
      {
        Sid: expect.any(String),
        Effect: 'Allow',
        Action: ['ec2:StopInstances', 'ec2:TerminateInstances'],
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:*:', { Ref: 'AWS::AccountId' }, ':instance/*']] },
        Condition: { Null: { 'aws:ResourceTag/fleetwarden:protected': 'true' } },
      },
    ]);
  });

  it('uses the configured protected tag and member role name', () => {
    const { member } = build({ ...base, memberRoleName: 'fw-member', policies: { enforcement: { protectedTag: 'keep-me' } } });
    const role = Object.values(member.findResources('AWS::IAM::Role')).find((r) => r.Properties.RoleName === 'fw-member')!;
    const conditions = role.Properties.Policies.flatMap((p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement).map((s: Statement) => s.Condition);
    expect(conditions).toContainEqual({ Null: { 'aws:ResourceTag/keep-me': 'true' } });
    expect(JSON.stringify(conditions)).not.toContain('fleetwarden:protected');
  });

  it('exists only in the home region of accounts other than the home account', () => {
    expect(memberRole().Condition).toBe('CreateMemberRole');
    const homeAccount = '999999999999';
    const at = (account: string, region: string) => holds(built.member, 'CreateMemberRole', { account, region, homeAccount });
    expect(at('111111111111', HOME_REGION)).toBe(true);
    expect(at('111111111111', 'us-east-1')).toBe(false);
    expect(at(homeAccount, HOME_REGION)).toBe(false);
    expect(at(homeAccount, 'us-east-1')).toBe(false);
  });
});

describe('event forwarding', () => {
  const rules = () => ofType('AWS::Events::Rule');

  it('has one rule per handled event, with the registry pattern, to the home default bus', () => {
    const registry = [...HANDLED_EVENTS, ...ENFORCEMENT_EVENTS];
    expect(rules()).toHaveLength(registry.length);
    const patterns = rules().map(([, r]) => r.Properties!.EventPattern);
    for (const handled of registry) expect(patterns).toContainEqual(handled.pattern);
    for (const [, rule] of rules()) {
      expect(rule.Properties!.EventBusName).toBe('default');
      expect(rule.Properties!.Targets).toEqual([
        expect.objectContaining({ Arn: homeBusArn, RoleArn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] }, DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.any(String), 'Arn'] } } }),
      ]);
    }
  });

  it('lets the rules role put events on the home bus and nothing else', () => {
    const roleIds = new Set(rules().map(([, r]) => r.Properties!.Targets[0].RoleArn['Fn::GetAtt'][0] as string));
    expect(roleIds.size).toBe(1);
    const [roleId] = [...roleIds];
    const statements = ofType('AWS::IAM::Policy')
      .filter(([, p]) => p.Properties!.Roles.some((r: { Ref: string }) => r.Ref === roleId))
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement as Statement[]);
    expect(statements).toEqual([{ Effect: 'Allow', Action: 'events:PutEvents', Resource: homeBusArn }]);
  });

  it('parks undelivered events in an encrypted, TLS-only dead-letter queue that raises an alarm', () => {
    const queues = ofType('AWS::SQS::Queue');
    expect(queues).toHaveLength(1);
    const [queueId, queue] = queues[0]!;
    expect(queue.Properties!.SqsManagedSseEnabled).toBe(true);
    built.member.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    const alarms = ofType('AWS::CloudWatch::Alarm').filter(([, a]) => JSON.stringify(a.Properties!.Dimensions).includes(queueId));
    expect(alarms.map(([, a]) => a.Properties!.MetricName)).toEqual(['ApproximateNumberOfMessagesVisible']);
    for (const [, rule] of rules()) expect(rule.Properties!.Targets[0].DeadLetterConfig.Arn).toEqual({ 'Fn::GetAtt': [queueId, 'Arn'] });
  });

  it('forwards from everywhere except the home account home region, where the home rules already are', () => {
    for (const [, rule] of rules()) expect(rule.Condition).toBe('ForwardEvents');
    const homeAccount = '999999999999';
    const at = (account: string, region: string) => holds(built.member, 'ForwardEvents', { account, region, homeAccount });
    expect(at('111111111111', HOME_REGION)).toBe(true);
    expect(at('111111111111', 'us-east-1')).toBe(true);
    expect(at(homeAccount, 'us-east-1')).toBe(true);
    expect(at(homeAccount, HOME_REGION)).toBe(false);
  });
});

describe('member template', () => {
  it('conditions every resource but the placeholder, which keeps the stack from being empty', () => {
    const unconditioned = resources.filter(([, r]) => !r.Condition).map(([id, r]) => `${id} ${r.Type}`);
    expect(unconditioned).toEqual([expect.stringMatching(/ AWS::CloudFormation::WaitConditionHandle$/)]);
    const conditions = new Set(resources.map(([, r]) => r.Condition));
    expect(conditions).toEqual(new Set(['CreateMemberRole', 'ForwardEvents', undefined]));
  });

  it('grants no wildcard action in any IAM policy, and allows none in a resource policy', () => {
    const iamStatements: Statement[] = [
      ...ofType('AWS::IAM::Policy').flatMap(([, p]) => p.Properties!.PolicyDocument.Statement),
      ...ofType('AWS::IAM::ManagedPolicy').flatMap(([, p]) => p.Properties!.PolicyDocument.Statement),
      ...ofType('AWS::IAM::Role').flatMap(([, r]) => [
        ...r.Properties!.AssumeRolePolicyDocument.Statement,
        ...(r.Properties!.Policies ?? []).flatMap((p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement),
      ]),
    ];
    expect(iamStatements.length).toBeGreaterThan(0);
    expect(iamStatements.flatMap(actionsOf).filter((a) => a.includes('*'))).toEqual([]);
    // A resource policy may deny everything (TLS only); it allows nothing by wildcard.
    const allowed = ofType('AWS::SQS::QueuePolicy')
      .flatMap(([, p]) => p.Properties!.PolicyDocument.Statement as Statement[])
      .filter((s) => s.Effect === 'Allow');
    expect(allowed.flatMap(actionsOf).filter((a) => a.includes('*'))).toEqual([]);
  });

  it('takes the home account as a parameter and needs no CDK bootstrap', () => {
    const template = built.member.toJSON();
    expect(Object.keys(template.Parameters)).toEqual(['HomeAccountId']);
    expect(template.Parameters.HomeAccountId).toMatchObject({ Type: 'String', AllowedPattern: '^\\d{12}$' });
    // No BootstrapVersion parameter and no bootstrap check rule: StackSet instances run in unbootstrapped accounts.
    expect(template.Rules).toBeUndefined();
    // cdk deploy uses the CLI's credentials, not the bootstrap roles.
    const artifact = built.app.synth().getStackByName(MEMBER_STACK_NAME);
    expect([artifact.assumeRoleArn, artifact.cloudFormationExecutionRoleArn]).toEqual([undefined, undefined]);
  });

  describe('with the synthesizing account known', () => {
    const previous = process.env.CDK_DEFAULT_ACCOUNT;
    afterEach(() => {
      if (previous === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = previous;
    });

    it('defaults HomeAccountId to it', () => {
      process.env.CDK_DEFAULT_ACCOUNT = '123456789012';
      const { member, stack } = buildApp({ skipBundling: true, nag: false, config: base });
      expect(Template.fromStack(member).toJSON().Parameters.HomeAccountId.Default).toBe('123456789012');
      expect(stack.account).toBe('123456789012');
    });
  });

  it('is a stack of its own in the app, env-agnostic, so one template serves every account and region', () => {
    expect(built.app.node.findChild(MEMBER_STACK_NAME)).toBe(built.memberStack);
    expect(built.memberStack.environment).toBe('aws://unknown-account/unknown-region');
  });

  it('reports no unacknowledged cdk-nag finding', () => {
    for (const config of [base, { ...base, organizations: { id: ORG_ID } }, { ...base, chaos: { spotInterruptions: { enabled: true, stopAlarmNames: ['checkout-slo'] } } }]) {
      const { member } = buildApp({ skipBundling: true, nag: false, config });
      const report = new AwsSolutionsChecks().validateScope(member);
      expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`))).toEqual([]);
    }
  });
});

describe('spot interruption chaos experiment', () => {
  const chaosOn = (spotInterruptions: Record<string, unknown> = {}, config: Record<string, unknown> = base) => {
    const { member } = build({ ...config, chaos: { spotInterruptions: { enabled: true, ...spotInterruptions } } });
    const all = Object.entries(member.toJSON().Resources as Record<string, Resource>);
    const [, template] = all.find(([, r]) => r.Type === 'AWS::FIS::ExperimentTemplate')!;
    const [, role] = all.find(([, r]) => r.Type === 'AWS::IAM::Role' && r.Properties!.AssumeRolePolicyDocument.Statement[0].Principal.Service === 'fis.amazonaws.com')!;
    return { member, all, template: template.Properties!, role: role.Properties! };
  };
  const chaosResources = (all: [string, Resource][]) => all.filter(([id]) => id.startsWith('SpotInterruptions'));

  it('is not synthesized by default: no FIS template, role, log group or condition', () => {
    expect(ofType('AWS::FIS::ExperimentTemplate')).toEqual([]);
    expect(resources.filter(([id]) => id.startsWith('SpotInterruptions'))).toEqual([]);
    expect(Object.keys(built.member.toJSON().Conditions)).not.toContain('SpotInterruptionChaos');
    expect(built.member.toJSON().Outputs).toBeUndefined();
  });

  it('exists only in LAB accounts, and only where their events reach the home bus', () => {
    const { member, all } = chaosOn();
    const types = chaosResources(all).map(([, r]) => r.Type).sort();
    expect(types).toEqual(['AWS::FIS::ExperimentTemplate', 'AWS::IAM::Role', 'AWS::Logs::LogGroup']);
    for (const [, r] of chaosResources(all)) expect(r.Condition).toBe('SpotInterruptionChaos');
    const at = (account: string, region: string, homeAccount = '999999999999') => holds(member, 'SpotInterruptionChaos', { account, region, homeAccount });
    expect(at('222222222222', HOME_REGION)).toBe(true);
    expect(at('222222222222', 'us-east-1')).toBe(true);
    expect(at('111111111111', HOME_REGION)).toBe(false);
    expect(at('999999999999', 'us-east-1')).toBe(false);
    // A LAB home account: its other regions forward, its home region has no forwarding (nor stop alarm).
    expect(at('222222222222', 'us-east-1', '222222222222')).toBe(true);
    expect(at('222222222222', HOME_REGION, '222222222222')).toBe(false);
    expect(member.toJSON().Outputs.SpotInterruptionExperimentTemplateId).toEqual(expect.objectContaining({ Condition: 'SpotInterruptionChaos', Value: { 'Fn::GetAtt': [expect.stringMatching(/^SpotInterruptionsTemplate/), 'Id'] } }));
  });

  it('holds in each of many LAB accounts, though one Fn::Or takes at most 10 conditions', () => {
    const labs = Array.from({ length: 23 }, (_, i) => ({ id: String(300_000_000_000 + i), name: `lab${i}`, environment: 'LAB' }));
    const { member } = chaosOn({}, { ...base, accounts: [...base.accounts, ...labs] });
    const at = (account: string) => holds(member, 'SpotInterruptionChaos', { account, region: 'us-east-1', homeAccount: '999999999999' });
    for (const account of ['222222222222', ...labs.map((l) => l.id)]) expect(at(account)).toBe(true);
    expect(at('111111111111')).toBe(false);
    const ors: unknown[][] = [];
    const walk = (c: unknown): void => {
      if (!c || typeof c !== 'object') return;
      for (const [key, value] of Object.entries(c)) {
        if (key === 'Fn::Or') ors.push(value as unknown[]);
        walk(value);
      }
    };
    walk(member.toJSON().Conditions.SpotInterruptionChaos);
    expect(ors.length).toBeGreaterThan(1);
    for (const or of ors) expect(or.length).toBeLessThanOrEqual(10);
  });

  it('sends Spot interruptions, with the default 2-minute notice, to half of the running Spot instances tagged fleetwarden:chaos=spot-interruption', () => {
    const { template } = chaosOn();
    expect(template.Targets).toEqual({
      SpotInstances: {
        ResourceType: SPOT_INSTANCE_TARGET,
        ResourceTags: { 'fleetwarden:chaos': 'spot-interruption' },
        Filters: [{ Path: 'State.Name', Values: ['running'] }],
        SelectionMode: 'PERCENT(50)',
      },
    });
    expect(template.Actions).toEqual({
      InterruptSpotInstances: expect.objectContaining({ ActionId: SPOT_INTERRUPTION_ACTION, Parameters: { durationBeforeInterruption: 'PT2M' }, Targets: { SpotInstances: 'SpotInstances' } }),
    });
    expect(template.ExperimentOptions).toEqual({ AccountTargeting: 'single-account', EmptyTargetResolutionMode: 'fail' });
  });

  it('targets the configured tag, notice and count', () => {
    const { template } = chaosOn({ targetTag: { key: 'team', value: 'chaos-lab' }, durationBeforeInterruption: 'PT5M', select: { count: 2 } });
    expect(template.Targets.SpotInstances).toMatchObject({ ResourceTags: { team: 'chaos-lab' }, SelectionMode: 'COUNT(2)' });
    expect(template.Actions.InterruptSpotInstances.Parameters).toEqual({ durationBeforeInterruption: 'PT5M' });
  });

  it('stops on the forwarding dead-letter alarm, and on each configured alarm of the account and region', () => {
    const { template, all } = chaosOn({ stopAlarmNames: ['checkout-slo'] });
    const [alarmId] = all.find(([, r]) => r.Type === 'AWS::CloudWatch::Alarm' && r.Properties!.MetricName === 'ApproximateNumberOfMessagesVisible')!;
    expect(template.StopConditions).toEqual([
      { Source: 'aws:cloudwatch:alarm', Value: { 'Fn::GetAtt': [alarmId, 'Arn'] } },
      {
        Source: 'aws:cloudwatch:alarm',
        Value: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':cloudwatch:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':alarm:checkout-slo']] },
      },
    ]);
  });

  it('runs as a role only FIS experiments of the account assume, that may interrupt only instances carrying the tag, with no wildcard action', () => {
    const { role, template, all } = chaosOn({ targetTag: { key: 'team', value: 'chaos-lab' } });
    expect(template.RoleArn).toEqual({ 'Fn::GetAtt': [chaosResources(all).find(([, r]) => r.Type === 'AWS::IAM::Role')![0], 'Arn'] });
    const [trust] = role.AssumeRolePolicyDocument.Statement as Statement[];
    expect(trust!.Condition).toMatchObject({ StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } }, ArnLike: { 'aws:SourceArn': expect.anything() } });
    const statements = role.Policies.flatMap((p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement) as Statement[];
    const interrupt = statements.filter((s) => actionsOf(s).includes('ec2:SendSpotInstanceInterruptions'));
    expect(interrupt).toEqual([
      expect.objectContaining({
        Action: 'ec2:SendSpotInstanceInterruptions',
        Resource: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':ec2:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':instance/*']] },
        Condition: { StringEquals: { 'aws:ResourceTag/team': 'chaos-lab' } },
      }),
    ]);
    expect(statements.flatMap(actionsOf).sort()).toEqual(
      ['ec2:DescribeInstances', 'ec2:SendSpotInstanceInterruptions', 'logs:CreateLogDelivery', 'logs:DescribeLogGroups', 'logs:DescribeResourcePolicies', 'logs:PutResourcePolicy'].sort(),
    );
    expect(statements.flatMap(actionsOf).filter((a) => a.includes('*'))).toEqual([]);
  });

  it('logs each experiment to its own CloudWatch Logs group', () => {
    const { template, all } = chaosOn();
    const [logsId, logGroup] = chaosResources(all).find(([, r]) => r.Type === 'AWS::Logs::LogGroup')!;
    expect(logGroup.Properties).toMatchObject({ LogGroupName: '/aws/vendedlogs/fis/fleetwarden-spot-interruptions', RetentionInDays: 30 });
    expect(template.LogConfiguration).toEqual({ LogSchemaVersion: 2, CloudWatchLogsConfiguration: { LogGroupArn: { 'Fn::GetAtt': [logsId, 'Arn'] } } });
  });
});

describe('home stack', () => {
  const busPolicies = (home: Template) => Object.values(home.findResources('AWS::Events::EventBusPolicy')).map((p) => p.Properties);

  it('names the role that member roles trust', () => {
    built.home.hasResourceProperties('AWS::IAM::Role', {
      RoleName: MEMBER_ROLE_TRUSTEES.interruptionIngest,
      AssumeRolePolicyDocument: { Statement: [Match.objectLike({ Principal: { Service: 'lambda.amazonaws.com' } })] },
    });
  });

  it('accepts events on the default bus from each configured account without an organization id', () => {
    const policies = busPolicies(built.home);
    expect(policies.map((p) => p.Statement.Principal.AWS['Fn::Join'][1].at(-1))).toEqual(base.accounts.map((a) => `:iam::${a.id}:root`));
    for (const p of policies) expect(p).toMatchObject({ EventBusName: 'default', Statement: { Effect: 'Allow', Action: 'events:PutEvents' } });
  });

  it('accepts events from the whole organization, in one statement, with an organization id', () => {
    const { home } = build({ ...base, organizations: { id: ORG_ID } });
    expect(busPolicies(home)).toEqual([
      {
        EventBusName: 'default',
        StatementId: 'fleetwarden-organization',
        Statement: { Effect: 'Allow', Principal: '*', Action: 'events:PutEvents', Resource: expect.anything(), Condition: { StringEquals: { 'aws:PrincipalOrgID': ORG_ID } } },
      },
    ]);
  });
});
