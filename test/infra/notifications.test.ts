import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../lib/app';
import { NOTIFIABLE_EVENTS } from '../../lib/notifiable-events';
import { PROJECT_ROOT } from '../../lib/paths';

const cdkConfig = () => JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden as Record<string, unknown>;
const webhooks = [
  { name: 'ops-slack', kind: 'slack', urlSecretName: 'fleetwarden/ops-slack', events: ['PoolQuarantined', 'InstanceFlagged', 'InstanceTerminated'], environments: ['PROD', 'STAGING'] },
  { name: 'ops-teams', kind: 'teams', urlSecretName: 'fleetwarden/ops-teams', events: ['SwapRolledBack', 'WorkloadRollbackFailed'] },
  { name: 'pager', kind: 'json', url: 'https://events.pagerduty.example/v2/enqueue', secretName: 'fleetwarden/pager', header: 'X-Routing-Key', events: ['CircuitBreakerTripped'], retryAttempts: 20, maxEventAgeMinutes: 15 },
];

let template: Template;
let app: ReturnType<typeof buildApp>['app'];

beforeAll(() => {
  ({ app } = buildApp({ skipBundling: true, nag: false, config: { ...cdkConfig(), notifications: { webhooks } } }));
  template = Template.fromJSON(app.synth().getStackByName('Fleetwarden').template);
});

const resourcesOf = (type: string) => Object.entries(template.findResources(type));
const rulesTo = (webhook: string) => resourcesOf('AWS::Events::Rule').filter(([id]) => id.startsWith(`Notifications${webhook.replace(/-/g, '')}`));
const logicalId = (prefix: string) => resourcesOf('AWS::Events::ApiDestination').find(([id]) => id.startsWith(prefix))![0];

