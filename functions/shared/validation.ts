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
