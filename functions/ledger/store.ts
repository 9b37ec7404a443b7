import { TransactionCanceledException, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient} from '@aws-sdk/lib-dynamodb';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { LedgerContentionError } from '../shared/errors';
import { parseOrThrow } from '../shared/validation';
import { type ChainTip, type LedgerDraft, type LedgerEntry, LedgerDraftSchema, seal } from './chain';
import { type PendingEntry, PendingEntrySchema, draftOf, placeDraft, sealPending } from './pending';

/**
 * The ledger table: partition key `chain` (S), sort key `seq` (N). Fleetwarden creates entries
 * only with a condition that the key is new. IAM cannot require that condition, so the function
 * roles get PutItem limited to the chain's keys (dynamodb:LeadingKeys) and no UpdateItem or
 * DeleteItem at all; anything else that rewrites an entry is caught by verification.
 *
 * Deduplication markers live in the same table under `<chain>#dedupe#<key>`, seq 0, written in
 * the same transaction as the entry (`append`), or before it holding the pending entry
 * (`appendOnce`, see there): a redelivered event finds its marker and appends nothing.
 *
 * Entries may also be written without a transaction, after an outbox (the caller's own item, or
 * the dedupe marker) says which entry is owed: `place` a draft at the tip, store the pending entry,
 * then `settle` it. A pending entry is only ever written at the position it names; it is placed
 * again (`replace`) only after another entry was seen at that position, which can never change.
 */
export const LEDGER_KEY = { partition: 'chain', sort: 'seq' } as const;

/** Another item written in the same transaction as the entry: the entry exists iff it was written. */
export interface CoWrite {
  put: { TableName: string; Item: Record<string, unknown>; ConditionExpression?: string; ExpressionAttributeNames?: Record<string, string>; ExpressionAttributeValues?: Record<string, unknown> };
  /** The error to throw when this item's condition fails (nothing was written then). */
  onConditionFailed: () => Error;
}

export interface AppendOptions {
  /** A stable key for the fact being recorded (e.g. event id + action): a repeat appends nothing. */
  dedupeKey?: string;
  /** Items to write atomically with the entry (requires a dedupeKey: the write is a transaction). */
  alsoWrite?: CoWrite[];
}

export interface AppendResult {
  entry: LedgerEntry;
  duplicate: boolean;
  /** How many times a concurrent appender won the race first. */
  conflicts: number;
}

export interface LedgerWriter {
  append(draft: LedgerDraft, options?: AppendOptions): Promise<AppendResult>;
}

/** One fact of `appendMany`: deduplicated, with the items written atomically with its entry. */
export interface BatchFact {
  draft: LedgerDraft;
  dedupeKey: string;
  alsoWrite?: CoWrite[];
}

/** A ledger that appends many facts in few transactions (each fact still its own entry). */
export interface BatchLedgerWriter extends LedgerWriter {
  appendMany(facts: BatchFact[]): Promise<AppendResult[]>;
}

/** DynamoDB's limit on the items of one TransactWriteItems call. */
const MAX_TRANSACTION_ITEMS = 100;

/** What settling a pending entry found: it is in the chain now, or another entry holds its position. */
export type SettleResult = { state: 'written' | 'present'; entry: LedgerEntry } | { state: 'displaced'; by: LedgerEntry };

