import { ChangeMessageVisibilityCommand, DeleteMessageBatchCommand, ReceiveMessageCommand, SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { awsClient } from '../functions/shared/aws';
import type { LocalStack } from './provision';
import { invokeFunction } from './stepfunctions';

/**
 * Lambda's SQS event source mapping, locally: receive up to 10 messages, invoke the function's
 * real handler with an SQS event of the exact shape Lambda sends, delete the messages it did
 * not report in `batchItemFailures`, and make the failed ones visible again at once (Lambda
 * would wait for the visibility timeout; redrive to the DLQ still follows maxReceiveCount).
 */
export interface PumpResult {
  batches: number;
  received: number;
  failed: number;
  invocations: number;
}

export async function pumpQueue(stack: LocalStack, queueLogicalPrefix: string, functionLogicalPrefix: string, options: { maxBatches?: number } = {}): Promise<PumpResult> {
  const sqs = awsClient(SQSClient);
  const queueUrl = stack.ref(queueLogicalPrefix);
  const queueArn = stack.attr(queueLogicalPrefix, 'Arn');
  const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith(functionLogicalPrefix));
  if (!fn) throw new Error(`no local function ${functionLogicalPrefix}*`);
  const result: PumpResult = { batches: 0, received: 0, failed: 0, invocations: 0 };
  for (let batch = 0; batch < (options.maxBatches ?? 100); batch++) {
    const out = await sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'], MessageAttributeNames: ['All'] }));
    const messages = out.Messages ?? [];
    if (!messages.length) break;
    const event: SQSEvent = {
      Records: messages.map((m) => ({
        messageId: m.MessageId!,
        receiptHandle: m.ReceiptHandle!,
        body: m.Body!,
        attributes: {
          ApproximateReceiveCount: m.Attributes?.ApproximateReceiveCount ?? '1',
          SentTimestamp: m.Attributes?.SentTimestamp ?? String(Date.now()),
          SenderId: m.Attributes?.SenderId ?? 'AIDAEXAMPLE',
          ApproximateFirstReceiveTimestamp: m.Attributes?.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: m.MD5OfBody!,
        eventSource: 'aws:sqs',
        eventSourceARN: queueArn,
        awsRegion: stack.pseudo.region,
      })),
    };
    result.batches += 1;
    result.invocations += 1;
    result.received += messages.length;
    let failedIds: Set<string>;
    try {
      const response = (await invokeFunction(stack, fn, event)) as SQSBatchResponse;
      failedIds = new Set(response.batchItemFailures.map((f) => f.itemIdentifier));
    } catch {
      failedIds = new Set(messages.map((m) => m.MessageId!)); // the whole invocation failed
    }
    for (const message of messages) {
      if (!failedIds.has(message.MessageId!)) continue;
      result.failed += 1;
      // Lambda leaves a failed record to the visibility timeout; here it is visible again at once, for the tests.
      await sqs.send(new ChangeMessageVisibilityCommand({ QueueUrl: queueUrl, ReceiptHandle: message.ReceiptHandle!, VisibilityTimeout: 0 }));
    }
    // As Lambda's event source mapping does: the processed records of a batch in one DeleteMessageBatch.
    const processed = messages.filter((m) => !failedIds.has(m.MessageId!));
    if (processed.length) {
      const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: queueUrl, Entries: processed.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      if (out.Failed?.length) throw new Error(`DeleteMessageBatch refused ${out.Failed.length} record(s): ${JSON.stringify(out.Failed)}`);
    }
    if (failedIds.size === messages.length) break; // nothing but failures: stop, as a test wants to look
  }
  return result;
}

/** What an EventBridge rule with an SQS target delivers: the event JSON as the message body. */
export async function deliverToQueue(stack: LocalStack, queueLogicalPrefix: string, events: unknown[]): Promise<void> {
  const sqs = awsClient(SQSClient);
  for (const event of events) {
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.ref(queueLogicalPrefix), MessageBody: typeof event === 'string' ? event : JSON.stringify(event) }));
  }
}
