import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DescribeEventBusCommand, EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import { DescribeKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { DescribeStateMachineCommand, SFNClient } from '@aws-sdk/client-sfn';
import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { clusterConnector } from '../kubernetes/connector';
import type { ClusterConfig } from '../kubernetes/cluster-config';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { AccountSessions } from '../shared/accounts';
import { type AwsClientOptions, awsClient } from '../shared/aws';
import type { DeployedRule } from './model';
import type { DoctorPort, MemberSession } from './port';

/** A node name no cluster has: reading it is one authenticated GET that answers 404 when all is well. */
export const PROBE_NODE = 'fleetwarden-doctor-probe';

/**
 * doctor's reads with the SDK: the home resources with the operator's credentials (--region,
 * --profile), member accounts through AccountSessions (the code path the functions use) from the
 * home stack's doctor role (`via`, assumed once with the operator's credentials) or, without it,
 * from the operator's own credentials; clusters through the functions' own connector.
 */
export class AwsDoctor implements DoctorPort {
  private sessions: Promise<AccountSessions> | undefined;

  constructor(
    private readonly aws: AwsClientOptions,
    private readonly member: { homeAccount: string; roleName: string; via?: string },
    private readonly clusters: ClusterConfig[] = [],
  ) {}

  private memberSessions(): Promise<AccountSessions> {
    this.sessions ??= (async () => {
      const { homeAccount, roleName, via } = this.member;
      if (!via) return new AccountSessions(homeAccount, roleName, this.aws.profile ? { profile: this.aws.profile } : {});
      const out = await awsClient(STSClient, this.aws).send(new AssumeRoleCommand({ RoleArn: via, RoleSessionName: 'fleetwarden-doctor', DurationSeconds: 900 }));
      const c = out.Credentials!;
      return new AccountSessions(homeAccount, roleName, { credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken } });
    })();
    return this.sessions;
  }

  async describeTable(name: string): Promise<void> {
    await awsClient(DynamoDBClient, this.aws).send(new DescribeTableCommand({ TableName: name }));
  }

  async queueExists(url: string): Promise<void> {
    await awsClient(SQSClient, this.aws).send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
  }

  async describeStateMachine(arn: string): Promise<void> {
    await awsClient(SFNClient, this.aws).send(new DescribeStateMachineCommand({ stateMachineArn: arn }));
  }

  async describeBus(name: string): Promise<{ policy?: string }> {
    const out = await awsClient(EventBridgeClient, this.aws).send(new DescribeEventBusCommand({ Name: name }));
    return out.Policy ? { policy: out.Policy } : {};
  }

  async headBucket(name: string): Promise<void> {
    await awsClient(S3Client, this.aws).send(new HeadBucketCommand({ Bucket: name }));
  }

  async describeKey(arn: string): Promise<{ state?: string }> {
    const out = await awsClient(KMSClient, this.aws).send(new DescribeKeyCommand({ KeyId: arn }));
    return out.KeyMetadata?.KeyState ? { state: out.KeyMetadata.KeyState } : {};
  }

  async memberSession(account: string, region: string): Promise<MemberSession> {
    const options = await (await this.memberSessions()).options(account, region);
    return { defaultBusRules: (wantsTargets) => defaultBusRules(awsClient(EventBridgeClient, options), wantsTargets) };
  }

  async probeCluster(name: string): Promise<void> {
    const nodes = await clusterConnector(this.clusters).connect(name);
    await nodes.getNode(PROBE_NODE);
  }
}

async function defaultBusRules(events: EventBridgeClient, wantsTargets: (rule: DeployedRule) => boolean): Promise<DeployedRule[]> {
  const rules: DeployedRule[] = [];
  let NextToken: string | undefined;
  do {
    const page = await events.send(new ListRulesCommand({ EventBusName: 'default', NextToken, Limit: 100 }));
    for (const r of page.Rules ?? []) rules.push({ name: r.Name!, ...(r.State ? { state: r.State } : {}), ...(r.EventPattern ? { eventPattern: r.EventPattern } : {}) });
    NextToken = page.NextToken;
  } while (NextToken);
  for (const rule of rules.filter(wantsTargets)) {
    const targets: string[] = [];
    let next: string | undefined;
    do {
      const page = await events.send(new ListTargetsByRuleCommand({ Rule: rule.name, EventBusName: 'default', NextToken: next }));
      targets.push(...(page.Targets ?? []).map((t) => t.Arn!));
      next = page.NextToken;
    } while (next);
    rule.targets = targets;
  }
  return rules;
}
