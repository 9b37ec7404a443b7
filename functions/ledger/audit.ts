import { createHash } from 'node:crypto';
import { type ChainTip, type VerifyProblem, verifyChain } from './chain';
import { type Digest, type DigestSegment, type DigestSigner, MAX_DIGEST_SEGMENTS, archivedTo, digestHash, digestKey, digestPrefix, digestSignatureValid, latestDigestKey, nextDigest, signDigest } from './digest';
import { parseSegmentKey, segmentKey, segmentPrefix } from './segment';
import { LedgerTamperedError } from '../shared/errors';

/** The two ledger reads the audit needs; DynamoLedger implements both. */
export interface LedgerSource {
  readonly chain: string;
  entries(fromSeq?: number): AsyncIterable<Record<string, unknown>>;
}

/** What the digest workflow needs from the archive: where the chain of digests ends. */
export interface NewestDigests {
  /** What latest.json says (a convenience pointer; the stored digests are the truth). */
  pointer(chain: string): Promise<Digest | undefined>;
  /** The stored digest covering the newest entries. */
  newest(chain: string): Promise<Digest | undefined>;
}

/** What a full verification reads from the archive. */
export interface DigestSource extends NewestDigests {
  all(chain: string): Promise<Digest[]>;
  hidden(chain: string): Promise<string[]>;
}

interface Signing {
  ledger: LedgerSource;
  signer: DigestSigner;
}

/**
 * The archive's segment keys listed after the last segment the newest digest lists (or from the
 * first), at most MAX_DIGEST_SEGMENTS of them: more wait for the next digest.
 */
export interface SegmentListing {
  keys: string[];
}

export interface DigestDeps extends Signing {
  digests: NewestDigests;
  /** Absent: the digest lists no segments (an archive that is not deployed, or empty). */
  segments?: SegmentListing;
  clock?: () => Date;
}

export interface AuditDeps extends Signing {
  digests: DigestSource;
}

/** What the digest workflow stores next, or that there is nothing new since the last digest. */
export type DigestPlan =
  | { hasNew: false; chain: string; toSeq: number }
  | {
      hasNew: true;
      chain: string;
      key: string;
      latestKey: string;
      /**
       * The key a listing starts after to see this digest and everything newer (the previous
       * digest's key, or the chain's prefix); stored as latest.json's metadata so that the next
       * run lists a handful of keys instead of the whole archive.
       */
      listAfter: string;
      body: string;
      /**
       * The key a listing of segments starts after to see those no digest lists yet: the last
       * segment this digest or an earlier one lists (or the prefix); stored as latest.json's
       * metadata too.
       */
      segmentsAfter: string;
      /** Object Lock buckets require an integrity header on every write. */
      contentMd5: string;
      fromSeq: number;
      toSeq: number;
      tipHash: string;
    };

async function collect(source: AsyncIterable<Record<string, unknown>>): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  for await (const item of source) items.push(item);
  return items;
}

/**
 * Verifies what was appended since the latest digest (and that the digested tip is unchanged),
 * then signs a digest of the new tip. Throws Terminal.LedgerTampered rather than sign over a
 * broken chain: a digest must never launder tampering.
 */
export async function prepareDigest(deps: DigestDeps): Promise<DigestPlan> {
  const chain = deps.ledger.chain;
  // The newest stored digest, not latest.json: a run that stored its digest but failed before
  // moving the pointer must not make the next run chain to an older digest.
  const previous = await deps.digests.newest(chain);
  if (previous && !(await digestSignatureValid(previous, deps.signer))) {
    throw new LedgerTamperedError(`newest digest of chain ${chain} (seq ${previous.toSeq}) has an invalid signature`);
  }
  const pointer = await deps.digests.pointer(chain);
  if (pointer && (!previous || pointer.toSeq > previous.toSeq)) {
    throw new LedgerTamperedError(`latest.json of chain ${chain} points past the newest stored digest`);
  }
  const resumeFrom = previous?.toSeq ?? 1;
  const entries = await collect(deps.ledger.entries(resumeFrom));
  const anchors = previous ? [{ seq: previous.toSeq, hash: previous.tipHash }] : [];
  const report = verifyChain(chain, entries, { anchors, resumeFrom });
  if (!report.ok) throw new LedgerTamperedError(`chain ${chain} failed verification: ${summarize(report.problems)}`);
  if (!report.tip || report.tip.seq === previous?.toSeq) {
    return { hasNew: false, chain, toSeq: previous?.toSeq ?? 0 };
  }
  const segments = segmentsToDigest(chain, deps.segments ?? { keys: [] }, archivedTo(previous), report.tip.seq);
  const unsigned = nextDigest(chain, previous, report.tip, deps.signer.keyId, (deps.clock ?? (() => new Date()))(), { segments });
  const digest = await signDigest(unsigned, deps.signer);
  const body = JSON.stringify(digest);
  return {
    hasNew: true,
    chain,
    key: digestKey(chain, digest.fromSeq),
    latestKey: latestDigestKey(chain),
    listAfter: previous ? digestKey(chain, previous.fromSeq) : digestPrefix(chain),
    segmentsAfter: lastSegmentKey(chain, digest) ?? (previous && lastSegmentKey(chain, previous)) ?? segmentPrefix(chain),
    body,
    contentMd5: createHash('md5').update(body).digest('base64'),
    fromSeq: digest.fromSeq,
    toSeq: digest.toSeq,
    tipHash: digest.tipHash,
  };
}

