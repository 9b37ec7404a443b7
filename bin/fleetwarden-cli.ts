#!/usr/bin/env -S npx tsx
import { CliUsageError, formatVerification, parseVerifyArgs, runVerify } from '../functions/ledger/cli';

const USAGE = `usage: fleetwarden ledger verify (--stack NAME | --table T --bucket B --signing-key ARN) [--chain fleet] [--region R] [--json]

Exit status: 0 verified, 1 tampered, 2 bad usage.`;

async function main(argv: string[]): Promise<number> {
  const [group, command, ...rest] = argv;
  if (group !== 'ledger' || command !== 'verify') {
    console.error(USAGE);
    return 2;
  }
  const report = await runVerify(parseVerifyArgs(rest));
  console.log(rest.includes('--json') ? JSON.stringify(report, null, 2) : formatVerification(report));
  return report.ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: Error) => {
    console.error(error instanceof CliUsageError ? `fleetwarden: ${error.message}\n\n${USAGE}` : `fleetwarden: ${error.name}: ${error.message}`);
    process.exit(error instanceof CliUsageError ? 2 : 1);
  },
);
