import type { LedgerWriter } from '../ledger/store';
import type { EventPublisher } from './ingest';
import { parsePoolKey } from './pool';
import { PoolRiskConflictError, type PoolRiskStore } from './pool-store';
import { expiredQuarantine, isQuarantined } from './risk';

export interface CleanupDeps {
  pools: PoolRiskStore;
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
 * (it is decided on read from `quarantinedUntil`); the run makes the end visible: a ledger entry,
 * a PoolReleased event, and `releasedAt` on the record. Safe to run twice or concurrently: the
 * ledger entry is deduplicated by pool and end time, the record write is conditional.
 */
export async function releaseEndedQuarantines(triggerId: string, deps: CleanupDeps): Promise<CleanupOutcome> {
  const now = deps.clock();
  const outcome: CleanupOutcome = { released: [], active: 0, skippedOnConflict: 0 };
  for await (const record of deps.pools.all()) {
    if (isQuarantined(record, now)) outcome.active += 1;
    if (!expiredQuarantine(record, now)) continue;
    const until = record.quarantinedUntil!;
    await deps.ledger.append(
      {
        actor: deps.actor,
        action: 'pool.released',
        subject: record.pool,
        reason: `quarantine ended at ${until} (${record.quarantineReason ?? 'interruption'})`,
        eventId: triggerId,
        before: { quarantinedUntil: until, quarantineEventId: record.quarantineEventId ?? null },
        after: { releasedAt: now.toISOString() },
      },
      { dedupeKey: `${record.pool}#released#${until}` },
    );
    await deps.publisher.publish([
      { detailType: 'PoolReleased', detail: { pool: record.pool, ...parsePoolKey(record.pool), quarantinedUntil: until, quarantineEventId: record.quarantineEventId } },
    ]);
    try {
      await deps.pools.put({ ...record, releasedAt: now.toISOString(), version: record.version + 1 });
      outcome.released.push({ pool: record.pool, quarantinedUntil: until });
    } catch (error) {
      // A new interruption just updated this pool; the next run looks at it again.
      if (!(error instanceof PoolRiskConflictError)) throw error;
      outcome.skippedOnConflict += 1;
    }
  }
  return outcome;
}
