/**
 * Cloud Custodian (c7n, c7n-org) for the bench's side-by-side runs, report only, over the same
 * accounts and regions as Fleetwarden: by default the enforcement section's unauthorized-instance
 * rule (no actions: `mark-for-op` would write tags on every finding, which the Fleetwarden sweep,
 * a dry run, does not do either); any other set of policies with `policySet` (the waste section's).
 *
 * Custodian runs from its own project venv (.venv-c7n, pinned by c7n-requirements.txt, created
 * on first use and again whenever that file changes, as scripts/run.sh does for moto's .venv).
 * It reaches the emulator through the standard AWS endpoint override: AWS_ENDPOINT_URL (honored
 * by boto3 >= 1.28 for every service, STS included), with dummy credentials; no shared config or
 * credentials file of the machine is read.
 *
 * Child processes are always spawned asynchronously: the counting proxy they talk to answers
 * from this very Node process, so a synchronous spawn would deadlock (every call times out).
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../lib/paths';

const run = promisify(execFile);
const VENV = path.join(PROJECT_ROOT, '.venv-c7n');
const REQUIREMENTS = path.join(PROJECT_ROOT, 'scripts', 'bench', 'c7n-requirements.txt');
const STAMP = path.join(VENV, '.fleetwarden-requirements');
/** Bound on any one Custodian command (the venv install included): every wait below ends. */
const COMMAND_TIMEOUT_MS = 15 * 60_000;
/** The policy's name, and so its output directory. */
export const POLICY_NAME = 'unauthorized-instances';

/** A policy of a policy set: its name (so its output directory) and the id field of its resources. */
export interface C7nPolicy {
  name: string;
  idField: string;
}

/** A policy file and the policies it holds, whose resources.json files are read as findings. */
export interface C7nPolicySet {
  yaml: string;
  policies: C7nPolicy[];
}

export interface C7nTarget {
  account: string;
  region: string;
}

export interface C7nRun {
  /** `c7n-org run`, or the fallback (`custodian run` once per account-region, own AssumeRole). */
  mode: 'c7n-org run' | 'custodian run per account-region';
  command: string;
  versions: Record<string, string>;
  durationMs: number;
  /** `account/region/resource-id` of every resource Custodian reported, every policy's. */
  findings: string[];
  /** The same, by policy name. */
  findingsByPolicy: Record<string, string[]>;
  /** Account-regions (`account/region/policy` when the set holds several policies) for which no resources.json was written (the run failed there). */
  missingOutputs: string[];
  /** The last lines Custodian printed (its per account-region summary). */
  logTail: string[];
}

/** Creates (or refreshes) .venv-c7n when c7n-requirements.txt changed since the last install. */
export async function ensureC7nVenv(): Promise<void> {
  const wanted = createHash('sha256').update(readFileSync(REQUIREMENTS)).digest('hex');
  if (existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === wanted) return;
  console.log('installing Cloud Custodian into .venv-c7n (once)…');
  await run('python3', ['-m', 'venv', VENV], { timeout: COMMAND_TIMEOUT_MS });
  await run(path.join(VENV, 'bin', 'pip'), ['install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], { timeout: COMMAND_TIMEOUT_MS });
  writeFileSync(STAMP, `${wanted}\n`);
}

async function versions(): Promise<Record<string, string>> {
  const { stdout } = await run(path.join(VENV, 'bin', 'python'), ['-c', 'import importlib.metadata as m; print(*(f"{p}={m.version(p)}" for p in ("c7n", "c7n-org", "boto3", "botocore")))']);
  return Object.fromEntries(stdout.trim().split(/\s+/).map((pair) => pair.split('=') as [string, string]));
}

/**
 * The policy: running or pending EC2 instances (server-side, the `instance-state-name` filter of
 * DescribeInstances, as Fleetwarden's sweep asks), that carry none of the authorizing marks of
 * Fleetwarden's default rules: ManagedBy=fleetwarden, an eks:cluster-name tag, an Auto Scaling
 * group's aws:autoscaling:groupName tag. No actions.
 */
export const POLICY_YAML = `policies:
  - name: ${POLICY_NAME}
    resource: ec2
    query:
      - instance-state-name: [running, pending]
    filters:
      - not:
          - or:
              - "tag:ManagedBy": fleetwarden
              - "tag:eks:cluster-name": present
              - "tag:aws:autoscaling:groupName": present
`;

/** The enforcement section's set: POLICY_YAML, its one policy's findings by instance id. */
export const ENFORCEMENT_POLICY_SET: C7nPolicySet = { yaml: POLICY_YAML, policies: [{ name: POLICY_NAME, idField: 'InstanceId' }] };

/** The environment of a Custodian process: the emulator endpoint, dummy credentials, nothing from ~/.aws. */
function custodianEnv(endpoint: string, credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string }): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    AWS_ENDPOINT_URL: endpoint,
    AWS_ACCESS_KEY_ID: credentials?.accessKeyId ?? 'testing',
    AWS_SECRET_ACCESS_KEY: credentials?.secretAccessKey ?? 'testing',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
  };
  if (credentials?.sessionToken) env.AWS_SESSION_TOKEN = credentials.sessionToken;
  return env;
}