/** A ledger that writes entries after an outbox, one item per write (no transaction). */
export interface OutboxLedger extends LedgerWriter {
  readonly chain: string;
  /** Places a draft after the tip this writer last saw (or reads it): the entry it would be. */
  place(draft: LedgerDraft): Promise<PendingEntry>;
  /** The position the next `place` will take, at the earliest (a later placement only goes further). */
  nextSeq(): Promise<number>;
  /**
   * Makes sure a pending entry is in its chain: writes it if its position is free. `fresh`: it
   * was just placed (write first); otherwise it was found in an item (read first: most likely it
   * was written long ago).
   */
  settle(pending: PendingEntry, options?: { fresh?: boolean }): Promise<SettleResult>;
  /** Places a displaced pending entry again, at the chain's tip as read now. */
  replace(pending: PendingEntry): Promise<PendingEntry>;
  /** Appends a deduplicated fact with two single-item writes: the marker (holding the pending entry), then the entry. */
  appendOnce(draft: LedgerDraft, dedupeKey: string): Promise<AppendResult>;
  /**
   * The entry a fact was recorded with, if any: from `fromSeq` on, an entry of this event about
   * this subject; or the one its dedupe marker names (when a `dedupeKey` is given). Reads only.
   */
  findRecorded(fact: { dedupeKey?: string; eventId: string; subject: string; fromSeq?: number }): Promise<LedgerEntry | undefined>;
}

export interface DynamoLedgerOptions {
  tableName: string;
  chain?: string;
  clock?: () => Date;
  maxAttempts?: number;
}

export const DEFAULT_CHAIN = 'fleet';

