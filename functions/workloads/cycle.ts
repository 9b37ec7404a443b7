import type { Logger } from '@aws-lambda-powertools/logger';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import * as z from 'zod';
import { TerminalError } from '../shared/errors';
import type { StartedExecution } from '../shared/executions';
import type { DesiredState } from './desired-state';
import { type DriftTransition, type Observation, type WorkloadDrift, confirm, driftEvents, examine, kindsToList, planCycle } from './drift';
import type { WorkloadDriftPolicy } from './policy';
import { rolloutSettled } from './rollback';
import { type ClusterWorkloads, FIELD_MANAGER, type KubeObject, type WorkloadPorts } from './port';

/** What the rollback workflow is started with: the drift, which its steps read back and re-check. */
export const RollbackInputSchema = z.strictObject({
  driftId: z.string().min(1),
  /** `remove` for an undeclared workload, `apply` otherwise. */
  mode: z.enum(['apply', 'remove']),
  /** Rollout checks before the rollback is given up (policy rolloutTimeoutSeconds / the wait between checks). */
  checks: z.number().int().min(1),
});
export type RollbackInput = z.infer<typeof RollbackInputSchema>;

/** Seconds between two rollout checks of the rollback workflow. */
export const ROLLOUT_CHECK_SECONDS = 5;

export interface RollbackStarter {
  start(name: string, input: RollbackInput): Promise<StartedExecution>;
  /** The execution's status (RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED), or `absent` when none has that name. */
  status(name: string): Promise<string>;
}

/** How an execution can end without its own record step having run (stopped by hand, timed out, a failed record). */
const ENDED_UNRECORDED = ['FAILED', 'TIMED_OUT', 'ABORTED'];

export interface WorkloadDriftDeps extends Omit<WorkloadPorts, 'ledger'> {
  rollbacks: RollbackStarter;
  dryRun: boolean;
  clock: () => Date;
}

export interface ClusterDriftReport {
  cluster: string;
  status: 'checked' | 'failed';
  declared: number;
  inSync: number;
  /** Objects the first comparison questioned, each settled by a server-side-apply dry run. */
  dryRuns: number;
  /** Drifts observed this cycle, by type. */
  observed: Record<string, number>;
  opened: number;
  resolved: number;
  ignored: number;
  rollbacksStarted: string[];
  /** API requests this cycle sent to the cluster. */
  requests: number;
  error?: string;
}

/** Some cluster's cycle failed (every cluster was tried); the next cycle is the retry. */
export class WorkloadDriftCycleFailedError extends TerminalError {
  override name = 'Terminal.WorkloadDriftCycleFailed';
}

/**
 * One workload drift cycle over every cluster of the desired state: list each kind once per
 * cluster, compare on the declared fields, confirm questioned objects with a server-side-apply dry
 * run, then open, act on and close drifts (each transition once, in the ledger with its item; an
 * opening and a closing announced on the bus). A cluster that fails does not stop the others.
 */
export async function runWorkloadDriftCycle(eventId: string, deps: WorkloadDriftDeps): Promise<ClusterDriftReport[]> {
  const state = await deps.desiredState();
  const reports: ClusterDriftReport[] = [];
  for (const cluster of state.clusters) {
    try {
      reports.push(await checkCluster(cluster, state, eventId, deps));
    } catch (error) {
      reports.push({ cluster, status: 'failed', declared: 0, inSync: 0, dryRuns: 0, observed: {}, opened: 0, resolved: 0, ignored: 0, rollbacksStarted: [], requests: 0, error: `${(error as Error).name}: ${(error as Error).message}` });
    }
  }
  const failed = reports.filter((r) => r.status === 'failed');
  if (failed.length) throw new WorkloadDriftCycleFailedError(`workload drift cycle failed for ${failed.map((r) => `${r.cluster} (${r.error})`).join(', ')}; the next cycle tries again`);
  return reports;
}

/** What one cluster's objects say about drift now: examine the listing, then a dry run per questioned object. */
export async function observeCluster(cluster: string, state: DesiredState, workloads: ClusterWorkloads, policy: WorkloadDriftPolicy): Promise<{ observations: Observation[]; inSync: number; dryRuns: number; declared: number; live: KubeObject[] }> {
  const declared = state.objects.filter((o) => o.cluster === cluster);
  const live: KubeObject[] = [];
  for (const { apiVersion, kind } of kindsToList(declared)) live.push(...(await workloads.list(apiVersion, kind)));
  const examined = examine({ declared, live, policy });
  const observations = [...examined.observations];
  let inSync = examined.inSync;
  for (const candidate of examined.candidates) {
    const wouldBe = await workloads.apply(candidate.manifest, { dryRun: true, fieldManager: FIELD_MANAGER, force: true });
    const drift = confirm(candidate, wouldBe);
    if (drift) observations.push(drift);
    else inSync += 1;
  }
  return { observations, inSync, dryRuns: examined.candidates.length, declared: declared.length, live };
}

