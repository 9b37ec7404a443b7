import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectVersionsCommand, ListObjectsV2Command, NoSuchKey, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { GetPublicKeyCommand, KMSInvalidSignatureException, SignCommand, VerifyCommand, type KMSClient } from '@aws-sdk/client-kms';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import { LedgerTamperedError } from '../shared/errors';
import { parseOrThrow } from '../shared/validation';
import type { ArchiveEntrySource, ArchivePosition, PositionStore, SegmentStore } from './archiver';
import { type Digest, type DigestSigner, digestPrefix, latestDigestKey, parseStoredDigest } from './digest';
import type { DigestSource } from './audit';
import type { ArchiveReader } from './archive-verify';
import { type SegmentRef, parseSegmentKey, segmentStartPrefix } from './segment';
import { DynamoLedger } from './store';

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

/**
 * Keys under a prefix whose current version is a delete marker: Object Lock keeps the object,
 * but a plain listing no longer shows it, which would hide what it vouched for or held.
 */
async function hiddenKeys(s3: S3Client, bucket: string, prefix: string, except?: string): Promise<string[]> {
  const hidden: string[] = [];
  let KeyMarker: string | undefined;
  let VersionIdMarker: string | undefined;
  do {
    const page = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: prefix, KeyMarker, VersionIdMarker }));
    for (const marker of page.DeleteMarkers ?? []) if (marker.IsLatest && marker.Key && marker.Key !== except) hidden.push(marker.Key);
    KeyMarker = page.NextKeyMarker;
    VersionIdMarker = page.NextVersionIdMarker;
  } while (KeyMarker);
  return hidden.sort();
}

/** The locked archive bucket as verification reads it: segments and digests by key. */
export class S3ArchiveReader implements ArchiveReader {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async list(prefix: string, startAfter?: string): Promise<string[]> {
    const keys: string[] = [];
    let ContinuationToken: string | undefined;
    do {
      const page = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken, ...(startAfter && !ContinuationToken ? { StartAfter: startAfter } : {}) }));
      for (const object of page.Contents ?? []) if (object.Key) keys.push(object.Key);
      ContinuationToken = page.NextContinuationToken;
    } while (ContinuationToken);
    return keys.sort();
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      const out = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return out.Body ? Buffer.from(await out.Body.transformToByteArray()) : undefined;
    } catch (error) {
      if (error instanceof NoSuchKey) return undefined;
      throw error;
    }
  }

  hidden(prefix: string): Promise<string[]> {
    return hiddenKeys(this.s3, this.bucket, prefix);
  }
}

/** The signing key's public half (DER SubjectPublicKeyInfo): digests verify with it anywhere, KMS or not. */
export async function kmsPublicKey(kms: KMSClient, keyId: string): Promise<Uint8Array> {
  const out = await kms.send(new GetPublicKeyCommand({ KeyId: keyId }));
  if (!out.PublicKey) throw new Error(`KMS returned no public key for ${keyId}`);
  return out.PublicKey;
}

/** Reads digests from the locked archive bucket (its objects through S3ArchiveReader). */
export class DigestArchive implements DigestSource {
  private readonly objects: S3ArchiveReader;

  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {
    this.objects = new S3ArchiveReader(s3, bucket);
  }

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
    return hiddenKeys(this.s3, this.bucket, digestPrefix(chain), latestDigestKey(chain));
  }

  private async keys(chain: string): Promise<string[]> {
    return (await this.objects.list(digestPrefix(chain))).filter((key) => !key.endsWith('latest.json'));
  }

  private async read(key: string): Promise<Digest | undefined> {
    const body = await this.objects.read(key);
    return body ? parseStoredDigest(key, body.toString('utf8')) : undefined;
  }
}

/**
 * The archive's position per chain, one item in the Locks table (`ledger-archive#<chain>`): the
 * table for small items that one writer at a time moves with a conditional put.
 */
export class DynamoArchivePositions implements PositionStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  static idOf(chain: string): string {
    return `ledger-archive#${chain}`;
  }

  async read(chain: string): Promise<ArchivePosition | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { lockId: DynamoArchivePositions.idOf(chain) }, ConsistentRead: true }));
    if (!out.Item) return undefined;
    return parseOrThrow(ArchivePositionSchema, out.Item, `archive position of chain ${chain}`);
  }

  async write(chain: string, next: ArchivePosition, expected: number): Promise<boolean> {
    try {
      await this.doc.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { lockId: DynamoArchivePositions.idOf(chain), ...next },
          ConditionExpression: expected === 0 ? 'attribute_not_exists(lockId)' : '#v = :v',
          ...(expected === 0 ? {} : { ExpressionAttributeNames: { '#v': 'version' }, ExpressionAttributeValues: { ':v': expected } }),
        }),
      );
      return true;
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) return false;
      throw error;
    }
  }
}

const ArchivePositionSchema = z.object({
  archivedTo: z.number().int().min(0),
  tipHash: z.string().regex(/^[0-9a-f]{64}$/),
  pending: z.strictObject({ fromSeq: z.number().int().min(1), toSeq: z.number().int().min(1), tipHash: z.string().regex(/^[0-9a-f]{64}$/) }).optional(),
  version: z.number().int().min(1),
});

/** Segments in the locked archive bucket, written once each (If-None-Match), with S3 checking their SHA-256 on arrival. */
export class S3SegmentStore implements SegmentStore {
  constructor(
    private readonly s3: S3Client,
    private readonly bucket: string,
  ) {}

  async put(ref: SegmentRef, body: Buffer): Promise<'written' | 'exists'> {
    try {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: ref.key,
          Body: body,
          IfNoneMatch: '*',
          // Object Lock refuses writes without an integrity header; S3 checks the bytes against it.
          ChecksumAlgorithm: 'SHA256',
          ChecksumSHA256: Buffer.from(ref.sha256, 'hex').toString('base64'),
          ContentType: 'application/zstd',
          Metadata: { fromseq: String(ref.fromSeq), toseq: String(ref.toSeq) },
        }),
      );
      return 'written';
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412) return 'exists';
      throw error;
    }
  }

  async startingAt(chain: string, fromSeq: number): Promise<SegmentRef | undefined> {
    const out = await this.s3.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: segmentStartPrefix(chain, fromSeq), MaxKeys: 2 }));
    const refs = (out.Contents ?? []).map((o) => parseSegmentKey(o.Key ?? '', chain)).filter((r) => r !== undefined);
    if (refs.length > 1) throw new LedgerTamperedError(`two segments of chain ${chain} start at seq ${fromSeq}: ${refs.map((r) => r.key).join(', ')}`);
    return refs[0];
  }
}

/** The ledger table as the archiver reads it: ranges of a chain and its tip. */
export class TableEntries implements ArchiveEntrySource {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async range(chain: string, fromSeq: number, toSeq: number): Promise<unknown[]> {
    const entries: unknown[] = [];
    for await (const item of new DynamoLedger(this.doc, { tableName: this.tableName, chain }).entries(fromSeq)) {
      if ((item.seq as number) > toSeq) break;
      entries.push(item);
    }
    return entries;
  }

  async tipSeq(chain: string): Promise<number> {
    return (await new DynamoLedger(this.doc, { tableName: this.tableName, chain }).tip())?.seq ?? 0;
  }
}
