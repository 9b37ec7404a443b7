import { CreateAccountCommand, CreateOrganizationCommand, DescribeCreateAccountStatusCommand, OrganizationsClient, TagResourceCommand } from '@aws-sdk/client-organizations';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfiguredAccounts } from '../../functions/shared/account-directory';
import { awsClient } from '../../functions/shared/aws';

let tagged: string;
let untagged: string;

async function createAccount(name: string): Promise<string> {
  const orgs = awsClient(OrganizationsClient);
  const created = await orgs.send(new CreateAccountCommand({ AccountName: name, Email: `${name}@example.com` }));
  const status = await orgs.send(new DescribeCreateAccountStatusCommand({ CreateAccountRequestId: created.CreateAccountStatus!.Id! }));
  return status.CreateAccountStatus!.AccountId!;
}

beforeAll(async () => {
  await awsClient(OrganizationsClient).send(new CreateOrganizationCommand({ FeatureSet: 'ALL' })).catch((e: Error) => {
    if (e.name !== 'AlreadyInOrganizationException') throw e;
  });
  tagged = await createAccount(`payments-${Date.now()}`);
  untagged = await createAccount(`sandbox-${Date.now()}`);
  await awsClient(OrganizationsClient).send(new TagResourceCommand({ ResourceId: tagged, Tags: [{ Key: 'fleetwarden:environment', Value: 'prod' }] }));
});

describe('account environment classes (moto Organizations)', () => {
  it('takes the config first, whatever the tags say', async () => {
    const directory = new ConfiguredAccounts({ [tagged]: 'LAB' }, 'fleetwarden:environment');
    expect(await directory.environmentOf(tagged)).toBe('LAB');
  });

  it('reads an unlisted account from its Organizations tag when enabled', async () => {
    expect(await new ConfiguredAccounts({}, 'fleetwarden:environment').environmentOf(tagged)).toBe('PROD');
  });

  it('leaves an account unknown when the tag is missing, the account is outside the organization, or tags are off', async () => {
    const directory = new ConfiguredAccounts({}, 'fleetwarden:environment');
    expect(await directory.environmentOf(untagged)).toBeUndefined();
    expect(await directory.environmentOf('999999999999')).toBeUndefined();
    expect(await new ConfiguredAccounts({}).environmentOf(tagged)).toBeUndefined();
  });

  it('caches a tag answer for a quarter of an hour', async () => {
    let now = 0;
    const directory = new ConfiguredAccounts({}, 'fleetwarden:environment', () => now);
    expect(await directory.environmentOf(tagged)).toBe('PROD');
    await awsClient(OrganizationsClient).send(new TagResourceCommand({ ResourceId: tagged, Tags: [{ Key: 'fleetwarden:environment', Value: 'LAB' }] }));
    expect(await directory.environmentOf(tagged)).toBe('PROD');
    now = 15 * 60_000 + 1;
    expect(await directory.environmentOf(tagged)).toBe('LAB');
  });
});
