import { describe, expect, it } from 'vitest';
import type { InstanceFacts, InstanceResolver } from '../../functions/interruption/ingest';
import { PrefetchingResolver } from '../../functions/interruption/ingest/prefetch';

/** A resolver that knows some instances and records what it was asked. */
function inner(known: string[], options: { failing?: boolean } = {}) {
  const asked: string[][] = [];
  const resolver: InstanceResolver = {
    resolve: async (account, region, ids) => {
      asked.push([account, region, ...ids]);
      if (options.failing) throw Object.assign(new Error('Rate exceeded'), { name: 'RequestLimitExceeded' });
      return new Map(ids.filter((id) => known.includes(id)).map((id): [string, InstanceFacts] => [id, { instanceId: id, account, region, lifecycle: 'spot' }]));
    },
  };
  return { resolver, asked };
}

const event = (account: string, ...instanceIds: string[]) => ({ account, region: 'us-east-1', instanceIds });

describe('instances of a batch resolved at once', () => {
  it('asks once per account and region for the whole batch, then answers every event from that', async () => {
    const { resolver, asked } = inner(['i-1', 'i-2', 'i-3']);
    const batch = new PrefetchingResolver(resolver);
    await batch.prefetch([event('111111111111', 'i-1'), event('111111111111', 'i-2', 'i-1'), event('333333333333', 'i-3')]);
    expect(asked).toEqual([
      ['111111111111', 'us-east-1', 'i-1', 'i-2'],
      ['333333333333', 'us-east-1', 'i-3'],
    ]);
    expect([...(await batch.resolve('111111111111', 'us-east-1', ['i-2', 'i-1'])).keys()]).toEqual(['i-2', 'i-1']);
    expect((await batch.resolve('333333333333', 'us-east-1', ['i-3'])).get('i-3')).toMatchObject({ account: '333333333333' });
    expect(asked).toHaveLength(2);
  });

  it('resolves an event on its own when the batch did not return its instances, or the batch lookup failed', async () => {
    const some = inner(['i-1']);
    const batch = new PrefetchingResolver(some.resolver);
    await batch.prefetch([event('111111111111', 'i-1', 'i-gone')]);
    expect(await batch.resolve('111111111111', 'us-east-1', ['i-gone'])).toEqual(new Map());
    expect(some.asked.at(-1)).toEqual(['111111111111', 'us-east-1', 'i-gone']);
    // An instance of another account with the same id is not the prefetched one.
    await batch.resolve('333333333333', 'us-east-1', ['i-1']);
    expect(some.asked.at(-1)).toEqual(['333333333333', 'us-east-1', 'i-1']);

    const failing = inner([], { failing: true });
    const none = new PrefetchingResolver(failing.resolver);
    await expect(none.prefetch([event('111111111111', 'i-1')])).resolves.toBeUndefined();
    await expect(none.resolve('111111111111', 'us-east-1', ['i-1'])).rejects.toThrow('Rate exceeded');
  });

  it('forgets the previous batch', async () => {
    const { resolver, asked } = inner(['i-1']);
    const batch = new PrefetchingResolver(resolver);
    await batch.prefetch([event('111111111111', 'i-1')]);
    await batch.prefetch([]);
    await batch.resolve('111111111111', 'us-east-1', ['i-1']);
    expect(asked).toHaveLength(2);
  });
});
