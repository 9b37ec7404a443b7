import type { InterruptionEvent } from '../events';
import type { IngestDeps, InstanceFacts, InstanceResolver } from '../ingest';

/**
 * Resolves the instances of a whole SQS batch at once: one DescribeInstances per account and
 * region of the batch instead of one per event, the facts as fresh as the batch. An event whose
 * instances the batch lookup did not return (gone, not visible yet, or the lookup failed) is
 * resolved on its own, as without prefetching: the batch lookup can only save calls.
 */
export class PrefetchingResolver implements InstanceResolver {
  private prefetched = new Map<string, InstanceFacts>();

  constructor(private readonly inner: InstanceResolver) {}

  /** Looks up every instance the events name, grouped by account and region; forgets the previous batch. */
  async prefetch(events: { account: string; region: string; instanceIds: string[] }[]): Promise<void> {
    this.prefetched = new Map();
    const groups = new Map<string, { account: string; region: string; ids: Set<string> }>();
    for (const e of events) {
      const key = `${e.account}/${e.region}`;
      const group = groups.get(key) ?? { account: e.account, region: e.region, ids: new Set<string>() };
      for (const id of e.instanceIds) group.ids.add(id);
      groups.set(key, group);
    }
    await Promise.all(
      [...groups.values()].map(async ({ account, region, ids }) => {
        try {
          for (const [id, facts] of await this.inner.resolve(account, region, [...ids])) this.prefetched.set(factsKey(account, region, id), facts);
        } catch {
          // Each event then resolves its own instances, and fails (and is retried) on its own.
        }
      }),
    );
  }

  async resolve(account: string, region: string, instanceIds: string[]): Promise<Map<string, InstanceFacts>> {
    const found = instanceIds.map((id) => this.prefetched.get(factsKey(account, region, id)));
    if (found.every((f) => f !== undefined)) return new Map(found.map((f) => [f.instanceId, f]));
    return this.inner.resolve(account, region, instanceIds);
  }
}

const factsKey = (account: string, region: string, instanceId: string) => `${account}/${region}/${instanceId}`;

/**
 * The events of a batch whose instances are worth looking up at once: those from an account
 * Fleetwarden knows (the others are parked without a lookup), not already completed by this
 * container.
 */
export async function eventsToResolve(events: InterruptionEvent[], deps: IngestDeps): Promise<InterruptionEvent[]> {
  const known = await Promise.all(events.map((e) => deps.accounts.environmentOf(e.account).catch(() => undefined)));
  return events.filter((e, i) => known[i] !== undefined && !deps.memory?.completedAsDuplicate(e.eventId));
}
