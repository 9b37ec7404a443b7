/**
 * The Kubernetes permissions Fleetwarden's cluster-facing functions need, as data: the manifest
 * (manifests/fleetwarden-rbac.yaml, checked against this by a test), the EKS access entries in
 * CDK and the RBAC test against a real API server all read it from here.
 *
 * - nodes get/list/patch: find the node by providerID, taint, cordon, uncordon, wait for Ready;
 * - pods list: what runs on a node, and whether evicted pods are gone;
 * - pods/eviction create: drain through the Eviction API, which enforces PodDisruptionBudgets;
 * - poddisruptionbudgets list: which budget holds a drain (swap planning).
 * Nothing else: no deletes, no secrets, no pods create/delete (evictions only), no workloads
 * (workload drift has its own identity and roles, `workloadRbac` below).
 */
export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

export const CLUSTER_ROLE_NAME = 'fleetwarden-node-operator';
/** The Kubernetes group an EKS access entry puts Fleetwarden's role in; the binding names it. */
export const KUBERNETES_GROUP = 'fleetwarden-node-operators';

export const CLUSTER_ROLE_RULES: readonly PolicyRule[] = [
  { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'patch'] },
  { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  { apiGroups: ['policy'], resources: ['poddisruptionbudgets'], verbs: ['list'] },
];

/** Every (group, resource, verb) the rules allow, e.g. `/nodes:patch`, `apps/deployments:get`. */
export function allowedPermissions(rules: readonly PolicyRule[] = CLUSTER_ROLE_RULES): Set<string> {
  const allowed = new Set<string>();
  for (const rule of rules) for (const group of rule.apiGroups) for (const resource of rule.resources) for (const verb of rule.verbs) allowed.add(`${group}/${resource}:${verb}`);
  return allowed;
}

const list = (items: readonly string[]) => `[${items.map((i) => JSON.stringify(i)).join(', ')}]`;

/** The manifest an operator applies to each cluster (`kubectl apply -f manifests/fleetwarden-rbac.yaml`). */
export function rbacManifest(): string {
  const rules = CLUSTER_ROLE_RULES.map((r) => `  - apiGroups: ${list(r.apiGroups)}\n    resources: ${list(r.resources)}\n    verbs: ${list(r.verbs)}`).join('\n');
  return `# Generated from lib/kubernetes/rbac.ts (npx tsx scripts/k8s/rbac-manifest.ts); a test fails when they differ.
# What Fleetwarden's node functions may do in a cluster: taint, cordon and drain nodes (evictions
# only). Workload drift has its own roles, generated from the desired state. The EKS access entry that Fleetwarden's CDK stack
# creates puts the function role in the Kubernetes group bound here.
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: ${CLUSTER_ROLE_NAME}
  labels: {app.kubernetes.io/name: fleetwarden}
rules:
${rules}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ${CLUSTER_ROLE_NAME}
  labels: {app.kubernetes.io/name: fleetwarden}
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: ${CLUSTER_ROLE_NAME}
subjects:
  - apiGroup: rbac.authorization.k8s.io
    kind: Group
    name: ${KUBERNETES_GROUP}
`;
}

// ---------------------------------------------------------------------------- workload drift

export const WORKLOAD_READER_ROLE = 'fleetwarden-workload-reader';
export const WORKLOAD_WRITER_ROLE = 'fleetwarden-workload-writer';
/** The Kubernetes group of the workload drift functions' identity (their EKS access entries). */
export const WORKLOADS_GROUP = 'fleetwarden-workload-operators';

/** What a declared kind is called in RBAC: its API group and its resource (plural, lower case). */
export function resourceOf(apiVersion: string, kind: string): { group: string; resource: string } {
  const group = apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '';
  const lower = kind.toLowerCase();
  // Endpoints is already plural.
  const resource = lower === 'endpoints' ? lower : /(s|x|z|ch|sh)$/.test(lower) ? `${lower}es` : /[^aeiou]y$/.test(lower) ? `${lower.slice(0, -1)}ies` : `${lower}s`;
  return { group, resource };
}

