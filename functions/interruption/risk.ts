import * as z from 'zod';
import { PendingEntrySchema } from '../ledger/pending';
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
  /**
   * Where the ledger entry that recorded it is, at the earliest (its writer placed it there or
   * later): set by the interruption ingest, whose signals have no dedupe marker.
   */
  seq: z.number().int().min(1).optional(),
});
export type HistoryEntry = z.infer<typeof HistoryEntrySchema>;

/**
 * The signals no longer kept one by one (beyond MAX_HISTORY), summed up: how many, their
 * decayed weight at `at`, and the time and event id of the newest of them. A signal that sorts
 * at or before that one may be one of them: the record alone cannot tell (applySignal says
 * `forgotten`); `fromSeq` is where the ledger entries of the forgotten ingest signals start,
 * for the caller to look the signal up there.
 */
export const ForgottenSignalsSchema = z.strictObject({
  at: z.iso.datetime(),
  eventId: z.string(),
  count: z.number().int().min(1),
  weight: z.number().min(0),
  fromSeq: z.number().int().min(1).optional(),
  /**
   * Some of them are interruption signals recorded before their seq was noted (by a transaction
   * with a dedupe marker): looking one up takes its marker too.
   */
  marked: z.literal(true).optional(),
});
export type ForgottenSignals = z.infer<typeof ForgottenSignalsSchema>;

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
  /** The newest signals (at most MAX_HISTORY), by time then event id. */
  history: z.array(HistoryEntrySchema).default([]),
  forgotten: ForgottenSignalsSchema.optional(),
  /**
   * The ledger entry that explains this version of the record, placed in the chain but maybe not
   * written yet (the record is its outbox, see ingest.ts). Writers that do not own it keep it.
   */
  pending: PendingEntrySchema.optional(),
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
/**
 * Signals kept one by one; older ones are summed up in `forgotten`. Bounded so that a pool
 * record (with its pending ledger entry) stays within 2 KB, two DynamoDB write units.
 */
export const MAX_HISTORY = 6;

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
  const decayed = (weight: number, at: string) => weight * 0.5 ** (Math.max(0, now.getTime() - Date.parse(at)) / halfLifeMs);
  const kept = (record?.history ?? []).reduce((score, entry) => score + decayed(WEIGHT[entry.kind], entry.at), 0);
  return kept + (record?.forgotten ? decayed(record.forgotten.weight, record.forgotten.at) : 0);
}

/** How many signals a record counts: those kept and those summed up. */
export function signalCount(record: PoolRiskRecord | undefined): number {
  return (record?.history.length ?? 0) + (record?.forgotten?.count ?? 0);
}

export interface Signal {
  eventId: string;
  at: Date;
  kind: InterruptionKind;
  account: string;
  environment: EnvironmentClass;
  /** The earliest position of the ledger entry that will record it (HistoryEntry.seq). */
  seq?: number;
}

export type Decision =
  | { changed: false; reason: 'duplicate' }
  /**
   * Older than the history kept: ignored. `forgotten`: it sorts at or before the newest signal
   * summed up in `forgotten` (not older than the horizon), so it may be one of those; a caller
   * that finds it was not (in the ledger) applies it with `{ late: 'new' }`.
   */
  | { changed: false; reason: 'stale'; forgotten?: true }
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
 *
 * The newest MAX_HISTORY signals are kept one by one, older ones summed up (`forgotten`). A
 * signal at or before the newest forgotten one cannot be told apart from those by the record:
 * it is answered `forgotten` unless the caller says it is new (`late: 'new'`, after looking it
 * up), and then it only adds to the summary (and may still close the pool).
 */
