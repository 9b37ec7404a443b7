import type { z } from 'zod';
import { type ChainTip, type LedgerDraft, type LedgerEntry, LedgerEntrySchema, entryHash, seal } from './chain';

/**
 * An entry placed at a position of its chain but not written yet: everything of the entry but its
 * hash, which is computed from the rest (so a pending entry is the exact entry it will be).
 *
 * A writer that cannot write its own item and the entry in one transaction stores the pending
 * entry in its item first (an outbox: the pool record, a dedupe marker), then writes the entry at
 * that position with a condition that the key is new. Whoever later finds the pending entry
 * settles it (DynamoLedger.settle): the entry at its seq is either this very entry (written), or
 * absent (write it now), or another writer's (the pending entry was displaced and never written:
 * it is placed again at the new tip, in the item that holds it, before it is written).
 */
export const PendingEntrySchema = LedgerEntrySchema.omit({ hash: true });
export type PendingEntry = z.infer<typeof PendingEntrySchema>;

/** Places a draft right after `tip`. Pure: time is passed in. */
export function placeDraft(chain: string, draft: LedgerDraft, tip: ChainTip | undefined, at: Date): PendingEntry {
  const { hash: _hash, ...pending } = seal(chain, draft, tip, at);
  return pending;
}

/** The entry a pending entry becomes: the same content, with its hash. */
export function sealPending(pending: PendingEntry): LedgerEntry {
  return { ...pending, hash: entryHash(pending) };
}

/** The draft a pending entry was placed from (to place it again elsewhere). */
export function draftOf(pending: PendingEntry): LedgerDraft {
  const { chain: _c, seq: _s, at: _a, prevHash: _p, ...draft } = pending;
  return draft;
}
