import { GetObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { KMSInvalidSignatureException, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { type Digest, type DigestSigner, digestPrefix, latestDigestKey, parseStoredDigest } from './digest';
import type { DigestSource } from './audit';

/** Signs digests with an asymmetric KMS key (ECC_NIST_P256); the private key never leaves KMS. */
export class KmsDigestSigner implements DigestSigner {
  constructor(
    private readonly kms: KMSClient,
    readonly keyId: string,
  ) {}

  async sign(message: Uint8Array): Promise<Uint8Array> {
    const out = await this.kms.send(
      new SignCommand({ KeyId: this.keyId, Message: message, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }),
    );
    if (!out.Signature) throw new Error('KMS returned no signature');
    return out.Signature;
  }

  async verify(message: Uint8Array, signature: Uint8Array): Promise<boolean> {
    try {
      const out = await this.kms.send(
        new VerifyCommand({ KeyId: this.keyId, Message: message, Signature: signature, MessageType: 'RAW', SigningAlgorithm: 'ECDSA_SHA_256' }),
      );
      return out.SignatureValid === true;
    } catch (error) {
      // KMS answers an invalid signature with an exception (moto with SignatureValid: false).
      if (error instanceof KMSInvalidSignatureException) return false;
      throw error;
    }
  }
}

/** Reads digests from the locked archive bucket. */
export class DigestArchive implements DigestSource {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  /** What latest.json says (a convenience pointer; the listing is the truth). */
  async pointer(chain: string): Promise<Digest | undefined> {
    return this.read(latestDigestKey(chain));
  }

  /** The digest with the highest key, i.e. covering the newest entries. */
  async newest(chain: string): Promise<Digest | undefined> {
    const keys = await this.keys(chain);
    const last = keys.at(-1);
    return last ? this.read(last) : undefined;
  }

  /** Every digest of the chain, oldest first (keys are zero-padded by fromSeq). */
  async all(chain: string): Promise<Digest[]> {
    const digests: Digest[] = [];
    for (const key of await this.keys(chain)) {
      const digest = await this.read(key);
      if (digest) digests.push(digest);
    }
    return digests;
  }

  /**
   * Digest keys whose current version is a delete marker: Object Lock keeps the digest, but a
   * plain listing no longer shows it, which would hide the entries it vouched for.
   */
  async hidden(chain: string): Promise<string[]> {
    const hidden: string[] = [];
    let KeyMarker: string | undefined;
    let VersionIdMarker: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectVersionsCommand({ Bucket: this.bucket, Prefix: digestPrefix(chain), KeyMarker, VersionIdMarker }));
      for (const marker of page.DeleteMarkers ?? []) if (marker.IsLatest && marker.Key && !marker.Key.endsWith('latest.json')) hidden.push(marker.Key);
      KeyMarker = page.NextKeyMarker;
      VersionIdMarker = page.NextVersionIdMarker;
    } while (KeyMarker);
    return hidden.sort();
  }

  private async keys(chain: string): Promise<string[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: digestPrefix(chain), ContinuationToken }));
      for (const object of page.Contents ?? []) if (object.Key && !object.Key.endsWith('latest.json')) keys.push(object.Key);
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    return keys.sort();
  }

  private async read(key: string): Promise<Digest | undefined> {
    let body: string | undefined;
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      body = await out.Body?.transformToString();
    } catch (error) {
      if (error instanceof NoSuchKey) return undefined;
      throw error;
    }
    return parseStoredDigest(key, body);
  }
}
