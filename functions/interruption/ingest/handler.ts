import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { SqsSchema } from '../../shared/sqs';
import { DynamoLedger } from '../../ledger/store';
import { awsClient, documentClient } from '../../shared/aws';
import { AccountSessions } from '../../shared/accounts';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { SqsDeadLetters } from '../../shared/dead-letters';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { processSqsRecords } from '../../shared/sqs-records';
import { plainJson } from '../../shared/validation';
import { ConfiguredAccounts } from '../accounts';
import { Ec2InstanceResolver } from '../instances';
import { type InterruptionEvent, parseInterruptionEvent } from '../events';
import { type IngestOutcome, ingestInterruption, reportIngest } from '../ingest';
import { DynamoPoolRiskStore } from '../pool-store';
import { type InterruptionIngestEnv, InterruptionIngestEnvSchema } from './env';

const wire = perEnvironment((env: InterruptionIngestEnv) => {
  const idempotency = new IdempotencyConfig({ eventKeyJmesPath: 'eventId', expiresAfterSeconds: 24 * 3600 });
  const deps = {
    accounts: new ConfiguredAccounts(env.ACCOUNT_ENVIRONMENTS, env.ORGANIZATIONS_ENVIRONMENT_TAG),
    policy: env.RISK_POLICY,
    resolver: new Ec2InstanceResolver(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)),
    pools: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.interruption),
    clock: () => new Date(),
    actor: 'interruption-ingest',
  };
  // A completed event short-circuits; one that crashed mid-way runs again (its effects are idempotent).
  const ingest = makeIdempotent(async (event: InterruptionEvent) => plainJson<IngestOutcome>(await ingestInterruption(event, deps)), {
    persistenceStore: new DynamoDBPersistenceLayer({ tableName: env.IDEMPOTENCY_TABLE_NAME, awsSdkV3Client: awsClient(DynamoDBClient) }),
    config: idempotency,
  });
  return { idempotency, ingest, deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL) };
});

export const handler = fleetHandler({ envSchema: InterruptionIngestEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const { idempotency, ingest, deadLetters } = wire(tools.env);
  idempotency.registerLambdaContext(tools.lambda);
  // One record at a time: every record appends to the same ledger chain, and parallel appenders
  // would mostly race each other for its tip.
  return processSqsRecords(event, { parse: parseInterruptionEvent, act: ingest, deadLetters, parallel: false, onDone: (e, outcome) => reportIngest(e, outcome, tools) }, tools);
});
