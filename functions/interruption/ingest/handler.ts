import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { SqsSchema } from '@aws-lambda-powertools/parser/schemas/sqs';
import type { SQSRecord } from 'aws-lambda';
import { DynamoLedger } from '../../ledger/store';
import { awsClient, documentClient } from '../../shared/aws';
import { TerminalError } from '../../shared/errors';
import { type HandlerTools, fleetHandler } from '../../shared/middleware';
import { ConfiguredAccounts } from '../accounts';
import { AccountSessions, Ec2InstanceResolver, EventBridgePublisher, SqsDeadLetters } from '../adapters';
import { type InterruptionEvent, MalformedEventError, UnknownEventError, parseInterruptionEvent } from '../events';
import { type IngestDeps, ingestInterruption } from '../ingest';
import { DynamoPoolRiskStore } from '../pool-store';
import { type InterruptionIngestEnv, InterruptionIngestEnvSchema } from './env';
import { plainJson } from '../../shared/validation';

/** Source of the domain events this function publishes on the Fleetwarden bus. */
export const EVENT_SOURCE = 'fleetwarden.interruption';

let wired: { env: InterruptionIngestEnv; ingest: (e: InterruptionEvent) => Promise<unknown>; config: IdempotencyConfig; deadLetters: SqsDeadLetters } | undefined;

/** Adapters are built once per cold start (and again if the environment changes, as in local runs). */
function wire(env: InterruptionIngestEnv) {
  if (wired?.env === env) return wired;
  const deps: IngestDeps = {
    accounts: new ConfiguredAccounts(env.ACCOUNT_ENVIRONMENTS, env.ORGANIZATIONS_ENVIRONMENT_TAG),
    policy: env.RISK_POLICY,
    resolver: new Ec2InstanceResolver(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)),
    pools: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCE),
    clock: () => new Date(),
    actor: 'interruption-ingest',
  };
  const config = new IdempotencyConfig({ eventKeyJmesPath: 'eventId', expiresAfterSeconds: 24 * 3600 });
  // Completed events short-circuit; one that crashed mid-way is retried (its effects are idempotent).
  // The stored result must be plain JSON: the idempotency store's marshaller refuses undefined members.
  const ingest = makeIdempotent(async (event: InterruptionEvent) => plainJson<unknown>(await ingestInterruption(event, deps)), {
    persistenceStore: new DynamoDBPersistenceLayer({ tableName: env.IDEMPOTENCY_TABLE_NAME, awsSdkV3Client: awsClient(DynamoDBClient) }),
    config,
  });
  wired = { env, ingest, config, deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL) };
  return wired;
}

async function processRecord(record: SQSRecord, tools: HandlerTools<InterruptionIngestEnv>): Promise<void> {
  const { ingest, deadLetters } = wire(tools.env);
  let event: InterruptionEvent;
  try {
    event = parseInterruptionEvent(JSON.parse(record.body));
  } catch (error) {
    // Unknown or malformed: park it with the reason; it must not fail the rest of the batch.
    const e = error instanceof SyntaxError ? new MalformedEventError(`body is not JSON: ${error.message}`) : (error as Error);
    if (!(e instanceof UnknownEventError || e instanceof MalformedEventError)) throw e;
    await deadLetters.park(record.body, e.message, e.name);
    tools.metrics.addMetric('EventsParked', MetricUnit.Count, 1);
    tools.logger.warn('event parked in the DLQ', { messageId: record.messageId, reason: e.message });
    return;
  }
  const byType = tools.metrics.singleMetric();
  byType.addDimension('DetailType', event.detailType);
  byType.addMetric('InterruptionEvents', MetricUnit.Count, 1);
  try {
    const outcome = (await ingest(event)) as { instances: { action: string }[] };
    const quarantined = outcome.instances.filter((i) => i.action === 'pool.quarantined').length;
    if (quarantined) tools.metrics.addMetric('PoolsQuarantined', MetricUnit.Count, quarantined);
    tools.metrics.addMetric('EventAgeAtIngest', MetricUnit.Milliseconds, Date.now() - event.time.getTime());
    tools.logger.info('interruption ingested', { eventId: event.eventId, kind: event.kind, outcome });
  } catch (error) {
    if (error instanceof TerminalError) {
      await deadLetters.park(record.body, error.message, error.name);
      tools.metrics.addMetric('EventsParked', MetricUnit.Count, 1);
      return;
    }
    throw error; // transient: reported as a batch item failure and redelivered
  }
}

export const handler = fleetHandler({ envSchema: InterruptionIngestEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const started = performance.now();
  wire(tools.env).config.registerLambdaContext(tools.lambda);
  const processor = new BatchProcessor(EventType.SQS);
  const response = await processPartialResponse(event as never, (record: SQSRecord) => processRecord(record, tools), processor, {
    context: tools.lambda,
    throwOnFullBatchFailure: false,
    // One at a time: every record appends to the same ledger chain, and parallel appenders
    // would mostly race each other for its tip (measured: ~1 s per event in a batch of 10).
    processInParallel: false,
  });
  tools.metrics.addMetric('HandlerLatency', MetricUnit.Milliseconds, performance.now() - started);
  return response;
});
