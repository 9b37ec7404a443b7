import { DeleteItemCommand, DynamoDBClient, GetItemCommand } from '@aws-sdk/client-dynamodb';
import { awsClient } from './aws';

/**
 * Lease locks in the Locks table: one item per locked thing, `{ lockId, owner, leaseUntil,
 * expiresAt, plan? }`. A lock is taken with a conditional put (free, or its lease ran out: the
 * owner died without releasing it) and released with a conditional delete (only by its owner).
 * The NodeSwap state machine takes and releases the group lock itself (DynamoDB SDK tasks built
 * from the expressions below); the functions read it and the rollbacks release it. DynamoDB TTL
 * (`expiresAt`) only cleans up: whether a lock is held is decided from `leaseUntil`.
 */

/** Condition of the put that takes a lock (`:now` is the taker's clock, ISO 8601). */
export const TAKE_LOCK_CONDITION = 'attribute_not_exists(lockId) OR leaseUntil < :now';
/** Condition of the delete that releases a lock (`#o` is `owner`, `:me` the releasing owner). */
export const RELEASE_LOCK_CONDITION = '#o = :me';

/** TTL removes an abandoned lock item this long after its lease ran out. */
const CLEANUP_AFTER_LEASE_S = 86_400;

/** The lock of one Auto Scaling group: one swap per group at a time. */
export function groupLockId(region: string, group: string): string {
  return `swap-lock#${region}#${group}`;
}

/** What a taker writes: who holds the lock, from when, until when, and when TTL may remove the item. */
export interface Lease {
  id: string;
  owner: string;
  now: string;
  leaseUntil: string;
  /** DynamoDB TTL, epoch seconds as a string (the state machine writes it as a number). */
  expiresAt: string;
}

export function lease(id: string, owner: string, now: Date, leaseMs: number): Lease {
  const until = now.getTime() + leaseMs;
  return { id, owner, now: now.toISOString(), leaseUntil: new Date(until).toISOString(), expiresAt: String(Math.ceil(until / 1000) + CLEANUP_AFTER_LEASE_S) };
}

/** A held lock as its taker wrote it: the owner and, for a swap, the plan it worked from. */
export interface HeldLock {
  owner: string;
  plan?: string;
}

export interface LockStore {
  /** The lock's holder (consistent read: a rollback acts on it), or undefined when it is free. */
  held(lockId: string): Promise<HeldLock | undefined>;
  /** Releases the lock if `owner` holds it; a lock that is not (or no longer) theirs is left alone. */
  release(lockId: string, owner: string): Promise<'released' | 'not-ours'>;
}

export class DynamoLocks implements LockStore {
  constructor(private readonly tableName: string) {}

  async held(lockId: string): Promise<HeldLock | undefined> {
    const out = await awsClient(DynamoDBClient).send(new GetItemCommand({ TableName: this.tableName, Key: { lockId: { S: lockId } }, ConsistentRead: true }));
    const owner = out.Item?.owner?.S;
    return owner ? { owner, plan: out.Item?.plan?.S } : undefined;
  }

  async release(lockId: string, owner: string): Promise<'released' | 'not-ours'> {
    try {
      await awsClient(DynamoDBClient).send(
        new DeleteItemCommand({
          TableName: this.tableName,
          Key: { lockId: { S: lockId } },
          ConditionExpression: RELEASE_LOCK_CONDITION,
          ExpressionAttributeNames: { '#o': 'owner' },
          ExpressionAttributeValues: { ':me': { S: owner } },
        }),
      );
      return 'released';
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return 'not-ours';
      throw error;
    }
  }
}
