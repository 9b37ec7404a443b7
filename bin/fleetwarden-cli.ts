#!/usr/bin/env -S npx tsx
import { Command, CommanderError } from 'commander';
import { DOCTOR_COMMAND, DOCTOR_USAGE } from '../functions/doctor/cli';
import { FINDINGS_COMMAND, FINDINGS_USAGE } from '../functions/waste/cli';
import { BLOODLINE_COMMAND, BLOODLINE_USAGE } from '../functions/workloads/cli';
import { FLAGS_COMMAND, FLAGS_USAGE } from '../functions/enforcement/cli';
import { LEDGER_SHOW_COMMAND, LEDGER_SHOW_USAGE } from '../functions/ledger/show';
import { LEDGER_VERIFY_COMMAND, LEDGER_VERIFY_USAGE } from '../functions/ledger/cli';
import { POOLS_COMMAND, POOLS_USAGE } from '../functions/interruption/cli';
import { STATUS_COMMAND, STATUS_USAGE } from '../functions/status/cli';
import { SWAP_BATCH_COMMAND, SWAP_START_COMMAND, SWAP_STATUS_COMMAND, SWAP_USAGE } from '../functions/swap/cli';
import { type CliResult, CliUsageError, USAGE_EXIT, quiet, register, usageErrorOf } from '../functions/shared/cli';

/**
 * `fleetwarden`: one binary, one command tree (commander), each command parsed, validated, run
 * and formatted in its own module. stdout carries the result (text or --json), stderr errors and
 * progress. Exit status: 0 ok, 1 failed (each command says what failing is), 2 bad usage.
 */
const COMMANDS = [
  register(STATUS_COMMAND),
  register(POOLS_COMMAND),
  register(FLAGS_COMMAND),
  register(FINDINGS_COMMAND),
  register(SWAP_START_COMMAND),
  register(SWAP_BATCH_COMMAND),
  register(SWAP_STATUS_COMMAND),
  register(LEDGER_SHOW_COMMAND),
  register(LEDGER_VERIFY_COMMAND),
  register(DOCTOR_COMMAND),
  register(BLOODLINE_COMMAND),
];

/** The usage printed with a bad-usage error, by the command's first word. */
const USAGE: Record<string, string> = {
  status: STATUS_USAGE,
  pools: POOLS_USAGE,
  flags: FLAGS_USAGE,
  findings: FINDINGS_USAGE,
  swap: SWAP_USAGE,
  doctor: DOCTOR_USAGE,
  bloodline: BLOODLINE_USAGE,
  ledger: `${LEDGER_SHOW_USAGE}\n${LEDGER_VERIFY_USAGE.split('\n\n')[0]!.replace(/^usage: /, '       ')}\n\nExit status: show 0 (also when none match), verify 0 verified and 1 tampered; 2 bad usage.`,
};
const usageFor = (argv: string[]) =>
  `${USAGE[argv[0] ?? ''] ?? `usage: fleetwarden <command> [flags]\n\ncommands: ${Object.keys(USAGE).join(', ')}`}\n\nRun fleetwarden ${USAGE[argv[0] ?? ''] ? `${argv[0]} ` : ''}--help for every flag.`;

/** The command tree; `done` receives the result of the command that ran. */
function program(done: (result: CliResult) => void): Command {
  const root = quiet(new Command('fleetwarden'))
    .description('Fleetwarden operator CLI: what the fleet guardian is doing, and on-demand swaps.')
    .addHelpText('after', '\nEvery command takes --region, --profile (as the AWS CLI) and --json.\nExit status: 0 ok, 1 failed (as each command defines it), 2 bad usage.')
    .allowExcessArguments(true);
  const groups = new Map<string, Command>([['', root]]);
  for (const command of COMMANDS) {
    let parent = root;
    for (const [depth, word] of command.path.slice(0, -1).entries()) {
      const key = command.path.slice(0, depth + 1).join(' ');
      let group = groups.get(key);
      if (!group) {
        group = quiet(new Command(word)).description(`${word} commands`).allowExcessArguments(true);
        group.action(unknownCommand(group));
        parent.addCommand(group);
        groups.set(key, group);
      }
      parent = group;
    }
    parent.addCommand(command.commander(done));
  }
  root.action(unknownCommand(root));
  return root;
}

/** A word that names no command (or none at all) under this one. */
function unknownCommand(cmd: Command) {
  return () => {
    const words = [...(cmd.parent ? [cmd.name()] : []), ...cmd.args.slice(0, cmd.parent ? 1 : 2)];
    const known = cmd.commands.map((c) => c.name()).join(', ');
    throw new CliUsageError(cmd.args.length ? `unknown command "${words.join(' ')}" (commands: ${known})` : `name a${cmd.parent ? ` ${cmd.name()}` : ''} command: ${known}`);
  };
}

async function main(argv: string[]): Promise<number> {
  let result: CliResult | undefined;
  try {
    await program((r) => (result = r)).parseAsync(argv, { from: 'user' });
  } catch (raw) {
    const error = usageErrorOf(raw);
    if (error instanceof CommanderError) return error.exitCode; // --help, shown on stdout
    if (error instanceof CliUsageError) {
      console.error(`fleetwarden: ${error.message}\n\n${usageFor(argv)}`);
      return USAGE_EXIT;
    }
    console.error(`fleetwarden: ${(error as Error).name}: ${(error as Error).message}`);
    return 1;
  }
  if (!result) return 0;
  console.log(result.text);
  return result.code;
}

// Exit once the output is written: the SDK's keep-alive sockets would hold the process open.
main(process.argv.slice(2)).then((code) => process.stdout.write('', () => process.exit(code)));
