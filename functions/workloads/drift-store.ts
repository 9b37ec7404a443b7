import { GetCommand, type DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import * as z from 'zod';
import type { BatchFact, BatchLedgerWriter } from '../ledger/store';
import { RetryableError } from '../shared/errors';
import { openInScope } from '../waste/finding-store';
import { DRIFT_TYPES } from './policy';
import { type DriftTransition, type WorkloadDrift, isOpenDrift } from './drift';

/**
 * Workload drifts in the findings table, beside the waste findings: open ones carry
 * `openScope = workload-drift/<cluster>` (the table's sparse open-findings index), so a cycle
 * reads its cluster's open drifts in one query; a closed drift leaves the index and expires.
 */
const CLOSED_DRIFT_DAYS = 90;
const scope = (cluster: string) => `workload-drift/${cluster}`;

const WorkloadDriftSchema = z.object({
  driftId: z.string(),
  cluster: z.string(),
  apiVersion: z.string(),
  kind: z.string(),
  namespace: z.string().nullable(),
  name: z.string(),
  type: z.enum(DRIFT_TYPES),
  diff: z.array(z.string()),
  declaredCommit: z.string().nullable(),
  creator: z.string().optional(),
  uid: z.string().optional(),
  state: z.enum(['open', 'rolling-back', 'rolled-back', 'rollback-failed', 'resolved']),
  action: z.enum(['alert', 'rollback']),
  because: z.string(),
  openedAt: z.string(),
  actAfter: z.string(),
  closedAt: z.string().optional(),
  execution: z.string().optional(),
  outcome: z.string().optional(),
  version: z.number().int().min(1),
});

export class DriftConflictError extends RetryableError {
  override name = 'Retryable.DriftConflict';
}

export interface DriftStore {
  get(driftId: string): Promise<WorkloadDrift | undefined>;
  openIn(cluster: string): Promise<WorkloadDrift[]>;
  /** Every drift, open or closed (the operator's listing). */
  all(): AsyncIterable<WorkloadDrift>;
  /** Writes each transition with its ledger entry, in one transaction per entry; a retried write appends nothing twice. */
  record(transitions: readonly DriftTransition[], eventId: string, actor: string): Promise<void>;
}

const item = (d: WorkloadDrift) => {
  const { driftId, ...rest } = d;
  return { findingId: driftId, ...rest, ...(isOpenDrift(d) ? { openScope: scope(d.cluster) } : { expiresAt: Math.floor(Date.parse(d.closedAt ?? d.openedAt) / 1000) + CLOSED_DRIFT_DAYS * 86_400 }) };
};

const toDrift = (raw: Record<string, unknown>): WorkloadDrift => {
  const { findingId, openScope: _s, expiresAt: _e, ...rest } = raw;
  return WorkloadDriftSchema.parse({ driftId: findingId, ...rest }) as WorkloadDrift;
};

/** The compact form a ledger entry carries as before/after. */
const summary = (d: WorkloadDrift | undefined) =>
  d ? { state: d.state, type: d.type, diff: d.diff, declaredCommit: d.declaredCommit, action: d.action, ...(d.execution ? { execution: d.execution } : {}), ...(d.outcome ? { outcome: d.outcome } : {}), ...(d.creator ? { creator: d.creator } : {}), version: d.version } : null;

export class DynamoDriftStore implements DriftStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Absent for a store that only reads. */
    private readonly ledger?: BatchLedgerWriter,
  ) {}

  async get(driftId: string): Promise<WorkloadDrift | undefined> {
    const out = await this.client.send(new GetCommand({ TableName: this.tableName, Key: { findingId: driftId }, ConsistentRead: true }));
    return out.Item ? toDrift(out.Item) : undefined;
  }

  async openIn(cluster: string): Promise<WorkloadDrift[]> {
    return (await openInScope(this.client, this.tableName, scope(cluster))).map(toDrift);
  }

  async *all(): AsyncIterable<WorkloadDrift> {
    let ExclusiveStartKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(new ScanCommand({ TableName: this.tableName, ExclusiveStartKey, FilterExpression: 'begins_with(findingId, :p)', ExpressionAttributeValues: { ':p': 'workload-drift#' } }));
      for (const raw of page.Items ?? []) yield toDrift(raw);
      ExclusiveStartKey = page.LastEvaluatedKey;
    } while (ExclusiveStartKey);
  }

  async record(transitions: readonly DriftTransition[], eventId: string, actor: string): Promise<void> {
    if (!this.ledger) throw new Error('this drift store only reads: it has no ledger to record transitions in');
    const facts: BatchFact[] = transitions.map((t) => ({
      draft: { actor, action: t.action, subject: t.after.driftId, reason: t.reason, eventId, before: summary(t.before), after: summary(t.after) },
      // One entry per version of a drift: a retried cycle or step appends nothing twice.
      dedupeKey: `${t.after.driftId}#${t.after.openedAt}#v${t.after.version}`,
      alsoWrite:
        t.write === 'none'
          ? []
          : [
              {
                put: {
                  TableName: this.tableName,
                  Item: item(t.after),
                  ...(t.before && t.write !== 'create'
                    ? { ConditionExpression: '#version = :version', ExpressionAttributeNames: { '#version': 'version' }, ExpressionAttributeValues: { ':version': t.before.version } }
                    : { ConditionExpression: 'attribute_not_exists(findingId) OR attribute_not_exists(openScope)' }),
                },
                onConditionFailed: () => new DriftConflictError(`drift ${t.after.driftId} changed since it was read (version ${t.before?.version ?? 'none'})`),
              },
            ],
    }));
    if (facts.length) await this.ledger.appendMany(facts);
  }
}
