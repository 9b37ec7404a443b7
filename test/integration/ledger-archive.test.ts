import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KMSClient } from '@aws-sdk/client-kms';
import { GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DynamoArchivePositions, S3ArchiveReader, S3SegmentStore, kmsPublicKey } from '../../functions/ledger/adapters';
import { DirectoryArchive } from '../../functions/ledger/archive-directory';
import { formatVerification, parseVerifyArgs, runVerify } from '../../functions/ledger/cli';
import { verifyArchive } from '../../functions/ledger/archive-verify';
import { seal } from '../../functions/ledger/chain';
import { DigestSchema, PublicKeyVerifier } from '../../functions/ledger/digest';
import { decompressSegment, encodeSegment, parseSegmentKey, segmentLine } from '../../functions/ledger/segment';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { writeArchive } from '../../local/ledger-archive';
import type { LocalStack } from '../../local/provision';
import { invokeFunction, runStateMachine } from '../../local/stepfunctions';
import { pumpStream } from '../../local/stream-source';
import { freshStack } from '../support';

let stack: LocalStack;
let ledger: DynamoLedger;
const dirs: string[] = [];

const draft = (i: number) => ({ actor: 'test', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'PROD spot interruption', eventId: `event-${i}` });
const appendN = async (from: number, to: number) => {
  for (let i = from; i <= to; i++) await ledger.append(draft(i), { dedupeKey: `event-${i}` });
};
const archiveFn = () => [...stack.functions.values()].find((f) => f.logicalId.startsWith('LedgerLedgerArchive'))!;
const pump = (options: { expire?: boolean } = {}) => pumpStream(stack, 'StateStoreLedgerTable', 'LedgerLedgerArchive', options);
const bucket = () => stack.ref('LedgerArchive');
const segments = async () => ((await awsClient(S3Client).send(new ListObjectsV2Command({ Bucket: bucket(), Prefix: 'segments/fleet/' }))).Contents ?? []).map((o) => parseSegmentKey(o.Key!, 'fleet')!);
const verifier = async () => new PublicKeyVerifier(await kmsPublicKey(awsClient(KMSClient), stack.attr('LedgerDigestSigningKey', 'Arn')));
const verifyOnline = async () => verifyArchive({ archive: new S3ArchiveReader(awsClient(S3Client), bucket()), verifier: await verifier(), chain: 'fleet', table: ledger });

/** The bucket downloaded into a directory, as `aws s3 sync` would. */
async function download(): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-archive-copy-'));
  dirs.push(dir);
  const reader = new S3ArchiveReader(awsClient(S3Client), bucket());
  const objects = new Map<string, Buffer>();
  for (const key of await reader.list('')) objects.set(key, (await reader.read(key))!);
  writeArchive(dir, objects);
  return dir;
}

