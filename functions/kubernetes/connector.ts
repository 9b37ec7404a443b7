import { DescribeClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { KubeConfig } from '@kubernetes/client-node';
import { type AwsClientOptions, awsClient } from '../shared/aws';
import { KubernetesNodesAdapter } from './adapter';
import type { ClusterConfig } from './cluster-config';
import { eksToken } from './eks-token';
import { UnknownClusterError } from './errors';
import type { KubernetesNodes } from './port';

/**
 * How a function reaches a cluster's API server. In Lambda: EKS DescribeCluster (endpoint and CA)
 * and an in-process EKS token. In local runs the harness sets `FLEETWARDEN_KUBECONFIG` (as it
 * sets FLEETWARDEN_AWS_ENDPOINT for AWS): the local control plane's kubeconfig stands in for
 * DescribeCluster + token, because moto's EKS invents its endpoint and CA and nothing local can
 * verify an EKS token. Everything after the connection is the same code.
 */
export interface ClusterConnector<T = KubernetesNodes> {
  connect(clusterName: string): Promise<T>;
}

/**
 * What a connector builds on a cluster's kubeconfig: the nodes adapter by default, or another
 * client (workload drift's). `reauthenticate` gives a fresh kubeconfig after a 401.
 */
export type ClientFactory<T> = (kubeConfig: KubeConfig, reauthenticate?: () => Promise<KubeConfig>) => T;

const nodesClient: ClientFactory<KubernetesNodes> = (kubeConfig, reauthenticate) => new KubernetesNodesAdapter(kubeConfig, reauthenticate ? { reauthenticate } : {});


/** Renew a connection (or assumed-role credentials) this long before it expires. */
const RENEW_BEFORE_MS = 2 * 60_000;

type Credentials = NonNullable<AwsClientOptions['credentials']>;

export interface EksClusterConnectorOptions<T> {
  /** The clock (ms since the epoch); Date.now by default. */
  now?: () => number;
  client?: ClientFactory<T>;
}

/**
 * A cached connection lives until its token is no longer accepted: 15 minutes after signing, or
 * sooner when the credentials that signed it expire (EKS replays the presigned URL, and STS
 * refuses a URL signed with expired credentials), whichever comes first. A 401 all the same
 * (clock skew, revoked session) drops the connection and the credentials, and the call is retried
 * once with a new token; a second 401 is `Retryable.KubernetesUnavailable`.
 */
export class EksClusterConnector<T = KubernetesNodes> implements ClusterConnector<T> {
  private readonly connections = new Map<string, { nodes: T; expiresAt: number }>();
  private readonly roles = new Map<string, { credentials: Credentials; expiresAt: number }>();
  private readonly now: () => number;
  private readonly client: ClientFactory<T>;

  constructor(
    private readonly clusters: ClusterConfig[],
    options: EksClusterConnectorOptions<T> = {},
  ) {
    this.now = options.now ?? Date.now;
    this.client = options.client ?? (nodesClient as unknown as ClientFactory<T>);
  }

  async connect(clusterName: string): Promise<T> {
    const cached = this.connections.get(clusterName);
    if (cached && cached.expiresAt - RENEW_BEFORE_MS > this.now()) return cached.nodes;
    const { kubeConfig, expiresAt } = await this.kubeConfig(clusterName);
    const nodes: T = this.client(kubeConfig, () => this.reauthenticate(clusterName, nodes));
    this.connections.set(clusterName, { nodes, expiresAt: expiresAt.getTime() });
    return nodes;
  }

  /** After a 401: forget the token and the credentials that signed it, and sign a new one. */
  private async reauthenticate(clusterName: string, nodes: T): Promise<KubeConfig> {
    this.connections.delete(clusterName);
    const accessRoleArn = this.clusters.find((c) => c.name === clusterName)?.accessRoleArn;
    if (accessRoleArn) this.roles.delete(accessRoleArn);
    const { kubeConfig, expiresAt } = await this.kubeConfig(clusterName);
    // The adapter switches to the new kubeconfig; later connects reuse it until the new expiry.
    this.connections.set(clusterName, { nodes, expiresAt: expiresAt.getTime() });
    return kubeConfig;
  }

  /**
   * Endpoint and CA from DescribeCluster (in the cluster's account when an access role is set), user: a fresh EKS token.
   * `expiresAt`: when the token stops being accepted, the earlier of its own expiry and its credentials'.
   */
  async kubeConfig(clusterName: string): Promise<{ kubeConfig: KubeConfig; expiresAt: Date }> {
    const cluster = this.clusters.find((c) => c.name === clusterName);
    if (!cluster) throw new UnknownClusterError(`cluster ${clusterName} is not in Fleetwarden's kubernetes.clusters config`);
    const { credentials, expiresAt: credentialsExpireAt } = await this.credentials(cluster);
    const eks = awsClient(EKSClient, { region: cluster.region, ...(cluster.accessRoleArn ? { credentials } : {}) });
    let described;
    try {
      described = (await eks.send(new DescribeClusterCommand({ name: cluster.name }))).cluster;
    } catch (error) {
      if ((error as Error).name === 'ResourceNotFoundException') throw new UnknownClusterError(`EKS cluster ${cluster.name} not found in ${cluster.region}`, { cause: error });
      throw error;
    }
    const server = cluster.endpoint ?? described?.endpoint;
    const caData = described?.certificateAuthority?.data;
    if (!server || !caData) throw new UnknownClusterError(`EKS cluster ${cluster.name} has no endpoint or certificate authority yet (status ${described?.status})`);
    const { token, expiresAt: tokenExpiresAt } = await eksToken({ clusterName: cluster.name, region: cluster.region, credentials, signingDate: new Date(this.now()) });
    const expiresAt = new Date(Math.min(tokenExpiresAt.getTime(), credentialsExpireAt ?? Infinity));
    const kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: cluster.name, server, caData, skipTLSVerify: false }],
      users: [{ name: 'fleetwarden', token }],
      contexts: [{ name: cluster.name, cluster: cluster.name, user: 'fleetwarden' }],
      currentContext: cluster.name,
    });
    return { kubeConfig, expiresAt };
  }

  /** The identity the token proves: the access role when configured, else the function's own. */
  private async credentials(cluster: ClusterConfig): Promise<{ credentials: Credentials; expiresAt?: number }> {
    if (!cluster.accessRoleArn) {
      const identity = await awsClient(STSClient, { region: cluster.region }).config.credentials();
      return {
        credentials: { accessKeyId: identity.accessKeyId, secretAccessKey: identity.secretAccessKey, sessionToken: identity.sessionToken },
        expiresAt: identity.expiration?.getTime(),
      };
    }
    const cached = this.roles.get(cluster.accessRoleArn);
    if (cached && cached.expiresAt - RENEW_BEFORE_MS > this.now()) return cached;
    const out = await awsClient(STSClient, { region: cluster.region }).send(
      new AssumeRoleCommand({ RoleArn: cluster.accessRoleArn, RoleSessionName: 'fleetwarden-node-drain', DurationSeconds: 900 }),
    );
    const c = out.Credentials!;
    const credentials = { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken };
    const assumed = { credentials, expiresAt: c.Expiration?.getTime() ?? this.now() + 900_000 };
    this.roles.set(cluster.accessRoleArn, assumed);
    return assumed;
  }
}

