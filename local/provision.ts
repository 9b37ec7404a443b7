import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { CreateTableCommand, DynamoDBClient, UpdateContinuousBackupsCommand, UpdateTimeToLiveCommand } from '@aws-sdk/client-dynamodb';
import { CreateEventBusCommand, EventBridgeClient, PutRuleCommand, PutTargetsCommand } from '@aws-sdk/client-eventbridge';
import { CreateAliasCommand, CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { CreateBucketCommand, PutBucketEncryptionCommand, PutObjectCommand, PutBucketVersioningCommand, PutObjectLockConfigurationCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient } from '@aws-sdk/client-sns';
import { CreateStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { CreateQueueCommand, SQSClient } from '@aws-sdk/client-sqs';
import { awsClient } from '../functions/shared/aws';
import { ENTRY_METADATA_KEY } from '../lib/constructs/fleet-function';
import { FILE_ASSETS_METADATA_KEY } from '../lib/constructs/workloads';
import { type CfnResource, type CfnTemplate, type Identity, type Pseudo, Resolver } from './template';

/**
 * Provisions the synthesized stack's stateful resources into moto, straight from the template:
 * KMS keys and aliases, DynamoDB tables (streams, TTL, PITR), SQS queues (redrive), SNS topics,
 * S3 buckets (versioning, Object Lock, encryption), EventBridge buses and rules. There is no
 * second, hand-written list: add a table to the stack and it appears here.
 *
 * Lambda functions are not created in moto (it cannot run them). State machines are created in
 * moto (so StartExecution from a trigger or the CLI is a real call) and also returned resolved —
 * entry module, environment, definition — for the local runners, which execute them.
 */
export interface LocalFunction {
  logicalId: string;
  name: string;
  arn: string;
  /** TypeScript handler module, relative to the project root. */
  entry: string;
  environment: Record<string, string>;
  timeoutSeconds: number;
}

export interface LocalStateMachine {
  logicalId: string;
  arn: string;
  definition: Record<string, unknown>;
}

/** A rule target moto cannot deliver to (Lambda, Step Functions, SNS): routed by the local runner. */
export interface LocalRoute {
  rule: string;
  busName: string;
  targetArn: string;
  input?: string;
  schedule?: string;
  eventPattern?: unknown;
  /** As the template sets them: what local/api-destinations.ts needs to deliver like EventBridge. */
  inputTransformer?: { InputPathsMap?: Record<string, string>; InputTemplate: string };
  retryPolicy?: { MaximumRetryAttempts?: number; MaximumEventAgeInSeconds?: number };
  deadLetterArn?: string;
}

export interface LocalStack {
  prefix: string;
  pseudo: Pseudo;
  template: CfnTemplate;
  identities: Map<string, Identity>;
  functions: Map<string, LocalFunction>;
  stateMachines: Map<string, LocalStateMachine>;
  routes: LocalRoute[];
  /** Physical name/URL/ARN of a resource by its logical id prefix (e.g. `StateStoreLedgerTable`). */
  ref(logicalIdPrefix: string): string;
  attr(logicalIdPrefix: string, attribute: string): string;
  created: { type: string; logicalId: string; physicalId: string }[];
}

export interface ProvisionOptions {
  /** Prefix of every physical name, so that tests sharing one moto never collide. */
  prefix?: string;
  onResource?: (resource: { type: string; logicalId: string; physicalId: string }) => void;
}

const ACCOUNT_ID = '123456789012';

export async function provision(template: CfnTemplate, options: ProvisionOptions = {}): Promise<LocalStack> {
  const prefix = options.prefix ?? `fw${randomBytes(3).toString('hex')}`;
  const pseudo: Pseudo = { region: process.env.AWS_REGION ?? 'us-east-1', accountId: ACCOUNT_ID };
  const identities = new Map<string, Identity>();
  const resolver = new Resolver(identities, pseudo);
  const created: LocalStack['created'] = [];
  const record = (type: string, logicalId: string, physicalId: string) => {
    const entry = { type, logicalId, physicalId };
    created.push(entry);
    options.onResource?.(entry);
  };
  const resources = Object.entries(template.Resources);
  const ofType = (type: string) => resources.filter(([, r]) => r.Type === type);
  const props = (resource: CfnResource) => (resolver.resolve(resource.Properties ?? {}) ?? {}) as Record<string, any>;

  // KMS keys first: moto chooses their ids, and everything encrypted refers to them.
  const kms = awsClient(KMSClient);
  for (const [logicalId, resource] of ofType('AWS::KMS::Key')) {
    const p = resource.Properties ?? {};
    const out = await kms.send(
      new CreateKeyCommand({ Description: `${prefix} ${logicalId}`, KeySpec: p.KeySpec as never, KeyUsage: p.KeyUsage as never }),
    );
    identities.set(logicalId, { ref: out.KeyMetadata!.KeyId!, attrs: { Arn: out.KeyMetadata!.Arn!, KeyId: out.KeyMetadata!.KeyId! } });
    record(resource.Type, logicalId, out.KeyMetadata!.Arn!);
  }

  // Every other identity is a name we choose, so all of them are known before anything refers to them.
  for (const [logicalId, resource] of resources) {
    if (!identities.has(logicalId)) identities.set(logicalId, plannedIdentity(prefix, logicalId, resource, pseudo));
  }

  for (const [logicalId, resource] of ofType('AWS::KMS::Alias')) {
    const p = props(resource);
    const name = `alias/${prefix}/${String(p.AliasName).replace(/^alias\//, '')}`;
    await kms.send(new CreateAliasCommand({ AliasName: name, TargetKeyId: p.TargetKeyId }));
    record(resource.Type, logicalId, name);
  }

  const dynamodb = awsClient(DynamoDBClient);
  for (const [logicalId, resource] of ofType('AWS::DynamoDB::Table')) {
    const p = props(resource);
    const TableName = identities.get(logicalId)!.ref;
    const out = await dynamodb.send(
      new CreateTableCommand({
        TableName,
        KeySchema: p.KeySchema,
        AttributeDefinitions: p.AttributeDefinitions,
        BillingMode: p.BillingMode ?? 'PAY_PER_REQUEST',
        GlobalSecondaryIndexes: p.GlobalSecondaryIndexes,
        StreamSpecification: p.StreamSpecification ? { StreamEnabled: true, StreamViewType: p.StreamSpecification.StreamViewType } : undefined,
        SSESpecification: p.SSESpecification
          ? { Enabled: true, SSEType: 'KMS', KMSMasterKeyId: p.SSESpecification.KMSMasterKeyId }
          : undefined,
        DeletionProtectionEnabled: p.DeletionProtectionEnabled,
      }),
    );
    if (out.TableDescription?.LatestStreamArn) identities.get(logicalId)!.attrs.StreamArn = out.TableDescription.LatestStreamArn;
    if (p.TimeToLiveSpecification?.Enabled) {
      await dynamodb.send(
        new UpdateTimeToLiveCommand({ TableName, TimeToLiveSpecification: { Enabled: true, AttributeName: p.TimeToLiveSpecification.AttributeName } }),
      );
    }
    if (p.PointInTimeRecoverySpecification?.PointInTimeRecoveryEnabled) {
      await dynamodb.send(
        new UpdateContinuousBackupsCommand({ TableName, PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } }),
      );
    }
    record(resource.Type, logicalId, TableName);
  }

  // Dead-letter queues before the queues that redrive into them.
  const sqs = awsClient(SQSClient);
  const queues = ofType('AWS::SQS::Queue').sort(([, a], [, b]) => Number(!!a.Properties?.RedrivePolicy) - Number(!!b.Properties?.RedrivePolicy));
  for (const [logicalId, resource] of queues) {
    const p = props(resource);
    const attributes: Record<string, string> = {};
    for (const key of ['MessageRetentionPeriod', 'VisibilityTimeout', 'DelaySeconds', 'KmsMasterKeyId', 'FifoQueue']) {
      if (p[key] !== undefined) attributes[key] = String(p[key]);
    }
    if (p.RedrivePolicy) attributes.RedrivePolicy = JSON.stringify(p.RedrivePolicy);
    const identity = identities.get(logicalId)!;
    const out = await sqs.send(new CreateQueueCommand({ QueueName: identity.attrs.QueueName, Attributes: attributes }));
    identity.ref = out.QueueUrl!;
    identity.attrs.QueueUrl = out.QueueUrl!;
    record(resource.Type, logicalId, out.QueueUrl!);
  }

  const sns = awsClient(SNSClient);
  for (const [logicalId, resource] of ofType('AWS::SNS::Topic')) {
    const p = props(resource);
    const identity = identities.get(logicalId)!;
    await sns.send(new CreateTopicCommand({ Name: identity.attrs.TopicName, Attributes: p.KmsMasterKeyId ? { KmsMasterKeyId: p.KmsMasterKeyId } : undefined }));
    record(resource.Type, logicalId, identity.ref);
  }

  const s3 = awsClient(S3Client);
  // What `cdk deploy` publishes before the template (the desired state): its bucket (the CDK
  // bootstrap's assets bucket, shared by every local stack) and its content-addressed object.
  for (const asset of (template.Metadata?.[FILE_ASSETS_METADATA_KEY] ?? []) as { path: string; bucket: unknown; key: unknown }[]) {
    const Bucket = String(resolver.resolve(asset.bucket));
    try {
      await s3.send(new CreateBucketCommand({ Bucket }));
    } catch (error) {
      if (!['BucketAlreadyOwnedByYou', 'BucketAlreadyExists'].includes((error as Error).name)) throw error;
    }
    await s3.send(new PutObjectCommand({ Bucket, Key: String(resolver.resolve(asset.key)), Body: readFileSync(asset.path) }));
  }
  for (const [logicalId, resource] of ofType('AWS::S3::Bucket')) {
    const p = props(resource);
    const Bucket = identities.get(logicalId)!.ref;
    await s3.send(new CreateBucketCommand({ Bucket, ObjectLockEnabledForBucket: p.ObjectLockEnabled === true }));
    if (p.VersioningConfiguration) {
      await s3.send(new PutBucketVersioningCommand({ Bucket, VersioningConfiguration: { Status: p.VersioningConfiguration.Status } }));
    }
    if (p.BucketEncryption) {
      // CloudFormation says ServerSideEncryptionByDefault where the API says ApplyServerSideEncryptionByDefault.
      const Rules = (p.BucketEncryption.ServerSideEncryptionConfiguration as any[]).map((rule) => ({
        ApplyServerSideEncryptionByDefault: rule.ServerSideEncryptionByDefault,
        BucketKeyEnabled: rule.BucketKeyEnabled,
      }));
      await s3.send(new PutBucketEncryptionCommand({ Bucket, ServerSideEncryptionConfiguration: { Rules } }));
    }
    if (p.ObjectLockConfiguration?.Rule) {
      await s3.send(
        new PutObjectLockConfigurationCommand({
          Bucket,
          ObjectLockConfiguration: { ObjectLockEnabled: 'Enabled', Rule: p.ObjectLockConfiguration.Rule },
        }),
      );
    }
    record(resource.Type, logicalId, Bucket);
  }

  const events = awsClient(EventBridgeClient);
  for (const [logicalId, resource] of ofType('AWS::Events::EventBus')) {
    const identity = identities.get(logicalId)!;
    await events.send(new CreateEventBusCommand({ Name: identity.ref }));
    record(resource.Type, logicalId, identity.ref);
  }

  const routes: LocalRoute[] = [];
  for (const [logicalId, resource] of ofType('AWS::Events::Rule')) {
    const p = props(resource);
    const Name = identities.get(logicalId)!.ref;
    const busName = p.EventBusName ?? 'default';
    await events.send(
      new PutRuleCommand({
        Name,
        EventBusName: busName,
        EventPattern: p.EventPattern ? JSON.stringify(p.EventPattern) : undefined,
        ScheduleExpression: p.ScheduleExpression,
        State: p.State ?? 'ENABLED',
        Description: p.Description,
      }),
    );
    // moto delivers to SQS targets; any other target would make PutEvents fail there.
    const targets = (p.Targets ?? []) as { Id: string; Arn: string; Input?: string; InputTransformer?: LocalRoute['inputTransformer']; DeadLetterConfig?: { Arn?: string }; RetryPolicy?: LocalRoute['retryPolicy'] }[];
    const sqsTargets = targets.filter((t) => t.Arn.startsWith('arn:aws:sqs:'));
    if (sqsTargets.length) {
      await events.send(
        new PutTargetsCommand({ Rule: Name, EventBusName: busName, Targets: sqsTargets.map((t) => ({ Id: t.Id, Arn: t.Arn, Input: t.Input })) }),
      );
    }
    for (const target of targets.filter((t) => !sqsTargets.includes(t))) {
      routes.push({ rule: Name, busName, targetArn: target.Arn, input: target.Input, schedule: p.ScheduleExpression, eventPattern: p.EventPattern, inputTransformer: target.InputTransformer, retryPolicy: target.RetryPolicy, deadLetterArn: target.DeadLetterConfig?.Arn });
    }
    record(resource.Type, logicalId, Name);
  }

  // Functions and state machines: resolved for the local runners, not created in moto.
  const functions = new Map<string, LocalFunction>();
  for (const [logicalId, resource] of ofType('AWS::Lambda::Function')) {
    const entry = resource.Metadata?.[ENTRY_METADATA_KEY];
    if (typeof entry !== 'string') continue;
    const p = props(resource);
    const identity = identities.get(logicalId)!;
    functions.set(logicalId, { logicalId, name: identity.ref, arn: identity.attrs.Arn!, entry, environment: p.Environment?.Variables ?? {}, timeoutSeconds: Number(p.Timeout ?? 3) });
  }
  const stateMachines = new Map<string, LocalStateMachine>();
  for (const [logicalId, resource] of ofType('AWS::StepFunctions::StateMachine')) {
    const p = props(resource);
    const identity = identities.get(logicalId)!;
    stateMachines.set(logicalId, { logicalId, arn: identity.ref, definition: JSON.parse(String(p.DefinitionString)) });
    await awsClient(SFNClient).send(
      new CreateStateMachineCommand({ name: identity.attrs.Name!, definition: String(p.DefinitionString), roleArn: `arn:aws:iam::${ACCOUNT_ID}:role/${prefix}-states`, type: 'STANDARD' }),
    );
    record('AWS::StepFunctions::StateMachine', logicalId, identity.ref);
  }

  const find = (logicalIdPrefix: string) => {
    const matches = [...identities.keys()].filter((id) => id.startsWith(logicalIdPrefix) && /^[0-9A-F]{8}$/.test(id.slice(logicalIdPrefix.length)));
    if (matches.length !== 1) throw new Error(`expected one resource named ${logicalIdPrefix}<hash>, found ${matches.length}`);
    return identities.get(matches[0]!)!;
  };
  return {
    prefix,
    pseudo,
    template,
    identities,
    functions,
    stateMachines,
    routes,
    created,
    ref: (p) => find(p).ref,
    attr: (p, a) => {
      const value = find(p).attrs[a];
      if (value === undefined) throw new Error(`${p} has no attribute ${a} locally`);
      return value;
    },
  };
}

/** Names we give each resource locally (prefix + logical id), and the ARNs that follow from them. */
function plannedIdentity(prefix: string, logicalId: string, resource: CfnResource, pseudo: Pseudo): Identity {
  const { region, accountId } = pseudo;
  const name = `${prefix}-${logicalId}`;
  const arn = (service: string, resourcePart: string, withRegion = true, withAccount = true) =>
    `arn:aws:${service}:${withRegion ? region : ''}:${withAccount ? accountId : ''}:${resourcePart}`;
  switch (resource.Type) {
    case 'AWS::DynamoDB::Table':
      return { ref: name, attrs: { Arn: arn('dynamodb', `table/${name}`) } };
    case 'AWS::SQS::Queue': {
      const queueName = name.slice(0, 80);
      return { ref: queueName, attrs: { Arn: arn('sqs', queueName), QueueName: queueName } };
    }
    case 'AWS::SNS::Topic':
      return { ref: arn('sns', name), attrs: { TopicArn: arn('sns', name), TopicName: name } };
    case 'AWS::S3::Bucket': {
      const bucket = `${prefix}-${logicalId}`.toLowerCase().slice(0, 63).replace(/-+$/, '');
      return {
        ref: bucket,
        attrs: { Arn: `arn:aws:s3:::${bucket}`, DomainName: `${bucket}.s3.amazonaws.com`, RegionalDomainName: `${bucket}.s3.${region}.amazonaws.com` },
      };
    }
    case 'AWS::Events::EventBus': {
      const busName = `${prefix}-${String(resource.Properties?.Name ?? logicalId)}`;
      return { ref: busName, attrs: { Arn: arn('events', `event-bus/${busName}`), Name: busName } };
    }
    case 'AWS::Events::Rule':
      return { ref: name.slice(0, 64), attrs: { Arn: arn('events', `rule/${name.slice(0, 64)}`) } };
    case 'AWS::Lambda::Function':
      return { ref: name, attrs: { Arn: arn('lambda', `function:${name}`) } };
    case 'AWS::StepFunctions::StateMachine': {
      const smArn = arn('states', `stateMachine:${name}`);
      return { ref: smArn, attrs: { Arn: smArn, Name: name } };
    }
    case 'AWS::IAM::Role':
      return { ref: name, attrs: { Arn: arn('iam', `role/${name}`, false), RoleId: name } };
    case 'AWS::Logs::LogGroup':
      return { ref: name, attrs: { Arn: arn('logs', `log-group:${name}:*`) } };
    default:
      return { ref: name, attrs: { Arn: arn('local', name) } };
  }
}
