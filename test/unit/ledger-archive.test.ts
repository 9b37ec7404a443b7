import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DirectoryArchive } from '../../functions/ledger/archive-directory';
import { type ArchiveProblemKind, verifyArchive } from '../../functions/ledger/archive-verify';
import { segmentsToDigest } from '../../functions/ledger/audit';
import type { LedgerDraft, LedgerEntry } from '../../functions/ledger/chain';
import { type Digest, PublicKeyVerifier, digestKey, latestDigestKey, signDigest } from '../../functions/ledger/digest';
import { decompressSegment, encodeSegment, parseSegmentKey, scanSegment, segmentKey, segmentLine } from '../../functions/ledger/segment';
import { type BuiltArchive, LocalKeySigner, buildArchive, sealChain, writeArchive } from '../../local/ledger-archive';

const signer = new LocalKeySigner();
const verifier = new PublicKeyVerifier(signer.publicKeyDer);
const draft = (i: number, extra: Partial<LedgerDraft> = {}): LedgerDraft => ({ actor: 'test', action: 'pool.quarantined', subject: `pool-${i}`, reason: `reason ${i}`, eventId: `event-${i}`, ...extra });
const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The archive laid out in a fresh directory, as `aws s3 sync` would download it. */
function onDisk(objects: Map<string, Buffer>): DirectoryArchive {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-archive-'));
  dirs.push(dir);
  writeArchive(dir, objects);
  return new DirectoryArchive(dir);
}

const verify = (objects: Map<string, Buffer>) => verifyArchive({ archive: onDisk(objects), verifier, chain: 'fleet' });
const segmentKeys = (a: BuiltArchive) => [...a.objects.keys()].filter((k) => k.startsWith('segments/')).sort();

/** A segment's entries as the archiver wrote them, changed by `edit`, re-encoded under the same key. */
function rewriteSegment(objects: Map<string, Buffer>, key: string, edit: (lines: string[]) => string[], rename = false): void {
  const lines = decompressSegment(objects.get(key)!).toString('utf8').split('\n').filter(Boolean);
  const body = Buffer.from(`${edit(lines).join('\n')}\n`);
  const compressed = zstdCompressSync(body);
  objects.delete(key);
  if (!rename) objects.set(key, compressed);
  else {
    const ref = parseSegmentKey(key, 'fleet')!;
    objects.set(segmentKey('fleet', ref.fromSeq, ref.toSeq, createHash('sha256').update(compressed).digest('hex')), compressed);
  }
}

describe('ledger segments', () => {
  it('are keyed by chain, sequence range and the SHA-256 of their bytes, and read back line for line', () => {
    const entries = sealChain('fleet', [draft(1), draft(2, { after: { risk: 0.5, note: 'é "quoted" \\ ,"seq":9' } }), draft(3)]);
    const { ref, body } = encodeSegment('fleet', entries);
    expect(parseSegmentKey(ref.key, 'fleet')).toEqual(ref);
    expect(ref).toMatchObject({ fromSeq: 1, toSeq: 3 });
    expect(ref.key).toMatch(/^segments\/fleet\/000000000001-000000000003-[0-9a-f]{64}\.ndjson\.zst$/);
    const lines = decompressSegment(body);
    expect(lines.toString('utf8')).toBe(entries.map(segmentLine).join(''));
    expect(scanSegment(lines, undefined)).toEqual({ entries: 3, tip: { seq: 3, hash: entries[2]!.hash } });
  });

  it('encode the same entries to the same bytes, so a retried write finds its own key', () => {
    const entries = sealChain('fleet', [draft(1), draft(2)]);
    expect(encodeSegment('fleet', entries)).toEqual(encodeSegment('fleet', entries));
  });

  it('name the first entry that is modified, missing, repeated or out of order, without parsing', () => {
    const entries = sealChain('fleet', [1, 2, 3, 4].map((i) => draft(i)));
    const lines = (list: LedgerEntry[]) => Buffer.from(list.map(segmentLine).join(''));
    const modified = lines(entries).toString().replace('reason 3', 'reason X');
    expect(scanSegment(Buffer.from(modified), undefined).broken).toMatchObject({ seq: 3, kind: 'modified' });
    expect(scanSegment(lines([entries[0]!, entries[2]!, entries[3]!]), undefined).broken).toMatchObject({ seq: 2, kind: 'missing' });
    expect(scanSegment(lines([entries[0]!, entries[1]!, entries[1]!]), undefined).broken).toMatchObject({ seq: 2, kind: 'inserted' });
    expect(scanSegment(lines([entries[0]!, entries[2]!, entries[1]!]), undefined).broken).toMatchObject({ seq: 2, kind: 'missing' });
    expect(scanSegment(lines(entries.slice(1)), { seq: 1, hash: '0'.repeat(64) }).broken).toMatchObject({ seq: 2, kind: 'broken-link' });
  });

  it('take the top-level seq and prevHash even when a value holds look-alike members', () => {
    const tricky = draft(1, { before: { prevHash: 'f'.repeat(64), seq: 99, nested: { ',"seq":': 5 } }, reason: ',"prevHash":"' + 'e'.repeat(64) + '"' });
    const entries = sealChain('fleet', [tricky, draft(2, { after: { seq: 1 } })]);
    expect(scanSegment(Buffer.from(entries.map(segmentLine).join('')), undefined)).toEqual({ entries: 2, tip: { seq: 2, hash: entries[1]!.hash } });
  });
});

