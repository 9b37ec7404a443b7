import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { zstdCompressSync } from 'node:zlib';
import { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import { S3ArchiveReader, kmsPublicKey } from '../../functions/ledger/adapters';
import { formatVerification, runVerify } from '../../functions/ledger/cli';
import { DigestSchema } from '../../functions/ledger/digest';
import { decompressSegment, parseSegmentKey } from '../../functions/ledger/segment';
import { awsClient } from '../../functions/shared/aws';
import { runStateMachine } from '../../local/stepfunctions';
import { pumpStream } from '../../local/stream-source';
import type { DemoContext } from './timeline';

/**
 * The archive chapter: every entry the earlier chapters appended goes from the ledger table's
 * stream into the locked bucket as segments, a digest vouches for them, and `ledger verify`
 * checks table and archive, then a downloaded copy offline, then a copy with one altered segment.
 */
export async function archiveSteps({ stack, timeline }: DemoContext): Promise<void> {
  timeline.section("Ledger archive: the table's stream in S3 under Object Lock");
  const reader = new S3ArchiveReader(awsClient(S3Client), stack.ref('LedgerArchive'));
  // Small batches, so that the demo's few hundred records make several segments.
  const pumped = await pumpStream(stack, 'StateStoreLedgerTable', 'LedgerLedgerArchive', { batchSize: 60 });
  const refs = (await reader.list('segments/fleet/')).map((k) => parseSegmentKey(k, 'fleet')!);
  let bytes = 0;
  for (const ref of refs) bytes += (await reader.read(ref.key))!.length;
  timeline.step('DynamoDB stream -> LedgerArchive', `${pumped.records} stream records in ${pumped.batches} batch(es) (entries and dedupe markers of every chain), ${pumped.failed} failed`);
  timeline.detail(`chain "fleet": ${refs.length} segment(s), seq ${refs[0]?.fromSeq}..${refs.at(-1)?.toSeq}, ${bytes.toLocaleString('en-US')} bytes zstd; keys name range and SHA-256, e.g. ${refs[0]?.key.replace(/-([0-9a-f]{12})[0-9a-f]{52}/, '-$1…')}`);

  const run = await runStateMachine(stack, 'LedgerDigestStateMachine', { chain: 'fleet' });
  const latest = DigestSchema.parse(JSON.parse((await reader.read('digests/fleet/latest.json'))!.toString('utf8')));
  if (latest.version === 2) {
    timeline.step('LedgerDigest', `${run.status}: digest of seq ${latest.fromSeq}..${latest.toSeq} lists ${latest.segments.length} segment(s) with their SHA-256, archive vouched for up to seq ${latest.archivedTo}, chained to the previous digest's signature`);
  }

  const online = await runVerify({ chain: 'fleet', table: stack.ref('StateStoreLedgerTable'), bucket: stack.ref('LedgerArchive'), 'signing-key': stack.attr('LedgerDigestSigningKey', 'Arn'), json: false });
  timeline.step('fleetwarden ledger', 'verify --stack Fleetwarden   (table, archive, digests, and that they agree)');
  for (const line of formatVerification(online).split('\n')) (online.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(line);

  // An auditor's copy: the bucket downloaded, the key's public half from KMS, no AWS access afterwards.
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-demo-archive-'));
  try {
    const copy = path.join(dir, 'archive');
    for (const key of [...(await reader.list('segments/fleet/')), ...(await reader.list('digests/fleet/'))]) {
      mkdirSync(path.dirname(path.join(copy, key)), { recursive: true });
      writeFileSync(path.join(copy, key), (await reader.read(key))!);
    }
    const publicKey = path.join(dir, 'signing-key.der');
    writeFileSync(publicKey, await kmsPublicKey(awsClient(KMSClient), stack.attr('LedgerDigestSigningKey', 'Arn')));
    const offline = await runVerify({ chain: 'fleet', archive: copy, 'public-key': publicKey, json: false });
    timeline.step('auditor (offline)', 'aws s3 sync s3://<archive> ./archive; fleetwarden ledger verify --archive ./archive --public-key signing-key.der');
    for (const line of formatVerification(offline).split('\n')) (offline.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(line);

    // One entry's reason rewritten in the copy of a middle segment, recompressed under the same key.
    const victim = refs[Math.floor(refs.length / 2)]!;
    const file = path.join(copy, victim.key);
    const lines = decompressSegment(readFileSync(file)).toString('utf8').split('\n');
    const at = Math.floor(lines.length / 2);
    lines[at] = lines[at]!.replace(/"reason":"[^"]*"/, '"reason":"nothing happened here"');
    writeFileSync(file, zstdCompressSync(Buffer.from(lines.join('\n'))));
    timeline.step('someone', `rewrites the reason of one entry in the copy of segment ${victim.fromSeq}..${victim.toSeq}, recompressed under the same key`);
    const tampered = await runVerify({ chain: 'fleet', archive: copy, 'public-key': publicKey, json: false });
    for (const line of formatVerification(tampered).split('\n')) (tampered.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(line);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
