import { DynamoLedger } from '../ledger/store';
import { ConfiguredAccounts } from '../shared/account-directory';
import { AccountSessions } from '../shared/accounts';
import { documentClient } from '../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../shared/bus';
import { SnsNotifier } from '../shared/notifications';
import type { WasteEnv } from './env';
import { DynamoFindingStore } from './finding-store';
import { Ec2Waste } from './resources';
import type { WasteDeps } from './scanner';

/** The scanner's adapters, as the waste steps function builds them from its environment. */
export function wasteDeps(env: WasteEnv, actor: string): WasteDeps {
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  return {
    resources: new Ec2Waste(new AccountSessions(env.HOME_ACCOUNT_ID, env.MEMBER_ROLE_NAME)),
    findings: new DynamoFindingStore(documentClient(), env.FINDINGS_TABLE_NAME, ledger),
    ledger,
    accounts: new ConfiguredAccounts(env.ACCOUNT_ENVIRONMENTS, env.ORGANIZATIONS_ENVIRONMENT_TAG),
    policy: env.WASTE_POLICY,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.waste),
    notifier: new SnsNotifier(env.NOTIFICATION_TOPIC_ARN),
    clock: () => new Date(),
    actor,
    dryRun: env.FLEETWARDEN_DRY_RUN,
  };
}
