import * as z from 'zod';

/**
 * A cluster Fleetwarden acts on (config `kubernetes.clusters[]`, and the node-drain function's
 * environment). Kept free of client imports: the CDK config parses it too.
 * @example {"name":"prod-eks","region":"us-east-1","accountId":"111111111111","accessRoleArn":"arn:aws:iam::111111111111:role/fleetwarden-eks"}
 */
export const ClusterConfigSchema = z.strictObject({
  name: z.string().regex(/^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/, 'an EKS cluster name: letters, digits, - and _'),
  region: z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'a region looks like us-east-1'),
  /** API server URL; read from DescribeCluster when absent. */
  endpoint: z.url().optional(),
  /** Account of the cluster; the stack's own when absent. */
  accountId: z.string().regex(/^\d{12}$/, 'an AWS account id is 12 digits').optional(),
  /** Role to assume for DescribeCluster and the token; its ARN is the identity EKS maps. */
  accessRoleArn: z.string().regex(/^arn:aws[a-z-]*:iam::\d{12}:role\/[\w+=,.@/-]+$/, 'an IAM role ARN').optional(),
});
export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;
