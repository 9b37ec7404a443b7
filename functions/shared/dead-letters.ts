import { SQSClient, SendMessageCommand } from '@aws-sdk/client-sqs';
import { awsClient } from './aws';
import { sqsText } from './validation';

/** Where a message that no retry can help ends, with the reason it was parked. */
export interface DeadLetters {
  park(body: string, reason: string, errorName: string): Promise<void>;
}

/** SQS message attributes hold at most 256 KB in all; a reason is cut well below that. */
const MAX_REASON_CHARS = 1000;

/** Parks a message in the function's dead-letter queue, the reason and error name as message attributes. */
export class SqsDeadLetters implements DeadLetters {
  constructor(private readonly queueUrl: string) {}

  async park(body: string, reason: string, errorName: string): Promise<void> {
    await awsClient(SQSClient).send(
      new SendMessageCommand({
        QueueUrl: this.queueUrl,
        MessageBody: body,
        MessageAttributes: {
          reason: { DataType: 'String', StringValue: sqsText(reason, MAX_REASON_CHARS) || '(no reason given)' },
          error: { DataType: 'String', StringValue: errorName || 'Terminal.Error' },
        },
      }),
    );
  }
}
