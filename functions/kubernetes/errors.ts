import { RetryableError, TerminalError } from '../shared/errors';

/** The API server did not answer, or answered 5xx: try again. */
export class KubernetesUnavailableError extends RetryableError {
  override name = 'Retryable.KubernetesUnavailable';
}

/** 403: the identity's RBAC is wrong (see manifests/fleetwarden-rbac.yaml); retrying cannot help. */
export class KubernetesForbiddenError extends TerminalError {
  override name = 'Terminal.KubernetesForbidden';
}

/** The cluster is not one Fleetwarden is configured for, or cannot be described. */
export class UnknownClusterError extends TerminalError {
  override name = 'Terminal.UnknownCluster';
}

/** The status code of a @kubernetes/client-node ApiException (or of anything shaped like one). */
export function statusOf(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** Names a failed API call after what a caller should do with it. */
export function classify(error: unknown, what: string): Error {
  // Already named (e.g. renewing the connection after a 401 failed): keep what it says.
  if (error instanceof RetryableError || error instanceof TerminalError) return error;
  const status = statusOf(error);
  const body = (error as { body?: unknown } | undefined)?.body;
  const detail = typeof body === 'string' ? body.slice(0, 300) : body ? JSON.stringify(body).slice(0, 300) : (error as Error)?.message;
  // 401 is an expired or not yet accepted token (the connector renews and retries once first):
  // a redelivery with a fresh token can succeed, so it is retryable, never a reason to park the event.
  if (status === 403) return new KubernetesForbiddenError(`${what}: HTTP ${status}: ${detail}`, { cause: error });
  return new KubernetesUnavailableError(`${what}: ${status ? `HTTP ${status}: ` : ''}${detail}`, { cause: error });
}
