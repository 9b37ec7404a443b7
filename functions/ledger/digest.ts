import { createHash } from 'node:crypto';
import * as z from 'zod';
import { canonicalJson } from './canonical';
import type { ChainTip } from './chain';
import { LedgerTamperedError } from '../shared/errors';

/**
 * A signed digest vouches for a ledger chain up to `toSeq`/`tipHash` and chains to the digest
 * before it (`previousDigestHash`), as CloudTrail's log file validation does. Digests are stored
 * under S3 Object Lock; `latest.json` points at the newest one. A chain that is shorter than its
 * newest digest was truncated; one that differs at a digested position was rewritten.
 *
 * @example
 * { "version": 1, "chain": "fleet", "fromSeq": 1, "toSeq": 42, "tipHash": "9f2c...",
 *   "previousDigestHash": null, "createdAt": "2026-11-22T01:00:00.000Z",
 *   "signingKeyId": "arn:aws:kms:...", "signingAlgorithm": "ECDSA_SHA_256", "signature": "MEUCIQ..." }
 */
export const DigestSchema = z.strictObject({
  version: z.literal(1),
  chain: z.string().min(1),
  fromSeq: z.number().int().min(1),
  toSeq: z.number().int().min(1),
  tipHash: z.string().regex(/^[0-9a-f]{64}$/),
  previousDigestHash: z.string().regex(/^[0-9a-f]{64}$/).nullable(),
  createdAt: z.iso.datetime(),
  signingKeyId: z.string().min(1),
  signingAlgorithm: z.literal('ECDSA_SHA_256'),
  signature: z.base64(),
});
export type Digest = z.infer<typeof DigestSchema>;
export type UnsignedDigest = Omit<Digest, 'signature'>;

export interface DigestSigner {
  readonly keyId: string;
  sign(message: Uint8Array): Promise<Uint8Array>;
  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean>;
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

const signedBytes = (digest: UnsignedDigest) => new TextEncoder().encode(canonicalJson(digest));

/** Pure: what the next digest says, given the previous one and the verified tip. */
export function nextDigest(chain: string, previous: Digest | undefined, tip: ChainTip, signingKeyId: string, now: Date): UnsignedDigest {
  return {
    version: 1,
    chain,
    fromSeq: previous ? previous.toSeq + 1 : 1,
    toSeq: tip.seq,
    tipHash: tip.hash,
    previousDigestHash: previous ? digestHash(previous) : null,
    createdAt: now.toISOString(),
    signingKeyId,
    signingAlgorithm: 'ECDSA_SHA_256',
  };
}

export async function signDigest(unsigned: UnsignedDigest, signer: DigestSigner): Promise<Digest> {
  const signature = await signer.sign(signedBytes(unsigned));
  return { ...unsigned, signature: Buffer.from(signature).toString('base64') };
}

export async function digestSignatureValid(digest: Digest, signer: DigestSigner): Promise<boolean> {
  const { signature, ...unsigned } = digest;
  return signer.verify(signedBytes(unsigned), Buffer.from(signature, 'base64'));
}

/** A stored digest that does not parse is not a bad request: the archive itself was tampered with. */
export function parseStoredDigest(key: string, body: string | undefined): Digest {
  try {
    return DigestSchema.parse(JSON.parse(body ?? 'null'));
  } catch (cause) {
    throw new LedgerTamperedError(`digest ${key} is not a valid digest`, { cause });
  }
}
