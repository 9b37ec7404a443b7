import { ListTagsForResourceCommand, OrganizationsClient } from '@aws-sdk/client-organizations';
import { awsClient } from './aws';
import { type EnvironmentClass, EnvironmentClassSchema } from './environments';

/** Which environment class an account belongs to: decides what its interruptions do to a pool. */
export interface AccountDirectory {
  environmentOf(account: string): Promise<EnvironmentClass | undefined>;
}

/**
 * The config's accounts first; for an account not listed there, optionally the value of an
 * Organizations account tag (e.g. `fleetwarden:environment=PROD`). Reading account tags needs the
 * home account to be the organization's management account or a delegated administrator.
 * Tag answers are cached for a quarter of an hour per warm function.
 */
export class ConfiguredAccounts implements AccountDirectory {
  private readonly tagged = new Map<string, { value: EnvironmentClass | undefined; until: number }>();

  constructor(
    private readonly configured: Record<string, EnvironmentClass>,
    private readonly environmentTag?: string,
    private readonly clock: () => number = Date.now,
  ) {}

  async environmentOf(account: string): Promise<EnvironmentClass | undefined> {
    const known = this.configured[account];
    if (known || !this.environmentTag) return known;
    const cached = this.tagged.get(account);
    if (cached && cached.until > this.clock()) return cached.value;
    const value = await this.fromOrganizations(account, this.environmentTag);
    this.tagged.set(account, { value, until: this.clock() + 15 * 60_000 });
    return value;
  }

  private async fromOrganizations(account: string, tagKey: string): Promise<EnvironmentClass | undefined> {
    try {
      const out = await awsClient(OrganizationsClient).send(new ListTagsForResourceCommand({ ResourceId: account }));
      const tag = out.Tags?.find((t) => t.Key === tagKey)?.Value?.toUpperCase();
      const parsed = EnvironmentClassSchema.safeParse(tag);
      return parsed.success ? parsed.data : undefined;
    } catch (error) {
      // Not a member of the organization: unknown, like an account missing from the config.
      if ((error as Error).name === 'TargetNotFoundException' || (error as Error).name === 'AccountNotFoundException') return undefined;
      throw error;
    }
  }
}
