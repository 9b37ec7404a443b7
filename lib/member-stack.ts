import { Aspects, Aws, CfnCondition, CfnOutput, CfnParameter, CfnResource, Duration, Fn, type IAspect, LegacyStackSynthesizer, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, type IConstruct } from 'constructs';
import { ENFORCEMENT_EVENTS } from '../functions/enforcement/events';
import { HANDLED_EVENTS } from '../functions/interruption/events';
import type { HandledEvent } from '../functions/shared/aws-events';
import type { FleetwardenConfig } from './config';
import { SpotInterruptionExperiment, labAccounts } from './constructs/chaos';
import { WASTE_RESOURCES, memberTrusteeArns, wasteCleanupStatements } from './constructs/member-access';
import { acknowledge } from './nag';

export interface FleetwardenMemberStackProps extends StackProps {
  config: FleetwardenConfig;
  /** Default of the HomeAccountId parameter: the account the app is synthesized for, when known. */
  homeAccount?: string;
}

/** The events each forwarding rule brings to the home bus: every event a home handler understands. */
export const FORWARDED_EVENTS: readonly { registry: 'Interruption' | 'Enforcement'; event: HandledEvent }[] = [
  ...HANDLED_EVENTS.map((event) => ({ registry: 'Interruption' as const, event })),
  ...ENFORCEMENT_EVENTS.map((event) => ({ registry: 'Enforcement' as const, event })),
];

/**
 * The member-account baseline, one template for every member account and region (a
 * service-managed StackSet over an OU, or `cdk deploy` per account): the member role that the
 * home roles assume, and the rules that forward the handled events to the home account's bus
 * (and, in LAB accounts with `chaos.spotInterruptions.enabled`, a Spot interruption experiment).
 * Env-agnostic and bootstrap-free: the account and region are the deployment's own, and the home
 * account comes in as the HomeAccountId parameter.
 */
export class FleetwardenMemberStack extends Stack {
  readonly homeAccountId: CfnParameter;
  readonly memberRole: MemberRole;
  readonly forwarding: EventForwarding;
  /** Only with `chaos.spotInterruptions.enabled`. */
  readonly spotInterruptions?: SpotInterruptionExperiment;

  constructor(scope: Construct, id: string, props: FleetwardenMemberStackProps) {
    // No CDK bootstrap in member accounts: the template has no assets and no bootstrap version
    // check, and `cdk deploy` uses the CLI's own credentials (no bootstrap deploy role).
    super(scope, id, { synthesizer: new LegacyStackSynthesizer(), ...props });
    const { config } = props;
    Tags.of(this).add('ManagedBy', 'fleetwarden');

    this.homeAccountId = new CfnParameter(this, 'HomeAccountId', {
      type: 'String',
      allowedPattern: '^\\d{12}$',
      constraintDescription: 'an AWS account id is 12 digits',
      description: 'The account the Fleetwarden home stack runs in (a StackSet passes it explicitly).',
      default: props.homeAccount && /^\d{12}$/.test(props.homeAccount) ? props.homeAccount : undefined,
    });
    const homeAccount = this.homeAccountId.valueAsString;
    const inHomeAccount = Fn.conditionEquals(Aws.ACCOUNT_ID, homeAccount);
    const inHomeRegion = Fn.conditionEquals(Aws.REGION, config.homeRegion);

    // IAM is global but the template runs in every region: the role exists once, in the home
    // region. The home account has no member role: Fleetwarden uses its own roles there.
    const createsRole = new CfnCondition(this, 'CreateMemberRole', { expression: Fn.conditionAnd(inHomeRegion, Fn.conditionNot(inHomeAccount)) });
    this.memberRole = new MemberRole(this, 'MemberRole', { config, homeAccount });
    onlyIf(this.memberRole, createsRole);

    // The home account's home region has the home rules already; forwarding there would loop.
    const forwards = new CfnCondition(this, 'ForwardEvents', { expression: Fn.conditionNot(Fn.conditionAnd(inHomeAccount, inHomeRegion)) });
    this.forwarding = new EventForwarding(this, 'Forwarding', {
      homeBusArn: `arn:${Aws.PARTITION}:events:${config.homeRegion}:${homeAccount}:event-bus/default`,
    });
    onlyIf(this.forwarding, forwards);

    // Chaos only ever in LAB accounts, and only where the events reach the home bus: the
    // experiment stops on the forwarding dead-letter alarm (Fleetwarden no longer sees it).
    if (config.chaos.spotInterruptions.enabled) {
      const inLabAccount = Fn.conditionOr(...labAccounts(config).map((account) => Fn.conditionEquals(Aws.ACCOUNT_ID, account)));
      const chaos = new CfnCondition(this, 'SpotInterruptionChaos', { expression: Fn.conditionAnd(inLabAccount, forwards) });
      this.spotInterruptions = new SpotInterruptionExperiment(this, 'SpotInterruptions', { config, stopAlarm: this.forwarding.deadLetterAlarm });
      onlyIf(this.spotInterruptions, chaos);
      const output = new CfnOutput(this, 'SpotInterruptionExperimentTemplateId', {
        description: 'aws fis start-experiment --experiment-template-id <this> (README, Chaos)',
        value: this.spotInterruptions.template.attrId,
      });
      output.condition = chaos;
    }

    // In the home account's home region every other resource is conditioned out; this one creates
    // nothing and keeps the stack there from having no resource at all.
    new CfnResource(this, 'Baseline', { type: 'AWS::CloudFormation::WaitConditionHandle' });
  }
}

