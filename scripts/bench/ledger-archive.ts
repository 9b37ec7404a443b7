/**
 * The ledger archive (measures, never asserts).
 *
 * archiverBench: the LedgerArchive function on the ledger table's stream against moto, batches of
 * the size a five-minute window gathers at 100,000 entries a day: AWS calls and DynamoDB write
 * units per 1,000 entries, bytes stored, and the month at that rate.
 *
 * archiveVerifyBench: verification at a million entries, from local segment files on one core:
 * - a chain of realistic entries (the interruption ingest's `pool.quarantined` shape, about
 *   580 bytes each as a segment line), cut into segments of the archiver's largest size and
 *   vouched for by signed digests (a local P-256 key, verified as KMS's public key would be);
 * - `verifyArchive` over a directory holding them, as `fleetwarden ledger verify --archive`
 *   runs it: wall time, entries per second;
 * - the floor: one SHA-256 over the same uncompressed bytes (what any verification must hash),
 *   and zstd's decompression of the same segments alone.
 *
 * Exported: archiveVerifyBench(), for scripts/bench.ts. Standalone: `tsx scripts/bench/ledger-archive.ts [--entries N]`.
 */
import { createHash } from 'node:crypto';
import { S3Client, GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { LedgerDraft } from '../../functions/ledger/chain';
import { verifyArchive } from '../../functions/ledger/archive-verify';
import { DirectoryArchive } from '../../functions/ledger/archive-directory';
import { PublicKeyVerifier } from '../../functions/ledger/digest';
import { MAX_SEGMENT_ENTRIES, decompressSegment } from '../../functions/ledger/segment';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import type { CountingProxy } from '../../local/counting-proxy';
import { LocalKeySigner, buildArchive, sealChain, writeArchive } from '../../local/ledger-archive';
import type { LocalStack } from '../../local/provision';
import { pumpStream } from '../../local/stream-source';

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const AZS = ['use1-az1', 'use1-az2', 'use1-az4', 'use1-az6'];
const TYPES = ['m5.large', 'c5.xlarge', 'r6i.2xlarge', 'm7g.large'];

/** An entry as the interruption ingest appends one when a PROD interruption closes a pool. */
function draft(i: number): LedgerDraft {
  const pool = `us-east-1/${AZS[i % 4]}/${TYPES[(i >> 2) % 4]}`;
  const eventId = `${(0x10000000 + i).toString(16)}-4c1d-4b7e-9a55-${String(i).padStart(12, '0')}`;
  return {
    actor: 'interruption-ingest',
    action: 'pool.quarantined',
    subject: pool,
    reason: `PROD spot interruption of i-0${(0xabc0000 + i).toString(16)} in account 111111111111: pool closed for every account for 15 days`,
    eventId,
    before: { quarantinedUntil: null, version: i % 7 },
    after: { quarantinedUntil: new Date(Date.UTC(2026, 11, 16) + i * 1000).toISOString(), quarantineEventId: eventId, riskScore: round(1 + (i % 100) / 37, 3), signals: 1 + (i % 6), version: 1 + (i % 7) },
  };
}

/** Entries a five-minute stream window holds at 100,000 entries a day (the archive's batching window, lib/constructs/ledger.ts). */
const ENTRIES_PER_DAY = 100_000;
const WINDOWS_PER_DAY = (24 * 60) / 5;
const BATCH = Math.round(ENTRIES_PER_DAY / WINDOWS_PER_DAY);
/** The stream mapping's own calls (DescribeStream, GetShardIterator, GetRecords: free, and not the function's). */
const MAPPING_CALLS = new Set(['DescribeTable', 'DescribeStream', 'GetShardIterator', 'GetRecords']);
/**
 * us-east-1 list prices: S3 PUT/LIST $0.005 per 1,000, S3 Standard $0.023 per GB-month,
 * DynamoDB on-demand $0.625 per million WRU and $0.125 per million RRU, Lambda $0.20 per million
 * requests and $0.0000133334 per GB-second on ARM64.
 */
const PRICE = { s3Request: 0.005 / 1000, gbMonth: 0.023, wru: 0.625 / 1e6, rru: 0.125 / 1e6, lambdaRequest: 0.2 / 1e6, gbSecond: 0.0000133334 };

export async function archiverBench(stack: LocalStack, proxy: CountingProxy, writeUnits: { mark(): { units: number; writes: number }; since(m: { units: number; writes: number }): { units: number; writes: number } }): Promise<Record<string, unknown>> {
  const chain = 'fleet';
  const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain });
  // What earlier sections appended is archived first (not measured).
  await pumpStream(stack, 'StateStoreLedgerTable', 'LedgerLedgerArchive');
  const batches = 10;
  for (let i = 0; i < batches * BATCH; i++) await ledger.append(draft(i));
  const mark = writeUnits.mark();
  proxy.reset();
  const started = performance.now();
  const run = await pumpStream(stack, 'StateStoreLedgerTable', 'LedgerLedgerArchive', { batchSize: BATCH });
  const localMs = performance.now() - started;
  const calls = Object.fromEntries(Object.entries(proxy.counts()).filter(([op]) => !MAPPING_CALLS.has(op)));
  const units = writeUnits.since(mark);
  const entries = batches * BATCH;
  const s3 = awsClient(S3Client);
  const keys = ((await s3.send(new ListObjectsV2Command({ Bucket: stack.ref('LedgerArchive'), Prefix: `segments/${chain}/` }))).Contents ?? []).slice(-batches);
  let stored = 0;
  for (const k of keys) stored += (await (await s3.send(new GetObjectCommand({ Bucket: stack.ref('LedgerArchive'), Key: k.Key }))).Body!.transformToByteArray()).length;
  const per1000 = (n: number) => round((n / entries) * 1000, 2);
  const callTotal = Object.values(calls).reduce((a, b) => a + b, 0);
  // The counting proxy names S3 requests by method (S3:PUT, S3:LIST, S3:GET).
  const s3Requests = Object.entries(calls).filter(([op]) => op.startsWith('S3:')).reduce((n, [, c]) => n + c, 0);
  const perDay = ENTRIES_PER_DAY / entries;
  const month = 30;
  const bytesPerMonth = stored * perDay * month;
  const lines = {
    s3Requests: s3Requests * perDay * month * PRICE.s3Request,
    dynamodbWrites: units.units * perDay * month * PRICE.wru,
    dynamodbReads: (calls.GetItem ?? 0) * perDay * month * PRICE.rru,
    lambdaRequests: run.batches * perDay * month * PRICE.lambdaRequest,
    // Billed for the local time of each batch here (against moto, one request at a time: an upper bound).
    lambdaCompute: (localMs / 1000) * perDay * month * PRICE.gbSecond,
    storageAfterOneMonth: (bytesPerMonth / 1e9) * PRICE.gbMonth,
  };
  return {
    entries,
    batches: run.batches,
    entriesPerBatch: BATCH,
    failed: run.failed,
    functionAwsCalls: calls,
    perThousandEntries: { awsCalls: per1000(callTotal), s3Requests: per1000(s3Requests), dynamodbWriteUnits: per1000(units.units) },
    storedBytes: stored,
    bytesPerEntry: round(stored / entries, 1),
    segmentSize: `${BATCH} entries (${Math.round(stored / batches / 1024)} KB compressed): what the stream's five-minute batching window gathers at ${ENTRIES_PER_DAY.toLocaleString('en-US')} entries a day; MAX_SEGMENT_ENTRIES (1,000) caps it at higher rates`,
    costPerMonthAt100kEntriesPerDay: { usd: round(Object.values(lines).reduce((a, b) => a + b, 0), 4), lines: Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, round(v, 5)])) },
    localMs: Math.round(localMs),
    note: 'one PutObject per segment (If-None-Match), one GetItem and two conditional PutItems of the position per segment (claim, advance); the stream mapping\'s own calls not counted (free). Storage grows by the month shown each month, kept for ledger.archiveRetentionDays',
  };
}

