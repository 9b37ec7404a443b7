import * as z from 'zod';
import { ENFORCEMENT_EVENTS } from '../enforcement/events';
import { HANDLED_EVENTS } from '../interruption/events';
import { ClusterConfigSchema } from '../kubernetes/cluster-config';

/**
 * `fleetwarden doctor` as data: what a deployment should look like (read from the home stack's
 * outputs), and the pure rules that say whether what AWS answered is right, and if not, what to
 * do about it. The use case (doctor.ts) asks; nothing here does I/O.
 */

const REGION = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d$/);
const ACCOUNT = z.string().regex(/^\d{12}$/);

/**
 * The home stack's `MemberAccess` output (lib/fleetwarden-stack.ts): where the member stack must
 * be deployed, which bus it forwards to, and what the home bus must accept.
 * @example {"homeAccount":"123456789012","homeRegion":"us-east-1","homeBusArn":"arn:aws:events:us-east-1:123456789012:event-bus/default","memberRoleName":"fleetwarden-member","regions":["us-east-1","eu-west-1"],"accounts":[{"id":"111111111111","name":"payments-prod"},{"id":"222222222222","name":"payments-staging","regions":["eu-west-1"]}]}
 */
export const MemberAccessSchema = z.object({
  homeAccount: ACCOUNT,
  homeRegion: REGION,
  homeBusArn: z.string().startsWith('arn:'),
  memberRoleName: z.string().min(1),
  organizationId: z.string().optional(),
  regions: z.array(REGION).min(1),
  accounts: z.array(z.object({ id: ACCOUNT, name: z.string(), regions: z.array(REGION).optional() })),
});
export type MemberAccess = z.infer<typeof MemberAccessSchema>;

/** The `KubernetesClusters` output: the clusters of `kubernetes.clusters`, as configured. */
export const KubernetesClustersSchema = z.array(ClusterConfigSchema);

/** One line of the report: what was checked where, and when it is wrong, why and what fixes it. */
export interface CheckResult {
  /** `home us-east-1`, `222222222222 eu-west-1`, `cluster prod-eks`. */
  target: string;
  check: string;
  ok: boolean;
  /** What is wrong (or, when ok, what was found, if worth saying). */
  detail?: string;
  /** One line an operator can act on. */
  fix?: string;
}

export interface DoctorReport {
  stack: string;
  region: string;
  at: string;
  checks: CheckResult[];
  /** How many checks failed; the exit status is 1 when any did. */
  failed: number;
}

export const README_MEMBER_ACCOUNTS = 'see README, Member accounts';

// ---- home resources ---------------------------------------------------------------------------

export type HomeResourceKind = 'table' | 'queue' | 'state machine' | 'bus' | 'bucket' | 'key';

export interface HomeResource {
  kind: HomeResourceKind;
  /** The stack output that names it. */
  output: string;
  id: string;
}

const KIND_BY_OUTPUT: [RegExp, HomeResourceKind][] = [
  [/TableName$/, 'table'],
  [/QueueUrl$/, 'queue'],
  [/StateMachineArn$/, 'state machine'],
  [/^EventBusName$/, 'bus'],
  [/^ArchiveBucketName$/, 'bucket'],
  [/^DigestSigningKeyArn$/, 'key'],
];

/** Every output that names a table, queue, state machine, the bus, the archive bucket or the signing key, in output order. */
export function homeResources(outputs: Record<string, string>): HomeResource[] {
  return Object.entries(outputs).flatMap(([output, id]) => {
    const kind = KIND_BY_OUTPUT.find(([pattern]) => pattern.test(output))?.[1];
    return kind ? [{ kind, output, id }] : [];
  });
}

/** The last part of a queue URL or ARN, for a readable line. */
export const shortName = (id: string): string => id.split(/[/:]/).at(-1) ?? id;

const NOT_FOUND = new Set([
  'ResourceNotFoundException',
  'QueueDoesNotExist',
  'AWS.SimpleQueueService.NonExistentQueue',
  'StateMachineDoesNotExist',
  'NotFound',
  'NoSuchBucket',
  'NotFoundException',
]);
const DENIED = new Set(['AccessDenied', 'AccessDeniedException', 'UnauthorizedOperation', 'Forbidden', 'AuthorizationError', 'InvalidClientTokenId', 'ExpiredToken']);

