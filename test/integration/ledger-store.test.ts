import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../functions/ledger/chain';
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
});