/** The workload kinds drift hunts undeclared objects of (and may remove), and the HPAs it reads. */
const WATCHED: { apiVersion: string; kind: string }[] = [
  { apiVersion: 'apps/v1', kind: 'Deployment' },
  { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  { apiVersion: 'apps/v1', kind: 'DaemonSet' },
];
const HPA = { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler' };

const rulesFor = (kinds: { apiVersion: string; kind: string }[], verbs: string[]): PolicyRule[] => {
  const byGroup = new Map<string, Set<string>>();
  for (const k of kinds) {
    const { group, resource } = resourceOf(k.apiVersion, k.kind);
    byGroup.set(group, (byGroup.get(group) ?? new Set()).add(resource));
  }
  return [...byGroup.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([group, resources]) => ({ apiGroups: [group], resources: [...resources].sort(), verbs }));
};

export interface WorkloadRbac {
  /** Read (get, list) of every watched and declared kind, cluster-wide: one list per kind a cycle. */
  reader: PolicyRule[];
  /** Per namespace with declared objects (never a protected one): apply what is declared there, remove undeclared workloads. */
  writers: { namespace: string; rules: PolicyRule[] }[];
}

/**
 * The permissions workload drift needs in one cluster, from what is declared there: read of the
 * watched kinds; write (server-side apply: get, create, patch) of the declared kinds only in the
 * namespaces declared objects live in, and delete of workloads there and in the configured
 * watchNamespaces (an undeclared workload past its grace); nothing in a protected namespace;
 * never secrets (a declared Secret is refused at synth).
 */
export function workloadRbac(declared: readonly { apiVersion: string; kind: string; namespace: string | null }[], protectedNamespaces: ReadonlySet<string>, watchNamespaces: readonly string[] = []): WorkloadRbac {
  const reader = rulesFor([...WATCHED, HPA, ...declared], ['get', 'list']);
  const namespaces = [...new Set([...declared.flatMap((o) => (o.namespace ? [o.namespace] : [])), ...watchNamespaces])].filter((ns) => !protectedNamespaces.has(ns)).sort();
  const writers = namespaces.map((namespace) => {
    const here = declared.filter((o) => o.namespace === namespace);
    // A watched namespace without declared objects: only the removal of undeclared workloads.
    return { namespace, rules: [...(here.length ? rulesFor(here, ['get', 'create', 'patch']) : []), ...rulesFor(WATCHED, ['delete'])] };
  });
  return { reader, writers };
}

const rulesYaml = (rules: readonly PolicyRule[]) => rules.map((r) => `  - apiGroups: ${list(r.apiGroups)}\n    resources: ${list(r.resources)}\n    verbs: ${list(r.verbs)}`).join('\n');

/** The workload drift RBAC of one cluster as a manifest (`kubectl apply -f`), written beside the desired state at synth. */
export function workloadRbacManifest(cluster: string, rbac: WorkloadRbac): string {
  const labels = '  labels: {app.kubernetes.io/name: fleetwarden}';
  const subject = `subjects:\n  - apiGroup: rbac.authorization.k8s.io\n    kind: Group\n    name: ${WORKLOADS_GROUP}`;
  const docs = [
    `# Workload drift's permissions in cluster ${cluster}, generated by cdk synth from the desired state.\n# Apply after each change to what is declared: kubectl apply -f <this file>\napiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ${WORKLOAD_READER_ROLE}\n${labels}\nrules:\n${rulesYaml(rbac.reader)}`,
    `apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: ${WORKLOAD_READER_ROLE}\n${labels}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: ClusterRole\n  name: ${WORKLOAD_READER_ROLE}\n${subject}`,
    ...rbac.writers.flatMap((w) => [
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: ${WORKLOAD_WRITER_ROLE}\n  namespace: ${w.namespace}\n${labels}\nrules:\n${rulesYaml(w.rules)}`,
      `apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: ${WORKLOAD_WRITER_ROLE}\n  namespace: ${w.namespace}\n${labels}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: ${WORKLOAD_WRITER_ROLE}\n${subject}`,
    ]),
  ];
  return `${docs.join('\n---\n')}\n`;
}
