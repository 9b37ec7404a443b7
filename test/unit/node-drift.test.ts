import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { AwsSolutionsChecks } from 'cdk-nag';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DriftCycleInputSchema } from '../../functions/drift/handler/handler';
import { NodeDriftEnvSchema } from '../../functions/drift/handler/env';
import {
  type GroupDriftFacts,
  type InstanceFacts,
  type ResolvedTemplate,
  detectNodeDrift,
  driftBatchReason,
  driftDedupeKey,
  driftExecutionName,
  driftExecutionPrefix,
} from '../../functions/drift/nodes';
import { type BatchStarter, type DriftDeps, runDriftCycle } from '../../functions/drift/repair';
import type { LedgerDraft } from '../../functions/ledger/chain';
import type { AppendOptions } from '../../functions/ledger/store';
import { EXECUTION_NAME } from '../../functions/shared/executions';
import { parseOrThrow } from '../../functions/shared/validation';
import { parseConfig } from '../../lib/config';
import { NodeDrift, wantsNodeDrift } from '../../lib/constructs/drift';
import { StateStore } from '../../lib/constructs/state-store';

const target: ResolvedTemplate = { launchTemplateId: 'lt-0aaa', configured: '$Latest', version: 5, imageId: 'ami-new' };
const instance = (id: string, changes: Partial<InstanceFacts> = {}): InstanceFacts => ({
  instanceId: id,
  lifecycleState: 'InService',
  instanceType: 'm5.large',
  imageId: 'ami-new',
  launchTemplate: { launchTemplateId: 'lt-0aaa', version: '5' },
  launchedVersion: '5',
  doNotDisrupt: false,
  ...changes,
});
const group = (instances: InstanceFacts[], spec: GroupDriftFacts['spec'] = { kind: 'launch-template', template: target, overrides: [] }): GroupDriftFacts => ({ name: 'web', spec, instances });

