import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../functions/ledger/canonical';
import { GENESIS_HASH, type LedgerDraft, LedgerDraftSchema, type LedgerEntry, entryHash, seal, verifyChain } from '../../functions/ledger/chain';

/** JSON without a "__proto__" key, which the draft schema refuses (see the test below). */
const hasProtoKey = (v: unknown): boolean =>
  Array.isArray(v) ? v.some(hasProtoKey) : v !== null && typeof v === 'object' ? Object.keys(v).includes('__proto__') || Object.values(v).some(hasProtoKey) : false;
const jsonArb = fc.jsonValue({ maxDepth: 2 }).filter((v) => !hasProtoKey(v));

const draftArb: fc.Arbitrary<LedgerDraft> = fc.record({
  actor: fc.constantFrom('interruption-handler', 'swap-workflow', 'enforcer'),
  action: fc.constantFrom('pool.quarantined', 'instance.flagged', 'swap.step-completed'),
  subject: fc.string({ minLength: 1, maxLength: 20 }),
  reason: fc.string({ minLength: 1, maxLength: 40 }),
  eventId: fc.uuid(),
  before: fc.option(jsonArb, { nil: undefined }),
  after: fc.option(jsonArb, { nil: undefined }),
});

function buildChain(drafts: LedgerDraft[]): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  drafts.forEach((draft, i) => {
    const tip = entries.at(-1);
    entries.push(seal('fleet', draft, tip && { seq: tip.seq, hash: tip.hash }, new Date(Date.UTC(2026, 10, 22, 0, 0, i))));
  });
  return entries;
}

/** JSON round trip, as entries come back from storage (drops undefined, -0 becomes 0). */
const stored = (entries: LedgerEntry[]) => JSON.parse(JSON.stringify(entries)) as Record<string, unknown>[];

describe('canonical JSON', () => {
  it('encodes equal values to the same bytes whatever the key order', () => {
    expect(canonicalJson({ b: 1, a: [true, null, 'x'], c: { z: 1, y: undefined } })).toBe('{"a":[true,null,"x"],"b":1,"c":{"z":1}}');
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const shuffled = JSON.parse(JSON.stringify(value));
        expect(canonicalJson(shuffled)).toBe(canonicalJson(value));
      }),
    );
  });

  it('refuses values that have no JSON encoding', () => {
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(/non-finite/);
    expect(() => canonicalJson({ f: () => 1 })).toThrow(/function/);
  });
});

