import type { PoolView } from '../interruption/cli';
import { type OperatingMode, describeMode } from '../shared/operating-mode';
import type { DriftState, WorkloadDrift } from '../workloads/drift';
import { DRIFT_TYPES } from '../workloads/policy';

/**
 * `fleetwarden status` as data: each part read on its own (one that cannot be read says why and
 * the others still show), and the pure rules that say what needs attention and how it reads.
 */
export type Part<T> = T | { error: string };

export const failed = <T>(part: Part<T>): part is { error: string } => typeof part === 'object' && part !== null && 'error' in part;

export interface Running {
  name: string;
  startDate?: string;
}

export interface DeadLetterDepth {
  /** The stack output's name without `Url`: `InterruptionDeadLetterQueue`. */
  queue: string;
  url: string;
  messages: number;
}

/** One cluster's open workload drifts (every state but resolved), counted by drift type and by state. */
export interface ClusterWorkloadDrifts {
  cluster: string;
  open: number;
  /** unauthorized, missing, image, config: only the types with open drifts. */
  byType: Record<string, number>;
  /** open (alerted, or waiting for its grace), rolling-back, rolled-back (resolved by the next cycle), rollback-failed: only the states present. */
  byState: Record<string, number>;
}

export interface StatusReport {
  stack: string;
  region: string;
  at: string;
  mode?: OperatingMode;
  /** Closed pools now, soonest to reopen last. */
  quarantinedPools: Part<PoolView[]>;
  swaps: Part<Running[]>;
  /** Batches under way; drift repairs among them are listed under drift too. */
  batches: Part<Running[]>;
  flags: Part<{ open: number; byState: Record<string, number> }>;
  findings: Part<{ open: number; monthlyUsd: number }>;
  drift: {
    node: Part<{ deployed: false } | { deployed: true; repairing: Running[]; driftedLast24h: number }>;
    /** Open workload (Kubernetes object) drifts of each configured cluster; `not deployed` without a published desired state. */
    workload: 'not deployed' | Part<{ clusters: ClusterWorkloadDrifts[] }>;
  };
  digest: Part<{ createdAt: string; ageSeconds: number; toSeq: number; tipSeq: number } | null>;
  deadLetters: Part<DeadLetterDepth[]>;
  /** What an operator should look at; the exit status is 1 when there is any. */
  attention: string[];
}

/** Drift repair batches are named `drift-<group>-…` (functions/drift/nodes.ts driftExecutionPrefix). */
export const isDriftRepair = (execution: Running): boolean => execution.name.startsWith('drift-');

const OPEN_DRIFT_STATES: readonly DriftState[] = ['open', 'rolling-back', 'rolled-back', 'rollback-failed'];

/** The counts of one cluster's open drifts, types and states in a fixed order. */
export function countWorkloadDrifts(cluster: string, drifts: readonly Pick<WorkloadDrift, 'type' | 'state'>[]): ClusterWorkloadDrifts {
  const open = drifts.filter((d) => d.state !== 'resolved');
  const count = <K extends string>(keys: readonly K[], of: (d: (typeof open)[number]) => K): Record<string, number> =>
    Object.fromEntries(keys.map((k) => [k, open.filter((d) => of(d) === k).length] as const).filter(([, n]) => n > 0));
  return { cluster, open: open.length, byType: count(DRIFT_TYPES, (d) => d.type), byState: count(OPEN_DRIFT_STATES, (d) => d.state) };
}

/** What needs an operator: messages parked in a dead-letter queue, and any part that could not be read. */
export function needsAttention(report: Omit<StatusReport, 'attention'>): string[] {
  const attention: string[] = [];
  if (!failed(report.deadLetters)) {
    for (const q of report.deadLetters) if (q.messages > 0) attention.push(`${q.messages} message${q.messages === 1 ? '' : 's'} in ${q.queue}: inspect their reason attribute, then redrive`);
  }
  const parts: [string, Part<unknown>][] = [
    ['pools', report.quarantinedPools],
    ['swaps', report.swaps],
    ['batches', report.batches],
    ['flags', report.flags],
    ['findings', report.findings],
    ['node drift', report.drift.node],
    ['workload drift', report.drift.workload],
    ['last digest', report.digest],
    ['dead-letter queues', report.deadLetters],
  ];
  for (const [name, part] of parts) if (failed(part)) attention.push(`${name} could not be read: ${part.error}`);
  return attention;
}

