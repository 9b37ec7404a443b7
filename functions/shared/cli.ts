import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import type * as z from 'zod';
import { awsClient } from './aws';
import { describeIssues } from './validation';

/** Bad command-line input: the CLI prints the message and the usage, and exits with 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** Parses `--key value` / `--flag` pairs into an object for the schema. */
export function parseFlags(argv: string[]): Record<string, string | boolean> {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (!arg.startsWith('--')) throw new CliUsageError(`unexpected argument "${arg}"`);
    const [key, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    const next = argv[i + 1];
    if (inline !== undefined) flags[key] = inline;
    else if (next !== undefined && !next.startsWith('--')) {
      flags[key] = next;
      i++;
    } else flags[key] = true;
  }
  return flags;
}

/** Validates parsed flags with a schema; a bad one is named as the user typed it (`--state: …`). */
export function parseCliArgs<S extends z.ZodType>(schema: S, argv: string[]): z.infer<S> {
  const result = schema.safeParse(parseFlags(argv));
  if (!result.success) {
    throw new CliUsageError(describeIssues(result.error).replace(/(^|; )([a-z-]+): /g, '$1--$2: ').replace(/\(root\): Unrecognized keys?: /, 'unknown flag: '));
  }
  return result.data;
}

/** The outputs of a deployed Fleetwarden stack, by output name. */
export async function stackOutputs(stackName: string, region?: string): Promise<Record<string, string>> {
  try {
    const out = await awsClient(CloudFormationClient, { region }).send(new DescribeStacksCommand({ StackName: stackName }));
    return Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (error) {
    if ((error as Error).name === 'ValidationError') throw new CliUsageError(`--stack: no stack ${stackName}${region ? ` in ${region}` : ''}`);
    throw error;
  }
}