const lastSegmentKey = (chain: string, digest: Digest): string | undefined => {
  const last = digest.version === 2 ? digest.segments.at(-1) : undefined;
  return last ? segmentKey(chain, last.fromSeq, last.toSeq, last.sha256) : undefined;
};

/**
 * Pure: the segments the next digest lists, from the keys listed after the last listed one:
 * contiguous from `after + 1`, none past the verified tip, at most MAX_DIGEST_SEGMENTS (the
 * rest wait for the next digest). The archiver writes segments in sequence order, one at a
 * time, so a listed key that repeats archived entries, skips some, or is not a segment key at
 * all was put there by someone else: a digest must never vouch over it.
 */
export function segmentsToDigest(chain: string, listing: SegmentListing, after: number, tipSeq: number): DigestSegment[] {
  const refs = listing.keys.map((key) => {
    const ref = parseSegmentKey(key, chain);
    if (!ref) throw new LedgerTamperedError(`${key} in the archive's segments of chain ${chain} is not a segment`);
    return ref;
  });
  refs.sort((a, b) => a.fromSeq - b.fromSeq || a.toSeq - b.toSeq);
  const taken: DigestSegment[] = [];
  let next = after + 1;
  for (const ref of refs) {
    if (ref.fromSeq < next) throw new LedgerTamperedError(`segment ${ref.key} holds entries from ${ref.fromSeq}, which the archive already holds up to ${next - 1}`);
    if (ref.fromSeq > next) throw new LedgerTamperedError(`the archive of chain ${chain} skips entries ${next}..${ref.fromSeq - 1}: a segment is missing`);
    if (ref.toSeq > tipSeq || taken.length === MAX_DIGEST_SEGMENTS) break;
    taken.push({ fromSeq: ref.fromSeq, toSeq: ref.toSeq, sha256: ref.sha256 });
    next = ref.toSeq + 1;
  }
  return taken;
}

export interface LedgerVerification {
  ok: boolean;
  chain: string;
  entries: number;
  tip: ChainTip | undefined;
  digests: number;
  problems: VerifyProblem[];
}

/**
 * Full verification, as `fleetwarden ledger verify` runs it: every entry's hash and link, every
 * digest's signature and its link to the previous digest, every digested tip still present and
 * unchanged, and the chain at least as long as the newest digest (no truncation).
 */
export async function verifyLedger(deps: AuditDeps): Promise<LedgerVerification> {
  const chain = deps.ledger.chain;
  const digests = await deps.digests.all(chain);
  const problems: VerifyProblem[] = [];
  let previous: Digest | undefined;
  for (const digest of digests) {
    if (!(await digestSignatureValid(digest, deps.signer))) {
      problems.push({ seq: digest.toSeq, kind: 'modified', detail: `digest up to seq ${digest.toSeq} has an invalid signature` });
    }
    const expectedPrevious = previous ? digestHash(previous) : null;
    if (digest.previousDigestHash !== expectedPrevious || digest.fromSeq !== (previous ? previous.toSeq + 1 : 1)) {
      problems.push({ seq: digest.toSeq, kind: 'broken-link', detail: `digest up to seq ${digest.toSeq} does not follow the digest before it` });
    }
    previous = digest;
  }
  for (const key of await deps.digests.hidden(chain)) {
    problems.push({ seq: -1, kind: 'missing', detail: `digest ${key} is hidden behind a delete marker` });
  }
  const pointer = await deps.digests.pointer(chain);
  if (pointer && previous && pointer.toSeq > previous.toSeq) {
    problems.push({ seq: pointer.toSeq, kind: 'anchor-mismatch', detail: 'latest.json points past the newest stored digest' });
  }
  const report = verifyChain(chain, await collect(deps.ledger.entries(1)), {
    anchors: digests.map((d) => ({ seq: d.toSeq, hash: d.tipHash })),
  });
  problems.push(...report.problems);
  return { ok: problems.length === 0, chain, entries: report.entries, tip: report.tip, digests: digests.length, problems };
}

export function summarize(problems: readonly VerifyProblem[]): string {
  const shown = problems.slice(0, 5).map((p) => `seq ${p.seq} ${p.kind} (${p.detail})`);
  return problems.length > 5 ? `${shown.join('; ')}; and ${problems.length - 5} more` : shown.join('; ');
}
