import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type EnforcementPolicy, EnforcementPolicySchema, IN_SCOPE_STATES, type ObservedInstance, authorize, inScope, isProtected } from '../../functions/enforcement/policy';
import { GROUP_NAME_TAG } from '../../functions/shared/groups';

/** The product defaults (config `policies.enforcement`), written out. */
const policy: EnforcementPolicy = {
  graceHours: 24,
  actions: { PROD: 'none', STAGING: 'none', LAB: 'terminate' },
  protectedTag: 'fleetwarden:protected',
  authorizedWhen: { tags: [{ key: 'ManagedBy', value: 'fleetwarden' }, { key: 'eks:cluster-name' }], autoScalingGroup: true },
  allow: { tags: [], amis: [], accounts: [] },
  circuitBreaker: { maxActionsPerRun: 10, maxPercentOfFleet: 5 },
};

const LAB_ACCOUNT = '333333333333';
const instance = (over: Partial<ObservedInstance> = {}): ObservedInstance => ({
  instanceId: 'i-0c1d2e3f4a5b60718',
  account: LAB_ACCOUNT,
  region: 'us-east-1',
  state: 'running',
  imageId: 'ami-12345678',
  launchTime: new Date('2026-12-03T09:14:58Z'),
  tags: { Name: 'scratch' },
  ...over,
});
const withPolicy = (over: Partial<EnforcementPolicy>): EnforcementPolicy => ({ ...policy, ...over });

const DEFAULT_REASON = 'none of tag ManagedBy=fleetwarden, tag eks:cluster-name, an Auto Scaling group; not allow-listed';

describe('the enforcement policy literal', () => {
  it('is the product default shape (EnforcementPolicySchema accepts it as written)', () => {
    expect(EnforcementPolicySchema.parse(policy)).toEqual(policy);
  });
});

