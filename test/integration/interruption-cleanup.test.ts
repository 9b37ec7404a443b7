import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfiguredAccounts } from '../../functions/shared/account-directory';
import { Ec2InstanceResolver } from '../../functions/interruption/instances';
import { AccountSessions } from '../../functions/shared/accounts';
import { releaseEndedQuarantines } from '../../functions/interruption/cleanup';
import { parseInterruptionEvent } from '../../functions/interruption/events';
import { ingestInterruption } from '../../functions/interruption/ingest';
import type { DomainEvent } from '../../functions/shared/bus';
import { DynamoPoolRiskStore } from '../../functions/interruption/pool-store';
import { type PoolRiskRecord, type RiskPolicy, applySignal } from '../../functions/interruption/risk';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import type { LocalStack } from '../../local/provision';
import { invokeFunction } from '../../local/stepfunctions';
import { fixture, freshStack, launchInstance } from '../support';

const PROD = '111111111111';
const policy: RiskPolicy = { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 };

let stack: LocalStack;
beforeAll(async () => {
  stack = await freshStack();
});

/** The use case with the real moto-backed adapters; published domain events are collected. */
function deps(chain: string, clock: () => Date) {
  const published: DomainEvent[] = [];
  return {
    published,
    ledger: new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain }),
    pools: new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable')),
    publisher: { publish: async (events: DomainEvent[]) => void published.push(...events) },
    clock,
  };
}

async function chainLength(ledger: DynamoLedger) {
  let n = 0;
  for await (const _ of ledger.entries()) n++;
  return n;
}

describe('quarantine cleanup', () => {
  it('records each ended quarantine once, with a PoolReleased event, and leaves running ones alone', async () => {
    const instanceId = await launchInstance(PROD, { instanceType: 'r5.large', zone: 'us-east-1c' });
    const d = deps('cleanup', () => new Date('2026-11-22T10:01:00Z'));
    const resolver = new Ec2InstanceResolver(new AccountSessions('123456789012', 'fleetwarden-member'));
    const event = parseInterruptionEvent(fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: '2026-11-22T10:00:00Z' }));
    await ingestInterruption(event, { ...d, accounts: new ConfiguredAccounts({ [PROD]: 'PROD' }), policy, resolver, actor: 'test' });

    const during = await releaseEndedQuarantines('sched-1', { ...d, clock: () => new Date('2026-12-01T00:00:00Z'), actor: 'cleanup' });
    expect(during.released.filter((r) => r.pool.endsWith('r5.large'))).toEqual([]);
    expect(during.active).toBeGreaterThanOrEqual(1);

    const after = { ...d, clock: () => new Date('2026-12-07T10:00:01Z'), actor: 'cleanup' };
    const first = await releaseEndedQuarantines('sched-2', after);
    const again = await releaseEndedQuarantines('sched-3', after);

    expect(first.released).toContainEqual({ pool: 'us-east-1/use1-az2/r5.large', quarantinedUntil: '2026-12-07T10:00:00.000Z' });
    expect(again.released.find((r) => r.pool.endsWith('r5.large'))).toBeUndefined();
    const released = d.published.filter((e) => e.detailType === 'PoolReleased' && e.detail.pool === 'us-east-1/use1-az2/r5.large');
    expect(released).toHaveLength(1);
    const actions: string[] = [];
    for await (const e of d.ledger.entries()) actions.push(String(e.action));
    expect(actions).toEqual(['pool.quarantined', 'pool.released']);
  });

  it('should record nothing and publish nothing when the pool changed before the release was written, and release it on the next run', async () => {
    // Prepare: a PROD quarantine that ended; a new signal for the pool lands between the cleanup's read and its write.
    const key = 'us-east-1/use1-az5/z1d.large';
    const at = new Date('2026-10-01T10:00:00Z');
    const quarantined = applySignal(undefined, key, { eventId: 'q-conflict', at, kind: 'spot-interruption', account: PROD, environment: 'PROD' }, policy, at);
    if (!quarantined.changed) throw new Error('the interruption did not quarantine');
    const d = deps('cleanup-conflict', () => new Date('2026-10-20T10:00:00Z'));
    await d.pools.put(quarantined.next);
    const raced = {
      ...d,
      pools: Object.assign(Object.create(d.pools) as DynamoPoolRiskStore, {
        async *all(): AsyncIterable<PoolRiskRecord> {
          for await (const record of d.pools.all()) {
            if (record.pool === key) {
              const rebalance = applySignal(record, key, { eventId: 'r-conflict', at: new Date('2026-10-20T09:59:00Z'), kind: 'rebalance', account: PROD, environment: 'PROD' }, policy, new Date('2026-10-20T09:59:00Z'));
              if (rebalance.changed) await d.pools.put(rebalance.next);
            }
            yield record;
          }
        },
      }),
      actor: 'cleanup',
    };
    const releasedOf = () => d.published.filter((e) => e.detailType === 'PoolReleased' && e.detail.pool === key);

    // Act
    const conflicted = await releaseEndedQuarantines('sched-conflict-1', raced);

    // Assess: the conflict wrote nothing and announced nothing.
    expect(conflicted.skippedOnConflict).toBe(1);
    expect(conflicted.released.find((r) => r.pool === key)).toBeUndefined();
    expect(releasedOf()).toEqual([]);
    expect(await chainLength(d.ledger)).toBe(0);
    const untouched = await d.pools.get(key);
    expect(untouched?.version).toBe(2);
    expect(untouched?.releasedAt).toBeUndefined();

    // Act: the next run, undisturbed.
    const next = await releaseEndedQuarantines('sched-conflict-2', { ...d, actor: 'cleanup' });

    // Assess: released once, with its entry and its event.
    expect(next.released).toContainEqual({ pool: key, quarantinedUntil: quarantined.next.quarantinedUntil });
    expect(releasedOf()).toHaveLength(1);
    expect(await chainLength(d.ledger)).toBe(1);
    expect(await d.pools.get(key)).toMatchObject({ version: 3, releasedAt: '2026-10-20T10:00:00.000Z' });
  });

  it('should only mark the record when its release was recorded without it (before the two were one transaction), publishing nothing again', async () => {
    // Prepare: an ended quarantine whose pool.released entry is there, its record unmarked.
    const key = 'us-east-1/use1-az5/z1d.xlarge';
    const at = new Date('2026-10-01T10:00:00Z');
    const quarantined = applySignal(undefined, key, { eventId: 'q-legacy', at, kind: 'spot-interruption', account: PROD, environment: 'PROD' }, policy, at);
    if (!quarantined.changed) throw new Error('the interruption did not quarantine');
    const d = deps('cleanup-legacy', () => new Date('2026-10-20T10:00:00Z'));
    await d.pools.put(quarantined.next);
    const until = quarantined.next.quarantinedUntil!;
    await d.ledger.append({ actor: 'cleanup', action: 'pool.released', subject: key, reason: `quarantine ended at ${until}`, eventId: 'sched-legacy-0' }, { dedupeKey: `${key}#released#${until}` });

    // Act
    const run = await releaseEndedQuarantines('sched-legacy-1', { ...d, actor: 'cleanup' });

    // Assess
    expect(run.released.find((r) => r.pool === key)).toBeUndefined();
    expect(d.published.filter((e) => e.detail.pool === key)).toEqual([]);
    expect(await chainLength(d.ledger)).toBe(1);
    expect(await d.pools.get(key)).toMatchObject({ version: 2, releasedAt: '2026-10-20T10:00:00.000Z' });
  });

  it('runs as the deployed handler from a scheduled event', async () => {
    const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith('InterruptionsQuarantineCleanup'))!;
    const out = await invokeFunction(stack, fn, { id: randomUUID(), 'detail-type': 'Scheduled Event', source: 'aws.events', time: '2026-11-22T10:15:00Z', detail: {} });
    expect(out).toMatchObject({ released: expect.any(Array), active: expect.any(Number) });
    await expect(invokeFunction(stack, fn, { id: 'x', 'detail-type': 'Something Else' })).rejects.toMatchObject({ name: 'Terminal.InvalidInput' });
  });
});

