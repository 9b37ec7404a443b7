import { SqsSchema } from '../../shared/sqs';
import { DynamoLedger } from '../../ledger/store';
import { documentClient } from '../../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../../shared/bus';
import { AccountSessions } from '../../shared/accounts';
import { SqsDeadLetters } from '../../shared/dead-letters';
import { AutoScalingLifecycle } from '../../shared/groups';
import { fleetHandler, perEnvironment } from '../../shared/middleware';
import { backoffVisibilitySeconds, processSqsRecords } from '../../shared/sqs-records';
import { clusterConnector } from '../connector';
import { parseInstanceInterrupted } from '../events';
import { reactToInterruption, reportNodeOutcome } from '../interruption';
import { type NodeDrainEnv, NodeDrainEnvSchema } from './env';

const wire = perEnvironment((env: NodeDrainEnv) => ({
  deps: {
    clusters: env.KUBERNETES_CLUSTERS.map((c) => c.name),
    policy: env.KUBERNETES_POLICY,
    connector: clusterConnector(env.KUBERNETES_CLUSTERS),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.kubernetes),
    dryRun: env.FLEETWARDEN_DRY_RUN,
    actor: 'node-drain',
    lifecycle: new AutoScalingLifecycle(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)),
  },
  deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL),
  // A record that failed transiently is visible again in seconds, not after the queue's
  // visibility timeout (6 × the function timeout), which would be long after a 2-minute notice.
  retry: { queueUrl: env.EVENTS_QUEUE_URL, visibilitySeconds: backoffVisibilitySeconds },
}));

export const handler = fleetHandler({ envSchema: NodeDrainEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const { deps, deadLetters, retry } = wire(tools.env);
  const act = (detail: Parameters<typeof reactToInterruption>[0]) => reactToInterruption(detail, { ...deps, remainingMs: () => tools.lambda.getRemainingTimeInMillis() });
  // In parallel: each record is a different node, and every node's notice runs at the same time.
  return processSqsRecords(event, { parse: parseInstanceInterrupted, act, deadLetters, parallel: true, retry, onDone: (_, outcome) => reportNodeOutcome(outcome, tools) }, tools);
});
