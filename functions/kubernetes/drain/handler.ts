import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { SqsSchema } from '@aws-lambda-powertools/parser/schemas/sqs';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSRecord } from 'aws-lambda';
import { SqsDeadLetters } from '../../interruption/adapters';
import { DynamoLedger } from '../../ledger/store';
import { awsClient, documentClient } from '../../shared/aws';
import { TerminalError } from '../../shared/errors';
import { type HandlerTools, fleetHandler } from '../../shared/middleware';
import { describeIssues } from '../../shared/validation';
import { EventBridgeNodeEvents } from '../bus';
import { clusterConnector } from '../connector';
import { InstanceInterruptedEventSchema } from '../events';
import { type NodeInterruptionDeps, reactToInterruption } from '../interruption';
import { type NodeDrainEnv, NodeDrainEnvSchema } from './env';

/**
 * How long a record that failed transiently stays invisible before its next try: seconds, not the
 * queue's visibility timeout (6 × the function timeout, AWS's guidance for SQS event sources,
 * which would redeliver long after a 2-minute Spot notice). Grows with each receive so that an
 * API server that is down for a while does not use up maxReceiveCount in a few seconds.
 */
export function retryVisibilitySeconds(receiveCount: number): number {
  return Math.min(30, 5 * Math.max(1, receiveCount));
}

let wired: { env: NodeDrainEnv; deps: Omit<NodeInterruptionDeps, 'remainingMs'>; deadLetters: SqsDeadLetters } | undefined;

/** Adapters once per cold start (again if the environment changes, as in local runs). */
function wire(env: NodeDrainEnv, dryRun: boolean) {
  if (wired?.env === env) return wired;
  const deps = {
    clusters: env.KUBERNETES_CLUSTERS.map((c) => c.name),
    policy: env.KUBERNETES_POLICY,
    connector: clusterConnector(env.KUBERNETES_CLUSTERS),
    ledger: new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME }),
    publisher: new EventBridgeNodeEvents(env.EVENT_BUS_NAME),
    dryRun,
    actor: 'node-drain',
  };
  wired = { env, deps, deadLetters: new SqsDeadLetters(env.DEAD_LETTER_QUEUE_URL) };
  return wired;
}

async function processRecord(record: SQSRecord, tools: HandlerTools<NodeDrainEnv>): Promise<void> {
  const { deps, deadLetters } = wire(tools.env, tools.env.FLEETWARDEN_DRY_RUN);
  const park = async (reason: string, name: string) => {
    await deadLetters.park(record.body, reason, name);
    tools.metrics.addMetric('EventsParked', MetricUnit.Count, 1);
    tools.logger.warn('event parked in the DLQ', { messageId: record.messageId, reason });
  };
  tools.metrics.addMetric('NodeInterruptions', MetricUnit.Count, 1);
  let body: unknown;
  try {
    body = JSON.parse(record.body);
  } catch (error) {
    return park(`body is not JSON: ${(error as Error).message}`, 'Terminal.MalformedEvent');
  }
  const parsed = InstanceInterruptedEventSchema.safeParse(body);
  if (!parsed.success) return park(`malformed InstanceInterrupted event: ${describeIssues(parsed.error)}`, 'Terminal.MalformedEvent');
  const event = parsed.data.detail;
  try {
    const outcome = await reactToInterruption(event, { ...deps, remainingMs: () => tools.lambda.getRemainingTimeInMillis() });
    const drain = outcome.drain;
    if (drain) {
      tools.metrics.addMetric(drain.complete ? 'NodesDrained' : 'NodeDrainsFailed', MetricUnit.Count, 1);
      tools.metrics.addMetric('PodsEvicted', MetricUnit.Count, drain.evicted.length);
      tools.metrics.addMetric('DrainDuration', MetricUnit.Milliseconds, drain.durationMs);
    }
    tools.logger.info('interruption handled for Kubernetes', { eventId: event.eventId, decision: outcome.decision, node: outcome.node, recorded: outcome.recorded, drain: drain && { complete: drain.complete, evicted: drain.evicted.length, refusals: drain.refusals, remaining: drain.remaining } });
  } catch (error) {
    // Wrong cluster, forbidden by RBAC: retrying cannot help; park with the reason and alarm.
    if (error instanceof TerminalError) return park(error.message, error.name);
    // Transient: reported as a batch item failure, and visible again in seconds, not after the queue's visibility timeout.
    const seconds = retryVisibilitySeconds(Number(record.attributes?.ApproximateReceiveCount ?? '1'));
    try {
      await awsClient(SQSClient).send(new ChangeMessageVisibilityCommand({ QueueUrl: tools.env.EVENTS_QUEUE_URL, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }));
    } catch (visibilityError) {
      // The message then waits for the queue's visibility timeout: later, never lost.
      tools.logger.warn('could not shorten the visibility of a failed record', { messageId: record.messageId, error: (visibilityError as Error).message });
    }
    tools.logger.warn('interruption not handled yet, retried soon', { messageId: record.messageId, eventId: event.eventId, retryInSeconds: seconds, error: (error as Error).message });
    throw error;
  }
}

export const handler = fleetHandler({ envSchema: NodeDrainEnvSchema, inputSchema: SqsSchema }, async (event, tools) => {
  const processor = new BatchProcessor(EventType.SQS);
  // In parallel: each record is a different node, and every node's notice runs at the same time.
  return processPartialResponse(event as never, (record: SQSRecord) => processRecord(record, tools), processor, {
    context: tools.lambda,
    throwOnFullBatchFailure: false,
    processInParallel: true,
  });
});
