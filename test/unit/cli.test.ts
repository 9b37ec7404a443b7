import { describe, expect, it } from 'vitest';
import { parseFlagsArgs, timeLeft } from '../../functions/enforcement/cli';
import { parseVerifyArgs } from '../../functions/ledger/cli';
import { CliUsageError } from '../../functions/shared/cli';
import { parseFindingsArgs } from '../../functions/waste/cli';

describe('fleetwarden ledger verify arguments', () => {
  it('accepts a stack name and defaults the chain', () => {
    expect(parseVerifyArgs(['--stack', 'Fleetwarden'])).toEqual({ stack: 'Fleetwarden', chain: 'fleet', json: false });
  });

  it('accepts a downloaded archive and a public key file, offline', () => {
    expect(parseVerifyArgs(['--archive', './archive', '--public-key', 'signing-key.der'])).toMatchObject({ archive: './archive', 'public-key': 'signing-key.der', chain: 'fleet' });
  });

  it('accepts explicit resource names', () => {
    expect(parseVerifyArgs(['--table', 'ledger', '--bucket', 'my-archive', '--signing-key=arn:aws:kms:x', '--json'])).toMatchObject({ table: 'ledger', json: true });
  });

  it.each([
    [['--bucket', 'Not_A_Bucket', '--table', 't12', '--signing-key', 'k'], '--bucket: not an S3 bucket name'],
    [['--stack', 'S', '--chain', 'Fleet!'], '--chain: a chain name is lower-case letters, digits and dashes'],
    [['--table', 'ledger'], '--stack: give --stack, or all of --table, --bucket and --signing-key, or --archive and --public-key'],
    [['--archive', './archive'], '--archive: give --archive and --public-key together'],
    [['--archive', './archive', '--public-key', 'k.der', '--stack', 'S'], '--archive: an offline verification (--archive) reads nothing from AWS'],
    [['--stack', 'S', '--colour', 'red'], 'unknown flag: --colour'],
    [['stack'], 'unexpected argument "stack"'],
  ])('names the bad flag: %j', (argv, message) => {
    expect(() => parseVerifyArgs(argv)).toThrow(CliUsageError);
    expect(() => parseVerifyArgs(argv)).toThrow(message);
  });
});

describe('fleetwarden flags', () => {
  it('names the bad flag', () => {
    expect(() => parseFlagsArgs(['--table', 'flags', '--state', 'gone'])).toThrow(/^--state: /);
    expect(() => parseFlagsArgs(['--table', 'flags', '--account', '12'])).toThrow(/^--account: an account id is 12 digits/);
    expect(() => parseFlagsArgs(['--account', '123456789012'])).toThrow(/--stack: give --stack or --table/);
    expect(() => parseFlagsArgs(['--table', 'flags', '--colour', 'red'])).toThrow(/unknown flag: --colour/);
  });

  it('lists open flags by default and says how much grace is left', () => {
    expect(parseFlagsArgs(['--stack', 'Fleetwarden'])).toMatchObject({ state: 'open', json: false });
    const flag = { state: 'flagged', graceUntil: '2026-12-03T12:30:00.000Z' } as never;
    expect(timeLeft(flag, new Date('2026-12-03T09:10:00.000Z'))).toBe('3h 20m left');
    expect(timeLeft(flag, new Date('2026-12-03T13:00:00.000Z'))).toBe('grace over');
    expect(timeLeft({ state: 'acted', outcome: 'terminated', graceUntil: '' } as never, new Date())).toBe('terminated');
  });
});

describe('fleetwarden findings', () => {
  it('names the bad flag', () => {
    expect(() => parseFindingsArgs(['--table', 'findings', '--kind', 'instance'])).toThrow(/^--kind: /);
    expect(() => parseFindingsArgs(['--table', 'findings', '--account', 'x'])).toThrow(/^--account: an account id is 12 digits/);
    expect(() => parseFindingsArgs(['--kind', 'volume'])).toThrow(/--stack: give --stack or --table/);
    expect(parseFindingsArgs(['--stack', 'Fleetwarden'])).toMatchObject({ state: 'open', json: false });
  });
});
