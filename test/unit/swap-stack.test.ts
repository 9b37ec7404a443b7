import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { BatchRequestSchema } from '../../functions/batch/model';
import { buildApp } from '../../lib/app';
import { parseConfig } from '../../lib/config';

const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'payments-prod', environment: 'PROD' }] };
const swaps = {
  groups: [
    { name: 'web', schedule: 'cron(0 3 ? * SAT *)', maintenanceWindow: 'weekend', budget: { percent: 25 } },
    { name: 'api', driftRepair: false },
  ],
  maintenanceWindows: { weekend: { cron: '0 2 * * SAT', durationMinutes: 240, timeZone: 'Europe/Paris' } },
  healthGate: { alarmNames: ['checkout-slo'] },
};

let built: ReturnType<typeof buildApp>;
let template: Template;
const resources = (type: string) => Object.entries(template.findResources(type));

beforeAll(() => {
  built = buildApp({ skipBundling: true, config: { ...base, swaps } });
  template = Template.fromStack(built.stack);
});

describe('swaps config', () => {
  it('defaults to no groups, a budget of one, one tolerated roll-back and a 10-check health gate', () => {
    expect(parseConfig(base).swaps).toEqual({ groups: [], budget: { count: 1 }, maxFailedSwaps: 1, healthGate: { settleSeconds: 60, checks: 10, alarmNames: [] }, maintenanceWindows: {} });
  });

  it('names the key of every mistake: an unknown window, a bad schedule, a bad time zone, a repeated group, an unknown cluster', () => {
    const bad = () =>
      parseConfig({
        ...base,
        swaps: {
          groups: [
            { name: 'web', maintenanceWindow: 'nightly', schedule: 'every sunday' },
            { name: 'web', cluster: 'nowhere' },
          ],
          maintenanceWindows: { weekend: { cron: '0 2 * * SAT', durationMinutes: 60, timeZone: 'Mars/Olympus' } },
        },
      });
    expect(bad).toThrow(/fleetwarden\.swaps\.groups\[0\]\.schedule: an EventBridge schedule expression/);
    expect(bad).toThrow(/fleetwarden\.swaps\.maintenanceWindows\.weekend\.timeZone: an IANA time zone/);
  });

  it('checks references once the values parse', () => {
    const refs = () =>
      parseConfig({ ...base, swaps: { groups: [{ name: 'web', maintenanceWindow: 'nightly' }, { name: 'web', cluster: 'nowhere' }] } });
    expect(refs).toThrow(/fleetwarden\.swaps\.groups\[0\]\.maintenanceWindow: no window nightly in swaps\.maintenanceWindows/);
    expect(refs).toThrow(/fleetwarden\.swaps\.groups\[1\]\.name: group web is already listed at swaps\.groups\.0/);
    expect(refs).toThrow(/fleetwarden\.swaps\.groups\[1\]\.cluster: no cluster nowhere in kubernetes\.clusters/);
  });
});

describe('swap triggers in the stack', () => {
  it('gives a scheduled group a rule that starts a valid batch of that group', () => {
    const scheduled = resources('AWS::Events::Rule').filter(([, r]) => r.Properties.ScheduleExpression === 'cron(0 3 ? * SAT *)');
    expect(scheduled).toHaveLength(1);
    const [target] = scheduled[0]![1].Properties.Targets;
    expect(target.Arn).toEqual({ Ref: expect.stringMatching(/^SwapBatchBatchStateMachine/) });
    const input = JSON.parse(target.Input);
    expect(input).toEqual({ groups: ['web'], trigger: 'schedule', reason: 'scheduled batch of group web' });
    expect(BatchRequestSchema.safeParse(input).success).toBe(true);
    expect(target.DeadLetterConfig.Arn['Fn::GetAtt'][0]).toMatch(/^StateStoreAsyncDeadLetters/);
  });

  it('runs the node drift detector every drift cycle, allowed to start the batch machine only', () => {
    const drift = resources('AWS::Events::Rule').filter(([, r]) => r.Properties.ScheduleExpression === 'rate(1 minute)');
    expect(drift).toHaveLength(1);
    const policies = resources('AWS::IAM::Policy').filter(([id]) => id.startsWith('NodeDrift'));
    const starts = policies.flatMap(([, p]) => p.Properties.PolicyDocument.Statement).filter((s: { Action: string | string[] }) => [s.Action].flat().includes('states:StartExecution'));
    expect(starts.map((s: { Resource: unknown }) => s.Resource)).toEqual([{ Ref: expect.stringMatching(/^SwapBatchBatchStateMachine/) }]);
  });

  it('sends a stopped or timed-out NodeSwap execution to ReapSwap', () => {
    const [[, rule]] = resources('AWS::Events::Rule').filter(([id]) => id.startsWith('SwapsReapStoppedSwaps')) as [[string, { Properties: Record<string, any> }]];
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.states'],
      'detail-type': ['Step Functions Execution Status Change'],
      detail: { status: ['ABORTED', 'TIMED_OUT', 'FAILED'], stateMachineArn: [{ Ref: expect.stringMatching(/^SwapsSwapStateMachine/) }] },
    });
    expect(rule.Properties.Targets[0].Arn).toEqual({ Ref: expect.stringMatching(/^SwapsReapSwapStateMachine/) });
  });

  it('passes the batch policy to the batch function and has no unacknowledged cdk-nag finding', () => {
    const [, fn] = resources('AWS::Lambda::Function').find(([id]) => id.startsWith('SwapBatchBatchSteps'))!;
    expect(JSON.parse(fn.Properties.Environment.Variables.BATCH_POLICY)).toEqual({ budget: { count: 1 }, maxFailedSwaps: 1, alarmNames: ['checkout-slo'] });
    const report = new AwsSolutionsChecks().validateScope(built.app);
    expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`))).toEqual([]);
  });
});