beforeEach(async () => {
  stack = await freshStack();
  ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
  await pump({ expire: true }); // the stream of an earlier test's table is not this one's: start at its end
});
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('ledger archive (the LedgerArchive function on the table stream, moto)', () => {
  it("writes the table's stream to the locked bucket as one segment per batch, entries byte for byte, dedupe markers left out", async () => {
    await appendN(1, 7);

    const run = await pump();

    expect(run).toMatchObject({ batches: 1, failed: 0 });
    expect(run.records).toBe(14); // 7 entries and their 7 dedupe markers
    const [segment, ...more] = await segments();
    expect(more).toEqual([]);
    expect(segment).toMatchObject({ fromSeq: 1, toSeq: 7 });
    const s3 = awsClient(S3Client);
    const body = Buffer.from(await (await s3.send(new GetObjectCommand({ Bucket: bucket(), Key: segment!.key }))).Body!.transformToByteArray());
    const entries = [];
    for await (const e of ledger.entries(1)) entries.push(e);
    expect(decompressSegment(body).toString('utf8')).toBe(entries.map((e) => segmentLine(e as never)).join(''));
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket(), Key: segment!.key }));
    expect(head.ObjectLockMode).toBe('GOVERNANCE');
    expect(await new DynamoArchivePositions(documentClient(), stack.ref('StateStoreLocksTable')).read('fleet')).toMatchObject({ archivedTo: 7, tipHash: entries[6]!.hash });
  });

  it('changes nothing when a batch is delivered again', async () => {
    await appendN(1, 4);
    await pump();
    // The same batch once more, as the event source mapping redelivers after a timeout.
    await invokeFunction(stack, archiveFn(), { Records: await ledgerInsertRecords(1, 4) });
    expect((await segments()).map((s) => [s.fromSeq, s.toSeq])).toEqual([[1, 4]]);
  });

  it('fills the gap from the table when the stream lost records (archiver stopped for more than 24 hours, then restarted)', async () => {
    await appendN(1, 5);
    await pump();
    await appendN(6, 10);
    await pump({ expire: true }); // stopped: these records left the stream unseen
    await appendN(11, 12);

    const run = await pump();

    expect(run.failed).toBe(0);
    expect((await segments()).map((s) => [s.fromSeq, s.toSeq])).toEqual([
      [1, 5],
      [6, 12],
    ]);
    const report = await verifyOnline();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, archive: { entries: 12 }, table: { entries: 12, notYetArchived: 0 } });
    const cli = await runVerify(parseVerifyArgs(['--table', stack.ref('StateStoreLedgerTable'), '--bucket', bucket(), '--signing-key', stack.attr('LedgerDigestSigningKey', 'Arn')]));
    expect(formatVerification(cli)).toMatch(/^OK: chain "fleet", table 12 entries, archive 12 entries in 2 segments, 0 signed digests, tip seq 12/);
  });

  it('archives on the hourly catch-up what no stream record will ever bring', async () => {
    await appendN(1, 3);
    await pump({ expire: true });

    await invokeFunction(stack, archiveFn(), { chain: 'fleet' });

    expect((await segments()).map((s) => [s.fromSeq, s.toSeq])).toEqual([[1, 3]]);
  });

  it('finishes a claim a writer left when it died, under one key only (before and after its put)', async () => {
    await appendN(1, 6);
    const positions = new DynamoArchivePositions(documentClient(), stack.ref('StateStoreLocksTable'));
    const entries = [];
    for await (const e of ledger.entries(1)) entries.push(e);
    // Died after claiming 1..3 and putting the segment, before moving the position.
    await positions.write('fleet', { archivedTo: 0, tipHash: '0'.repeat(64), pending: { fromSeq: 1, toSeq: 3, tipHash: entries[2]!.hash as string }, version: 1 }, 0);
    const encoded = encodeSegment('fleet', entries.slice(0, 3) as never);
    await new S3SegmentStore(awsClient(S3Client), bucket()).put(encoded.ref, encoded.body);

    await invokeFunction(stack, archiveFn(), { chain: 'fleet' });
    expect((await segments()).map((s) => [s.fromSeq, s.toSeq])).toEqual([
      [1, 3],
      [4, 6],
    ]);

    // Died after claiming 7..8, before its put.
    await appendN(7, 8);
    const at = (await positions.read('fleet'))!;
    await positions.write('fleet', { ...at, pending: { fromSeq: 7, toSeq: 8, tipHash: (await ledger.tip())!.hash }, version: at.version + 1 }, at.version);
    await invokeFunction(stack, archiveFn(), { chain: 'fleet' });
    expect((await segments()).map((s) => [s.fromSeq, s.toSeq])).toEqual([
      [1, 3],
      [4, 6],
      [7, 8],
    ]);
    expect((await verifyOnline()).ok).toBe(true);
  });

  it('archives the entries as appended when one is rewritten in the table before its batch arrives, and verify names the rewrite', async () => {
    await appendN(1, 3);
    const [, second] = await tableEntries();
    await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: { ...second, reason: 'rewritten' } }));

    const run = await pump();

    expect(run.failed).toBe(0);
    const report = await verifyOnline();
    expect(report.problems[0]).toMatchObject({ seq: 2, kind: 'modified', where: 'table' });
    expect(report.problems.filter((p) => p.where !== 'table')).toEqual([]);
  });

  it('refuses to fill a gap from a table whose entries were rewritten: the batch fails with Terminal.LedgerTampered', async () => {
    await appendN(1, 3);
    await pump({ expire: true });
    const [, second] = await tableEntries();
    await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: { ...second, reason: 'rewritten' } }));
    await appendN(4, 4);

    const run = await pump();

    expect(run.error?.name).toBe('Terminal.LedgerTampered');
    expect(run.error?.message).toContain('seq 2 modified');
    expect(await segments()).toEqual([]);
  });
});

