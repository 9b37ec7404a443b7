import { randomBytes } from 'node:crypto';
import { CreateClusterCommand, EKSClient } from '@aws-sdk/client-eks';
import { describe, expect, it, vi } from 'vitest';
import { EksClusterConnector } from '../../functions/kubernetes/connector';
import { EKS_TOKEN_PREFIX } from '../../functions/kubernetes/eks-token';
import { awsClient } from '../../functions/shared/aws';
import { AccountSessions } from '../../functions/shared/accounts';

/**
 * The production connector against moto's EKS and STS: DescribeCluster (in the cluster's own
 * account through the access role) gives endpoint and CA, the token is built in process. moto
 * invents the endpoint and CA, so nothing here can connect; the local control plane is reached
 * through the kubeconfig connector instead (see the other kubernetes-* tests).
 */
async function createCluster(name: string, account?: string): Promise<{ endpoint: string; ca: string }> {
  const options = account ? await new AccountSessions('123456789012', 'fleetwarden-member').options(account, 'us-east-1') : { region: 'us-east-1' };
  const out = await awsClient(EKSClient, options).send(
    new CreateClusterCommand({ name, roleArn: 'arn:aws:iam::123456789012:role/eks-cluster', resourcesVpcConfig: { subnetIds: ['subnet-0123456789abcdef0'] } }),
  );
  return { endpoint: out.cluster!.endpoint!, ca: out.cluster!.certificateAuthority!.data! };
}

const tokenOf = (kc: { getCurrentUser(): { token?: string } | null }) => kc.getCurrentUser()?.token ?? '';
const accessKeyOf = (token: string) => new URL(Buffer.from(token.slice(EKS_TOKEN_PREFIX.length), 'base64url').toString()).searchParams.get('X-Amz-Credential')!.split('/')[0];

describe('EKS cluster connector (moto EKS + STS)', () => {
  it('connects to the endpoint and CA DescribeCluster reports, as the function itself, with an EKS token', async () => {
    const name = `prod-${randomBytes(3).toString('hex')}`;
    const described = await createCluster(name);

    const { kubeConfig, expiresAt } = await new EksClusterConnector([{ name, region: 'us-east-1' }]).kubeConfig(name);

    expect(kubeConfig.getCurrentCluster()).toMatchObject({ name, server: described.endpoint, caData: described.ca, skipTLSVerify: false });
    expect(tokenOf(kubeConfig)).toMatch(/^k8s-aws-v1\.[A-Za-z0-9_-]+$/);
    expect(accessKeyOf(tokenOf(kubeConfig))).toBe('testing'); // the function's own credentials
    expect(expiresAt.getTime() - Date.now()).toBeGreaterThan(14 * 60_000);
  });

  it('describes a cluster of a member account and signs the token as the configured access role', async () => {
    const name = `member-${randomBytes(3).toString('hex')}`;
    await createCluster(name, '111111111111');
    const accessRoleArn = 'arn:aws:iam::111111111111:role/fleetwarden-member';

    const { kubeConfig } = await new EksClusterConnector([{ name, region: 'us-east-1', accountId: '111111111111', accessRoleArn }]).kubeConfig(name);

    expect(kubeConfig.getCurrentCluster()?.server).toMatch(/^https:\/\//);
    expect(accessKeyOf(tokenOf(kubeConfig))).not.toBe('testing'); // assumed-role credentials
  });

  it('lets a connection live no longer than the assumed-role credentials that signed its token', async () => {
    const name = `short-${randomBytes(3).toString('hex')}`;
    await createCluster(name, '111111111111');
    const connector = new EksClusterConnector([{ name, region: 'us-east-1', accountId: '111111111111', accessRoleArn: 'arn:aws:iam::111111111111:role/fleetwarden-member' }]);
    const first = await connector.kubeConfig(name);
    // Ten minutes on, the 900 s credentials are reused (more than 2 min left), but a token signed now dies with them.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 10 * 60_000 });
    try {
      const second = await connector.kubeConfig(name);

      expect(accessKeyOf(tokenOf(second.kubeConfig))).toBe(accessKeyOf(tokenOf(first.kubeConfig)));
      // The credentials' expiry (assumed just after the first token was signed), not 15 minutes from now.
      expect(Math.abs(second.expiresAt.getTime() - first.expiresAt.getTime())).toBeLessThan(5_000);
      expect(second.expiresAt.getTime() - Date.now()).toBeLessThan(5 * 60_000 + 5_000);
    } finally {
      vi.useRealTimers();
    }
  });

  it('uses a configured endpoint over the described one', async () => {
    const name = `pinned-${randomBytes(3).toString('hex')}`;
    await createCluster(name);
    const { kubeConfig } = await new EksClusterConnector([{ name, region: 'us-east-1', endpoint: 'https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com' }]).kubeConfig(name);
    expect(kubeConfig.getCurrentCluster()?.server).toBe('https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com');
  });

  it('refuses, as terminal, a cluster that is not configured or does not exist', async () => {
    const connector = new EksClusterConnector([{ name: 'ghost-eks', region: 'us-east-1' }]);
    await expect(connector.connect('other-eks')).rejects.toMatchObject({ name: 'Terminal.UnknownCluster', message: expect.stringMatching(/not in Fleetwarden's kubernetes\.clusters/) });
    await expect(connector.connect('ghost-eks')).rejects.toMatchObject({ name: 'Terminal.UnknownCluster', message: 'EKS cluster ghost-eks not found in us-east-1' });
  });
});
