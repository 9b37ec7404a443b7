import { type ChainTip, type LedgerEntry, type VerifyReport, verifyChain } from './chain';
import { type Digest, type DigestVerifier, digestHash, digestPrefix, digestSignatureValid, latestDigestKey, parseStoredDigest } from './digest';
import { type ScanBreak, type SegmentRef, decompressSegment, parseSegmentKey, scanSegment, segmentEntries, segmentKey, segmentPrefix, sha256Hex } from './segment';

/**
 * Verifies a ledger's archive as an auditor would, with nothing but the archive's objects and
 * the signing key's public half (and, online, the ledger table beside it):
 * - digests: each signature, each link to the digest before it (its hash and signature), no
 *   digest missing between two others, none hidden behind a delete marker;
 * - segments: every segment a digest lists is there with the SHA-256 it lists, together they
 *   cover the chain from seq 1 without a gap or an overlap, and no other segment claims a range;
 *   segments written after the newest digest continue the chain (vouched for by the next one);
 * - entries: every entry's hash recomputed, each seq one more than the last, each linked to the
 *   entry before it, across segments; every digested tip found in the archive unchanged;
 * - table: its chain verified as `verifyLedger` does, and the same entries as the archive where
 *   both hold them (equal hashes at the last common seq of two verified chains mean equal chains).
 * Problems name their kind and the first seq (or object) where it shows.
 */
export type ArchiveProblemKind =
  | 'modified'
  | 'missing'
  | 'inserted'
  | 'out-of-order'
  | 'broken-link'
  | 'malformed'
  | 'truncated'
  | 'anchor-mismatch'
  | 'segment-missing'
  | 'segment-altered'
  | 'segment-unexpected'
  | 'digest-missing'
  | 'digest-forged'
  | 'table-archive-mismatch';

export interface ArchiveProblem {
  /** Where in the chain, or -1 for an object that stands for no seq. */
  seq: number;
  kind: ArchiveProblemKind;
  /** `table`, `archive`, or the object's key. */
  where: string;
  detail: string;
}

/** What verification reads: a bucket, or a directory holding a downloaded copy of it (same keys). */
export interface ArchiveReader {
  /** Every key under the prefix (after `startAfter`, when given), sorted. */
  list(prefix: string, startAfter?: string): Promise<string[]>;
  read(key: string): Promise<Buffer | undefined>;
  /** Keys whose current version is a delete marker (a directory has none). */
  hidden(prefix: string): Promise<string[]>;
}

export interface TableChain {
  entries(fromSeq?: number): AsyncIterable<Record<string, unknown>>;
}

export interface ArchiveProgress {
  segmentsRead: number;
  segments: number;
  entries: number;
}

export interface ArchiveVerifyOptions {
  archive: ArchiveReader;
  verifier: DigestVerifier;
  chain: string;
  /** Online: the ledger table, checked and compared with the archive. */
  table?: TableChain;
  onProgress?: (progress: ArchiveProgress) => void;
}

export interface ArchiveVerification {
  ok: boolean;
  chain: string;
  digests: number;
  segments: { vouched: number; newerThanDigests: number };
  archive: { entries: number; tip: ChainTip | undefined };
  table?: { entries: number; tip: ChainTip | undefined; notYetArchived: number };
  /** Sorted by seq; the first is the first broken point. */
  problems: ArchiveProblem[];
}

interface Planned {
  ref: SegmentRef;
  /** The SHA-256 a digest lists for it; undefined for a segment newer than every digest. */
  vouched?: string;
}

