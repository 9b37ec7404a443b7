import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { Command, CommanderError, Option } from 'commander';
import * as z from 'zod';
import { type AwsClientOptions, awsClient } from './aws';

/**
 * The operator CLI's shared edge. commander reads the command line (commands, `--flag value`,
 * `--flag=value`, switches, `--help`, unknown flags); zod validates what it read, so that every
 * error names the flag as the user typed it (`--state: …`). A command's flags are one zod
 * object, one key per long flag: a key that accepts `true` is a switch, any other takes a value,
 * and its `.describe()` text is its line in `--help`.
 */

/** Bad command-line input: the CLI prints the message and the usage, and exits with 2. */
export class CliUsageError extends Error {
  override readonly name = 'CliUsageError';
}

/** What a command prints on stdout and its exit status: 0 ok, 1 failed (as each command defines it), 2 bad usage. */
export interface CliResult {
  text: string;
  code: number;
}

/** The exit status of bad usage. */
export const USAGE_EXIT = 2;

/** A flag given without a value parses as `true`; an absent one as undefined. */
export const flagValue = () => z.string({ error: (issue) => (issue.code !== 'invalid_type' ? undefined : issue.input === undefined ? 'required' : 'needs a value') });
/** A switch: present or absent, never given a value. */
export const switchFlag = () => z.literal(true, 'a switch takes no value').optional();
/** `--json`: present or not; false when absent. */
export const jsonFlag = () => z.literal(true, 'a switch takes no value').optional().transform((v) => v === true).describe('print JSON instead of text');

export const REGION_PATTERN = /^[a-z]{2}(-[a-z]+)+-\d$/;
/**
 * `--region` and `--profile`, as the AWS CLI has them: the region of the Fleetwarden stack (else
 * AWS_REGION, else the profile's region), and a named profile of the shared config and
 * credentials files.
 */
export const AwsFlags = {
  region: flagValue().regex(REGION_PATTERN, 'a region looks like us-east-1').optional().describe('AWS region of the Fleetwarden stack (default: AWS_REGION, else the profile’s region)'),
  profile: flagValue().min(1, 'needs a value').optional().describe('named profile of the shared AWS config and credentials files'),
};

/** The SDK client options a command's `--region`/`--profile` ask for. */
export function awsOptions(args: { region?: string; profile?: string }): AwsClientOptions {
  return { ...(args.region ? { region: args.region } : {}), ...(args.profile ? { profile: args.profile } : {}) };
}

type Flags = z.ZodObject;

/** A command the `fleetwarden` binary offers: its words, flags, how they become arguments, and what it runs. */
export interface CliCommand<F extends Flags = Flags, A = z.infer<F>> {
  /** The words after `fleetwarden`: `['ledger', 'show']`. */
  path: readonly string[];
  summary: string;
  flags: F;
  /** Turns the validated flags into the command's arguments (throws CliUsageError naming a flag). */
  args: (flags: z.infer<F>) => A;
  /** Printed after the flags by `--help`: exit status, notes. */
  notes?: string;
  run: (args: A) => Promise<CliResult>;
}

/** Declares a command and checks its types, flags to arguments to run. */
export const cliCommand = <F extends Flags, A>(command: CliCommand<F, A>): CliCommand<F, A> => command;

/** A flag's value as read: a string, or `true` for a flag given alone. */
type RawFlags = Record<string, string | true>;

const isSwitch = (field: z.ZodType) => field.safeParse(true).success;

/** The commander command for a command's flags, and what it read (filled in as it parses). */
function declare(name: string, command: Pick<CliCommand, 'summary' | 'flags' | 'notes'>): { cmd: Command; read: RawFlags } {
  const read: RawFlags = {};
  const cmd = new Command(name).description(command.summary).allowExcessArguments(true);
  quiet(cmd);
  for (const [key, field] of Object.entries(command.flags.shape as Record<string, z.ZodType>)) {
    const option = new Option(isSwitch(field) ? `--${key}` : `--${key} <${key}>`, field.description);
    // Every flag reads an optional value, whatever --help shows: a value flag given without one
    // (`--group --stack S`) must not swallow the next flag (it reads as `true`, which the schema
    // answers with "needs a value"), and a switch given one (`--json yes`, `--json=1`) is
    // answered "a switch takes no value" by the schema, not taken for a stray word.
    option.required = false;
    option.optional = true;
    cmd.addOption(option);
    cmd.on(`option:${option.name()}`, (value: string | null | undefined) => {
      read[key] = value ?? true;
    });
  }
  if (command.notes) cmd.addHelpText('after', `\n${command.notes}`);
  return { cmd, read };
}

/** Errors are thrown, not printed, and never exit the process: the binary decides what to print. */
export function quiet(cmd: Command): Command {
  return cmd.exitOverride().configureOutput({ writeErr: () => undefined, outputError: () => undefined });
}

