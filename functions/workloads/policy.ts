import * as z from 'zod';

/** What a workload drift is: undeclared but running, declared but absent, or declared and different. */
export const DRIFT_TYPES = ['unauthorized', 'missing', 'image', 'config'] as const;
export type DriftType = (typeof DRIFT_TYPES)[number];

export const DRIFT_ACTIONS = ['alert', 'rollback', 'ignore'] as const;
export type DriftAction = (typeof DRIFT_ACTIONS)[number];

/** Never acted on, whatever the rules say; their drift is at most alerted. */
export const DEFAULT_PROTECTED_NAMESPACES = ['kube-system', 'kube-public', 'kube-node-lease'] as const;

/**
 * One rule: which drifts it matches (every given criterion must hold; an absent one matches all),
 * what to do, and after how long. The first matching rule decides; no match is `alert`.
 * @example { "match": { "namespaces": ["web"], "kinds": ["Deployment"], "names": ["storefront-*"], "types": ["image"] }, "action": "rollback", "graceMinutes": 0 }
 */
export const DriftRuleSchema = z.strictObject({
  match: z
    .strictObject({
      clusters: z.array(z.string().min(1)).min(1).optional(),
      namespaces: z.array(z.string().min(1)).min(1).optional(),
      kinds: z.array(z.string().min(1)).min(1).optional(),
      /** Object names; `*` matches any run of characters. */
      names: z.array(z.string().min(1)).min(1).optional(),
      /** Labels the object (the live one, or the declared one when missing) must carry, with these values. */
      labels: z.record(z.string(), z.string()).optional(),
      types: z.array(z.enum(DRIFT_TYPES)).min(1).optional(),
    })
    .prefault({}),
  action: z.enum(DRIFT_ACTIONS),
  /** How long a drift stays before the action is taken (an edit may be reverted by its author first); fractions are seconds. */
  graceMinutes: z.number().min(0).max(7 * 24 * 60).default(0),
});
export type DriftRule = z.infer<typeof DriftRuleSchema>;

/** `policies.drift.workloads`: the workload drift rules and limits. */
export const WorkloadDriftPolicySchema = z.strictObject({
  rules: z.array(DriftRuleSchema).max(100).default([]),
  /** Added to kube-system, kube-public and kube-node-lease. */
  protectedNamespaces: z.array(z.string().min(1)).default([]),
  /** Namespaces watched for undeclared workloads besides those the desired state declares objects in. */
  watchNamespaces: z.array(z.string().min(1)).default([]),
  /** A rollback that has not settled (observed generation, available replicas) in this long alerts and stops. */
  rolloutTimeoutSeconds: z.number().int().min(10).max(3600).default(300),
});
export type WorkloadDriftPolicy = z.infer<typeof WorkloadDriftPolicySchema>;

export interface DriftSubject {
  cluster: string;
  namespace: string | null;
  kind: string;
  name: string;
  labels: Record<string, string>;
  type: DriftType;
}

export interface DriftDecision {
  action: DriftAction;
  graceMinutes: number;
  /** Why, for the ledger: which rule matched, or the default; and what overrode it. */
  because: string;
}

const glob = (pattern: string) => new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);

const matches = (rule: DriftRule, s: DriftSubject): boolean => {
  const m = rule.match;
  if (m.clusters && !m.clusters.includes(s.cluster)) return false;
  if (m.namespaces && !m.namespaces.includes(s.namespace ?? '')) return false;
  if (m.kinds && !m.kinds.includes(s.kind)) return false;
  if (m.names && !m.names.some((n) => glob(n).test(s.name))) return false;
  if (m.types && !m.types.includes(s.type)) return false;
  if (m.labels && !Object.entries(m.labels).every(([k, v]) => s.labels[k] === v)) return false;
  return true;
};

export const protectedNamespaces = (policy: WorkloadDriftPolicy): Set<string> => new Set([...DEFAULT_PROTECTED_NAMESPACES, ...policy.protectedNamespaces]);

/**
 * What to do about a drift (pure): the first matching rule's action, `alert` when none matches.
 * Acting is refused, and the drift alerted instead, in a protected namespace and when Fleetwarden
 * runs dry (`dryRun` wins over every rule).
 */
export function decideDriftAction(policy: WorkloadDriftPolicy, subject: DriftSubject, dryRun: boolean): DriftDecision {
  const index = policy.rules.findIndex((r) => matches(r, subject));
  const rule = policy.rules[index];
  if (!rule) return { action: 'alert', graceMinutes: 0, because: 'no rule matches: the default is alert' };
  const because = `rule ${index + 1} (${rule.action}${rule.graceMinutes ? ` after ${rule.graceMinutes} min` : ''})`;
  if (rule.action !== 'rollback') return { action: rule.action, graceMinutes: rule.graceMinutes, because };
  if (subject.namespace && protectedNamespaces(policy).has(subject.namespace)) return { action: 'alert', graceMinutes: 0, because: `${because}, but ${subject.namespace} is protected: alert only` };
  if (dryRun) return { action: 'alert', graceMinutes: rule.graceMinutes, because: `${because}, but dryRun is on: alert only` };
  return { action: 'rollback', graceMinutes: rule.graceMinutes, because };
}
