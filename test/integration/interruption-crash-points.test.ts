import { randomUUID } from 'node:crypto';
import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfiguredAccounts } from '../../functions/shared/account-directory';
import { parseInterruptionEvent } from '../../functions/interruption/events';
import { type IngestDeps, IngestMemory, ingestInterruption } from '../../functions/interruption/ingest';
import type { DomainEvent } from '../../functions/shared/bus';
import { Ec2InstanceResolver } from '../../functions/interruption/instances';
import { poolKey } from '../../functions/interruption/pool';
import { DynamoPoolRiskStore } from '../../functions/interruption/pool-store';
import { MAX_HISTORY, type PoolRiskRecord, signalCount } from '../../functions/interruption/risk';
import { verifyChain } from '../../functions/ledger/chain';
import { sealPending } from '../../functions/ledger/pending';
import { DynamoLedger, type SettleResult } from '../../functions/ledger/store';
import { AccountSessions } from '../../functions/shared/accounts';
import { documentClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { fixture, freshStack, launchInstance } from '../support';

/**
 * The ingest's writes are single-item conditional puts in a recoverable order (the pool record
 * carrying its pending ledger entry, then the entry; or the dedupe marker holding the entry,
 * then the entry), then the publish. These tests make the process die at every point between
 * them (a client around the real one, against moto, that throws before or after its n-th write
 * lands), then redeliver: every fact ends with exactly one ledger entry and the right pool
 * record, and its events go out.
 */
const PROD = '111111111111';
const policy = { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 };

let stack: LocalStack;
const resolver = new Ec2InstanceResolver(new AccountSessions('123456789012', 'fleetwarden-member'));

beforeAll(async () => {
  stack = await freshStack();
});

class Crash extends Error {
  override name = 'Crash';
}

/** The real document client, the process dying once: before its n-th write is sent, or right after it landed. */
function crashingClient(at: number, when: 'before' | 'after'): DynamoDBDocumentClient {
  const real = documentClient();
  let writes = 0;
  return {
    send: async (command: Parameters<DynamoDBDocumentClient['send']>[0]) => {
      const write = command instanceof PutCommand && ++writes === at;
      if (write && when === 'before') throw new Crash(`crash before write ${at}`);
      const out = await real.send(command as never);
      if (write && when === 'after') throw new Crash(`crash after write ${at}`);
      return out;
    },
  } as unknown as DynamoDBDocumentClient;
}

/** One process (container) of the ingest on the real adapters: its own ledger writer and memory. */
function processOn(chain: string, options: { doc?: DynamoDBDocumentClient; failPublishOnce?: boolean; ledger?: DynamoLedger } = {}) {
  const doc = options.doc ?? documentClient();
  const published: DomainEvent[] = [];
  let failPublish = options.failPublishOnce ?? false;
  const deps: IngestDeps & { ledger: DynamoLedger; pools: DynamoPoolRiskStore } = {
    accounts: new ConfiguredAccounts({ [PROD]: 'PROD' }),
    policy,
    resolver,
    pools: new DynamoPoolRiskStore(doc, stack.ref('StateStorePoolRiskTable')),
    ledger: options.ledger ?? new DynamoLedger(doc, { tableName: stack.ref('StateStoreLedgerTable'), chain }),
    publisher: {
      publish: async (events) => {
        if (failPublish) {
          failPublish = false;
          throw new Crash('crash while publishing');
        }
        published.push(...events);
      },
    },
    clock: () => new Date(),
    actor: 'test',
    memory: new IngestMemory(),
  };
  return { deps, published };
}

const ledgerOf = (chain: string) => new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain });
const pools = () => new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable'));

async function entries(chain: string) {
  const items: Record<string, any>[] = [];
  for await (const item of ledgerOf(chain).entries()) items.push(item);
  return items;
}

let pools_ = 0;
const TYPES = ['m5', 'c5', 'r5', 'm6i', 'c6i', 'r6i', 'm6a', 'c6a', 'r6a', 'm7i'].flatMap((f) => ['large', 'xlarge', '2xlarge', '4xlarge'].map((s) => `${f}.${s}`));
/** A Spot instance in a pool no other test of this file uses. */
async function freshInstance(spot = true) {
  const n = pools_++;
  const instanceId = await launchInstance(PROD, { spot, instanceType: TYPES[n % TYPES.length], zone: `us-east-1${'abcdef'[Math.floor(n / TYPES.length)]}` });
  const facts = (await resolver.resolve(PROD, 'us-east-1', [instanceId])).get(instanceId)!;
  return { instanceId, pool: facts.pool ? poolKey(facts.pool) : undefined };
}

const eventFor = (name: string, instanceId: string, time = new Date()) => parseInterruptionEvent(fixture(name, { id: randomUUID(), account: PROD, instanceId, time: time.toISOString() }));

