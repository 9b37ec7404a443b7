import { type DynamoDBDocumentClient, GetCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import type { LedgerWriter } from '../ledger/store';
import { EnvironmentClassSchema } from '../shared/environments';
import { RetryableError } from '../shared/errors';
import { type Flag, type FlagTransition, OPEN_STATES } from './flags';

/**
 * The open flags of one account and region, by end of grace: a sparse index (only open flags
 * carry `openScope`), so a sweep reads them in one query and a closed flag leaves it.
 */
export const OPEN_FLAGS_INDEX = { name: 'open-flags', partitionKey: 'openScope', sortKey: 'graceUntil' } as const;

/** Closed flags stay readable (`fleetwarden flags --state resolved`) this long, then TTL removes them. */
const CLOSED_FLAG_DAYS = 90;

const FlagSchema = z.object({
  instanceKey: z.string(),
  account: z.string(),
  region: z.string(),
  instanceId: z.string(),
  environment: EnvironmentClassSchema,
  state: z.enum(['flagged', 'acting', 'left', 'acted', 'resolved']),
  flaggedAt: z.string(),
  graceUntil: z.string(),
  reason: z.string(),
  creator: z.string().optional(),
  flagEventId: z.string(),
  outcome: z.string().optional(),
  closedAt: z.string().optional(),
  version: z.number().int().min(1),
});

export class FlagConflictError extends RetryableError {
  override name = 'Retryable.FlagConflict';
}

export interface FlagStore {
  get(instanceKey: string): Promise<Flag | undefined>;
  /** Open flags (flagged or left) of one account and region. */
  openIn(account: string, region: string): Promise<Flag[]>;
  /** Every flag, for the operator's listing. */
  all(): AsyncIterable<Flag>;
  /**
   * Writes the transition's flag and its ledger entry in one transaction, if the stored flag is
   * still the one it was decided on; a concurrent change is a FlagConflictError (re-read, re-decide).
   */
  record(transition: FlagTransition, eventId: string, actor: string): Promise<{ duplicate: boolean }>;
}

/** The item as stored: the flag, the sparse index key while open, TTL once closed. */
export function flagItem(flag: Flag): Record<string, unknown> {
  const open = OPEN_STATES.includes(flag.state);
  return {
    ...flag,
    ...(open ? { openScope: `${flag.account}/${flag.region}` } : { expiresAt: Math.floor(Date.parse(flag.closedAt ?? flag.flaggedAt) / 1000) + CLOSED_FLAG_DAYS * 86_400 }),
  };
}

const toFlag = (item: Record<string, unknown>): Flag => {
  const { openScope: _scope, expiresAt: _ttl, ...rest } = item;
  return FlagSchema.parse(rest) as Flag;
};

/** The compact form of a flag a ledger entry carries as before/after. */
const summary = (flag: Flag | undefined) =>
  flag ? { state: flag.state, graceUntil: flag.graceUntil, environment: flag.environment, ...(flag.creator ? { creator: flag.creator } : {}), ...(flag.outcome ? { outcome: flag.outcome } : {}), version: flag.version } : null;

export class DynamoFlagStore implements FlagStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Absent for a store that only reads (the operator's listing). */
    private readonly ledger?: LedgerWriter,
  ) {}

  async get(instanceKey: string): Promise<Flag | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { instanceKey }, ConsistentRead: true }));
    return out.Item ? toFlag(out.Item) : undefined;
  }

  async openIn(account: string, region: string): Promise<Flag[]> {
    const flags: Flag[] = [];
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: OPEN_FLAGS_INDEX.name,
          KeyConditionExpression: '#scope = :scope',
          ExpressionAttributeNames: { '#scope': OPEN_FLAGS_INDEX.partitionKey },
          ExpressionAttributeValues: { ':scope': `${account}/${region}` },
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) flags.push(toFlag(item));
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return flags;
  }

  async *all(): AsyncIterable<Flag> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(new ScanCommand({ TableName: this.tableName, ExclusiveStartKey }));
      for (const item of page.Items ?? []) yield toFlag(item);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  async record(transition: FlagTransition, eventId: string, actor: string): Promise<{ duplicate: boolean }> {
    if (!this.ledger) throw new Error('this flag store only reads: it has no ledger to record transitions in');
    const { after, before } = transition;
    const result = await this.ledger.append(
      { actor, action: transition.action, subject: after.instanceKey, reason: transition.reason, eventId, before: summary(before), after: summary(after) },
      {
        // One entry per transition of one flag version: a redelivered event appends nothing.
        dedupeKey: `${after.instanceKey}#v${after.version}`,
        alsoWrite: [
          {
            put: {
              TableName: this.tableName,
              Item: flagItem(after),
              ...(before
                ? { ConditionExpression: '#version = :version', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':version': before.version } }
                : { ConditionExpression: 'attribute_not_exists(instanceKey)' }),
            },
            onConditionFailed: () => new FlagConflictError(`flag ${after.instanceKey} changed since it was read (version ${before?.version ?? 'none'})`),
          },
        ],
      },
    );
    return { duplicate: result.duplicate };
  }
}
