import type { SqsEvent } from '@aws-lambda-powertools/parser/types';
import * as z from 'zod';

/**
 * The SQS event Lambda delivers to an event source mapping: the same shape as Powertools parser's
 * `SqsSchema` (`@aws-lambda-powertools/parser/schemas/sqs`, 2.35.0), field for field.
 *
 * Fleetwarden keeps its own copy for bundle size only: the Powertools module does
 * `import { z } from 'zod'`, a binding esbuild cannot tree-shake, so importing it put all of zod
 * (every locale, the JSON Schema code: about 350 KB minified) back into both SQS handlers, which
 * otherwise import zod as a namespace (`import * as z`, see eslint.config.js). Its inferred type
 * is Powertools' `SqsEvent`, which functions/shared/sqs-records.ts takes: `_SameAsPowertools`
 * below fails `tsc` if the two ever differ (a Powertools upgrade that changes the shape).
 */
const SqsMsgAttributeDataTypeSchema = z.union([z.literal('String'), z.literal('Number'), z.literal('Binary'), z.string()]);

const SqsMsgAttributeSchema = z.object({
  stringValue: z.string().optional().nullable(),
  binaryValue: z.string().optional().nullable(),
  stringListValues: z.array(z.string()).optional(),
  binaryListValues: z.array(z.string()).optional(),
  dataType: SqsMsgAttributeDataTypeSchema,
});

const SqsAttributesSchema = z.object({
  ApproximateReceiveCount: z.string(),
  ApproximateFirstReceiveTimestamp: z.string(),
  MessageDeduplicationId: z.string().optional(),
  MessageGroupId: z.string().optional(),
  SenderId: z.string(),
  SentTimestamp: z.string(),
  SequenceNumber: z.string().optional(),
  AWSTraceHeader: z.string().optional(),
  /** Undocumented, but set by SQS's dead-letter queue redrive. */
  DeadLetterQueueSourceArn: z.string().optional(),
});

export const SqsRecordSchema = z.object({
  messageId: z.string(),
  receiptHandle: z.string(),
  body: z.string(),
  attributes: SqsAttributesSchema,
  messageAttributes: z.record(z.string(), SqsMsgAttributeSchema),
  md5OfBody: z.string(),
  md5OfMessageAttributes: z.string().optional().nullable(),
  eventSource: z.literal('aws:sqs'),
  eventSourceARN: z.string(),
  awsRegion: z.string(),
});

/** An SQS batch: at least one record. */
export const SqsSchema = z.object({
  Records: z.array(SqsRecordSchema).nonempty(),
});

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type _SameAsPowertools = Assert<Same<z.infer<typeof SqsSchema>, SqsEvent>>;
type Assert<T extends true> = T;