/** Local runs: every cluster is reached through one kubeconfig (its context named like the cluster, or the current one). */
export class KubeconfigClusterConnector<T = KubernetesNodes> implements ClusterConnector<T> {
  private readonly connections = new Map<string, T>();

  constructor(
    private readonly path: string,
    private readonly clusters: ClusterConfig[],
    private readonly client: ClientFactory<T> = nodesClient as unknown as ClientFactory<T>,
  ) {}

  async connect(clusterName: string): Promise<T> {
    if (!this.clusters.some((c) => c.name === clusterName)) throw new UnknownClusterError(`cluster ${clusterName} is not in Fleetwarden's kubernetes.clusters config`);
    let nodes = this.connections.get(clusterName);
    if (!nodes) {
      const kubeConfig = new KubeConfig();
      kubeConfig.loadFromFile(this.path);
      if (kubeConfig.getContextObject(clusterName)) kubeConfig.setCurrentContext(clusterName);
      nodes = this.client(kubeConfig);
      this.connections.set(clusterName, nodes);
    }
    return nodes;
  }
}

/** The connector for this process: the local kubeconfig when the harness set one, EKS otherwise. */
export function clusterConnector(clusters: ClusterConfig[]): ClusterConnector;
export function clusterConnector<T>(clusters: ClusterConfig[], client: ClientFactory<T>): ClusterConnector<T>;
export function clusterConnector<T>(clusters: ClusterConfig[], client?: ClientFactory<T>): ClusterConnector<T | KubernetesNodes> {
  const local = process.env.FLEETWARDEN_KUBECONFIG;
  const build = client ?? nodesClient;
  return local ? new KubeconfigClusterConnector<T | KubernetesNodes>(local, clusters, build) : new EksClusterConnector<T | KubernetesNodes>(clusters, { client: build });
}
