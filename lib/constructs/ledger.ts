import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { LedgerArchiveEnvSchema } from '../../functions/ledger/archive/env';
import { DynamoArchivePositions } from '../../functions/ledger/adapters';
import { MAX_DIGEST_SEGMENTS } from '../../functions/ledger/digest';
import { LedgerDigestEnvSchema } from '../../functions/ledger/digest/env';
import { LedgerVerifyEnvSchema } from '../../functions/ledger/verify/env';
import { DIGEST_LISTING_LIMIT } from '../../functions/ledger/listing';
import { MAX_SEGMENT_ENTRIES, SEGMENT_PREFIX } from '../../functions/ledger/segment';
import { DEFAULT_CHAIN } from '../../functions/ledger/store';
import { RETRYABLE_ERROR_NAMES } from '../../functions/shared/errors';
import type { FleetwardenConfig } from '../config';
import { acknowledge, logicalIdOf } from '../nag';
import { FleetFunction, METRICS_NAMESPACE } from './fleet-function';
import { DeadLetterQueue } from './fleet-queue';
import { fleetStateMachine } from './fleet-state-machine';
import type { StateStore } from './state-store';

export interface LedgerAuditProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/**
 * How long the archive waits to gather a segment from the ledger table's stream: the longest
 * Lambda allows. A segment then holds up to five minutes of entries (MAX_SEGMENT_ENTRIES at
 * most): about 350 at 100,000 entries a day, which keeps segments, and the digests' lists of
 * them, few (288 a day) while an entry is in the archive within minutes, long before the hourly
 * digest that vouches for it.
 */
export const ARCHIVE_BATCHING_WINDOW = Duration.minutes(5);

/**
 * Makes the ledger tamper-evident beyond DynamoDB: an Object Lock archive bucket, an asymmetric
 * KMS signing key, the LedgerArchive function that writes the ledger table's stream into the
 * bucket as segments (filling any gap from the table, hourly too), and the LedgerDigest state
 * machine that verifies new entries and stores a signed digest of the chain and of the segments
 * written since the previous digest, chaining to it (as CloudTrail log file validation does).
 */
export class LedgerAudit extends Construct {
  readonly archive: s3.Bucket;
  readonly signingKey: kms.Key;
  readonly digestFunction: FleetFunction;
  readonly archiveFunction: FleetFunction;
  readonly archiveDeadLetters: DeadLetterQueue;
  readonly verifyFunction: FleetFunction;
  readonly verifyAlarm: cloudwatch.Alarm;
  readonly stateMachine: sfn.StateMachine;

