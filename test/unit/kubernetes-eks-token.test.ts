import { createHash, createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { EKS_TOKEN_PREFIX, eksToken } from '../../functions/kubernetes/eks-token';

/**
 * The EKS token's shape and signature. Only EKS itself (replaying the URL against STS) can
 * accept it: moto's server does not route presigned STS GETs, and nothing local speaks EKS
 * authentication. So the signature is recomputed here, independently, from the URL alone, as
 * STS does with what EKS forwards: a wrong canonical form or an unsigned cluster header fails.
 */
const credentials = { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY', sessionToken: 'FwoGZXIvYXdzE+/session==' };
const signingDate = new Date('2026-11-22T10:00:00Z');
const decode = (token: string) => new URL(Buffer.from(token.slice(EKS_TOKEN_PREFIX.length), 'base64url').toString('utf8'));

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();
const sha256 = (data: string) => createHash('sha256').update(data).digest('hex');
const rfc3986 = (v: string) => encodeURIComponent(v).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** SigV4 for a presigned GET, from the spec: what STS computes to check the token. */
function expectedSignature(url: URL, headers: Record<string, string>, secret: string): string {
  const params = [...url.searchParams.entries()].filter(([k]) => k !== 'X-Amz-Signature').sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const canonicalQuery = params.map(([k, v]) => `${rfc3986(k)}=${rfc3986(v)}`).join('&');
  const names = Object.keys(headers).sort();
  const canonicalRequest = ['GET', '/', canonicalQuery, ...names.map((n) => `${n}:${headers[n]}`), '', names.join(';'), sha256('')].join('\n');
  const amzDate = url.searchParams.get('X-Amz-Date')!;
  const scope = url.searchParams.get('X-Amz-Credential')!.split('/').slice(1).join('/');
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  const [date, region, service] = scope.split('/');
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, date!), region!), service!), 'aws4_request');
  return createHmac('sha256', key).update(stringToSign).digest('hex');
}

describe('EKS token', () => {
  it('is k8s-aws-v1. followed by an unpadded base64url presigned STS GetCallerIdentity URL', async () => {
    const { token } = await eksToken({ clusterName: 'prod-eks', region: 'eu-west-1', credentials, signingDate });
    expect(token.startsWith('k8s-aws-v1.')).toBe(true);
    expect(token.slice(EKS_TOKEN_PREFIX.length)).toMatch(/^[A-Za-z0-9_-]+$/);
    const url = decode(token);
    expect(`${url.protocol}//${url.host}${url.pathname}`).toBe('https://sts.eu-west-1.amazonaws.com/');
    expect(Object.fromEntries(url.searchParams)).toMatchObject({
      Action: 'GetCallerIdentity',
      Version: '2011-06-15',
      'X-Amz-Algorithm': 'AWS4-HMAC-SHA256',
      'X-Amz-Credential': 'AKIAIOSFODNN7EXAMPLE/20261122/eu-west-1/sts/aws4_request',
      'X-Amz-Date': '20261122T100000Z',
      'X-Amz-Expires': '60',
      'X-Amz-SignedHeaders': 'host;x-k8s-aws-id',
      'X-Amz-Security-Token': credentials.sessionToken,
    });
    expect(url.searchParams.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('signs the cluster name header, so a token for one cluster is refused by another', async () => {
    const { token } = await eksToken({ clusterName: 'prod-eks', region: 'us-east-1', credentials, signingDate });
    const url = decode(token);
    const signature = url.searchParams.get('X-Amz-Signature');
    expect(signature).toBe(expectedSignature(url, { host: url.host, 'x-k8s-aws-id': 'prod-eks' }, credentials.secretAccessKey));
    expect(signature).not.toBe(expectedSignature(url, { host: url.host, 'x-k8s-aws-id': 'staging-eks' }, credentials.secretAccessKey));
  });

  it('is accepted for 15 minutes after signing, and differs for another signing time', async () => {
    const first = await eksToken({ clusterName: 'prod-eks', region: 'us-east-1', credentials, signingDate });
    const later = await eksToken({ clusterName: 'prod-eks', region: 'us-east-1', credentials, signingDate: new Date(signingDate.getTime() + 1000) });
    expect(first.expiresAt.toISOString()).toBe('2026-11-22T10:15:00.000Z');
    expect(later.token).not.toBe(first.token);
  });

  it('carries no session token parameter for long-term credentials', async () => {
    const { token } = await eksToken({ clusterName: 'prod-eks', region: 'us-east-1', credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey }, signingDate });
    const url = decode(token);
    expect(url.searchParams.has('X-Amz-Security-Token')).toBe(false);
    expect(url.searchParams.get('X-Amz-Signature')).toBe(expectedSignature(url, { host: url.host, 'x-k8s-aws-id': 'prod-eks' }, credentials.secretAccessKey));
  });
});