async function checkCluster(cluster: string, state: DesiredState, eventId: string, deps: WorkloadDriftDeps): Promise<ClusterDriftReport> {
  const workloads = await deps.connect(cluster);
  const before = workloads.requests;
  const seen = await observeCluster(cluster, state, workloads, deps.policy);
  const open = await deps.drifts.openIn(cluster);
  const commit = state.source.provenance === 'git' ? state.source.commit : null;
  const unsettled = new Set(
    open
      .filter((d) => d.state === 'rollback-failed')
      .filter((d) => {
        const live = seen.live.find((o) => o.kind === d.kind && o.metadata?.namespace === (d.namespace ?? undefined) && o.metadata?.name === d.name);
        return !live || !rolloutSettled(live).settled;
      })
      .map((d) => d.driftId),
  );
  const plan = planCycle({ cluster, observations: seen.observations, open, commit, policy: deps.policy, dryRun: deps.dryRun, now: deps.clock(), unsettled });
  // Announced first, then recorded: a cycle that fails between the two announces again next
  // time (consumers deduplicate on driftId + detail-type + openedAt), and is never silent.
  const events = driftEvents(plan.transitions);
  if (events.length) await deps.publisher.publish(events);
  if (plan.transitions.length) await deps.drifts.record(plan.transitions, eventId, 'workload-drift');
  const started: string[] = [];
  for (const drift of plan.rollbacks) {
    const run = await deps.rollbacks.start(drift.execution!, rollbackInput(drift, deps.policy));
    if (run.started) started.push(drift.execution!);
  }
  // A drift still rolling back: its execution is started if it never was, and recorded as failed
  // if it ended without recording (a rollback is never left hanging, and never started twice).
  const ended: DriftTransition[] = [];
  for (const drift of plan.resumed) {
    const status = await deps.rollbacks.status(drift.execution!);
    if (status === 'absent') await deps.rollbacks.start(drift.execution!, rollbackInput(drift, deps.policy));
    else if (ENDED_UNRECORDED.includes(status)) {
      ended.push({ action: 'workload.rollback-failed', reason: `the rollback execution ${drift.execution} ended ${status} without recording its result; it is not tried again for this drift: look at the execution and the workload`, before: drift, after: { ...drift, state: 'rollback-failed', outcome: `execution ${status}`, version: drift.version + 1 } });
    }
  }
  if (ended.length) {
    await deps.publisher.publish(driftEvents(ended));
    await deps.drifts.record(ended, eventId, 'workload-drift');
  }
  const observed: Record<string, number> = {};
  for (const o of seen.observations) observed[o.type] = (observed[o.type] ?? 0) + 1;
  return {
    cluster,
    status: 'checked',
    declared: seen.declared,
    inSync: seen.inSync,
    dryRuns: seen.dryRuns,
    observed,
    opened: plan.transitions.filter((t) => t.action === 'workload.drift-detected').length,
    resolved: plan.transitions.filter((t) => t.action === 'workload.drift-resolved').length,
    ignored: plan.ignored,
    rollbacksStarted: started,
    requests: workloads.requests - before,
  };
}

export const rollbackInput = (drift: WorkloadDrift, policy: WorkloadDriftPolicy): RollbackInput => ({
  driftId: drift.driftId,
  mode: drift.type === 'unauthorized' ? 'remove' : 'apply',
  checks: Math.max(1, Math.ceil(policy.rolloutTimeoutSeconds / ROLLOUT_CHECK_SECONDS)),
});

/**
 * The log lines and metrics of one cycle. WorkloadDrifts (drifts observed now) is emitted every
 * cycle, zero included, so the dashboard shows a level; the others only when non-zero (a series is
 * billed for each hour it is emitted in).
 */
export function reportWorkloadDriftCycle(reports: readonly ClusterDriftReport[], tools: { logger: Pick<Logger, 'info'>; metrics: Pick<Metrics, 'addMetric'> }): void {
  for (const report of reports) if (report.opened || report.resolved || report.rollbacksStarted.length) tools.logger.info('workload drift', { ...report });
  const open = reports.reduce((n, r) => n + Object.values(r.observed).reduce((a, b) => a + b, 0), 0);
  const opened = reports.reduce((n, r) => n + r.opened, 0);
  const started = reports.reduce((n, r) => n + r.rollbacksStarted.length, 0);
  tools.metrics.addMetric('WorkloadDrifts', 'Count', open);
  if (opened) tools.metrics.addMetric('WorkloadDriftsOpened', 'Count', opened);
  if (started) tools.metrics.addMetric('WorkloadRollbacksStarted', 'Count', started);
}