export async function archiveVerifyBench(options: { entries?: number } = {}): Promise<Record<string, unknown>> {
  const count = options.entries ?? 1_000_000;
  const chain = 'fleet';
  const signer = new LocalKeySigner();
  let started = performance.now();
  const entries = sealChain(chain, Array.from({ length: count }, (_, i) => draft(i)));
  const sealSeconds = (performance.now() - started) / 1000;
  // An hourly digest at 100,000 entries a day lists about 12 five-minute segments; here the
  // segments are the archiver's largest, and a digest every 12 of them.
  const built = await buildArchive(chain, entries, signer, { segmentSizes: [MAX_SEGMENT_ENTRIES], digestEvery: 12, digestTail: true });
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-archive-bench-'));
  try {
    writeArchive(dir, built.objects);
    const segments = [...built.objects.entries()].filter(([k]) => k.startsWith('segments/'));
    const compressed = segments.reduce((n, [, b]) => n + b.length, 0);
    // The lines themselves (one string of them all would pass V8's limit on a string's length).
    const raw = Buffer.concat(segments.map(([, body]) => decompressSegment(body)));

    // The floor: the same bytes hashed in one pass, and decompression alone.
    const floor = (fn: () => void) => {
      const times: number[] = [];
      for (let i = 0; i < 3; i++) {
        const t = performance.now();
        fn();
        times.push(performance.now() - t);
      }
      return Math.min(...times);
    };
    const sha256Ms = floor(() => createHash('sha256').update(raw).digest());
    const zstdMs = floor(() => {
      for (const [, body] of segments) decompressSegment(body);
    });

    const verifier = new PublicKeyVerifier(signer.publicKeyDer);
    const runs: number[] = [];
    let report: Awaited<ReturnType<typeof verifyArchive>> | undefined;
    for (let i = 0; i < 3; i++) {
      started = performance.now();
      report = await verifyArchive({ archive: new DirectoryArchive(dir), verifier, chain });
      runs.push(performance.now() - started);
    }
    const best = Math.min(...runs);
    return {
      entries: count,
      ok: report!.ok,
      problems: report!.problems.length,
      machine: { cpus: cpus().length, model: cpus()[0]?.model, node: process.version },
      rawBytes: raw.length,
      averageLineBytes: round(raw.length / count),
      segments: segments.length,
      entriesPerSegment: MAX_SEGMENT_ENTRIES,
      compressedBytes: compressed,
      compressionRatio: round(raw.length / compressed, 2),
      digests: built.digests.length,
      verify: { bestMs: Math.round(best), runsMs: runs.map(Math.round), entriesPerSecond: Math.round(count / (best / 1000)), target: '<= 2000 ms for 1,000,000 entries' },
      floor: {
        sha256OverRawBytesMs: Math.round(sha256Ms),
        sha256MBPerSecond: Math.round(raw.length / 1e6 / (sha256Ms / 1000)),
        zstdDecompressMs: Math.round(zstdMs),
        verifyOverSha256Floor: round(best / sha256Ms, 2),
      },
      sealSeconds: round(sealSeconds),
      note: 'verifyArchive over a directory as `fleetwarden ledger verify --archive DIR --public-key FILE` runs it: every digest signature (P-256), every segment SHA-256 against its digest, every entry hash and link, on one core (the process is single-threaded); best of 3 runs, the page cache warm. The floor is one SHA-256 pass over the same uncompressed lines: verification hashes each entry separately (one call per entry), reads and decompresses the segments, and checks seq and prevHash in place without parsing',
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--entries');
  archiveVerifyBench({ entries: at === -1 ? undefined : Number(process.argv[at + 1]) })
    .then((result) => console.log(JSON.stringify(result, null, 2)))
    .catch((error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    });
}
