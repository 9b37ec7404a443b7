import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { loadAllYaml } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { CLUSTER_ROLE_NAME, CLUSTER_ROLE_RULES, KUBERNETES_GROUP, allowedPermissions, rbacManifest } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';

const manifestFile = path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml');

describe('RBAC manifest', () => {
  it('is exactly what lib/kubernetes/rbac.ts renders (regenerate: npx tsx scripts/k8s/rbac-manifest.ts)', () => {
    expect(readFileSync(manifestFile, 'utf8')).toBe(rbacManifest());
  });

  it('binds a ClusterRole with the rules as data to the group the EKS access entries use', () => {
    const [role, binding] = loadAllYaml(readFileSync(manifestFile, 'utf8')) as any[];
    expect(role).toMatchObject({ kind: 'ClusterRole', metadata: { name: CLUSTER_ROLE_NAME } });
    expect(role.rules).toEqual(CLUSTER_ROLE_RULES);
    expect(binding).toMatchObject({ kind: 'ClusterRoleBinding', roleRef: { kind: 'ClusterRole', name: CLUSTER_ROLE_NAME }, subjects: [{ kind: 'Group', name: KUBERNETES_GROUP }] });
  });

  it('grants no delete, no secrets, no wildcard, and pods only to list and evict', () => {
    const allowed = [...allowedPermissions()];
    expect(allowed.filter((p) => /:(delete|deletecollection|\*)$/.test(p) || p.includes('secrets') || p.includes('*'))).toEqual([]);
    expect(allowed.filter((p) => p.startsWith('/pods'))).toEqual(['/pods:list', '/pods/eviction:create']);
  });
});
