import type { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app';
import { parseConfig } from '../../lib/config';
import { TABLES } from '../../lib/constructs/state-store';

let app: App;
let template: Template;

beforeAll(() => {
  ({ app } = buildApp({ skipBundling: true }));
  template = Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
});

const resourcesOf = (type: string) => Object.entries(template.findResources(type));

/** Every IAM statement in the template, wherever CDK put it. */
function statements(): { Effect: string; Action: string | string[]; Resource: unknown; owner: string }[] {
  return resourcesOf('AWS::IAM::Policy').flatMap(([id, r]) =>
    (r.Properties.PolicyDocument.Statement as { Effect: string; Action: string | string[]; Resource: unknown }[]).map((s) => ({ ...s, owner: id })),
  );
}
const actionsOf = (s: { Action: string | string[] }) => [s.Action].flat();

describe('state store', () => {
  it('encrypts every table with the customer-managed key, with point-in-time recovery', () => {
    const tables = resourcesOf('AWS::DynamoDB::Table');
    expect(tables).toHaveLength(Object.keys(TABLES).length);
    for (const [, table] of tables) {
      expect(table.Properties.SSESpecification).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [expect.stringMatching(/^StateStoreDataKey/), 'Arn'] } });
      expect(table.Properties.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
    }
  });

  it('streams the ledger with old and new images and gives the other tables their TTL attribute', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', {
      KeySchema: [
        { AttributeName: 'chain', KeyType: 'HASH' },
        { AttributeName: 'seq', KeyType: 'RANGE' },
      ],
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
    for (const spec of Object.values(TABLES)) {
      if (!('ttl' in spec)) continue;
      template.hasResourceProperties('AWS::DynamoDB::Table', {
        KeySchema: [{ AttributeName: spec.partitionKey, KeyType: 'HASH' }],
        TimeToLiveSpecification: { AttributeName: spec.ttl, Enabled: true },
      });
    }
  });

  it('turns on deletion protection and retains data only for a production config', () => {
    const prod = buildApp({ skipBundling: true, nag: false, config: { stage: 'prod', homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'p', environment: 'PROD' }] } });
    const prodTemplate = Template.fromStack(prod.stack);
    const prodTables = Object.values(prodTemplate.findResources('AWS::DynamoDB::Table'));
    expect(prodTables.every((t) => t.Properties.DeletionProtectionEnabled === true && t.DeletionPolicy === 'Retain')).toBe(true);
    const devTables = resourcesOf('AWS::DynamoDB::Table').map(([, t]) => t);
    expect(devTables.every((t) => t.Properties.DeletionProtectionEnabled === false && t.DeletionPolicy === 'Delete')).toBe(true);
    prodTemplate.hasResourceProperties('AWS::S3::Bucket', { ObjectLockConfiguration: { Rule: { DefaultRetention: { Mode: 'COMPLIANCE' } } } });
  });

  it('rotates the data key and gives every queue a KMS key, TLS-only access and a watched DLQ', () => {
    template.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    for (const [, queue] of resourcesOf('AWS::SQS::Queue')) expect(queue.Properties.KmsMasterKeyId).toBeDefined();
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: { Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } })]) },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Threshold: 1 });
    template.hasResourceProperties('AWS::Events::EventBus', { Name: 'fleetwarden' });
    template.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
  });
});

describe('functions', () => {
  it('run nodejs22.x on ARM64 with JSON logs into an explicit log group, tracing on', () => {
    const functions = resourcesOf('AWS::Lambda::Function');
    expect(functions.length).toBeGreaterThan(0);
    for (const [, fn] of functions) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogFormat: 'JSON', LogGroup: { Ref: expect.any(String) } },
      });
      expect(fn.Properties.Environment.Variables).toMatchObject({ FLEETWARDEN_DRY_RUN: 'true', NODE_OPTIONS: '--enable-source-maps' });
    }
  });

  it('refuse to synthesize when the environment misses a key the handler needs', async () => {
    const { FleetFunction } = await import('../../lib/constructs/fleet-function');
    const { LedgerDigestEnvSchema } = await import('../../functions/ledger/digest/env');
    const { stack } = buildApp({ skipBundling: true, nag: false });
    expect(
      () =>
        new FleetFunction(stack, 'Broken', {
          entry: 'functions/ledger/digest/handler.ts',
          description: 'missing env',
          envSchema: LedgerDigestEnvSchema,
          environment: { LEDGER_TABLE_NAME: 't' } as never,
          config: parseConfig({ homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'p', environment: 'PROD' }] }),
        }),
    ).toThrow(/environment does not satisfy its schema.*SIGNING_KEY_ID/s);
  });
});

