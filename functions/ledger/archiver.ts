import { LedgerTamperedError, RetryableError } from '../shared/errors';
import { GENESIS_HASH, type LedgerEntry, verifyChain } from './chain';
import { summarize } from './audit';
import { MAX_SEGMENT_ENTRIES, type SegmentRef, encodeSegment } from './segment';

/**
 * Archives a chain into segments, in sequence order, one segment at a time, never a range twice.
 *
 * The archive's position (`archivedTo`, and the hash of that entry) is one small item outside the
 * ledger table (the ledger's own roles may not update anything there). Writing a segment is:
 * 1. claim it: the position, conditional on its version, records the range about to be written;
 * 2. put the segment object, refused by S3 if the key exists (a retry of the same bytes);
 * 3. advance the position past it.
 * A writer that dies after 1 leaves the claim; whoever comes next finishes exactly that range
 * (adopting the object if step 2 happened, writing it otherwise), so a range is never archived
 * under two keys and a segment object is never half-written (S3 puts are atomic). Two writers
 * racing for the same range: one claim wins, the other re-reads and goes on from there.
 *
 * Entries come from the stream when it holds every one of the range; otherwise (a gap: the
 * archiver was stopped, the stream's 24 hours passed, a batch arrived out of order) they are read
 * from the table. Every entry is verified before it is archived: an archive must never carry an
 * entry that does not chain to the one before it.
 */
export interface ArchivePosition {
  archivedTo: number;
  tipHash: string;
  /** The segment claimed and perhaps written, not yet past the position. */
  pending?: { fromSeq: number; toSeq: number; tipHash: string };
  version: number;
}

export interface PositionStore {
  read(chain: string): Promise<ArchivePosition | undefined>;
  /** Writes `next` if the stored version is still `expected` (0: no item yet); false when another writer moved it first. */
  write(chain: string, next: ArchivePosition, expected: number): Promise<boolean>;
}

export interface SegmentStore {
  /** Puts a segment unless its key exists (then it holds these very bytes: the key names their hash). */
  put(ref: SegmentRef, body: Buffer): Promise<'written' | 'exists'>;
  /** The segment of this chain that starts at `fromSeq`, if one was written. */
  startingAt(chain: string, fromSeq: number): Promise<SegmentRef | undefined>;
}

export interface ArchiveEntrySource {
  /** The chain's entries from `fromSeq` to `toSeq`, in order, read consistently. */
  range(chain: string, fromSeq: number, toSeq: number): Promise<unknown[]>;
  /** The chain's newest seq (0 when empty). */
  tipSeq(chain: string): Promise<number>;
}

export interface ArchiverDeps {
  positions: PositionStore;
  segments: SegmentStore;
  entries: ArchiveEntrySource;
  maxSegmentEntries?: number;
}

export interface ArchiveRun {
  chain: string;
  segments: SegmentRef[];
  /** Entries read from the table because the stream did not hold them. */
  filledFromTable: number;
  /** Claims lost to another writer (it archived that range). */
  lostRaces: number;
  archivedTo: number;
}

const START: ArchivePosition = { archivedTo: 0, tipHash: GENESIS_HASH, version: 0 };
const MAX_LOST_RACES = 20;

/**
 * Archives `chain` up to `upTo` (the newest seq the stream showed, or the table's tip for a
 * catch-up run), using `offered` (stream entries: any order, duplicates allowed) where they
 * cover a whole segment's range.
 */
export async function archiveChain(deps: ArchiverDeps, chain: string, offered: readonly LedgerEntry[], upTo?: number): Promise<ArchiveRun> {
  const bySeq = new Map(offered.filter((e) => e.chain === chain).map((e) => [e.seq, e]));
  const target = upTo ?? (await deps.entries.tipSeq(chain));
  const max = deps.maxSegmentEntries ?? MAX_SEGMENT_ENTRIES;
  const run: ArchiveRun = { chain, segments: [], filledFromTable: 0, lostRaces: 0, archivedTo: 0 };
  for (;;) {
    const position = (await deps.positions.read(chain)) ?? START;
    run.archivedTo = position.archivedTo;
    if (position.pending) {
      await finishPending(deps, chain, position, run);
      continue;
    }
    if (position.archivedTo >= target) return run;
    const fromSeq = position.archivedTo + 1;
    const toSeq = Math.min(target, fromSeq + max - 1);
    const entries = await entriesFor(deps, chain, fromSeq, toSeq, bySeq, position.tipHash, run);
    const last = entries.at(-1)!;
    const claimed = { ...position, pending: { fromSeq, toSeq, tipHash: last.hash }, version: position.version + 1 };
    if (!(await deps.positions.write(chain, claimed, position.version))) {
      if (++run.lostRaces > MAX_LOST_RACES) throw new RetryableError(`lost ${run.lostRaces} races for the archive position of chain ${chain}`);
      continue;
    }
    const { ref, body } = encodeSegment(chain, entries);
    await deps.segments.put(ref, body);
    await advance(deps, chain, claimed, ref, run);
  }
}

