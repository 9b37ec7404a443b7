import { hash } from 'node:crypto';
import { zstdCompressSync, zstdDecompressSync, constants as zlib } from 'node:zlib';
import { canonicalJson } from './canonical';
import { type LedgerEntry, GENESIS_HASH } from './chain';

/**
 * A segment is a contiguous run of one chain's entries, archived as one S3 object that is never
 * rewritten. Its key names the chain, the sequence range and the SHA-256 of its bytes:
 *
 *   segments/<chain>/<fromSeq, 12 digits>-<toSeq, 12 digits>-<sha256 hex>.ndjson.zst
 *
 * so a listing alone tells a digest what it vouches for (no object is read to sign), keys list
 * in sequence order, and a second object for a range that is already archived cannot hide: it
 * has a different key.
 *
 * The body is zstd-compressed lines, one per entry, each `<hash> <content>\n`: the entry's hash
 * (64 hex digits), one space, and the canonical JSON of everything else in the entry, which is
 * exactly the bytes the hash is computed over. Verifying an entry is one SHA-256 over a slice of
 * the segment, with no parse and no re-encoding; zstd decompresses several times faster than
 * gzip, which is what lets a million entries verify in about a second on one core.
 */
export const SEGMENT_PREFIX = 'segments/';
export const segmentPrefix = (chain: string) => `${SEGMENT_PREFIX}${chain}/`;
const pad = (seq: number) => String(seq).padStart(12, '0');
/** The key prefix every segment that starts at `fromSeq` shares (whatever its end and hash). */
export const segmentStartPrefix = (chain: string, fromSeq: number) => `${segmentPrefix(chain)}${pad(fromSeq)}-`;
export const segmentKey = (chain: string, fromSeq: number, toSeq: number, sha256: string) => `${segmentStartPrefix(chain, fromSeq)}${pad(toSeq)}-${sha256}.ndjson.zst`;

/** The most entries one segment holds: about 600 KB before compression at realistic entry sizes. */
export const MAX_SEGMENT_ENTRIES = 1000;

/**
 * What a segment's key says about it.
 * @example { "key": "segments/fleet/000000000001-000000000250-9f2c….ndjson.zst", "fromSeq": 1, "toSeq": 250, "sha256": "9f2c…" }
 */
export interface SegmentRef {
  key: string;
  fromSeq: number;
  toSeq: number;
  sha256: string;
}

const KEY_PATTERN = /^segments\/([a-z0-9-]+)\/(\d{12})-(\d{12})-([0-9a-f]{64})\.ndjson\.zst$/;

/** The segment a key names, or undefined when the key is not a segment key of this chain. */
export function parseSegmentKey(key: string, chain: string): SegmentRef | undefined {
  const m = KEY_PATTERN.exec(key);
  if (!m || m[1] !== chain) return undefined;
  const fromSeq = Number(m[2]);
  const toSeq = Number(m[3]);
  return fromSeq >= 1 && toSeq >= fromSeq ? { key, fromSeq, toSeq, sha256: m[4]! } : undefined;
}

export const sha256Hex = (bytes: Uint8Array): string => hash('sha256', bytes, 'hex');

/** The line of one entry: its hash, a space, the canonical JSON its hash is computed over. */
export function segmentLine(entry: LedgerEntry): string {
  const { hash: entryHash, ...content } = entry;
  return `${entryHash} ${canonicalJson(content)}\n`;
}

/**
 * Encodes entries (contiguous, in order) as a segment. Deterministic for the same entries and
 * zstd version: a retried write of the same range produces the same key.
 */
export function encodeSegment(chain: string, entries: readonly LedgerEntry[]): { ref: SegmentRef; body: Buffer } {
  const first = entries[0];
  const last = entries.at(-1);
  if (!first || !last) throw new RangeError('a segment holds at least one entry');
  const body = zstdCompressSync(Buffer.from(entries.map(segmentLine).join('')), { params: { [zlib.ZSTD_c_compressionLevel]: 6 } });
  const sha256 = sha256Hex(body);
  return { ref: { key: segmentKey(chain, first.seq, last.seq, sha256), fromSeq: first.seq, toSeq: last.seq, sha256 }, body };
}

/** Output chunks of 1 MiB: a segment decompresses in one or two (the 16 KiB default takes dozens, and twice the time). */
export const decompressSegment = (body: Uint8Array): Buffer => zstdDecompressSync(body, { chunkSize: 1 << 20 });

/** The entries of a segment's decompressed lines, parsed (the slow path: for reading, and to name what is wrong). */
export function* segmentEntries(lines: Buffer): Generator<{ line: number; entry: Record<string, unknown> | undefined; canonical: boolean; error?: string }> {
  let start = 0;
  let line = 0;
  while (start < lines.length) {
    let end = lines.indexOf(0x0a, start);
    if (end === -1) end = lines.length;
    line += 1;
    const text = lines.toString('utf8', start, end);
    start = end + 1;
    const space = text.indexOf(' ');
    try {
      const content = text.slice(space + 1);
      const parsed = JSON.parse(content) as Record<string, unknown>;
      if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
      yield { line, entry: { ...parsed, hash: text.slice(0, space) }, canonical: space === 64 && canonicalJson(parsed) === content };
    } catch (error) {
      yield { line, entry: undefined, canonical: false, error: (error as Error).message };
    }
  }
}