/** Every resources.json under `<outdir>/<account>/<region>/<policy>/` (c7n-org's layout), as findings. */
function collect(targets: C7nTarget[], dirOf: (t: C7nTarget) => string, policySet: C7nPolicySet) {
  const findings: string[] = [];
  const findingsByPolicy: Record<string, string[]> = {};
  const missingOutputs: string[] = [];
  for (const t of targets) {
    for (const { name, idField } of policySet.policies) {
      const file = path.join(dirOf(t), name, 'resources.json');
      if (!existsSync(file)) {
        missingOutputs.push(policySet.policies.length === 1 ? `${t.account}/${t.region}` : `${t.account}/${t.region}/${name}`);
        continue;
      }
      const found = (JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>[]).map((r) => `${t.account}/${t.region}/${String(r[idField])}`);
      findings.push(...found);
      (findingsByPolicy[name] ??= []).push(...found);
    }
  }
  return { findings, findingsByPolicy, missingOutputs };
}

const tail = (text: string, lines = 8) => text.trim().split('\n').slice(-lines);

/**
 * `c7n-org run -c accounts.yml -s <outdir> -u policy.yml`: c7n-org assumes each account's role
 * (its `role:`) through STS and runs the policy in each of the account's regions.
 */
export async function runC7nOrg(options: { endpoint: string; workdir: string; targets: C7nTarget[]; roleName: string; policySet?: C7nPolicySet }): Promise<C7nRun> {
  const { endpoint, workdir, targets, roleName, policySet = ENFORCEMENT_POLICY_SET } = options;
  mkdirSync(workdir, { recursive: true });
  const accounts = [...new Set(targets.map((t) => t.account))];
  const regionsOf = (account: string) => targets.filter((t) => t.account === account).map((t) => t.region);
  const accountsYml = path.join(workdir, 'accounts.yml');
  const policyYml = path.join(workdir, 'policy.yml');
  const outdir = path.join(workdir, 'out');
  // The account's name is its id: c7n-org names each account's output directory after it.
  writeFileSync(
    accountsYml,
    `accounts:\n${accounts.map((a) => `  - account_id: "${a}"\n    name: "${a}"\n    role: arn:aws:iam::${a}:role/${roleName}\n    regions: [${regionsOf(a).join(', ')}]\n`).join('')}`,
  );
  writeFileSync(policyYml, policySet.yaml);
  // No resource cache (c7n keeps a run's resources 15 minutes by default, in ~/.cache): every
  // run asks the emulator, and nothing is written outside the workdir.
  const cache = path.join(workdir, 'cache');
  mkdirSync(cache, { recursive: true });
  const args = ['run', '-c', accountsYml, '-s', outdir, '-u', policyYml, '--cache-period', '0', '--cache-path', cache];
  const started = performance.now();
  const out = await run(path.join(VENV, 'bin', 'c7n-org'), args, { env: custodianEnv(endpoint), timeout: COMMAND_TIMEOUT_MS, maxBuffer: 64 * 1024 * 1024 });
  const durationMs = Math.round(performance.now() - started);
  return {
    mode: 'c7n-org run',
    command: `c7n-org ${args.map((a) => (path.isAbsolute(a) ? path.relative(workdir, a) : a)).join(' ')}`,
    versions: await versions(),
    durationMs,
    ...collect(targets, (t) => path.join(outdir, t.account, t.region), policySet),
    logTail: tail(out.stderr),
  };
}

/**
 * The fallback when c7n-org cannot run: `custodian run` once per account-region, with the
 * member role's credentials from an AssumeRole made here (`assume`), one after the other.
 */
export async function runCustodianPerTarget(options: {
  endpoint: string;
  workdir: string;
  targets: C7nTarget[];
  assume: (t: C7nTarget) => Promise<{ accessKeyId: string; secretAccessKey: string; sessionToken?: string }>;
  policySet?: C7nPolicySet;
}): Promise<C7nRun> {
  const { endpoint, workdir, targets, assume, policySet = ENFORCEMENT_POLICY_SET } = options;
  mkdirSync(workdir, { recursive: true });
  const policyYml = path.join(workdir, 'policy.yml');
  writeFileSync(policyYml, policySet.yaml);
  const dirOf = (t: C7nTarget) => path.join(workdir, 'out-single', t.account, t.region);
  const started = performance.now();
  let log = '';
  for (const t of targets) {
    const out = await run(path.join(VENV, 'bin', 'custodian'), ['run', '-s', dirOf(t), '--region', t.region, '--cache-period', '0', '-f', path.join(workdir, 'cache'), policyYml], {
      env: custodianEnv(endpoint, await assume(t)),
      timeout: COMMAND_TIMEOUT_MS,
      maxBuffer: 64 * 1024 * 1024,
    }).catch((error: { stderr?: string }) => ({ stderr: error.stderr ?? String(error) }));
    log += out.stderr;
  }
  return {
    mode: 'custodian run per account-region',
    command: `custodian run -s out-single/<account>/<region> --region <region> --cache-period 0 -f cache policy.yml (x${targets.length})`,
    versions: await versions(),
    durationMs: Math.round(performance.now() - started),
    ...collect(targets, dirOf, policySet),
    logTail: tail(log),
  };
}

