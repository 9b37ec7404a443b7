import { createHash } from 'node:crypto';
import * as z from 'zod';
import { canonicalJson } from './canonical';

/** The hash a chain's first entry points back to. */
export const GENESIS_HASH = '0'.repeat(64);

const JsonValueSchema: z.ZodType<unknown> = z.lazy(() =>
  // Members set to undefined are allowed: canonical JSON and the DynamoDB marshaller both drop them.
  // "__proto__" is refused as a key: parsers that assign members drop it or turn it into the
  // object's prototype (zod's record drops it), so an entry holding one would verify as modified.
  z
    .unknown()
    .superRefine((value, ctx) => {
      if (value !== null && typeof value === 'object' && !Array.isArray(value) && Object.hasOwn(value, '__proto__')) ctx.addIssue({ code: 'custom', message: 'the key "__proto__" is not allowed' });
    })
    .pipe(z.union([z.null(), z.boolean(), z.number().finite(), z.string(), z.array(JsonValueSchema), z.record(z.string(), JsonValueSchema.optional())])),
);

/**
 * What a caller records: who/what acted, why, on what, triggered by which event, and the
 * state before and after. The ledger adds chain position, time and hashes.
 *
 * @example
 * { "actor": "interruption-handler", "action": "pool.quarantined", "subject": "us-east-1/use1-az1/m5.large",
 *   "reason": "PROD spot interruption", "eventId": "6f1c...", "before": null, "after": { "until": "2026-12-07T00:00:00Z" } }
 */
export const LedgerDraftSchema = z.strictObject({
  actor: z.string().min(1),
  action: z.string().regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/, 'an action is dotted lower-case, e.g. pool.quarantined'),
  subject: z.string().min(1),
  reason: z.string().min(1),
  eventId: z.string().min(1),
  before: JsonValueSchema.optional(),
  after: JsonValueSchema.optional(),
});
export type LedgerDraft = z.infer<typeof LedgerDraftSchema>;

export const LedgerEntrySchema = LedgerDraftSchema.extend({
  chain: z.string().min(1),
  seq: z.number().int().min(1),
  at: z.iso.datetime(),
  prevHash: z.string().regex(/^[0-9a-f]{64}$/),
  hash: z.string().regex(/^[0-9a-f]{64}$/),
});
export type LedgerEntry = z.infer<typeof LedgerEntrySchema>;

export interface ChainTip {
  seq: number;
  hash: string;
}

/** SHA-256 over the canonical encoding of everything in the entry but its own hash. */
export function entryHash(entry: Omit<LedgerEntry, 'hash'> & { hash?: string }): string {
  const { hash: _ignored, ...content } = entry;
  return createHash('sha256').update(canonicalJson(content)).digest('hex');
}

/** Places a draft after `tip` (or at the start of the chain). Pure: time is passed in. */
export function seal(chain: string, draft: LedgerDraft, tip: ChainTip | undefined, at: Date): LedgerEntry {
  const unsealed = {
    ...draft,
    chain,
    seq: (tip?.seq ?? 0) + 1,
    at: at.toISOString(),
    prevHash: tip?.hash ?? GENESIS_HASH,
  };
  return { ...unsealed, hash: entryHash(unsealed) };
}

export type ProblemKind = 'modified' | 'missing' | 'broken-link' | 'out-of-order' | 'truncated' | 'anchor-mismatch' | 'malformed';

export interface VerifyProblem {
  seq: number;
  kind: ProblemKind;
  detail: string;
}

export interface VerifyReport {
  ok: boolean;
  chain: string;
  entries: number;
  tip: ChainTip | undefined;
  problems: VerifyProblem[];
}

export interface VerifyOptions {
  /** Entries that signed digests vouch for: each must still be there, unchanged. */
  anchors?: readonly ChainTip[] | undefined;
  /**
   * Verify a segment that starts at this seq instead of 1; the first entry's own link is taken
   * as it stands (an earlier verification covered it), everything from there on is checked.
   */
  resumeFrom?: number | undefined;
}

/**
 * Checks a chain as read back from storage, in storage order. Detects:
 * - modified: an entry's content no longer matches its hash;
 * - missing: a gap in the sequence (deleted entries);
 * - broken-link: an entry does not point at its predecessor's hash (inserted, replaced, reordered);
 * - out-of-order: sequence numbers not strictly increasing;
 * - truncated / anchor-mismatch: against an anchor (a signed digest's tip) the chain is shorter,
 *   or holds a different entry at the anchored position.
 * Tail truncation is only detectable against an anchor kept elsewhere: that is what digests are for.
 */
export function verifyChain(chain: string, stored: Iterable<unknown>, options: VerifyOptions = {}): VerifyReport {
  const { resumeFrom = 1 } = options;
  const anchors = new Map((options.anchors ?? []).map((a) => [a.seq, a.hash]));
  const furthestAnchor = Math.max(0, ...anchors.keys());
  const problems: VerifyProblem[] = [];
  let previous: LedgerEntry | undefined;
  let count = 0;
  for (const raw of stored) {
    count += 1;
    const parsed = LedgerEntrySchema.safeParse(raw);
    if (!parsed.success) {
      const seq = typeof (raw as { seq?: unknown })?.seq === 'number' ? (raw as { seq: number }).seq : -1;
      problems.push({ seq, kind: 'malformed', detail: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') });
      continue;
    }
    const entry = parsed.data;
    const expectedSeq = previous ? previous.seq + 1 : resumeFrom;
    if (entry.chain !== chain) {
      problems.push({ seq: entry.seq, kind: 'modified', detail: `entry belongs to chain ${entry.chain}` });
    }
    if (entryHash(entry) !== entry.hash) {
      problems.push({ seq: entry.seq, kind: 'modified', detail: 'content does not match its hash' });
    }
    if (previous && entry.seq <= previous.seq) {
      problems.push({ seq: entry.seq, kind: 'out-of-order', detail: `follows seq ${previous.seq}` });
    } else if (entry.seq > expectedSeq) {
      const last = entry.seq - 1;
      problems.push({ seq: expectedSeq, kind: 'missing', detail: `entries ${expectedSeq}${last > expectedSeq ? `..${last}` : ''} are missing` });
    }
    const expectedPrev = previous ? previous.hash : GENESIS_HASH;
    if (entry.prevHash !== expectedPrev && (previous || entry.seq === 1)) {
      // Without a predecessor, only seq 1 has a known expected link (the genesis hash).
      problems.push({ seq: entry.seq, kind: 'broken-link', detail: `prevHash does not match ${previous ? `seq ${previous.seq}` : 'genesis'}` });
    }
    const anchored = anchors.get(entry.seq);
    if (anchored !== undefined && entry.hash !== anchored) {
      problems.push({ seq: entry.seq, kind: 'anchor-mismatch', detail: 'entry differs from the one the digest signed' });
    }
    previous = entry;
  }
  const last = previous?.seq ?? resumeFrom - 1;
  // An anchored position that is absent but lies before the end was already reported as missing.
  if (last < furthestAnchor) {
    problems.push({
      seq: last + 1,
      kind: 'truncated',
      detail: `a digest signed entries up to seq ${furthestAnchor}, the chain ends at ${last}`,
    });
  }
  return {
    ok: problems.length === 0,
    chain,
    entries: count,
    tip: previous ? { seq: previous.seq, hash: previous.hash } : undefined,
    problems,
  };
}