describe('ledger chain', () => {
  it('starts at seq 1 from the genesis hash and links each entry to the one before', () => {
    const [first, second] = buildChain([
      { actor: 'a', action: 'pool.quarantined', subject: 'p', reason: 'r', eventId: 'e1' },
      { actor: 'a', action: 'pool.released', subject: 'p', reason: 'r', eventId: 'e2' },
    ]);
    expect(first).toMatchObject({ seq: 1, prevHash: GENESIS_HASH });
    expect(second).toMatchObject({ seq: 2, prevHash: first!.hash });
    expect(second!.hash).toBe(entryHash(second!));
  });

  it('refuses a draft with a "__proto__" key (it could not be verified after a round trip)', () => {
    const draft = JSON.parse('{"actor":"a","action":"pool.quarantined","subject":"s","reason":"r","eventId":"e","before":{"__proto__":null}}');
    const parsed = LedgerDraftSchema.safeParse(draft);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues[0]!.message).toContain('"__proto__" is not allowed');
  });

  it('verifies every untampered chain, after a storage round trip', () => {
    fc.assert(
      fc.property(fc.array(draftArb, { maxLength: 30 }), (drafts) => {
        const entries = buildChain(drafts);
        const report = verifyChain('fleet', stored(entries), { anchors: entries.length ? [entries.at(-1)!] : [] });
        expect(report.problems).toEqual([]);
        expect(report.entries).toBe(entries.length);
      }),
    );
  });

  type Tamper =
    | { kind: 'modify'; index: number; field: 'actor' | 'reason' | 'subject' | 'at' | 'after'; value: string }
    | { kind: 'delete'; index: number }
    | { kind: 'insert'; index: number; draft: LedgerDraft }
    | { kind: 'swap'; index: number; other: number }
    | { kind: 'truncate'; keep: number };

  const tamperArb = (length: number): fc.Arbitrary<Tamper> =>
    fc.oneof(
      fc.record({
        kind: fc.constant('modify' as const),
        index: fc.nat(length - 1),
        field: fc.constantFrom('actor' as const, 'reason' as const, 'subject' as const, 'at' as const, 'after' as const),
        value: fc.string({ minLength: 1 }),
      }),
      fc.record({ kind: fc.constant('delete' as const), index: fc.nat(length - 1) }),
      fc.record({ kind: fc.constant('insert' as const), index: fc.nat(length - 1), draft: draftArb }),
      fc.record({ kind: fc.constant('swap' as const), index: fc.nat(length - 1), other: fc.nat(length - 1) }),
      fc.record({ kind: fc.constant('truncate' as const), keep: fc.nat(length - 1) }),
    );

  /** Applies a tamper as someone with raw table access could; returns false if it changed nothing. */
  function tamper(entries: Record<string, unknown>[], t: Tamper): boolean {
    switch (t.kind) {
      case 'modify': {
        const entry = entries[t.index]!;
        const value = t.field === 'at' ? new Date(Date.parse(entry.at as string) + 1000).toISOString() : t.value;
        if (canonicalJson(entry[t.field] ?? null) === canonicalJson(value)) return false;
        entry[t.field] = value;
        return true;
      }
      case 'delete':
        entries.splice(t.index, 1);
        return true;
      case 'insert': {
        // A forged entry that takes the place of seq index+1 and renumbers the rest, hashes recomputed.
        const prev = entries[t.index - 1] as LedgerEntry | undefined;
        const forged = seal('fleet', t.draft, prev && { seq: prev.seq, hash: prev.hash }, new Date());
        entries.splice(t.index, 0, forged as unknown as Record<string, unknown>);
        for (let i = t.index + 1; i < entries.length; i++) {
          const e = entries[i] as LedgerEntry;
          e.seq += 1;
          e.hash = entryHash(e);
        }
        return true;
      }
      case 'swap': {
        if (t.index === t.other) return false;
        // Reorder: swap contents but keep positions' sequence numbers.
        const a = entries[t.index]!;
        const b = entries[t.other]!;
        if (canonicalJson({ ...a, seq: 0, prevHash: '', hash: '', at: '' }) === canonicalJson({ ...b, seq: 0, prevHash: '', hash: '', at: '' })) return false;
        [entries[t.index], entries[t.other]] = [{ ...b, seq: a.seq }, { ...a, seq: b.seq }];
        return true;
      }
      case 'truncate':
        entries.length = t.keep;
        return true;
    }
  }

  it('detects any modified, deleted, inserted, reordered or truncated entry', () => {
    fc.assert(
      fc.property(
        fc.array(draftArb, { minLength: 2, maxLength: 20 }).chain((drafts) => fc.tuple(fc.constant(drafts), tamperArb(drafts.length))),
        ([drafts, t]) => {
          const entries = buildChain(drafts);
          const copy = stored(entries);
          fc.pre(tamper(copy, t));
          // The anchor is what the latest signed digest vouches for: the real tip.
          const report = verifyChain('fleet', copy, { anchors: [entries.at(-1)!] });
          expect(report.ok).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('names the kind and position of each problem', () => {
    const entries = buildChain(Array.from({ length: 5 }, (_, i) => ({ actor: 'a', action: 'pool.quarantined', subject: `p${i}`, reason: 'r', eventId: `e${i}` })));
    const modified = stored(entries);
    modified[2]!.reason = 'edited';
    expect(verifyChain('fleet', modified).problems).toEqual([{ seq: 3, kind: 'modified', detail: 'content does not match its hash' }]);

    const deleted = stored(entries).filter((e) => e.seq !== 2);
    expect(verifyChain('fleet', deleted).problems.map((p) => [p.seq, p.kind])).toEqual([
      [2, 'missing'],
      [3, 'broken-link'],
    ]);

    const truncated = stored(entries).slice(0, 3);
    expect(verifyChain('fleet', truncated, { anchors: [entries[4]!] }).problems).toEqual([
      { seq: 4, kind: 'truncated', detail: 'a digest signed entries up to seq 5, the chain ends at 3' },
    ]);
  });

  it('verifies a segment resumed from a digested position', () => {
    const entries = buildChain(Array.from({ length: 6 }, (_, i) => ({ actor: 'a', action: 'pool.quarantined', subject: `p${i}`, reason: 'r', eventId: `e${i}` })));
    const segment = stored(entries).slice(3);
    expect(verifyChain('fleet', segment, { resumeFrom: 4, anchors: [entries[3]!] }).ok).toBe(true);
    expect(verifyChain('fleet', segment, { resumeFrom: 4, anchors: [{ seq: 4, hash: GENESIS_HASH }] }).problems[0]?.kind).toBe('anchor-mismatch');
  });
});