export class DynamoLedger implements OutboxLedger, BatchLedgerWriter {
  readonly chain: string;
  private readonly clock: () => Date;
  private readonly maxAttempts: number;
  /** The newest position of this chain this writer has read or written (for `place`). */
  private knownTip: ChainTip | undefined;

  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly options: DynamoLedgerOptions,
  ) {
    this.chain = options.chain ?? DEFAULT_CHAIN;
    this.clock = options.clock ?? (() => new Date());
    this.maxAttempts = options.maxAttempts ?? 25;
  }

  /** The last entry, read consistently (a stale tip would only cost a retry, never a fork). */
  async tip(): Promise<ChainTip | undefined> {
    const tip = await this.tipOf(this.chain);
    this.knownTip = tip;
    return tip;
  }

  /**
   * Forgets the tip this writer remembers, so that the next `place` reads it: other writers
   * append to the chain too (a remembered tip is only a guess, whose cost when wrong is a
   * displaced entry placed again).
   */
  forgetTip(): void {
    this.knownTip = undefined;
  }

  async place(draft: LedgerDraft): Promise<PendingEntry> {
    const valid = parseOrThrow(LedgerDraftSchema, draft, 'ledger entry');
    return placeDraft(this.chain, valid, this.knownTip ?? (await this.tip()), this.clock());
  }

  async nextSeq(): Promise<number> {
    return ((this.knownTip ?? (await this.tip()))?.seq ?? 0) + 1;
  }

  async findRecorded(fact: { dedupeKey?: string; eventId: string; subject: string; fromSeq?: number }): Promise<LedgerEntry | undefined> {
    const found = fact.fromSeq === undefined ? undefined : await this.findFrom(fact.fromSeq, fact.eventId, fact.subject);
    return found ?? (fact.dedupeKey === undefined ? undefined : this.findDuplicate(fact.dedupeKey));
  }

  /** The first entry from `fromSeq` on of this event about this subject (a filtered query, paged). */
  private async findFrom(fromSeq: number, eventId: string, subject: string): Promise<LedgerEntry | undefined> {
    for await (const item of this.itemsFrom(fromSeq, { eventId, subject })) return item as LedgerEntry;
    return undefined;
  }

  async replace(pending: PendingEntry): Promise<PendingEntry> {
    const tip = pending.chain === this.chain ? await this.tip() : await this.tipOf(pending.chain);
    return placeDraft(pending.chain, draftOf(pending), tip, this.clock());
  }

  async settle(pending: PendingEntry, options: { fresh?: boolean } = {}): Promise<SettleResult> {
    const entry = sealPending(parseOrThrow(PendingEntrySchema, pending, 'pending ledger entry'));
    if (!options.fresh) {
      const found = await this.entryAt(entry.chain, entry.seq);
      if (found) return this.compare(found, entry);
    }
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      try {
        await this.doc.send(
          new PutCommand({ TableName: this.options.tableName, Item: entry, ConditionExpression: 'attribute_not_exists(#c)', ExpressionAttributeNames: { '#c': LEDGER_KEY.partition } }),
        );
        this.remember(entry);
        return { state: 'written', entry };
      } catch (error) {
        // The position is taken (by this very entry, written by whoever settled it first, or by
        // a retried request of this writer's own), or a transaction is writing it right now.
        if (classifyConflict(error) !== 'seq') throw error;
        const found = await this.entryAt(entry.chain, entry.seq);
        if (found) return this.compare(found, entry);
        await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * Math.random());
      }
    }
    throw new LedgerContentionError(`could not settle seq ${entry.seq} of chain ${entry.chain} after ${this.maxAttempts} attempts`);
  }

  /**
   * A deduplicated append without a transaction: two single-item conditional puts (1 write unit
   * each for items up to 1 KB) instead of a two-item transaction (2 each). The marker goes first
   * and holds the pending entry; the entry follows. A crash between the two leaves a marker
   * whose entry is owed: the next append of the same key (the redelivered event) finds the marker
   * and settles its entry, so the fact is written exactly once, at the first position it was
   * placed at that no other entry took. Only for facts that are appended again until they succeed
   * (an SQS redelivery): a crash not followed by a retry would leave the entry owed.
   */
  async appendOnce(draft: LedgerDraft, dedupeKey: string): Promise<AppendResult> {
    let pending = await this.place(draft);
    const key = { [LEDGER_KEY.partition]: this.markerKey(dedupeKey), [LEDGER_KEY.sort]: 0 };
    try {
      await this.putMarker(key, pending, undefined);
    } catch (error) {
      if (!(error instanceof ConditionalCheckFailedException)) throw error;
      // Appended before (or being appended right now): settle what the marker says.
      return { ...(await this.settleMarker(key, await this.marker(key))), duplicate: true };
    }
    let conflicts = 0;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const settled = await this.settle(pending, { fresh: true }); // placed just now, by this writer
      if (settled.state !== 'displaced') return { entry: settled.entry, duplicate: false, conflicts };
      conflicts += 1;
      const moved = await this.replace(pending);
      try {
        await this.putMarker(key, moved, pending.seq);
        pending = moved;
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        // Whoever settled it concurrently moved it first: follow the marker.
        return { ...(await this.settleMarker(key, await this.marker(key))), duplicate: false };
      }
    }
    throw new LedgerContentionError(`could not append to chain ${this.chain} after ${this.maxAttempts} attempts`);
  }

  async append(draft: LedgerDraft, options: AppendOptions = {}): Promise<AppendResult> {
    const valid = parseOrThrow(LedgerDraftSchema, draft, 'ledger entry');
    if (options.dedupeKey) {
      const existing = await this.findDuplicate(options.dedupeKey);
      if (existing) return { entry: existing, duplicate: true, conflicts: 0 };
    }
    let conflicts = 0;
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      const entry = seal(this.chain, valid, await this.tip(), this.clock());
      try {
        await this.write(entry, options.dedupeKey, options.alsoWrite ?? []);
        this.remember(entry);
        return { entry, duplicate: false, conflicts };
      } catch (error) {
        const coWrite = failedCoWrite(error, options.alsoWrite ?? []);
        if (coWrite) throw coWrite.onConditionFailed();
        const lost = classifyConflict(error);
        if (lost === 'duplicate' && options.dedupeKey) {
          const existing = await this.findDuplicate(options.dedupeKey);
          if (existing) return { entry: existing, duplicate: true, conflicts };
        }
        if (lost === 'none') throw error;
        conflicts += 1;
        await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * Math.random());
      }
    }
    throw new LedgerContentionError(`could not append to chain ${this.chain} after ${this.maxAttempts} attempts`);
  }

  /**
   * Appends many facts as consecutive entries, as many per transaction as DynamoDB takes (each
   * fact: its entry, its dedupe marker, its co-written items). A transaction that loses the tip
   * to another appender is sealed again on the new tip; one whose marker or co-write condition
   * fails (a duplicate, a changed item) is appended fact by fact instead, so each fact gets its
   * own outcome. Only the first transaction reads the tip; the others follow the one just written.
   */
  async appendMany(facts: BatchFact[]): Promise<AppendResult[]> {
    const results: AppendResult[] = [];
    for (let start = 0; start < facts.length; ) {
      let end = start;
      let items = 0;
      while (end < facts.length && items + 2 + (facts[end]!.alsoWrite?.length ?? 0) <= MAX_TRANSACTION_ITEMS) items += 2 + (facts[end++]!.alsoWrite?.length ?? 0);
      if (end === start) throw new Error(`a fact with ${facts[start]!.alsoWrite?.length} co-writes does not fit one transaction`);
      results.push(...(await this.appendChunk(facts.slice(start, end))));
      start = end;
    }
    return results;
  }

  private async appendChunk(facts: BatchFact[]): Promise<AppendResult[]> {
    if (facts.length === 1) return [await this.append(facts[0]!.draft, facts[0]!)];
    const drafts = facts.map((f) => parseOrThrow(LedgerDraftSchema, f.draft, 'ledger entry'));
    for (let attempt = 1; attempt <= this.maxAttempts; attempt++) {
      let tip = this.knownTip ?? (await this.tip());
      const entries = drafts.map((draft) => {
        const entry = seal(this.chain, draft, tip, this.clock());
        tip = { seq: entry.seq, hash: entry.hash };
        return entry;
      });
      const kinds: ('entry' | 'marker' | 'co-write')[] = [];
      const TransactItems = facts.flatMap((fact, i) => {
        const entry = entries[i]!;
        kinds.push('entry', 'marker', ...(fact.alsoWrite ?? []).map(() => 'co-write' as const));
        return [
          { Put: { TableName: this.options.tableName, Item: entry, ConditionExpression: 'attribute_not_exists(#c)', ExpressionAttributeNames: { '#c': LEDGER_KEY.partition } } },
          {
            Put: {
              TableName: this.options.tableName,
              Item: { chain: this.markerKey(fact.dedupeKey), seq: 0, entrySeq: entry.seq, entryHash: entry.hash },
              ConditionExpression: 'attribute_not_exists(#c)',
              ExpressionAttributeNames: { '#c': LEDGER_KEY.partition },
            },
          },
          ...(fact.alsoWrite ?? []).map((w) => ({ Put: w.put })),
        ];
      });
      try {
        await this.doc.send(new TransactWriteCommand({ TransactItems }));
        this.remember(entries[entries.length - 1]!);
        return entries.map((entry) => ({ entry, duplicate: false, conflicts: attempt - 1 }));
      } catch (error) {
        if (!(error instanceof TransactionCanceledException)) throw error;
        const failed = (error.CancellationReasons ?? []).map((r, i) => (r.Code === 'ConditionalCheckFailed' ? kinds[i] : undefined)).filter(Boolean);
        if (failed.some((k) => k !== 'entry')) {
          // A duplicate or a changed item among them: one at a time, each with its own outcome.
          const one: AppendResult[] = [];
          for (const fact of facts) one.push(await this.append(fact.draft, fact));
          return one;
        }
        if (!failed.length && !(error.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict')) throw error;
        this.knownTip = undefined;
        await sleep(Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * Math.random());
      }
    }
    throw new LedgerContentionError(`could not append ${facts.length} entries to chain ${this.chain} after ${this.maxAttempts} attempts`);
  }

  /** Entries in sequence order, paginated, read consistently. */
  entries(fromSeq = 1): AsyncGenerator<Record<string, unknown>> {
    return this.itemsFrom(fromSeq);
  }

  /** The chain's entries from its tip backwards, a page at a time, read consistently (the newest first). */
  async *newestFirst(): AsyncGenerator<Record<string, unknown>> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.options.tableName,
          KeyConditionExpression: '#c = :c',
          ExpressionAttributeNames: { '#c': LEDGER_KEY.partition },
          ExpressionAttributeValues: { ':c': this.chain },
          ScanIndexForward: false,
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) yield item;
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  /** The chain's items from `fromSeq` on, in sequence order, paged, read consistently; `only` filters on the server. */
  private async *itemsFrom(fromSeq: number, only?: { eventId: string; subject: string }): AsyncGenerator<Record<string, unknown>> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.options.tableName,
          KeyConditionExpression: '#c = :c AND #s >= :from',
          ...(only ? { FilterExpression: '#e = :e AND #subject = :subject' } : {}),
          ExpressionAttributeNames: { '#c': LEDGER_KEY.partition, '#s': LEDGER_KEY.sort, ...(only ? { '#e': 'eventId', '#subject': 'subject' } : {}) },
          ExpressionAttributeValues: { ':c': this.chain, ':from': fromSeq, ...(only ? { ':e': only.eventId, ':subject': only.subject } : {}) },
          ConsistentRead: true,
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) yield item;
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  private async write(entry: LedgerEntry, dedupeKey: string | undefined, alsoWrite: CoWrite[]): Promise<void> {
    if (alsoWrite.length && !dedupeKey) throw new Error('alsoWrite needs a dedupeKey: co-writes go in the dedupe transaction');
    const putEntry = {
      TableName: this.options.tableName,
      Item: entry,
      ConditionExpression: 'attribute_not_exists(#c)',
      ExpressionAttributeNames: { '#c': LEDGER_KEY.partition },
    };
    if (!dedupeKey) {
      await this.doc.send(new PutCommand(putEntry));
      return;
    }
    await this.doc.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: putEntry },
          {
            Put: {
              TableName: this.options.tableName,
              Item: { chain: this.markerKey(dedupeKey), seq: 0, entrySeq: entry.seq, entryHash: entry.hash },
              ConditionExpression: 'attribute_not_exists(#c)',
              ExpressionAttributeNames: { '#c': LEDGER_KEY.partition },
            },
          },
          ...alsoWrite.map((w) => ({ Put: w.put })),
        ],
      }),
    );
  }

  private markerKey(dedupeKey: string): string {
    return `${this.chain}#dedupe#${dedupeKey}`;
  }

  private async findDuplicate(dedupeKey: string): Promise<LedgerEntry | undefined> {
    const key = { [LEDGER_KEY.partition]: this.markerKey(dedupeKey), [LEDGER_KEY.sort]: 0 };
    const marker = await this.marker(key);
    return marker ? (await this.settleMarker(key, marker)).entry : undefined;
  }

  private async marker(key: Record<string, unknown>): Promise<Marker | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.options.tableName, Key: key, ConsistentRead: true }));
    return out.Item as Marker | undefined;
  }

  /** The marker of an `appendOnce`, placing its pending entry; `after`: only if it still names that seq. */
  private putMarker(key: Record<string, unknown>, pending: PendingEntry, after: number | undefined) {
    return this.doc.send(
      new PutCommand({
        TableName: this.options.tableName,
        Item: { ...key, entrySeq: pending.seq, entryHash: sealPending(pending).hash, pending },
        ConditionExpression: after === undefined ? 'attribute_not_exists(#c)' : '#s = :after',
        ExpressionAttributeNames: after === undefined ? { '#c': LEDGER_KEY.partition } : { '#s': 'entrySeq' },
        ...(after === undefined ? {} : { ExpressionAttributeValues: { ':after': after } }),
      }),
    );
  }

  /**
   * The entry a marker stands for. A marker written in one transaction with its entry (`append`)
   * names it; one written first (`appendOnce`) holds the pending entry, settled here: written if
   * it is still owed, placed again (and the marker moved) if another entry took its position.
   */
  private async settleMarker(key: Record<string, unknown>, found: Marker | undefined): Promise<{ entry: LedgerEntry; conflicts: number }> {
    let marker = found;
    for (let conflicts = 0; conflicts < this.maxAttempts; conflicts++) {
      if (!marker) throw new Error(`dedupe marker ${String(key[LEDGER_KEY.partition])} vanished`);
      if (!marker.pending) {
        const entry = await this.entryAt(this.chain, Number(marker.entrySeq));
        if (!entry) throw new Error(`dedupe marker ${String(key[LEDGER_KEY.partition])} names seq ${marker.entrySeq}, which is missing`);
        return { entry, conflicts };
      }
      const pending = parseOrThrow(PendingEntrySchema, marker.pending, 'pending ledger entry');
      const settled = await this.settle(pending);
      if (settled.state !== 'displaced') return { entry: settled.entry, conflicts };
      const moved = await this.replace(pending);
      try {
        await this.putMarker(key, moved, pending.seq);
        marker = { ...marker, entrySeq: moved.seq, pending: moved };
      } catch (error) {
        if (!(error instanceof ConditionalCheckFailedException)) throw error;
        marker = await this.marker(key);
      }
    }
    throw new LedgerContentionError(`could not settle dedupe marker ${String(key[LEDGER_KEY.partition])} after ${this.maxAttempts} attempts`);
  }

  private async entryAt(chain: string, seq: number): Promise<LedgerEntry | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.options.tableName, Key: { [LEDGER_KEY.partition]: chain, [LEDGER_KEY.sort]: seq }, ConsistentRead: true }));
    return out.Item as LedgerEntry | undefined;
  }

  /** The entry at a pending entry's position: this one (present), or another (displaced: the remembered tip was stale). */
  private compare(found: LedgerEntry, entry: LedgerEntry): SettleResult {
    if (found.hash === entry.hash) {
      this.remember(found);
      return { state: 'present', entry: found };
    }
    if (entry.chain === this.chain) this.knownTip = undefined;
    return { state: 'displaced', by: found };
  }

  private remember(entry: LedgerEntry): void {
    if (entry.chain === this.chain && (!this.knownTip || entry.seq > this.knownTip.seq)) this.knownTip = { seq: entry.seq, hash: entry.hash };
  }

  private async tipOf(chain: string): Promise<ChainTip | undefined> {
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.options.tableName,
        KeyConditionExpression: '#c = :c',
        ExpressionAttributeNames: { '#c': LEDGER_KEY.partition, '#h': 'hash' },
        ExpressionAttributeValues: { ':c': chain },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
        ProjectionExpression: 'seq, #h',
      }),
    );
    const item = out.Items?.[0];
    return item ? { seq: Number(item.seq), hash: String(item.hash) } : undefined;
  }
}