describe('digests over the archive, and ledger verify of table and archive', () => {
  it('lists the segments written since the previous digest with their SHA-256, chained by signature', async () => {
    await appendN(1, 5);
    await pump();
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    await appendN(6, 9);
    await pump();
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');

    const s3 = awsClient(S3Client);
    const read = async (key: string) => DigestSchema.parse(JSON.parse(await (await s3.send(new GetObjectCommand({ Bucket: bucket(), Key: key }))).Body!.transformToString()));
    const first = await read('digests/fleet/000000000001.json');
    const second = await read('digests/fleet/000000000006.json');
    const [a, b] = await segments();
    expect(first).toMatchObject({ version: 2, toSeq: 5, archivedTo: 5, segments: [{ fromSeq: 1, toSeq: 5, sha256: a!.sha256 }], previousSignature: null });
    expect(second).toMatchObject({ version: 2, fromSeq: 6, toSeq: 9, archivedTo: 9, segments: [{ fromSeq: 6, toSeq: 9, sha256: b!.sha256 }], previousSignature: first.signature });
    const pointer = await s3.send(new HeadObjectCommand({ Bucket: bucket(), Key: 'digests/fleet/latest.json' }));
    expect(pointer.Metadata?.segmentsafter).toBe(b!.key);

    const report = await verifyOnline();
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, digests: 2, segments: { vouched: 2, newerThanDigests: 0 }, archive: { entries: 9 }, table: { entries: 9 } });
  });

  it('names a table rewritten consistently from one entry on (every hash recomputed) where it parts from the archive', async () => {
    await appendN(1, 6);
    await pump();
    const entries = await tableEntries();
    let tip = { seq: 3, hash: entries[2]!.hash as string };
    for (const e of entries.slice(3)) {
      const forged = seal('fleet', { ...draftOf(e), subject: `${String(e.subject)}-elsewhere` }, tip, new Date(e.at as string));
      await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: forged }));
      tip = { seq: forged.seq, hash: forged.hash };
    }

    const report = await verifyOnline();

    expect(report.ok).toBe(false);
    expect(report.problems).toEqual([expect.objectContaining({ seq: 4, kind: 'table-archive-mismatch', where: 'table' })]);
  });

  it('names an altered segment in a downloaded copy, verified with the public key only', async () => {
    await appendN(1, 6);
    await pump();
    await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
    const dir = await download();
    const [segment] = await segments();
    const bytes = (await new DirectoryArchive(dir).read(segment!.key))!;
    bytes[bytes.length - 2]! ^= 0x01;
    writeFileSync(path.join(dir, segment!.key), bytes);

    const publicKey = path.join(dir, 'signing-key.der');
    writeFileSync(publicKey, await kmsPublicKey(awsClient(KMSClient), stack.attr('LedgerDigestSigningKey', 'Arn')));

    // As `fleetwarden ledger verify --archive DIR --public-key FILE` runs it.
    const offline = await runVerify(parseVerifyArgs(['--archive', dir, '--public-key', publicKey]));

    expect(offline.ok).toBe(false);
    expect(offline.problems[0]).toMatchObject({ seq: 1, kind: 'segment-altered', where: segment!.key });
    expect(formatVerification(offline)).toContain(`first broken point: altered segment at seq 1 (${segment!.key})`);
  });
});

