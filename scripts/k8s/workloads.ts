/**
 * Real-shaped Kubernetes objects on the local control plane, as the cluster-admin: KWOK nodes
 * named after EC2 instances, Deployments, DaemonSets, PodDisruptionBudgets, mirror pods. Shared
 * by the tests, the demo and the bench; every object lives in a namespace or node this helper
 * created, so concurrent users never see each other's.
 */
import { randomBytes } from 'node:crypto';
import { AppsV1Api, CoreV1Api, KubeConfig, PatchStrategy, PolicyV1Api, type V1Pod, setHeaderOptions } from '@kubernetes/client-node';

export const POOL_LABEL = 'fleetwarden.io/test-pool';

export class Workloads {
  readonly kubeConfig = new KubeConfig();
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly policy: PolicyV1Api;
  private readonly namespaces: string[] = [];
  private readonly nodes: string[] = [];

  constructor(adminKubeconfig: string) {
    this.kubeConfig.loadFromFile(adminKubeconfig);
    this.core = this.kubeConfig.makeApiClient(CoreV1Api);
    this.apps = this.kubeConfig.makeApiClient(AppsV1Api);
    this.policy = this.kubeConfig.makeApiClient(PolicyV1Api);
  }

  static unique(prefix: string): string {
    return `${prefix}-${randomBytes(3).toString('hex')}`;
  }

  async namespace(prefix = 'fw'): Promise<string> {
    const name = Workloads.unique(prefix);
    await this.core.createNamespace({ body: { metadata: { name } } });
    this.namespaces.push(name);
    return name;
  }

  /** A KWOK-managed node for an EC2 instance (providerID as on EKS), in a scheduling pool of its own. */
  async node(instanceId: string, options: { pool: string; zone?: string; name?: string } ): Promise<string> {
    const name = options.name ?? `ip-${randomBytes(4).toString('hex')}.ec2.internal`;
    await this.core.createNode({
      body: {
        metadata: {
          name,
          annotations: { 'kwok.x-k8s.io/node': 'fake' },
          labels: { 'kubernetes.io/hostname': name, 'node.kubernetes.io/instance-type': 'm5.large', 'topology.kubernetes.io/zone': options.zone ?? 'us-east-1a', [POOL_LABEL]: options.pool, type: 'kwok' },
        },
        spec: { providerID: `aws:///${options.zone ?? 'us-east-1a'}/${instanceId}` },
      },
    });
    this.nodes.push(name);
    // Ready, and the node lifecycle controller has lifted its not-ready taint (it races KWOK at creation).
    await this.waitFor(`node ${name} Ready`, async () => {
      const node = await this.core.readNode({ name });
      const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
      return ready && !(node.spec?.taints ?? []).some((t) => t.key.startsWith('node.kubernetes.io/'));
    });
    return name;
  }

  async deployment(namespace: string, name: string, options: { replicas: number; pool: string; podAnnotations?: Record<string, string> }): Promise<void> {
    await this.apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name, namespace },
        spec: {
          replicas: options.replicas,
          selector: { matchLabels: { app: name } },
          template: {
            metadata: { labels: { app: name }, annotations: options.podAnnotations },
            spec: { nodeSelector: { [POOL_LABEL]: options.pool }, containers: [{ name, image: `registry.example.com/${name}:1.0` }], terminationGracePeriodSeconds: 30 },
          },
        },
      },
    });
  }

  async daemonSet(namespace: string, name: string, options: { pool: string }): Promise<void> {
    await this.apps.createNamespacedDaemonSet({
      namespace,
      body: {
        metadata: { name, namespace },
        spec: {
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { nodeSelector: { [POOL_LABEL]: options.pool }, containers: [{ name, image: `registry.example.com/${name}:1.0` }] } },
        },
      },
    });
  }

  async pdb(namespace: string, name: string, options: { minAvailable: number; app: string }): Promise<void> {
    await this.policy.createNamespacedPodDisruptionBudget({
      namespace,
      body: { metadata: { name, namespace }, spec: { minAvailable: options.minAvailable, selector: { matchLabels: { app: options.app } } } },
    });
  }

  async setMinAvailable(namespace: string, name: string, minAvailable: number): Promise<void> {
    await this.policy.patchNamespacedPodDisruptionBudget({ namespace, name, body: { spec: { minAvailable } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
  }

  /** A pod bound straight to a node, e.g. a mirror (static) pod or an annotated one. */
  async pod(namespace: string, name: string, options: { node: string; annotations?: Record<string, string>; labels?: Record<string, string> }): Promise<void> {
    await this.core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name, namespace, annotations: options.annotations, labels: options.labels },
        spec: { nodeName: options.node, automountServiceAccountToken: false, containers: [{ name: 'main', image: `registry.example.com/${name}:1.0` }] },
      },
    });
  }

  async podsOn(node: string): Promise<V1Pod[]> {
    return (await this.core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node}` })).items;
  }

  async readyPods(namespace: string, app: string): Promise<V1Pod[]> {
    const pods = (await this.core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items;
    return pods.filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  }

  async waitForReady(namespace: string, app: string, count: number): Promise<void> {
    await this.waitFor(`${count} ready ${app} pods in ${namespace}`, async () => (await this.readyPods(namespace, app)).length === count);
  }

  async waitForBudget(namespace: string, name: string, disruptionsAllowed: number): Promise<void> {
    await this.waitFor(`PDB ${namespace}/${name} allows ${disruptionsAllowed}`, async () => {
      const pdb = await this.policy.readNamespacedPodDisruptionBudget({ namespace, name });
      return pdb.status?.disruptionsAllowed === disruptionsAllowed && pdb.status?.observedGeneration === pdb.metadata?.generation;
    });
  }

  async waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!(await check())) {
      if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Deletes what this helper created (namespaces asynchronously, nodes at once). */
  async cleanup(): Promise<void> {
    for (const name of this.nodes.splice(0)) await this.core.deleteNode({ name }).catch(() => undefined);
    for (const name of this.namespaces.splice(0)) await this.core.deleteNamespace({ name }).catch(() => undefined);
  }
}
