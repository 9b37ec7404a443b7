import { SqsSchema } from '../../shared/sqs';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { AccountSessions } from '../../shared/accounts';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { SqsDeadLetters } from '../../shared/dead-letters';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { processSqsRecords } from '../../shared/sqs-records';
import { ConfiguredAccounts } from '../../shared/account-directory';
import { Ec2InstanceResolver } from '../instances';
import { type InterruptionEvent, parseInterruptionEvent } from '../events';
import { type IngestDeps, IngestMemory, ingestInterruption, reportIngest } from '../ingest';
import { DynamoPoolRiskStore } from '../pool-store';
import { type InterruptionIngestEnv, InterruptionIngestEnvSchema } from './env';
import { PrefetchingResolver, eventsToResolve } from './prefetch';

const wire = perEnvironment((env: InterruptionIngestEnv) => {
  const resolver = new PrefetchingResolver(new Ec2InstanceResolver(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)));
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  const deps: IngestDeps = {
    accounts: new ConfiguredAccounts(env.ACCOUNT_ENVIRONMENTS, env.ORGANIZATIONS_ENVIRONMENT_TAG),
    policy: env.RISK_POLICY,
    resolver,
    pools: new DynamoPoolRiskStore(documentClient(), env.POOL_RISK_TABLE_NAME),
    ledger,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.interruption),
    clock: () => new Date(),
    actor: 'interruption-ingest',
    // The container's memory: pool records and completed events, across invocations.
    memory: new IngestMemory(),
  };
  return { deps, resolver, ledger, deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL) };
});

/**
 * Duplicates need no idempotency table: the use case is idempotent by itself (the pool history
 * holds the event ids it applied, other facts have a ledger dedupe marker) and a warm container
 * remembers the events it completed.
 */
export const handler = fleetHandler({ envSchema: InterruptionIngestEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const { deps, resolver, ledger, deadLetters } = wire(tools.env);
  // Other functions append to the chain between invocations: read its tip once per batch, then
  // chain this batch's own appends on it.
  ledger.forgetTip();
  // One record at a time: every record appends to the same ledger chain, and parallel appenders
  // would mostly race each other for its tip. The batch's instances are looked up at once first.
  return processSqsRecords(
    event,
    {
      parse: parseInterruptionEvent,
      prepare: async (events) => resolver.prefetch(await eventsToResolve(events, deps)),
      act: (e: InterruptionEvent) => ingestInterruption(e, deps),
      deadLetters,
      parallel: false,
      onDone: (e, outcome) => reportIngest(e, outcome, tools),
    },
    tools,
  );
});