describe('interruption pipeline', () => {
  it('drains its queue with partial batch failures, and the queue outlasts six function timeouts', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', { FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 10 });
    const queue = resourcesOf('AWS::SQS::Queue').find(([id]) => id.startsWith('InterruptionsEventsQueue'))![1];
    const fn = resourcesOf('AWS::Lambda::Function').find(([id]) => id.startsWith('InterruptionsInterruptionIngest'))![1];
    expect(queue.Properties.VisibilityTimeout).toBeGreaterThanOrEqual(6 * fn.Properties.Timeout);
    expect(queue.Properties.RedrivePolicy).toMatchObject({ maxReceiveCount: 5 });
  });

  it('lets every configured account send its events to the default bus', () => {
    template.resourceCountIs('AWS::Events::EventBusPolicy', 4);
    template.hasResourceProperties('AWS::Events::EventBusPolicy', { StatementId: 'fleetwarden-333333333333', EventBusName: 'default' });
  });

  it('gives every rule target a DLQ', () => {
    for (const [, rule] of resourcesOf('AWS::Events::Rule')) {
      for (const target of rule.Properties.Targets) expect(target.DeadLetterConfig?.Arn).toBeDefined();
    }
  });

  it('passes the config the handler validates: accounts and risk policy', () => {
    const fn = resourcesOf('AWS::Lambda::Function').find(([id]) => id.startsWith('InterruptionsInterruptionIngest'))![1];
    const env = fn.Properties.Environment.Variables;
    expect(JSON.parse(env.ACCOUNT_ENVIRONMENTS)).toEqual({ '123456789012': 'PROD', '111111111111': 'PROD', '222222222222': 'STAGING', '333333333333': 'LAB' });
    expect(JSON.parse(env.RISK_POLICY)).toEqual({ quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 });
  });
});

describe('IAM', () => {
  it('never grants a wildcard action', () => {
    const wildcards = statements().flatMap((s) => actionsOf(s).filter((a) => a.includes('*')).map((a) => `${s.owner}: ${a}`));
    expect(wildcards).toEqual([]);
  });

  it('gives no role update or delete on the ledger table', () => {
    const ledgerId = resourcesOf('AWS::DynamoDB::Table').find(([id]) => id.startsWith('StateStoreLedgerTable'))![0];
    const forbidden = ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete', 'dynamodb:DeleteTable', 'dynamodb:UpdateTable'];
    const onLedger = statements().filter((s) => JSON.stringify(s.Resource).includes(ledgerId));
    expect(onLedger.length).toBeGreaterThan(0);
    for (const s of onLedger) expect(actionsOf(s).filter((a) => forbidden.includes(a))).toEqual([]);
  });
});

