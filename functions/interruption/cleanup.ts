import type { LedgerWriter } from '../ledger/store';
import type { EventPublisher } from '../shared/bus';
import { parsePoolKey } from './pool';
import { PoolRiskConflictError, type TransactionalPoolRiskStore } from './pool-store';
import { expiredQuarantine, isQuarantined } from './risk';

export interface CleanupDeps {
  /** Its conditional put joins the ledger's transaction. */
  pools: TransactionalPoolRiskStore;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  clock: () => Date;
  actor: string;
}

export interface CleanupOutcome {
  released: { pool: string; quarantinedUntil: string }[];
  active: number;
  skippedOnConflict: number;
}

/**
 * Records every quarantine that has ended. Whether a pool is closed never depends on this run
 * (it is decided on read from `quarantinedUntil`); the run makes the end visible: `releasedAt` on
 * the record and its `pool.released` ledger entry, written in one transaction (the record
 * conditional on the version read), then a PoolReleased event. Only a written release is
 * announced: a pool that changed since it was read writes and publishes nothing, and the next run
 * looks at it again. Safe to run twice or concurrently: the ledger entry is deduplicated by pool
 * and end time, the record write is conditional.
 */
export async function releaseEndedQuarantines(triggerId: string, deps: CleanupDeps): Promise<CleanupOutcome> {
  const now = deps.clock();
  const outcome: CleanupOutcome = { released: [], active: 0, skippedOnConflict: 0 };
  for await (const record of deps.pools.all()) {
    if (isQuarantined(record, now)) outcome.active += 1;
    if (!expiredQuarantine(record, now)) continue;
    const until = record.quarantinedUntil!;
    const released = { ...record, releasedAt: now.toISOString(), version: record.version + 1 };
    let duplicate: boolean;
    try {
      ({ duplicate } = await deps.ledger.append(
        {
          actor: deps.actor,
          action: 'pool.released',
          subject: record.pool,
          reason: `quarantine ended at ${until} (${record.quarantineReason ?? 'interruption'})`,
          eventId: triggerId,
          before: { quarantinedUntil: until, quarantineEventId: record.quarantineEventId ?? null },
          after: { releasedAt: released.releasedAt },
        },
        { dedupeKey: `${record.pool}#released#${until}`, alsoWrite: [deps.pools.conditionalPut(released)] },
      ));
    } catch (error) {
      // The pool changed since it was read (a new signal, or a concurrent run): nothing was written.
      if (!(error instanceof PoolRiskConflictError)) throw error;
      outcome.skippedOnConflict += 1;
      continue;
    }
    if (duplicate) {
      // The entry was written before, without the record (a release recorded before the two were
      // one transaction): mark the record only; its PoolReleased went out with that entry.
      try {
        await deps.pools.put(released);
      } catch (error) {
        if (!(error instanceof PoolRiskConflictError)) throw error;
        outcome.skippedOnConflict += 1;
      }
      continue;
    }
    await deps.publisher.publish([
      { detailType: 'PoolReleased', detail: { pool: record.pool, ...parsePoolKey(record.pool), quarantinedUntil: until, quarantineEventId: record.quarantineEventId } },
    ]);
    outcome.released.push({ pool: record.pool, quarantinedUntil: until });
  }
  return outcome;
}
