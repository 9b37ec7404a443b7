import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, type BatchGetCommandOutput, type DynamoDBDocumentClient, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { CoWrite } from '../ledger/store';
import { RetryableError } from '../shared/errors';
import { type PoolRiskRecord, PoolRiskRecordSchema } from './risk';

/**
 * The PoolRisk table (partition key `pool`). Writes are conditional on the version read, so two
 * handlers updating one pool never lose each other's history: the loser re-reads and re-decides.
 */
export class PoolRiskConflictError extends RetryableError {
  override name = 'Retryable.PoolRiskConflict';
}

export interface PoolRiskStore {
  get(pool: string): Promise<PoolRiskRecord | undefined>;
  getMany(pools: string[]): Promise<Map<string, PoolRiskRecord>>;
  /** Writes `next` if the stored version is still `next.version - 1` (or absent for version 1). */
  put(next: PoolRiskRecord): Promise<void>;
  all(): AsyncIterable<PoolRiskRecord>;
}

/** A store whose write can join a transaction (e.g. with the ledger entry that explains it). */
export interface TransactionalPoolRiskStore extends PoolRiskStore {
  conditionalPut(next: PoolRiskRecord): CoWrite;
}

/**
 * Pool records as this process last read or wrote them (the ingest's memory across the events
 * of a warm container), and whether the ledger entry each one holds (`pending`) is known to be
 * written. Only ever a starting point: every write is conditional on the version, so a record
 * another writer changed since costs a failed write and a re-read, never a lost update. Bounded:
 * the least recently used pools are forgotten first.
 */
export class PoolRecordCache {
  private readonly records = new Map<string, { record: PoolRiskRecord; settled: boolean }>();

  constructor(private readonly capacity = 1_000) {}

  get(pool: string): { record: PoolRiskRecord; settled: boolean } | undefined {
    const found = this.records.get(pool);
    if (found) {
      this.records.delete(pool);
      this.records.set(pool, found);
    }
    return found;
  }

  /** Remembers a record read or written; an older version than the one remembered is ignored. */
  set(record: PoolRiskRecord, settled: boolean): void {
    const known = this.records.get(record.pool);
    if (known && known.record.version > record.version) return;
    this.records.delete(record.pool);
    this.records.set(record.pool, { record, settled });
    if (this.records.size > this.capacity) this.records.delete(this.records.keys().next().value!);
  }

  delete(pool: string): void {
    this.records.delete(pool);
  }
}

export class DynamoPoolRiskStore implements TransactionalPoolRiskStore {
  constructor(
    private readonly doc: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(pool: string): Promise<PoolRiskRecord | undefined> {
    const out = await this.doc.send(new GetCommand({ TableName: this.tableName, Key: { pool }, ConsistentRead: true }));
    return out.Item ? PoolRiskRecordSchema.parse(out.Item) : undefined;
  }

  async getMany(pools: string[]): Promise<Map<string, PoolRiskRecord>> {
    const found = new Map<string, PoolRiskRecord>();
    const unique = [...new Set(pools)];
    for (let i = 0; i < unique.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = unique.slice(i, i + 100).map((pool) => ({ pool }));
      while (keys?.length) {
        const out: BatchGetCommandOutput = await this.doc.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) {
          const record = PoolRiskRecordSchema.parse(item);
          found.set(record.pool, record);
        }
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return found;
  }

  conditionalPut(next: PoolRiskRecord): CoWrite {
    return {
      put: {
        TableName: this.tableName,
        Item: next,
        ConditionExpression: next.version === 1 ? 'attribute_not_exists(#p)' : '#v = :previous',
        ExpressionAttributeNames: next.version === 1 ? { '#p': 'pool' } : { '#v': 'version' },
        ...(next.version === 1 ? {} : { ExpressionAttributeValues: { ':previous': next.version - 1 } }),
      },
      onConditionFailed: () => new PoolRiskConflictError(`pool ${next.pool} changed while it was being updated`),
    };
  }

  async put(next: PoolRiskRecord): Promise<void> {
    try {
      await this.doc.send(new PutCommand(this.conditionalPut(next).put));
    } catch (error) {
      if (error instanceof ConditionalCheckFailedException) {
        throw new PoolRiskConflictError(`pool ${next.pool} changed while it was being updated`, { cause: error });
      }
      throw error;
    }
  }

  async *all(): AsyncIterable<PoolRiskRecord> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.doc.send(new ScanCommand({ TableName: this.tableName, ExclusiveStartKey, ConsistentRead: true }));
      for (const item of page.Items ?? []) yield PoolRiskRecordSchema.parse(item);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }
}
