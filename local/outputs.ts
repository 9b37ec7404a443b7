import { CloudFormationClient, CreateStackCommand } from '@aws-sdk/client-cloudformation';
import { awsClient } from '../functions/shared/aws';
import type { LocalStack } from './provision';
import { Resolver } from './template';

/**
 * What `cdk deploy` leaves for the operator CLI: a CloudFormation stack whose outputs name the
 * provisioned resources. moto runs no template of ours, so this creates a stand-in stack in moto
 * (one placeholder resource) carrying the synthesized outputs, resolved to what `provision`
 * created; `fleetwarden <command> --stack <name>` then finds everything as deployed.
 */
export async function publishOutputs(stack: LocalStack, name: string, region?: string): Promise<Record<string, string>> {
  const resolved = new Resolver(stack.identities, stack.pseudo).resolve(stack.template.Outputs ?? {}) as Record<string, { Value: unknown }>;
  const values = Object.fromEntries(Object.entries(resolved).map(([k, v]) => [k, String(v.Value)]));
  await createOutputsStack(name, values, region);
  return values;
}

/** A stand-in CloudFormation stack in moto with these outputs. */
export async function createOutputsStack(name: string, values: Record<string, string>, region?: string): Promise<void> {
  await awsClient(CloudFormationClient, region ? { region } : {}).send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify({
        Resources: { Handle: { Type: 'AWS::CloudFormation::WaitConditionHandle' } },
        Outputs: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, { Value: v }])),
      }),
    }),
  );
}
