import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import type { FleetwardenConfig } from '../config';
import { accountInFinding, acknowledge } from '../nag';
import { MEMBER_ROLE_TRUSTEES } from './member-access';

/**
 * `fleetwarden doctor`'s way into member accounts: a read-only home role that the member role
 * trusts (as it trusts the functions' roles). An operator of the home account whose own IAM lets
 * them assume it (`sts:AssumeRole` on its ARN) runs doctor through it; nothing else can use it.
 * With it, doctor may assume the member role and read the forwarding rules where the member role
 * lets it, and read the home account's own rules in its other regions.
 */
export class DoctorAccess extends Construct {
  readonly role: iam.Role;

  constructor(scope: Construct, id: string, props: { config: FleetwardenConfig }) {
    super(scope, id);
    const stack = Stack.of(this);
    const { config } = props;
    this.role = new iam.Role(this, 'Role', {
      roleName: MEMBER_ROLE_TRUSTEES.doctor,
      description: 'fleetwarden doctor: assumes the member role in each member account to check the deployment there; reads only',
      assumedBy: new iam.AccountPrincipal(stack.account),
    });
    const memberRoles = config.accounts.filter((a) => a.id !== stack.account).map((a) => `arn:${stack.partition}:iam::${a.id}:role/${config.memberRoleName}`);
    if (memberRoles.length) this.role.addToPolicy(new iam.PolicyStatement({ actions: ['sts:AssumeRole'], resources: memberRoles }));
    this.role.addToPolicy(new iam.PolicyStatement({ actions: ['events:ListRules', 'events:ListTargetsByRule'], resources: [`arn:${stack.partition}:events:*:${stack.account}:rule/*`] }));
    acknowledge(this.role, 'AwsSolutions-IAM5', "The home account's forwarding rules are read in every region it forwards from. Actions stay explicit.", [
      `Resource::arn:<AWS::Partition>:events:*:${accountInFinding(this)}:rule/*`,
    ]);
  }
}
