import { BatchGetCommand, type BatchGetCommandOutput, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import type { BatchFact, BatchLedgerWriter } from '../ledger/store';
import { EnvironmentClassSchema } from '../shared/environments';
import { RetryableError } from '../shared/errors';
import { type Finding, type FindingTransition, OPEN_FINDING_STATES, isLedgered } from './findings';
import { WASTE_KINDS } from './policy';

/**
 * The open findings of one account and region: a sparse index (only open findings carry
 * `openScope`), so a scan reads them in one query and a closed finding leaves it.
 */
export const OPEN_FINDINGS_INDEX = { name: 'open-findings', partitionKey: 'openScope' } as const;

/**
 * The findings marked for cleanup, across every account and region, by the time after which
 * they may be removed: a sparse index (only marked and cleaning findings carry `marked`), so the
 * run's cleanups are one query however many accounts there are.
 */
export const MARKED_FINDINGS_INDEX = { name: 'marked-findings', partitionKey: 'marked', sortKey: 'removableAfter' } as const;

/** The item that dates the latest scan of every account-region (an open finding was seen by it). */
export const LAST_SCAN_ID = 'waste-scan#latest';

/** Closed findings stay readable (and reopen as the same finding) this long, then TTL removes them. */
const CLOSED_FINDING_DAYS = 90;

const FindingSchema = z.object({
  findingId: z.string(),
  kind: z.enum(WASTE_KINDS),
  account: z.string(),
  region: z.string(),
  resourceId: z.string(),
  environment: EnvironmentClassSchema,
  state: z.enum(['watching', 'open', 'marked', 'cleaning', 'cleaned', 'resolved']),
  monthlyUsd: z.number(),
  sizeGiB: z.number().optional(),
  detail: z.string(),
  firstSeen: z.string(),
  lastSeen: z.string(),
  availableSince: z.string().optional(),
  openedAt: z.string().optional(),
  closedAt: z.string().optional(),
  removableAfter: z.string().optional(),
  backupSnapshotId: z.string().optional(),
  outcome: z.string().optional(),
  reopened: z.number().optional(),
  version: z.number().int().min(1),
});

const LastScanSchema = z.object({ scanId: z.string(), at: z.string(), scanned: z.record(z.string(), z.string()) });
/** When each account-region was last scanned completely (`account/region` -> ISO time). */
export type LastScan = z.infer<typeof LastScanSchema>;

export class FindingConflictError extends RetryableError {
  override name = 'Retryable.FindingConflict';
}

export interface FindingStore {
  get(findingId: string): Promise<Finding | undefined>;
  /** The named findings that exist, open or closed (a closed one reopens as the same finding). */
  getMany(findingIds: string[]): Promise<Map<string, Finding>>;
  /** Open findings (watching, open, marked, cleaning) of one account and region. */
  openIn(account: string, region: string): Promise<Finding[]>;
  /** Every finding, for the operator's listing. */
  all(): AsyncIterable<Finding>;
  /** Writes the transitions, each with its ledger entry in the same transaction (bookkeeping ones without). */
  record(transitions: FindingTransition[], eventId: string, actor: string): Promise<void>;
  /** Marked findings whose grace is over at `now`: how many, and the first `limit` ids (earliest first). */
  dueForCleanup(now: Date, limit: number): Promise<{ count: number; findingIds: string[] }>;
  lastScan(): Promise<LastScan | undefined>;
  saveLastScan(scan: LastScan): Promise<void>;
}

/** Every item of one scope of the open-findings index (an account-region's waste, a cluster's workload drifts), page by page. */
export async function openInScope(client: DynamoDBDocumentClient, tableName: string, scope: string): Promise<Record<string, unknown>[]> {
  const found: Record<string, unknown>[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        IndexName: OPEN_FINDINGS_INDEX.name,
        KeyConditionExpression: '#scope = :scope',
        ExpressionAttributeNames: { '#scope': OPEN_FINDINGS_INDEX.partitionKey },
        ExpressionAttributeValues: { ':scope': scope },
        ExclusiveStartKey,
      }),
    );
    found.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return found;
}

export function findingItem(f: Finding): Record<string, unknown> {
  const open = OPEN_FINDING_STATES.includes(f.state);
  const marked = (f.state === 'marked' || f.state === 'cleaning') && f.removableAfter;
  return { ...f, ...(marked ? { marked: 'marked' } : {}), ...(open ? { openScope: `${f.account}/${f.region}` } : { expiresAt: Math.floor(Date.parse(f.closedAt ?? f.lastSeen) / 1000) + CLOSED_FINDING_DAYS * 86_400 }) };
}

const toFinding = (item: Record<string, unknown>): Finding => {
  const { openScope: _scope, expiresAt: _ttl, marked: _marked, ...rest } = item;
  return FindingSchema.parse(rest) as Finding;
};

