import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { ChangeMessageVisibilityCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SqsEvent, SqsRecord as SQSRecord } from '@aws-lambda-powertools/parser/types';
import type { Context, SQSBatchResponse } from 'aws-lambda';
import { awsClient } from './aws';
import type { DeadLetters } from './dead-letters';
import { MalformedEventError, TerminalError } from './errors';
import { sqsText } from './validation';

/**
 * The one pipeline for every SQS-fed function: parse the body, validate it into the consumer's
 * event, act on it, and report per record (Powertools batch processing, partial batch responses):
 *
 * - a record that is not JSON, not an event the consumer understands, or malformed, or whose act
 *   throws a Terminal.* error (retrying cannot help) is parked in the dead-letter queue with the
 *   reason and counts as processed: it never fails the rest of the batch;
 * - a record whose act throws anything else is a batch item failure, redelivered by SQS (until
 *   the queue's maxReceiveCount sends it to the same dead-letter queue).
 *
 * Duplicates are the act's business: deliveries are at least once, so every act is idempotent
 * (each consumer keys its effects by the event id).
 */

/** The parse step alone: what the fuzz suite and the pipeline both run. */
export type ParsedRecord<T> = { ok: true; event: T } | { ok: false; error: TerminalError };

/**
 * JSON, then the consumer's parser. A parser throws a Terminal.* error for anything it refuses
 * (UnknownEventError, MalformedEventError); any other exception is a bug and propagates.
 */
export function parseRecordBody<T>(body: string, parse: (raw: unknown) => T): ParsedRecord<T> {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (error) {
    return { ok: false, error: new MalformedEventError(`body is not JSON: ${sqsText((error as Error).message, 200)}`) };
  }
  try {
    return { ok: true, event: parse(raw) };
  } catch (error) {
    if (error instanceof TerminalError) return { ok: false, error };
    throw error;
  }
}

export interface RecordPipeline<T, R> {
  /** Turns a parsed JSON body into the consumer's event, or throws a Terminal.* error naming the reason. */
  parse: (raw: unknown) => T;
  /** The use case for one event. */
  act: (event: T, record: SQSRecord) => Promise<R>;
  deadLetters: DeadLetters;
  /**
   * Records at once (independent events, each with its own deadline) or one after another
   * (records that contend for one resource, such as the ledger's tip).
   */
  parallel: boolean;
  /**
   * How soon a record that failed transiently is visible again, by receive count; without it the
   * queue's visibility timeout applies.
   */
  retry?: { queueUrl: string; visibilitySeconds: (receiveCount: number) => number };
  /** Called with each record's result, for the consumer's own metrics and log line. */
  onDone?: (event: T, result: R) => void;
  /**
   * Called once with the batch's parsed events before any is acted on (to look up what they all
   * need in one go); the events are parsed once, for this and for the acts.
   */
  prepare?: (events: T[]) => Promise<void>;
}

export interface PipelineTools {
  logger: Logger;
  metrics: Metrics;
  lambda: Context;
}

/**
 * Visibility after a transient failure: seconds, growing with each receive (so that an API that
 * is down for a while does not use up maxReceiveCount in a few seconds), at most 30 s.
 */
export function backoffVisibilitySeconds(receiveCount: number): number {
  return Math.min(30, 5 * Math.max(1, receiveCount));
}

export async function processSqsRecords<T, R>(event: SqsEvent, pipeline: RecordPipeline<T, R>, tools: PipelineTools): Promise<SQSBatchResponse> {
  const started = performance.now();
  const park = async (record: SQSRecord, error: TerminalError) => {
    await pipeline.deadLetters.park(record.body, error.message, error.name);
    tools.metrics.addMetric('EventsParked', MetricUnit.Count, 1);
    tools.logger.warn('event parked in the DLQ', { messageId: record.messageId, error: error.name, reason: error.message });
  };
  // Parsed once per record; a parser bug (not a Terminal.* refusal) fails its record, not the batch.
  const parsedBodies = new Map<string, ParsedRecord<T> | { bug: unknown }>();
  for (const record of event.Records) {
    try {
      parsedBodies.set(record.messageId, parseRecordBody(record.body, pipeline.parse));
    } catch (bug) {
      parsedBodies.set(record.messageId, { bug });
    }
  }
  if (pipeline.prepare) await pipeline.prepare([...parsedBodies.values()].flatMap((p) => ('ok' in p && p.ok ? [p.event] : [])));
  const processRecord = async (record: SQSRecord) => {
    const parsed = parsedBodies.get(record.messageId) ?? parseRecordBody(record.body, pipeline.parse);
    if ('bug' in parsed) throw parsed.bug;
    if (!parsed.ok) return park(record, parsed.error);
    try {
      const result = await pipeline.act(parsed.event, record);
      pipeline.onDone?.(parsed.event, result);
    } catch (error) {
      if (error instanceof TerminalError) return park(record, error);
      await shortenVisibility(record, pipeline.retry, tools);
      throw error; // transient: a batch item failure, redelivered
    }
  };
  const response = await processPartialResponse(event as never, (record: unknown) => processRecord(record as SQSRecord), new BatchProcessor(EventType.SQS), {
    context: tools.lambda,
    throwOnFullBatchFailure: false,
    processInParallel: pipeline.parallel,
  });
  tools.metrics.addMetric('HandlerLatency', MetricUnit.Milliseconds, performance.now() - started);
  return response;
}

async function shortenVisibility(record: SQSRecord, retry: RecordPipeline<unknown, unknown>['retry'], tools: PipelineTools): Promise<void> {
  if (!retry) return;
  const seconds = retry.visibilitySeconds(Number(record.attributes?.ApproximateReceiveCount ?? '1'));
  try {
    await awsClient(SQSClient).send(new ChangeMessageVisibilityCommand({ QueueUrl: retry.queueUrl, ReceiptHandle: record.receiptHandle, VisibilityTimeout: seconds }));
    tools.logger.warn('event not handled yet, retried soon', { messageId: record.messageId, retryInSeconds: seconds });
  } catch (error) {
    // The record then waits for the queue's visibility timeout: later, never lost.
    tools.logger.warn('could not shorten the visibility of a failed record', { messageId: record.messageId, error: (error as Error).message });
  }
}