async function tableEntries(): Promise<Record<string, unknown>[]> {
  const entries = [];
  for await (const e of ledger.entries(1)) entries.push(e);
  return entries;
}

const draftOf = (e: Record<string, unknown>) => ({ actor: e.actor as string, action: e.action as string, subject: e.subject as string, reason: e.reason as string, eventId: e.eventId as string });

/** The stream's INSERT records of entries fromSeq..toSeq, as a redelivered batch carries them. */
async function ledgerInsertRecords(fromSeq: number, toSeq: number) {
  const { marshall } = await import('@aws-sdk/util-dynamodb');
  const records = [];
  for await (const e of ledger.entries(fromSeq)) {
    if ((e.seq as number) > toSeq) break;
    records.push({ eventID: `redelivered-${String(e.seq)}`, eventName: 'INSERT', eventVersion: '1.1', eventSource: 'aws:dynamodb', awsRegion: 'us-east-1', eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/ledger/stream/x', dynamodb: { Keys: marshall({ chain: e.chain, seq: e.seq }), NewImage: marshall(e, { removeUndefinedValues: true }), SequenceNumber: String(e.seq), SizeBytes: 100, StreamViewType: 'NEW_AND_OLD_IMAGES' } });
  }
  return records;
}

describe('the daily verification of yesterday (the LedgerVerify function)', () => {
  const DAY = 86_400_000;
  const startOfYesterday = () => {
    const now = new Date();
    return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - 1));
  };
  const verifyFn = () => [...stack.functions.values()].find((f) => f.logicalId.startsWith('LedgerLedgerVerify'))!;
  /** Entries 1..3 two days ago, 4..8 yesterday, 9..10 today; archived and digested. */
  async function threeDays() {
    const since = startOfYesterday();
    const at = (ms: number) => () => new Date(ms);
    for (const [from, to, when] of [[1, 3, since.getTime() - DAY / 2], [4, 8, since.getTime() + DAY / 2], [9, 10, Date.now() - 1000]] as const) {
      const writer = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), clock: at(when) });
      for (let i = from; i <= to; i++) await writer.append(draft(i), { dedupeKey: `event-${i}` });
    }
    await pump();
    expect((await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' })).status).toBe('SUCCEEDED');
    return since;
  }

  it("checks yesterday's entries in the table, their digest and their segment, and nothing older", async () => {
    const since = await threeDays();

    const out = await invokeFunction(stack, verifyFn(), { chain: 'fleet', since: since.toISOString() });

    expect(out).toMatchObject({ ok: true, fromSeq: 4, toSeq: 10, entries: 7, segments: 1, notYetArchived: 0 });
  });

  it('fails with Terminal.LedgerTampered naming the first broken point: an entry of yesterday rewritten, a segment replaced', async () => {
    const since = await threeDays();
    const [, , , , fifth] = await tableEntries();
    await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: { ...fifth, reason: 'rewritten' } }));

    await expect(invokeFunction(stack, verifyFn(), { chain: 'fleet', since: since.toISOString() })).rejects.toMatchObject({ name: 'Terminal.LedgerTampered', message: expect.stringContaining('modified entry at seq 5 (table)') });

    await documentClient().send(new PutCommand({ TableName: stack.ref('StateStoreLedgerTable'), Item: fifth }));
    const [segment] = await segments();
    const { PutObjectCommand } = await import('@aws-sdk/client-s3');
    const forged = encodeSegment('fleet', (await tableEntries()).map((e) => ({ ...e, reason: 'rewritten' })) as never);
    await awsClient(S3Client).send(new PutObjectCommand({ Bucket: bucket(), Key: segment!.key, Body: forged.body, ChecksumAlgorithm: 'SHA256' }));

    await expect(invokeFunction(stack, verifyFn(), { chain: 'fleet', since: since.toISOString() })).rejects.toMatchObject({ name: 'Terminal.LedgerTampered', message: expect.stringContaining('altered segment at seq 1') });
  });
});
