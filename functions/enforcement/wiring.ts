import { DynamoLedger } from '../ledger/store';
import { AccountSessions } from '../shared/accounts';
import { ConfiguredAccounts } from '../shared/account-directory';
import { documentClient } from '../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../shared/bus';
import { SnsNotifier } from '../shared/notifications';
import type { EnforcerDeps } from './enforcer';
import type { EnforcementEnv } from './env';
import { DynamoFlagStore } from './flag-store';
import { Ec2Instances } from './instances';

/** The enforcer's adapters, as both enforcement functions build them from their environment. */
export function enforcerDeps(env: EnforcementEnv, actor: string): EnforcerDeps {
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  return {
    instances: new Ec2Instances(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)),
    flags: new DynamoFlagStore(documentClient(), env.AUTHORIZATIONS_TABLE_NAME, ledger),
    ledger,
    accounts: new ConfiguredAccounts(env.ACCOUNT_ENVIRONMENTS, env.ORGANIZATIONS_ENVIRONMENT_TAG),
    policy: env.ENFORCEMENT_POLICY,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.enforcement),
    notifier: new SnsNotifier(env.NOTIFICATION_TOPIC_ARN),
    clock: () => new Date(),
    actor,
    dryRun: env.FLEETWARDEN_DRY_RUN,
  };
}