/** The pool record's pending entry is in the chain, exactly as placed. */
async function expectSettled(record: PoolRiskRecord | undefined, chain: string) {
  expect(record?.pending).toBeDefined();
  const sealed = sealPending(record!.pending!);
  expect((await entries(chain)).find((e) => e.seq === sealed.seq)).toEqual(sealed);
}

const SCENARIOS = [
  { name: 'a PROD Spot interruption (the pool record, then its entry)', fixture: 'spot-interruption-warning', spot: true, writes: 2, published: ['InstanceInterrupted', 'PoolQuarantined'] },
  { name: 'an ASG termination (its dedupe marker, then its entry)', fixture: 'asg-terminate-lifecycle-action', spot: false, writes: 2, published: ['InstanceInterrupted'] },
] as const;

const CRASH_POINTS = [
  ...[1, 2].flatMap((at) => (['before', 'after'] as const).map((when) => ({ label: `${when} write ${at}`, at, when }) as const)),
  { label: 'while publishing', at: 0, when: 'publish' },
] as const;

describe('interruption ingest: a crash at every point between its writes, then a redelivery', () => {
  for (const scenario of SCENARIOS) {
    for (const point of CRASH_POINTS) {
      for (const redelivery of ['a new process', 'the same process'] as const) {
        it(`${scenario.name}: crash ${point.label}, redelivered to ${redelivery}: one entry, the right record, its events out`, async () => {
          const chain = `crash-${randomUUID()}`;
          const { instanceId, pool } = await freshInstance(scenario.spot);
          const event = eventFor(scenario.fixture, instanceId);
          const first = processOn(chain, point.when === 'publish' ? { failPublishOnce: true } : { doc: crashingClient(point.at, point.when) });

          await expect(ingestInterruption(event, first.deps)).rejects.toThrow(Crash);

          // What the crash left: a pool record changes only together with the entry it owes.
          const recorded = await entries(chain);
          const left = pool ? await pools().get(pool) : undefined;
          if (scenario.spot) {
            const applied = left?.history.some((h) => h.eventId === event.eventId) ?? false;
            expect(applied).toBe(point.when === 'publish' || point.at === 2 || (point.at === 1 && point.when === 'after'));
            if (applied) expect(left?.pending?.eventId).toBe(event.eventId);
            expect(recorded).toEqual(point.when === 'publish' || (point.at === 2 && point.when === 'after') ? [sealPending(left!.pending!)] : []);
          } else {
            expect(recorded).toHaveLength(point.when === 'publish' || (point.at === 2 && point.when === 'after') ? 1 : 0);
          }

          // The same process keeps its memory and ledger writer (its client crashed once only).
          const again = redelivery === 'a new process' ? processOn(chain) : first;
          const outcome = await ingestInterruption(event, again.deps);

          const after = await entries(chain);
          expect(after.map((e) => [e.eventId, e.subject])).toEqual([[event.eventId, scenario.spot ? pool : instanceId]]);
          expect(verifyChain(chain, after).ok).toBe(true);
          expect(again.published.map((e) => e.detailType).sort()).toEqual([...scenario.published]);
          if (scenario.spot) {
            const record = await pools().get(pool!);
            expect(record).toMatchObject({ version: 1, history: [expect.objectContaining({ eventId: event.eventId })] });
            expect(record?.quarantineEventId).toBe(event.eventId);
            await expectSettled(record, chain);
            expect(after[0]!.after).toMatchObject({ interruptions: 1, quarantinedUntil: record!.quarantinedUntil });
          }
          // Only a crash before the first write left nothing to find.
          expect(outcome.instances[0]!.duplicate).toBe(!(point.at === 1 && point.when === 'before'));
          // Done now: a further delivery changes nothing and says it is a duplicate.
          const third = processOn(chain);
          expect((await ingestInterruption(event, third.deps)).instances[0]!.duplicate).toBe(true);
          expect(await entries(chain)).toEqual(after);
          if (scenario.spot) expect((await pools().get(pool!))?.version).toBe(1);
        });
      }
    }
  }

  it('has the next writer of the pool write the entry a crashed one owed, before its own, in order', async () => {
    const chain = `next-${randomUUID()}`;
    const { instanceId, pool } = await freshInstance();
    const a = eventFor('spot-interruption-warning', instanceId, new Date(Date.now() - 1000));
    const b = eventFor('rebalance-recommendation', instanceId);
    await expect(ingestInterruption(a, processOn(chain, { doc: crashingClient(1, 'after') }).deps)).rejects.toThrow(Crash);

    await ingestInterruption(b, processOn(chain).deps);

    const recorded = await entries(chain);
    expect(recorded.map((e) => [e.seq, e.eventId, e.action])).toEqual([
      [1, a.eventId, 'pool.quarantined'],
      [2, b.eventId, 'pool.rebalance-recorded'],
    ]);
    expect(recorded[1]!.before).toEqual({ quarantinedUntil: recorded[0]!.after.quarantinedUntil, riskScore: recorded[0]!.after.riskScore, interruptions: 1 });
    const late = processOn(chain);
    expect((await ingestInterruption(a, late.deps)).instances[0]!.duplicate).toBe(true);
    expect(late.published.map((e) => e.detailType).sort()).toEqual(['InstanceInterrupted', 'PoolQuarantined']);
    expect(await entries(chain)).toEqual(recorded);
    expect(verifyChain(chain, recorded).ok).toBe(true);
    await expectSettled(await pools().get(pool!), chain);
  });

  it('places the entry again, in the record first, when another writer took its seq; a crash after that move recovers too', async () => {
    for (const crashAfterMove of [false, true]) {
      const chain = `displaced-${randomUUID()}`;
      const { instanceId, pool } = await freshInstance();
      const event = eventFor('spot-interruption-warning', instanceId);
      // Writes: the record (1), the entry at the taken seq (2, refused), the record moved (3), the entry (4).
      const doc = crashAfterMove ? crashingClient(3, 'after') : documentClient();
      const ledger = new (class extends DynamoLedger {
        private raced = false;
        override async settle(pending: Parameters<DynamoLedger['settle']>[0], options?: { fresh?: boolean }): Promise<SettleResult> {
          if (!this.raced) {
            this.raced = true;
            await ledgerOf(chain).append({ actor: 'gatekeeper', action: 'pool.capacity-blocked', subject: 'elsewhere', reason: 'another writer', eventId: 'other' });
          }
          return super.settle(pending, options);
        }
      })(doc, { tableName: stack.ref('StateStoreLedgerTable'), chain });
      const ingest = ingestInterruption(event, processOn(chain, { doc, ledger }).deps);
      if (crashAfterMove) {
        await expect(ingest).rejects.toThrow(Crash);
        expect(await pools().get(pool!)).toMatchObject({ version: 2, pending: { seq: 2, eventId: event.eventId } });
        expect((await entries(chain)).map((e) => e.eventId)).toEqual(['other']);
        await ingestInterruption(event, processOn(chain).deps);
      } else {
        await ingest;
      }

      const recorded = await entries(chain);
      expect(recorded.map((e) => [e.seq, e.eventId])).toEqual([
        [1, 'other'],
        [2, event.eventId],
      ]);
      expect(verifyChain(chain, recorded).ok).toBe(true);
      const record = await pools().get(pool!);
      expect(record).toMatchObject({ version: 2, pending: { seq: 2 } });
      await expectSettled(record, chain);
    }
  });

  it(`records a late signal older than the ${MAX_HISTORY} kept ones once (looked up in the ledger), and changes nothing for a forgotten one redelivered`, async () => {
    const chain = `late-${randomUUID()}`;
    const { instanceId, pool } = await freshInstance();
    const t = Date.now() - 3_600_000;
    const signals = Array.from({ length: MAX_HISTORY + 3 }, (_, i) => eventFor(i % 2 ? 'rebalance-recommendation' : 'spot-interruption-warning', instanceId, new Date(t + (i + 1) * 60_000)));
    const p = processOn(chain);
    for (const s of signals) await ingestInterruption(s, p.deps);
    const full = await pools().get(pool!);
    expect(full?.forgotten).toMatchObject({ count: 3, eventId: signals[2]!.eventId });

    // A new signal from before the newest forgotten one: applied (to the summary), once, even across a crash.
    const late = eventFor('rebalance-recommendation', instanceId, new Date(t + 30_000));
    await expect(ingestInterruption(late, processOn(chain, { doc: crashingClient(1, 'after') }).deps)).rejects.toThrow(Crash);
    const recovered = await ingestInterruption(late, processOn(chain).deps);
    expect(recovered.instances[0]).toMatchObject({ duplicate: true });
    // Redeliveries, in fresh processes: the late one and a forgotten one change nothing.
    for (const again of [late, signals[0]!, signals[1]!]) {
      const q = processOn(chain);
      expect((await ingestInterruption(again, q.deps)).instances[0]).toMatchObject({ action: 'none', duplicate: true });
      expect(q.published.map((e) => e.detailType)).toContain('InstanceInterrupted');
    }

    const recorded = await entries(chain);
    expect(recorded.map((e) => e.eventId)).toEqual([...signals.map((s) => s.eventId), late.eventId]);
    expect(recorded.at(-1)!.action).toBe('pool.rebalance-recorded');
    expect(verifyChain(chain, recorded).ok).toBe(true);
    const record = await pools().get(pool!);
    expect(signalCount(record)).toBe(MAX_HISTORY + 4);
    expect(record).toMatchObject({ version: full!.version + 1, forgotten: { count: 4 } });
    await expectSettled(record, chain);
  });
});