export interface MemberRoleProps {
  config: FleetwardenConfig;
  homeAccount: string;
}

/**
 * The role the home roles assume in a member account: read the fleet, stop and terminate
 * instances that do not carry the protected tag. Trusted by the named home roles only, not the
 * home account root; with `organizations.id` configured, the caller must also be of the organization.
 */
export class MemberRole extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: MemberRoleProps) {
    super(scope, id);
    const { config } = props;
    const stack = Stack.of(this);
    const orgId = config.organizations.id;
    const trustees = memberTrusteeArns(stack.partition, props.homeAccount, config).map((arn) => new iam.ArnPrincipal(arn));
    const protectedTag = config.policies.enforcement.protectedTag;

    this.role = new iam.Role(this, 'Role', {
      roleName: config.memberRoleName,
      description: 'Fleetwarden member role: assumed by the Fleetwarden home roles to read the fleet and stop or terminate unprotected instances',
      assumedBy: orgId
        ? new iam.PrincipalWithConditions(new iam.CompositePrincipal(...trustees), { StringEquals: { 'aws:PrincipalOrgID': orgId } })
        : new iam.CompositePrincipal(...trustees),
      inlinePolicies: {
        Fleetwarden: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'ReadFleet',
              actions: [
                'ec2:DescribeInstances',
                'ec2:DescribeAvailabilityZones',
                'ec2:DescribeImages',
                'ec2:DescribeVolumes',
                'ec2:DescribeSnapshots',
                'ec2:DescribeAddresses',
                'ec2:DescribeLaunchTemplates',
                'ec2:DescribeLaunchTemplateVersions',
                'autoscaling:DescribeAutoScalingGroups',
                'autoscaling:DescribeLaunchConfigurations',
              ],
              resources: ['*'],
            }),
            // Waste cleanup: mark, snapshot, release and delete, never with the protected tag.
            ...wasteCleanupStatements(stack.partition, stack.account, protectedTag),
            // IAM itself refuses any instance that carries the protected tag, whatever value.
            new iam.PolicyStatement({
              sid: 'ActOnUnprotectedInstances',
              actions: ['ec2:StopInstances', 'ec2:TerminateInstances'],
              resources: [`arn:${stack.partition}:ec2:*:${stack.account}:instance/*`],
              conditions: { Null: { [`aws:ResourceTag/${protectedTag}`]: 'true' } },
            }),
            // `fleetwarden doctor`: are the forwarding rules there, and do they target the home bus?
            new iam.PolicyStatement({
              sid: 'ReadForwardingRules',
              actions: ['events:ListRules', 'events:ListTargetsByRule'],
              resources: [`arn:${stack.partition}:events:*:${stack.account}:rule/*`],
            }),
            // After draining a node whose group terminates it through a lifecycle hook: CONTINUE.
            new iam.PolicyStatement({
              sid: 'CompleteLifecycleActions',
              actions: ['autoscaling:CompleteLifecycleAction'],
              resources: [`arn:${stack.partition}:autoscaling:*:${stack.account}:autoScalingGroup:*:autoScalingGroupName/*`],
            }),
          ],
        }),
      },
    });
    acknowledge(this.role, 'AwsSolutions-IAM5', 'EC2 and Auto Scaling Describe* actions support no resource-level permissions; stop/terminate apply to any instance of this account that lacks the protected tag (a condition); a lifecycle action names its group only in its event; the forwarding rules are read in every region. Actions stay explicit.', [
      'Resource::*',
      'Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:instance/*',
      'Resource::arn:<AWS::Partition>:autoscaling:*:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/*',
      'Resource::arn:<AWS::Partition>:events:*:<AWS::AccountId>:rule/*',
      ...WASTE_RESOURCES.map((r) => `Resource::arn:<AWS::Partition>:ec2:*:<AWS::AccountId>:${r}/*`),
      'Resource::arn:<AWS::Partition>:ec2:*::snapshot/*',
    ]);
  }
}