describe('interruption idempotency against moto (property)', () => {
  it('appends one ledger entry per distinct event, however often and in whatever order events are redelivered', async () => {
    const instances = await Promise.all(['m6i.large', 'm6i.xlarge', 'c6i.large'].map((t) => launchInstance(PROD, { instanceType: t, zone: 'us-east-1d' })));
    const resolver = new Ec2InstanceResolver(new AccountSessions('123456789012', 'fleetwarden-member'));
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ instance: fc.nat(2), kind: fc.constantFrom('spot-interruption-warning', 'rebalance-recommendation', 'state-change-shutting-down') }), { minLength: 1, maxLength: 5 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        fc.infiniteStream(fc.nat()),
        async (distinct, repeats, order) => {
          run += 1;
          const events = distinct.map((e) => parseInterruptionEvent(fixture(e.kind, { id: randomUUID(), account: PROD, instanceId: instances[e.instance]! })));
          // Redeliveries in an order fast-check chooses (so a failure replays and shrinks).
          const pending = [...events, ...repeats.map((i) => events[i % events.length]!)];
          const pick = order[Symbol.iterator]();
          const deliveries: typeof events = [];
          while (pending.length) deliveries.push(pending.splice(pick.next().value % pending.length, 1)[0]!);
          const d = deps(`prop-${run}`, () => new Date('2026-11-22T10:01:00Z'));
          for (const event of deliveries) await ingestInterruption(event, { ...d, accounts: new ConfiguredAccounts({ [PROD]: 'PROD' }), policy, resolver, actor: 'test' });
          expect(await chainLength(d.ledger)).toBe(events.length);
        },
      ),
      { numRuns: 10 },
    );
  });
});
