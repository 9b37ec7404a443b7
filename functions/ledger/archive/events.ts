import { unmarshall } from '@aws-sdk/util-dynamodb';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import * as z from 'zod';
import type { LedgerChange } from '../archiver';

/**
 * What the archive function is handed: a batch of the ledger table's stream, as Lambda's event
 * source mapping delivers it (the fields the archiver reads; images are DynamoDB JSON), or a
 * catch-up request from the schedule (archive `chain` up to its tip, stream or no stream).
 * @example { "Records": [{ "eventID": "1", "eventName": "INSERT", "eventSource": "aws:dynamodb",
 *   "dynamodb": { "Keys": { "chain": { "S": "fleet" }, "seq": { "N": "42" } }, "NewImage": { "…": {} }, "SequenceNumber": "4200" } }] }
 * @example { "chain": "fleet" }
 */
const ImageSchema = z.record(z.string(), z.record(z.string(), z.unknown()));
export const LedgerStreamEventSchema = z.object({
  Records: z.array(
    z.object({
      eventID: z.string().min(1),
      eventName: z.enum(['INSERT', 'MODIFY', 'REMOVE']),
      eventSource: z.literal('aws:dynamodb'),
      dynamodb: z.object({ Keys: ImageSchema, NewImage: ImageSchema.optional(), SequenceNumber: z.string().min(1) }),
    }),
  ),
});
export const CatchUpRequestSchema = z.strictObject({ chain: z.string().regex(/^[a-z0-9-]+$/) });
export const ArchiveRequestSchema = z.union([LedgerStreamEventSchema, CatchUpRequestSchema]);
export type ArchiveRequest = z.infer<typeof ArchiveRequestSchema>;

const image = (value: Record<string, Record<string, unknown>>) => unmarshall(value as unknown as Record<string, AttributeValue>, { wrapNumbers: false });

/** The stream records as changes with plain values (numbers as numbers: a ledger's are small integers and timestamps never are numbers). */
export function changesOf(event: z.infer<typeof LedgerStreamEventSchema>): LedgerChange[] {
  return event.Records.map((r) => ({ eventName: r.eventName, keys: image(r.dynamodb.Keys), ...(r.dynamodb.NewImage ? { newImage: image(r.dynamodb.NewImage) } : {}) }));
}
