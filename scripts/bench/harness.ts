/**
 * What the bench sections that run a workflow over a seeded fleet share (enforcement, waste):
 * their own moto with a Python prelude, meters of what DynamoDB and EventBridge bill read off
 * the SDK clients, and the local timeouts lifted. One home, so that every section counts the
 * same way.
 */
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EventBridgeClient } from '@aws-sdk/client-eventbridge';
import { awsClient } from '../../functions/shared/aws';
import { PROJECT_ROOT } from '../../lib/paths';
import { type MotoServer, freePort } from '../../local/moto';
import type { LocalStack } from '../../local/provision';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);

/**
 * Stops moto keeping every DynamoDB model instance it ever created (BaseModel.instances_tracked,
 * for the /moto-api listing nothing here reads): at bench scale it grew moto past 14 GB.
 */
export const UNTRACKED_DYNAMODB_PRELUDE = `
from moto.core.base_backend import model_data
import moto.dynamodb.models  # registers DynamoDB's model classes
class Untracked(list):
    def append(self, _instance):
        pass
for cls in model_data["dynamodb"].values():
    cls.instances_tracked = Untracked()
`;

/**
 * test/emulators/moto_serial.py after a Python prelude (patches of moto, none of them in what is
 * measured), on a free loopback port, as local/moto.ts's startMoto starts it.
 */
