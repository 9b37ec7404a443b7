import { type CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import type { IConstruct } from 'constructs';

/**
 * Acknowledges a cdk-nag finding on a construct and everything below it, with the reason a
 * reviewer needs. cdk-nag v3 names each finding of a rule separately, e.g.
 * `AwsSolutions-IAM5[Resource::*]`; pass those as `findings`.
 */
export function acknowledge(scope: IConstruct, rule: string, reason: string, findings: string[] = []): void {
  const ids = findings.length ? findings.map((finding) => `${rule}[${finding}]`) : [rule];
  Validations.of(scope).acknowledge(...ids.map((id) => ({ id, reason })));
}

/** The logical id cdk-nag shows in findings such as `Resource::<LogicalId.Arn>/prefix/*`. */
export function logicalIdOf(construct: IConstruct): string {
  const element = (construct.node.defaultChild ?? construct) as CfnElement;
  return Stack.of(construct).resolve(element.logicalId) as string;
}

/**
 * The account as cdk-nag writes it in a finding: `<AWS::AccountId>` when the stack is
 * environment-agnostic, the literal id when the app knows it (`cdk synth` with credentials).
 */
export function accountInFinding(scope: IConstruct): string {
  const account = Stack.of(scope).account;
  return Token.isUnresolved(account) ? '<AWS::AccountId>' : account;
}
