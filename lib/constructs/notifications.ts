import { Duration, SecretValue, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { FleetwardenConfig, Webhook } from '../config';
import { type NotifiableEvent, notifiableEvent } from '../notifiable-events';
import { DeadLetterQueue } from './fleet-queue';
import type { StateStore } from './state-store';

export interface NotificationsProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/** Sent, with the webhook's name as value, when a webhook has no `secretName`: a connection needs some auth. */
export const WEBHOOK_NAME_HEADER = 'X-Fleetwarden-Webhook';

/** Envelope fields a message may show, besides the event's own `detail.*` placeholders. */
const ENVELOPE_PATHS: Record<string, string> = {
  source: '$.source',
  'detail-type': '$.detail-type',
  'event-id': '$.id',
  'event-time': '$.time',
};

/** Marks a JSON value that the template must carry unquoted: an object or the whole event. */
const RAW = '@@raw:';

/**
 * An input transformer whose template is written here as JSON with `<placeholder>`s, each one a
 * `detail.*` field unless it is an envelope field (ENVELOPE_PATHS); EventBridge JSON-escapes a
 * string value it puts inside quotes. `RAW` values become unquoted placeholders.
 */
export class MessageInput extends events.RuleTargetInput {
  readonly inputTemplate: string;
  readonly inputPathsMap: Record<string, string>;

  constructor(message: unknown) {
    super();
    this.inputTemplate = JSON.stringify(message).replace(new RegExp(`"${RAW}([^"]+)"`, 'g'), '<$1>');
    const names = [...new Set([...this.inputTemplate.matchAll(/<([A-Za-z0-9_.-]+)>/g)].map((m) => m[1]!))].filter((n) => !n.startsWith('aws.events.'));
    this.inputPathsMap = Object.fromEntries(names.map((n) => [n, ENVELOPE_PATHS[n] ?? `$.detail.${n}`]));
  }

  bind(_rule: events.IRule): events.RuleTargetInputProperties {
    return { inputTemplate: this.inputTemplate, inputPathsMap: this.inputPathsMap };
  }
}

/**
 * What each kind of webhook receives for one event type: Slack `{ "text" }` (mrkdwn), a Teams
 * message with an adaptive card (what Teams Workflows webhooks and the older connectors accept),
 * or a JSON envelope with the summary and the whole event.
 */
export function messageFor(kind: Webhook['kind'], detailType: string, event: NotifiableEvent): unknown {
  const title = `Fleetwarden: ${detailType}`;
  switch (kind) {
    case 'slack':
      return { text: `*${title}*\n${event.summary}\n_<source>, <event-time>, event <event-id>_` };
    case 'teams':
      return {
        type: 'message',
        attachments: [
          {
            contentType: 'application/vnd.microsoft.card.adaptive',
            content: {
              $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
              type: 'AdaptiveCard',
              version: '1.4',
              body: [
                { type: 'TextBlock', size: 'Medium', weight: 'Bolder', text: title, wrap: true },
                { type: 'TextBlock', text: event.summary, wrap: true },
                {
                  type: 'FactSet',
                  facts: [
                    { title: 'Source', value: '<source>' },
                    ...(event.environment ? [{ title: 'Environment', value: '<environment>' }] : []),
                    { title: 'Time', value: '<event-time>' },
                    { title: 'Event', value: '<event-id>' },
                  ],
                },
              ],
            },
          },
        ],
      };
    case 'json':
      return { source: '<source>', detailType: '<detail-type>', summary: event.summary, event: `${RAW}aws.events.event.json` };
  }
}

/**
 * Webhooks for chat and incident tools (`notifications.webhooks`), delivered by EventBridge
 * itself: per webhook a connection (its auth read from Secrets Manager at deploy time), an API
 * destination, and one rule per event type on Fleetwarden's bus, filtered on `detail.environment`
 * where the event carries one, whose target turns the event into the kind's message. EventBridge
 * retries failed calls (5xx, 429, 401, 407, 409, timeouts) within the webhook's retry policy,
 * then parks the event in one dead-letter queue, whose alarm notifies the topic.
 */
export class Notifications extends Construct {
  readonly deadLetters?: DeadLetterQueue;
  readonly destinations = new Map<string, events.ApiDestination>();

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    const { webhooks } = props.config.notifications;
    if (!webhooks.length) return;
    const { store } = props;
    const deadLetters = new DeadLetterQueue(this, 'DeadLetters', {
      key: store.key,
      alarmTopic: store.topic,
      removalPolicy: store.removalPolicy,
      whoseDeadLetters: 'the webhook targets (API destinations)',
      whatToDo:
        'A webhook call failed for good: each message is the event, with ERROR_CODE, ERROR_MESSAGE (the endpoint\'s status), RULE_ARN (its rule names the webhook and event type) and TARGET_ARN attributes. Fix the endpoint, URL or secret, then redrive to the bus (or delete what is stale). Other channels (e-mail, the CLI) still have the news.',
    });
    this.deadLetters = deadLetters;
    const account = Stack.of(this).account;

    for (const webhook of webhooks) {
      const scope = new Construct(this, webhook.name);
      const connection = new events.Connection(scope, 'Connection', {
        description: `Fleetwarden webhook ${webhook.name} (${webhook.kind})`,
        authorization: webhook.secretName
          ? events.Authorization.apiKey(webhook.header, SecretValue.secretsManager(webhook.secretName))
          : // Not a secret: EventBridge requires an auth on every connection, and this one names the sender.
            events.Authorization.apiKey(WEBHOOK_NAME_HEADER, SecretValue.unsafePlainText(webhook.name)),
      });
      const destination = new events.ApiDestination(scope, 'Destination', {
        description: `Fleetwarden webhook ${webhook.name} (${webhook.kind})`,
        connection,
        // A URL kept in Secrets Manager stays out of the template: CloudFormation resolves the reference.
        endpoint: webhook.url ?? SecretValue.secretsManager(webhook.urlSecretName!).unsafeUnwrap(),
        httpMethod: events.HttpMethod.POST,
        // Slack accepts about one message a second per incoming webhook.
        ...(webhook.kind === 'slack' ? { rateLimitPerSecond: 1 } : {}),
      });
      this.destinations.set(webhook.name, destination);
      const role = new iam.Role(scope, 'InvokeRole', {
        description: `EventBridge calls the API destination of webhook ${webhook.name}`,
        assumedBy: new iam.ServicePrincipal('events.amazonaws.com', { conditions: { StringEquals: { 'aws:SourceAccount': account } } }),
      });

      for (const detailType of webhook.events) {
        const event = notifiableEvent(detailType);
        const filterEnvironment = event.environment && webhook.environments;
        new events.Rule(scope, `${detailType}Rule`, {
          eventBus: store.bus,
          description: `${detailType} -> webhook ${webhook.name} (${webhook.kind})${filterEnvironment ? ` in ${webhook.environments!.join(', ')}` : ''}`,
          eventPattern: {
            source: [...event.sources],
            detailType: [detailType],
            ...(filterEnvironment ? { detail: { environment: [...webhook.environments!] } } : {}),
          },
          targets: [
            new targets.ApiDestination(destination, {
              event: new MessageInput(messageFor(webhook.kind, detailType, event)),
              eventRole: role,
              deadLetterQueue: deadLetters.queue,
              retryAttempts: webhook.retryAttempts,
              maxEventAge: Duration.minutes(webhook.maxEventAgeMinutes),
            }),
          ],
        });
      }
    }
  }
}