export async function startMotoWithPrelude(prelude: string, timeoutMs = 30_000): Promise<MotoServer & { pid: number }> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const script = path.join(PROJECT_ROOT, 'test', 'emulators', 'moto_serial.py');
  const child = spawn(path.join(PROJECT_ROOT, '.venv', 'bin', 'python'), ['-c', `import runpy, sys\n${prelude}\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name="__main__")\n`, script, '127.0.0.1', String(port)], {
    env: { ...process.env, MOTO_EC2_LOAD_DEFAULT_AMIS: 'false' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  process.once('exit', () => child.kill('SIGKILL'));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(timer);
  };
  for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(100)) {
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}:\n${stderr}`);
    if (await fetch(`${endpoint}/moto-api/data.json`).then((r) => r.ok, () => false)) return { endpoint, stop, pid: child.pid! };
  }
  await stop();
  throw new Error(`moto did not answer on ${endpoint} within ${timeoutMs} ms:\n${stderr}`);
}

/**
 * An item's size as DynamoDB bills it: each attribute's name plus its value (strings in UTF-8,
 * numbers about one byte per two digits plus one, maps and lists 3 bytes plus their members).
 * Accepts plain and marshalled ({ S: … }) items alike.
 */
export function itemBytes(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value);
  if (typeof value === 'number') return Math.ceil(String(Math.abs(value)).replace(/[.-]/g, '').length / 2) + 1;
  if (Array.isArray(value)) return 3 + sum(value.map(itemBytes));
  const entries = Object.entries(value as Record<string, unknown>);
  const [only] = entries;
  if (entries.length === 1 && only && ['S', 'N', 'BOOL', 'NULL', 'M', 'L', 'B', 'SS', 'NS'].includes(only[0])) return only[0] === 'N' ? itemBytes(Number(only[1])) : itemBytes(only[1]);
  return 3 + sum(entries.map(([name, v]) => Buffer.byteLength(name) + itemBytes(v)));
}

export interface Totals {
  writeUnits: number;
  /** Of cancelled transactions (retried): counted apart. */
  cancelledWriteUnits: number;
  readUnits: number;
  writeUnitsByTable: Record<string, number>;
  writesByTable: Record<string, number>;
  transactions: number;
  cancelledTransactions: number;
  eventBridgeEntries: number;
}

/**
 * DynamoDB request units as on-demand DynamoDB bills them, counted on the shared clients (the
 * handler's DynamoDB and EventBridge calls go through them):
 * - writes: a PutItem, UpdateItem or DeleteItem 1 WRU per started KB of the item; a
 *   TransactWriteItems 2 WRU per started KB of each of its items (a finding's ledger append is 3
 *   items: entry, dedupe marker, finding); a cancelled transaction counted apart, as if it had
 *   written;
 * - reads: a consistent GetItem or Query 1 RRU per started 4 KB read (at least 1), an
 *   eventually consistent one (the open-findings GSI) half that; a BatchGetItem as a GetItem
 *   per key it processed (a key with no item at the minimum);
 * - EventBridge: entries of each PutEvents; the details of `keepDetailsOf` events are kept.
 * Installed once per client; read with mark() and since().
 */
export function installMeters(tableNames: Record<string, string>, options: { keepDetailsOf?: string } = {}) {
  const totals: Totals = { writeUnits: 0, cancelledWriteUnits: 0, readUnits: 0, writeUnitsByTable: {}, writesByTable: {}, transactions: 0, cancelledTransactions: 0, eventBridgeEntries: 0 };
  const reports: Record<string, unknown>[] = [];
  const tableOf = (name: string) => Object.entries(tableNames).find(([, physical]) => physical === name)?.[0] ?? name;
  const write = (table: string, units: number, cancelled: boolean) => {
    if (cancelled) {
      totals.cancelledWriteUnits += units;
      return;
    }
    const t = tableOf(table);
    totals.writeUnits += units;
    totals.writeUnitsByTable[t] = (totals.writeUnitsByTable[t] ?? 0) + units;
    totals.writesByTable[t] = (totals.writesByTable[t] ?? 0) + 1;
  };
  type Put = { TableName: string; Item?: Record<string, unknown>; Key?: Record<string, unknown> };
  type BatchGet = Record<string, { Keys?: unknown[]; ConsistentRead?: boolean }>;
  type Input = Put & { TransactItems?: Record<string, Put | undefined>[]; ConsistentRead?: boolean; RequestItems?: BatchGet };
  type Output = { Item?: unknown; Items?: unknown[]; Responses?: Record<string, unknown[]>; UnprocessedKeys?: BatchGet };
  const wru = (p: Put) => Math.max(1, Math.ceil(itemBytes(p.Item ?? p.Key ?? {}) / 1024));
  const rru = (items: unknown[], consistent: boolean) => Math.max(1, Math.ceil(sum(items.map(itemBytes)) / 4096)) * (consistent ? 1 : 0.5);
  const record = (command: string, input: Input, output: Output | undefined) => {
    if (command === 'PutItemCommand' || command === 'UpdateItemCommand' || command === 'DeleteItemCommand') write(input.TableName, wru(input), false);
    if (command === 'TransactWriteItemsCommand') {
      for (const item of input.TransactItems ?? []) {
        const p = item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck;
        if (p) write(p.TableName, 2 * wru(p), !output);
      }
    }
    if (!output) return;
    if (command === 'GetItemCommand') totals.readUnits += rru(output.Item ? [output.Item] : [], input.ConsistentRead === true);
    if (command === 'QueryCommand' || command === 'ScanCommand') totals.readUnits += rru(output.Items ?? [], input.ConsistentRead === true);
    if (command === 'BatchGetItemCommand') {
      for (const [table, request] of Object.entries(input.RequestItems ?? {})) {
        const found = output.Responses?.[table] ?? [];
        const processed = (request.Keys?.length ?? 0) - (output.UnprocessedKeys?.[table]?.Keys?.length ?? 0);
        const perItem = request.ConsistentRead ? 1 : 0.5;
        totals.readUnits += (sum(found.map((item) => Math.max(1, Math.ceil(itemBytes(item) / 4096)))) + Math.max(0, processed - found.length)) * perItem;
      }
    }
  };
  awsClient(DynamoDBClient).middlewareStack.add(
    (next, context) => async (args) => {
      const command = context.commandName ?? '';
      const input = args.input as Input;
      if (command === 'TransactWriteItemsCommand') totals.transactions += 1;
      try {
        const result = await next(args);
        record(command, input, (result.output ?? {}) as Output);
        return result;
      } catch (error) {
        if ((error as Error).name === 'TransactionCanceledException') {
          totals.cancelledTransactions += 1;
          record(command, input, undefined);
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'fleetwardenBenchUnits' },
  );
  awsClient(EventBridgeClient).middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName === 'PutEventsCommand') {
        const entries = (args.input as { Entries?: { DetailType?: string; Detail?: string }[] }).Entries ?? [];
        totals.eventBridgeEntries += entries.length;
        for (const e of entries) if (e.DetailType === options.keepDetailsOf && e.Detail) reports.push(JSON.parse(e.Detail) as Record<string, unknown>);
      }
      return next(args);
    },
    { step: 'initialize', name: 'fleetwardenBenchEntries' },
  );
  const mark = (): Totals & { reports: number } => ({ ...structuredClone(totals), reports: reports.length });
  const delta = (now: Record<string, number>, then: Record<string, number>) => Object.fromEntries(Object.entries(now).flatMap(([t, n]) => (n > (then[t] ?? 0) ? [[t, n - (then[t] ?? 0)]] : [])));
  const since = (m: Totals & { reports: number }) => ({
    writeUnits: totals.writeUnits - m.writeUnits,
    cancelledWriteUnits: totals.cancelledWriteUnits - m.cancelledWriteUnits,
    readUnits: totals.readUnits - m.readUnits,
    writeUnitsByTable: delta(totals.writeUnitsByTable, m.writeUnitsByTable),
    writesByTable: delta(totals.writesByTable, m.writesByTable),
    transactions: totals.transactions - m.transactions,
    cancelledTransactions: totals.cancelledTransactions - m.cancelledTransactions,
    eventBridgeEntries: totals.eventBridgeEntries - m.eventBridgeEntries,
    details: reports.slice(m.reports),
  });
  return { mark, since };
}
export type Meters = ReturnType<typeof installMeters>;

/** Every timeout of the local run (the tasks', the execution's, the function's): a day. */
export const LOCAL_TIMEOUT_SECONDS = 86_400;

/** An ASL definition with every TimeoutSeconds (the execution's, every task's, in Map item processors too) set to a day. */
function withLocalTimeoutSeconds(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withLocalTimeoutSeconds);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, k === 'TimeoutSeconds' ? LOCAL_TIMEOUT_SECONDS : withLocalTimeoutSeconds(v)]));
}

/**
 * The stack as the scan runs here: its state machines' and functions' timeouts lifted (the
 * local runner enforces the states' TimeoutSeconds, and the handler's middy stops 5 ms before
 * the function's Timeout). The scan step's 15 minutes are sized for AWS's latency; moto,
 * answering one request at a time, takes longer for the first scan's ~48,000 findings, and a
 * timed-out step is reported not scanned while its handler goes on writing in the background.
 */
export const withLocalTimeouts = (stack: LocalStack): LocalStack => ({
  ...stack,
  stateMachines: new Map([...stack.stateMachines].map(([id, m]) => [id, { ...m, definition: withLocalTimeoutSeconds(m.definition) as Record<string, unknown> }])),
  functions: new Map([...stack.functions].map(([id, f]) => [id, { ...f, timeoutSeconds: LOCAL_TIMEOUT_SECONDS }])),
});

const toMb = (bytes: number) => Number((bytes / 1024 / 1024).toFixed(1));

/**
 * This process's memory, sampled every `everyMs` until the returned function is called: where it
 * started, its highs, and the process's lifetime high-water mark (getrusage), which is above its
 * value at the start only if the measured work set a new one.
 */
export function sampleMemory(everyMs: number) {
  const start = process.memoryUsage();
  const maxRssStartKb = process.resourceUsage().maxRSS;
  const peak = { rss: start.rss, heapUsed: start.heapUsed, external: start.external + start.arrayBuffers };
  const take = () => {
    const m = process.memoryUsage();
    peak.rss = Math.max(peak.rss, m.rss);
    peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
    peak.external = Math.max(peak.external, m.external + m.arrayBuffers);
  };
  const timer = setInterval(take, everyMs);
  return () => {
    clearInterval(timer);
    take();
    const maxRssKb = process.resourceUsage().maxRSS;
    return {
      rssAtStartMb: toMb(start.rss),
      peakRssMb: toMb(peak.rss),
      heapUsedAtStartMb: toMb(start.heapUsed),
      peakHeapUsedMb: toMb(peak.heapUsed),
      peakHeapGrowthMb: toMb(peak.heapUsed - start.heapUsed),
      peakExternalMb: toMb(peak.external),
      processMaxRssMb: Number((maxRssKb / 1024).toFixed(1)),
      newProcessHighWater: maxRssKb > maxRssStartKb,
    };
  };
}
