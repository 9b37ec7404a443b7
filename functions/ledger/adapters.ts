import { GetObjectCommand, ListObjectsV2Command, NoSuchKey, type S3Client } from '@aws-sdk/client-s3';
import { KMSInvalidSignatureException, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { type Digest, DigestSchema, type DigestSigner, digestPrefix, latestDigestKey } from './digest';
import { parseOrThrow } from '../shared/validation';

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
export class DigestArchive {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async latest(chain: string): Promise<Digest | undefined> {
    return this.read(latestDigestKey(chain));
  }

  /** Every digest of the chain, oldest first (keys are zero-padded by toSeq). */
  async all(chain: string): Promise<Digest[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: digestPrefix(chain), ContinuationToken }));
      for (const object of page.Contents ?? []) if (object.Key && !object.Key.endsWith('latest.json')) keys.push(object.Key);
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    keys.sort();
    const digests: Digest[] = [];
    for (const key of keys) {
      const digest = await this.read(key);
      if (digest) digests.push(digest);
    }
    return digests;
  }

  private async read(key: string): Promise<Digest | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const body = await out.Body?.transformToString();
      return parseOrThrow(DigestSchema, JSON.parse(body ?? 'null'), `digest ${key}`);
    } catch (error) {
      if (error instanceof NoSuchKey) return undefined;
      throw error;
    }
  }
}
