import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { MEMBER_STACK_NAME, buildApp } from '../../lib/app';
import { MEMBER_ROLE_TRUSTEES } from '../../lib/constructs/member-access';

const config = { homeRegion: 'us-east-1', regions: ['us-east-1', 'eu-west-1'], accounts: [{ id: '111111111111', name: 'prod', environment: 'PROD' }, { id: '222222222222', name: 'lab', environment: 'LAB' }] };
const { app } = buildApp({ skipBundling: true, nag: false, config });
const assembly = app.synth();
const home = Template.fromJSON(assembly.getStackByName('Fleetwarden').template);
const member = Template.fromJSON(assembly.getStackByName(MEMBER_STACK_NAME).template);

type Statement = { Action: string | string[]; Resource: unknown };

describe("fleetwarden doctor's way into member accounts", () => {
  it('is a home role that only the home account may assume, and that may only assume the member roles and read event rules', () => {
    const [id, role] = Object.entries(home.findResources('AWS::IAM::Role', { Properties: { RoleName: MEMBER_ROLE_TRUSTEES.doctor } }))[0]!;
    expect(JSON.stringify(role!.Properties.AssumeRolePolicyDocument)).toContain(':root');
    const statements = Object.values(home.findResources('AWS::IAM::Policy'))
      .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === id))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
    expect(statements.flatMap((s) => [s.Action].flat()).sort()).toEqual(['events:ListRules', 'events:ListTargetsByRule', 'sts:AssumeRole']);
    const assume = statements.find((s) => s.Action === 'sts:AssumeRole')!;
    expect(JSON.stringify(assume.Resource)).toContain(':role/fleetwarden-member');
    home.hasOutput('DoctorRoleArn', {});
  });

  it('is trusted by the member role, which lets it read the forwarding rules and nothing more than the functions may', () => {
    const [role] = Object.values(member.findResources('AWS::IAM::Role', { Properties: { RoleName: 'fleetwarden-member' } }));
    expect(JSON.stringify(role!.Properties.AssumeRolePolicyDocument)).toContain(`:role/${MEMBER_ROLE_TRUSTEES.doctor}`);
    const statements = role!.Properties.Policies.flatMap((p: { PolicyDocument: { Statement: Statement[] } }) => p.PolicyDocument.Statement) as (Statement & { Sid: string })[];
    expect(statements.find((s) => s.Sid === 'ReadForwardingRules')!.Action).toEqual(['events:ListRules', 'events:ListTargetsByRule']);
  });
});
