import type { LedgerWriter } from '../ledger/store';
import type { AccountDirectory } from './accounts';
import type { EnvironmentClass } from '../shared/environments';
import { TerminalError } from '../shared/errors';
import type { InterruptionEvent } from './events';
import { type Pool, poolKey } from './pool';
import { PoolRiskConflictError, type PoolRiskStore } from './pool-store';
import { type RiskPolicy, applySignal, quarantineEndsAt, riskScore } from './risk';

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

/** Fleetwarden's own domain events, published on its bus (schemas in the README). */
export interface DomainEvent {
  detailType: 'InstanceInterrupted' | 'PoolQuarantined' | 'PoolReleased';
  detail: Record<string, unknown>;
}

export interface EventPublisher {
  publish(events: DomainEvent[]): Promise<void>;
}

export interface IngestDeps {
  accounts: AccountDirectory;
  policy: RiskPolicy;
  resolver: InstanceResolver;
  pools: PoolRiskStore;
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
 * One interruption event, end to end. Order matters for crash safety: the ledger entry first
 * (deduplicated by event id), then the domain events (at least once), then the pool record
 * (conditional on the version read). A retry after a crash anywhere redoes only what is missing;
 * a redelivered event finds its id in the pool history or ledger and changes nothing.
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
    if (!duplicate) await deps.publisher.publish([interrupted]);
    return { instanceId: instance.instanceId, pool, action: 'instance.interrupted', duplicate };
  }

  for (let attempt = 1; ; attempt++) {
    const now = deps.clock();
    const before = await deps.pools.get(pool);
    const decision = applySignal(before, pool, { eventId: event.eventId, at: event.time, kind, account: event.account, environment }, deps.policy, now);
    if (!decision.changed) return { instanceId: instance.instanceId, pool, action: decision.reason === 'stale' ? 'ignored.stale' : 'none', duplicate: decision.reason === 'duplicate' };

    const action = decision.quarantined ? 'pool.quarantined' : kind === 'rebalance' ? 'pool.rebalance-recorded' : 'pool.interruption-recorded';
    const reason = decision.quarantined
      ? `${environment} spot interruption of ${instance.instanceId} in account ${event.account}: pool closed for every account for ${deps.policy.quarantineDays} days`
      : `${kind} of ${instance.instanceId} in ${environment} account ${event.account}: recorded, ${environment} does not quarantine`;
    const snapshot = (r: typeof before) => ({
      quarantinedUntil: r?.quarantinedUntil ?? null,
      riskScore: Number(riskScore(r, now, deps.policy.riskHalfLifeHours).toFixed(4)),
      interruptions: r?.history.length ?? 0,
    });
    const { duplicate } = await deps.ledger.append(
      { actor: deps.actor, action, subject: pool, reason, eventId: event.eventId, before: snapshot(before), after: { ...snapshot(decision.next), instanceId: instance.instanceId } },
      { dedupeKey },
    );
    const events: DomainEvent[] = [interrupted];
    if (decision.quarantined && decision.next.quarantinedUntil && action === 'pool.quarantined') {
      events.push({
        detailType: 'PoolQuarantined',
        detail: {
          eventId: event.eventId,
          pool,
          ...instance.pool,
          until: quarantineEndsAt(decision.next, now)?.toISOString(),
          reason: decision.next.quarantineReason,
          riskScore: Number(decision.scoreAfter.toFixed(4)),
        },
      });
    }
    if (events.length) await deps.publisher.publish(events);
    try {
      await deps.pools.put(decision.next);
      return { instanceId: instance.instanceId, pool, action, quarantinedUntil: decision.next.quarantinedUntil, duplicate };
    } catch (error) {
      // Another event for the same pool landed first: re-read and decide again.
      if (!(error instanceof PoolRiskConflictError) || attempt >= MAX_CONFLICT_RETRIES) throw error;
    }
  }
}
