import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { OutboxLedger } from '../ledger/store';
import type { DomainEvent, EventPublisher } from '../shared/bus';
import type { AccountDirectory } from '../shared/account-directory';
import type { EnvironmentClass } from '../shared/environments';
import { UnknownAccountError } from '../shared/errors';
import type { InterruptionEvent } from './events';
import { type Pool, poolKey } from './pool';
import { PoolRecordCache, PoolRiskConflictError, type PoolRiskStore } from './pool-store';
import { type PoolRiskRecord, type RiskPolicy, type Signal, applySignal, quarantineEndsAt, riskScore, signalCount } from './risk';

/** What Fleetwarden knows about an instance once resolved in its own account. */
export interface InstanceFacts {
  instanceId: string;
  account: string;
  region: string;
  /** Absent when the instance can no longer be described (already gone). */
  pool?: Pool;
  lifecycle?: 'spot' | 'on-demand';
  asgName?: string;
  clusterName?: string;
}

export interface InstanceResolver {
  resolve(account: string, region: string, instanceIds: string[]): Promise<Map<string, InstanceFacts>>;
}

export interface IngestDeps {
  accounts: AccountDirectory;
  policy: RiskPolicy;
  resolver: InstanceResolver;
  pools: PoolRiskStore;
  ledger: OutboxLedger;
  publisher: EventPublisher;
  clock: () => Date;
  actor: string;
  /** What a warm process remembers between events; without it every event reads what it needs. */
  memory?: IngestMemory;
}

/**
 * A process's memory across the events it ingests (one per container): pool records as last
 * read or written, and the events it completed (written and published), so that a redelivery
 * of one of those is answered without a call. A lost memory (a new container) costs reads only.
 */
export class IngestMemory {
  readonly pools: PoolRecordCache;
  private readonly completed = new Map<string, IngestOutcome>();

  constructor(private readonly capacity = 10_000) {
    this.pools = new PoolRecordCache();
  }

  /** The outcome of an event this process completed, as a duplicate delivery of it reports. */
  completedAsDuplicate(eventId: string): IngestOutcome | undefined {
    const outcome = this.completed.get(eventId);
    if (!outcome) return undefined;
    return { ...outcome, instances: outcome.instances.map((i) => ({ instanceId: i.instanceId, pool: i.pool, action: CHANGES_POOL.has(i.action) ? 'none' : i.action, duplicate: true })) };
  }

  complete(outcome: IngestOutcome): void {
    this.completed.delete(outcome.eventId);
    this.completed.set(outcome.eventId, outcome);
    if (this.completed.size > this.capacity) this.completed.delete(this.completed.keys().next().value!);
  }
}

export interface IngestOutcome {
  eventId: string;
  kind: InterruptionEvent['kind'];
  /** The environment class of the event's account (the dashboard counts interruptions by it and by pool from the log line). */
  environment: EnvironmentClass;
  instances: { instanceId: string; pool?: string; action: string; quarantinedUntil?: string; duplicate: boolean }[];
}

const MAX_CONFLICT_RETRIES = 5;
const CHANGES_POOL = new Set(['pool.quarantined', 'pool.interruption-recorded', 'pool.rebalance-recorded']);

/**
 * One interruption event, end to end, with single-item conditional writes (no transaction):
 *
 * - a pool signal: decide from the pool record, write the next record conditionally on the
 *   version read, carrying the ledger entry that explains it (placed at the chain's tip:
 *   `pending`, an outbox), then write that entry conditionally on its position being new, then
 *   publish. Before a record is decided on, the entry it carries is settled: written if it is
 *   still owed (a crash between the two writes), placed again at the tip (in the record first) if
 *   another writer took its position. So the pool record changes if and only if its entry is
 *   written, by this writer, by the redelivery, or by the next writer of the pool. A signal as
 *   old as those the record only counts (risk.ts, `forgotten`) is looked up in the ledger: found,
 *   it is a duplicate; not found, it is applied (to the summary) like any other;
 * - anything else (an event that says nothing about a pool, a signal older than the horizon):
 *   one deduplicated ledger append, marker first (`appendOnce`), then publish.
 *
 * Events go out at least once: a redelivery publishes them again, from what was applied. A
 * redelivered event finds its id in the pool history, its entry in the ledger or its ledger
 * marker, and changes nothing. Each write is one item (no transaction), conditional, so that
 * concurrent ingests never lose an update: the loser re-reads and decides again.
 */
