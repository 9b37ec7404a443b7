import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { KMSClient } from '@aws-sdk/client-kms';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { beforeEach, describe, expect, it } from 'vitest';
import { DigestArchive, KmsDigestSigner } from '../../functions/ledger/adapters';
import { verifyLedger } from '../../functions/ledger/audit';
import { DigestSchema } from '../../functions/ledger/digest';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { listenToBus, listenToTopic } from '../../local/listen';
import type { LocalStack } from '../../local/provision';
import { runStateMachine, stateNames } from '../../local/stepfunctions';
import { freshStack } from '../support';

let stack: LocalStack;
let ledger: DynamoLedger;

const draft = (i: number) => ({ actor: 'test', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'PROD spot interruption', eventId: `event-${i}` });

const audit = () => ({
  ledger,
  digests: new DigestArchive(awsClient(S3Client), stack.ref('LedgerArchive')),
  signer: new KmsDigestSigner(awsClient(KMSClient), stack.attr('LedgerDigestSigningKey', 'Arn')),
});

const listen = (kind: 'bus' | 'topic'): Promise<() => Promise<unknown[]>> => (kind === 'bus' ? listenToBus(stack, ['fleetwarden.ledger']) : listenToTopic(stack));

beforeEach(async () => {
  stack = await freshStack();
  ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
});