describe('interruption ingest over records and entries written before (transactions, markers, 200 kept signals)', () => {
  it('recognises a redelivered event it recorded then, once the record has summed it up, by its dedupe marker', async () => {
    const chain = `legacy-${randomUUID()}`;
    const { instanceId, pool } = await freshInstance();
    const t = Date.now() - 3_600_000;
    const old = Array.from({ length: MAX_HISTORY + 3 }, (_, i) => eventFor('rebalance-recommendation', instanceId, new Date(t + i * 60_000)));
    // What the transaction-era ingest left: the record (every signal kept, no seqs) written in one
    // transaction with each entry and its marker.
    const ledger = ledgerOf(chain);
    let record: PoolRiskRecord | undefined;
    for (const e of old) {
      const history = [...(record?.history ?? []), { eventId: e.eventId, at: e.time.toISOString(), kind: 'rebalance' as const, account: PROD, environment: 'PROD' as const }];
      const next: PoolRiskRecord = { pool: pool!, history, version: (record?.version ?? 0) + 1 };
      await ledger.append(
        { actor: 'interruption-ingest', action: 'pool.rebalance-recorded', subject: pool!, reason: 'recorded', eventId: e.eventId },
        { dedupeKey: e.eventId, alsoWrite: [pools().conditionalPut(next)] },
      );
      record = next;
    }
    const fresh = eventFor('spot-interruption-warning', instanceId);
    await ingestInterruption(fresh, processOn(chain).deps);
    const summed = await pools().get(pool!);
    expect(summed?.forgotten).toMatchObject({ count: old.length + 1 - MAX_HISTORY, marked: true });
    expect(summed?.forgotten?.fromSeq).toBeUndefined();

    for (const again of [old[0]!, old[3]!, fresh]) {
      const p = processOn(chain);
      expect((await ingestInterruption(again, p.deps)).instances[0]).toMatchObject({ duplicate: true });
      expect(p.published.map((e) => e.detailType)).toContain('InstanceInterrupted');
    }
    const recorded = await entries(chain);
    expect(recorded.map((e) => e.eventId)).toEqual([...old, fresh].map((e) => e.eventId));
    expect(verifyChain(chain, recorded).ok).toBe(true);
    expect((await pools().get(pool!))?.version).toBe(summed!.version);
  });
});

