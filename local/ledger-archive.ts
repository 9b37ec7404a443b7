import { type KeyObject, generateKeyPairSync, sign } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { type LedgerDraft, type LedgerEntry, seal } from '../functions/ledger/chain';
import { type Digest, type DigestSigner, PublicKeyVerifier, digestKey, latestDigestKey, nextDigest, signDigest } from '../functions/ledger/digest';
import { encodeSegment } from '../functions/ledger/segment';

/**
 * A P-256 key pair held in this process, signing as KMS's ECDSA_SHA_256 does (SHA-256 of the
 * message, DER signature): for archives built locally by tests and the bench, verified with the
 * same PublicKeyVerifier an auditor uses on KMS's public key.
 */
export class LocalKeySigner implements DigestSigner {
  readonly keyId = 'local-p256';
  private readonly privateKey: KeyObject;
  readonly publicKeyDer: Buffer;
  private readonly verifier: PublicKeyVerifier;

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = privateKey;
    this.publicKeyDer = publicKey.export({ format: 'der', type: 'spki' });
    this.verifier = new PublicKeyVerifier(this.publicKeyDer);
  }

  async sign(message: Uint8Array): Promise<Uint8Array> {
    return sign('sha256', message, this.privateKey);
  }

  verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    return this.verifier.verify(message, signature);
  }
}

/** A chain of `drafts`, sealed one second apart from `start`. */
export function sealChain(chain: string, drafts: readonly LedgerDraft[], start = Date.UTC(2026, 11, 1)): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const [i, draft] of drafts.entries()) {
    const tip = entries.at(-1);
    entries.push(seal(chain, draft, tip && { seq: tip.seq, hash: tip.hash }, new Date(start + i * 1000)));
  }
  return entries;
}

export interface BuiltArchive {
  /** Key -> bytes, as the bucket would hold them. */
  objects: Map<string, Buffer>;
  digests: Digest[];
}

/**
 * An archive as the archiver and the digest workflow write it: segments of the given sizes in
 * turn, a digest after every `digestEvery` segments (and one at the end when `digestTail`),
 * each listing the segments written since the one before, latest.json pointing at the newest.
 */
export async function buildArchive(chain: string, entries: readonly LedgerEntry[], signer: DigestSigner, options: { segmentSizes: readonly number[]; digestEvery: number; digestTail?: boolean }): Promise<BuiltArchive> {
  const objects = new Map<string, Buffer>();
  const digests: Digest[] = [];
  let pending: { fromSeq: number; toSeq: number; sha256: string }[] = [];
  const digest = async (tip: LedgerEntry) => {
    const d = await signDigest(nextDigest(chain, digests.at(-1), { seq: tip.seq, hash: tip.hash }, signer.keyId, new Date(Date.UTC(2026, 11, 2, digests.length)), { segments: pending }), signer);
    objects.set(digestKey(chain, d.fromSeq), Buffer.from(JSON.stringify(d)));
    objects.set(latestDigestKey(chain), Buffer.from(JSON.stringify(d)));
    digests.push(d);
    pending = [];
  };
  let at = 0;
  for (let i = 0; at < entries.length; i++) {
    const size = options.segmentSizes[i % options.segmentSizes.length]!;
    const slice = entries.slice(at, at + size);
    const { ref, body } = encodeSegment(chain, slice);
    objects.set(ref.key, body);
    pending.push({ fromSeq: ref.fromSeq, toSeq: ref.toSeq, sha256: ref.sha256 });
    at += slice.length;
    if (pending.length >= options.digestEvery) await digest(slice.at(-1)!);
  }
  if (options.digestTail && pending.length) await digest(entries.at(-1)!);
  return { objects, digests };
}

/** Writes an archive's objects under `dir`, key for path (as `aws s3 sync` lays a bucket out). */
export function writeArchive(dir: string, objects: Map<string, Buffer>): void {
  for (const [key, body] of objects) {
    const file = path.join(dir, key);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, body);
  }
}
