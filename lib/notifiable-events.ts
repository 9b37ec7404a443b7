import { NODE_DRIFTED } from '../functions/drift/repair';
import { DETAIL_TYPES as ENFORCEMENT_DETAIL_TYPES } from '../functions/enforcement/enforcer';
import type { NODE_EVENT_TYPES } from '../functions/kubernetes/events';
import { EVENT_SOURCES } from '../functions/shared/bus';
import { SWAP_OUTCOME_EVENTS } from '../functions/swap/steps';

/**
 * The events of Fleetwarden's bus an operator may want in a chat or incident tool
 * (`notifications.webhooks[].events`), each with the sources that publish it, whether its detail
 * carries `environment` (PROD, STAGING, LAB: the only ones `environments` can filter), and the
 * one-line summary a message says, as an EventBridge input template over `detail.*` fields that
 * the publisher always sets. The detail-types come from the publishers' own constants where
 * they export one, so a renamed event fails to compile here rather than going silent.
 */
export interface NotifiableEvent {
  sources: readonly string[];
  /** The detail carries `environment`, so a webhook's `environments` filters it. */
  environment: boolean;
  /** `<name>` placeholders are `detail.<name>`; `<source>` and `<detail-type>` are the envelope's. */
  summary: string;
}

const flagged = (verb: string): NotifiableEvent => ({
  sources: [EVENT_SOURCES.enforcement],
  environment: true,
  summary: `Instance <instanceId> ${verb} in <environment> account <account> (<region>): <reason>`,
});

const enforcement = (action: 'instance.flagged' | 'instance.stopped' | 'instance.terminated'): string => {
  const detailType = ENFORCEMENT_DETAIL_TYPES[action];
  if (!detailType) throw new Error(`the enforcer publishes nothing for ${action}`);
  return detailType;
};

const NODE_DRAIN_FAILED: (typeof NODE_EVENT_TYPES)[number] = 'NodeDrainFailed';

/**
 * Workload drift events (functions/workloads/drift.ts driftEvents, which exports no constant for
 * them). Their summaries use only fields every one of them carries as a string: `namespace` is
 * null for a cluster-scoped object and `declaredCommit` for an undeclared one, so neither is
 * placed in a message; the reason names the object with its namespace.
 */
const workload = (summary: string): NotifiableEvent => ({ sources: [EVENT_SOURCES.workloads], environment: false, summary });

export const NOTIFIABLE_EVENTS: Readonly<Record<string, NotifiableEvent>> = {
  PoolQuarantined: {
    sources: [EVENT_SOURCES.interruption],
    environment: false,
    summary: 'Pool <pool> is quarantined until <until> (risk score <riskScore>): no new Spot capacity is placed there',
  },
  [SWAP_OUTCOME_EVENTS['rolled-back']]: {
    sources: [EVENT_SOURCES.swap],
    environment: false,
    summary: 'Swap <executionId> of group <group> was rolled back: <reason>',
  },
  [SWAP_OUTCOME_EVENTS.failed]: {
    sources: [EVENT_SOURCES.swap],
    environment: false,
    summary: 'Swap <executionId> could not be planned, nothing was changed: <reason>',
  },
  SwapBatchHalted: {
    sources: [EVENT_SOURCES.swap],
    environment: false,
    summary: 'Batch <batchId> halted: <reason>',
  },
  [enforcement('instance.flagged')]: flagged('flagged as unauthorized'),
  [enforcement('instance.stopped')]: flagged('stopped'),
  [enforcement('instance.terminated')]: flagged('terminated'),
  WasteReport: {
    sources: [EVENT_SOURCES.waste],
    environment: false,
    summary: 'Waste scan <scanId>: <findings> findings, <totalMonthlyUsd> USD a month; <marked> marked, <plannedCleanups> cleanups planned',
  },
  WasteCleaned: {
    sources: [EVENT_SOURCES.waste],
    environment: false,
    summary: 'Waste cleanup <outcome> <kind> <resourceId> in account <account> (<region>), <monthlyUsd> USD a month',
  },
  [NODE_DRIFTED]: {
    sources: [EVENT_SOURCES.drift],
    environment: false,
    summary: 'Instance <instanceId> of group <group> drifted from its launch template: <reason>',
  },
  [NODE_DRAIN_FAILED]: {
    sources: [EVENT_SOURCES.kubernetes],
    environment: true,
    summary: 'Node <nodeName> of cluster <clusterName> (<environment> account <account>) could not be drained: <reason>',
  },
  WorkloadDriftDetected: workload('Workload drift in cluster <cluster> (action: <action>): <reason>'),
  WorkloadDriftResolved: workload('Workload <kind> <name> in cluster <cluster>, <driftType> drift since <openedAt>, is <reason>'),
  WorkloadRollbackFailed: workload('Workload rollback failed in cluster <cluster>: <reason>'),
  CircuitBreakerTripped: {
    sources: [EVENT_SOURCES.enforcement, EVENT_SOURCES.waste],
    environment: false,
    summary: 'Circuit breaker tripped (<source>): <reason>. Nothing was acted on',
  },
};

export const NOTIFIABLE_EVENT_TYPES = Object.keys(NOTIFIABLE_EVENTS) as [string, ...string[]];

/** The entry of a detail-type the config already checked is one of NOTIFIABLE_EVENT_TYPES. */
export function notifiableEvent(detailType: string): NotifiableEvent {
  const event = NOTIFIABLE_EVENTS[detailType];
  if (!event) throw new Error(`${detailType} is not one of the notifiable events (${NOTIFIABLE_EVENT_TYPES.join(', ')})`);
  return event;
}
