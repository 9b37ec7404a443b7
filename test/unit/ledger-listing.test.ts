import { describe, expect, it } from 'vitest';
import { type Digest, digestKey } from '../../functions/ledger/digest';
import { ListedDigests, ListedDigestsSchema } from '../../functions/ledger/listing';

const digest = (fromSeq: number, toSeq: number): Digest => ({
  version: 1,
  chain: 'fleet',
  fromSeq,
  toSeq,
  tipHash: 'a'.repeat(64),
  previousDigestHash: fromSeq === 1 ? null : 'b'.repeat(64),
  createdAt: '2026-12-03T10:00:00.000Z',
  signingKeyId: 'arn:aws:kms:us-east-1:123456789012:key/k',
  signingAlgorithm: 'ECDSA_SHA_256',
  signature: 'c2ln',
});
const object = (key: string, body: unknown) => ({ key, read: { body: typeof body === 'string' ? body : JSON.stringify(body) } });

describe('ListedDigests (what the LedgerDigest workflow listed and read)', () => {
  it('takes the digest with the highest key as the newest and latest.json as the pointer, whatever the listing order', async () => {
    const listed = new ListedDigests({
      objects: [object('digests/fleet/latest.json', digest(3, 4)), object(digestKey('fleet', 5), digest(5, 9)), object(digestKey('fleet', 3), digest(3, 4))],
      truncated: false,
    });
    expect((await listed.newest('fleet'))?.toSeq).toBe(9);
    expect((await listed.pointer('fleet'))?.toSeq).toBe(4);
  });

  it('reads an empty listing as a chain without digests', async () => {
    const listed = new ListedDigests({ objects: [], truncated: false });
    expect(await listed.newest('fleet')).toBeUndefined();
    expect(await listed.pointer('fleet')).toBeUndefined();
  });

  it('ignores keys of another chain', async () => {
    const listed = new ListedDigests({ objects: [object(digestKey('other', 7), digest(7, 8))], truncated: false });
    expect(await listed.newest('fleet')).toBeUndefined();
  });

  it('names a stored object that is not a digest as tampering, with its key', async () => {
    const listed = new ListedDigests({ objects: [object(digestKey('fleet', 1), '{"version":2}')], truncated: false });
    await expect(listed.newest('fleet')).rejects.toMatchObject({ name: 'Terminal.LedgerTampered', message: 'digest digests/fleet/000000000001.json is not a valid digest' });
  });

  it('names a listing that stopped short of latest.json as tampering', async () => {
    const listed = new ListedDigests({ objects: [object(digestKey('fleet', 1), digest(1, 1))], truncated: true });
    await expect(listed.newest('fleet')).rejects.toMatchObject({ name: 'Terminal.LedgerTampered' });
    await expect(listed.pointer('fleet')).rejects.toThrow(/latest\.json was removed or rolled back/);
  });

  it('refuses a workflow input of the wrong shape, naming the field', () => {
    const result = ListedDigestsSchema.safeParse({ objects: [{ key: 'k', read: {} }], truncated: false });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['objects', 0, 'read', 'body']);
  });
});
