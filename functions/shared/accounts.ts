import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { type AwsClientOptions, awsClient } from './aws';

/** Renewed this long before the assumed role's credentials expire. */
const RENEW_BEFORE_MS = 60_000;

/** Credentials for a member account: assume Fleetwarden's member role there (home account: own role). */
export class AccountSessions {
  private readonly cache = new Map<string, { options: AwsClientOptions; expires: number }>();

  /**
   * `base`: whose credentials assume the role, and are used in the home account (the operator
   * CLI's `--profile`, or a role it assumed first); the SDK's defaults otherwise.
   */
  constructor(
    private readonly homeAccount: string,
    private readonly memberRoleName: string,
    private readonly base: Pick<AwsClientOptions, 'profile' | 'credentials'> = {},
  ) {}

  async options(account: string, region: string): Promise<AwsClientOptions> {
    if (account === this.homeAccount) return { ...this.base, region };
    const key = `${account}/${region}`;
    const cached = this.cache.get(key);
    if (cached && cached.expires > Date.now() + RENEW_BEFORE_MS) return cached.options;
    const out = await awsClient(STSClient, this.base).send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${account}:role/${this.memberRoleName}`, RoleSessionName: 'fleetwarden', DurationSeconds: 900 }),
    );
    const c = out.Credentials!;
    const options = { region, credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken } };
    this.cache.set(key, { options, expires: c.Expiration?.getTime() ?? Date.now() + 900_000 });
    return options;
  }
}