describe('authorize: any one rule authorizes an instance, and says which', () => {
  it('authorizes an instance tagged ManagedBy=fleetwarden, by that tag', () => {
    expect(authorize(instance({ tags: { ManagedBy: 'fleetwarden' } }), policy)).toEqual({ authorized: true, by: 'tag ManagedBy=fleetwarden' });
  });

  it('does not authorize an instance whose ManagedBy tag has another value, differs in case, or is empty (the value must match exactly)', () => {
    for (const value of ['terraform', 'Fleetwarden', 'fleetwarden ', ' fleetwarden', '']) {
      expect(authorize(instance({ tags: { ManagedBy: value } }), policy), value).toEqual({ authorized: false, reason: DEFAULT_REASON });
    }
  });

  it('does not authorize a tag whose key differs in case from the rule (tag keys are case sensitive)', () => {
    expect(authorize(instance({ tags: { managedby: 'fleetwarden', 'EKS:cluster-name': 'prod' } }), policy)).toMatchObject({ authorized: false });
  });

  it('authorizes an instance with the eks:cluster-name tag whatever its value, even empty (the rule names no value)', () => {
    for (const value of ['prod-eks', '', 'anything at all']) {
      expect(authorize(instance({ tags: { 'eks:cluster-name': value } }), policy), value).toEqual({ authorized: true, by: 'tag eks:cluster-name' });
    }
  });

  it('names the first rule that matches when several do (authorizing tags in the order configured)', () => {
    expect(authorize(instance({ tags: { 'eks:cluster-name': 'prod-eks', ManagedBy: 'fleetwarden', [GROUP_NAME_TAG]: 'web' } }), policy)).toEqual({ authorized: true, by: 'tag ManagedBy=fleetwarden' });
  });

  it('authorizes a member of an Auto Scaling group (its aws:autoscaling:groupName tag) when autoScalingGroup is true, naming the group', () => {
    expect(authorize(instance({ tags: { [GROUP_NAME_TAG]: 'web-asg' } }), policy)).toEqual({ authorized: true, by: 'Auto Scaling group web-asg' });
  });

  it('does not authorize an Auto Scaling group member when autoScalingGroup is false, and then leaves the group out of the reason', () => {
    const noGroups = withPolicy({ authorizedWhen: { ...policy.authorizedWhen, autoScalingGroup: false } });
    expect(authorize(instance({ tags: { [GROUP_NAME_TAG]: 'web-asg' } }), noGroups)).toEqual({
      authorized: false,
      reason: 'none of tag ManagedBy=fleetwarden, tag eks:cluster-name; not allow-listed',
    });
  });

  it('authorizes an allow-listed tag, with or without a value, and says it was allow-listed', () => {
    const allowTeam = withPolicy({ allow: { ...policy.allow, tags: [{ key: 'team', value: 'data' }, { key: 'sandbox' }] } });
    expect(authorize(instance({ tags: { team: 'data' } }), allowTeam)).toEqual({ authorized: true, by: 'allow-listed tag team=data' });
    expect(authorize(instance({ tags: { sandbox: 'yes' } }), allowTeam)).toEqual({ authorized: true, by: 'allow-listed tag sandbox' });
    expect(authorize(instance({ tags: { team: 'web' } }), allowTeam)).toEqual({ authorized: false, reason: DEFAULT_REASON });
  });

  it('authorizes an instance of an allow-listed AMI, and not one without an AMI id', () => {
    const allowAmi = withPolicy({ allow: { ...policy.allow, amis: ['ami-12345678'] } });
    expect(authorize(instance({ imageId: 'ami-12345678' }), allowAmi)).toEqual({ authorized: true, by: 'allow-listed AMI ami-12345678' });
    expect(authorize(instance({ imageId: 'ami-87654321' }), allowAmi)).toMatchObject({ authorized: false });
    expect(authorize(instance({ imageId: undefined }), allowAmi)).toMatchObject({ authorized: false });
  });

  it('authorizes every instance of an allow-listed account, and none of another account', () => {
    const allowAccount = withPolicy({ allow: { ...policy.allow, accounts: [LAB_ACCOUNT] } });
    expect(authorize(instance(), allowAccount)).toEqual({ authorized: true, by: `allow-listed account ${LAB_ACCOUNT}` });
    expect(authorize(instance({ account: '444444444444' }), allowAccount)).toMatchObject({ authorized: false });
  });

  it('says, when unauthorized, which rules it wanted: every authorizing tag and the Auto Scaling group', () => {
    expect(authorize(instance(), policy)).toEqual({ authorized: false, reason: DEFAULT_REASON });
  });

  it('says no rule matches when the policy has no authorizing rule at all', () => {
    const none = withPolicy({ authorizedWhen: { tags: [], autoScalingGroup: false } });
    expect(authorize(instance({ tags: { ManagedBy: 'fleetwarden' } }), none)).toEqual({ authorized: false, reason: 'no authorization rule matches' });
  });

  it('is unauthorized, with the same reason, for any tags that carry none of the authorizing keys (property)', () => {
    const authorizingKeys = new Set(['ManagedBy', 'eks:cluster-name', GROUP_NAME_TAG]);
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 20 }).filter((k) => !authorizingKeys.has(k)), fc.string({ maxLength: 20 })), (tags) => {
        // Own keys only, as DescribeInstances' tags are built (Object.fromEntries).
        const observed = instance({ tags: Object.fromEntries(Object.entries(tags)) });
        expect(authorize(observed, policy)).toEqual({ authorized: false, reason: DEFAULT_REASON });
      }),
      { numRuns: 500 },
    );
  });

  // A tag lookup sees the instance's own tags only, never Object.prototype's members.
  it('does not authorize an instance that lacks an allow-listed tag named like an Object.prototype member ("constructor")', () => {
    const allowConstructor = withPolicy({ allow: { ...policy.allow, tags: [{ key: 'constructor' }] } });
    expect(authorize(instance({ tags: { Name: 'scratch' } }), allowConstructor)).toEqual({ authorized: false, reason: DEFAULT_REASON });
  });
});

describe('isProtected', () => {
  it('is true when the instance carries the protected tag, whatever its value (even empty)', () => {
    for (const value of ['true', 'false', '']) expect(isProtected(instance({ tags: { 'fleetwarden:protected': value } }), policy), value).toBe(true);
  });

  it('is false without the tag, or with a key that differs in case', () => {
    expect(isProtected(instance(), policy)).toBe(false);
    expect(isProtected(instance({ tags: { 'Fleetwarden:Protected': 'true' } }), policy)).toBe(false);
  });

  it('follows the configured protected tag', () => {
    expect(isProtected(instance({ tags: { keep: '1' } }), withPolicy({ protectedTag: 'keep' }))).toBe(true);
    expect(isProtected(instance({ tags: { 'fleetwarden:protected': '1' } }), withPolicy({ protectedTag: 'keep' }))).toBe(false);
  });

  it('is false for an instance without the tag when the protected tag is named like an Object.prototype member ("toString")', () => {
    expect(isProtected(instance({ tags: {} }), withPolicy({ protectedTag: 'toString' }))).toBe(false);
  });
});

describe('inScope: only pending and running instances cost money and are checked', () => {
  it('is true for pending and running', () => {
    expect([...IN_SCOPE_STATES]).toEqual(['pending', 'running']);
    for (const state of ['pending', 'running']) expect(inScope(instance({ state })), state).toBe(true);
  });

  it('is false for every other state, and for states that differ in case or spacing', () => {
    for (const state of ['stopping', 'stopped', 'shutting-down', 'terminated', 'unknown', '', 'Running', 'running ', 'PENDING']) {
      expect(inScope(instance({ state })), state).toBe(false);
    }
  });
});