/** Where a fast scan of a segment's lines stopped believing them. */
export interface ScanBreak {
  /** The seq the break is at (the entry that should have been there when it cannot be read). */
  seq: number;
  kind: 'modified' | 'missing' | 'inserted' | 'out-of-order' | 'broken-link' | 'malformed';
  detail: string;
}

export interface ScanResult {
  entries: number;
  /** The last entry read: where the next segment's first entry must link to. */
  tip: { seq: number; hash: string } | undefined;
  /** The first break, if any: scanning stops there (what follows is reported by the slow path). */
  broken?: ScanBreak;
}

const PREV = Buffer.from(',"prevHash":"');
const SEQ = Buffer.from(',"seq":');

/** Seqs whose entry hashes a caller wants to see as a scan passes them (digest tips, the table's tip). */
export interface ScanWatch {
  seqs: ReadonlySet<number>;
  seen(seq: number, hashHex: string): void;
}

/**
 * The fast path over a segment whose bytes a signed digest vouches for: every entry's hash
 * recomputed over its content slice, its seq one more than the last, its prevHash the last
 * entry's hash. The top-level `prevHash` and `seq` are the last occurrences of those members in
 * the line: canonical JSON sorts keys, and only strings and a number (`reason`, `seq`,
 * `subject`) follow them at the top level, in which an unescaped quote cannot occur. Lines the
 * archiver did not write canonically would be caught by the segment's hash in the digest; a
 * segment no digest vouches for yet goes through `segmentEntries` as well.
 *
 * Nothing is parsed and, but for the computed hash, nothing allocated per entry: hashes and
 * links are compared byte for byte in place.
 */
export function scanSegment(lines: Buffer, previous: { seq: number; hash?: string } | undefined, watch?: ScanWatch): ScanResult {
  let prevSeq = previous?.seq ?? 0;
  // The previous entry's hash: a string across segments (undefined when the segment before
  // could not be read: the first entry's own link is taken as it stands), then its line's offset.
  const firstLink = previous ? previous.hash : GENESIS_HASH;
  let prevStart = -1;
  let count = 0;
  let start = 0;
  const n = lines.length;
  const tipAt = (): ScanResult['tip'] => (count ? { seq: prevSeq, hash: lines.toString('latin1', prevStart, prevStart + 64) } : undefined);
  const stop = (broken: ScanBreak): ScanResult => ({ entries: count, tip: tipAt(), broken });
  while (start < n) {
    let end = lines.indexOf(0x0a, start);
    if (end === -1) end = n;
    const expectedSeq = prevSeq + 1;
    if (end - start <= 65 || lines[start + 64] !== 0x20) return stop({ seq: expectedSeq, kind: 'malformed', detail: 'not a segment line' });
    const computed = hash('sha256', lines.subarray(start + 65, end), 'hex');
    if (!sameHex(computed, lines, start)) return stop({ seq: expectedSeq, kind: 'modified', detail: 'content does not match its hash' });
    const s = lines.lastIndexOf(SEQ, end);
    let seq = 0;
    for (let i = s + SEQ.length; s > start && i < end; i++) {
      const c = lines[i]!;
      if (c < 0x30 || c > 0x39) break;
      seq = seq * 10 + (c - 0x30);
    }
    if (seq > expectedSeq) return stop({ seq: expectedSeq, kind: 'missing', detail: `entries ${expectedSeq}${seq - 1 > expectedSeq ? `..${seq - 1}` : ''} are missing` });
    if (seq < expectedSeq) return stop({ seq, kind: seq === prevSeq ? 'inserted' : 'out-of-order', detail: seq === prevSeq ? `a second entry at seq ${seq}` : `seq ${seq} follows seq ${prevSeq}` });
    const p = lines.lastIndexOf(PREV, end) + PREV.length;
    const linked = p > start + PREV.length && (prevStart >= 0 ? sameBytes(lines, prevStart, p) : firstLink === undefined || sameHex(firstLink, lines, p));
    if (!linked) return stop({ seq, kind: 'broken-link', detail: `prevHash does not match ${prevSeq ? `seq ${prevSeq}` : 'genesis'}` });
    if (watch?.seqs.has(seq)) watch.seen(seq, computed);
    prevSeq = seq;
    prevStart = start;
    count += 1;
    start = end + 1;
  }
  return { entries: count, tip: tipAt() };
}

/**
 * 64 hex digits compared in place, a byte at a time: for so few bytes a plain loop is several
 * times cheaper than a call into Buffer's native compare or a string made to compare with.
 */
function sameHex(hex: string, bytes: Buffer, at: number): boolean {
  for (let k = 0; k < 64; k++) if (hex.charCodeAt(k) !== bytes[at + k]) return false;
  return true;
}

function sameBytes(bytes: Buffer, a: number, b: number): boolean {
  for (let k = 0; k < 64; k++) if (bytes[a + k] !== bytes[b + k]) return false;
  return true;
}
