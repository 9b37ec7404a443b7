import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../functions/ledger/chain';
import { sealPending } from '../../functions/ledger/pending';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { freshStack } from '../support';

let stack: LocalStack;
let table: string;
let chains = 0;
const newLedger = (options: { maxAttempts?: number } = {}) =>
  new DynamoLedger(documentClient(), { tableName: table, chain: `test-${++chains}`, ...options });

const draft = (i: number) => ({ actor: 'test', action: 'pool.quarantined', subject: `pool-${i}`, reason: 'because', eventId: `event-${i}` });

async function readAll(ledger: DynamoLedger) {
  const items: Record<string, unknown>[] = [];
  for await (const item of ledger.entries()) items.push(item);
  return items;
}

beforeAll(async () => {
  stack = await freshStack();
  table = stack.ref('StateStoreLedgerTable');
});

describe('DynamoDB ledger (moto)', () => {
  it('appends entries that read back as a verifiable chain', async () => {
    const ledger = newLedger();
    for (let i = 0; i < 5; i++) await ledger.append(draft(i));
    const items = await readAll(ledger);
    expect(items.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(verifyChain(ledger.chain, items).ok).toBe(true);
    expect(await ledger.tip()).toEqual({ seq: 5, hash: items[4]!.hash });
  });

  it('never overwrites an existing entry, even when a writer reuses a sequence number', async () => {
    const ledger = newLedger();
    const { entry } = await ledger.append(draft(1));
    await expect(
      documentClient().send(
        new PutCommand({ TableName: table, Item: { ...entry, reason: 'rewritten' }, ConditionExpression: 'attribute_not_exists(#c)', ExpressionAttributeNames: { '#c': 'chain' } }),
      ),
    ).rejects.toThrow(/conditional request failed/i);
  });

  it('appends a deduplicated fact once, however often it is redelivered', async () => {
    const ledger = newLedger();
    const first = await ledger.append(draft(7), { dedupeKey: 'event-7#pool.quarantined' });
    const again = await Promise.all([1, 2, 3].map(() => ledger.append(draft(7), { dedupeKey: 'event-7#pool.quarantined' })));
    expect(first.duplicate).toBe(false);
    expect(again.every((r) => r.duplicate && r.entry.seq === first.entry.seq)).toBe(true);
    expect((await readAll(ledger)).length).toBe(1);
  });

  it('rejects a malformed draft naming the field', async () => {
    await expect(newLedger().append({ ...draft(1), action: 'Not An Action' })).rejects.toThrow(/invalid ledger entry: action: an action is dotted lower-case/);
  });

  it('never forks the chain under concurrent appenders: a lost race re-reads the tip and retries', async () => {
    let totalConflicts = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.boolean(), { minLength: 2, maxLength: 6 }), fc.integer({ min: 1, max: 5 }), async (deduplicatedWriters, perWriter) => {
        const writers = deduplicatedWriters.length;
        const chain = `concurrent-${++chains}`;
        const appenders = Array.from({ length: writers }, () => new DynamoLedger(documentClient(), { tableName: table, chain, maxAttempts: 100 }));
        const results = await Promise.all(
          appenders.map(async (ledger, w) => {
            const out = [];
            // Plain (PutItem) and deduplicated (TransactWriteItems) writers race in the same run.
            for (let i = 0; i < perWriter; i++) out.push(await ledger.append(draft(w * 100 + i), deduplicatedWriters[w] ? { dedupeKey: `${chain}-${w}-${i}` } : {}));
            return out;
          }),
        );
        const items = await readAll(appenders[0]!);
        expect(items.length).toBe(writers * perWriter);
        expect(items.map((e) => e.seq)).toEqual(Array.from({ length: writers * perWriter }, (_, i) => i + 1));
        expect(verifyChain(chain, items).ok).toBe(true);
        totalConflicts += results.flat().reduce((sum, r) => sum + r.conflicts, 0);
      }),
      { numRuns: 12 },
    );
    // The races really happened: appenders lost and recovered.
    expect(totalConflicts).toBeGreaterThan(0);
  });

  it('detects an entry deleted out of band by someone with table access', async () => {
    const ledger = newLedger();
    for (let i = 0; i < 4; i++) await ledger.append(draft(i));
    await documentClient().send(new DeleteCommand({ TableName: table, Key: { chain: ledger.chain, seq: 2 } }));
    expect(verifyChain(ledger.chain, await readAll(ledger)).problems.map((p) => p.kind)).toEqual(['missing', 'broken-link']);
  });

  describe('appends after an outbox (single-item writes, no transaction)', () => {
    it('appends a fact once with appendOnce, however often and concurrently it is redelivered: the marker holds the entry it owes', async () => {
      const ledger = newLedger();
      const results = await Promise.all([1, 2, 3, 4].map(() => newLedgerOn(ledger.chain).appendOnce(draft(8), 'event-8')));
      expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
      expect(new Set(results.map((r) => r.entry.hash)).size).toBe(1);
      expect(await readAll(ledger)).toHaveLength(1);
      const marker = await getItem(`${ledger.chain}#dedupe#event-8`, 0);
      expect(marker).toMatchObject({ entrySeq: 1, entryHash: results[0]!.entry.hash, pending: { seq: 1, eventId: 'event-8' } });
      expect((await ledger.appendOnce(draft(8), 'event-8')).duplicate).toBe(true);
    });

    it('writes the entry a crashed appendOnce owed when the fact comes again, exactly once, where it was placed', async () => {
      const ledger = newLedger();
      const crashing = newLedgerOn(ledger.chain, crashAfterWrites(1)); // the marker lands, then the process dies
      await expect(crashing.appendOnce(draft(9), 'event-9')).rejects.toThrow('crash');
      expect(await readAll(ledger)).toEqual([]);
      const again = await newLedgerOn(ledger.chain).appendOnce(draft(9), 'event-9');
      expect(again.duplicate).toBe(true);
      const items = await readAll(ledger);
      expect(items).toEqual([again.entry]);
      expect(verifyChain(ledger.chain, items).ok).toBe(true);
      // A plain deduplicated append of the same key finds it too (and settles an owed one).
      expect((await ledger.append(draft(9), { dedupeKey: 'event-9' })).entry).toEqual(again.entry);
    });

    it('places an owed entry again, and moves its marker, when another writer took its position first', async () => {
      const ledger = newLedger();
      const crashing = newLedgerOn(ledger.chain, crashAfterWrites(1));
      await expect(crashing.appendOnce(draft(10), 'event-10')).rejects.toThrow('crash'); // owes seq 1
      await ledger.append(draft(11)); // takes seq 1
      const again = await newLedgerOn(ledger.chain).appendOnce(draft(10), 'event-10');
      const items = await readAll(ledger);
      expect(items.map((e) => [e.seq, e.eventId])).toEqual([
        [1, 'event-11'],
        [2, 'event-10'],
      ]);
      expect(again.entry.seq).toBe(2);
      expect(await getItem(`${ledger.chain}#dedupe#event-10`, 0)).toMatchObject({ entrySeq: 2, pending: { seq: 2 } });
      expect(verifyChain(ledger.chain, items).ok).toBe(true);
    });

    it('settles a pending entry: written when free, present when written before, displaced when another entry holds its seq', async () => {
      const ledger = newLedger();
      const first = await ledger.place(draft(12));
      expect(await ledger.settle(first, { fresh: true })).toMatchObject({ state: 'written', entry: sealPending(first) });
      expect(await newLedgerOn(ledger.chain).settle(first)).toMatchObject({ state: 'present' });
      expect(await newLedgerOn(ledger.chain).settle(first, { fresh: true })).toMatchObject({ state: 'present' });
      const stale = await newLedgerOn(ledger.chain).place(draft(13)); // seq 2
      await ledger.append(draft(14)); // takes seq 2
      expect(await ledger.settle(stale, { fresh: true })).toMatchObject({ state: 'displaced', by: { eventId: 'event-14' } });
      const moved = await ledger.replace(stale);
      expect(moved).toMatchObject({ seq: 3, eventId: 'event-13' });
      expect(await ledger.settle(moved)).toMatchObject({ state: 'written' });
      expect(verifyChain(ledger.chain, await readAll(ledger)).ok).toBe(true);
    });

    it('places after the tip it last wrote, reading it again only when told or after a conflict', async () => {
      const ledger = newLedger();
      await ledger.append(draft(15));
      const other = newLedgerOn(ledger.chain);
      await other.append(draft(16)); // ledger does not know
      const stale = await ledger.place(draft(17));
      expect(stale.seq).toBe(2);
      ledger.forgetTip();
      expect((await ledger.place(draft(17))).seq).toBe(3);
      expect(await ledger.nextSeq()).toBe(3);
    });

    it('finds what a fact was recorded with: under its marker, or from a seq on by event and subject', async () => {
      const ledger = newLedger();
      await ledger.appendOnce(draft(18), 'event-18');
      await ledger.settle(await ledger.place(draft(19)), { fresh: true });
      await ledger.append(draft(20));
      expect(await ledger.findRecorded({ dedupeKey: 'event-18', eventId: 'event-18', subject: 'pool-18' })).toMatchObject({ seq: 1 });
      expect(await ledger.findRecorded({ dedupeKey: 'event-19', eventId: 'event-19', subject: 'pool-19', fromSeq: 1 })).toMatchObject({ seq: 2 });
      expect(await ledger.findRecorded({ dedupeKey: 'event-19', eventId: 'event-19', subject: 'pool-19', fromSeq: 3 })).toBeUndefined();
      expect(await ledger.findRecorded({ dedupeKey: 'event-19', eventId: 'event-19', subject: 'pool-19' })).toBeUndefined();
      expect(await ledger.findRecorded({ dedupeKey: 'event-19', eventId: 'event-19', subject: 'pool-other', fromSeq: 1 })).toBeUndefined();
    });

    it('never forks the chain when appendOnce, outbox and transactional writers race, each fact once', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.constantFrom('plain', 'transaction', 'once', 'outbox'), { minLength: 2, maxLength: 5 }), fc.integer({ min: 1, max: 4 }), async (kinds, perWriter) => {
          const chain = `mixed-${++chains}`;
          await Promise.all(
            kinds.map(async (kind, w) => {
              const ledger = newLedgerOn(chain, undefined, 200);
              for (let i = 0; i < perWriter; i++) {
                const d = draft(w * 100 + i);
                if (kind === 'plain') await ledger.append(d);
                if (kind === 'transaction') await ledger.append(d, { dedupeKey: d.eventId });
                if (kind === 'once') await Promise.all([ledger.appendOnce(d, d.eventId), newLedgerOn(chain, undefined, 200).appendOnce(d, d.eventId)]);
                if (kind === 'outbox') {
                  let pending = await ledger.place(d);
                  for (let r = await ledger.settle(pending, { fresh: true }); r.state === 'displaced'; r = await ledger.settle(pending, { fresh: true })) pending = await ledger.replace(pending);
                }
              }
            }),
          );
          const items = await readAll(newLedgerOn(chain));
          expect(items.map((e) => e.seq)).toEqual(Array.from({ length: kinds.length * perWriter }, (_, i) => i + 1));
          expect(new Set(items.map((e) => e.eventId)).size).toBe(items.length);
          expect(verifyChain(chain, items).ok).toBe(true);
        }),
        { numRuns: 10 },
      );
    });
  });
});

function newLedgerOn(chain: string, doc: DynamoDBDocumentClient = documentClient(), maxAttempts = 100) {
  return new DynamoLedger(doc, { tableName: table, chain, maxAttempts });
}

async function getItem(chain: string, seq: number) {
  return (await documentClient().send(new GetCommand({ TableName: table, Key: { chain, seq }, ConsistentRead: true }))).Item;
}

/** The real client, the process dying right after its n-th write landed. */
function crashAfterWrites(n: number): DynamoDBDocumentClient {
  const real = documentClient();
  let writes = 0;
  return {
    send: async (command: Parameters<DynamoDBDocumentClient['send']>[0]) => {
      const out = await real.send(command as never);
      if (command instanceof PutCommand && ++writes === n) throw new Error('crash');
      return out;
    },
  } as unknown as DynamoDBDocumentClient;
}
