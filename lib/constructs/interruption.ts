import { Duration, Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { HANDLED_EVENTS } from '../../functions/interruption/events';
import { InterruptionIngestEnvSchema } from '../../functions/interruption/ingest/env';
import { QuarantineCleanupEnvSchema } from '../../functions/interruption/cleanup/env';
import type { FleetwardenConfig } from '../config';
import { acknowledge } from '../nag';
import { FleetFunction } from './fleet-function';
import { FleetQueue, defaultBusRules } from './fleet-queue';
import { MEMBER_ROLE_TRUSTEES, memberEventsPolicy } from './member-access';
import { accountEnvironmentsJson, riskPolicyJson } from './runtime-config';
import type { StateStore } from './state-store';

export interface InterruptionIntelligenceProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/**
 * Interruption intelligence: EventBridge rules (default bus, which member accounts may also send to) for the
 * events the ingest handler understands -> one SQS queue with a DLQ -> the ingest function with
 * partial batch failures; and the scheduled cleanup that records ended quarantines.
 */
export class InterruptionIntelligence extends Construct {
  readonly queue: FleetQueue;
  readonly ingest: FleetFunction;
  readonly cleanup: FleetFunction;
  readonly rules: events.Rule[];

  constructor(scope: Construct, id: string, props: InterruptionIntelligenceProps) {
    super(scope, id);
    const { config, store } = props;
    const stack = Stack.of(this);
    const ingestTimeout = Duration.seconds(60);

    this.queue = new FleetQueue(this, 'Events', {
      key: store.key,
      alarmTopic: store.topic,
      visibilityTimeout: Duration.seconds(ingestTimeout.toSeconds() * 6),
      removalPolicy: store.removalPolicy,
    });

    this.rules = defaultBusRules(this, HANDLED_EVENTS, this.queue, store.asyncDeadLetters.queue, 'interruption');
    // Member accounts forward the events Fleetwarden handles to this account's default bus.
    memberEventsPolicy(this, config);

    const memberRoles = config.accounts.map((a) => `arn:${stack.partition}:iam::${a.id}:role/${config.memberRoleName}`);
    const { poolRisk, ledger } = store.tables;

    this.ingest = new FleetFunction(this, 'InterruptionIngest', {
      entry: 'functions/interruption/ingest/handler.ts',
      description: 'Ingests interruption events: pool risk, quarantine, ledger, domain events',
      envSchema: InterruptionIngestEnvSchema,
      environment: {
        POOL_RISK_TABLE_NAME: poolRisk.tableName,
        LEDGER_TABLE_NAME: ledger.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
        DEAD_LETTER_QUEUE_URL: this.queue.deadLetterQueue.queueUrl,
        HOME_ACCOUNT_ID: stack.account,
        MEMBER_ROLE_NAME: config.memberRoleName,
        ACCOUNT_ENVIRONMENTS: accountEnvironmentsJson(config),
        ORGANIZATIONS_ENVIRONMENT_TAG: config.organizations.environmentTag ?? '',
        RISK_POLICY: riskPolicyJson(config),
      },
      config,
      timeout: ingestTimeout,
      // Member roles trust this role by name.
      roleName: MEMBER_ROLE_TRUSTEES.interruptionIngest,
    });
    this.ingest.fn.addEventSource(new SqsEventSource(this.queue.queue, { batchSize: 10, maxBatchingWindow: Duration.seconds(1), reportBatchItemFailures: true }));
    // Single-item conditional puts only: the pool record (carrying its pending ledger entry), the
    // ledger entry, dedupe markers. No idempotency table: the use case is idempotent by itself.
    this.ingest.allow(['dynamodb:GetItem', 'dynamodb:PutItem'], [poolRisk.tableArn]);
    store.grantLedgerAppend(this.ingest.role);
    store.grantDataKey(this.ingest.role);
    this.ingest.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    this.ingest.allow(['sqs:SendMessage'], [this.queue.deadLetterQueue.queueArn]);
    this.ingest.allow(['sts:AssumeRole'], memberRoles);
    this.ingest.allow(['ec2:DescribeInstances', 'ec2:DescribeAvailabilityZones'], ['*']);
    if (config.organizations.environmentTag) {
      this.ingest.allow(['organizations:ListTagsForResource'], [`arn:${stack.partition}:organizations::*:account/o-*/*`]);
    }
    acknowledge(
      this.ingest,
      'AwsSolutions-IAM5',
      'ec2:DescribeInstances/DescribeAvailabilityZones support no resource-level permissions; Organizations account ARNs embed the organization id, unknown at synth. Actions stay explicit.',
      ['Resource::*', `Resource::arn:<AWS::Partition>:organizations::*:account/o-*/*`],
    );

    this.cleanup = new FleetFunction(this, 'QuarantineCleanup', {
      entry: 'functions/interruption/cleanup/handler.ts',
      description: 'Records quarantines that have ended and reports how many are active',
      envSchema: QuarantineCleanupEnvSchema,
      environment: { POOL_RISK_TABLE_NAME: poolRisk.tableName, LEDGER_TABLE_NAME: ledger.tableName, EVENT_BUS_NAME: store.bus.eventBusName },
      config,
      timeout: Duration.minutes(5),
    });
    this.cleanup.allow(['dynamodb:Scan', 'dynamodb:GetItem', 'dynamodb:PutItem'], [poolRisk.tableArn]);
    store.grantLedgerAppend(this.cleanup.role);
    store.grantDataKey(this.cleanup.role);
    this.cleanup.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    new events.Rule(this, 'CleanupSchedule', {
      description: 'Lifts ended quarantines (recorded in the ledger) every 15 minutes',
      schedule: events.Schedule.rate(Duration.minutes(15)),
      targets: [new targets.LambdaFunction(this.cleanup.fn, { deadLetterQueue: store.asyncDeadLetters.queue, retryAttempts: 2 })],
    });
  }
}