export const isNotFound = (error: unknown): boolean => NOT_FOUND.has((error as Error)?.name);
export const isDenied = (error: unknown): boolean => DENIED.has((error as Error)?.name) || (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode === 403;

const describe = (error: unknown) => `${(error as Error)?.name ?? 'Error'}: ${(error as Error)?.message || 'no message'}`;

/** What a failed read of a home resource means. */
export function homeResourceProblem(resource: HomeResource, stack: string, error: unknown): Pick<CheckResult, 'detail' | 'fix'> {
  if (isNotFound(error)) return { detail: `${resource.kind} ${shortName(resource.id)} does not exist`, fix: `redeploy the home stack (cdk deploy ${stack}) to recreate ${resource.output}; if it was deleted by hand, its data is gone` };
  if (isDenied(error)) return { detail: describe(error), fix: `let the identity running doctor describe ${resource.id} (or run doctor as an administrator of the home account)` };
  return { detail: describe(error), fix: 'retry; if it persists, check the region (--region) and the AWS service health' };
}

/** A signing key that exists but cannot sign. */
export function keyStateProblem(state: string | undefined): Pick<CheckResult, 'detail' | 'fix'> | undefined {
  if (!state || state === 'Enabled') return undefined;
  return { detail: `key is ${state}`, fix: state === 'PendingDeletion' ? 'cancel the key deletion (aws kms cancel-key-deletion), then enable it' : 'enable the key (aws kms enable-key)' };
}

// ---- member accounts ----------------------------------------------------------------------------

/** An account and region where the member stack applies, and what of it applies there. */
export interface MemberTarget {
  account: string;
  name: string;
  region: string;
  /** The member role exists in every account but the home account (it is created in the home region, IAM is global). */
  role: boolean;
}

export const targetName = (t: { account: string; region: string }): string => `${t.account} ${t.region}`;

/**
 * Every configured account × region the member stack's forwarding applies to (lib/member-stack.ts
 * ForwardEvents: everywhere but the home account's home region), each account with its own
 * regions or else all of them; the member role everywhere but the home account (CreateMemberRole).
 */
export function memberTargets(access: MemberAccess): MemberTarget[] {
  return access.accounts.flatMap((account) =>
    (account.regions ?? access.regions)
      .filter((region) => !(account.id === access.homeAccount && region === access.homeRegion))
      .map((region) => ({ account: account.id, name: account.name, region, role: account.id !== access.homeAccount })),
  );
}

const deployHint = (access: MemberAccess, t: { account: string }, region: string) =>
  `deploy FleetwardenMember to ${t.account} in ${region} with HomeAccountId=${access.homeAccount} (${README_MEMBER_ACCOUNTS})`;

/** AssumeRole of the member role failed: not deployed, or the caller is not one it trusts. */
export function assumeRoleProblem(access: MemberAccess, t: MemberTarget, roleName: string, error: unknown): Pick<CheckResult, 'detail' | 'fix'> {
  const fix = isDenied(error)
    ? `${deployHint(access, t, access.homeRegion)}; if it is deployed, the role trusts only Fleetwarden's home roles: let yourself assume the stack's doctor role (output DoctorRoleArn, sts:AssumeRole in your own IAM policy), or pass --member-role with a role you may assume in every member account`
    : 'retry; if it persists, check STS in the home region and the AWS service health';
  return { detail: `cannot assume ${roleName}: ${describe(error)}`, fix };
}

/** The pattern of one forwarding rule, as the member stack writes it (source, detail-type, detail). */
export interface ExpectedRule {
  /** The event's detail-type, which names the rule in the report. */
  detailType: string;
  pattern: Record<string, unknown>;
}

/**
 * The forwarding rules the member stack defines: one per event a home handler understands, the
 * same list lib/member-stack.ts FORWARDED_EVENTS builds (the interruption events, then the
 * enforcement events; test/unit/doctor.test.ts holds the two equal), so that the CLI does not load the CDK.
 */
export const EXPECTED_FORWARDING: readonly ExpectedRule[] = [...HANDLED_EVENTS, ...ENFORCEMENT_EVENTS].map((event) => ({
  detailType: event.detailType,
  pattern: Object.fromEntries(Object.entries(event.pattern).filter(([key, value]) => ['source', 'detail-type', 'detail'].includes(key) && value !== undefined)),
}));

/** A rule found on a member account's default bus. */
export interface DeployedRule {
  name: string;
  state?: string;
  eventPattern?: string;
  /** Target ARNs (read only for rules whose pattern is one of the expected). */
  targets?: string[];
}

/** Deep equality of two JSON values, key order aside. */
export function sameJson(a: unknown, b: unknown): boolean {
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return sameJson(ka, kb) && ka.every((k) => sameJson((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

const parsePattern = (text: string | undefined): unknown => {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
};

/** The deployed rule that carries this pattern, if any. */
export const ruleFor = (expected: ExpectedRule, rules: DeployedRule[]): DeployedRule | undefined => rules.find((r) => sameJson(parsePattern(r.eventPattern), expected.pattern));

/** What is wrong with one expected rule: absent, disabled, or not sending to the home bus. */
export type RuleProblem = { detailType: string; problem: 'missing' } | { detailType: string; problem: 'disabled'; rule: string } | { detailType: string; problem: 'wrong target'; rule: string; targets: string[] };

export function forwardingProblems(rules: DeployedRule[], homeBusArn: string, expected: readonly ExpectedRule[] = EXPECTED_FORWARDING): RuleProblem[] {
  return expected.flatMap((e): RuleProblem[] => {
    const rule = ruleFor(e, rules);
    if (!rule) return [{ detailType: e.detailType, problem: 'missing' }];
    if (rule.state && rule.state !== 'ENABLED') return [{ detailType: e.detailType, problem: 'disabled', rule: rule.name }];
    if (!(rule.targets ?? []).includes(homeBusArn)) return [{ detailType: e.detailType, problem: 'wrong target', rule: rule.name, targets: rule.targets ?? [] }];
    return [];
  });
}

/** The forwarding check's line for one account and region. */
export function forwardingResult(access: MemberAccess, t: MemberTarget, problems: RuleProblem[], expected = EXPECTED_FORWARDING.length): CheckResult {
  const check = `forwarding rules (${expected})`;
  if (!problems.length) return { target: targetName(t), check, ok: true, detail: `all forward to ${access.homeBusArn}` };
  const missing = problems.filter((p) => p.problem === 'missing');
  if (missing.length === expected) return { target: targetName(t), check, ok: false, detail: 'no forwarding rule on the default bus: the member stack is not deployed here', fix: deployHint(access, t, t.region) };
  const said = problems.map((p) => (p.problem === 'missing' ? `${p.detailType}: missing` : p.problem === 'disabled' ? `${p.detailType}: rule ${p.rule} is disabled` : `${p.detailType}: rule ${p.rule} sends to ${p.targets.join(', ') || 'nothing'}`));
  const wrongHome = problems.some((p) => p.problem === 'wrong target');
  return {
    target: targetName(t),
    check,
    ok: false,
    detail: said.join('; '),
    fix: `update FleetwardenMember in ${t.account} ${t.region}${wrongHome ? ` with HomeAccountId=${access.homeAccount}` : ''} (cdk deploy, or update the StackSet instance; ${README_MEMBER_ACCOUNTS})`,
  };
}

// ---- the home bus policy ------------------------------------------------------------------------

/** Who a bus's resource policy lets put events: accounts by id, organizations by id, or anyone. */
export interface BusAcceptance {
  accounts: Set<string>;
  organizations: Set<string>;
  anyone: boolean;
}

const list = (value: unknown): unknown[] => (Array.isArray(value) ? value : value === undefined ? [] : [value]);

/** An account id from a principal: `111111111111`, `arn:aws:iam::111111111111:root`. */
const accountOf = (principal: unknown): string | undefined => (typeof principal === 'string' ? (/^(\d{12})$/.exec(principal) ?? /^arn:[^:]+:iam::(\d{12}):root$/.exec(principal))?.[1] : undefined);

/**
 * Reads the Allow statements of a bus policy that grant events:PutEvents (or events:*): the
 * accounts they name, the organizations their `aws:PrincipalOrgID` condition names, and whether
 * one lets anyone in unconditionally. An absent or unreadable policy accepts nobody.
 */
export function readBusPolicy(policy: string | undefined): BusAcceptance {
  const accepted: BusAcceptance = { accounts: new Set(), organizations: new Set(), anyone: false };
  let doc: { Statement?: unknown };
  try {
    doc = policy ? (JSON.parse(policy) as { Statement?: unknown }) : {};
  } catch {
    return accepted;
  }
  for (const raw of list(doc.Statement)) {
    const s = raw as { Effect?: string; Action?: unknown; Principal?: unknown; Condition?: Record<string, Record<string, unknown>> };
    if (s.Effect !== 'Allow' || !list(s.Action).some((a) => a === 'events:PutEvents' || a === 'events:*' || a === '*')) continue;
    const principals = s.Principal === '*' ? ['*'] : list((s.Principal as { AWS?: unknown } | undefined)?.AWS);
    const orgIds = Object.entries(s.Condition ?? {})
      .filter(([operator]) => operator === 'StringEquals' || operator === 'StringLike')
      .flatMap(([, keys]) => Object.entries(keys).filter(([key]) => key.toLowerCase() === 'aws:principalorgid').flatMap(([, v]) => list(v)))
      .map(String);
    if (principals.includes('*')) {
      if (orgIds.length) orgIds.forEach((o) => accepted.organizations.add(o));
      else if (!s.Condition) accepted.anyone = true;
      continue;
    }
    for (const p of principals) {
      const account = accountOf(p);
      if (account) accepted.accounts.add(account);
    }
  }
  return accepted;
}

/**
 * The bus check's lines: with an organization configured, one line for it; otherwise one per
 * account that forwards from another account (the home account's own regions need no permission).
 */
export function busPolicyResults(access: MemberAccess, policy: string | undefined, stack: string): CheckResult[] {
  const accepted = readBusPolicy(policy);
  const target = `home bus ${access.homeRegion}`;
  const fix = `redeploy the home stack (cdk deploy ${stack}): it writes one statement per account in accounts${access.organizationId ? ', or one for organizations.id' : ''} on the default bus`;
  if (access.organizationId) {
    const ok = accepted.anyone || accepted.organizations.has(access.organizationId);
    return [{ target, check: `accepts organization ${access.organizationId}`, ok, ...(ok ? {} : { detail: 'no statement allows events:PutEvents conditioned on this aws:PrincipalOrgID', fix }) }];
  }
  return access.accounts
    .filter((a) => a.id !== access.homeAccount)
    .map((a) => {
      const ok = accepted.anyone || accepted.accounts.has(a.id);
      return { target, check: `accepts ${a.id} (${a.name})`, ok, ...(ok ? {} : { detail: `the default bus policy does not allow ${a.id} to put events`, fix }) };
    });
}

// ---- Kubernetes -----------------------------------------------------------------------------------

/** What a failed authenticated request to a cluster means, by the error the connector and adapter name. */
export function clusterProblem(cluster: string, error: unknown): Pick<CheckResult, 'detail' | 'fix'> {
  const name = (error as Error)?.name ?? '';
  if (name === 'Terminal.KubernetesForbidden') return { detail: describe(error), fix: `apply manifests/fleetwarden-rbac.yaml to ${cluster} and bind it to Fleetwarden's identity (see README, Kubernetes nodes)` };
  if (name === 'Terminal.UnknownCluster' || isNotFound(error)) return { detail: describe(error), fix: `check kubernetes.clusters (name, region, accountId, accessRoleArn) against the EKS cluster ${cluster}` };
  if (/401|Unauthorized/.test(describe(error))) return { detail: describe(error), fix: `map Fleetwarden's identity in ${cluster} (an EKS access entry or aws-auth) (see README, Kubernetes nodes)` };
  if (isDenied(error)) return { detail: describe(error), fix: `let the identity running doctor (or the accessRoleArn) call eks:DescribeCluster on ${cluster}` };
  return { detail: describe(error), fix: `check that the API server of ${cluster} is reachable from where doctor runs` };
}

/** The report: every check in the order run (home, bus, member accounts and regions, clusters) and how many failed. */
export function report(stack: string, region: string, at: Date, checks: CheckResult[]): DoctorReport {
  return { stack, region, at: at.toISOString(), checks, failed: checks.filter((c) => !c.ok).length };
}
