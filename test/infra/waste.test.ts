import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { type ScanReport } from '../../functions/waste/scanner';
import { buildApp } from '../../lib/app';
import { TARGETS_PER_BATCH } from '../../lib/constructs/fan-out';
import { MEMBER_ROLE_TRUSTEES } from '../../lib/constructs/member-access';

const synth = (config: Record<string, unknown>) => {
  const { app } = buildApp({ skipBundling: true, nag: false, config });
  return Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
};
const regions = ['us-east-1', 'us-west-2', 'eu-west-1', 'ap-southeast-2'];
const accounts = (n: number) => Array.from({ length: n }, (_, i) => ({ id: String(100_000_000_000 + i), name: `a${i}`, environment: (['PROD', 'STAGING', 'LAB'] as const)[i % 3] }));

describe('the WasteScan workflow', () => {
  it('runs daily by default on the configured schedule, in batches of the shared fan-out, with the batches and their reports within the 256 KB state for 500 accounts × 4 regions', () => {
    const template = synth({ homeRegion: 'us-east-1', regions, accounts: accounts(500), organizations: { id: 'o-a1b2c3d4e5' } });
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 day)', Description: 'Scans every account and region for wasted Elastic IPs, volumes and snapshots' });
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'fleetwarden-waste-scan' } }));
    const body = machine!.Properties.DefinitionString;
    const definition = typeof body === 'string' ? body : (body['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'REF')).join('');
    const batches = JSON.parse(definition).States['List every account and region'].Parameters.batches as { targets: unknown[] }[];
    expect(batches).toHaveLength((500 * 4) / TARGETS_PER_BATCH);
    const worst: ScanReport = {
      targets: TARGETS_PER_BATCH,
      failed: [],
      listed: 9_999_999,
      byKind: { address: { count: 9_999, monthlyUsd: 99_999.99 }, volume: { count: 99_999, monthlyUsd: 999_999.99 }, snapshot: { count: 999_999, monthlyUsd: 999_999.99 } },
      byAccount: Object.fromEntries(Array.from({ length: TARGETS_PER_BATCH }, (_, i) => [String(100_000_000_000 + i), 999_999.99])),
      found: 99_999,
      reopened: 99_999,
      resolved: 99_999,
      marked: 99_999,
      wouldMark: 99_999,
      cleanable: 999_999,
    };
    // The state after the scans: the batches and one report per batch.
    const state = { scanId: 'x'.repeat(80), batches, reports: Array.from({ length: batches.length }, () => worst) };
    expect(Buffer.byteLength(JSON.stringify(state))).toBeLessThan(256 * 1024);
  });

  it('gives the steps function the role name member roles trust, cleanup only without the protected tag, and no instance actions', () => {
    const template = synth({ homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: accounts(3), policies: { enforcement: { protectedTag: 'team:keep' } } });
    const roles = template.findResources('AWS::IAM::Role');
    const roleId = Object.entries(roles).find(([, r]) => r.Properties.RoleName === MEMBER_ROLE_TRUSTEES.wasteSteps)?.[0];
    expect(roleId).toBeDefined();
    const statements = Object.values(template.findResources('AWS::IAM::Policy'))
      .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
      .flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Condition?: unknown }[]);
    const destructive = statements.filter((s) => [s.Action].flat().some((a) => /^ec2:(Delete|Release)/.test(a)));
    expect(destructive).toHaveLength(1);
    expect(destructive[0]!.Condition).toEqual({ Null: { 'aws:ResourceTag/team:keep': 'true' } });
    expect(statements.flatMap((s) => [s.Action].flat())).not.toContain('ec2:TerminateInstances');
  });
});