/** The compact form a ledger entry carries as before/after. */
const summary = (f: Finding | undefined) =>
  f
    ? {
        state: f.state,
        kind: f.kind,
        monthlyUsd: f.monthlyUsd,
        ...(f.sizeGiB !== undefined ? { sizeGiB: f.sizeGiB } : {}),
        ...(f.removableAfter ? { removableAfter: f.removableAfter } : {}),
        ...(f.backupSnapshotId ? { backupSnapshotId: f.backupSnapshotId } : {}),
        ...(f.outcome ? { outcome: f.outcome } : {}),
        version: f.version,
      }
    : null;

export class DynamoFindingStore implements FindingStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Absent for a store that only reads (the operator's listing). */
    private readonly ledger?: BatchLedgerWriter,
  ) {}

  async get(findingId: string): Promise<Finding | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { findingId }, ConsistentRead: true }));
    return out.Item ? toFinding(out.Item) : undefined;
  }

  async getMany(findingIds: string[]): Promise<Map<string, Finding>> {
    const found = new Map<string, Finding>();
    for (let i = 0; i < findingIds.length; i += 100) {
      let keys: Record<string, unknown>[] | undefined = findingIds.slice(i, i + 100).map((findingId) => ({ findingId }));
      for (let attempt = 0; keys?.length; attempt++) {
        if (attempt) await new Promise((r) => setTimeout(r, Math.min(1_000, 50 * 2 ** attempt)));
        const out: BatchGetCommandOutput = await this.client.send(new BatchGetCommand({ RequestItems: { [this.tableName]: { Keys: keys, ConsistentRead: true } } }));
        for (const item of out.Responses?.[this.tableName] ?? []) found.set(item.findingId as string, toFinding(item));
        keys = out.UnprocessedKeys?.[this.tableName]?.Keys;
      }
    }
    return found;
  }

  async openIn(account: string, region: string): Promise<Finding[]> {
    return (await openInScope(this.client, this.tableName, `${account}/${region}`)).map(toFinding);
  }

  async *all(): AsyncIterable<Finding> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(new ScanCommand({ TableName: this.tableName, ExclusiveStartKey }));
      // The table also holds workload drifts (functions/workloads/drift-store.ts): not waste findings.
      for (const item of page.Items ?? []) if (item.findingId !== LAST_SCAN_ID && !String(item.findingId).startsWith('workload-drift#')) yield toFinding(item);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  private put(t: FindingTransition) {
    return {
      TableName: this.tableName,
      Item: findingItem(t.after),
      ...(t.before
        ? { ConditionExpression: '#version = :version', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':version': t.before.version } }
        : { ConditionExpression: 'attribute_not_exists(findingId)' }),
    };
  }

  async record(transitions: FindingTransition[], eventId: string, actor: string): Promise<void> {
    if (!this.ledger) throw new Error('this finding store only reads: it has no ledger to record transitions in');
    const conflict = (t: FindingTransition) => () => new FindingConflictError(`finding ${t.after.findingId} changed since it was read (version ${t.before?.version ?? 'none'})`);
    for (const t of transitions.filter((t) => !isLedgered(t))) {
      try {
        await this.client.send(new PutCommand(this.put(t)));
      } catch (error) {
        if ((error as Error).name === 'ConditionalCheckFailedException') throw conflict(t)();
        throw error;
      }
    }
    const facts: BatchFact[] = transitions.filter(isLedgered).map((t) => ({
      draft: { actor, action: t.action, subject: t.after.findingId, reason: t.reason, eventId, before: summary(t.before), after: summary(t.after) },
      // One entry per transition of one finding version: a retried step appends nothing twice.
      dedupeKey: `${t.after.findingId}#v${t.after.version}`,
      alsoWrite: [{ put: this.put(t), onConditionFailed: conflict(t) }],
    }));
    if (facts.length) await this.ledger.appendMany(facts);
  }

  async dueForCleanup(now: Date, limit: number): Promise<{ count: number; findingIds: string[] }> {
    const findingIds: string[] = [];
    let count = 0;
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: MARKED_FINDINGS_INDEX.name,
          KeyConditionExpression: '#m = :m AND #after <= :now',
          ExpressionAttributeNames: { '#m': MARKED_FINDINGS_INDEX.partitionKey, '#after': MARKED_FINDINGS_INDEX.sortKey },
          ExpressionAttributeValues: { ':m': 'marked', ':now': now.toISOString() },
          ProjectionExpression: 'findingId',
          ExclusiveStartKey,
        }),
      );
      for (const item of page.Items ?? []) if (findingIds.length < limit) findingIds.push(item.findingId as string);
      count += page.Count ?? 0;
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
    return { count, findingIds };
  }

  async lastScan(): Promise<LastScan | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { findingId: LAST_SCAN_ID }, ConsistentRead: true }));
    return out.Item ? LastScanSchema.parse(out.Item) : undefined;
  }

  async saveLastScan(scan: LastScan): Promise<void> {
    await this.client.send(new PutCommand({ TableName: this.tableName, Item: { findingId: LAST_SCAN_ID, ...scan } }));
  }
}
