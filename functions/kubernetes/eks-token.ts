import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';

/**
 * An EKS bearer token, built in-process (what `aws eks get-token` and aws-iam-authenticator do,
 * without the binary): a presigned STS GetCallerIdentity URL whose signature covers the
 * `x-k8s-aws-id: <cluster name>` header, base64url-encoded behind `k8s-aws-v1.`. EKS replays the
 * URL against STS to learn the caller's IAM ARN, then maps it through the cluster's access
 * entries. The URL expires after 60 s, the token is accepted for 15 minutes after signing.
 */
export interface EksTokenOptions {
  clusterName: string;
  region: string;
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Signing time; defaults to now. */
  signingDate?: Date;
}

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
export const EKS_TOKEN_LIFETIME_MS = 15 * 60_000;
const PRESIGN_EXPIRES_SECONDS = 60;

/** SHA-256 / HMAC-SHA-256 from node:crypto, in the shape @smithy/signature-v4 expects. */
class Sha256 {
  private readonly hash;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    const key = secret === undefined ? undefined : typeof secret === 'string' ? secret : Buffer.from(ArrayBuffer.isView(secret) ? new Uint8Array(secret.buffer, secret.byteOffset, secret.byteLength) : new Uint8Array(secret));
    this.hash = key === undefined ? createHash('sha256') : createHmac('sha256', key);
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.hash.update(typeof data === 'string' ? data : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : new Uint8Array(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
}

/** RFC 3986 encoding, as SigV4 canonicalizes query values. */
const encode = (value: string) => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export async function presignedCallerIdentityUrl(options: EksTokenOptions): Promise<string> {
  const hostname = `sts.${options.region}.amazonaws.com`;
  const signer = new SignatureV4({ credentials: options.credentials, region: options.region, service: 'sts', sha256: Sha256, applyChecksum: false });
  const signed = await signer.presign(
    {
      method: 'GET',
      protocol: 'https:',
      hostname,
      path: '/',
      query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
      headers: { host: hostname, 'x-k8s-aws-id': options.clusterName },
    },
    { expiresIn: PRESIGN_EXPIRES_SECONDS, signingDate: options.signingDate },
  );
  const query = Object.entries(signed.query ?? {})
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${encode(k)}=${encode(String(v))}`)
    .join('&');
  return `https://${hostname}/?${query}`;
}

export async function eksToken(options: EksTokenOptions): Promise<{ token: string; expiresAt: Date }> {
  const url = await presignedCallerIdentityUrl(options);
  const signedAt = options.signingDate ?? new Date();
  return { token: EKS_TOKEN_PREFIX + Buffer.from(url).toString('base64url'), expiresAt: new Date(signedAt.getTime() + EKS_TOKEN_LIFETIME_MS) };
}