export async function verifyArchive(options: ArchiveVerifyOptions): Promise<ArchiveVerification> {
  const { archive, chain } = options;
  const problems: ArchiveProblem[] = [];
  const digests = await readDigests(options, problems);
  const plan = await planSegments(archive, chain, digests, problems);
  const anchors = new Map(digests.map((d) => [d.toSeq, d.tipHash]));
  const table = options.table ? await readTable(options.table, chain, digests) : undefined;
  let archivedAtTableTip: string | undefined;
  const watched = new Set([...anchors.keys(), ...(table?.report.tip ? [table.report.tip.seq] : [])]);

  let previous: { seq: number; hash?: string } | undefined;
  let entries = 0;
  let tip: ChainTip | undefined;
  const progress = { segmentsRead: 0, segments: plan.length, entries: 0 };
  for (const { ref, vouched } of plan) {
    const where = ref.key;
    // After a gap (reported with the segments), the chain is picked up again where this one starts.
    if (ref.fromSeq !== (previous?.seq ?? 0) + 1) previous = { seq: ref.fromSeq - 1 };
    const bytes = await archive.read(ref.key);
    progress.segmentsRead += 1;
    if (!bytes) {
      problems.push({ seq: ref.fromSeq, kind: 'segment-missing', where, detail: `segment ${ref.fromSeq}..${ref.toSeq} is not in the archive` });
      previous = { seq: ref.toSeq };
      continue;
    }
    const actual = sha256Hex(bytes);
    const intact = actual === (vouched ?? ref.sha256);
    if (!intact) problems.push({ seq: ref.fromSeq, kind: 'segment-altered', where, detail: vouched ? 'its SHA-256 differs from the one the digest lists' : 'its SHA-256 differs from the one its key names' });
    let lines: Buffer;
    try {
      lines = decompressSegment(bytes);
    } catch {
      if (intact) problems.push({ seq: ref.fromSeq, kind: 'segment-altered', where, detail: 'not a zstd segment' });
      previous = { seq: ref.toSeq };
      continue;
    }
    // Bytes a signed digest vouches for were written canonically by the archiver: the fast path.
    // Anything else is read line by line as well, to name what is wrong in it.
    const broken = intact && vouched ? undefined : slowScan(lines, chain);
    const scan = scanSegment(lines, previous, {
      seqs: watched,
      seen: (seq, hash) => {
        if (seq === table?.report.tip?.seq) archivedAtTableTip = hash;
        const anchored = anchors.get(seq);
        if (anchored !== undefined && anchored !== hash) problems.push({ seq, kind: 'anchor-mismatch', where, detail: 'entry differs from the one the digest signed' });
      },
    });
    entries += scan.entries;
    const first = broken ?? scan.broken;
    if (first) problems.push({ ...first, where });
    if (scan.tip) tip = scan.tip;
    if (!first && scan.tip?.seq !== ref.toSeq) problems.push({ seq: (scan.tip?.seq ?? ref.fromSeq - 1) + 1, kind: 'missing', where, detail: `the segment ends before seq ${ref.toSeq}, the end its key names` });
    previous = first || scan.tip?.seq !== ref.toSeq ? { seq: ref.toSeq } : scan.tip;
    progress.entries = entries;
    options.onProgress?.(progress);
  }

  const result: ArchiveVerification = {
    ok: false,
    chain,
    digests: digests.length,
    segments: { vouched: plan.filter((p) => p.vouched).length, newerThanDigests: plan.filter((p) => !p.vouched).length },
    archive: { entries, tip },
    problems,
  };
  if (table) result.table = await compareTable(table, plan, archive, tip, archivedAtTableTip, problems);
  problems.sort((a, b) => (a.seq === -1 ? 0 : a.seq) - (b.seq === -1 ? 0 : b.seq));
  result.ok = problems.length === 0;
  return result;
}

/** Every stored digest of the chain, in order, checked one against the next. */
async function readDigests(options: ArchiveVerifyOptions, problems: ArchiveProblem[]): Promise<Digest[]> {
  const { archive, chain, verifier } = options;
  const latest = latestDigestKey(chain);
  const digests: Digest[] = [];
  for (const key of (await archive.list(digestPrefix(chain))).filter((k) => k !== latest)) {
    const digest = await readDigest(archive, key, problems);
    if (!digest) continue;
    const problem = await digestProblem(key, digest, digests.at(-1), verifier);
    if (problem) problems.push(problem);
    digests.push(digest);
  }
  for (const key of await archive.hidden(digestPrefix(chain))) {
    if (key !== latest) problems.push({ seq: -1, kind: 'digest-missing', where: key, detail: 'the digest is hidden behind a delete marker' });
  }
  return digests;
}

/** A stored digest, or undefined (and a problem) when the object is not one. */
export async function readDigest(archive: ArchiveReader, key: string, problems: ArchiveProblem[]): Promise<Digest | undefined> {
  try {
    return parseStoredDigest(key, (await archive.read(key))?.toString('utf8'));
  } catch {
    problems.push({ seq: -1, kind: 'digest-forged', where: key, detail: 'not a digest' });
    return undefined;
  }
}

