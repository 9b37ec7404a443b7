import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { LedgerDigestEnvSchema } from '../../functions/ledger/digest/env';
import { DEFAULT_CHAIN } from '../../functions/ledger/store';
import { RETRYABLE_ERROR_NAMES } from '../../functions/shared/errors';
import type { FleetwardenConfig } from '../config';
import { acknowledge, logicalIdOf } from '../nag';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine } from './fleet-state-machine';
import type { StateStore } from './state-store';

export interface LedgerAuditProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/**
 * Makes the ledger tamper-evident beyond DynamoDB: an Object Lock archive bucket, an asymmetric
 * KMS signing key, and the LedgerDigest state machine that verifies new entries and stores a
 * signed digest chaining to the previous one (as CloudTrail log file validation does).
 */
export class LedgerAudit extends Construct {
  readonly archive: s3.Bucket;
  readonly signingKey: kms.Key;
  readonly digestFunction: FleetFunction;
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
        ARCHIVE_BUCKET_NAME: this.archive.bucketName,
        SIGNING_KEY_ID: this.signingKey.keyArn,
      },
      config,
      timeout: Duration.minutes(5),
    });
    this.digestFunction.allow(['dynamodb:Query', 'dynamodb:GetItem'], [ledgerTable.tableArn]);
    this.digestFunction.allow(['s3:GetObject'], [this.archive.arnForObjects('digests/*')]);
    acknowledge(this.digestFunction, 'AwsSolutions-IAM5', 'Reads are limited to the digests/ prefix of the archive.', [
      `Resource::<${logicalIdOf(this.archive)}.Arn>/digests/*`,
    ]);
    this.digestFunction.allow(['s3:ListBucket', 's3:ListBucketVersions'], [this.archive.bucketArn]);
    this.digestFunction.allow(['kms:Decrypt', 'kms:DescribeKey'], [store.key.keyArn]);
    this.digestFunction.allow(['kms:Sign', 'kms:Verify'], [this.signingKey.keyArn]);

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

  private digestStateMachine(store: StateStore): sfn.StateMachine {
    const digestObjects = this.archive.arnForObjects('digests/*');
    const writeDigest = (name: string, keyPath: string) =>
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
        },
        iamResources: [digestObjects],
        additionalIamStatements: [new iam.PolicyStatement({ actions: ['kms:GenerateDataKey'], resources: [store.key.keyArn] })],
        resultPath: sfn.JsonPath.DISCARD,
      }).addRetry({ errors: ['S3.S3Exception', 'S3.SlowDownException', 'States.TaskFailed'], maxAttempts: 4, interval: Duration.seconds(2), backoffRate: 2 });

    const verifyAndSign = new tasks.LambdaInvoke(this, 'Verify the ledger and sign a digest', {
      lambdaFunction: this.digestFunction.fn,
      payload: sfn.TaskInput.fromObject({ chain: sfn.JsonPath.stringAt('$.chain') }),
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

    const definition = verifyAndSign.next(unwrap).next(
      new sfn.Choice(this, 'Is there anything new since the last digest?')
        .when(
          sfn.Condition.booleanEquals('$.digest.hasNew', true),
          writeDigest('Store the signed digest in the locked archive', '$.digest.key')
            .next(writeDigest('Point latest.json at the new digest', '$.digest.latestKey'))
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
