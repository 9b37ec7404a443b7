import { Stack } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import type { FleetFunction } from './fleet-function';
import type { Construct } from 'constructs';
import type { FleetwardenConfig } from '../config';
import { accountEnvironmentsJson } from './runtime-config';

/**
 * The home roles that assume the member role, by IAM role name. The names are fixed so that the
 * member stack can trust exactly these roles (by ARN) instead of the whole home account. Renaming
 * one means redeploying every member stack.
 */
export const MEMBER_ROLE_TRUSTEES = {
  interruptionIngest: 'fleetwarden-interruption-ingest',
  enforcementCheck: 'fleetwarden-enforcement-check',
  enforcementSteps: 'fleetwarden-enforcement-steps',
  wasteSteps: 'fleetwarden-waste-steps',
  /** Exists only with `kubernetes.clusters` configured. */
  kubernetesDrain: 'fleetwarden-kubernetes-drain',
  /** `fleetwarden doctor`'s read-only way into member accounts (lib/constructs/doctor.ts). */
  doctor: 'fleetwarden-doctor',
} as const;

/**
 * The ARNs of the trusted home roles in the given home account: only roles the home stack of
 * this config creates (IAM refuses a trust policy that names a role that does not exist).
 */
export function memberTrusteeArns(partition: string, homeAccount: string, config: FleetwardenConfig): string[] {
  const { kubernetesDrain, ...always } = MEMBER_ROLE_TRUSTEES;
  const names = [...Object.values(always), ...(config.kubernetes.clusters.length ? [kubernetesDrain] : [])];
  return names.map((name) => `arn:${partition}:iam::${homeAccount}:role/${name}`);
}

/**
 * The `default` bus of the home account accepts events from the configured accounts only: one
 * statement per account, or, with `organizations.id` set, one statement for the whole
 * organization. Created directly in `scope`, so the resources keep the logical ids they had there.
 */
export function memberEventsPolicy(scope: Construct, config: FleetwardenConfig): events.CfnEventBusPolicy[] {
  const stack = Stack.of(scope);
  const bus = `arn:${stack.partition}:events:${stack.region}:${stack.account}:event-bus/default`;
  const orgId = config.organizations.id;
  if (orgId) {
    return [
      new events.CfnEventBusPolicy(scope, 'AllowEventsFromOrganization', {
        eventBusName: 'default',
        statementId: 'fleetwarden-organization',
        statement: {
          Effect: 'Allow',
          Principal: '*',
          Action: 'events:PutEvents',
          Resource: bus,
          Condition: { StringEquals: { 'aws:PrincipalOrgID': orgId } },
        },
      }),
    ];
  }
  return config.accounts.map(
    (account) =>
      new events.CfnEventBusPolicy(scope, `AllowEventsFrom${account.id}`, {
        eventBusName: 'default',
        statementId: `fleetwarden-${account.id}`,
        statement: {
          Effect: 'Allow',
          Principal: { AWS: `arn:${stack.partition}:iam::${account.id}:root` },
          Action: 'events:PutEvents',
          Resource: bus,
        },
      }),
  );
}

/** The EC2 resource types waste cleanup acts on. */
export const WASTE_RESOURCES = ['elastic-ip', 'volume', 'snapshot'] as const;

/**
 * What waste cleanup may do in one account: tag (mark) and untag, release an Elastic IP, snapshot
 * and delete a volume, delete a snapshot; IAM itself refuses any of it on a resource that carries
 * the protected tag. The new snapshot of CreateSnapshot has no tags yet, so it needs no condition.
 */
export function wasteCleanupStatements(partition: string, account: string, protectedTag: string): iam.PolicyStatement[] {
  const arns = WASTE_RESOURCES.map((r) => `arn:${partition}:ec2:*:${account}:${r}/*`);
  return [
    new iam.PolicyStatement({
      sid: 'CleanUpUnprotectedWaste',
      actions: ['ec2:CreateTags', 'ec2:DeleteTags', 'ec2:ReleaseAddress', 'ec2:CreateSnapshot', 'ec2:DeleteVolume', 'ec2:DeleteSnapshot'],
      resources: arns,
      conditions: { Null: { [`aws:ResourceTag/${protectedTag}`]: 'true' } },
    }),
    new iam.PolicyStatement({ sid: 'SnapshotBeforeDeleting', actions: ['ec2:CreateSnapshot'], resources: [`arn:${partition}:ec2:*::snapshot/*`] }),
  ];
}

/**
 * What a function that works in member accounts may do there: assume the member role of every
 * configured account but the home one (whose own role it uses), and read the Organizations
 * account tag that names an unlisted account's environment class, when configured.
 */
export function allowMemberAccess(fn: FleetFunction, config: FleetwardenConfig): void {
  const stack = Stack.of(fn);
  const memberRoles = config.accounts.filter((a) => a.id !== stack.account).map((a) => `arn:${stack.partition}:iam::${a.id}:role/${config.memberRoleName}`);
  if (memberRoles.length) fn.allow(['sts:AssumeRole'], memberRoles);
  if (config.organizations.environmentTag) fn.allow(['organizations:ListTagsForResource'], [`arn:${stack.partition}:organizations::*:account/o-*/*`]);
}

/** The environment keys every function that works in member accounts shares (see MemberAccountEnvSchema). */
export function memberAccountEnvironment(scope: Construct, config: FleetwardenConfig) {
  return {
    HOME_ACCOUNT_ID: Stack.of(scope).account,
    MEMBER_ROLE_NAME: config.memberRoleName,
    ACCOUNT_ENVIRONMENTS: accountEnvironmentsJson(config),
    ORGANIZATIONS_ENVIRONMENT_TAG: config.organizations.environmentTag ?? '',
  };
}
