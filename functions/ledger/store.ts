import { TransactionCanceledException, ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient} from '@aws-sdk/lib-dynamodb';
import { GetCommand, PutCommand, QueryCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { LedgerContentionError } from '../shared/errors';
import { parseOrThrow } from '../shared/validation';
import { type ChainTip, type LedgerDraft, type LedgerEntry, LedgerDraftSchema, seal } from './chain';

/**
 * The ledger table: partition key `chain` (S), sort key `seq` (N). Fleetwarden creates entries
 * only with a condition that the key is new. IAM cannot require that condition, so the function
 * roles get PutItem limited to the chain's keys (dynamodb:LeadingKeys) and no UpdateItem or
 * DeleteItem at all; anything else that rewrites an entry is caught by verification.
 *
 * Deduplication markers live in the same table under `<chain>#dedupe#<key>`, seq 0, written in
 * the same transaction as the entry: a redelivered event finds its marker and appends nothing.
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

export interface DynamoLedgerOptions {
  tableName: string;
  chain?: string;
  clock?: () => Date;
  maxAttempts?: number;
}

export const DEFAULT_CHAIN = 'fleet';

export class DynamoLedger implements LedgerWriter {
  readonly chain: string;
  private readonly clock: () => Date;
  private readonly maxAttempts: number;

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
    const out = await this.doc.send(
      new QueryCommand({
        TableName: this.options.tableName,
        KeyConditionExpression: '#c = :c',
        ExpressionAttributeNames: { '#c': LEDGER_KEY.partition, '#h': 'hash' },
        ExpressionAttributeValues: { ':c': this.chain },
        ScanIndexForward: false,
        Limit: 1,
        ConsistentRead: true,
        ProjectionExpression: 'seq, #h',
      }),
    );
    const item = out.Items?.[0];
    return item ? { seq: Number(item.seq), hash: String(item.hash) } : undefined;
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

  /** Entries in sequence order, paginated, read consistently. */
  async *entries(fromSeq = 1): AsyncGenerator<Record<string, unknown>> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.options.tableName,
          KeyConditionExpression: '#c = :c AND #s >= :from',
          ExpressionAttributeNames: { '#c': LEDGER_KEY.partition, '#s': LEDGER_KEY.sort },
          ExpressionAttributeValues: { ':c': this.chain, ':from': fromSeq },
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
    const marker = await this.doc.send(
      new GetCommand({ TableName: this.options.tableName, Key: { chain: this.markerKey(dedupeKey), seq: 0 }, ConsistentRead: true }),
    );
    if (!marker.Item) return undefined;
    const entry = await this.doc.send(
      new GetCommand({ TableName: this.options.tableName, Key: { chain: this.chain, seq: marker.Item.entrySeq }, ConsistentRead: true }),
    );
    return entry.Item as LedgerEntry | undefined;
  }
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
