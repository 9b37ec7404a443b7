import * as z from 'zod';
import { InvalidInputError } from './errors';

/** One line per bad field: `detail.instance-id: Invalid input: expected string, received undefined`. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`)
    .join('; ');
}

/** Parses at the edge: returns typed data, or throws InvalidInputError naming every bad field. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new InvalidInputError(`invalid ${what}: ${describeIssues(result.error)}`);
  return result.data;
}

/** A string holding JSON (as environment variables carry structured config), parsed, then checked by `schema`. */
export const jsonString = <T extends z.ZodType>(schema: T) =>
  z
    .string()
    .transform((raw, ctx) => {
      try {
        return JSON.parse(raw) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'not JSON' });
        return z.NEVER;
      }
    })
    .pipe(schema);

/**
 * A value as plain JSON (undefined members dropped, dates as strings, `undefined` as null): what
 * the ledger, EventBridge details and the idempotency store carry, whose marshallers refuse
 * anything else. Typed by its use site.
 */
export function plainJson<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value ?? null)) as T;
}

/**
 * Text as an SQS message attribute (or body) can carry it: SQS takes #x9 #xA #xD #x20-#xD7FF
 * #xE000-#xFFFD #x10000-#x10FFFF (no NUL, no lone surrogate); anything else, and line breaks (for
 * one-line logs), is written \uXXXX. Cut at `max` characters without splitting a character.
 */
export function sqsText(value: string, max: number): string {
  let text = '';
  for (const c of value) {
    const piece = /^[\x20-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]$/u.test(c) ? c : `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`;
    if (text.length + piece.length > max) return `${text}…`;
    text += piece;
  }
  return text;
}
