import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { EXPIRED_PER_BATCH, type SweepReport } from '../../functions/enforcement/enforcer';
import { buildApp } from '../../lib/app';
import { BATCHES_AT_ONCE as SWEEP_BATCHES_AT_ONCE, TARGETS_PER_BATCH } from '../../lib/constructs/fan-out';
import { MEMBER_ROLE_TRUSTEES } from '../../lib/constructs/member-access';

const synth = (config: Record<string, unknown>) => {
  const { app } = buildApp({ skipBundling: true, nag: false, config });
  return Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
};
const regions = ['us-east-1', 'us-west-2', 'eu-west-1', 'ap-southeast-2'];
const accounts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: String(100_000_000_000 + i), name: `a${i}`, environment: (['PROD', 'STAGING', 'LAB'] as const)[i % 3] }));

/** The definition string of a state machine, as CloudFormation receives it (Fn::Join of literals and refs). */
function definitionOf(template: Template, name: string): string {
  const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: name } }));
  const body = machine!.Properties.DefinitionString;
  return typeof body === 'string' ? body : (body['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'REF')).join('');
}

describe('EnforcementSweep sizing', () => {
  it('covers 500 accounts × 4 regions in one run: 200 batches of 10, a definition far below 1 MB, batch reports within 256 KB even when every batch reports its most', () => {
    const template = synth({ homeRegion: 'us-east-1', regions, accounts: accounts(500), organizations: { id: 'o-a1b2c3d4e5' } });
    const definition = definitionOf(template, 'fleetwarden-enforcement-sweep');
    const parsed = JSON.parse(definition) as { States: Record<string, { Parameters?: { batches?: { targets: unknown[] }[] }; MaxConcurrency?: number }> };
    const batches = parsed.States['List every account and region']!.Parameters!.batches!;
    expect(batches).toHaveLength((500 * 4) / TARGETS_PER_BATCH);
    expect(batches.every((b) => b.targets.length === TARGETS_PER_BATCH)).toBe(true);
    expect(Buffer.byteLength(definition)).toBeLessThan(1_048_576 / 4);
    expect(parsed.States['Sweep every account and region']!.MaxConcurrency).toBe(SWEEP_BATCHES_AT_ONCE);
    // The largest report a batch can return: every target failed with a long error, and a full list of expired flags.
    const worst: SweepReport = {
      targets: TARGETS_PER_BATCH,
      failed: [],
      instances: 999_999,
      pages: 9_999,
      flagged: 99_999,
      resolved: 99_999,
      expiredByEnvironment: { PROD: 99_999, STAGING: 99_999, LAB: 99_999 },
      expired: Array.from({ length: EXPIRED_PER_BATCH }, () => ({ instanceKey: '123456789012/ap-southeast-2/i-0123456789abcdef0', environment: 'STAGING' as const })),
    };
    expect(Buffer.byteLength(JSON.stringify(Array.from({ length: batches.length }, () => worst)))).toBeLessThan(256 * 1024);
  });
});

describe('enforcement permissions', () => {
  const template = synth({ homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: accounts(3), policies: { enforcement: { protectedTag: 'team:keep' } } });
  const policies = Object.values(template.findResources('AWS::IAM::Policy'));
  const roles = template.findResources('AWS::IAM::Role');
  const roleId = (name: string) => Object.entries(roles).find(([, r]) => r.Properties.RoleName === name)?.[0];
  const statementsOf = (name: string) =>
    policies.filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId(name))).flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Condition?: unknown }[]);

  it('gives the two enforcement functions the fixed role names the member roles trust', () => {
    expect(roleId(MEMBER_ROLE_TRUSTEES.enforcementCheck)).toBeDefined();
    expect(roleId(MEMBER_ROLE_TRUSTEES.enforcementSteps)).toBeDefined();
  });

  it('lets only the steps function stop or terminate, and never an instance with the protected tag', () => {
    const acting = statementsOf(MEMBER_ROLE_TRUSTEES.enforcementSteps).filter((s) => [s.Action].flat().some((a) => a === 'ec2:TerminateInstances' || a === 'ec2:StopInstances'));
    expect(acting).toHaveLength(1);
    expect(acting[0]!.Condition).toEqual({ Null: { 'aws:ResourceTag/team:keep': 'true' } });
    const checking = statementsOf(MEMBER_ROLE_TRUSTEES.enforcementCheck).flatMap((s) => [s.Action].flat());
    expect(checking).not.toContain('ec2:TerminateInstances');
    expect(checking).not.toContain('ec2:StopInstances');
  });
});
