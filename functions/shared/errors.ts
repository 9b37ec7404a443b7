/**
 * Errors are named after what a state machine or queue should do with them: Step Functions
 * matches `Retry`/`Catch` on the error name, and the Lambda runtime reports `error.name` as the
 * errorType. Two families only, so a reader of a definition can tell the policy from the name:
 *
 * - `Retryable.*`: transient (contention, throttling); retry with backoff.
 * - `Terminal.*`: retrying cannot help (bad input, tampering, precondition no longer holds);
 *   catch into the rollback or the DLQ.
 */
export abstract class FleetwardenError extends Error {
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export class RetryableError extends FleetwardenError {
  override name = 'Retryable.Error';
  readonly retryable = true;
}

export class TerminalError extends FleetwardenError {
  override name = 'Terminal.Error';
  readonly retryable = false;
}

/** Input failed its zod schema. The message names every bad field. */
export class InvalidInputError extends TerminalError {
  override name = 'Terminal.InvalidInput';
}

/** process.env failed the function's environment schema: a deployment bug. */
export class InvalidEnvironmentError extends TerminalError {
  override name = 'Terminal.InvalidEnvironment';
}

/** An account the config does not list (nor Organizations tags, where enabled): its environment class, and so what may be done there, is unknown. */
export class UnknownAccountError extends TerminalError {
  override name = 'Terminal.UnknownAccount';
}

/** A message that is not an event this consumer understands (another source or detail-type): parked, never retried. */
export class UnknownEventError extends TerminalError {
  override name = 'Terminal.UnknownEvent';
}

/** A message that claims to be an event this consumer understands but does not fit its schema (or is not JSON). */
export class MalformedEventError extends TerminalError {
  override name = 'Terminal.MalformedEvent';
}

/** Another writer won the race for the next ledger sequence number too many times in a row. */
export class LedgerContentionError extends RetryableError {
  override name = 'Retryable.LedgerContention';
}

/** The ledger failed verification; nothing may be appended or digested on top of it. */
export class LedgerTamperedError extends TerminalError {
  override name = 'Terminal.LedgerTampered';
}

/** Names the state machines retry; the CDK constructs import this list. */
export const RETRYABLE_ERROR_NAMES = ['Retryable.Error', 'Retryable.LedgerContention', 'Retryable.PoolRiskConflict', 'Retryable.KubernetesUnavailable', 'Retryable.FlagConflict'] as const;

export function isRetryable(error: unknown): boolean {
  return error instanceof FleetwardenError ? error.retryable : false;
}

/**
 * The readable part of a Step Functions error Cause: a Lambda task's Cause is Lambda's
 * `{ "errorType", "errorMessage" }` JSON, whose message is the reason; anything else as it is.
 */
export function causeMessage(cause: string | undefined): string {
  try {
    const parsed = JSON.parse(cause ?? '') as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string') return parsed.errorMessage;
  } catch {
    // not Lambda's shape
  }
  return cause ?? '';
}
