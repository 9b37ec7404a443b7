import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Logger } from '@aws-lambda-powertools/logger';
import type { LedgerWriter } from '../ledger/store';
import type { DomainEvent, EventPublisher } from '../shared/bus';
import type { AccountDirectory } from './accounts';
import type { EnvironmentClass } from '../shared/environments';
import { TerminalError } from '../shared/errors';
import type { InterruptionEvent } from './events';
import { type Pool, poolKey } from './pool';
import { PoolRiskConflictError, type TransactionalPoolRiskStore } from './pool-store';
import { type PoolRiskRecord, type RiskPolicy, applySignal, quarantineEndsAt, riskScore } from './risk';

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

export type { DomainEvent, EventPublisher } from '../shared/bus';

export interface IngestDeps {
  accounts: AccountDirectory;
  policy: RiskPolicy;
  resolver: InstanceResolver;
  pools: TransactionalPoolRiskStore;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  clock: () => Date;
  actor: string;
}

export class UnknownAccountError extends TerminalError {
  override name = 'Terminal.UnknownAccount';
}

export interface IngestOutcome {
  eventId: string;
  kind: InterruptionEvent['kind'];
  instances: { instanceId: string; pool?: string; action: string; quarantinedUntil?: string; duplicate: boolean }[];
}

const MAX_CONFLICT_RETRIES = 5;

/**
 * One interruption event, end to end: decide from the pool record read, then write the pool
 * record, the ledger entry and its dedupe marker in one transaction (conditional on the version
 * read, so the ledger always says what was applied), then publish the domain events (at least
 * once: a redelivery after a crash publishes them again). A redelivered event finds its id in
 * the pool history or its ledger marker and changes nothing.
 */
export async function ingestInterruption(event: InterruptionEvent, deps: IngestDeps): Promise<IngestOutcome> {
  const environment = await deps.accounts.environmentOf(event.account);
  if (!environment) throw new UnknownAccountError(`account ${event.account} is not in Fleetwarden's config (nor tagged in Organizations, if enabled)`);
  const facts = await deps.resolver.resolve(event.account, event.region, event.instanceIds);
  const outcome: IngestOutcome = { eventId: event.eventId, kind: event.kind, instances: [] };
  for (const instanceId of event.instanceIds) {
    const instance = facts.get(instanceId) ?? { instanceId, account: event.account, region: event.region };
    outcome.instances.push(await ingestForInstance(event, instance, environment, deps));
  }
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
    const { duplicate } = await deps.ledger.append(
      {
        actor: deps.actor,
        action: 'instance.interrupted',
        subject: instance.instanceId,
        reason: `${event.detailType}${event.state ? ` (${event.state})` : ''} in ${environment} account ${event.account}`,
        eventId: event.eventId,
        after: interrupted.detail as never,
      },
      { dedupeKey },
    );
    // Published on redelivery too: a first attempt may have recorded and then crashed before it.
    await deps.publisher.publish([interrupted]);
    return { instanceId: instance.instanceId, pool, action: 'instance.interrupted', duplicate };
  }

  for (let attempt = 1; ; attempt++) {
    const now = deps.clock();
    const before = await deps.pools.get(pool);
    const decision = applySignal(before, pool, { eventId: event.eventId, at: event.time, kind, account: event.account, environment }, deps.policy, now);
    if (!decision.changed && decision.reason === 'duplicate') {
      // Applied before (the ledger entry went in with it). A first attempt may have crashed
      // before publishing, so the events go out again, from what was applied.
      await deps.publisher.publish(domainEvents(event, instance, pool, before, interrupted, now, before?.quarantineEventId === event.eventId, deps.policy));
      return { instanceId: instance.instanceId, pool, action: 'none', duplicate: true };
    }
    if (!decision.changed) {
      const { duplicate } = await deps.ledger.append(
        { actor: deps.actor, action: 'pool.stale-signal-ignored', subject: pool, reason: `${kind} of ${instance.instanceId} at ${event.time.toISOString()} is older than the pool history kept`, eventId: event.eventId },
        { dedupeKey },
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
      interruptions: r?.history.length ?? 0,
    });
    try {
      // One transaction: the pool record changes if and only if its ledger entry is written.
      await deps.ledger.append(
        { actor: deps.actor, action, subject: pool, reason, eventId: event.eventId, before: snapshot(before), after: { ...snapshot(decision.next), instanceId: instance.instanceId } },
        { dedupeKey, alsoWrite: [deps.pools.conditionalPut(decision.next)] },
      );
    } catch (error) {
      // Another event for the same pool landed first: re-read and decide again.
      if (!(error instanceof PoolRiskConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
      continue;
    }
    await deps.publisher.publish(domainEvents(event, instance, pool, decision.next, interrupted, now, decision.quarantined, deps.policy));
    return { instanceId: instance.instanceId, pool, action, quarantinedUntil: decision.next.quarantinedUntil, duplicate: false };
  }
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
