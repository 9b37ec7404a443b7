import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { beforeAll, describe, expect, it } from 'vitest';
import { nodeDrainPattern } from '../../functions/kubernetes/events';
import { buildApp } from '../../lib/app';
import { parseConfig } from '../../lib/config';
import { KUBERNETES_GROUP } from '../../lib/kubernetes/rbac';

const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'payments-prod', environment: 'PROD' }] };
const kubernetes = {
  clusters: [
    { name: 'prod-eks', region: 'us-east-1' },
    { name: 'payments-eks', region: 'us-east-1', accountId: '111111111111', accessRoleArn: 'arn:aws:iam::111111111111:role/fleetwarden-eks' },
  ],
  drainTimeoutSeconds: 60,
};

let built: ReturnType<typeof buildApp>;
let template: Template;
const resources = (type: string) => Object.entries(template.findResources(type));

beforeAll(() => {
  built = buildApp({ skipBundling: true, config: { ...base, kubernetes } });
  template = Template.fromStack(built.stack);
});

describe('kubernetes config', () => {
  it('defaults to no clusters, taint on rebalance, a 90 s drain cap and Fleetwarden\'s do-not-disrupt annotation', () => {
    expect(parseConfig(base).kubernetes).toEqual({ clusters: [], rebalance: 'taint', drainTimeoutSeconds: 90, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt', desiredState: { path: 'manifests/clusters' } });
  });

  it('refuses a drain cap past the Spot notice, a repeated cluster and a bad rebalance mode, naming each key', () => {
    expect(() => parseConfig({ ...base, kubernetes: { drainTimeoutSeconds: 180, rebalance: 'evict', clusters: [{ name: 'a', region: 'us-east-1' }, { name: 'a', region: 'us-east-1' }] } })).toThrow(
      /fleetwarden\.kubernetes\.rebalance: .*\n.*fleetwarden\.kubernetes\.drainTimeoutSeconds: must stay below the 2-minute Spot notice/,
    );
    expect(() => parseConfig({ ...base, kubernetes: { clusters: [{ name: 'a', region: 'us-east-1' }, { name: 'a', region: 'us-east-1' }] } })).toThrow(
      'fleetwarden.kubernetes.clusters[1].name: cluster a is already listed at kubernetes.clusters.0',
    );
  });

  it('adds nothing to the stack while no cluster is configured', () => {
    const { stack } = buildApp({ skipBundling: true, nag: false, config: base });
    expect(stack.kubernetes).toBeUndefined();
    expect(Object.keys(Template.fromStack(stack).findResources('AWS::EKS::AccessEntry'))).toEqual([]);
  });
});

describe('node drain wiring', () => {
  it('routes InstanceInterrupted of configured clusters from Fleetwarden\'s bus to the drain queue, with a DLQ', () => {
    const [, rule] = resources('AWS::Events::Rule').find(([id]) => id.startsWith('KubernetesNodesInterruptedNodesRule'))!;
    expect(rule.Properties.EventPattern).toEqual(nodeDrainPattern(['prod-eks', 'payments-eks']));
    expect(rule.Properties.EventBusName).toEqual({ Ref: expect.stringMatching(/^StateStoreBus/) });
    expect(rule.Properties.Targets).toEqual([expect.objectContaining({ Arn: { 'Fn::GetAtt': [expect.stringMatching(/^KubernetesNodesEventsQueue/), 'Arn'] }, DeadLetterConfig: expect.anything() })]);
  });

  it('gives the function the drain cap plus recording time, and its queue six times that', () => {
    const [, fn] = resources('AWS::Lambda::Function').find(([id]) => id.startsWith('KubernetesNodesNodeDrain'))!;
    expect(fn.Properties.Timeout).toBe(150);
    expect(JSON.parse(fn.Properties.Environment.Variables.KUBERNETES_POLICY)).toEqual({ rebalance: 'taint', drainTimeoutSeconds: 60, doNotDisruptAnnotation: 'fleetwarden.io/do-not-disrupt' });
    expect(JSON.parse(fn.Properties.Environment.Variables.KUBERNETES_CLUSTERS)).toEqual(kubernetes.clusters);
    const [, queue] = resources('AWS::SQS::Queue').find(([id]) => id.startsWith('KubernetesNodesEventsQueue'))!;
    expect(queue.Properties.VisibilityTimeout).toBe(900);
    const mappings = resources('AWS::Lambda::EventSourceMapping').map(([, m]) => m.Properties);
    expect(mappings).toContainEqual(expect.objectContaining({ FunctionName: { Ref: expect.stringMatching(/^KubernetesNodesNodeDrain/) }, FunctionResponseTypes: ['ReportBatchItemFailures'], BatchSize: 10 }));
  });

  it('lets the function append to its ledger chain only, describe exactly the configured clusters, assume only their access roles and the member role, and complete lifecycle actions', () => {
    const statements = resources('AWS::IAM::Policy')
      .filter(([id]) => id.startsWith('KubernetesNodesNodeDrain'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
    const actions = statements.flatMap((s) => [s.Action].flat());
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
    expect(actions).not.toContain('dynamodb:UpdateItem');
    const put = statements.find((s) => [s.Action].flat().includes('dynamodb:PutItem')) as { Condition?: unknown } | undefined;
    expect(put?.Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['fleet', 'fleet#dedupe#*'] } });
    const describe = statements.find((s) => [s.Action].flat().includes('eks:DescribeCluster'))!;
    expect(JSON.stringify(describe.Resource)).toMatch(/eks:us-east-1:",\{"Ref":"AWS::AccountId"\},":cluster\/prod-eks/);
    expect(JSON.stringify(describe.Resource)).toContain('eks:us-east-1:111111111111:cluster/payments-eks');
    const assumable = statements.filter((s) => [s.Action].flat().includes('sts:AssumeRole')).flatMap((s) => [s.Resource].flat());
    expect(assumable).toContain('arn:aws:iam::111111111111:role/fleetwarden-eks');
    // ...and the member accounts' role, to complete a lifecycle action in a group there
    expect(JSON.stringify(assumable)).toMatch(/:iam::\d{12}:role\/fleetwarden-member"/);
    const lifecycle = statements.find((s) => [s.Action].flat().includes('autoscaling:CompleteLifecycleAction'))!;
    expect([lifecycle.Action].flat()).toEqual(['autoscaling:CompleteLifecycleAction']);
    expect(JSON.stringify(lifecycle.Resource)).toContain(':autoScalingGroup:*:autoScalingGroupName/*');
  });

  it('lets the function shorten the visibility of a failed record on its own queue, whose URL it is given', () => {
    const statements = resources('AWS::IAM::Policy')
      .filter(([id]) => id.startsWith('KubernetesNodesNodeDrain'))
      .flatMap(([, p]) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[]);
    const change = statements.filter((s) => [s.Action].flat().includes('sqs:ChangeMessageVisibility'));
    expect(change.map((s) => JSON.stringify(s.Resource))).toContainEqual(expect.stringMatching(/^\{"Fn::GetAtt":\["KubernetesNodesEventsQueue[0-9A-F]+","Arn"\]\}$/));
    const [, fn] = resources('AWS::Lambda::Function').find(([id]) => id.startsWith('KubernetesNodesNodeDrain'))!;
    expect(fn.Properties.Environment.Variables.EVENTS_QUEUE_URL).toEqual({ Ref: expect.stringMatching(/^KubernetesNodesEventsQueue/) });
  });

  it("maps the drain and swap functions' roles into the Fleetwarden group of each cluster of its own account with an EKS access entry", () => {
    const entries = resources('AWS::EKS::AccessEntry').map(([, e]) => e.Properties);
    expect(entries).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ ClusterName: 'prod-eks', PrincipalArn: { 'Fn::GetAtt': [expect.stringMatching(/^KubernetesNodesNodeDrainRole/), 'Arn'] }, Type: 'STANDARD', KubernetesGroups: [KUBERNETES_GROUP] }),
        expect.objectContaining({ ClusterName: 'prod-eks', PrincipalArn: { 'Fn::GetAtt': [expect.stringMatching(/^SwapsSwapNodesRole/), 'Arn'] }, Type: 'STANDARD', KubernetesGroups: [KUBERNETES_GROUP] }),
      ]),
    );
    expect(entries).toHaveLength(2);
  });

  it('has no unacknowledged cdk-nag finding', () => {
    const report = new AwsSolutionsChecks().validateScope(built.app);
    expect(report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${r.resourceLogicalId}`))).toEqual([]);
  });
});
