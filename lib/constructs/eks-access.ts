import { Stack, Token } from 'aws-cdk-lib';
import * as eks from 'aws-cdk-lib/aws-eks';
import type * as iam from 'aws-cdk-lib/aws-iam';
import type { Construct } from 'constructs';
import type { ClusterConfig } from '../../functions/kubernetes/cluster-config';
import { KUBERNETES_GROUP } from '../kubernetes/rbac';
import { allow } from './fleet-function';

export interface ClusterAccessOptions {
  /**
   * Create no entry for a cluster whose identity is its `accessRoleArn`: one entry per principal
   * and cluster is all EKS accepts, so only one construct (KubernetesNodes) may create it.
   */
  skipAccessRoles?: boolean;
  /** The Kubernetes groups the entry puts the identity in (default: the node operators'). */
  groups?: string[];
  /** The groups of an entry for a cluster's accessRoleArn (default: `groups`): every capability reaching the cluster through that role needs its group there. */
  accessRoleGroups?: string[];
}

/**
 * What a function that talks to the configured clusters needs, in one place: eks:DescribeCluster
 * on each cluster, sts:AssumeRole on the clusters' access roles, and an EKS access entry
 * (`AWS::EKS::AccessEntry`, STANDARD) putting its identity in the Kubernetes group that
 * manifests/fleetwarden-rbac.yaml binds to Fleetwarden's ClusterRole, for each cluster of the
 * stack's own account and region (an entry is a resource of the cluster's account and region;
 * for the others, create the same entry there, for the accessRoleArn).
 */
export function grantClusterAccess(scope: Construct, role: iam.IRole, clusters: readonly ClusterConfig[], options: ClusterAccessOptions = {}): eks.CfnAccessEntry[] {
  const stack = Stack.of(scope);
  if (!clusters.length) return [];
  allow(
    role,
    ['eks:DescribeCluster'],
    clusters.map((c) => `arn:${stack.partition}:eks:${c.region}:${c.accountId ?? stack.account}:cluster/${c.name}`),
  );
  const accessRoles = [...new Set(clusters.flatMap((c) => (c.accessRoleArn ? [c.accessRoleArn] : [])))];
  if (accessRoles.length) allow(role, ['sts:AssumeRole'], accessRoles);
  const entries: eks.CfnAccessEntry[] = [];
  for (const cluster of clusters) {
    const sameAccount = !cluster.accountId || (!Token.isUnresolved(stack.account) && cluster.accountId === stack.account);
    if (!sameAccount || cluster.region !== stack.region) continue;
    if (cluster.accessRoleArn && options.skipAccessRoles) continue;
    entries.push(
      new eks.CfnAccessEntry(scope, `AccessEntry${cluster.name.replace(/[^A-Za-z0-9]/g, '')}`, {
        clusterName: cluster.name,
        principalArn: cluster.accessRoleArn ?? role.roleArn,
        type: 'STANDARD',
        // A group bound to Fleetwarden's ClusterRole, not an EKS access policy: every access
        // policy is broader than drain + rollback need (and none but cluster-admin patches nodes).
        kubernetesGroups: (cluster.accessRoleArn ? options.accessRoleGroups : undefined) ?? options.groups ?? [KUBERNETES_GROUP],
      }),
    );
  }
  return entries;
}
