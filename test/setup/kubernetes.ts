import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { TestProject } from 'vitest/node';
import { PROJECT_ROOT } from '../../lib/paths';
import { applyRbac, clusterDown, clusterUp, clusterUser } from '../../scripts/k8s/control-plane';
import { CLUSTER_ROLE_NAME, KUBERNETES_GROUP, WORKLOADS_GROUP } from '../../lib/kubernetes/rbac';

declare module 'vitest' {
  export interface ProvidedContext {
    /** cluster-admin of the run's control plane (client certificate, system:masters). */
    kubeconfig: string;
    /** Fleetwarden's own identity: user `fleetwarden` in the group the RBAC manifest binds. */
    fleetwardenKubeconfig: string;
    /** The workload drift functions' identity: user `fleetwarden-workloads` in the group the workload RBAC binds (each test applies that RBAC, generated from its desired state). */
    workloadsKubeconfig: string;
  }
}

/**
 * One real Kubernetes control plane for the whole run (etcd, kube-apiserver,
 * kube-controller-manager with the disruption controller, kube-scheduler, KWOK), started by
 * scripts/k8s/cluster.sh from binaries cached outside the repository (built from the Go module
 * proxy on first use). If it cannot be built or started, the run fails here with the reason:
 * no Kubernetes test is ever skipped for want of it. Teardown stops it, passed or failed.
 */
export default async function setup(project: TestProject) {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-k8s-test-'));
  // Never leave the control plane behind, whatever way this process ends.
  const onExit = () => clusterDown(dir, { sync: true });
  process.once('exit', onExit);
  try {
    await clusterUp(dir);
    const fleetwarden = await clusterUser(dir, 'fleetwarden', KUBERNETES_GROUP);
    const workloads = await clusterUser(dir, 'fleetwarden-workloads', WORKLOADS_GROUP);
    await applyRbac(path.join(dir, 'kubeconfig'), path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml'));
    project.provide('kubeconfig', path.join(dir, 'kubeconfig'));
    project.provide('fleetwardenKubeconfig', fleetwarden);
    project.provide('workloadsKubeconfig', workloads);
  } catch (error) {
    await clusterDown(dir);
    throw new Error(`the Kubernetes control plane for the tests could not be started (ClusterRole ${CLUSTER_ROLE_NAME}): ${(error as Error).message}`, { cause: error });
  }
  return async () => {
    process.removeListener('exit', onExit);
    await clusterDown(dir);
  };
}