/** The verified entries fromSeq..toSeq, linked to `previousHash`: from the stream when it has all of them, else from the table. */
async function entriesFor(deps: ArchiverDeps, chain: string, fromSeq: number, toSeq: number, bySeq: Map<number, LedgerEntry>, previousHash: string, run: ArchiveRun): Promise<LedgerEntry[]> {
  const fromStream: LedgerEntry[] = [];
  for (let seq = fromSeq; seq <= toSeq && bySeq.has(seq); seq++) fromStream.push(bySeq.get(seq)!);
  let entries: unknown[] = fromStream;
  if (fromStream.length < toSeq - fromSeq + 1) {
    entries = await deps.entries.range(chain, fromSeq, toSeq);
    run.filledFromTable += entries.length;
  }
  const report = verifyChain(chain, entries, { resumeFrom: fromSeq });
  const first = entries[0] as Partial<LedgerEntry> | undefined;
  if (!report.ok) throw new LedgerTamperedError(`chain ${chain} fails verification where the archive goes on: ${summarize(report.problems)}`);
  if (report.tip?.seq !== toSeq) throw new LedgerTamperedError(`chain ${chain} ends at seq ${report.tip?.seq ?? fromSeq - 1} in the table, but seq ${toSeq} was appended: entries were deleted`);
  if (first?.prevHash !== previousHash) throw new LedgerTamperedError(`seq ${fromSeq} of chain ${chain} does not link to seq ${fromSeq - 1}, the archive's last entry`);
  return entries as LedgerEntry[];
}

/** A claim a writer left: adopt the segment it wrote, or write that very range now. */
async function finishPending(deps: ArchiverDeps, chain: string, position: ArchivePosition, run: ArchiveRun): Promise<void> {
  const pending = position.pending!;
  let ref = await deps.segments.startingAt(chain, pending.fromSeq);
  if (ref && ref.toSeq !== pending.toSeq) throw new LedgerTamperedError(`segment ${ref.key} does not end at seq ${pending.toSeq}, the range claimed for it`);
  if (!ref) {
    const entries = await entriesFor(deps, chain, pending.fromSeq, pending.toSeq, new Map(), position.tipHash, run);
    const encoded = encodeSegment(chain, entries);
    await deps.segments.put(encoded.ref, encoded.body);
    ref = encoded.ref;
  }
  await advance(deps, chain, position, ref, run);
}

async function advance(deps: ArchiverDeps, chain: string, claimed: ArchivePosition, ref: SegmentRef, run: ArchiveRun): Promise<void> {
  const next: ArchivePosition = { archivedTo: ref.toSeq, tipHash: claimed.pending!.tipHash, version: claimed.version + 1 };
  // Lost: another writer finished this claim first (it advanced past the same segment).
  if (await deps.positions.write(chain, next, claimed.version)) {
    run.segments.push(ref);
    run.archivedTo = ref.toSeq;
  }
}

/**
 * A change the ledger table's stream carries, unmarshalled. Only INSERTs of entries are archived;
 * an entry MODIFIED or REMOVED was rewritten out of band (no Fleetwarden role may), which the
 * archive already holds the original of: it is counted and reported, never archived.
 */
export interface LedgerChange {
  eventName: 'INSERT' | 'MODIFY' | 'REMOVE';
  keys: { chain?: unknown; seq?: unknown };
  newImage?: Record<string, unknown>;
}

/** An entry's key: a chain name without '#' (dedupe markers are `<chain>#dedupe#…`, seq 0) and a seq from 1. */
const isEntryKey = (keys: LedgerChange['keys']): keys is { chain: string; seq: number } =>
  typeof keys.chain === 'string' && !keys.chain.includes('#') && typeof keys.seq === 'number' && keys.seq >= 1;

export interface StreamArchiveResult {
  runs: ArchiveRun[];
  /** Entries changed or removed in the table after they were written: `chain/seq`. */
  rewritten: string[];
}

/** Archives every chain a batch of stream changes appended to, each up to the newest seq the batch holds. */
export async function archiveChanges(deps: ArchiverDeps, changes: readonly LedgerChange[]): Promise<StreamArchiveResult> {
  const appended = new Map<string, LedgerEntry[]>();
  const rewritten: string[] = [];
  for (const change of changes) {
    if (!isEntryKey(change.keys)) continue;
    if (change.eventName !== 'INSERT') rewritten.push(`${change.keys.chain}/${change.keys.seq}`);
    else if (change.newImage) (appended.get(change.keys.chain) ?? appended.set(change.keys.chain, []).get(change.keys.chain)!).push(change.newImage as LedgerEntry);
  }
  const runs: ArchiveRun[] = [];
  for (const [chain, entries] of appended) runs.push(await archiveChain(deps, chain, entries, Math.max(...entries.map((e) => e.seq))));
  return { runs, rewritten };
}