describe('IAM on encrypted resources and the ledger', () => {
  const dataKeyId = () => resourcesOf('AWS::KMS::Key').find(([id]) => id.startsWith('StateStoreDataKey'))![0];
  /** Statements grouped by the role(s) their policy is attached to. */
  function byRole(): Map<string, { Action: string | string[]; Resource: unknown; Condition?: unknown }[]> {
    const roles = new Map<string, { Action: string | string[]; Resource: unknown; Condition?: unknown }[]>();
    for (const [, policy] of resourcesOf('AWS::IAM::Policy')) {
      for (const role of policy.Properties.Roles as { Ref: string }[]) {
        roles.set(role.Ref, [...(roles.get(role.Ref) ?? []), ...policy.Properties.PolicyDocument.Statement]);
      }
    }
    return roles;
  }

  it('lets every principal that publishes to the topic or sends to an encrypted queue use the data key', () => {
    const topicId = resourcesOf('AWS::SNS::Topic')[0]![0];
    for (const [role, statements] of byRole()) {
      const publishes = statements.some((st) => actionsOf(st).some((a) => a === 'sns:Publish') && JSON.stringify(st.Resource).includes(topicId));
      const sends = statements.some((st) => actionsOf(st).some((a) => a === 'sqs:SendMessage'));
      if (!publishes && !sends) continue;
      const canEncrypt = statements.some((st) => actionsOf(st).includes('kms:GenerateDataKey') && JSON.stringify(st.Resource).includes(dataKeyId()));
      expect({ role, canEncrypt }).toEqual({ role, canEncrypt: true });
    }
  });

  it('limits every PutItem on the ledger to the chain keys, and grants no DynamoDB write on every table', () => {
    const ledgerId = resourcesOf('AWS::DynamoDB::Table').find(([id]) => id.startsWith('StateStoreLedgerTable'))![0];
    const writes = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem', 'dynamodb:PartiQLInsert', 'dynamodb:PartiQLUpdate', 'dynamodb:PartiQLDelete'];
    for (const st of statements()) {
      const written = actionsOf(st).filter((a) => writes.includes(a));
      if (!written.length) continue;
      expect({ resource: st.Resource, written }).not.toEqual({ resource: '*', written });
      if (JSON.stringify(st.Resource).includes(ledgerId)) {
        expect(written).toEqual(['dynamodb:PutItem']);
        expect((st as { Condition?: unknown }).Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['fleet', 'fleet#dedupe#*'] } });
      }
    }
  });

  it('lets AWS services use the data key and the interruption queue only on behalf of this account', () => {
    const key = resourcesOf('AWS::KMS::Key').find(([id]) => id.startsWith('StateStoreDataKey'))![1];
    const serviceStatements = key.Properties.KeyPolicy.Statement.filter((st: { Principal: { Service?: unknown } }) => st.Principal.Service);
    expect(serviceStatements.length).toBeGreaterThan(0);
    for (const st of serviceStatements) expect(st.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': expect.anything() } });
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([Match.objectLike({ Effect: 'Deny', Principal: { Service: 'events.amazonaws.com' }, Action: 'sqs:SendMessage', Condition: { StringNotEquals: { 'aws:SourceAccount': Match.anyValue() } } })]),
      },
    });
  });

  it('alarms when a state machine execution fails', () => {
    const machines = resourcesOf('AWS::StepFunctions::StateMachine').map(([id]) => id);
    const alarmed = resourcesOf('AWS::CloudWatch::Alarm')
      .filter(([, a]) => a.Properties.MetricName === 'ExecutionsFailed')
      .map(([, a]) => JSON.stringify(a.Properties.Dimensions));
    for (const machine of machines) expect(alarmed.some((d) => d.includes(machine))).toBe(true);
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('reports no unacknowledged finding', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    const findings = report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`));
    expect(findings).toEqual([]);
  });

  it('reports no unacknowledged finding when the account is known too (cdk synth with credentials), with clusters configured', () => {
    const saved = process.env.CDK_DEFAULT_ACCOUNT;
    process.env.CDK_DEFAULT_ACCOUNT = '123456789012';
    try {
      const { app: known } = buildApp({
        skipBundling: true,
        nag: false,
        config: { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '123456789012', name: 'home', environment: 'PROD' }], kubernetes: { clusters: [{ name: 'prod-eks', region: 'us-east-1' }] } },
      });
      const report = new AwsSolutionsChecks().validateScope(known);
      expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`))).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = saved;
    }
  });

  it('gives every acknowledgement a reason', () => {
    // Recorded as { "Annotation::<rule id>": "<reason>" } on the acknowledging construct.
    const acknowledgements = app.node
      .findAll()
      .flatMap((c) => c.node.metadata.filter((m) => m.type === 'aws:cdk:acknowledged-rules'))
      .flatMap((m) => Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({ id, reason })));
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const ack of acknowledgements) expect(ack.reason?.length ?? 0).toBeGreaterThan(20);
  });
});

describe('node drift schedule', () => {
  const detector = () => resourcesOf('AWS::Lambda::Function').find(([id]) => id.startsWith('NodeDriftNodeDriftDetector'))!;
  const deadLetters = { 'Fn::GetAtt': [expect.stringMatching(/^StateStoreAsyncDeadLettersQueue/), 'Arn'] };

  it('should retry a failed drift cycle nowhere and send it to the dead-letter queue: the next cycle is the retry', () => {
    // Prepare
    const [fnId] = detector();
    const rule = resourcesOf('AWS::Events::Rule').find(([id]) => id.startsWith('NodeDriftSchedule'))![1];
    const invokeConfigs = resourcesOf('AWS::Lambda::EventInvokeConfig').filter(([, c]) => c.Properties.FunctionName.Ref === fnId);
    // Assess: EventBridge delivers once (a failed delivery goes to the DLQ) ...
    expect(rule.Properties.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [fnId, 'Arn'] }, RetryPolicy: expect.objectContaining({ MaximumRetryAttempts: 0 }), DeadLetterConfig: { Arn: deadLetters } })]);
    // ... and Lambda does not re-run a cycle that failed: it goes to the same DLQ, whose alarm tells operators.
    expect(invokeConfigs.map(([, c]) => c.Properties)).toEqual([
      { FunctionName: { Ref: fnId }, Qualifier: '$LATEST', MaximumRetryAttempts: 0, MaximumEventAgeInSeconds: 60, DestinationConfig: { OnFailure: { Destination: deadLetters } } },
    ]);
  });

  it('should let the drift detector send its failed cycles to the dead-letter queue, and nothing more', () => {
    const [fnId, fn] = detector();
    const roleId = fn.Properties.Role['Fn::GetAtt'][0] as string;
    const own = statements().filter((s) => resourcesOf('AWS::IAM::Policy').some(([id, p]) => id === s.owner && p.Properties.Roles.some((r: { Ref: string }) => r.Ref === roleId)));
    const sqs = own.filter((s) => actionsOf(s).some((a) => a.startsWith('sqs:')));
    expect(sqs).toEqual([expect.objectContaining({ Action: 'sqs:SendMessage', Resource: deadLetters })]);
    expect(fnId).toMatch(/^NodeDriftNodeDriftDetector/);
  });
});
