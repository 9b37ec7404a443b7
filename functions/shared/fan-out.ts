import type { LedgerWriter } from '../ledger/store';
import type { EventPublisher } from './bus';

/**
 * The account × region fan-out the scheduled workflows (enforcement sweep, waste scan) share:
 * the workflow hands each step a batch of targets, the step works a few of them at once, and a
 * target that fails (AccessDenied on the member role, throttling beyond the SDK's retries, an
 * unknown account) is reported as failed for this run without stopping the others.
 */
export interface Target {
  account: string;
  region: string;
}

export interface TargetFailure extends Target {
  error: string;
}

/** Account-regions of one batch worked at once. */
export const TARGETS_AT_ONCE = 5;

/** Runs `work` for every target, `atOnce` at a time; each failure is captured with its error. */
export async function forEachTarget<T>(targets: readonly Target[], work: (target: Target) => Promise<T>, atOnce = TARGETS_AT_ONCE): Promise<{ results: T[]; failed: TargetFailure[] }> {
  const results: T[] = [];
  const failed: TargetFailure[] = [];
  const queue = [...targets];
  const worker = async () => {
    for (let target = queue.shift(); target; target = queue.shift()) {
      try {
        results.push(await work(target));
      } catch (error) {
        const e = error as Error;
        failed.push({ account: target.account, region: target.region, error: `${e.name}: ${e.message}`.slice(0, 300) });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, queue.length) }, worker));
  return { results, failed };
}

/**
 * A queue that runs writes one at a time. Every transition appends to the one ledger chain, and
 * appenders in parallel only race each other for its tip (each lost race a cancelled
 * transaction, re-read and retried); reads still go on in parallel.
 */
export function serialQueue(): <T>(write: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(write: () => Promise<T>): Promise<T> => {
    const run = tail.then(write, write);
    tail = run.catch(() => undefined);
    return run;
  };
}

/** Records (once per run and target) and announces each account-region a run could not work. */
export async function recordFailedTargets(
  failed: readonly TargetFailure[],
  run: { runId: string; idField: string; action: string; detailType: string; what: string },
  deps: { ledger: LedgerWriter; publisher: EventPublisher; actor: string },
): Promise<void> {
  for (const target of failed) {
    const subject = `${target.account}/${target.region}`;
    const { duplicate } = await deps.ledger.append(
      { actor: deps.actor, action: run.action, subject, reason: `not ${run.what} this run: ${target.error}`, eventId: run.runId },
      { dedupeKey: `${run.runId}#${subject}` },
    );
    if (!duplicate) await deps.publisher.publish([{ detailType: run.detailType, detail: { [run.idField]: run.runId, ...target } }]);
  }
}