describe('segments a digest lists', () => {
  const keys = (ranges: [number, number][]) => ranges.map(([a, b]) => segmentKey('fleet', a, b, 'a'.repeat(64)));

  it('continue the archive without a gap, up to the verified tip', () => {
    expect(segmentsToDigest('fleet', { keys: keys([[6, 9], [1, 5], [10, 12]]) }, 0, 10).map((s) => [s.fromSeq, s.toSeq])).toEqual([
      [1, 5],
      [6, 9],
    ]);
  });

  it('refuse a listing that repeats archived entries, skips some or holds something else', () => {
    expect(() => segmentsToDigest('fleet', { keys: keys([[4, 8]]) }, 5, 10)).toThrow(/already holds up to 5/);
    expect(() => segmentsToDigest('fleet', { keys: keys([[8, 9]]) }, 5, 10)).toThrow(/skips entries 6..7/);
    expect(() => segmentsToDigest('fleet', { keys: ['segments/fleet/notes.txt'] }, 0, 10)).toThrow(/is not a segment/);
  });
});

describe('archive verification (a directory, the public key only)', () => {
  const entries = sealChain('fleet', Array.from({ length: 40 }, (_, i) => draft(i + 1)));
  const build = () => buildArchive('fleet', entries, signer, { segmentSizes: [7, 5], digestEvery: 2, digestTail: true });

  it('finds an untouched archive intact', async () => {
    const archive = await build();
    const report = await verify(archive.objects);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, digests: 4, segments: { vouched: 7, newerThanDigests: 0 }, archive: { entries: 40, tip: { seq: 40, hash: entries[39]!.hash } } });
  });

  it('reports progress as it reads segments', async () => {
    const seen: number[] = [];
    await verifyArchive({ archive: onDisk((await build()).objects), verifier, chain: 'fleet', onProgress: (p) => seen.push(p.entries) });
    expect(seen.at(-1)).toBe(40);
    expect(seen.length).toBe(7);
  });

  it('accepts segments written after the newest digest, and vouches for nothing it has not read', async () => {
    const archive = await buildArchive('fleet', entries, signer, { segmentSizes: [7, 5], digestEvery: 2 });
    const report = await verify(archive.objects);
    expect(report).toMatchObject({ ok: true, segments: { vouched: 6, newerThanDigests: 1 }, archive: { entries: 40 } });
  });

  const tampers: { name: string; kind: ArchiveProblemKind; seq?: number; tamper: (a: BuiltArchive) => void }[] = [
    { name: 'a modified entry (segment re-encoded under its key)', kind: 'segment-altered', seq: 8, tamper: (a) => rewriteSegment(a.objects, segmentKeys(a)[1]!, (l) => l.map((x, i) => (i === 2 ? x.replace('reason 10', 'reason X') : x))) },
    { name: 'a deleted entry (segment renamed to its new hash)', kind: 'segment-missing', seq: 8, tamper: (a) => rewriteSegment(a.objects, segmentKeys(a)[1]!, (l) => l.filter((_, i) => i !== 1), true) },
    { name: 'two entries swapped', kind: 'segment-altered', seq: 1, tamper: (a) => rewriteSegment(a.objects, segmentKeys(a)[0]!, (l) => [l[1]!, l[0]!, ...l.slice(2)]) },
    { name: 'a deleted segment', kind: 'segment-missing', seq: 13, tamper: (a) => a.objects.delete(segmentKeys(a)[2]!) },
    { name: 'a flipped byte in a segment', kind: 'segment-altered', seq: 20, tamper: (a) => { const k = segmentKeys(a)[3]!; const b = Buffer.from(a.objects.get(k)!); b[b.length - 3]! ^= 1; a.objects.set(k, b); } },
    { name: 'a deleted digest', kind: 'digest-missing', seq: 13, tamper: (a) => a.objects.delete(digestKey('fleet', a.digests[1]!.fromSeq)) },
    { name: 'a digest edited without its signature', kind: 'digest-forged', seq: 13, tamper: (a) => { const d = { ...a.digests[1]!, toSeq: 99 }; a.objects.set(digestKey('fleet', d.fromSeq), Buffer.from(JSON.stringify(d))); } },
    { name: 'a truncated archive (its newest segment gone)', kind: 'segment-missing', seq: 37, tamper: (a) => a.objects.delete(segmentKeys(a).at(-1)!) },
  ];

  for (const { name, kind, seq, tamper } of tampers) {
    it(`names ${name} as ${kind}${seq ? ` at seq ${seq}` : ''}`, async () => {
      const archive = await build();
      tamper(archive);
      const report = await verify(archive.objects);
      expect(report.ok).toBe(false);
      expect(report.problems.map((p) => p.kind)).toContain(kind);
      if (seq) expect(report.problems[0]!.seq).toBe(seq);
    });
  }

  it('refuses a digest forged with another key even when its content is right', async () => {
    const archive = await build();
    const other = new LocalKeySigner();
    const { signature: _s, ...unsigned } = archive.digests[0]!;
    const forged = await signDigest(unsigned as Omit<Extract<Digest, { version: 2 }>, 'signature'>, other);
    archive.objects.set(digestKey('fleet', 1), Buffer.from(JSON.stringify(forged)));
    const report = await verify(archive.objects);
    expect(report.problems[0]).toMatchObject({ kind: 'digest-forged', seq: 1 });
  });

  it('never reports an untouched archive broken, and always reports a single tamper (random ledgers, cuts and tampers)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 60 }),
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 3 }),
        fc.option(fc.tuple(fc.constantFrom('edit', 'drop-line', 'drop-segment', 'drop-digest', 'flip'), fc.nat(), fc.nat()), { nil: undefined }),
        async (length, segmentSizes, digestEvery, tamper) => {
          const chain = sealChain('fleet', Array.from({ length }, (_, i) => draft(i + 1, { after: { i } })));
          const archive = await buildArchive('fleet', chain, signer, { segmentSizes, digestEvery, digestTail: true });
          const keys = segmentKeys(archive);
          if (tamper) {
            const [what, a, b] = tamper;
            const key = keys[a % keys.length]!;
            if (what === 'edit') rewriteSegment(archive.objects, key, (l) => l.map((x, i) => (i === b % l.length ? x.replace(/"i":(\d+)/, (_m, n) => `"i":${Number(n) + 1}`) : x)));
            if (what === 'drop-line') rewriteSegment(archive.objects, key, (l) => (l.length > 1 ? l.filter((_, i) => i !== b % l.length) : l.map((x) => x.replace('"i":', '"j":'))), b % 2 === 0);
            if (what === 'drop-segment') archive.objects.delete(key);
            if (what === 'drop-digest') archive.objects.delete(digestKey('fleet', archive.digests[b % archive.digests.length]!.fromSeq));
            if (what === 'flip') {
              const bytes = Buffer.from(archive.objects.get(key)!);
              bytes[b % bytes.length]! ^= 1 << a % 8;
              archive.objects.set(key, bytes);
            }
            if (what === 'drop-digest') archive.objects.delete(latestDigestKey('fleet'));
          }
          const report = await verify(archive.objects);
          // Dropping the newest digest alone leaves an archive whose newest segments nobody vouches for yet: still a valid archive.
          const newestDigestOnly = tamper?.[0] === 'drop-digest' && tamper[2] % archive.digests.length === archive.digests.length - 1;
          expect(report.ok).toBe(!tamper || newestDigestOnly);
        },
      ),
      { numRuns: 150 },
    );
  });
});
