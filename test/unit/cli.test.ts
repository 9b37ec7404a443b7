import { describe, expect, it } from 'vitest';
import { CliUsageError, parseVerifyArgs } from '../../functions/ledger/cli';

describe('fleetwarden ledger verify arguments', () => {
  it('accepts a stack name and defaults the chain', () => {
    expect(parseVerifyArgs(['--stack', 'Fleetwarden'])).toEqual({ stack: 'Fleetwarden', chain: 'fleet', json: false });
  });

  it('accepts explicit resource names', () => {
    expect(parseVerifyArgs(['--table', 'ledger', '--bucket', 'my-archive', '--signing-key=arn:aws:kms:x', '--json'])).toMatchObject({ table: 'ledger', json: true });
  });

  it.each([
    [['--bucket', 'Not_A_Bucket', '--table', 't12', '--signing-key', 'k'], '--bucket: not an S3 bucket name'],
    [['--stack', 'S', '--chain', 'Fleet!'], '--chain: a chain name is lower-case letters, digits and dashes'],
    [['--table', 'ledger'], '--stack: give --stack, or all of --table, --bucket and --signing-key'],
    [['--stack', 'S', '--colour', 'red'], 'unknown flag: "colour"'],
    [['stack'], 'unexpected argument "stack"'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseVerifyArgs(argv)).toThrow(CliUsageError);
    expect(() => parseVerifyArgs(argv)).toThrow(message);
  });
});