describe('interruption ingest: containers racing on one pool (property)', () => {
  it('records every distinct event once and loses no update, whatever the interleaving and the duplicates', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 2, max: 4 }),
        fc.integer({ min: 2, max: 3 }),
        fc.array(fc.nat(), { maxLength: 4 }),
        fc.infiniteStream(fc.nat()),
        async (distinct, containers, repeats, choice) => {
          const chain = `race-${randomUUID()}`;
          const { instanceId, pool } = await freshInstance();
          const t = Date.now() - 600_000;
          const events = Array.from({ length: distinct }, (_, i) => eventFor(i % 2 ? 'rebalance-recommendation' : 'spot-interruption-warning', instanceId, new Date(t + i * 1000)));
          // Every event to some container, the repeats to others: SQS may hand a copy to anyone.
          const pick = choice[Symbol.iterator]();
          const queues: (typeof events)[] = Array.from({ length: containers }, () => []);
          for (const e of [...events, ...repeats.map((r) => events[r % events.length]!)]) queues[pick.next().value % containers]!.push(e);
          const processes = queues.map(() => processOn(chain));
          await Promise.all(queues.map(async (queue, c) => {
            for (const e of queue) await ingestInterruption(e, processes[c]!.deps);
          }));

          const recorded = await entries(chain);
          expect(recorded.map((e) => e.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
          expect(verifyChain(chain, recorded).ok).toBe(true);
          const record = await pools().get(pool!);
          expect(record?.history.map((h) => h.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
          // The newest entry says what the record holds: nothing it recorded was lost in a race.
          await expectSettled(record, chain);
          expect(recorded.at(-1)).toEqual(sealPending(record!.pending!));
          expect(recorded.at(-1)!.after.interruptions).toBe(distinct);
          // Every container published each event it was handed (a repeat it completed itself is answered from its memory).
          for (const [c, p] of processes.entries()) expect(p.published.filter((e) => e.detailType === 'InstanceInterrupted')).toHaveLength(new Set(queues[c]!.map((e) => e.eventId)).size);
        },
      ),
      { numRuns: 8 },
    );
  });
});