export function applySignal(record: PoolRiskRecord | undefined, pool: string, signal: Signal, policy: RiskPolicy, now: Date, options: { late?: 'new' } = {}): Decision {
  const current: PoolRiskRecord = record ?? { pool, history: [], version: 0 };
  if (current.history.some((h) => h.eventId === signal.eventId)) return { changed: false, reason: 'duplicate' };
  // History older than the horizon is pruned, so a signal that old could no longer be recognised
  // as a duplicate: it is ignored instead (it would weigh nothing and quarantine nothing). The
  // horizon outlasts every redelivery (REDELIVERY_WINDOW_MS), so such a signal was never applied.
  const horizon = now.getTime() - historyHorizonMs(policy);
  if (signal.at.getTime() < horizon) return { changed: false, reason: 'stale' };
  const entry: HistoryEntry = { eventId: signal.eventId, at: signal.at.toISOString(), kind: signal.kind, account: signal.account, environment: signal.environment, ...(signal.seq ? { seq: signal.seq } : {}) };
  // A summary older than the horizon weighs nothing, and the horizon ignores what it would.
  let forgotten = current.forgotten && Date.parse(current.forgotten.at) >= horizon ? current.forgotten : undefined;
  const kept = current.history.filter((h) => Date.parse(h.at) >= horizon);
  let history: HistoryEntry[];
  if (forgotten && bySignalOrder(entry, forgotten) <= 0) {
    if (options.late !== 'new') return { changed: false, reason: 'stale', forgotten: true };
    history = kept;
    forgotten = absorb(forgotten, entry, policy);
  } else {
    // Time, then event id: the same signals give the same history whatever order they came in
    // (as long as no more than MAX_HISTORY of them are kept).
    history = [...kept, entry].sort(bySignalOrder);
    while (history.length > MAX_HISTORY) forgotten = forget(forgotten, history.shift()!, policy);
  }
  const next: PoolRiskRecord = { ...current, history, version: current.version + 1 };
  if (forgotten) next.forgotten = forgotten;
  else delete next.forgotten;

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

/** The order of the history: time, then event id. */
function bySignalOrder(a: { at: string; eventId: string }, b: { at: string; eventId: string }): number {
  const order = (x: string, y: string) => (x < y ? -1 : x > y ? 1 : 0);
  return order(a.at, b.at) || order(a.eventId, b.eventId);
}

/** Adds the oldest kept signal (never older than the summary's newest) to the summary. */
function forget(summary: ForgottenSignals | undefined, dropped: HistoryEntry, policy: RiskPolicy): ForgottenSignals {
  const decay = summary ? halvings(Date.parse(dropped.at) - Date.parse(summary.at), policy) : 0;
  const marked = summary?.marked || (dropped.seq === undefined && dropped.kind !== 'insufficient-capacity');
  return { ...fromSeq(summary, dropped), ...(marked ? { marked: true as const } : {}), at: dropped.at, eventId: dropped.eventId, count: (summary?.count ?? 0) + 1, weight: (summary?.weight ?? 0) * decay + WEIGHT[dropped.kind] };
}

/** Adds a new signal older than the summary's newest to the summary (weighed at the summary's time). */
function absorb(summary: ForgottenSignals, late: HistoryEntry, policy: RiskPolicy): ForgottenSignals {
  return { ...summary, ...fromSeq(summary, late), count: summary.count + 1, weight: summary.weight + WEIGHT[late.kind] * halvings(Date.parse(summary.at) - Date.parse(late.at), policy) };
}

const halvings = (ms: number, policy: RiskPolicy) => 0.5 ** (ms / (policy.riskHalfLifeHours * 3_600_000));

/** The summary's `fromSeq` once a signal recorded at `entry.seq` joins it. */
function fromSeq(summary: ForgottenSignals | undefined, entry: HistoryEntry): { fromSeq?: number } {
  const seqs = [summary?.fromSeq, entry.seq].filter((s): s is number => s !== undefined);
  return seqs.length ? { fromSeq: Math.min(...seqs) } : {};
}

/** A later end wins; on the same end, the smaller event id (so delivery order never matters). */
function extends_(currentUntil: string | undefined, currentEventId: string | undefined, until: Date, eventId: string): boolean {
  if (!currentUntil) return true;
  const current = Date.parse(currentUntil);
  return current < until.getTime() || (current === until.getTime() && eventId < (currentEventId ?? ''));
}

/**
 * The longest an SQS delivery can come after its event: the interruption queue's dead-letter
 * queue keeps a message 14 days from its first enqueue (EventBridge retries for an hour before).
 */
export const REDELIVERY_WINDOW_MS = 15 * 86_400_000;

/**
 * How far back history is kept: long enough to weigh nothing, to outlast any quarantine, and to
 * outlast any redelivery (so that a signal older than the horizon was never applied).
 */
function historyHorizonMs(policy: RiskPolicy): number {
  return Math.max(HISTORY_HALF_LIVES * policy.riskHalfLifeHours * 3_600_000, policy.quarantineDays * 86_400_000, REDELIVERY_WINDOW_MS);
}

/** The cleanup's decision: a quarantine has ended and its end is not yet recorded. */
export function expiredQuarantine(record: PoolRiskRecord, now: Date): boolean {
  return record.quarantinedUntil !== undefined && Date.parse(record.quarantinedUntil) <= now.getTime() && record.releasedAt === undefined;
}
