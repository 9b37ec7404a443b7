import * as z from 'zod';
import { CircuitBreakerSchema } from '../shared/circuit-breaker';
import { EnvironmentClassSchema } from '../shared/environments';
import { GROUP_NAME_TAG } from '../shared/groups';
import { AccountIdSchema } from '../shared/ids';

const TagMatchSchema = z.strictObject({ key: z.string().min(1), value: z.string().optional() });
export type TagMatch = z.infer<typeof TagMatchSchema>;

/**
 * What the enforcer applies, as the CDK construct passes it from `policies.enforcement`.
 * @example {"graceHours":24,"actions":{"PROD":"none","STAGING":"none","LAB":"terminate"},"protectedTag":"fleetwarden:protected",
 *   "authorizedWhen":{"tags":[{"key":"ManagedBy","value":"fleetwarden"},{"key":"eks:cluster-name"}],"autoScalingGroup":true},
 *   "allow":{"tags":[],"amis":[],"accounts":[]},"circuitBreaker":{"maxActionsPerRun":10,"maxPercentOfFleet":5}}
 */
export const EnforcementPolicySchema = z.strictObject({
  graceHours: z.number().min(0),
  actions: z.record(EnvironmentClassSchema, z.enum(['none', 'stop', 'terminate'])),
  protectedTag: z.string().min(1),
  authorizedWhen: z.strictObject({ tags: z.array(TagMatchSchema), autoScalingGroup: z.boolean() }),
  allow: z.strictObject({ tags: z.array(TagMatchSchema), amis: z.array(z.string()), accounts: z.array(AccountIdSchema) }),
  circuitBreaker: CircuitBreakerSchema,
});
export type EnforcementPolicy = z.infer<typeof EnforcementPolicySchema>;
export type EnforcementAction = EnforcementPolicy['actions'][keyof EnforcementPolicy['actions']];

/** An instance as the enforcer sees it (from DescribeInstances, in its own account and region). */
export interface ObservedInstance {
  instanceId: string;
  account: string;
  region: string;
  state: string;
  imageId?: string;
  launchTime?: Date;
  tags: Record<string, string>;
}

export type Authorization = { authorized: true; by: string } | { authorized: false; reason: string };

const tagMatches = (tags: Record<string, string>, match: TagMatch) => Object.hasOwn(tags, match.key) && (match.value === undefined || tags[match.key] === match.value);
const describeTag = (match: TagMatch) => (match.value === undefined ? `tag ${match.key}` : `tag ${match.key}=${match.value}`);

/**
 * Pure: whether an instance is authorized, and by which rule. Any one rule suffices: an
 * authorizing tag, membership of an Auto Scaling group, an allow-listed tag, AMI or account.
 */
export function authorize(instance: ObservedInstance, policy: EnforcementPolicy): Authorization {
  for (const match of policy.authorizedWhen.tags) if (tagMatches(instance.tags, match)) return { authorized: true, by: describeTag(match) };
  if (policy.authorizedWhen.autoScalingGroup && instance.tags[GROUP_NAME_TAG]) return { authorized: true, by: `Auto Scaling group ${instance.tags[GROUP_NAME_TAG]}` };
  for (const match of policy.allow.tags) if (tagMatches(instance.tags, match)) return { authorized: true, by: `allow-listed ${describeTag(match)}` };
  if (instance.imageId && policy.allow.amis.includes(instance.imageId)) return { authorized: true, by: `allow-listed AMI ${instance.imageId}` };
  if (policy.allow.accounts.includes(instance.account)) return { authorized: true, by: `allow-listed account ${instance.account}` };
  const wanted = [...policy.authorizedWhen.tags.map(describeTag), ...(policy.authorizedWhen.autoScalingGroup ? ['an Auto Scaling group'] : [])];
  return { authorized: false, reason: wanted.length ? `none of ${wanted.join(', ')}; not allow-listed` : 'no authorization rule matches' };
}

export const isProtected = (instance: ObservedInstance, policy: EnforcementPolicy): boolean => Object.hasOwn(instance.tags, policy.protectedTag);

/** Instances in these states are in scope: they run (or are about to) and cost money. */
export const IN_SCOPE_STATES = ['pending', 'running'] as const;
export const inScope = (instance: ObservedInstance): boolean => (IN_SCOPE_STATES as readonly string[]).includes(instance.state);