describe('node drift decisions', () => {
  it('reports nothing for instances on the group’s launch template version and AMI', () => {
    expect(detectNodeDrift(group([instance('i-0000000001'), instance('i-0000000002')]))).toEqual([]);
  });

  it('reports an instance on an older AMI, naming both AMIs', () => {
    const [finding] = detectNodeDrift(group([instance('i-0000000001', { imageId: 'ami-old' })]));
    expect(finding).toMatchObject({ instanceId: 'i-0000000001', repairable: true, reason: 'ami ami-old != ami-new', target: { launchTemplateId: 'lt-0aaa', version: 5, imageId: 'ami-new' } });
  });

  it('reports an instance on an older launch template version, from EC2’s launched-version tag', () => {
    // Auto Scaling may report the group's symbolic version ($Latest) for the instance; EC2's tag is the number it launched from.
    const drifted = instance('i-0000000001', { launchTemplate: { launchTemplateId: 'lt-0aaa', version: '$Latest' }, launchedVersion: '3', imageId: 'ami-old' });
    expect(detectNodeDrift(group([drifted]))[0]!.reason).toBe('launch template version 3 != 5; ami ami-old != ami-new');
  });

  it('falls back on the version Auto Scaling reports when EC2 carries no tag', () => {
    const drifted = instance('i-0000000001', { launchTemplate: { launchTemplateId: 'lt-0aaa', version: '4' }, launchedVersion: undefined });
    expect(detectNodeDrift(group([drifted]))[0]!.differences).toEqual(['launch template version 4 != 5']);
  });

  it('judges only the AMI when no concrete version is known', () => {
    const unknown = instance('i-0000000001', { launchTemplate: { launchTemplateId: 'lt-0aaa', version: '$Default' }, launchedVersion: undefined });
    expect(detectNodeDrift(group([unknown]))).toEqual([]);
    expect(detectNodeDrift(group([{ ...unknown, imageId: 'ami-old' }]))[0]!.differences).toEqual(['ami ami-old != ami-new']);
  });

  it('reports an instance from another launch template or from a launch configuration', () => {
    const findings = detectNodeDrift(
      group([instance('i-0000000001', { launchTemplate: { launchTemplateId: 'lt-0bbb', version: '5' } }), instance('i-0000000002', { launchTemplate: undefined, launchedVersion: undefined, launchConfiguration: 'old-lc' })]),
    );
    expect(findings.map((f) => f.reason)).toEqual(['launch template lt-0bbb != lt-0aaa', 'launch configuration old-lc != launch template lt-0aaa']);
  });

  it('compares an instance of a mixed instances policy with the override for its type', () => {
    const graviton: ResolvedTemplate = { launchTemplateId: 'lt-0arm', configured: '2', version: 2, imageId: 'ami-arm' };
    const spec = { kind: 'launch-template' as const, template: target, overrides: [{ instanceType: 'm7g.large', template: graviton }] };
    const findings = detectNodeDrift(
      group(
        [
          instance('i-0000000001', { instanceType: 'm7g.large', launchTemplate: { launchTemplateId: 'lt-0arm', version: '2' }, launchedVersion: '2', imageId: 'ami-arm' }),
          instance('i-0000000002', { instanceType: 'm7g.large', launchTemplate: { launchTemplateId: 'lt-0arm', version: '1' }, launchedVersion: '1', imageId: 'ami-arm-old' }),
          instance('i-0000000003'),
        ],
        spec,
      ),
    );
    expect(findings.map((f) => [f.instanceId, f.reason])).toEqual([['i-0000000002', 'launch template version 1 != 2; ami ami-arm-old != ami-arm']]);
  });

  it('reports a do-not-disrupt instance as drifted but never repairs it', () => {
    const [finding] = detectNodeDrift(group([instance('i-0000000001', { imageId: 'ami-old', doNotDisrupt: true })]));
    expect(finding).toMatchObject({ repairable: false, reason: 'ami ami-old != ami-new (not repaired: tagged fleetwarden:do-not-disrupt=true)' });
  });

  it('reports launch configuration drift without repairing it (swaps launch from a launch template)', () => {
    const findings = detectNodeDrift(group([instance('i-0000000001', { launchTemplate: undefined, launchConfiguration: 'lc-1' }), instance('i-0000000002', { launchTemplate: undefined, launchConfiguration: 'lc-2' })], { kind: 'launch-configuration', name: 'lc-2' }));
    expect(findings).toEqual([expect.objectContaining({ instanceId: 'i-0000000001', repairable: false, reason: 'launch configuration lc-1 != lc-2 (not repaired: the group uses a launch configuration; swaps launch from a launch template)' })]);
  });

  it('ignores instances that are not InService', () => {
    expect(detectNodeDrift(group([instance('i-0000000001', { imageId: 'ami-old', lifecycleState: 'Pending' }), instance('i-0000000002', { imageId: 'ami-old', lifecycleState: 'Terminating' })]))).toEqual([]);
  });

  const arbitraryInstance = fc.record({
    instanceId: fc.stringMatching(/^i-[0-9a-f]{8}$/),
    lifecycleState: fc.constantFrom('InService', 'Pending', 'Terminating', 'Standby'),
    instanceType: fc.constantFrom('m5.large', 'm7g.large'),
    imageId: fc.option(fc.constantFrom('ami-new', 'ami-old', 'ami-older'), { nil: undefined }),
    launchTemplate: fc.option(fc.record({ launchTemplateId: fc.constantFrom('lt-0aaa', 'lt-0bbb'), version: fc.constantFrom('3', '4', '5', '$Latest', '$Default') }), { nil: undefined }),
    launchedVersion: fc.option(fc.constantFrom('3', '4', '5'), { nil: undefined }),
    launchConfiguration: fc.option(fc.constantFrom('lc-1'), { nil: undefined }),
    doNotDisrupt: fc.boolean(),
  });

  it('reports only InService instances, each with its differences, never repairing a do-not-disrupt one (property)', () => {
    fc.assert(
      fc.property(fc.array(arbitraryInstance, { maxLength: 12 }), (instances) => {
        for (const f of detectNodeDrift(group(instances))) {
          const i = instances.find((x) => x.instanceId === f.instanceId)!;
          expect(i.lifecycleState).toBe('InService');
          expect(f.differences.length).toBeGreaterThan(0);
          expect(f.reason.startsWith(f.differences.join('; '))).toBe(true);
          if (i.doNotDisrupt) expect(f.repairable).toBe(false);
        }
      }),
    );
  });

  it('never reports an instance on the group’s template, version and AMI, however the version is reported (property)', () => {
    const matching = fc.record({
      instanceId: fc.stringMatching(/^i-[0-9a-f]{8}$/),
      lifecycleState: fc.constant('InService'),
      instanceType: fc.constantFrom('m5.large', 'c5.large'),
      imageId: fc.constant('ami-new'),
      launchTemplate: fc.record({ launchTemplateId: fc.constant('lt-0aaa'), version: fc.constantFrom('5', '$Latest', '$Default', undefined) }),
      launchedVersion: fc.constantFrom('5', undefined),
      doNotDisrupt: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(matching, { maxLength: 12 }), (instances) => {
        expect(detectNodeDrift(group(instances))).toEqual([]);
      }),
    );
  });

  it('reports an instance whose AMI differs from the target, whatever else is true (property)', () => {
    fc.assert(
      fc.property(arbitraryInstance, (i) => {
        fc.pre(i.lifecycleState === 'InService' && i.imageId !== undefined && i.imageId !== 'ami-new');
        const [finding] = detectNodeDrift(group([i]));
        expect(finding?.differences).toContain(`ami ${i.imageId} != ami-new`);
      }),
    );
  });
});

