import type { DeployedRule } from './model';

/**
 * What doctor asks AWS (and the clusters), as a small port: each read resolves when the resource
 * is there and throws the service's own error when it is not, so that the pure model can say what
 * the error means. adapter.ts implements it with the SDK.
 */
export interface DoctorPort {
  describeTable(name: string): Promise<void>;
  queueExists(url: string): Promise<void>;
  describeStateMachine(arn: string): Promise<void>;
  /** The bus, and its resource policy (JSON) if it has one. */
  describeBus(name: string): Promise<{ policy?: string }>;
  headBucket(name: string): Promise<void>;
  /** The key's state (`Enabled`, `Disabled`, `PendingDeletion`, …). */
  describeKey(arn: string): Promise<{ state?: string }>;
  /** A session in a member account and region: the member role assumed there (own credentials in the home account). */
  memberSession(account: string, region: string): Promise<MemberSession>;
  /** One cheap authenticated request to a configured cluster, through the connector the functions use. */
  probeCluster(name: string): Promise<void>;
}

export interface MemberSession {
  /** Every rule on the default bus, with the targets of those whose pattern `wantsTargets` accepts. */
  defaultBusRules(wantsTargets: (rule: DeployedRule) => boolean): Promise<DeployedRule[]>;
}
