import * as z from 'zod';
import { MalformedEventError, UnknownEventError } from './errors';
import { AccountIdSchema } from './ids';
import { describeIssues, sqsText } from './validation';

/**
 * The EventBridge envelope every AWS service event arrives in, with its source and detail-type
 * pinned and its detail validated by the given schema.
 */
export const envelope = <S extends string, D extends string, T extends z.ZodType>(source: S, detailType: D, detail: T) =>
  z.object({
    version: z.string().optional(),
    id: z.string().min(1),
    'detail-type': z.literal(detailType),
    source: z.literal(source),
    account: AccountIdSchema,
    time: z.iso.datetime({ offset: true }),
    region: z.string().min(1),
    resources: z.array(z.string()).default([]),
    detail,
  });

/** The (source, detail-type) pair and the EventBridge pattern of the rule that brings an event type. */
export interface HandledEvent {
  source: string;
  detailType: string;
  /** The full pattern: source, detail-type and any detail filter. */
  pattern: Record<string, unknown>;
}

/** Source and detail-type of an envelope schema, and the rule pattern with the given detail filter. */
export function handledEvent(schema: z.ZodType, filter: Record<string, unknown> = {}): HandledEvent {
  const shape = (schema as unknown as z.ZodObject).shape;
  const source = (shape.source as z.ZodLiteral<string>).value;
  const detailType = (shape['detail-type'] as z.ZodLiteral<string>).value;
  return { source, detailType, pattern: { source: [source], 'detail-type': [detailType], ...filter } };
}

const EnvelopeHeadSchema = z.object({ source: z.string(), 'detail-type': z.string() });

/** A value of the event as a reason quotes it: at most 100 characters, in what SQS can carry. */
export const inReason = (value: string) => sqsText(value, 100);

/**
 * The parse step of an SQS-fed consumer: the parser registered for the event's source and
 * detail-type, or UnknownEventError / MalformedEventError with the reason.
 */
export function parseWithRegistry<T>(raw: unknown, parsers: readonly (HandledEvent & { parse(raw: unknown): T })[]): T {
  const head = EnvelopeHeadSchema.safeParse(raw);
  if (!head.success) throw new MalformedEventError(`not an EventBridge event: ${describeIssues(head.error)}`);
  const match = parsers.find((p) => p.source === head.data.source && p.detailType === head.data['detail-type']);
  if (!match) throw new UnknownEventError(`unknown event "${inReason(head.data['detail-type'])}" from ${inReason(head.data.source)}`);
  return match.parse(raw);
}
