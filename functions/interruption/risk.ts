import * as z from 'zod';
import type { EnvironmentClass } from '../shared/environments';

/**
 * What Fleetwarden remembers about a pool, and the pure decisions over it. Quarantine expiry is
 * always decided here, on read, from stored timestamps: DynamoDB TTL only cleans up and may
 * delete an expired item up to 48 hours late.
 */
export const InterruptionKindSchema = z.enum(['spot-interruption', 'rebalance', 'insufficient-capacity']);
export type InterruptionKind = z.infer<typeof InterruptionKindSchema>;

export const HistoryEntrySchema = z.strictObject({
  eventId: z.string(),
  at: z.iso.datetime(),
  kind: InterruptionKindSchema,
  account: z.string(),
  environment: z.enum(['PROD', 'STAGING', 'LAB']),
});
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

export const PoolRiskRecordSchema = z.strictObject({
  pool: z.string(),
  /** Long quarantine after an interruption in a quarantining environment. */
  quarantinedUntil: z.iso.datetime().optional(),
  quarantineEventId: z.string().optional(),
  quarantineReason: z.string().optional(),
  /** Short quarantine after InsufficientInstanceCapacity (minutes), like Karpenter's unavailable-offerings cache. */
  capacityBlockedUntil: z.iso.datetime().optional(),
  /** Set when the scheduled cleanup has recorded that the quarantine ended. */
  releasedAt: z.iso.datetime().optional(),
  history: z.array(HistoryEntrySchema).default([]),
  /** Optimistic-locking version: every write is conditional on the version it read. */
  version: z.number().int().min(0).default(0),
  /** DynamoDB TTL (epoch seconds): cleanup only, never consulted for decisions. */
  expiresAt: z.number().int().optional(),
});
export type PoolRiskRecord = z.infer<typeof PoolRiskRecordSchema>;

export interface RiskPolicy {
  quarantineDays: number;
  quarantineByEnvironment: Record<EnvironmentClass, boolean>;
  insufficientCapacityMinutes: number;
  riskHalfLifeHours: number;
}

/** How much each kind of signal counts towards the risk score (an interruption is 1). */
const WEIGHT: Record<InterruptionKind, number> = { 'spot-interruption': 1, rebalance: 0.3, 'insufficient-capacity': 0.5 };
/** History older than this many half-lives weighs under 0.1 % and is dropped. */
const HISTORY_HALF_LIVES = 10;
const MAX_HISTORY = 200;

export function isQuarantined(record: PoolRiskRecord | undefined, now: Date): boolean {
  return quarantineEndsAt(record, now) !== undefined;
}

/** When the pool opens again, or undefined if it is open now. */
export function quarantineEndsAt(record: PoolRiskRecord | undefined, now: Date): Date | undefined {
  const ends = [record?.quarantinedUntil, record?.capacityBlockedUntil]
    .filter((t): t is string => t !== undefined)
    .map((t) => new Date(t))
    .filter((t) => t.getTime() > now.getTime());
  return ends.length ? new Date(Math.max(...ends.map((t) => t.getTime()))) : undefined;
}

/** Decaying risk: each signal's weight halves every half-life. */
export function riskScore(record: PoolRiskRecord | undefined, now: Date, halfLifeHours: number): number {
  const halfLifeMs = halfLifeHours * 3_600_000;
  return (record?.history ?? []).reduce((score, entry) => {
    const age = Math.max(0, now.getTime() - Date.parse(entry.at));
    return score + WEIGHT[entry.kind] * 0.5 ** (age / halfLifeMs);
  }, 0);
}

export interface Signal {
  eventId: string;
  at: Date;
  kind: InterruptionKind;
  account: string;
  environment: EnvironmentClass;
}

export type Decision =
  | { changed: false; reason: 'duplicate' | 'stale' }
  | {
      changed: true;
      next: PoolRiskRecord;
      /** The pool became (or stays longer) closed because of this signal. */
      quarantined: boolean;
      /** Only recorded: e.g. a LAB interruption. */
      recordedOnly: boolean;
      scoreBefore: number;
      scoreAfter: number;
    };