export async function ingestInterruption(event: InterruptionEvent, deps: IngestDeps): Promise<IngestOutcome> {
  const remembered = deps.memory?.completedAsDuplicate(event.eventId);
  if (remembered) return remembered;
  const environment = await deps.accounts.environmentOf(event.account);
  if (!environment) throw new UnknownAccountError(`account ${event.account} is not in Fleetwarden's config (nor tagged in Organizations, if enabled)`);
  const facts = await deps.resolver.resolve(event.account, event.region, event.instanceIds);
  const outcome: IngestOutcome = { eventId: event.eventId, kind: event.kind, environment, instances: [] };
  for (const instanceId of event.instanceIds) {
    const instance = facts.get(instanceId) ?? { instanceId, account: event.account, region: event.region };
    outcome.instances.push(await ingestForInstance(event, instance, environment, deps));
  }
  deps.memory?.complete(outcome);
  return outcome;
}

/** Which pool signal an event gives: only Spot capacity reclaims say something about a pool. */
function signalKind(event: InterruptionEvent, instance: InstanceFacts) {
  if (instance.lifecycle !== 'spot' || !instance.pool) return undefined;
  if (event.kind === 'spot-interruption') return 'spot-interruption' as const;
  if (event.kind === 'rebalance-recommendation') return 'rebalance' as const;
  return undefined;
}

