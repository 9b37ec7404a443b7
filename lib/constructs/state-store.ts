import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { OPEN_FLAGS_INDEX } from '../../functions/enforcement/flag-store';
import { MARKED_FINDINGS_INDEX, OPEN_FINDINGS_INDEX } from '../../functions/waste/finding-store';
import type { FleetwardenConfig } from '../config';
import { DeadLetterQueue } from './fleet-queue';

export interface StateStoreProps {
  config: FleetwardenConfig;
}

/** Key schema and TTL attribute of each table; the runtime adapters import the same names. */
export const TABLES = {
  poolRisk: { partitionKey: 'pool', ttl: 'expiresAt' },
  authorizations: { partitionKey: 'instanceKey', ttl: 'expiresAt' },
  findings: { partitionKey: 'findingId', ttl: 'expiresAt' },
  ledger: { partitionKey: 'chain', sortKey: 'seq' },
  locks: { partitionKey: 'lockId', ttl: 'expiresAt' },
} as const satisfies Record<string, { partitionKey: string; sortKey?: string; ttl?: string }>;

export type TableName = keyof typeof TABLES;


/**
 * Everything Fleetwarden remembers and says: DynamoDB tables (pool risk, authorization flags,
 * findings, the ledger, locks), the customer-managed key they are encrypted with, Fleetwarden's
 * own EventBridge bus, the notification topic and the DLQ for async targets.
 *
 * TTL attributes only clean up: expiry is always decided on read from stored timestamps,
 * because DynamoDB may delete expired items up to 48 hours late.
 */
export class StateStore extends Construct {
  readonly key: kms.Key;
  readonly tables: Record<TableName, dynamodb.Table>;
  readonly bus: events.EventBus;
  readonly topic: sns.Topic;
  readonly asyncDeadLetters: DeadLetterQueue;
  readonly removalPolicy: RemovalPolicy;

  constructor(scope: Construct, id: string, props: StateStoreProps) {
    super(scope, id);
    const production = props.config.stage === 'prod';
    this.removalPolicy = production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    this.key = new kms.Key(this, 'DataKey', {
      alias: 'alias/fleetwarden/data',
      description: 'Fleetwarden state, queues, topic and archive',
      enableKeyRotation: true,
      removalPolicy: production ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    // Services that write into encrypted Fleetwarden queues and topics on our behalf.
    // Only on behalf of this account (a confused deputy could otherwise use the key through them).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': Stack.of(this).account } },
      }),
    );

    const table = (name: TableName, stream?: dynamodb.StreamViewType): dynamodb.Table => {
      const spec: { partitionKey: string; sortKey?: string; ttl?: string } = TABLES[name];
      return new dynamodb.Table(this, `${name[0]!.toUpperCase()}${name.slice(1)}Table`, {
        partitionKey: { name: spec.partitionKey, type: dynamodb.AttributeType.STRING },
        sortKey: spec.sortKey ? { name: spec.sortKey, type: dynamodb.AttributeType.NUMBER } : undefined,
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
        encryptionKey: this.key,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        timeToLiveAttribute: spec.ttl,
        stream,
        deletionProtection: production,
        removalPolicy: this.removalPolicy,
      });
    };
    const tables = {
      poolRisk: table('poolRisk'),
      authorizations: table('authorizations'),
      findings: table('findings'),
      // Old and new images: an out-of-band edit shows up in the stream with what it replaced
      // (the stream's S3 archive is not built yet).
      ledger: table('ledger', dynamodb.StreamViewType.NEW_AND_OLD_IMAGES),
      locks: table('locks'),
    };
    tables.authorizations.addGlobalSecondaryIndex({
      indexName: OPEN_FLAGS_INDEX.name,
      partitionKey: { name: OPEN_FLAGS_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: OPEN_FLAGS_INDEX.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    tables.findings.addGlobalSecondaryIndex({
      indexName: OPEN_FINDINGS_INDEX.name,
      partitionKey: { name: OPEN_FINDINGS_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.ALL,
    });
    tables.findings.addGlobalSecondaryIndex({
      indexName: MARKED_FINDINGS_INDEX.name,
      partitionKey: { name: MARKED_FINDINGS_INDEX.partitionKey, type: dynamodb.AttributeType.STRING },
      sortKey: { name: MARKED_FINDINGS_INDEX.sortKey, type: dynamodb.AttributeType.STRING },
      projectionType: dynamodb.ProjectionType.KEYS_ONLY,
    });
    this.tables = tables;

    this.bus = new events.EventBus(this, 'Bus', { eventBusName: 'fleetwarden' });

    this.topic = new sns.Topic(this, 'Notifications', {
      displayName: 'Fleetwarden notifications',
      masterKey: this.key,
      enforceSSL: true,
    });
    for (const email of props.config.notifications.emails) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(email));
    }

    this.asyncDeadLetters = new DeadLetterQueue(this, 'AsyncDeadLetters', {
      key: this.key,
      alarmTopic: this.topic,
      removalPolicy: this.removalPolicy,
    });
  }

  /**
   * Lets a principal append to the ledger: read the tip and dedupe markers, and PutItem only
   * under its chain's keys (`fleet`, `fleet#dedupe#…`). IAM cannot require the not-exists
   * condition Fleetwarden writes with; no role gets UpdateItem or DeleteItem.
   */
  grantLedgerAppend(grantee: iam.IGrantable, chain = 'fleet'): void {
    grantee.grantPrincipal.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['dynamodb:Query', 'dynamodb:GetItem'], resources: [this.tables.ledger.tableArn] }));
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:PutItem'],
        resources: [this.tables.ledger.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [chain, `${chain}#dedupe#*`] } },
      }),
    );
  }

  /** Use of the data key for a principal that reads and writes the encrypted tables, queues and topic. */
  grantDataKey(grantee: iam.IGrantable): void {
    grantee.grantPrincipal.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey', 'kms:DescribeKey'], resources: [this.key.keyArn] }),
    );
  }
}
