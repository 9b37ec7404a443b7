import { Match, Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { DynamoArchivePositions } from '../../functions/ledger/adapters';
import { MAX_SEGMENT_ENTRIES } from '../../functions/ledger/segment';
import { buildApp } from '../../lib/app';

const template = (() => {
  const { app } = buildApp({ skipBundling: true, nag: false });
  return Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
})();

const archiveRole = () => {
  const [id] = Object.keys(template.findResources('AWS::IAM::Role', { Properties: { Description: Match.stringLikeRegexp('fleetwarden-ledger-archive') } }));
  const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === id));
  return policies.flatMap((p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown; Condition?: unknown }[]);
};
const actionsOf = (statements: { Action: string | string[] }[]) => statements.flatMap((s) => [s.Action].flat());

describe('the ledger archive', () => {
  it("reads the ledger table's stream from its start in batches of up to 1,000 gathered over at most 5 minutes, failed batches retried and then sent to a dead-letter queue", () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      StartingPosition: 'TRIM_HORIZON',
      BatchSize: MAX_SEGMENT_ENTRIES,
      MaximumBatchingWindowInSeconds: 300,
      MaximumRetryAttempts: 10,
      EventSourceArn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^StateStoreLedgerTable'), 'StreamArn'] },
      DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LedgerArchiveDeadLetters'), 'Arn'] } } },
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApproximateNumberOfMessagesVisible', Dimensions: [{ Name: 'QueueName', Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LedgerArchiveDeadLetters'), 'QueueName'] } }] });
  });

  it('catches up every hour with what the stream did not bring', () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 hour)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LedgerLedgerArchiveFunction'), 'Arn'] }, Input: JSON.stringify({ chain: 'fleet' }) })],
    });
  });

  it('may put objects only under segments/ and write only its own position in the Locks table, and nothing in the ledger table', () => {
    const statements = archiveRole();
    const put = statements.find((s) => actionsOf([s]).includes('s3:PutObject'))!;
    expect(JSON.stringify(put.Resource)).toContain('/segments/*');
    const locks = statements.find((s) => actionsOf([s]).includes('dynamodb:PutItem'))!;
    expect(locks.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [DynamoArchivePositions.idOf('*')] } });
    expect(JSON.stringify(locks.Resource)).toContain('StateStoreLocksTable');
    const onLedger = statements.filter((s) => JSON.stringify(s.Resource).includes('StateStoreLedgerTable') && !JSON.stringify(s.Resource).includes('StreamArn'));
    expect(actionsOf(onLedger).sort()).toEqual(['dynamodb:Query']);
    expect(actionsOf(statements).filter((a) => /Delete|Update|PutObjectRetention|BypassGovernance/.test(a))).toEqual([]);
  });

  it('keeps point-in-time recovery on the ledger table', () => {
    template.hasResourceProperties('AWS::DynamoDB::Table', { KeySchema: [{ AttributeName: 'chain', KeyType: 'HASH' }, { AttributeName: 'seq', KeyType: 'RANGE' }], PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } });
  });

  it('lists the new segments in the digest workflow and keeps where they start in latest.json', () => {
    const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: 'fleetwarden-ledger-digest' } }));
    const definition = JSON.stringify(machine!.Properties.DefinitionString);
    expect(definition).toContain('List the segments no digest lists yet');
    expect(definition).toContain('segmentsafter');
  });
});

describe('the daily ledger verification', () => {
  it("runs every day at 01:00 UTC on yesterday's entries, and alarms to the topic when it finds them not intact or fails", () => {
    template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(0 1 * * ? *)',
      Targets: [Match.objectLike({ Arn: { 'Fn::GetAtt': [Match.stringLikeRegexp('^LedgerLedgerVerifyFunction'), 'Arn'] }, Input: JSON.stringify({ chain: 'fleet' }) })],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      AlarmName: 'Fleetwarden: the daily ledger verification failed',
      Metrics: Match.arrayWith([Match.objectLike({ Expression: 'MAX([failed, errors])' }), Match.objectLike({ MetricStat: Match.objectLike({ Metric: Match.objectLike({ MetricName: 'LedgerVerificationFailed', Namespace: 'Fleetwarden' }) }) })]),
      AlarmActions: [{ Ref: Match.stringLikeRegexp('^StateStoreNotifications') }],
    });
  });
});
