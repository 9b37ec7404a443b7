import { randomBytes } from 'node:crypto';
import { DeleteTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DeleteRuleCommand, EventBridgeClient, ListRulesCommand, PutPermissionCommand, PutRuleCommand, PutTargetsCommand, RemovePermissionCommand, RemoveTargetsCommand } from '@aws-sdk/client-eventbridge';
import { DeleteQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { beforeAll, describe, expect, it } from 'vitest';
import { runDoctorCommand } from '../../functions/doctor/cli';
import { type CheckResult, type DoctorReport, EXPECTED_FORWARDING } from '../../functions/doctor/model';
import { AccountSessions } from '../../functions/shared/accounts';
import { awsClient } from '../../functions/shared/aws';
import { CliUsageError } from '../../functions/shared/cli';
import { MEMBER_STACK_NAME, buildApp } from '../../lib/app';
import { type LocalStack, provision } from '../../local/provision';
import { publishOutputs } from '../../local/outputs';
import { type CfnTemplate, Resolver, synthTemplate } from '../../local/template';

/**
 * `fleetwarden doctor` against moto: the home stack provisioned from its synthesized template,
 * its outputs as a CloudFormation stack, the home stack's default-bus policy statements applied,
 * and the synthesized member template's forwarding rules put on the default bus of each member
 * account and region (as CloudFormation would, with the member account's own credentials). The
 * accounts and regions are this file's own, so that no other test's bus sees these rules.
 */
const HOME = '123456789012';
const HOME_REGION = 'ap-southeast-2';
const OTHER_REGION = 'ap-northeast-1';
const PAYMENTS = '444444444444';
const SANDBOX = '555555555555';
process.env.AWS_REGION = HOME_REGION;

const config = {
  stage: 'dev',
  homeRegion: HOME_REGION,
  regions: [HOME_REGION, OTHER_REGION],
  accounts: [
    { id: HOME, name: 'fleetwarden-home', environment: 'PROD' },
    { id: PAYMENTS, name: 'payments-prod', environment: 'PROD' },
    { id: SANDBOX, name: 'sandbox', environment: 'LAB', regions: [OTHER_REGION] },
  ],
};
/** Where the member stack applies: every account and region but the home account's home region. */
const MEMBER_TARGETS = [
  [HOME, OTHER_REGION],
  [PAYMENTS, HOME_REGION],
  [PAYMENTS, OTHER_REGION],
  [SANDBOX, OTHER_REGION],
] as const;

const stackName = `fleetwarden-doctor-${randomBytes(3).toString('hex')}`;
let home: LocalStack;
let homeTemplate: CfnTemplate;
let memberTemplate: CfnTemplate;
let outputs: Record<string, string>;

type Rule = { Type: string; Condition?: string; Properties: Record<string, any> };

async function memberEvents(account: string, region: string): Promise<EventBridgeClient> {
  return awsClient(EventBridgeClient, await new AccountSessions(HOME, 'fleetwarden-member').options(account, region));
}

/** The member template's forwarding rules on this account's default bus, targets resolved with HomeAccountId. */
async function deployMember(account: string, region: string): Promise<void> {
  const events = await memberEvents(account, region);
  const identities = new Map([['HomeAccountId', { ref: HOME, attrs: {} }]]);
  const resolver = new Resolver(identities, { region, accountId: account });
  for (const [logicalId, rule] of Object.entries(memberTemplate.Resources as Record<string, Rule>).filter(([, r]) => r.Type === 'AWS::Events::Rule')) {
    const Name = `${MEMBER_STACK_NAME}-${logicalId}`.slice(0, 64);
    await events.send(new PutRuleCommand({ Name, EventBusName: 'default', EventPattern: JSON.stringify(rule.Properties.EventPattern), State: 'ENABLED', Description: rule.Properties.Description }));
    const targets = (rule.Properties.Targets as { Id: string; Arn: unknown }[]).map((t) => ({ Id: t.Id, Arn: String(resolver.resolve(t.Arn)) }));
    await events.send(new PutTargetsCommand({ Rule: Name, EventBusName: 'default', Targets: targets }));
  }
}

/** As `cdk destroy FleetwardenMember` there: its rules gone. */
async function destroyMember(account: string, region: string): Promise<void> {
  const events = await memberEvents(account, region);
  const rules = (await events.send(new ListRulesCommand({ EventBusName: 'default', NamePrefix: MEMBER_STACK_NAME }))).Rules ?? [];
  for (const rule of rules) {
    await events.send(new RemoveTargetsCommand({ Rule: rule.Name, EventBusName: 'default', Ids: ['Target0'] }));
    await events.send(new DeleteRuleCommand({ Name: rule.Name, EventBusName: 'default' }));
  }
}

/** The home stack's AWS::Events::EventBusPolicy statements on the home default bus, as CloudFormation applies them. */
async function applyBusPolicy(): Promise<void> {
  const resolver = new Resolver(home.identities, home.pseudo);
  const policies = Object.values(homeTemplate.Resources).filter((r) => r.Type === 'AWS::Events::EventBusPolicy');
  expect(policies.length).toBeGreaterThan(0);
  for (const policy of policies) {
    const p = resolver.resolve(policy.Properties) as { StatementId: string; Statement: Record<string, unknown> };
    await awsClient(EventBridgeClient).send(new PutPermissionCommand({ EventBusName: 'default', Policy: JSON.stringify({ Version: '2012-10-17', Statement: [{ Sid: p.StatementId, ...p.Statement }] }) }));
  }
}

beforeAll(async () => {
  homeTemplate = synthTemplate(config);
  const { app } = buildApp({ config, skipBundling: true, nag: false });
  memberTemplate = app.synth().getStackByName(MEMBER_STACK_NAME).template as CfnTemplate;
  home = await provision(homeTemplate);
  outputs = await publishOutputs(home, stackName);
  await applyBusPolicy();
  for (const [account, region] of MEMBER_TARGETS) await deployMember(account, region);
});

async function doctor(...extra: string[]): Promise<{ code: number; report: DoctorReport; text: string }> {
  const { code, text: json } = await runDoctorCommand(['--stack', stackName, '--json', ...extra]);
  const { text } = await runDoctorCommand(['--stack', stackName, ...extra]);
  return { code, report: JSON.parse(json) as DoctorReport, text };
}

const failures = (report: DoctorReport): CheckResult[] => report.checks.filter((c) => !c.ok);

describe('fleetwarden doctor against moto', () => {
  it('finds nothing wrong when the home stack, the bus policy and the member stack in every account and region are there', async () => {
    const { code, report, text } = await doctor();
    expect(failures(report)).toEqual([]);
    expect(code).toBe(0);
    const checked = (kind: string) => report.checks.filter((c) => c.check.startsWith(kind)).map((c) => c.check.split(' ').at(-1));
    expect(checked('table')).toEqual(['LedgerTableName', 'PoolRiskTableName', 'AuthorizationsTableName', 'FindingsTableName']);
    expect(checked('state machine')).toHaveLength(5);
    expect(report.checks.filter((c) => c.check.startsWith('queue')).length).toBeGreaterThanOrEqual(6);
    expect(report.checks.filter((c) => c.check.startsWith('forwarding rules')).map((c) => c.target)).toEqual(MEMBER_TARGETS.map(([a, r]) => `${a} ${r}`));
    expect(report.checks.filter((c) => c.check === 'assume role fleetwarden-member').map((c) => c.target)).toEqual([`${PAYMENTS} ${HOME_REGION}`, `${PAYMENTS} ${OTHER_REGION}`, `${SANDBOX} ${OTHER_REGION}`]);
    expect(report.checks.filter((c) => c.target === `home bus ${HOME_REGION}`).map((c) => c.check)).toEqual([`accepts ${PAYMENTS} (payments-prod)`, `accepts ${SANDBOX} (sandbox)`]);
    expect(report.checks.some((c) => c.target.startsWith('cluster'))).toBe(false); // no cluster configured
    expect(text.split('\n').at(-1)).toBe(`All ${report.checks.length} checks passed.`);
  });

  it('fails the forwarding check where the member stack is missing, with the fix naming the account and region', async () => {
    await destroyMember(SANDBOX, OTHER_REGION);
    try {
      const { code, report, text } = await doctor();
      expect(code).toBe(1);
      expect(failures(report)).toEqual([
        {
          target: `${SANDBOX} ${OTHER_REGION}`,
          check: `forwarding rules (${EXPECTED_FORWARDING.length})`,
          ok: false,
          detail: 'no forwarding rule on the default bus: the member stack is not deployed here',
          fix: `deploy FleetwardenMember to ${SANDBOX} in ${OTHER_REGION} with HomeAccountId=${HOME} (see README, Member accounts)`,
        },
      ]);
      expect(text).toMatch(new RegExp(`^${SANDBOX} ${OTHER_REGION}\\s+forwarding rules \\(${EXPECTED_FORWARDING.length}\\)\\s+FAIL$`, 'm'));
      expect(text.split('\n').at(-1)).toBe(`1 of ${report.checks.length} checks failed.`);
    } finally {
      await deployMember(SANDBOX, OTHER_REGION);
    }
  });

  it('fails the bus policy check for a member account the home bus does not accept', async () => {
    await awsClient(EventBridgeClient).send(new RemovePermissionCommand({ EventBusName: 'default', StatementId: `fleetwarden-${PAYMENTS}` }));
    try {
      const { code, report } = await doctor();
      expect(code).toBe(1);
      expect(failures(report)).toEqual([
        expect.objectContaining({ target: `home bus ${HOME_REGION}`, check: `accepts ${PAYMENTS} (payments-prod)`, detail: `the default bus policy does not allow ${PAYMENTS} to put events`, fix: expect.stringContaining(`cdk deploy ${stackName}`) }),
      ]);
    } finally {
      await applyBusPolicy();
    }
  });

  it('names a deleted queue and a deleted table, and says to redeploy the home stack', async () => {
    await awsClient(SQSClient).send(new DeleteQueueCommand({ QueueUrl: outputs.EnforcementQueueUrl }));
    await awsClient(DynamoDBClient).send(new DeleteTableCommand({ TableName: outputs.FindingsTableName }));
    const { code, report, text } = await doctor();
    expect(code).toBe(1);
    expect(failures(report)).toEqual([
      { target: `home ${HOME_REGION}`, check: 'queue EnforcementQueueUrl', ok: false, detail: `queue ${outputs.EnforcementQueueUrl!.split('/').at(-1)} does not exist`, fix: expect.stringContaining('to recreate EnforcementQueueUrl') },
      { target: `home ${HOME_REGION}`, check: 'table FindingsTableName', ok: false, detail: `table ${outputs.FindingsTableName} does not exist`, fix: expect.stringMatching(new RegExp(`^redeploy the home stack \\(cdk deploy ${stackName}\\) to recreate FindingsTableName`)) },
    ]);
    expect(text).toMatch(/^home ap-southeast-2\s+queue EnforcementQueueUrl\s+FAIL$/m);
  });

  it('refuses a stack that does not exist, naming --stack', async () => {
    await expect(runDoctorCommand(['--stack', `${stackName}-nope`])).rejects.toThrow(CliUsageError);
    await expect(runDoctorCommand(['--stack', `${stackName}-nope`])).rejects.toThrow(`--stack: no stack ${stackName}-nope`);
  });
});
