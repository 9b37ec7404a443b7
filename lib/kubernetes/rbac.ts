/**
 * The Kubernetes permissions Fleetwarden's cluster-facing functions need, as data: the manifest
 * (manifests/fleetwarden-rbac.yaml, checked against this by a test), the EKS access entries in
 * CDK and the RBAC test against a real API server all read it from here.
 *
 * - nodes get/list/patch: find the node by providerID, taint, cordon, uncordon, wait for Ready;
 * - pods list: what runs on a node, and whether evicted pods are gone;
 * - pods/eviction create: drain through the Eviction API, which enforces PodDisruptionBudgets;
 * - poddisruptionbudgets list: which budget holds a drain (swap planning);
 * - deployments get/list/patch: drift rollback re-applies a declared image or spec.
 * Nothing else: no deletes, no secrets, no pods create/delete (evictions only).
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
  { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'list', 'patch'] },
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
# What Fleetwarden's functions may do in a cluster: taint, cordon and drain nodes (evictions only),
# and patch deployments for drift rollback. The EKS access entry that Fleetwarden's CDK stack
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
