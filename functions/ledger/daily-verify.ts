import { type ArchiveProblem, type ArchiveReader, digestProblem, readDigest, slowScan } from './archive-verify';
import { verifyChain } from './chain';
import { type Digest, type DigestVerifier, digestKey, digestPrefix, latestDigestKey } from './digest';
import { MAX_SEGMENT_ENTRIES, decompressSegment, parseSegmentKey, scanSegment, segmentPrefix, segmentStartPrefix, sha256Hex } from './segment';

/**
 * The scheduled verification of one day's entries (the LedgerVerify function, daily): what a
 * full `ledger verify` checks, for the entries appended since `since` only, so that its cost
 * does not grow with the ledger:
 * - the table: those entries' hashes and links, the first linked to the entry before the window;
 * - the digests written for them (their first seq in the window): signatures, links to each other,
 *   and their tips found unchanged in the table;
 * - the archive: the segments holding them, each with the SHA-256 its key names (and any digest
 *   in the window lists), contiguous, every entry the same as the table's.
 * Entries are sealed with their writer's clock in chain order, so the window starts at the first
 * entry sealed at or after `since`; reading back from the tip stops at the first older one.
 */
export interface DailyVerifyDeps {
  ledger: { newestFirst(): AsyncIterable<Record<string, unknown>> };
  archive: ArchiveReader;
  verifier: DigestVerifier;
}

export interface DailyVerification {
  ok: boolean;
  chain: string;
  since: string;
  /** The window's first and last seq (none when nothing was appended since `since`). */
  fromSeq?: number;
  toSeq?: number;
  entries: number;
  digests: number;
  segments: number;
  /** Entries of the window that no segment holds yet (the archive runs minutes behind). */
  notYetArchived: number;
  problems: ArchiveProblem[];
}

export async function verifyDay(deps: DailyVerifyDeps, chain: string, since: Date): Promise<DailyVerification> {
  const problems: ArchiveProblem[] = [];
  const newest: Record<string, unknown>[] = [];
  for await (const item of deps.ledger.newestFirst()) {
    newest.push(item);
    if (typeof item.at !== 'string' || item.at < since.toISOString()) break; // the entry before the window: its link
  }
  const ascending = newest.reverse();
  const window = ascending.filter((e) => typeof e.at === 'string' && e.at >= since.toISOString());
  const result: DailyVerification = { ok: true, chain, since: since.toISOString(), entries: window.length, digests: 0, segments: 0, notYetArchived: 0, problems };
  if (!window.length) return result;
  const first = window[0]!.seq as number;
  const last = window.at(-1)!.seq as number;
  Object.assign(result, { fromSeq: first, toSeq: last });

  // The table: the window, linked to the entry before it (taken as it stands: an earlier day's check covered it).
  const table = verifyChain(chain, ascending, { resumeFrom: ascending[0]!.seq as number });
  for (const p of table.problems) problems.push({ ...p, where: 'table' });
  const hashes = new Map(window.map((e) => [e.seq as number, e.hash as string]));

  // The digests that start in the window.
  const listed = new Map<string, string>();
  let previous: Digest | undefined;
  for (const key of await deps.archive.list(digestPrefix(chain), digestKey(chain, first - 1))) {
    if (key === latestDigestKey(chain)) continue;
    const digest = await readDigest(deps.archive, key, problems);
    if (!digest) continue;
    result.digests += 1;
    // The window's first digest follows one an earlier day checked: only its signature here.
    const problem = await digestProblem(key, digest, previous, deps.verifier, previous !== undefined);
    if (problem) problems.push(problem);
    const anchored = hashes.get(digest.toSeq);
    if (anchored !== undefined && anchored !== digest.tipHash) problems.push({ seq: digest.toSeq, kind: 'anchor-mismatch', where: 'table', detail: 'entry differs from the one the digest signed' });
    if (digest.version === 2) for (const s of digest.segments) listed.set(`${s.fromSeq}-${s.toSeq}`, s.sha256);
    previous = digest;
  }

  // The segments that hold the window (the one holding its first entry starts at most MAX_SEGMENT_ENTRIES before it).
  let next: number | undefined;
  let archivedTo = first - 1;
  for (const key of await deps.archive.list(segmentPrefix(chain), segmentStartPrefix(chain, Math.max(1, first - MAX_SEGMENT_ENTRIES)))) {
    const ref = parseSegmentKey(key, chain);
    if (!ref) {
      problems.push({ seq: -1, kind: 'segment-unexpected', where: key, detail: 'not a segment key' });
      continue;
    }
    if (ref.toSeq < first) continue;
    if (next !== undefined && ref.fromSeq !== next) {
      problems.push({ seq: Math.min(next, ref.fromSeq), kind: ref.fromSeq < next ? 'segment-unexpected' : 'segment-missing', where: key, detail: ref.fromSeq < next ? `a second segment for seq ${ref.fromSeq}..${ref.toSeq}` : `no segment holds seq ${next}..${ref.fromSeq - 1}` });
    }
    next = ref.toSeq + 1;
    result.segments += 1;
    const bytes = await deps.archive.read(key);
    const vouched = listed.get(`${ref.fromSeq}-${ref.toSeq}`);
    if (!bytes || sha256Hex(bytes) !== ref.sha256 || (vouched !== undefined && vouched !== ref.sha256)) {
      problems.push({ seq: ref.fromSeq, kind: bytes ? 'segment-altered' : 'segment-missing', where: key, detail: bytes ? 'its SHA-256 differs from the one its key names or a digest lists' : 'listed but unreadable' });
      continue;
    }
    const lines = decompressSegment(bytes);
    const broken = slowScan(lines, chain);
    if (broken) problems.push({ ...broken, where: key });
    const seqs = new Set([...hashes.keys()].filter((seq) => seq >= ref.fromSeq && seq <= ref.toSeq));
    scanSegment(lines, { seq: ref.fromSeq - 1 }, {
      seqs,
      seen: (seq, hash) => {
        if (hashes.get(seq) !== hash) problems.push({ seq, kind: 'table-archive-mismatch', where: key, detail: `the table's entry at seq ${seq} differs from the archived one` });
      },
    });
    archivedTo = Math.max(archivedTo, ref.toSeq);
  }
  result.notYetArchived = Math.max(0, last - archivedTo);
  problems.sort((a, b) => a.seq - b.seq);
  result.ok = problems.length === 0;
  return result;
}