describe('drift batch naming', () => {
  const now = new Date('2026-12-01T10:00:00Z');
  const t = { launchTemplateId: 'lt-0aaa', version: 5, imageId: 'ami-new' };

  it('names the same detection the same, whatever the order of the instances, and under 80 safe characters (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 255 }), fc.uniqueArray(fc.stringMatching(/^i-[0-9a-f]{8,17}$/), { minLength: 1, maxLength: 50 }), (name, ids) => {
        const a = driftExecutionName(name, ids, [t], now);
        expect(a).toMatch(EXECUTION_NAME);
        expect(a.startsWith(driftExecutionPrefix(name))).toBe(true);
        expect(driftExecutionName(name, [...ids].reverse(), [t, t], now)).toBe(a);
      }),
    );
  });

  it('names a different set of instances, target or day differently', () => {
    const a = driftExecutionName('web', ['i-01234567', 'i-89abcdef'], [t], now);
    expect(driftExecutionName('web', ['i-01234567'], [t], now)).not.toBe(a);
    expect(driftExecutionName('web', ['i-01234567', 'i-89abcdef'], [{ ...t, version: 6 }], now)).not.toBe(a);
    expect(driftExecutionName('web', ['i-01234567', 'i-89abcdef'], [t], new Date('2026-12-02T00:00:00Z'))).not.toBe(a);
    expect(a).toMatch(/^drift-web-[0-9a-f]{6}-20261201-[0-9a-f]{12}$/);
  });

  it('keeps groups apart whose names only differ in characters an execution name cannot hold', () => {
    expect(driftExecutionPrefix('web:a')).not.toBe(driftExecutionPrefix('web/a'));
  });

  it('keys the ledger on group, instance and target', () => {
    const [finding] = detectNodeDrift(group([instance('i-0000000001', { imageId: 'ami-old' })]));
    expect(driftDedupeKey('us-east-1', finding!)).toBe('node-drift#us-east-1#web#i-0000000001#lt-0aaa:5:ami-new');
    expect(driftBatchReason([finding!])).toBe('node drift: 1 instance differs from launch template lt-0aaa version 5 (ami-new)');
  });
});