async function ingestForInstance(event: InterruptionEvent, instance: InstanceFacts, environment: EnvironmentClass, deps: IngestDeps) {
  const kind = signalKind(event, instance);
  const pool = instance.pool ? poolKey(instance.pool) : undefined;
  const dedupeKey = event.instanceIds.length > 1 ? `${event.eventId}#${instance.instanceId}` : event.eventId;
  const interrupted: DomainEvent = {
    detailType: 'InstanceInterrupted',
    detail: {
      eventId: event.eventId,
      kind: event.kind,
      instanceId: instance.instanceId,
      account: event.account,
      region: event.region,
      environment,
      pool,
      lifecycle: instance.lifecycle,
      asgName: instance.asgName,
      clusterName: instance.clusterName,
      state: event.state,
      deadline: event.deadline?.toISOString(),
      asg: event.asg,
    },
  };

  if (!kind || !pool) {
    const { duplicate } = await deps.ledger.appendOnce(
      {
        actor: deps.actor,
        action: 'instance.interrupted',
        subject: instance.instanceId,
        reason: `${event.detailType}${event.state ? ` (${event.state})` : ''} in ${environment} account ${event.account}`,
        eventId: event.eventId,
        after: interrupted.detail as never,
      },
      dedupeKey,
    );
    // Published on redelivery too: a first attempt may have recorded and then crashed before it.
    await deps.publisher.publish([interrupted]);
    return { instanceId: instance.instanceId, pool, action: 'instance.interrupted', duplicate };
  }

  for (let attempt = 1; ; attempt++) {
    const now = deps.clock();
    const before = await settledRecord(pool, deps);
    const signal: Signal = { eventId: event.eventId, at: event.time, kind, account: event.account, environment };
    let late: { late?: 'new' } = {};
    let decision = applySignal(before, pool, signal, deps.policy, now);
    let recorded = !decision.changed && decision.reason === 'duplicate';
    if (!decision.changed && decision.reason === 'stale' && decision.forgotten) {
      // As old as the signals the record only counts: the ledger tells whether it is one of them.
      const forgotten = before?.forgotten;
      recorded = (await deps.ledger.findRecorded({ eventId: event.eventId, subject: pool, fromSeq: forgotten?.fromSeq, ...(forgotten?.marked ? { dedupeKey } : {}) })) !== undefined;
      if (!recorded) late = { late: 'new' };
    }
    // Applied: the history notes where its entry will be, at the earliest.
    if (!recorded && (decision.changed || late.late)) decision = applySignal(before, pool, { ...signal, seq: await deps.ledger.nextSeq() }, deps.policy, now, late);
    if (recorded) {
      // Applied before, and its entry is written (settled above). A first attempt may have
      // crashed before publishing, so the events go out again, from what was applied.
      await deps.publisher.publish(domainEvents(event, instance, pool, before, interrupted, now, before?.quarantineEventId === event.eventId, deps.policy));
      return { instanceId: instance.instanceId, pool, action: 'none', duplicate: true };
    }
    if (!decision.changed) {
      const { duplicate } = await deps.ledger.appendOnce(
        { actor: deps.actor, action: 'pool.stale-signal-ignored', subject: pool, reason: `${kind} of ${instance.instanceId} at ${event.time.toISOString()} is older than the pool history kept`, eventId: event.eventId },
        dedupeKey,
      );
      return { instanceId: instance.instanceId, pool, action: 'pool.stale-signal-ignored', duplicate };
    }

    const action = decision.quarantined ? 'pool.quarantined' : kind === 'rebalance' ? 'pool.rebalance-recorded' : 'pool.interruption-recorded';
    const reason = decision.quarantined
      ? `${environment} spot interruption of ${instance.instanceId} in account ${event.account}: pool closed for every account for ${deps.policy.quarantineDays} days`
      : `${kind} of ${instance.instanceId} in ${environment} account ${event.account}: recorded, ${environment} does not quarantine`;
    const snapshot = (r: typeof before) => ({
      quarantinedUntil: r?.quarantinedUntil ?? null,
      riskScore: Number(riskScore(r, now, deps.policy.riskHalfLifeHours).toFixed(4)),
      interruptions: signalCount(r),
    });
    // The record carries the entry that explains it: written after the record, by this writer
    // or, after a crash in between, by whoever reads the record next (settledRecord).
    const pending = await deps.ledger.place({ actor: deps.actor, action, subject: pool, reason, eventId: event.eventId, before: snapshot(before), after: { ...snapshot(decision.next), instanceId: instance.instanceId } });
    const next: PoolRiskRecord = { ...decision.next, pending };
    try {
      await deps.pools.put(next);
    } catch (error) {
      // Another writer changed the pool first: re-read and decide again.
      deps.memory?.pools.delete(pool);
      if (!(error instanceof PoolRiskConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      continue;
    }
    deps.memory?.pools.set(next, false);
    await settle(next, deps, true);
    await deps.publisher.publish(domainEvents(event, instance, pool, decision.next, interrupted, now, decision.quarantined, deps.policy));
    return { instanceId: instance.instanceId, pool, action, quarantinedUntil: decision.next.quarantinedUntil, duplicate: false };
  }
}

/** The pool record (remembered or read) with the ledger entry it carries written. */
async function settledRecord(pool: string, deps: IngestDeps): Promise<PoolRiskRecord | undefined> {
  const remembered = deps.memory?.pools.get(pool);
  if (remembered?.settled) return remembered.record;
  const record = remembered?.record ?? (await deps.pools.get(pool));
  if (!record) return undefined;
  return settle(record, deps, false);
}

/**
 * Writes the ledger entry a record carries if it is still owed. If another entry took its
 * position, it was never written: it is placed again at the tip, in the record first (a write
 * conditional on the version, which changes nothing else), then written. Returns the record as
 * it now stands, its entry written.
 */
async function settle(found: PoolRiskRecord, deps: IngestDeps, fresh: boolean): Promise<PoolRiskRecord | undefined> {
  let record: PoolRiskRecord | undefined = found;
  for (let attempt = 1; record?.pending; attempt++) {
    const settled = await deps.ledger.settle(record.pending, { fresh });
    if (settled.state !== 'displaced') break;
    if (attempt >= MAX_CONFLICT_RETRIES * 2) throw new PoolRiskConflictError(`the ledger entry of pool ${record.pool} was displaced ${attempt} times`);
    const moved: PoolRiskRecord = { ...record, pending: await deps.ledger.replace(record.pending), version: record.version + 1 };
    try {
      await deps.pools.put(moved);
      record = moved;
      fresh = true;
    } catch (error) {
      if (!(error instanceof PoolRiskConflictError)) throw error;
      // Changed meanwhile: whoever changed it settled or kept the entry; look again.
      deps.memory?.pools.delete(found.pool);
      record = await deps.pools.get(found.pool);
      fresh = false;
    }
    if (record) deps.memory?.pools.set(record, false);
  }
  if (record) deps.memory?.pools.set(record, true);
  return record;
}

function domainEvents(
  event: InterruptionEvent,
  instance: InstanceFacts,
  pool: string,
  record: PoolRiskRecord | undefined,
  interrupted: DomainEvent,
  now: Date,
  quarantined: boolean,
  policy: RiskPolicy,
): DomainEvent[] {
  const until = quarantineEndsAt(record, now);
  if (!quarantined || !until) return [interrupted];
  return [
    interrupted,
    {
      detailType: 'PoolQuarantined',
      detail: { eventId: event.eventId, pool, ...instance.pool, until: until.toISOString(), reason: record?.quarantineReason, riskScore: Number(riskScore(record, now, policy.riskHalfLifeHours).toFixed(4)) },
    },
  ];
}

/** Metrics and the log line of one ingested event: by detail-type, pools quarantined, age of the event at ingest. */
export function reportIngest(event: InterruptionEvent, outcome: IngestOutcome, tools: { metrics: Metrics; logger: Logger }): void {
  const byType = tools.metrics.singleMetric();
  byType.addDimension('DetailType', event.detailType);
  byType.addMetric('InterruptionEvents', MetricUnit.Count, 1);
  const quarantined = outcome.instances.filter((i) => i.action === 'pool.quarantined').length;
  if (quarantined) tools.metrics.addMetric('PoolsQuarantined', MetricUnit.Count, quarantined);
  tools.metrics.addMetric('EventAgeAtIngest', MetricUnit.Milliseconds, Date.now() - event.time.getTime());
  tools.logger.info('interruption ingested', { eventId: event.eventId, kind: event.kind, outcome });
}