/**
 * Applies one signal to a pool's record. Pure and idempotent: a signal whose event id is already
 * in the history changes nothing, so redelivered events change nothing twice. Quarantine end is
 * computed from the event time, not from now, so a late retry does not extend it.
 */
export function applySignal(record: PoolRiskRecord | undefined, pool: string, signal: Signal, policy: RiskPolicy, now: Date): Decision {
  const current: PoolRiskRecord = record ?? { pool, history: [], version: 0 };
  if (current.history.some((h) => h.eventId === signal.eventId)) return { changed: false, reason: 'duplicate' };
  // History older than the horizon is pruned, so a signal that old could no longer be recognised
  // as a duplicate: it is ignored instead (it would weigh nothing and quarantine nothing).
  const horizon = now.getTime() - historyHorizonMs(policy);
  if (signal.at.getTime() < horizon) return { changed: false, reason: 'stale' };

  const history = [
    ...current.history.filter((h) => Date.parse(h.at) >= horizon),
    { eventId: signal.eventId, at: signal.at.toISOString(), kind: signal.kind, account: signal.account, environment: signal.environment },
  ]
    // Time, then event id: the same signals give the same history whatever order they came in.
    .sort((a, b) => a.at.localeCompare(b.at) || a.eventId.localeCompare(b.eventId))
    .slice(-MAX_HISTORY);
  const next: PoolRiskRecord = { ...current, history, version: current.version + 1 };

  let quarantined = false;
  if (signal.kind === 'spot-interruption' && policy.quarantineByEnvironment[signal.environment]) {
    const until = new Date(signal.at.getTime() + policy.quarantineDays * 86_400_000);
    // A late event whose quarantine would already be over closes nothing: it is history only.
    if (until.getTime() > now.getTime() && extends_(current.quarantinedUntil, current.quarantineEventId, until, signal.eventId)) {
      next.quarantinedUntil = until.toISOString();
      next.quarantineEventId = signal.eventId;
      next.quarantineReason = `${signal.environment} spot interruption in account ${signal.account}`;
      delete next.releasedAt;
      quarantined = true;
    }
  }
  if (signal.kind === 'insufficient-capacity') {
    const until = new Date(signal.at.getTime() + policy.insufficientCapacityMinutes * 60_000);
    if (until.getTime() > now.getTime() && (!current.capacityBlockedUntil || Date.parse(current.capacityBlockedUntil) < until.getTime())) {
      next.capacityBlockedUntil = until.toISOString();
      quarantined = true;
    }
  }
  // TTL: keep the item while a quarantine or meaningful history remains.
  const keepUntil = Math.max(
    now.getTime() + historyHorizonMs(policy),
    next.quarantinedUntil ? Date.parse(next.quarantinedUntil) : 0,
  );
  next.expiresAt = Math.ceil(keepUntil / 1000) + 2 * 86_400;

  return {
    changed: true,
    next,
    quarantined,
    recordedOnly: !quarantined,
    scoreBefore: riskScore(current, now, policy.riskHalfLifeHours),
    scoreAfter: riskScore(next, now, policy.riskHalfLifeHours),
  };
}

/** A later end wins; on the same end, the smaller event id (so delivery order never matters). */
function extends_(currentUntil: string | undefined, currentEventId: string | undefined, until: Date, eventId: string): boolean {
  if (!currentUntil) return true;
  const current = Date.parse(currentUntil);
  return current < until.getTime() || (current === until.getTime() && eventId < (currentEventId ?? ''));
}

/** How far back history is kept: long enough to weigh nothing, and to outlast any quarantine. */
function historyHorizonMs(policy: RiskPolicy): number {
  return Math.max(HISTORY_HALF_LIVES * policy.riskHalfLifeHours * 3_600_000, policy.quarantineDays * 86_400_000);
}

/** The cleanup's decision: a quarantine has ended and its end is not yet recorded. */
export function expiredQuarantine(record: PoolRiskRecord, now: Date): boolean {
  return record.quarantinedUntil !== undefined && Date.parse(record.quarantinedUntil) <= now.getTime() && record.releasedAt === undefined;
}
