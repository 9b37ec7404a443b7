import { randomUUID } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfiguredAccounts } from '../../functions/shared/account-directory';
import { Ec2InstanceResolver } from '../../functions/interruption/instances';
import { AccountSessions } from '../../functions/shared/accounts';
import { parseInterruptionEvent } from '../../functions/interruption/events';
import { type IngestDeps, ingestInterruption } from '../../functions/interruption/ingest';
import { type DomainEvent, EventBridgePublisher, type EventPublisher } from '../../functions/shared/bus';
import { DynamoPoolRiskStore } from '../../functions/interruption/pool-store';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { listenToBus } from '../../local/listen';
import type { LocalStack } from '../../local/provision';
import { fixture, freshStack, launchInstance } from '../support';

const PROD = '111111111111';
let stack: LocalStack;
let chains = 0;

beforeAll(async () => {
  stack = await freshStack();
});

/** The use case on the real moto-backed adapters; `publisher` may wrap the real one to inject a fault. */
function deps(publisher: EventPublisher = new EventBridgePublisher(stack.ref('StateStoreBus'), 'fleetwarden.interruption')): IngestDeps & { ledger: DynamoLedger } {
  return {
    accounts: new ConfiguredAccounts({ [PROD]: 'PROD' }),
    policy: { quarantineDays: 15, quarantineByEnvironment: { PROD: true, STAGING: false, LAB: false }, insufficientCapacityMinutes: 10, riskHalfLifeHours: 72 },
    resolver: new Ec2InstanceResolver(new AccountSessions('123456789012', 'fleetwarden-member')),
    pools: new DynamoPoolRiskStore(documentClient(), stack.ref('StateStorePoolRiskTable')),
    ledger: new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable'), chain: `crash-${++chains}` }),
    publisher,
    clock: () => new Date(),
    actor: 'test',
  };
}

async function entries(ledger: DynamoLedger) {
  const items: Record<string, any>[] = [];
  for await (const item of ledger.entries()) items.push(item);
  return items;
}

/** The real publisher, failing its first call as a throttled or crashed PutEvents would. */
function failingOnce() {
  const real = new EventBridgePublisher(stack.ref('StateStoreBus'), 'fleetwarden.interruption');
  let calls = 0;
  return {
    publish: async (events: DomainEvent[]) => {
      if (++calls === 1) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return real.publish(events);
    },
  };
}

describe('interruption ingest under failure', () => {
  it.each([
    ['an ASG termination (recorded against the instance)', 'asg-terminate-lifecycle-action', false],
    ['a PROD Spot interruption (recorded against its pool)', 'spot-interruption-warning', true],
  ])('publishes on redelivery when the first attempt recorded %s and crashed before publishing', async (_, name, spot) => {
    const published = await listenToBus(stack, ['fleetwarden.interruption'], `crash-${name}`);
    const instanceId = await launchInstance(PROD, { spot: spot as boolean, instanceType: spot ? 'm6a.large' : 'm5.large', zone: 'us-east-1c' });
    const event = parseInterruptionEvent(fixture(name, { id: randomUUID(), account: PROD, instanceId, time: new Date().toISOString() }));
    const d = { ...deps(failingOnce()) };

    await expect(ingestInterruption(event, d)).rejects.toThrow('Rate exceeded');
    const redelivered = await ingestInterruption(event, d);

    expect(redelivered.instances[0]!.duplicate).toBe(true);
    expect((await entries(d.ledger)).length).toBe(1);
    const types = (await published()).map((e) => e['detail-type']).sort();
    expect(types).toEqual(spot ? ['InstanceInterrupted', 'PoolQuarantined'] : ['InstanceInterrupted']);
  });

  it('records in the ledger exactly what it applied when two events race for one pool', async () => {
    const [a, b] = await Promise.all([launchInstance(PROD, { instanceType: 'r6i.large', zone: 'us-east-1a' }), launchInstance(PROD, { instanceType: 'r6i.large', zone: 'us-east-1a' })]);
    const d = deps();
    const events = [a, b].map((instanceId, i) => parseInterruptionEvent(fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: new Date(Date.now() + i * 1000).toISOString() })));
    await Promise.all(events.map((e) => ingestInterruption(e, d)));

    const record = await d.pools.get('us-east-1/use1-az6/r6i.large');
    const recorded = await entries(d.ledger);
    expect(record?.history.map((h) => h.eventId).sort()).toEqual(events.map((e) => e.eventId).sort());
    expect(recorded).toHaveLength(2);
    // The later entry's "after" is the record as stored: nothing the ledger says was lost in a race.
    const last = recorded.at(-1)!;
    expect(last.after.interruptions).toBe(2);
    expect(last.after.quarantinedUntil).toBe(record?.quarantinedUntil ?? null);
  });

  it('does not quarantine for an interruption whose quarantine would already be over', async () => {
    const instanceId = await launchInstance(PROD, { instanceType: 'r6i.xlarge', zone: 'us-east-1a' });
    const late = parseInterruptionEvent(fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: new Date(Date.now() - 16 * 86_400_000).toISOString() }));
    const d = deps();
    const outcome = await ingestInterruption(late, d);
    expect(outcome.instances[0]!.action).toBe('pool.interruption-recorded');
    expect((await d.pools.get('us-east-1/use1-az6/r6i.xlarge'))?.quarantinedUntil).toBeUndefined();
  });

  it('records a signal older than the kept history as ignored, once', async () => {
    const instanceId = await launchInstance(PROD, { instanceType: 'r6i.2xlarge', zone: 'us-east-1a' });
    const ancient = parseInterruptionEvent(fixture('spot-interruption-warning', { id: randomUUID(), account: PROD, instanceId, time: new Date(Date.now() - 60 * 86_400_000).toISOString() }));
    const d = deps();
    await ingestInterruption(ancient, d);
    await ingestInterruption(ancient, d);
    expect((await entries(d.ledger)).map((e) => e.action)).toEqual(['pool.stale-signal-ignored']);
  });
});