/**
 * What is wrong with a stored digest: its signature, then (`linked`: the digest before it is
 * known) that it follows that one, by range, hash and signature; a range skipped is a digest missing.
 */
export async function digestProblem(key: string, digest: Digest, previous: Digest | undefined, verifier: DigestVerifier, linked = true): Promise<ArchiveProblem | undefined> {
  if (!(await digestSignatureValid(digest, verifier))) return { seq: digest.fromSeq, kind: 'digest-forged', where: key, detail: `the digest of seq ${digest.fromSeq}..${digest.toSeq} has an invalid signature` };
  if (!linked) return undefined;
  const due = previous ? previous.toSeq + 1 : 1;
  if (digest.fromSeq > due) return { seq: due, kind: 'digest-missing', where: key, detail: `no digest covers seq ${due}..${digest.fromSeq - 1}` };
  const follows = digest.fromSeq === due && digest.previousDigestHash === (previous ? digestHash(previous) : null) && (digest.version !== 2 || digest.previousSignature === (previous?.signature ?? null));
  return follows ? undefined : { seq: digest.fromSeq, kind: 'digest-forged', where: key, detail: `the digest of seq ${digest.fromSeq}..${digest.toSeq} does not follow the digest before it` };
}

/**
 * The segments to read, in order: those the digests list (each must be there with its hash),
 * then those written since, continuing from the last listed one. Any other segment object
 * claims a range the archive already holds, or leaves a gap.
 */
async function planSegments(archive: ArchiveReader, chain: string, digests: Digest[], problems: ArchiveProblem[]): Promise<Planned[]> {
  const listed = new Map<string, SegmentRef>();
  for (const key of await archive.list(segmentPrefix(chain))) {
    const ref = parseSegmentKey(key, chain);
    if (ref) listed.set(key, ref);
    else problems.push({ seq: -1, kind: 'segment-unexpected', where: key, detail: 'not a segment key' });
  }
  const plan: Planned[] = [];
  let next = 1;
  for (const digest of digests) {
    if (digest.version !== 2) continue;
    for (const s of digest.segments) {
      const key = segmentKey(chain, s.fromSeq, s.toSeq, s.sha256);
      if (s.fromSeq !== next) problems.push({ seq: Math.min(next, s.fromSeq), kind: 'digest-forged', where: key, detail: `a digest lists a segment from seq ${s.fromSeq} where ${next} was due` });
      // A segment object under another key (its hash changed) is found below as unexpected.
      plan.push({ ref: listed.get(key) ?? { key, fromSeq: s.fromSeq, toSeq: s.toSeq, sha256: s.sha256 }, vouched: s.sha256 });
      listed.delete(key);
      next = s.toSeq + 1;
    }
  }
  for (const ref of [...listed.values()].sort((a, b) => a.fromSeq - b.fromSeq)) {
    if (ref.fromSeq === next) {
      plan.push({ ref });
      next = ref.toSeq + 1;
    } else {
      problems.push({ seq: ref.fromSeq, kind: ref.fromSeq < next ? 'segment-unexpected' : 'segment-missing', where: ref.key, detail: ref.fromSeq < next ? `a second segment for seq ${ref.fromSeq}..${ref.toSeq}, which the archive already holds` : `no segment holds seq ${next}..${ref.fromSeq - 1}` });
      if (ref.fromSeq > next) {
        plan.push({ ref });
        next = ref.toSeq + 1;
      }
    }
  }
  return plan;
}

/** The slow path over one segment: every line parsed, canonical, in its chain. Returns the first break. */
export function slowScan(lines: Buffer, chain: string): ScanBreak | undefined {
  const parsed: unknown[] = [];
  for (const line of segmentEntries(lines)) {
    if (!line.entry || !line.canonical) return { seq: typeof line.entry?.seq === 'number' ? line.entry.seq : -1, kind: 'malformed', detail: `line ${line.line} is not a canonical ledger entry${line.error ? `: ${line.error}` : ''}` };
    parsed.push(line.entry);
  }
  const first = parsed[0] as Partial<LedgerEntry> | undefined;
  const report = verifyChain(chain, parsed, { resumeFrom: typeof first?.seq === 'number' ? first.seq : 1 });
  const problem = report.problems[0];
  return problem && problem.kind !== 'truncated' && problem.kind !== 'anchor-mismatch' ? { seq: problem.seq, kind: problem.kind, detail: problem.detail } : undefined;
}