/** A commander error as a usage error in this CLI's words; help (exit status 0) stays as it is. */
export function usageErrorOf(error: unknown): unknown {
  if (!(error instanceof CommanderError) || error.exitCode === 0) return error;
  if (error.code === 'commander.unknownOption') {
    const flag = /'([^']+)'/.exec(error.message)?.[1] ?? '';
    const hint = /Did you mean (\S+?)\?/.exec(error.message)?.[1];
    return new CliUsageError(`unknown flag: ${flag}${hint ? ` (did you mean ${hint}?)` : ''}`);
  }
  return new CliUsageError(error.message.replace(/^error: /, ''));
}

/** A word left over after the flags (every flag is `--name`). */
function rejectOperands(operands: readonly string[]): void {
  if (operands[0] !== undefined) throw new CliUsageError(`unexpected argument "${operands[0]}"`);
}

/** `--flag: message` for each issue, each said once. */
export function usageErrorFrom(error: z.ZodError, flagOf: (path: PropertyKey[]) => string | undefined = (path) => (path.length ? String(path[0]) : undefined)): CliUsageError {
  const lines = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') return `unknown flag${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map((k) => `--${k}`).join(', ')}`;
    const flag = flagOf(issue.path);
    return flag ? `--${flag}: ${issue.message}` : issue.message;
  });
  return new CliUsageError([...new Set(lines)].join('; '));
}

/** Validates what was read with the command's flags schema; a bad flag is named as typed. */
export function validateFlags<F extends Flags>(flags: F, read: Record<string, unknown>): z.infer<F> {
  const result = flags.safeParse(read);
  if (!result.success) throw usageErrorFrom(result.error);
  return result.data;
}

/** Parses a command's flags (the words after its name) into its arguments. */
export function parseCommandArgs<F extends Flags, A>(command: CliCommand<F, A>, argv: readonly string[]): A {
  const { cmd, read } = declare(command.path.join(' '), command);
  try {
    cmd.parse([...argv], { from: 'user' });
  } catch (error) {
    throw usageErrorOf(error);
  }
  rejectOperands(cmd.args);
  return command.args(validateFlags(command.flags, read));
}

/** Parses and runs a command. */
export async function runCommand<F extends Flags, A>(command: CliCommand<F, A>, argv: readonly string[]): Promise<CliResult> {
  return command.run(parseCommandArgs(command, argv));
}

/** A command for the binary's command tree, whatever its flags and arguments. */
export interface RegisteredCommand {
  path: readonly string[];
  /** Its commander subcommand, which validates, runs, and hands `done` the result. */
  commander(done: (result: CliResult) => void): Command;
}

export function register<F extends Flags, A>(command: CliCommand<F, A>): RegisteredCommand {
  return {
    path: command.path,
    commander: (done) => {
      const { cmd, read } = declare(command.path.at(-1)!, command);
      return cmd.action(async () => {
        rejectOperands(cmd.args);
        done(await command.run(command.args(validateFlags(command.flags, read))));
      });
    },
  };
}

/** Validates flags with a schema alone (commands whose flags need no further conversion). */
export function parseCliArgs<F extends Flags>(flags: F, argv: readonly string[]): z.infer<F> {
  return parseCommandArgs({ path: ['fleetwarden'], summary: '', flags, args: (f) => f, run: () => Promise.reject(new Error('not runnable')) }, argv);
}

/** The outputs of a deployed Fleetwarden stack, by output name. */
export async function stackOutputs(stackName: string, options: AwsClientOptions = {}): Promise<Record<string, string>> {
  try {
    const out = await awsClient(CloudFormationClient, options).send(new DescribeStacksCommand({ StackName: stackName }));
    return Object.fromEntries((out.Stacks?.[0]?.Outputs ?? []).map((o) => [o.OutputKey!, o.OutputValue!]));
  } catch (error) {
    if ((error as Error).name === 'ValidationError') throw new CliUsageError(`--stack: no stack ${stackName}${options.region ? ` in ${options.region}` : ''}`);
    throw error;
  }
}

/** One output of the stack, or a usage error naming the stack and the missing output. */
export function requireOutput(outputs: Record<string, string>, name: string, stack: string, hint = ''): string {
  const value = outputs[name];
  if (!value) throw new CliUsageError(`--stack: stack ${stack} has no output ${name}${hint}`);
  return value;
}

/** A JSON output of the stack, validated, or a usage error naming the stack, the output and the command that expects it. */
export function jsonOutput<T>(outputs: Record<string, string>, name: string, stack: string, schema: z.ZodType<T>, command: string): T {
  const text = requireOutput(outputs, name, stack, ` (deployed before ${command} existed? redeploy it)`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new CliUsageError(`--stack: output ${name} of stack ${stack} is not JSON`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new CliUsageError(`--stack: output ${name} of stack ${stack} is not what ${command} expects: ${parsed.error.issues[0]?.message}`);
  return parsed.data;
}