describe('a drift cycle', () => {
  function deps(facts: GroupDriftFacts | undefined, running: string[] = []) {
    const appended: { draft: LedgerDraft; options?: AppendOptions }[] = [];
    const published: unknown[] = [];
    const started: { name: string; request: unknown }[] = [];
    const seen = new Set<string>();
    const batches: BatchStarter = {
      running: async () => running,
      start: async (name, request) => {
        started.push({ name, request });
        return { started: true, executionArn: `arn:aws:states:us-east-1:123456789012:execution:batch:${name}` };
      },
    };
    const d: DriftDeps = {
      facts: { group: async () => facts },
      ledger: {
        append: async (draft, options) => {
          const duplicate = seen.has(options!.dedupeKey!);
          seen.add(options!.dedupeKey!);
          if (!duplicate) appended.push({ draft, options });
          return { entry: {} as never, duplicate, conflicts: 0 };
        },
      },
      publisher: { publish: async (events) => void published.push(...events) },
      batches,
      region: 'us-east-1',
      clock: () => new Date('2026-12-01T10:00:00Z'),
    };
    return { d, appended, published, started };
  }
  const swapGroups = [{ name: 'web', driftRepair: true }];

  it('records and announces each drifted instance once and asks for one batch of the repairable ones', async () => {
    // Prepare
    const facts = group([instance('i-0000000001', { imageId: 'ami-old' }), instance('i-0000000002', { imageId: 'ami-old', doNotDisrupt: true }), instance('i-0000000003')]);
    const { d, appended, published, started } = deps(facts);
    // Act
    const [first] = await runDriftCycle(swapGroups, d);
    const [second] = await runDriftCycle(swapGroups, d);
    // Assess
    expect(first).toMatchObject({ status: 'drifted', recorded: 2, batch: { outcome: 'started' } });
    expect(second).toMatchObject({ status: 'drifted', recorded: 0 });
    expect(appended.map((a) => [a.draft.action, a.draft.subject])).toEqual([
      ['node.drifted', 'us-east-1/web/i-0000000001'],
      ['node.drifted', 'us-east-1/web/i-0000000002'],
    ]);
    expect(published).toHaveLength(2);
    expect(started[0]!.request).toEqual({ groups: ['web'], instanceIds: ['i-0000000001'], trigger: 'drift', reason: 'node drift: 1 instance differs from launch template lt-0aaa version 5 (ami-new)', canary: true, urgent: false });
    expect(appended[0]!.draft.eventId).toBe(started[0]!.name);
  });

  it('starts no batch while another drift batch of the group runs, and none when nothing is repairable', async () => {
    const { d, started } = deps(group([instance('i-0000000001', { imageId: 'ami-old' })]), ['drift-web-000000-20261130-aaaaaaaaaaaa']);
    expect((await runDriftCycle(swapGroups, d))[0]!.batch).toEqual({ name: 'drift-web-000000-20261130-aaaaaaaaaaaa', outcome: 'another-running' });
    const quiet = deps(group([instance('i-0000000001', { imageId: 'ami-old', doNotDisrupt: true })]));
    expect((await runDriftCycle(swapGroups, quiet.d))[0]!.batch).toBeUndefined();
    expect([...started, ...quiet.started]).toEqual([]);
  });

  it('skips groups without driftRepair and reports a group that does not exist', async () => {
    const { d } = deps(undefined);
    expect(await runDriftCycle([{ name: 'web', driftRepair: true }, { name: 'db', driftRepair: false }], d)).toEqual([{ group: 'web', status: 'missing', drifted: [], recorded: 0 }]);
  });

  it('should try every group, then fail terminally naming the groups that failed: the next cycle is the retry', async () => {
    // Prepare: the first group cannot be read, the second has drifted.
    const { d, started } = deps(group([instance('i-0000000001', { imageId: 'ami-old' })]));
    const facts = d.facts;
    d.facts = { group: async (name) => (name === 'bad' ? Promise.reject(new Error('boom')) : facts.group(name)) };
    // Act
    const cycle = runDriftCycle([{ name: 'bad', driftRepair: true }, { name: 'web', driftRepair: true }], d);
    // Assess: not a Retryable.* error (nothing retries a cycle), and the group after the failed one was repaired.
    await expect(cycle).rejects.toMatchObject({ name: 'Terminal.DriftCycleFailed', message: 'drift cycle failed for bad (Error: boom); the next cycle tries again' });
    expect(started.map((s) => (s.request as { groups: string[] }).groups)).toEqual([['web']]);
  });
});

