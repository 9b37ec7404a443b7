import type { RemovalPolicy } from 'aws-cdk-lib';
import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type * as kms from 'aws-cdk-lib/aws-kms';
import type * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import type { HandledEvent } from '../../functions/shared/aws-events';
import { acknowledge } from '../nag';

export interface FleetQueueProps {
  key: kms.IKey;
  alarmTopic: sns.ITopic;
  /** Must be at least six times the consuming function's timeout (AWS guidance for SQS sources). */
  visibilityTimeout?: Duration;
  /** Deliveries before a message is parked in the DLQ. */
  maxReceiveCount?: number;
  removalPolicy: RemovalPolicy;
}

/**
 * The DLQ convention for every queue: encrypted with the data key, TLS only, a dead-letter
 * queue that keeps messages 14 days, and an alarm to the notification topic as soon as one
 * message lands there (a DLQ nobody watches loses events slowly).
 */
export class FleetQueue extends Construct {
  readonly queue: sqs.Queue;
  readonly deadLetterQueue: sqs.Queue;

  constructor(scope: Construct, id: string, props: FleetQueueProps) {
    super(scope, id);
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    });
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      visibilityTimeout: props.visibilityTimeout ?? Duration.minutes(3),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: props.maxReceiveCount ?? 5 },
      removalPolicy: props.removalPolicy,
    });
    deadLetterAlarm(
      this,
      this.deadLetterQueue,
      props.alarmTopic,
      "Read the DLQ's messages: one its consumer refused carries its reason and error name as message attributes (fix the cause or the event); one without them failed maxReceiveCount times (read the consumer's logs for its message id). Then redrive them to the source queue, or delete those that must not run.",
    );
  }
}

/** A standalone DLQ for async targets (EventBridge rule targets, async Lambda invokes). */
export class DeadLetterQueue extends Construct {
  readonly queue: sqs.Queue;

  constructor(scope: Construct, id: string, props: Omit<FleetQueueProps, 'visibilityTimeout' | 'maxReceiveCount'> & { whatToDo?: string; whoseDeadLetters?: string }) {
    super(scope, id);
    this.queue = new sqs.Queue(this, 'Queue', {
      encryption: sqs.QueueEncryption.KMS,
      encryptionMasterKey: props.key,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
      removalPolicy: props.removalPolicy,
    });
    deadLetterAlarm(
      this,
      this.queue,
      props.alarmTopic,
      props.whatToDo ??
        "Read the DLQ's messages: an event EventBridge could not deliver carries ERROR_CODE, ERROR_MESSAGE, RULE_ARN and TARGET_ARN attributes; a failed asynchronous invocation (the drift cycle) is a record whose requestContext.condition and responsePayload say why. Fix the cause; a scheduled run needs no redrive (the next one runs anyway), an event does.",
    );
    acknowledge(this.queue, 'AwsSolutions-SQS3', `This queue is itself the dead-letter queue of ${props.whoseDeadLetters ?? 'EventBridge targets'}.`);
  }
}

/** Alarms as soon as one message waits in `queue`; named after the queue's place in the stack. */
function deadLetterAlarm(scope: Construct, queue: sqs.Queue, topic: sns.ITopic, whatToDo: string): void {
  const stack = Stack.of(scope);
  const where = scope.node.path.slice(stack.node.path.length + 1);
  const alarm = new cloudwatch.Alarm(scope, 'DeadLettersAlarm', {
    alarmName: `${stack.stackName}: a message is waiting in the dead-letter queue ${where}`,
    alarmDescription: whatToDo,
    metric: queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
    threshold: 1,
    evaluationPeriods: 1,
    comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  alarm.addAlarmAction(new actions.SnsAction(topic));
}

/**
 * An EventBridge rule target for a KMS-encrypted queue, without the unconditioned key-policy
 * statement CDK's `SqsQueue` target adds: the queue accepts the rule by its ARN, and the data
 * key already lets EventBridge encrypt on behalf of this account only (see StateStore).
 */
export class EncryptedQueueTarget implements events.IRuleTarget {
  constructor(
    private readonly queue: sqs.IQueue,
    private readonly options: { deadLetterQueue: sqs.IQueue; retryAttempts: number; maxEventAge: Duration },
  ) {}

  bind(rule: events.IRule, _id?: string): events.RuleTargetConfig {
    this.queue.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'],
        resources: [this.queue.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
      }),
    );
    this.options.deadLetterQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.options.deadLetterQueue.queueArn],
        conditions: { ArnEquals: { 'aws:SourceArn': rule.ruleArn } },
      }),
    );
    return {
      arn: this.queue.queueArn,
      targetResource: this.queue,
      deadLetterConfig: { arn: this.options.deadLetterQueue.queueArn },
      retryPolicy: { maximumRetryAttempts: this.options.retryAttempts, maximumEventAgeInSeconds: this.options.maxEventAge.toSeconds() },
    };
  }
}

/**
 * One rule per handled event on this account's default bus (where member accounts forward),
 * each pattern taken from the handler's own registry, into `queue`. EventBridge may deliver to
 * the queue only for rules of this account (CDK cannot add aws:SourceArn for encrypted queues),
 * so a rule in another account cannot forge these events.
 */
export function defaultBusRules(scope: Construct, handled: readonly HandledEvent[], queue: FleetQueue, deadLetterQueue: sqs.IQueue, what: string): events.Rule[] {
  queue.queue.addToResourcePolicy(
    new iam.PolicyStatement({
      effect: iam.Effect.DENY,
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [queue.queue.queueArn],
      conditions: { StringNotEquals: { 'aws:SourceAccount': Stack.of(scope).account } },
    }),
  );
  const defaultBus = events.EventBus.fromEventBusName(scope, 'DefaultBus', 'default');
  return handled.map(
    (event) =>
      new events.Rule(scope, `${event.detailType.replace(/[^A-Za-z0-9]/g, '')}Rule`, {
        description: `${event.detailType} (${event.source}) -> Fleetwarden ${what} queue`,
        eventBus: defaultBus,
        eventPattern: { source: event.pattern.source as string[], detailType: event.pattern['detail-type'] as string[], detail: event.pattern.detail as Record<string, unknown> },
        targets: [new EncryptedQueueTarget(queue.queue, { deadLetterQueue, retryAttempts: 10, maxEventAge: Duration.hours(1) })],
      }),
  );
}
