import { AppsV1Api, AuthorizationV1Api, CoreV1Api, KubeConfig, PatchStrategy, PolicyV1Api, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { statusOf } from '../../functions/kubernetes/errors';
import { CLUSTER_ROLE_RULES, allowedPermissions } from '../../lib/kubernetes/rbac';
import { Workloads } from '../../scripts/k8s/workloads';

/**
 * manifests/fleetwarden-rbac.yaml, applied to the run's real API server by the global setup,
 * judged by that server for Fleetwarden's identity: a user in the group the manifest binds,
 * which is what an EKS access entry makes of the function's IAM role.
 */
let k8s: Workloads;
let fleetwarden: KubeConfig;

beforeAll(() => {
  k8s = new Workloads(inject('kubeconfig'));
  fleetwarden = new KubeConfig();
  fleetwarden.loadFromFile(inject('fleetwardenKubeconfig'));
});

afterAll(async () => {
  await k8s.cleanup();
});

const RESOURCES: [group: string, resource: string][] = [
  ['', 'nodes'],
  ['', 'nodes/status'],
  ['', 'nodes/proxy'],
  ['', 'pods'],
  ['', 'pods/eviction'],
  ['', 'pods/exec'],
  ['', 'pods/status'],
  ['', 'secrets'],
  ['', 'configmaps'],
  ['', 'serviceaccounts'],
  ['', 'serviceaccounts/token'],
  ['', 'namespaces'],
  ['', 'services'],
  ['apps', 'deployments'],
  ['apps', 'deployments/scale'],
  ['apps', 'daemonsets'],
  ['apps', 'statefulsets'],
  ['apps', 'replicasets'],
  ['policy', 'poddisruptionbudgets'],
  ['batch', 'jobs'],
  ['rbac.authorization.k8s.io', 'clusterroles'],
  ['rbac.authorization.k8s.io', 'clusterrolebindings'],
];
const VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection', 'escalate', 'bind', 'impersonate'];

describe('Fleetwarden ClusterRole (real API server)', () => {
  it('allows exactly the rules in lib/kubernetes/rbac.ts, and nothing else among the resources that matter', async () => {
    const authz = fleetwarden.makeApiClient(AuthorizationV1Api);
    const checks = RESOURCES.flatMap(([group, full]) => VERBS.map((verb) => ({ group, full, verb })));
    const answers = await Promise.all(
      checks.map(async ({ group, full, verb }) => {
        const [resource, subresource] = full.split('/');
        const review = await authz.createSelfSubjectAccessReview({
          body: { spec: { resourceAttributes: { group, resource, subresource, verb, namespace: resource === 'nodes' || resource === 'namespaces' || group.startsWith('rbac') ? undefined : 'default' } } },
        });
        return review.status?.allowed ? `${group}/${full}:${verb}` : undefined;
      }),
    );
    const allowed = answers.filter((a): a is string => !!a).sort();
    expect(allowed).toEqual([...allowedPermissions(CLUSTER_ROLE_RULES)].sort());
  });

  it('lets the identity do its job for real (nodes patch, evictions, budgets): 200 or 404, never 403', async () => {
    const core = fleetwarden.makeApiClient(CoreV1Api);
    const name = await k8s.node('i-0aaaaaaaaaaaaaaa1', { pool: Workloads.unique('pool') });
    const ns = await k8s.namespace('rbac');
    await core.patchNode({ name, body: { metadata: { labels: { 'fleetwarden.io/checked': 'true' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    expect((await core.listNode()).items.some((n) => n.metadata?.name === name)).toBe(true);
    expect((await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${name}` })).items).toEqual([]);
    await expect(core.createNamespacedPodEviction({ name: 'absent', namespace: ns, body: { metadata: { name: 'absent', namespace: ns } } })).rejects.toMatchObject({ code: 404 });
    expect((await fleetwarden.makeApiClient(PolicyV1Api).listPodDisruptionBudgetForAllNamespaces()).items).toBeInstanceOf(Array);
  });

  it('refuses (403) what it must never do: delete a node, read secrets, delete or create pods directly, touch workloads', async () => {
    const core = fleetwarden.makeApiClient(CoreV1Api);
    const name = await k8s.node('i-0aaaaaaaaaaaaaaa2', { pool: Workloads.unique('pool') });
    const ns = await k8s.namespace('rbac');
    await k8s.pod(ns, 'victim', { node: name });
    const refused = async (call: () => Promise<unknown>) => {
      try {
        await call();
        return 'allowed';
      } catch (error) {
        return statusOf(error);
      }
    };
    expect(await refused(() => core.deleteNode({ name }))).toBe(403);
    expect(await refused(() => core.listSecretForAllNamespaces())).toBe(403);
    expect(await refused(() => core.readNamespacedSecret({ name: 'any', namespace: ns }))).toBe(403);
    expect(await refused(() => core.deleteNamespacedPod({ name: 'victim', namespace: ns }))).toBe(403);
    expect(await refused(() => core.createNamespacedPod({ namespace: ns, body: { metadata: { name: 'intruder' }, spec: { containers: [{ name: 'c', image: 'x' }] } } }))).toBe(403);
    expect(await refused(() => core.patchNamespacedPod({ name: 'victim', namespace: ns, body: { metadata: { labels: { x: 'y' } } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))).toBe(403);
    // Workloads are the workload drift identity's (its own group and RBAC), not the node operators'.
    const apps = fleetwarden.makeApiClient(AppsV1Api);
    expect(await refused(() => apps.patchNamespacedDeployment({ name: 'absent', namespace: ns, body: { spec: { replicas: 1 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch)))).toBe(403);
    expect((await k8s.core.readNode({ name })).metadata?.name).toBe(name);
  });
});