describe('the drift cycle input', () => {
  const scheduled = { version: '0', id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa', 'detail-type': 'Scheduled Event', source: 'aws.events', account: '123456789012', time: '2026-12-01T10:00:00Z', region: 'us-east-1', resources: ['arn:aws:events:us-east-1:123456789012:rule/Fleetwarden-NodeDriftSchedule'], detail: {} };

  it.each([
    ['the Scheduled Event of the rule', scheduled],
    ['the minimal Scheduled Event an operator, the demo or a test passes', { source: 'aws.events', 'detail-type': 'Scheduled Event', detail: {} }],
  ])('should accept %s', (_, input) => {
    expect(() => parseOrThrow(DriftCycleInputSchema, input, 'event')).not.toThrow();
  });

  it.each([
    ['nothing at all', {}, ['detail-type', 'source', 'detail']],
    ['another detail-type', { ...scheduled, 'detail-type': 'EC2 Instance State-change Notification' }, ['detail-type']],
    ['another source', { ...scheduled, source: 'aws.ec2' }, ['source']],
    ['a time that is not ISO 8601', { ...scheduled, time: 'yesterday' }, ['time']],
    ['an account that is not 12 digits', { ...scheduled, account: 'home' }, ['account']],
    ['parameters in the detail (a cycle takes none)', { ...scheduled, detail: { groups: ['web'] } }, ['detail']],
    ['not an object', 'run', ['(root)']],
  ])('should refuse %s with Terminal.InvalidInput naming the field', (_, input, fields) => {
    // Act
    const parse = () => parseOrThrow(DriftCycleInputSchema, input, 'event');
    // Assess
    expect(parse).toThrow(expect.objectContaining({ name: 'Terminal.InvalidInput' }));
    const message = (() => {
      try {
        parse();
      } catch (error) {
        return (error as Error).message;
      }
      return '';
    })();
    for (const field of fields) expect(message).toMatch(new RegExp(`(^|[:;] )${field.replace(/[()]/g, '\\$&')}: `));
  });
});

describe('NodeDrift construct', () => {
  const config = parseConfig({ homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'p', environment: 'PROD' }], swaps: { groups: [{ name: 'web' }, { name: 'db', driftRepair: false }] }, policies: { drift: { cycleMinutes: 2 } } });
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new Stack(app, 'DriftUnit', { env: { region: 'us-east-1', account: '111111111111' } });
  const store = new StateStore(stack, 'StateStore', { config });
  const batch = new sfn.StateMachine(stack, 'SwapBatch', { definitionBody: sfn.DefinitionBody.fromChainable(new sfn.Pass(stack, 'Plan the batch')) });
  new NodeDrift(stack, 'NodeDrift', { config, store, batch });
  const template = Template.fromStack(stack);

  it('is wanted only when some group has driftRepair', () => {
    expect(wantsNodeDrift(config)).toBe(true);
    expect(wantsNodeDrift({ ...config, swaps: { ...config.swaps, groups: [{ name: 'db', driftRepair: false }] } })).toBe(false);
  });

  it('runs the detector on the configured drift cycle', () => {
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(2 minutes)', Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^NodeDriftNodeDriftDetectorFunction'), 'Arn'] } })] });
  });

  it('gives the detector an environment its own schema accepts', () => {
    const fn = Object.values(template.findResources('AWS::Lambda::Function')).find((f) => JSON.stringify(f.Properties.Environment).includes('SWAP_GROUPS'))!;
    const env = fn.Properties.Environment.Variables as Record<string, unknown>;
    expect(JSON.parse(env.SWAP_GROUPS as string)).toEqual([{ name: 'web', driftRepair: true }, { name: 'db', driftRepair: false }]);
    const concrete = { ...env, BATCH_STATE_MACHINE_ARN: 'arn:aws:states:us-east-1:111111111111:stateMachine:batch', LEDGER_TABLE_NAME: 'l', EVENT_BUS_NAME: 'b' };
    expect(NodeDriftEnvSchema.safeParse(concrete).success).toBe(true);
    expect(DriftCycleInputSchema.safeParse({ source: 'aws.events', 'detail-type': 'Scheduled Event', time: '2026-12-01T10:00:00Z', detail: {} }).success).toBe(true);
  });

  it('may start and list executions of the batch machine only', () => {
    const statements = Object.values(template.findResources('AWS::IAM::Policy')).flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
    const states = statements.filter((s) => [s.Action].flat().some((a) => a.startsWith('states:')));
    expect(states).toEqual([expect.objectContaining({ Action: ['states:StartExecution', 'states:ListExecutions'], Resource: { Ref: expect.stringMatching(/^SwapBatch/) } })]);
    expect(statements.flatMap((s) => [s.Action].flat()).every((a) => !a.includes('*'))).toBe(true);
  });

  it('has no unacknowledged cdk-nag finding', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`));
    expect(findings.filter((f) => f.includes(' NodeDrift'))).toEqual([]);
  });
});