export interface EventForwardingProps {
  /** The home account's default bus in the home region. */
  homeBusArn: string;
}

/**
 * One rule per handled event on this account's default bus, each forwarding to the home bus
 * with a role that may put events there and nowhere else, and a dead-letter queue for events
 * the home bus did not accept.
 */
export class EventForwarding extends Construct {
  readonly rules: events.Rule[];
  readonly deadLetterQueue: sqs.Queue;
  readonly deadLetterAlarm: cloudwatch.Alarm;
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: EventForwardingProps) {
    super(scope, id);
    // A member-account resource without Fleetwarden's data key: SQS-managed encryption.
    this.deadLetterQueue = new sqs.Queue(this, 'DeadLetters', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });
    acknowledge(this.deadLetterQueue, 'AwsSolutions-SQS3', 'This queue is itself the dead-letter queue of the forwarding rules.');
    this.deadLetterAlarm = new cloudwatch.Alarm(this, 'DeadLettersAlarm', {
      alarmDescription: 'Fleetwarden could not forward events to the home account: inspect the dead-letter queue (its messages carry the error) and redrive.',
      metric: this.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: 'Maximum' }),
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });

    const homeBus = events.EventBus.fromEventBusArn(this, 'HomeBus', props.homeBusArn);
    // The target adds events:PutEvents on the home bus to this role, and nothing else.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Fleetwarden: forwards the handled EC2, Health and Auto Scaling events to the home account bus',
    });
    const defaultBus = events.EventBus.fromEventBusName(this, 'DefaultBus', 'default');
    this.rules = FORWARDED_EVENTS.map(
      ({ registry, event }) =>
        new events.Rule(this, `${registry}${event.detailType.replace(/[^A-Za-z0-9]/g, '')}Rule`, {
          description: `${event.detailType} (${event.source}) -> Fleetwarden home bus`,
          eventBus: defaultBus,
          eventPattern: {
            source: event.pattern.source as string[],
            detailType: event.pattern['detail-type'] as string[],
            detail: event.pattern.detail as Record<string, unknown> | undefined,
          },
          targets: [new targets.EventBus(homeBus, { role: this.role, deadLetterQueue: this.deadLetterQueue })],
        }),
    );
  }
}

/** Puts every CloudFormation resource under `scope`, including ones added later, under `condition`. */
function onlyIf(scope: IConstruct, condition: CfnCondition): void {
  const aspect: IAspect = {
    visit(node) {
      if (node instanceof CfnResource) node.cfnOptions.condition = condition;
    },
  };
  Aspects.of(scope).add(aspect);
}
