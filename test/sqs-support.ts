import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import type { DeadLetters } from '../functions/shared/dead-letters';

/** What the SQS pipeline is given besides the records: a silent logger, metrics, the Lambda context. */
export const pipelineTools = { logger: new Logger({ logLevel: 'SILENT' }), metrics: new Metrics({ namespace: 'Test' }), lambda: { getRemainingTimeInMillis: () => 30_000 } as never };

/** An SQS record as Lambda's event source mapping delivers it. */
export function sqsRecord(messageId: string, body: string) {
  return {
    messageId,
    receiptHandle: `rh-${messageId}`,
    body,
    attributes: { ApproximateReceiveCount: '1', ApproximateFirstReceiveTimestamp: '1', SenderId: 's', SentTimestamp: '1' },
    messageAttributes: {},
    md5OfBody: 'x',
    eventSource: 'aws:sqs' as const,
    eventSourceARN: 'arn:aws:sqs:us-east-1:111111111111:q',
    awsRegion: 'us-east-1',
  };
}

/** The dead-letter port, remembering what was parked (Fleetwarden's own port, not an AWS client). */
export class RecordingDeadLetters implements DeadLetters {
  readonly parked: { body: string; reason: string; errorName: string }[] = [];
  async park(body: string, reason: string, errorName: string) {
    this.parked.push({ body, reason, errorName });
  }
}
