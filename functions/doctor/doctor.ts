import type { ClusterConfig } from '../kubernetes/cluster-config';
import { Progress, type ProgressOptions } from '../shared/progress';
import {
  type CheckResult,
  EXPECTED_FORWARDING,
  type HomeResource,
  type MemberAccess,
  type MemberTarget,
  assumeRoleProblem,
  busPolicyResults,
  clusterProblem,
  forwardingProblems,
  forwardingResult,
  homeResourceProblem,
  homeResources,
  isDenied,
  keyStateProblem,
  memberTargets,
  ruleFor,
  shortName,
  targetName,
} from './model';
import type { DoctorPort } from './port';

/** What doctor checks: the home stack's outputs, read once, and what they say of the deployment. */
export interface DoctorInput {
  stack: string;
  outputs: Record<string, string>;
  access: MemberAccess;
  clusters: ClusterConfig[];
  /** The role doctor assumes in member accounts: the member role, unless the operator names another (`--member-role`). */
  memberRole: string;
}

export interface DoctorOptions {
  /** Member accounts and regions checked at once. */
  concurrency?: number;
  /** A cluster that has not answered within this long fails its check. */
  clusterTimeoutMs?: number;
  progress?: ProgressOptions;
}

/** Runs `fn` over `items`, at most `limit` at a time, results in input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

const HOME_READ: Record<HomeResource['kind'], (port: DoctorPort, id: string) => Promise<{ state?: string } | void>> = {
  table: (port, id) => port.describeTable(id),
  queue: (port, id) => port.queueExists(id),
  'state machine': (port, id) => port.describeStateMachine(id),
  bus: (port, id) => port.describeBus(id).then(() => undefined),
  bucket: (port, id) => port.headBucket(id),
  key: (port, id) => port.describeKey(id),
};

/** Each table, queue, state machine, the bus, the archive bucket and the signing key the outputs name: there, and usable. */
async function checkHome(input: DoctorInput, port: DoctorPort): Promise<CheckResult[]> {
  const target = `home ${input.access.homeRegion}`;
  return mapLimit(homeResources(input.outputs), 8, async (resource): Promise<CheckResult> => {
    const check = `${resource.kind} ${resource.output}`;
    try {
      const found = await HOME_READ[resource.kind](port, resource.id);
      const problem = resource.kind === 'key' ? keyStateProblem(found?.state) : undefined;
      return problem ? { target, check, ok: false, ...problem } : { target, check, ok: true, detail: shortName(resource.id) };
    } catch (error) {
      return { target, check, ok: false, ...homeResourceProblem(resource, input.stack, error) };
    }
  });
}

/** The home account's default bus in the home region accepts every member account (or the organization). */
async function checkBusPolicy(input: DoctorInput, port: DoctorPort): Promise<CheckResult[]> {
  try {
    const { policy } = await port.describeBus('default');
    return busPolicyResults(input.access, policy, input.stack);
  } catch (error) {
    return [{ target: `home bus ${input.access.homeRegion}`, check: 'default bus policy', ok: false, ...homeResourceProblem({ kind: 'bus', output: 'the default bus', id: 'default' }, input.stack, error) }];
  }
}

/** One account and region: the role assumed, and every forwarding rule there, sending to the home bus. */
async function checkMember(input: DoctorInput, port: DoctorPort, t: MemberTarget): Promise<CheckResult[]> {
  const { access } = input;
  const target = targetName(t);
  const results: CheckResult[] = [];
  let session;
  try {
    session = await port.memberSession(t.account, t.region);
    if (t.role) results.push({ target, check: `assume role ${input.memberRole}`, ok: true });
  } catch (error) {
    return [{ target, check: `assume role ${input.memberRole}`, ok: false, ...assumeRoleProblem(access, t, input.memberRole, error) }];
  }
  try {
    const rules = await session.defaultBusRules((rule) => EXPECTED_FORWARDING.some((e) => ruleFor(e, [rule]) !== undefined));
    results.push(forwardingResult(access, t, forwardingProblems(rules, access.homeBusArn)));
  } catch (error) {
    const denied = isDenied(error);
    results.push({
      target,
      check: `forwarding rules (${EXPECTED_FORWARDING.length})`,
      ok: false,
      detail: `cannot list the default bus rules: ${(error as Error).name}: ${(error as Error).message}`,
      fix: denied
        ? `${t.role ? `the role ${input.memberRole} may not call events:ListRules and events:ListTargetsByRule: deploy the current FleetwardenMember (its member role may), or pass --member-role with a role that may (e.g. OrganizationAccountAccessRole)` : 'let the identity running doctor call events:ListRules and events:ListTargetsByRule'}`
        : 'retry; if it persists, check the AWS service health in that region',
    });
  }
  return results;
}

const withTimeout = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(Object.assign(new Error(`${what}: no answer within ${ms / 1000} s`), { name: 'Timeout' })), ms);
    timer.unref();
    promise.then(resolve, reject).finally(() => clearTimeout(timer));
  });

async function checkCluster(port: DoctorPort, cluster: ClusterConfig, timeoutMs: number): Promise<CheckResult> {
  const target = `cluster ${cluster.name}`;
  const check = `authenticated request (${cluster.region})`;
  try {
    await withTimeout(port.probeCluster(cluster.name), timeoutMs, `cluster ${cluster.name}`);
    return { target, check, ok: true };
  } catch (error) {
    return { target, check, ok: false, ...clusterProblem(cluster.name, error) };
  }
}

/**
 * Checks a deployment end to end: the home resources, the home bus policy, every member account
 * and region (bounded concurrency, progress on stderr past a second), every configured cluster.
 */
export async function runDoctor(input: DoctorInput, port: DoctorPort, options: DoctorOptions = {}): Promise<CheckResult[]> {
  const targets = memberTargets(input.access);
  const progress = new Progress(`checking ${targets.length} member account-regions`, 'checked', options.progress);
  try {
    const [home, bus, members, clusters] = await Promise.all([
      checkHome(input, port),
      checkBusPolicy(input, port),
      mapLimit(targets, options.concurrency ?? 8, async (t) => {
        const results = await checkMember(input, port, t);
        progress.add();
        return results;
      }),
      mapLimit(input.clusters, 4, (c) => checkCluster(port, c, options.clusterTimeoutMs ?? 15_000)),
    ]);
    return [...home, ...bus, ...members.flat(), ...clusters];
  } finally {
    progress.done();
  }
}