/** "3h 20m", "45s", "2d 4h". */
export function age(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
const usd = (n: number) => `$${n.toFixed(2)}`;

function runningText(list: Running[], one: string, many: string): string[] {
  if (!list.length) return [`no ${one} running`];
  return [`${plural(list.length, one, many)} running`, ...list.map((e) => `  ${e.name}${e.startDate ? `, started ${e.startDate}` : ''}`)];
}

/** `prod-eks: 3 open (2 image, 1 unauthorized); 1 rolling-back, 1 rollback-failed`: the states besides plain open are named. */
function workloadDriftText(c: ClusterWorkloadDrifts): string {
  if (!c.open) return `${c.cluster}: none open`;
  const counts = (byKey: Record<string, number>) => Object.entries(byKey).map(([key, n]) => `${n} ${key}`).join(', ');
  const { open: _open, ...acting } = c.byState;
  return `${c.cluster}: ${c.open} open (${counts(c.byType)})${Object.keys(acting).length ? `; ${counts(acting)}` : ''}`;
}

/** The one screen. */
export function formatStatus(report: StatusReport): string {
  const rows: [string, string[]][] = [];
  const part = <T>(label: string, value: Part<T>, lines: (v: T) => string[]) => rows.push([label, failed(value) ? [`unavailable: ${value.error}`] : lines(value)]);

  rows.push(['Mode', describeMode(report.mode)]);
  part('Pools', report.quarantinedPools, (pools) =>
    pools.length ? [`${plural(pools.length, 'pool')} closed`, ...pools.map((p) => `  ${p.pool}  ${p.state} until ${p.until}  ${p.reason ?? ''}`.trimEnd())] : ['none quarantined'],
  );
  part('Swaps', report.swaps, (list) => runningText(list, 'swap', 'swaps'));
  part('Batches', report.batches, (list) => runningText(list, 'batch', 'batches'));
  part('Flags', report.flags, (f) => [f.open ? `${f.open} open (${Object.entries(f.byState).map(([state, n]) => `${n} ${state}`).join(', ')})` : 'none open']);
  part('Findings', report.findings, (f) => [f.open ? `${f.open} open, ${usd(f.monthlyUsd)} a month` : 'none open']);
  part('Node drift', report.drift.node, (d) =>
    !d.deployed
      ? ['not deployed (no swap group has driftRepair)']
      : [`${plural(d.driftedLast24h, 'node')} found drifted in the last 24h; ${d.repairing.length ? `${plural(d.repairing.length, 'repair batch', 'repair batches')} running` : 'no repair batch running'}`, ...d.repairing.map((e) => `  ${e.name}`)],
  );
  if (report.drift.workload === 'not deployed') rows.push(['Workload drift', ['not deployed (no manifests under kubernetes.desiredState.path for a configured cluster)']]);
  else part('Workload drift', report.drift.workload, (w) => (w.clusters.length ? w.clusters.map(workloadDriftText) : ['no cluster configured']));
  part('Last digest', report.digest, (d) => (d ? [`${d.createdAt} (${age(d.ageSeconds)} ago), up to seq ${d.toSeq}; ${plural(Math.max(0, d.tipSeq - d.toSeq), 'entry', 'entries')} since`] : ['none yet']));
  part('Dead letters', report.deadLetters, (queues) => (queues.length ? queues.map((q) => `${q.queue} ${q.messages}`) : ['no dead-letter queue outputs']));

  const width = Math.max(...rows.map(([label]) => label.length)) + 2;
  const body = rows.flatMap(([label, lines]) => lines.map((line, i) => `${(i === 0 ? label : '').padEnd(width)}${line}`));
  const head = `Fleetwarden stack ${report.stack} in ${report.region}, ${report.at}`;
  const tail = report.attention.length ? ['', 'Needs attention:', ...report.attention.map((a) => `  ${a}`)] : ['', 'Nothing needs attention.'];
  return [head, '', ...body, ...tail].join('\n');
}
