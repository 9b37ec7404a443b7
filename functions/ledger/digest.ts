import { type KeyObject, createHash, createPublicKey, verify } from 'node:crypto';
import * as z from 'zod';
import { canonicalJson } from './canonical';
import type { ChainTip } from './chain';
import { LedgerTamperedError } from '../shared/errors';

/**
 * A signed digest vouches for a ledger chain up to `toSeq`/`tipHash` and chains to the digest
 * before it (`previousDigestHash`, and from version 2 on `previousSignature`), as CloudTrail's
 * log file validation does. Digests are stored under S3 Object Lock; `latest.json` points at the
 * newest one. A chain that is shorter than its newest digest was truncated; one that differs at
 * a digested position was rewritten.
 *
 * Version 2 also vouches for the archive: the segments (functions/ledger/segment.ts) written
 * since the previous digest, each with its sequence range and the SHA-256 of its bytes, and
 * `archivedTo`, the last seq the archive holds under digests. Version 1 digests (written before
 * the archive existed) vouch for the chain only.
 *
 * @example
 * { "version": 2, "chain": "fleet", "fromSeq": 43, "toSeq": 97, "tipHash": "9f2c...",
 *   "previousDigestHash": "41ab...", "previousSignature": "MEQCIG...", "archivedTo": 90,
 *   "segments": [{ "fromSeq": 41, "toSeq": 90, "sha256": "c0de..." }],
 *   "createdAt": "2026-11-22T01:00:00.000Z", "signingKeyId": "arn:aws:kms:...",
 *   "signingAlgorithm": "ECDSA_SHA_256", "signature": "MEUCIQ..." }
 */
const DigestFields = {
  chain: z.string().min(1),
  fromSeq: z.number().int().min(1),
  toSeq: z.number().int().min(1),
  tipHash: z.string().regex(/^[0-9a-f]{64}$/),
  previousDigestHash: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  createdAt: z.iso.datetime(),
  signingKeyId: z.string().min(1),
  signingAlgorithm: z.literal('ECDSA_SHA_256'),
  signature: z.base64(),
};
export const DigestSegmentSchema = z.strictObject({
  fromSeq: z.number().int().min(1),
  toSeq: z.number().int().min(1),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type DigestSegment = z.infer<typeof DigestSegmentSchema>;
export const DigestSchema = z.discriminatedUnion('version', [
  z.strictObject({ version: z.literal(1), ...DigestFields }),
  z.strictObject({
    version: z.literal(2),
    ...DigestFields,
    previousSignature: z.base64().nullable(),
    archivedTo: z.number().int().min(0),
    segments: z.array(DigestSegmentSchema),
  }),
]);
export type Digest = z.infer<typeof DigestSchema>;
export type UnsignedDigest = Omit<Extract<Digest, { version: 2 }>, 'signature'>;

/**
 * The most segments one digest lists (about 100 bytes each in the digest, 250 in the workflow's
 * listing, which must stay well inside a state's 256 KB): the rest wait for the next digest.
 */
export const MAX_DIGEST_SEGMENTS = 200;

/** The last seq the archive holds under a digest's vouching (0 before the archive existed). */
export const archivedTo = (digest: Digest | undefined): number => (digest?.version === 2 ? digest.archivedTo : 0);

/** Checks digest signatures: with KMS, or offline with the key's public half. */
export interface DigestVerifier {
  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

export interface DigestSigner extends DigestVerifier {
  readonly keyId: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

export const digestPrefix = (chain: string) => `digests/${chain}/`;
export const latestDigestKey = (chain: string) => `${digestPrefix(chain)}latest.json`;
/**
 * Keyed by the first sequence number a digest covers, zero-padded so keys list in order: two
 * overlapping runs from the same previous digest write the same key (a new version of it, under
 * Object Lock), never a fork.
 */
export const digestKey = (chain: string, fromSeq: number) => `${digestPrefix(chain)}${String(fromSeq).padStart(12, '0')}.json`;

export function digestHash(digest: Digest): string {
  return createHash('sha256').update(canonicalJson(digest)).digest('hex');
}

/** The bytes a digest's signature is over: the canonical JSON of everything but the signature. */
export const signedBytes = (digest: Omit<Digest, 'signature'>) => new TextEncoder().encode(canonicalJson(digest));

/** What the archive adds to a digest: the segments written since the previous digest, contiguous from its `archivedTo`. */
export interface ArchiveProgress {
  segments: DigestSegment[];
}

/** Pure: what the next digest says, given the previous one, the verified tip and the new segments. */
export function nextDigest(chain: string, previous: Digest | undefined, tip: ChainTip, signingKeyId: string, now: Date, archive: ArchiveProgress = { segments: [] }): UnsignedDigest {
  return {
    version: 2,
    chain,
    fromSeq: previous ? previous.toSeq + 1 : 1,
    toSeq: tip.seq,
    tipHash: tip.hash,
    previousDigestHash: previous ? digestHash(previous) : null,
    previousSignature: previous?.signature ?? null,
    archivedTo: archive.segments.at(-1)?.toSeq ?? archivedTo(previous),
    segments: archive.segments,
    createdAt: now.toISOString(),
    signingKeyId,
    signingAlgorithm: 'ECDSA_SHA_256',
  };
}

export async function signDigest(unsigned: UnsignedDigest, signer: DigestSigner): Promise<Digest> {
  const signature = await signer.sign(signedBytes(unsigned));
  return { ...unsigned, signature: Buffer.from(signature).toString('base64') };
}

export async function digestSignatureValid(digest: Digest, verifier: DigestVerifier): Promise<boolean> {
  const { signature, ...unsigned } = digest;
  return verifier.verify(signedBytes(unsigned), Buffer.from(signature, 'base64'));
}

/** A stored digest that does not parse is not a bad request: the archive itself was tampered with. */
export function parseStoredDigest(key: string, body: string | undefined): Digest {
  try {
    return DigestSchema.parse(JSON.parse(body ?? 'null'));
  } catch (cause) {
    throw new LedgerTamperedError(`digest ${key} is not a valid digest`, { cause });
  }
}

/**
 * Verifies signatures with the signing key's public half, as KMS GetPublicKey returns it (DER
 * SubjectPublicKeyInfo) or as PEM: KMS's ECDSA_SHA_256 signs the SHA-256 of the message and
 * returns a DER signature, which is what node's verify checks. Needs no AWS access at all.
 */
export class PublicKeyVerifier implements DigestVerifier {
  private readonly key: KeyObject;

  constructor(publicKey: Uint8Array | string) {
    const text = typeof publicKey === 'string' ? publicKey : Buffer.from(publicKey).toString('latin1');
    this.key = text.includes('-----BEGIN') ? createPublicKey(text) : createPublicKey({ key: Buffer.from(publicKey), format: 'der', type: 'spki' });
  }

  async verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    try {
      return verify('sha256', message, this.key, signature);
    } catch {
      return false; // not a DER signature at all
    }
  }
}
