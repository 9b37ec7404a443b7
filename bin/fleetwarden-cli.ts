#!/usr/bin/env -S npx tsx
import { FLAGS_USAGE, runFlagsCommand } from '../functions/enforcement/cli';
import { FINDINGS_USAGE, runFindingsCommand } from '../functions/waste/cli';
import { runSwapCommand, SWAP_USAGE } from '../functions/swap/cli';
import { formatVerification, parseVerifyArgs, runVerify } from '../functions/ledger/cli';
import { CliUsageError } from '../functions/shared/cli';

const LEDGER_USAGE = `usage: fleetwarden ledger verify (--stack NAME | --table T --bucket B --signing-key ARN) [--chain fleet] [--region R] [--json]

Exit status: 0 verified, 1 tampered, 2 bad usage.`;
const USAGE = `${LEDGER_USAGE}\n\n${SWAP_USAGE}\n\n${FLAGS_USAGE}\n\n${FINDINGS_USAGE}`;

/** A thin dispatcher: each command group parses, runs and formats in its own module. */
async function main(argv: string[]): Promise<{ text: string; code: number }> {
  const [group, command, ...rest] = argv;
  if (group === 'ledger' && command === 'verify') {
    const report = await runVerify(parseVerifyArgs(rest));
    return { text: rest.includes('--json') ? JSON.stringify(report, null, 2) : formatVerification(report), code: report.ok ? 0 : 1 };
  }
  if (group === 'swap') return runSwapCommand(command, rest);
  if (group === 'flags') return runFlagsCommand(argv.slice(1));
  if (group === 'findings') return runFindingsCommand(argv.slice(1));
  throw new CliUsageError(group ? `unknown command "${[group, command].filter(Boolean).join(' ')}"` : 'name a command');
}

function usageFor(argv: string[]): string {
  if (argv[0] === 'swap') return SWAP_USAGE;
  if (argv[0] === 'ledger') return LEDGER_USAGE;
  if (argv[0] === 'flags') return FLAGS_USAGE;
  if (argv[0] === 'findings') return FINDINGS_USAGE;
  return USAGE;
}

const argv = process.argv.slice(2);
main(argv).then(
  ({ text, code }) => {
    console.log(text);
    process.exit(code);
  },
  (error: Error) => {
    console.error(error instanceof CliUsageError ? `fleetwarden: ${error.message}\n\n${usageFor(argv)}` : `fleetwarden: ${error.name}: ${error.message}`);
    process.exit(error instanceof CliUsageError ? 2 : 1);
  },
);