/** A dedupe marker: `entrySeq`/`entryHash` name the entry; `pending` is the entry owed (appendOnce). */
interface Marker {
  entrySeq: number;
  entryHash?: string;
  pending?: unknown;
}

/** A co-written item whose condition failed (the transaction wrote nothing). */
function failedCoWrite(error: unknown, alsoWrite: CoWrite[]): CoWrite | undefined {
  if (!(error instanceof TransactionCanceledException)) return undefined;
  const reasons = error.CancellationReasons ?? [];
  return alsoWrite.find((_, i) => reasons[i + 2]?.Code === 'ConditionalCheckFailed');
}

/** Which conditional write lost: the entry (another appender took the seq) or the dedupe marker. */
function classifyConflict(error: unknown): 'seq' | 'duplicate' | 'none' {
  if (error instanceof ConditionalCheckFailedException) return 'seq';
  // A plain put that met an in-flight transaction on the same key: the SDK does not retry it.
  if ((error as Error).name === 'TransactionConflictException') return 'seq';
  if (error instanceof TransactionCanceledException) {
    const [entryReason, markerReason] = error.CancellationReasons ?? [];
    if (markerReason?.Code === 'ConditionalCheckFailed') return 'duplicate';
    if (entryReason?.Code === 'ConditionalCheckFailed') return 'seq';
    // Another transaction touching the same items at the same moment: try again.
    if ((error.CancellationReasons ?? []).some((r) => r.Code === 'TransactionConflict')) return 'seq';
  }
  return 'none';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