describe('webhook notifications (template)', () => {
  it('builds nothing, not even the dead-letter queue, when no webhook is configured', () => {
    const { stack } = buildApp({ skipBundling: true, nag: false });
    const plain = Template.fromStack(stack);
    plain.resourceCountIs('AWS::Events::Connection', 0);
    plain.resourceCountIs('AWS::Events::ApiDestination', 0);
    expect(Object.keys(plain.findResources('AWS::SQS::Queue')).some((id) => id.startsWith('Notifications'))).toBe(false);
    expect(plain.toJSON().Outputs.NotificationDeadLetterQueueUrl).toBeUndefined();
  });

  it('gives each webhook a connection and a POST API destination', () => {
    template.resourceCountIs('AWS::Events::Connection', webhooks.length);
    template.resourceCountIs('AWS::Events::ApiDestination', webhooks.length);
    template.hasResourceProperties('AWS::Events::ApiDestination', { HttpMethod: 'POST', InvocationEndpoint: 'https://events.pagerduty.example/v2/enqueue' });
  });

  it('keeps secrets out of the template: the auth header and Slack and Teams URLs are Secrets Manager references', () => {
    template.hasResourceProperties('AWS::Events::Connection', {
      AuthorizationType: 'API_KEY',
      AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'X-Routing-Key', ApiKeyValue: '{{resolve:secretsmanager:fleetwarden/pager:SecretString:::}}' } },
    });
    template.hasResourceProperties('AWS::Events::ApiDestination', { InvocationEndpoint: '{{resolve:secretsmanager:fleetwarden/ops-slack:SecretString:::}}', InvocationRateLimitPerSecond: 1 });
    template.hasResourceProperties('AWS::Events::ApiDestination', { InvocationEndpoint: '{{resolve:secretsmanager:fleetwarden/ops-teams:SecretString:::}}' });
    // Without secretName the connection's (required) API key is the webhook's name, which is no secret.
    template.hasResourceProperties('AWS::Events::Connection', { AuthParameters: { ApiKeyAuthParameters: { ApiKeyName: 'X-Fleetwarden-Webhook', ApiKeyValue: 'ops-teams' } } });
  });

  it('puts one rule per webhook and event type on the fleetwarden bus, matching the sources that publish it', () => {
    expect(rulesTo('ops-slack')).toHaveLength(3);
    for (const [, rule] of resourcesOf('AWS::Events::Rule').filter(([id]) => id.startsWith('Notifications'))) {
      expect(rule.Properties.EventBusName).toEqual({ Ref: expect.stringMatching(/^StateStoreBus/) });
      const [detailType] = rule.Properties.EventPattern['detail-type'];
      expect(rule.Properties.EventPattern.source).toEqual(NOTIFIABLE_EVENTS[detailType]!.sources);
    }
    template.hasResourceProperties('AWS::Events::Rule', { EventPattern: { source: ['fleetwarden.enforcement', 'fleetwarden.waste'], 'detail-type': ['CircuitBreakerTripped'] } });
    template.hasResourceProperties('AWS::Events::Rule', { EventPattern: { source: ['fleetwarden.workloads'], 'detail-type': ['WorkloadRollbackFailed'] } });
  });

  it('filters on the environment only the events that carry one', () => {
    const patterns = Object.fromEntries(rulesTo('ops-slack').map(([, r]) => [r.Properties.EventPattern['detail-type'][0], r.Properties.EventPattern]));
    expect(patterns.InstanceFlagged.detail).toEqual({ environment: ['PROD', 'STAGING'] });
    expect(patterns.InstanceTerminated.detail).toEqual({ environment: ['PROD', 'STAGING'] });
    expect(patterns.PoolQuarantined.detail).toBeUndefined();
  });

  it('targets the API destination with its own role, the retry policy and the notifications dead-letter queue', () => {
    const [[, pager]] = rulesTo('pager') as [[string, { Properties: { Targets: Record<string, any>[] } }]];
    expect(pager.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: { 'Fn::GetAtt': [logicalId('NotificationspagerDestination'), 'Arn'] },
        RoleArn: { 'Fn::GetAtt': [expect.stringMatching(/^NotificationspagerInvokeRole/), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 20, MaximumEventAgeInSeconds: 900 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^NotificationsDeadLettersQueue/), 'Arn'] } },
      }),
    ]);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: { Statement: [{ Effect: 'Allow', Action: 'events:InvokeApiDestination', Resource: { 'Fn::GetAtt': [logicalId('NotificationspagerDestination'), 'Arn'] } }] },
      Roles: [{ Ref: Match.stringLikeRegexp('^NotificationspagerInvokeRole') }],
    });
  });

  it('transforms each event into valid JSON of the webhook kind', () => {
    const templates = resourcesOf('AWS::Events::Rule')
      .filter(([id]) => id.startsWith('Notifications'))
      .map(([id, r]) => ({ id, transformer: r.Properties.Targets[0].InputTransformer as { InputPathsMap: Record<string, string>; InputTemplate: string } }));
    for (const { id, transformer } of templates) {
      // Every placeholder is mapped (or predefined), and the template is JSON once they are filled in.
      const placeholders = [...transformer.InputTemplate.matchAll(/<([A-Za-z0-9_.-]+)>/g)].map((m) => m[1]!);
      for (const p of placeholders) expect(p in transformer.InputPathsMap || p === 'aws.events.event.json', `${id}: <${p}>`).toBe(true);
      const filled = JSON.parse(transformer.InputTemplate.replace('<aws.events.event.json>', '{}').replace(/<[A-Za-z0-9_.-]+>/g, 'x'));
      if (id.startsWith('Notificationsopsslack')) expect(Object.keys(filled)).toEqual(['text']);
      if (id.startsWith('Notificationsopsteams')) expect(filled.attachments[0].contentType).toBe('application/vnd.microsoft.card.adaptive');
      if (id.startsWith('Notificationspager')) expect(Object.keys(filled)).toEqual(['source', 'detailType', 'summary', 'event']);
    }
  });

  it('watches the dead-letter queue with an alarm, encrypts it, and lists it for `fleetwarden status`', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { AlarmName: 'Fleetwarden: a message is waiting in the dead-letter queue Notifications/DeadLetters', Threshold: 1 });
    const [, queue] = resourcesOf('AWS::SQS::Queue').find(([id]) => id.startsWith('NotificationsDeadLettersQueue'))!;
    expect(queue.Properties.KmsMasterKeyId).toBeDefined();
    expect(template.toJSON().Outputs.NotificationDeadLetterQueueUrl).toBeDefined();
  });

  it('reports no unacknowledged cdk-nag finding', () => {
    const report = new AwsSolutionsChecks().validateScope(app);
    expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`))).toEqual([]);
  });
});