interface TableRead {
  report: VerifyReport;
  hashes: Map<number, string>;
}

/** The table's chain, verified with the digests' anchors as `verifyLedger` does. */
async function readTable(table: TableChain, chain: string, digests: Digest[]): Promise<TableRead> {
  const items: Record<string, unknown>[] = [];
  for await (const item of table.entries(1)) items.push(item);
  const report = verifyChain(chain, items, { anchors: digests.map((d) => ({ seq: d.toSeq, hash: d.tipHash })) });
  const hashes = new Map<number, string>();
  for (const item of items) if (typeof item.seq === 'number' && typeof item.hash === 'string') hashes.set(item.seq, item.hash);
  return { report, hashes };
}

/**
 * Table and archive agree where both hold entries: two verified chains with the same hash at
 * their last common seq hold the same entries up to it. Only when they differ is the archive
 * read again, to name the first seq where they part.
 */
async function compareTable(table: TableRead, plan: Planned[], archive: ArchiveReader, archiveTip: ChainTip | undefined, archivedAtTableTip: string | undefined, problems: ArchiveProblem[]) {
  const { report, hashes } = table;
  for (const p of report.problems) problems.push({ ...p, where: 'table' });
  const tableTip = report.tip;
  const common = Math.min(tableTip?.seq ?? 0, archiveTip?.seq ?? 0);
  const archivedAtCommon = common === archiveTip?.seq ? archiveTip.hash : archivedAtTableTip;
  if (common > 0 && hashes.get(common) !== archivedAtCommon) {
    const archived = new Map<number, string>();
    for (const { ref } of plan) {
      const bytes = await archive.read(ref.key);
      if (!bytes) continue;
      const seqs = new Set(Array.from({ length: ref.toSeq - ref.fromSeq + 1 }, (_, i) => ref.fromSeq + i));
      scanSegment(decompressSegment(bytes), { seq: ref.fromSeq - 1 }, { seqs, seen: (seq, hash) => archived.set(seq, hash) });
    }
    for (let seq = 1; seq <= common; seq++) {
      if (hashes.get(seq) !== archived.get(seq)) {
        problems.push({ seq, kind: 'table-archive-mismatch', where: 'table', detail: `the table's entry at seq ${seq} differs from the archived one` });
        break;
      }
    }
  }
  if ((archiveTip?.seq ?? 0) > (tableTip?.seq ?? 0) && report.problems.every((p) => p.kind !== 'truncated')) {
    problems.push({ seq: (tableTip?.seq ?? 0) + 1, kind: 'truncated', where: 'table', detail: `the archive holds entries up to seq ${archiveTip!.seq}, the table ends at ${tableTip?.seq ?? 0}` });
  }
  return { entries: report.entries, tip: tableTip, notYetArchived: Math.max(0, (tableTip?.seq ?? 0) - (archiveTip?.seq ?? 0)) };
}

/** The first problem, in words an operator reads: what broke, where. */
export function describeProblem(problem: ArchiveProblem): string {
  const what: Record<ArchiveProblemKind, string> = {
    modified: 'modified entry',
    missing: 'deleted entry',
    inserted: 'inserted entry',
    'out-of-order': 'reordered entry',
    'broken-link': 'inserted, replaced or reordered entry',
    malformed: 'unreadable entry',
    truncated: 'truncated chain',
    'anchor-mismatch': 'entry differs from the digest',
    'segment-missing': 'missing segment',
    'segment-altered': 'altered segment',
    'segment-unexpected': 'unexpected segment',
    'digest-missing': 'missing digest',
    'digest-forged': 'forged digest',
    'table-archive-mismatch': 'table and archive disagree',
  };
  return `${what[problem.kind]} at ${problem.seq === -1 ? problem.where : `seq ${problem.seq} (${problem.where})`}: ${problem.detail}`;
}
