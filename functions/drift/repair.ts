import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { BatchRequestSchema, type BatchRequest, type SwapGroup } from '../batch/model';
import type { DomainEvent, EventPublisher } from '../shared/bus';
import type { LedgerWriter } from '../ledger/store';
import { TerminalError } from '../shared/errors';
import type { StartedExecution } from '../shared/executions';
import type { DriftFactsSource } from './aws';
import { type NodeDriftFinding, detectNodeDrift, driftBatchReason, driftDedupeKey, driftExecutionName, driftExecutionPrefix } from './nodes';
import { plainJson } from '../shared/validation';

/**
 * Some group's cycle failed (every group was tried). Terminal: nothing retries a cycle, the next
 * scheduled one (every policies.drift.cycleMinutes) does it again, and every effect is idempotent;
 * the failed invocation goes to the dead-letter queue, whose alarm tells operators.
 */
export class DriftCycleFailedError extends TerminalError {
  override name = 'Terminal.DriftCycleFailed';
}
export const NODE_DRIFTED = 'NodeDrifted';

/** Starts batch swaps; the batch state machine behind it dedupes by execution name. */
export interface BatchStarter {
  /** Names of running batches whose execution names start with `prefix`. */
  running(prefix: string): Promise<string[]>;
  start(name: string, request: BatchRequest): Promise<StartedExecution>;
}

export interface DriftDeps {
  facts: DriftFactsSource;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  batches: BatchStarter;
  region: string;
  clock: () => Date;
}

export interface GroupDriftReport {
  group: string;
  status: 'in-sync' | 'drifted' | 'missing' | 'failed';
  drifted: { instanceId: string; reason: string; repairable: boolean }[];
  /** Drift facts appended to the ledger by this run (a repeat detection appends nothing). */
  recorded: number;
  /** The repair batch: started by this run, started before (same name), or another drift batch of the group still running. */
  batch?: { name: string; executionArn?: string; outcome: 'started' | 'already-started' | 'another-running' };
  error?: string;
}

/**
 * One drift cycle: for each group with driftRepair, detect drifted InService instances, record
 * each new drift fact once (ledger, dedupe key on group + instance + target) and announce it
 * (NodeDrifted), then start one batch swap of the repairable ones under a deterministic name.
 * Every effect is idempotent, so a cycle repeated every minute (or retried) starts one batch.
 * A group that fails does not stop the others; the cycle fails at the end, naming them
 * (DriftCycleFailedError: the next cycle is the retry).
 */
export async function runDriftCycle(groups: SwapGroup[], deps: DriftDeps): Promise<GroupDriftReport[]> {
  const reports: GroupDriftReport[] = [];
  for (const group of groups.filter((g) => g.driftRepair)) {
    try {
      reports.push(await repairGroup(group.name, deps));
    } catch (error) {
      reports.push({ group: group.name, status: 'failed', drifted: [], recorded: 0, error: `${(error as Error).name}: ${(error as Error).message}` });
    }
  }
  const failed = reports.filter((r) => r.status === 'failed');
  if (failed.length) throw new DriftCycleFailedError(`drift cycle failed for ${failed.map((r) => `${r.group} (${r.error})`).join(', ')}; the next cycle tries again`);
  return reports;
}

async function repairGroup(name: string, deps: DriftDeps): Promise<GroupDriftReport> {
  const facts = await deps.facts.group(name);
  if (!facts) return { group: name, status: 'missing', drifted: [], recorded: 0 };
  const findings = detectNodeDrift(facts);
  const drifted = findings.map((f) => ({ instanceId: f.instanceId, reason: f.reason, repairable: f.repairable }));
  if (findings.length === 0) return { group: name, status: 'in-sync', drifted, recorded: 0 };

  const repairable = findings.filter((f) => f.repairable);
  const now = deps.clock();
  const executionName = repairable.length
    ? driftExecutionName(
        name,
        repairable.map((f) => f.instanceId),
        repairable.map((f) => f.target),
        now,
      )
    : undefined;

  const events: DomainEvent[] = [];
  let recorded = 0;
  for (const finding of findings) {
    const appended = await deps.ledger.append(
      {
        actor: 'node-drift',
        action: 'node.drifted',
        subject: `${deps.region}/${name}/${finding.instanceId}`,
        reason: finding.reason,
        eventId: (finding.repairable && executionName) || driftDedupeKey(deps.region, finding),
        after: plainJson({ differences: finding.differences, repairable: finding.repairable, target: finding.target }),
      },
      { dedupeKey: driftDedupeKey(deps.region, finding) },
    );
    if (appended.duplicate) continue;
    recorded += 1;
    events.push({ detailType: NODE_DRIFTED, detail: driftedDetail(finding, deps.region, finding.repairable ? executionName : undefined) });
  }
  if (events.length) await deps.publisher.publish(events);

  if (!executionName) return { group: name, status: 'drifted', drifted, recorded };
  // One drift batch per group at a time: a later set (fewer instances left, a newer target) waits for it.
  const running = await deps.batches.running(driftExecutionPrefix(name));
  if (running.includes(executionName)) return { group: name, status: 'drifted', drifted, recorded, batch: { name: executionName, outcome: 'already-started' } };
  if (running.length) return { group: name, status: 'drifted', drifted, recorded, batch: { name: running[0]!, outcome: 'another-running' } };
  const request = BatchRequestSchema.parse({
    groups: [name],
    instanceIds: repairable.map((f) => f.instanceId),
    trigger: 'drift',
    reason: driftBatchReason(repairable),
  });
  const started = await deps.batches.start(executionName, request);
  return { group: name, status: 'drifted', drifted, recorded, batch: { name: executionName, executionArn: started.executionArn, outcome: started.started ? 'started' : 'already-started' } };
}

function driftedDetail(finding: NodeDriftFinding, region: string, batch: string | undefined): Record<string, unknown> {
  return plainJson<Record<string, unknown>>({
    group: finding.group,
    region,
    instanceId: finding.instanceId,
    differences: finding.differences,
    reason: finding.reason,
    repairable: finding.repairable,
    target: finding.target,
    batchExecutionName: batch,
  });
}

/** Plain JSON (unset members dropped), as the ledger and EventBridge carry it. */

/** The log lines and metrics of one cycle: missing groups, drifted nodes, batches started. */
export function reportDriftCycle(reports: Awaited<ReturnType<typeof runDriftCycle>>, tools: { logger: Pick<Logger, 'info' | 'warn'>; metrics: Pick<Metrics, 'addMetric'> }): void {
  for (const report of reports) {
    if (report.status === 'missing') tools.logger.warn('configured group not found', { group: report.group });
    if (report.status === 'drifted') tools.logger.info('node drift', { ...report });
  }
  // Only when there is something to count: a series is billed for every hour it is emitted in, and
  // a cycle runs every minute; a dashboard fills the quiet hours with zero.
  const drifted = reports.reduce((n, r) => n + r.drifted.length, 0);
  const started = reports.filter((r) => r.batch?.outcome === 'started').length;
  if (drifted) tools.metrics.addMetric('DriftedNodes', 'Count', drifted);
  if (started) tools.metrics.addMetric('DriftBatchesStarted', 'Count', started);
}