describe('LedgerDigest state machine (synthesized definition, aws-local-stepfunctions, moto)', () => {
  it('has state names that read as sentences', () => {
    const names = stateNames(stack.stateMachines.values().next().value!.definition);
    expect(names).toContain('Verify the ledger and sign a digest');
    expect(names).toContain('Store the signed digest in the locked archive');
    expect(names.every((n) => /^[A-Z][a-z].* [a-z]/.test(n) || /^[A-Z][a-z]+ [a-z]+/.test(n))).toBe(true);
  });

  it('verifies new entries, stores a signed digest under Object Lock and announces it on the bus', async () => {
    const received = await listen('bus');
    for (let i = 0; i < 3; i++) await ledger.append(draft(i));

    const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });

    expect(run.status).toBe('SUCCEEDED');
    expect(run.lambdaInvocations).toBe(1);
    // Read latest.json (absent), list the chain's digests (none), list the segments no digest
    // lists (none: nothing archived them here), store the digest, move latest.json, announce:
    // the function itself never calls S3.
    expect(run.sdkCalls).toBe(6);
    const s3 = awsClient(S3Client);
    const bucket = stack.ref('LedgerArchive');
    const stored = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: 'digests/fleet/000000000001.json' }));
    const digest = DigestSchema.parse(JSON.parse(await stored.Body!.transformToString()));
    expect(digest).toMatchObject({ chain: 'fleet', fromSeq: 1, toSeq: 3, previousDigestHash: null });
    // moto's GetObjectRetention answers malformed XML; HeadObject carries the same lock headers.
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: 'digests/fleet/000000000001.json' }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(head.ObjectLockRetainUntilDate!.getTime()).toBeGreaterThan(Date.now() + 364 * 86_400_000);
    await expect(s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'digests/fleet/000000000001.json', VersionId: head.VersionId }))).rejects.toThrow();
    const events = (await received()) as { 'detail-type': string; detail: { toSeq: number } }[];
    expect(events).toEqual([expect.objectContaining({ 'detail-type': 'LedgerDigestWritten', detail: expect.objectContaining({ toSeq: 3 }) })]);
    expect(await verifyLedger(audit())).toMatchObject({ ok: true, entries: 3, digests: 1 });
  });

  it('chains each digest to the previous one and skips when nothing is new', async () => {
    await ledger.append(draft(1));
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    const idle = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    expect(idle.events.map((e) => e.state).filter(Boolean)).toContain('Nothing new to digest');
    await ledger.append(draft(2));
    await ledger.append(draft(3));
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    const digests = await audit().digests.all('fleet');
    expect(digests.map((d) => [d.fromSeq, d.toSeq])).toEqual([
      [1, 1],
      [2, 3],
    ]);
    expect(await verifyLedger(audit())).toMatchObject({ ok: true, entries: 3, digests: 2 });
  });

  it('verifies and digests a chain written both ways: transactions (entry, marker, co-written item) and outboxes (a marker or an item holding the entry, written after)', async () => {
    const poolTable = stack.ref('StateStorePoolRiskTable');
    await ledger.append(draft(1));
    await ledger.append(draft(2), { dedupeKey: 'event-2' });
    await ledger.append(draft(3), {
      dedupeKey: 'event-3',
      alsoWrite: [{ put: { TableName: poolTable, Item: { pool: 'pool-3', history: [], version: 1 } }, onConditionFailed: () => new Error('conflict') }],
    });
    await ledger.appendOnce(draft(4), 'event-4');
    const pending = await ledger.place(draft(5));
    await documentClient().send(new PutCommand({ TableName: poolTable, Item: { pool: 'pool-5', history: [], version: 1, pending } }));
    await ledger.append(draft(6)); // takes the seq the outbox entry was placed at: it is placed again
    expect(await ledger.settle(pending, { fresh: true })).toMatchObject({ state: 'displaced' });
    expect(await ledger.settle(await ledger.replace(pending), { fresh: true })).toMatchObject({ state: 'written', entry: { seq: 6 } });
    await ledger.appendOnce(draft(4), 'event-4'); // a redelivery appends nothing
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    expect(await verifyLedger(audit())).toMatchObject({ ok: true, entries: 6, digests: 1, problems: [] });
  });

  it('refuses to sign over a tampered ledger and alerts operators', async () => {
    const alerts = await listen('topic');
    for (let i = 0; i < 3; i++) await ledger.append(draft(i));
    await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    await ledger.append(draft(4));
    // Someone with raw table access rewrites the new entry's reason.
    const [, , , fourth] = await collect(ledger);
    await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: { ...fourth, reason: 'nothing to see' } }));

    const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });

    expect(run).toMatchObject({ status: 'FAILED', error: 'Terminal.LedgerTampered' });
    expect(run.events.map((e) => e.state)).toContain('Alert operators that the ledger failed verification');
    const [alert] = (await alerts()) as { Message: string }[];
    expect(alert?.Message).toMatch(/seq 4 modified/);
    expect((await audit().digests.all('fleet')).length).toBe(1);
  });

  it('detects truncation of digested entries in a full verification', async () => {
    for (let i = 0; i < 4; i++) await ledger.append(draft(i));
    await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    const { DeleteCommand } = await import('@aws-sdk/lib-dynamodb');
    await documentClient().send(new DeleteCommand({ TableName: stack.ref('StateStoreLedgerTable'), Key: { chain: 'fleet', seq: 4 } }));
    const report = await verifyLedger(audit());
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => p.kind)).toContain('truncated');
  });

  it('lists only from the digest latest.json names: a run reads that digest and latest.json, not the whole archive', async () => {
    for (let i = 1; i <= 3; i++) {
      await ledger.append(draft(i));
      expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    }
    const s3 = awsClient(S3Client);
    const pointer = await s3.send(new HeadObjectCommand({ Bucket: stack.ref('LedgerArchive'), Key: 'digests/fleet/latest.json' }));
    expect(pointer.Metadata).toEqual({ listafter: 'digests/fleet/000000000002.json', segmentsafter: 'segments/fleet/' });
    await ledger.append(draft(4));

    const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });

    expect(run.status).toBe('SUCCEEDED');
    expect(run.events.filter((e) => e.type === 'StateEntered' && e.state === 'Read a listed digest').length).toBe(2);
    expect((await audit().digests.all('fleet')).map((d) => [d.fromSeq, d.toSeq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
      [4, 4],
    ]);
  });

  it('refuses to sign when latest.json is gone and more digests are stored than a run leaves behind', async () => {
    const alerts = await listen('topic');
    await ledger.append(draft(1));
    const s3 = awsClient(S3Client);
    const bucket = stack.ref('LedgerArchive');
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const { createHash } = await import('node:crypto');
    // Fifty-one objects under the chain's prefix and no latest.json: the listing stops short.
    for (let i = 1; i <= 51; i++) {
      const body = `{"junk":${i}}`;
      await s3.send(new PutObjectCommand({ Bucket: bucket, Key: `digests/fleet/${String(i).padStart(12, '0')}.json`, Body: body, ContentMD5: createHash('md5').update(body).digest('base64') }));
    }

    const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });

    expect(run).toMatchObject({ status: 'FAILED', error: 'Terminal.LedgerTampered' });
    const [alert] = (await alerts()) as { Message: string }[];
    expect(alert?.Message).toMatch(/more than 50 digests of chain fleet follow the one latest\.json names/);
  });

  it('keeps one digest chain when a run stored its digest but failed to move latest.json', async () => {
    await ledger.append(draft(1));
    await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    await ledger.append(draft(2));
    const broken = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' }, {
      retryMs: 0,
      around: {
        'Point latest.json at the new digest': async () => {
          throw Object.assign(new Error('We encountered an internal error'), { name: 'S3.InternalErrorException' });
        },
      },
    });
    expect(broken.status).toBe('FAILED');
    await ledger.append(draft(3));
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    expect((await audit().digests.all('fleet')).map((d) => [d.fromSeq, d.toSeq])).toEqual([
      [1, 1],
      [2, 2],
      [3, 3],
    ]);
    expect(await verifyLedger(audit())).toMatchObject({ ok: true, digests: 3 });
  });

  it('reports a digest hidden behind a delete marker, and refuses a latest.json that points past the newest digest', async () => {
    for (let i = 0; i < 2; i++) await ledger.append(draft(i));
    await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    const s3 = awsClient(S3Client);
    const bucket = stack.ref('LedgerArchive');
    // A plain delete of a locked object adds a delete marker: the digest stays, but a listing hides it.
    await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'digests/fleet/000000000001.json' }));
    const report = await verifyLedger(audit());
    expect(report.problems).toContainEqual(expect.objectContaining({ kind: 'missing', detail: 'digest digests/fleet/000000000001.json is hidden behind a delete marker' }));

    await ledger.append(draft(9));
    const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    expect(run).toMatchObject({ status: 'FAILED', error: 'Terminal.LedgerTampered' });
    expect(run.events.find((e) => e.state === 'Verify the ledger and sign a digest' && e.cause)?.cause).toMatch(/latest\.json of chain fleet points past the newest stored digest/);
  });

  it('retries a contention error from the digest function and then succeeds', async () => {
    await ledger.append(draft(1));
    let calls = 0;
    const run = await runStateMachine(
      stack,
      'LedgerDigestStateMachine',
      { chain: 'fleet' },
      {
        retryMs: 0,
        around: {
          'Verify the ledger and sign a digest': async (input, real) => {
            calls += 1;
            if (calls === 1) throw Object.assign(new Error('lost the race'), { name: 'Retryable.LedgerContention' });
            return real(input);
          },
        },
      },
    );
    expect(run.status).toBe('SUCCEEDED');
    expect(calls).toBe(2);
    expect(run.events.filter((e) => e.type === 'StateRetried').map((e) => e.state)).toEqual(['Verify the ledger and sign a digest']);
  });
});

async function collect(l: DynamoLedger) {
  const items: Record<string, unknown>[] = [];
  for await (const item of l.entries()) items.push(item);
  return items;
}
