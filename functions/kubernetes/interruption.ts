import type { Logger } from '@aws-lambda-powertools/logger';
import { type Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { LedgerWriter } from '../ledger/store';
import type { GroupLifecycle, LifecycleAction } from '../shared/groups';
import type { ClusterConnector } from './connector';
import type { InstanceInterruptedDetail, NodeEvent, NodeEventPublisher } from './events';
import { doNotDisruptAnnotations, drainBudgetMs } from './drain';
import { type DrainProgress, type DrainReport, INTERRUPTION_TAINT_KEY } from './port';
import { plainJson } from '../shared/validation';

/**
 * The interruption use case for Kubernetes nodes (like the Node Termination Handler in
 * queue mode): when an instance of a configured cluster is about to go, taint its node (value:
 * the event id), cordon it and drain it through the Eviction API, at once. `decide` is pure; the
 * rest acts through the ports. Every effect carries the event id, so a redelivery recognises its
 * own earlier work and records only what is missing. Events are published at least once: after
 * every record, duplicate or not, since a crash or a failed PutEvents between the ledger write and
 * the publish would otherwise lose them for good; consumers deduplicate on eventId + detail-type.
 * A republished event carries the facts recorded the first time.
 */
export interface KubernetesPolicy {
  /** What a rebalance recommendation does: nothing, a taint (no new pods), or a full drain. */
  rebalance: 'ignore' | 'taint' | 'drain';
  drainTimeoutSeconds: number;
  doNotDisruptAnnotation: string;
}

export type Decision = { act: 'ignore'; reason: string } | { act: 'taint' | 'drain'; reason: string };

export function decide(event: InstanceInterruptedDetail, clusters: readonly string[], policy: KubernetesPolicy): Decision {
  if (!event.clusterName) return { act: 'ignore', reason: `instance ${event.instanceId} belongs to no Kubernetes cluster` };
  if (!clusters.includes(event.clusterName)) return { act: 'ignore', reason: `cluster ${event.clusterName} is not in kubernetes.clusters` };
  switch (event.kind) {
    case 'spot-interruption':
      return { act: 'drain', reason: `Spot interruption: the instance goes at ${event.deadline ?? 'the end of its 2-minute notice'}` };
    case 'scheduled-change':
      return { act: 'drain', reason: `scheduled change starting ${event.deadline ?? 'soon'}` };
    case 'asg-termination':
      return { act: 'drain', reason: `Auto Scaling group ${event.asg?.name ?? event.asgName ?? ''} is terminating the instance`.replace('  ', ' ') };
    case 'state-change':
      if (event.state === 'pending' || event.state === 'running') return { act: 'ignore', reason: `instance is ${event.state}` };
      return { act: 'drain', reason: `instance is ${event.state ?? 'stopping'}` };
    case 'rebalance-recommendation':
      if (policy.rebalance === 'ignore') return { act: 'ignore', reason: 'rebalance recommendations are ignored (kubernetes.rebalance: ignore)' };
      return { act: policy.rebalance, reason: `rebalance recommendation (kubernetes.rebalance: ${policy.rebalance})` };
  }
}

export interface NodeInterruptionDeps {
  clusters: readonly string[];
  policy: KubernetesPolicy;
  connector: ClusterConnector;
  ledger: LedgerWriter;
  publisher: NodeEventPublisher;
  dryRun: boolean;
  actor: string;
  /** Time left in this invocation; the drain stops early enough to record its result. */
  remainingMs?: () => number;
  /** Completes a group's terminate lifecycle action once the node is drained; absent: the hook's timeout applies. */
  lifecycle?: GroupLifecycle;
  onProgress?: (event: DrainProgress) => void;
}

export interface NodeOutcome {
  eventId: string;
  decision: Decision['act'];
  reason: string;
  node?: string;
  /** What this delivery did; `duplicate` facts were recorded by an earlier one. */
  recorded: { action: string; duplicate: boolean }[];
  drain?: DrainReport;
}

type RecordFact = (action: string, subject: string, reason: string, after: Record<string, unknown>, publish?: { detailType: NodeEvent['detailType']; extra?: Record<string, unknown> }) => Promise<void>;

/** Appends a fact (once per event and action), then publishes it; `extra` is added to the recorded facts in the event. */
function recorder(event: InstanceInterruptedDetail, deps: NodeInterruptionDeps, outcome: NodeOutcome): RecordFact {
  return async (action, subject, reason, after, publish) => {
    const { duplicate, entry } = await deps.ledger.append(
      { actor: deps.actor, action, subject, reason, eventId: event.eventId, after: plainJson(after) },
      { dedupeKey: `${event.eventId}#${action}` },
    );
    outcome.recorded.push({ action, duplicate });
    if (!publish) return;
    // On a duplicate, what the first delivery recorded (its drain moved the pods), not this delivery's view.
    const recorded = entry.after && typeof entry.after === 'object' && !Array.isArray(entry.after) ? (entry.after as Record<string, unknown>) : after;
    await deps.publisher.publish([{ detailType: publish.detailType, detail: { ...recorded, ...publish.extra } }]);
  };
}

/**
 * Whether the group's terminate lifecycle action may go on now. Only for a termination that came
 * as a lifecycle action, only once Fleetwarden acted (not in dry run), and only when nothing is
 * left to move: the node is drained, or no node of the cluster is the instance. Otherwise the
 * hook's heartbeat timeout stands, which gives pods still evicting their time.
 */
export function lifecycleToContinue(event: InstanceInterruptedDetail, outcome: NodeOutcome, dryRun: boolean): LifecycleAction | undefined {
  if (event.kind !== 'asg-termination' || !event.asg || dryRun || outcome.decision === 'ignore') return undefined;
  const nothingLeft = outcome.drain?.complete === true || (outcome.node === undefined && outcome.recorded.some((r) => r.action === 'node.not-found'));
  if (!nothingLeft) return undefined;
  return { group: event.asg.name, hook: event.asg.hook, token: event.asg.token, instanceId: event.instanceId, account: event.account, region: event.region };
}

export async function reactToInterruption(event: InstanceInterruptedDetail, deps: NodeInterruptionDeps): Promise<NodeOutcome> {
  const outcome = await moveOffTheNode(event, deps);
  const action = deps.lifecycle && lifecycleToContinue(event, outcome, deps.dryRun);
  if (action) {
    const result = await deps.lifecycle!.continueTermination(action);
    const why = result === 'continued' ? 'the group may terminate it now instead of waiting for the heartbeat timeout' : 'the action had already ended (completed or timed out)';
    await recorder(event, deps, outcome)('asg.lifecycle-continued', `${action.group}/${action.instanceId}`, `${action.instanceId} has no pods left to move: ${why}`, { ...action, token: undefined, result });
  }
  return outcome;
}

/** Taint, cordon and drain the instance's node, each step recorded once. */
async function moveOffTheNode(event: InstanceInterruptedDetail, deps: NodeInterruptionDeps): Promise<NodeOutcome> {
  const decision = decide(event, deps.clusters, deps.policy);
  const outcome: NodeOutcome = { eventId: event.eventId, decision: decision.act, reason: decision.reason, recorded: [] };
  if (decision.act === 'ignore') return outcome;
  const cluster = event.clusterName!;
  const nodes = await deps.connector.connect(cluster);
  const facts = { eventId: event.eventId, kind: event.kind, clusterName: cluster, instanceId: event.instanceId, account: event.account, region: event.region, environment: event.environment };
  const record = recorder(event, deps, outcome);

  const node = await nodes.findNodeByInstance(event.instanceId);
  if (!node) {
    await record('node.not-found', `${cluster}/${event.instanceId}`, `${decision.reason}; no node of ${cluster} has spec.providerID naming ${event.instanceId}: nothing to do`, facts);
    return outcome;
  }
  outcome.node = node.name;
  const subject = `${cluster}/${node.name}`;
  const nodeFacts = { ...facts, nodeName: node.name };

  if (deps.dryRun) {
    await record('node.drain-planned', subject, `dry run: would ${decision.act} (${decision.reason})`, { ...nodeFacts, action: decision.act });
    return outcome;
  }

  const taint = await nodes.taint(node.name, { key: INTERRUPTION_TAINT_KEY, value: event.eventId, effect: 'NoSchedule' });
  // Ours if we added it now or an earlier delivery of this event did; another event's taint is its own record.
  if (taint.result === 'tainted' || (taint.result === 'present' && taint.value === event.eventId)) {
    const after = { ...nodeFacts, taint: `${INTERRUPTION_TAINT_KEY}=${event.eventId}:NoSchedule` };
    await record('node.tainted', subject, `${decision.reason}: no new pods on ${node.name}`, after, { detailType: 'NodeTainted' });
  }
  if (taint.result === 'node-not-found' || decision.act === 'taint') return outcome;

  const cordon = await nodes.cordon(node.name, event.eventId);
  const cordonIsOurs = cordon.result === 'cordoned' || (cordon.result === 'already-cordoned' && cordon.by === event.eventId);
  if (cordonIsOurs) {
    await record('node.cordoned', subject, `${decision.reason}: ${node.name} cordoned`, nodeFacts, { detailType: 'NodeCordoned' });
  }
  if (cordon.result === 'node-not-found') return outcome;

  const budget = drainBudgetMs(deps.policy.drainTimeoutSeconds, deps.remainingMs);
  const report = await nodes.drain(node.name, {
    timeoutMs: budget,
    doNotDisruptAnnotations: doNotDisruptAnnotations(deps.policy.doNotDisruptAnnotation),
    onProgress: deps.onProgress,
  });
  outcome.drain = report;
  // Another event's drain of this node is recorded under that event, unless this one moved pods.
  if (!cordonIsOurs && report.evicted.length === 0) return outcome;

  const finishedAt = new Date();
  const deadline = event.deadline ? new Date(event.deadline) : undefined;
  const summary = {
    ...nodeFacts,
    evicted: report.evicted.length,
    alreadyGone: report.alreadyGone.length,
    skipped: report.skipped,
    refusals: report.refusals,
    remaining: report.remaining,
    failed: report.failed,
    startedAt: report.startedAt,
    durationMs: report.durationMs,
    deadline: event.deadline,
    secondsBeforeDeadline: deadline ? Math.round((deadline.getTime() - finishedAt.getTime()) / 1000) : undefined,
    pods: report.evicted,
  };
  const protectedPods = report.skipped.filter((s) => s.reason === 'do-not-disrupt').map((s) => s.pod);
  const kept = protectedPods.length ? `; left ${protectedPods.join(', ')} (do-not-disrupt)` : '';
  if (report.complete) {
    await record('node.drained', subject, `${decision.reason}: ${report.evicted.length} pod(s) evicted and gone in ${(report.durationMs / 1000).toFixed(1)} s${kept}`, summary, { detailType: 'NodeDrained' });
  } else {
    const action = report.timedOut ? 'node.drain-timed-out' : 'node.drain-failed';
    const why = report.timedOut
      ? `drain stopped at its ${Math.round(budget / 1000)} s cap with ${report.remaining.length} pod(s) left`
      : `${report.failed.length} eviction(s) refused for good`;
    await record(action, subject, `${decision.reason}: ${why}${kept}`, summary, { detailType: 'NodeDrainFailed', extra: { reason: why } });
  }
  return outcome;
}

/** Metrics and the log line of one handled interruption: drains completed or failed, pods evicted, drain duration. */
export function reportNodeOutcome(outcome: NodeOutcome, tools: { metrics: Metrics; logger: Logger }): void {
  tools.metrics.addMetric('NodeInterruptions', MetricUnit.Count, 1);
  const drain = outcome.drain;
  if (drain) {
    tools.metrics.addMetric(drain.complete ? 'NodesDrained' : 'NodeDrainsFailed', MetricUnit.Count, 1);
    tools.metrics.addMetric('PodsEvicted', MetricUnit.Count, drain.evicted.length);
    tools.metrics.addMetric('DrainDuration', MetricUnit.Milliseconds, drain.durationMs);
  }
  const summary = drain && { complete: drain.complete, evicted: drain.evicted.length, refusals: drain.refusals, remaining: drain.remaining };
  tools.logger.info('interruption handled for Kubernetes', { eventId: outcome.eventId, decision: outcome.decision, node: outcome.node, recorded: outcome.recorded, drain: summary });
}