  constructor(scope: Construct, id: string, props: LedgerAuditProps) {
    super(scope, id);
    const { config, store } = props;
    const production = config.stage === 'prod';

    const accessLogs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(365) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    acknowledge(accessLogs, 'AwsSolutions-S1', 'This is the server access log bucket; logging it into itself would loop.');

    this.archive = new s3.Bucket(this, 'Archive', {
      versioned: true,
      objectLockEnabled: true,
      // Compliance mode in production: not even the account root can shorten it.
      objectLockDefaultRetention: production
        ? s3.ObjectLockRetention.compliance(Duration.days(config.ledger.archiveRetentionDays))
        : s3.ObjectLockRetention.governance(Duration.days(config.ledger.archiveRetentionDays)),
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: store.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      serverAccessLogsBucket: accessLogs,
      serverAccessLogsPrefix: 'archive/',
      // Locked objects outlive any stack: the bucket is never deleted with it.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.signingKey = new kms.Key(this, 'DigestSigningKey', {
      alias: 'alias/fleetwarden/ledger-digest',
      description: 'Signs Fleetwarden ledger digests',
      keySpec: kms.KeySpec.ECC_NIST_P256,
      keyUsage: kms.KeyUsage.SIGN_VERIFY,
      // Without the key no digest can be verified again.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const ledgerTable = store.tables.ledger;
    this.digestFunction = new FleetFunction(this, 'LedgerDigest', {
      entry: 'functions/ledger/digest/handler.ts',
      description: 'Verifies new ledger entries and signs a digest of the chain tip',
      envSchema: LedgerDigestEnvSchema,
      environment: {
        LEDGER_TABLE_NAME: ledgerTable.tableName,
        SIGNING_KEY_ID: this.signingKey.keyArn,
      },
      config,
      timeout: Duration.minutes(5),
    });
    this.digestFunction.allow(['dynamodb:Query', 'dynamodb:GetItem'], [ledgerTable.tableArn]);
    // The workflow reads the archive (SDK tasks); the function reads only the ledger table.
    this.digestFunction.allow(['kms:Decrypt', 'kms:DescribeKey'], [store.key.keyArn]);
    this.digestFunction.allow(['kms:Sign', 'kms:Verify'], [this.signingKey.keyArn]);

    this.archiveFunction = new FleetFunction(this, 'LedgerArchive', {
      entry: 'functions/ledger/archive/handler.ts',
      description: "Writes the ledger table's stream to the locked archive as segments",
      envSchema: LedgerArchiveEnvSchema,
      environment: {
        LEDGER_TABLE_NAME: ledgerTable.tableName,
        LOCKS_TABLE_NAME: store.tables.locks.tableName,
        ARCHIVE_BUCKET_NAME: this.archive.bucketName,
      },
      config,
      timeout: Duration.minutes(5),
      memorySize: 1024,
    });
    // Gaps are read from the table; the position item is the only thing it writes there.
    this.archiveFunction.allow(['dynamodb:Query'], [ledgerTable.tableArn]);
    this.archiveFunction.role.addToPolicy(
      new iam.PolicyStatement({
        actions: ['dynamodb:GetItem', 'dynamodb:PutItem'],
        resources: [store.tables.locks.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [DynamoArchivePositions.idOf('*')] } },
      }),
    );
    // Writes segments only (PutObject refuses an existing key); lists them to finish a claim a writer left.
    this.archiveFunction.allow(['s3:PutObject'], [this.archive.arnForObjects(`${SEGMENT_PREFIX}*`)]);
    this.archiveFunction.role.addToPolicy(
      new iam.PolicyStatement({ actions: ['s3:ListBucket'], resources: [this.archive.bucketArn], conditions: { StringLike: { 's3:prefix': [`${SEGMENT_PREFIX}*`] } } }),
    );
    this.archiveFunction.allow(['kms:Decrypt', 'kms:GenerateDataKey'], [store.key.keyArn]);
    this.archiveDeadLetters = new DeadLetterQueue(this, 'ArchiveDeadLetters', {
      key: store.key,
      alarmTopic: store.topic,
      removalPolicy: store.removalPolicy,
      whoseDeadLetters: "the ledger archive's stream batches",
      whatToDo:
        "A batch of the ledger table's stream failed every retry: the message names its shard and sequence numbers, and requestContext.condition and responsePayload (the function's error: Terminal.LedgerTampered means the table failed verification where the archive goes on). Fix the cause: nothing is lost, the next batch or the hourly catch-up reads the gap from the table. Then run `fleetwarden ledger verify`.",
    });
    this.archiveFunction.fn.addEventSource(
      new DynamoEventSource(ledgerTable, {
        startingPosition: lambda.StartingPosition.TRIM_HORIZON,
        batchSize: MAX_SEGMENT_ENTRIES,
        maxBatchingWindow: ARCHIVE_BATCHING_WINDOW,
        retryAttempts: 10,
        onFailure: this.failedBatchesTo(this.archiveDeadLetters.queue),
      }),
    );
    acknowledge(
      this.archiveFunction,
      'AwsSolutions-IAM5',
      'Segments are written under one prefix, each to a new key (If-None-Match).',
      [`Resource::<${logicalIdOf(this.archive)}.Arn>/${SEGMENT_PREFIX}*`],
    );
    new events.Rule(this, 'ArchiveCatchUpSchedule', {
      description: 'Archives whatever the ledger stream did not deliver (stopped archiver, records older than 24 hours)',
      schedule: events.Schedule.rate(Duration.hours(1)),
      targets: [
        new targets.LambdaFunction(this.archiveFunction.fn, {
          event: events.RuleTargetInput.fromObject({ chain: DEFAULT_CHAIN }),
          deadLetterQueue: store.asyncDeadLetters.queue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });

    ({ fn: this.verifyFunction, alarm: this.verifyAlarm } = this.dailyVerification(config, store));

    this.stateMachine = this.digestStateMachine(store);

    new events.Rule(this, 'DigestSchedule', {
      description: 'Signs a ledger digest on schedule',
      schedule: events.Schedule.expression(config.ledger.digestSchedule),
      targets: [
        new targets.SfnStateMachine(this.stateMachine, {
          input: events.RuleTargetInput.fromObject({ chain: DEFAULT_CHAIN }),
          deadLetterQueue: store.asyncDeadLetters.queue,
          retryAttempts: 3,
          maxEventAge: Duration.hours(1),
        }),
      ],
    });
  }

  /**
   * Every day at 01:00 UTC, LedgerVerify checks the entries appended the day before: in the table,
   * against the digests written for them and in the archive's segments. A failed check (or a run
   * that fails) raises an alarm on the notification topic.
   */
  private dailyVerification(config: FleetwardenConfig, store: StateStore): { fn: FleetFunction; alarm: cloudwatch.Alarm } {
    const ledgerTable = store.tables.ledger;
    const fn = new FleetFunction(this, 'LedgerVerify', {
      entry: 'functions/ledger/verify/handler.ts',
      description: "Verifies yesterday's ledger entries in the table, the digests and the archive",
      envSchema: LedgerVerifyEnvSchema,
      environment: { LEDGER_TABLE_NAME: ledgerTable.tableName, ARCHIVE_BUCKET_NAME: this.archive.bucketName, SIGNING_KEY_ID: this.signingKey.keyArn },
      config,
      timeout: Duration.minutes(10),
      memorySize: 1024,
    });
    fn.allow(['dynamodb:Query'], [ledgerTable.tableArn]);
    fn.allow(['s3:GetObject'], [this.archive.arnForObjects(`${SEGMENT_PREFIX}*`), this.archive.arnForObjects('digests/*')]);
    fn.allow(['s3:ListBucket'], [this.archive.bucketArn]);
    fn.allow(['kms:GetPublicKey'], [this.signingKey.keyArn]);
    fn.allow(['kms:Decrypt'], [store.key.keyArn]);
    acknowledge(fn, 'AwsSolutions-IAM5', 'Reads segments and digests under their two prefixes only.', [
      `Resource::<${logicalIdOf(this.archive)}.Arn>/${SEGMENT_PREFIX}*`,
      `Resource::<${logicalIdOf(this.archive)}.Arn>/digests/*`,
    ]);
    new events.Rule(this, 'VerifySchedule', {
      description: "Verifies yesterday's ledger entries every day",
      schedule: events.Schedule.cron({ minute: '0', hour: '1' }),
      targets: [
        new targets.LambdaFunction(fn.fn, {
          event: events.RuleTargetInput.fromObject({ chain: DEFAULT_CHAIN }),
          deadLetterQueue: store.asyncDeadLetters.queue,
          retryAttempts: 2,
          maxEventAge: Duration.hours(6),
        }),
      ],
    });
    const failed = new cloudwatch.Metric({ namespace: METRICS_NAMESPACE, metricName: 'LedgerVerificationFailed', dimensionsMap: { service: fn.serviceName }, statistic: 'Maximum', period: Duration.hours(1) });
    const alarm = new cloudwatch.Alarm(this, 'VerifyFailedAlarm', {
      alarmName: `${Stack.of(this).stackName}: the daily ledger verification failed`,
      alarmDescription:
        "LedgerVerify found yesterday's ledger entries, their digests or their archived segments not intact, or could not finish. Its log line 'ledger failed verification' names the first broken point; run `fleetwarden ledger verify --stack <stack>` for the whole ledger and archive, and treat a modified, deleted or inserted entry as an incident.",
      metric: new cloudwatch.MathExpression({ expression: 'MAX([failed, errors])', usingMetrics: { failed, errors: fn.fn.metricErrors({ period: Duration.hours(1), statistic: 'Sum' }) }, period: Duration.hours(1) }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cwActions.SnsAction(store.topic));
    return { fn, alarm };
  }

  /**
   * The stream mapping's on-failure destination, granted exactly SendMessage (CDK's SqsDlq grants
   * the queue's KMS actions with wildcards; the role already holds the data key's two it needs).
   */
  private failedBatchesTo(queue: sqs.IQueue): lambda.IEventSourceDlq {
    return {
      bind: (_mapping, handler) => {
        handler.addToRolePolicy(new iam.PolicyStatement({ actions: ['sqs:SendMessage'], resources: [queue.queueArn] }));
        return { destination: queue.queueArn };
      },
    };
  }

  private digestStateMachine(store: StateStore): sfn.StateMachine {
    const digestObjects = this.archive.arnForObjects('digests/*');
    const s3Retry = { errors: ['S3.S3Exception', 'S3.SlowDownException', 'States.TaskFailed'], maxAttempts: 4, interval: Duration.seconds(2), backoffRate: 2 };
    const writeDigest = (name: string, keyPath: string, metadata?: Record<string, string>) =>
      new tasks.CallAwsService(this, name, {
        service: 's3',
        action: 'putObject',
        parameters: {
          Bucket: this.archive.bucketName,
          Key: sfn.JsonPath.stringAt(keyPath),
          Body: sfn.JsonPath.stringAt('$.digest.body'),
          // Object Lock buckets refuse writes without an integrity header.
          ContentMD5: sfn.JsonPath.stringAt('$.digest.contentMd5'),
          ContentType: 'application/json',
          ...(metadata ? { Metadata: metadata } : {}),
        },
        iamResources: [digestObjects],
        additionalIamStatements: [new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [store.key.keyArn] })],
        resultPath: sfn.JsonPath.DISCARD,
      }).addRetry(s3Retry);

    // The archive is read here rather than in the function, so that the function's bundle carries
    // no S3 client. latest.json's `listafter` metadata names the key a listing starts after to
    // see the digest it points at and anything stored after it; the function decides from what
    // was listed (functions/ledger/listing.ts).
    const decrypt = [new iam.PolicyStatement({ actions: ['kms:Decrypt'], resources: [store.key.keyArn] })];
    const readPointer = new tasks.CallAwsService(this, 'Read where latest.json says the digests end', {
      service: 's3',
      action: 'getObject',
      parameters: { Bucket: this.archive.bucketName, Key: sfn.JsonPath.format('digests/{}/latest.json', sfn.JsonPath.stringAt('$.chain')) },
      iamResources: [digestObjects],
      additionalIamStatements: decrypt,
      resultSelector: { 'metadata.$': '$.Metadata' },
      resultPath: '$.pointer',
      // Not States.TaskFailed: a missing latest.json (the chain's first digest) is caught below.
    }).addRetry({ ...s3Retry, errors: ['S3.S3Exception', 'S3.SlowDownException', 'S3.InternalErrorException'] });
    const fromPrefix = new sfn.Pass(this, 'List from the first digest', {
      parameters: { key: sfn.JsonPath.format('digests/{}/', sfn.JsonPath.stringAt('$.chain')) },
      resultPath: '$.listAfter',
    });
    readPointer.addCatch(fromPrefix, { errors: ['S3.NoSuchKeyException'], resultPath: sfn.JsonPath.DISCARD });
    const fromPointer = new sfn.Pass(this, 'List from the digest before the one latest.json names', {
      parameters: { key: sfn.JsonPath.stringAt('$.pointer.metadata.listafter') },
      resultPath: '$.listAfter',
    });
    const list = new tasks.CallAwsService(this, 'List the newest digests', {
      service: 's3',
      action: 'listObjectsV2',
      parameters: {
        Bucket: this.archive.bucketName,
        Prefix: sfn.JsonPath.format('digests/{}/', sfn.JsonPath.stringAt('$.chain')),
        StartAfter: sfn.JsonPath.stringAt('$.listAfter.key'),
        MaxKeys: DIGEST_LISTING_LIMIT,
      },
      iamResources: [this.archive.bucketArn],
      iamAction: 's3:ListBucket',
      resultPath: '$.listing',
    }).addRetry(s3Retry);
    const readEach = new sfn.Map(this, 'Read each listed digest', {
      itemsPath: '$.listing.Contents',
      itemSelector: { 'key.$': '$$.Map.Item.Value.Key' },
      maxConcurrency: 10,
      resultPath: '$.listed.objects',
    });
    const nothingStored = new sfn.Pass(this, 'Nothing is stored yet', { result: sfn.Result.fromArray([]), resultPath: '$.listed.objects' });
    readEach.itemProcessor(
      new tasks.CallAwsService(this, 'Read a listed digest', {
        service: 's3',
        action: 'getObject',
        parameters: { Bucket: this.archive.bucketName, 'Key.$': '$.key' },
        iamResources: [digestObjects],
        additionalIamStatements: decrypt,
        resultSelector: { 'body.$': '$.Body' },
        resultPath: '$.read',
      }).addRetry(s3Retry),
    );

    // The segments no digest lists yet: latest.json's `segmentsafter` names the last one listed.
    const segmentsFromStart = new sfn.Pass(this, 'List segments from the first', {
      parameters: { key: sfn.JsonPath.format('{}{}/', SEGMENT_PREFIX, sfn.JsonPath.stringAt('$.chain')) },
      resultPath: '$.segmentsAfter',
    });
    const segmentsFromPointer = new sfn.Pass(this, 'List segments after the last one a digest lists', {
      parameters: { key: sfn.JsonPath.stringAt('$.pointer.metadata.segmentsafter') },
      resultPath: '$.segmentsAfter',
    });
    const listSegments = new tasks.CallAwsService(this, 'List the segments no digest lists yet', {
      service: 's3',
      action: 'listObjectsV2',
      parameters: {
        Bucket: this.archive.bucketName,
        Prefix: sfn.JsonPath.format('{}{}/', SEGMENT_PREFIX, sfn.JsonPath.stringAt('$.chain')),
        StartAfter: sfn.JsonPath.stringAt('$.segmentsAfter.key'),
        MaxKeys: MAX_DIGEST_SEGMENTS,
      },
      iamResources: [this.archive.bucketArn],
      iamAction: 's3:ListBucket',
      resultPath: '$.segmentListing',
    }).addRetry(s3Retry);

    const verifyAndSign = new tasks.LambdaInvoke(this, 'Verify the ledger and sign a digest', {
      lambdaFunction: this.digestFunction.fn,
      payload: sfn.TaskInput.fromObject({
        chain: sfn.JsonPath.stringAt('$.chain'),
        listed: { objects: sfn.JsonPath.listAt('$.listed.objects'), truncated: sfn.JsonPath.objectAt('$.listing.IsTruncated') },
        segments: sfn.JsonPath.objectAt('$.segmentListing'),
      }),
      resultSelector: { 'plan.$': '$.Payload' },
      resultPath: '$.result',
      retryOnServiceExceptions: true,
    });
    verifyAndSign.addRetry({ errors: [...RETRYABLE_ERROR_NAMES], maxAttempts: 4, interval: Duration.seconds(2), backoffRate: 2 });

    const alert = new tasks.SnsPublish(this, 'Alert operators that the ledger failed verification', {
      topic: store.topic,
      subject: 'Fleetwarden ledger failed verification',
      message: sfn.TaskInput.fromJsonPathAt('$.error.Cause'),
      resultPath: sfn.JsonPath.DISCARD,
    });
    verifyAndSign.addCatch(alert, { errors: ['Terminal.LedgerTampered'], resultPath: '$.error' });
    alert.next(new sfn.Fail(this, 'The ledger failed verification', { error: 'Terminal.LedgerTampered', cause: 'See the SNS alert; run `fleetwarden ledger verify`' }));

    const unwrap = new sfn.Pass(this, 'Take the digest plan', { parameters: { 'chain.$': '$.chain', 'digest.$': '$.result.plan' } });

    const announce = new tasks.EventBridgePutEvents(this, 'Announce the digest on the Fleetwarden bus', {
      entries: [
        {
          eventBus: store.bus,
          source: 'fleetwarden.ledger',
          detailType: 'LedgerDigestWritten',
          detail: sfn.TaskInput.fromObject({
            chain: sfn.JsonPath.stringAt('$.digest.chain'),
            fromSeq: sfn.JsonPath.numberAt('$.digest.fromSeq'),
            toSeq: sfn.JsonPath.numberAt('$.digest.toSeq'),
            tipHash: sfn.JsonPath.stringAt('$.digest.tipHash'),
            key: sfn.JsonPath.stringAt('$.digest.key'),
          }),
        },
      ],
      resultPath: sfn.JsonPath.DISCARD,
    });

    const definition = readPointer
      .next(
        new sfn.Choice(this, 'Does latest.json say where to list from?')
          .when(sfn.Condition.isPresent('$.pointer.metadata.listafter'), fromPointer)
          .otherwise(fromPrefix)
          .afterwards(),
      )
      .next(list)
      .next(
        new sfn.Choice(this, 'Is any digest stored?')
          .when(sfn.Condition.isPresent('$.listing.Contents'), readEach)
          .otherwise(nothingStored)
          .afterwards(),
      )
      .next(
        new sfn.Choice(this, 'Does latest.json say which segments a digest lists?')
          .when(sfn.Condition.isPresent('$.pointer.metadata.segmentsafter'), segmentsFromPointer)
          .otherwise(segmentsFromStart)
          .afterwards(),
      )
      .next(listSegments)
      .next(verifyAndSign)
      .next(unwrap)
      .next(
        new sfn.Choice(this, 'Is there anything new since the last digest?')
          .when(
            sfn.Condition.booleanEquals('$.digest.hasNew', true),
            writeDigest('Store the signed digest in the locked archive', '$.digest.key')
              .next(
                writeDigest('Point latest.json at the new digest', '$.digest.latestKey', {
                  listafter: sfn.JsonPath.stringAt('$.digest.listAfter'),
                  segmentsafter: sfn.JsonPath.stringAt('$.digest.segmentsAfter'),
                }),
              )
              .next(announce)
              .next(new sfn.Succeed(this, 'Digest stored')),
          )
          .otherwise(new sfn.Succeed(this, 'Nothing new to digest')),
      );

    const stateMachine = fleetStateMachine(this, 'DigestStateMachine', {
      stateMachineName: 'fleetwarden-ledger-digest',
      definition,
      timeout: Duration.minutes(15),
      store,
    });
    acknowledge(
      stateMachine,
      'AwsSolutions-IAM5',
      'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to one function (":*" covers its versions); writes to the digests/ prefix.',
      ['Resource::*', `Resource::<${logicalIdOf(this.digestFunction.fn)}.Arn>:*`, `Resource::<${logicalIdOf(this.archive)}.Arn>/digests/*`],
    );
    return stateMachine;
  }
}
