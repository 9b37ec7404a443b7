import { Aws, RemovalPolicy } from 'aws-cdk-lib';
import type * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as fis from 'aws-cdk-lib/aws-fis';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FleetwardenConfig } from '../config';
import { acknowledge } from '../nag';

/** The FIS action, its target type and the key the action names its targets by. */
export const SPOT_INTERRUPTION_ACTION = 'aws:ec2:send-spot-instance-interruptions';
export const SPOT_INSTANCE_TARGET = 'aws:ec2:spot-instance';
const TARGETS = 'SpotInstances';

/** The LAB accounts of the config: the only accounts where a chaos experiment may exist. */
export function labAccounts(config: FleetwardenConfig): string[] {
  return config.accounts.filter((a) => a.environment === 'LAB').map((a) => a.id);
}

/** FIS's selection mode for `chaos.spotInterruptions.select`. */
export function selectionMode(select: FleetwardenConfig['chaos']['spotInterruptions']['select']): string {
  return 'count' in select ? `COUNT(${select.count})` : `PERCENT(${select.percent})`;
}

export interface SpotInterruptionExperimentProps {
  config: FleetwardenConfig;
  /**
   * Stops the experiment when it goes off: the forwarding dead-letter alarm, since an experiment
   * Fleetwarden can no longer see (events not reaching the home bus) teaches nothing.
   */
  stopAlarm: cloudwatch.IAlarm;
}

/**
 * An AWS FIS experiment template that sends Spot interruptions (a rebalance recommendation, then
 * the 2-minute interruption warning, then the interruption) to running Spot instances carrying the
 * chaos tag, in this account and region. It does nothing until someone starts it. The member stack
 * puts it, and everything here, under a condition that holds only in LAB accounts.
 */
export class SpotInterruptionExperiment extends Construct {
  readonly template: fis.CfnExperimentTemplate;
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: SpotInterruptionExperimentProps) {
    super(scope, id);
    const chaos = props.config.chaos.spotInterruptions;
    const { key, value } = chaos.targetTag;

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      // Vended logs: this prefix keeps the log delivery resource policy from growing per group.
      logGroupName: '/aws/vendedlogs/fis/fleetwarden-spot-interruptions',
      retention: logs.RetentionDays.ONE_MONTH,
      // Turning the experiment off removes it, and turning it on again must not find the name taken.
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.role = new iam.Role(this, 'Role', {
      description: `Fleetwarden chaos: lets AWS FIS interrupt running Spot instances tagged ${key}=${value}, and nothing else`,
      // Only FIS experiments of this account and region (no confused deputy).
      assumedBy: new iam.ServicePrincipal('fis.amazonaws.com', {
        conditions: {
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
          ArnLike: { 'aws:SourceArn': `arn:${Aws.PARTITION}:fis:${Aws.REGION}:${Aws.ACCOUNT_ID}:experiment/*` },
        },
      }),
      inlinePolicies: {
        SpotInterruptions: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'InterruptTaggedSpotInstances',
              actions: ['ec2:SendSpotInstanceInterruptions'],
              resources: [`arn:${Aws.PARTITION}:ec2:${Aws.REGION}:${Aws.ACCOUNT_ID}:instance/*`],
              // IAM itself refuses any instance without the chaos tag, whatever the template selects.
              conditions: { StringEquals: { [`aws:ResourceTag/${key}`]: value } },
            }),
            new iam.PolicyStatement({
              sid: 'ResolveTargets',
              actions: ['ec2:DescribeInstances'],
              resources: ['*'],
            }),
            new iam.PolicyStatement({
              sid: 'DeliverExperimentLogs',
              actions: ['logs:CreateLogDelivery', 'logs:DescribeLogGroups', 'logs:DescribeResourcePolicies', 'logs:PutResourcePolicy'],
              resources: ['*'],
            }),
          ],
        }),
      },
    });
    acknowledge(
      this.role,
      'AwsSolutions-IAM5',
      'ec2:DescribeInstances (target resolution) and the CloudWatch Logs delivery actions support no resource-level permissions; SendSpotInstanceInterruptions applies to instances of this account and region only with the chaos tag (a condition). Actions stay explicit.',
      ['Resource::*', 'Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:instance/*'],
    );

    const stopAlarmArns = [
      props.stopAlarm.alarmArn,
      ...chaos.stopAlarmNames.map((name) => `arn:${Aws.PARTITION}:cloudwatch:${Aws.REGION}:${Aws.ACCOUNT_ID}:alarm:${name}`),
    ];
    this.template = new fis.CfnExperimentTemplate(this, 'Template', {
      description: `Fleetwarden chaos: Spot interruptions (${chaos.durationBeforeInterruption} notice) to running Spot instances tagged ${key}=${value}`,
      roleArn: this.role.roleArn,
      targets: {
        [TARGETS]: {
          resourceType: SPOT_INSTANCE_TARGET,
          resourceTags: { [key]: value },
          filters: [{ path: 'State.Name', values: ['running'] }],
          selectionMode: selectionMode(chaos.select),
        },
      },
      actions: {
        InterruptSpotInstances: {
          actionId: SPOT_INTERRUPTION_ACTION,
          description: 'Rebalance recommendation, 2-minute interruption warning, interruption',
          parameters: { durationBeforeInterruption: chaos.durationBeforeInterruption },
          targets: { [TARGETS]: TARGETS },
        },
      },
      stopConditions: stopAlarmArns.map((arn) => ({ source: 'aws:cloudwatch:alarm', value: arn })),
      logConfiguration: { logSchemaVersion: 2, cloudWatchLogsConfiguration: { LogGroupArn: this.logGroup.logGroupArn } },
      experimentOptions: { accountTargeting: 'single-account', emptyTargetResolutionMode: 'fail' },
      tags: { Name: 'fleetwarden-spot-interruptions' },
    });
  }
}
