import { DescribeInstancesCommand, DescribeLaunchTemplatesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import * as z from 'zod';
import { KubernetesClustersSchema, type MemberAccess, MemberAccessSchema } from '../doctor/model';
import { DynamoFlagStore } from '../enforcement/flag-store';
import type { ClusterConfig } from '../kubernetes/cluster-config';
import { clusterConnector } from '../kubernetes/connector';
import { AccountSessions } from '../shared/accounts';
import { type AwsClientOptions, awsClient, documentClient } from '../shared/aws';
import { AwsFlags, type CliResult, CliUsageError, awsOptions, cliCommand, flagValue, jsonFlag, jsonOutput, parseCommandArgs, requireOutput, runCommand, stackOutputs, switchFlag } from '../shared/cli';
import { type Target, forEachTarget } from '../shared/fan-out';
import { Progress } from '../shared/progress';
import { type BloodlineReport, type EnforcerRecord, type InstanceBloodline, type InstanceFacts, LAUNCH_TEMPLATE_ID_TAG, type WorkloadBloodline, formatBloodline, instanceBloodline, workloadBloodline } from './bloodline';
import type { DesiredState } from './desired-state';
import { WORKLOAD_KINDS } from './drift';
import { KubernetesWorkloads } from './kubernetes';
import type { ClusterWorkloads, KubeObject } from './port';
import { readDesiredState } from './wiring';

export const BLOODLINE_USAGE = `usage: fleetwarden bloodline --stack NAME [--cluster NAME] [--namespace NS] [--workloads-only | --instances-only] [--member-role NAME] [--region R] [--profile P] [--json]

Where everything running comes from. Each running workload (Deployment, StatefulSet, DaemonSet)
of the configured clusters with its commit, author, purpose and creation time, or "undeclared"
with what the cluster says about its creator (owner, field manager); each running EC2 instance of
the configured accounts and regions with its Auto Scaling group and launch template, the creator
the enforcer recorded, or unknown. --cluster and --namespace narrow the workloads (and leave the
instances out).`;

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** `fleetwarden bloodline`: every flag is validated and a bad one is named. */
export const BloodlineArgsSchema = z
  .strictObject({
    stack: flagValue().min(1, 'needs a value').describe('the Fleetwarden stack (its outputs name the desired state, the clusters, the accounts and the enforcer\'s table)'),
    cluster: flagValue().regex(/^[0-9A-Za-z][A-Za-z0-9\-_]{0,99}$/, 'an EKS cluster name: letters, digits, - and _').optional().describe('only this cluster\'s workloads'),
    namespace: flagValue().regex(NAMESPACE, 'a namespace name: lower-case letters, digits and -, at most 63').optional().describe('only workloads in this namespace'),
    'workloads-only': switchFlag().describe('only the workloads, no EC2 instances'),
    'instances-only': switchFlag().describe('only the EC2 instances, no workloads'),
    'member-role': flagValue()
      .regex(/^[\w+=,.@-]{1,64}$/, 'an IAM role name, like OrganizationAccountAccessRole')
      .optional()
      .describe("role to assume in member accounts, with your own credentials, instead of the member role through the stack's doctor role"),
    ...AwsFlags,
    json: jsonFlag(),
  })
  .superRefine((a, ctx) => {
    if (!a['instances-only']) return;
    for (const flag of ['workloads-only', 'cluster', 'namespace'] as const) {
      if (a[flag] !== undefined) ctx.addIssue({ code: 'custom', path: ['instances-only'], message: `lists no workloads: drop it or --${flag}` });
    }
  });
export type BloodlineFlags = z.infer<typeof BloodlineArgsSchema>;
/** The flags, and which parts they ask for: --cluster and --namespace are about workloads only. */
export type BloodlineArgs = BloodlineFlags & { workloads: boolean; instances: boolean };
export const bloodlineArgs = (f: BloodlineFlags): BloodlineArgs => ({ ...f, workloads: f['instances-only'] !== true, instances: f['workloads-only'] !== true && f.cluster === undefined && f.namespace === undefined });

export const parseBloodlineArgs = (argv: readonly string[]): BloodlineArgs => parseCommandArgs(BLOODLINE_COMMAND, argv);

/** What bloodline reads, each read small enough to fail on its own. */
export interface BloodlineSources {
  /** The published desired state (null: none is published: nothing is declared). */
  desiredState(): Promise<DesiredState | null>;
  /** Every object of a kind in a cluster. */
  list(cluster: string, apiVersion: string, kind: string): Promise<KubeObject[]>;
  /** The pending and running instances of one account and region. */
  instances(target: Target): Promise<InstanceFacts[]>;
  /** Launch template names by id, in one account and region (ids it does not know are left out). */
  templateNames(target: Target, ids: string[]): Promise<Map<string, string>>;
  /** The enforcer's records, by `account/region/instanceId`. */
  enforcerRecords(): Promise<Map<string, EnforcerRecord>>;
}

/** Where to look: the clusters and account-regions Fleetwarden is configured for. */
export interface BloodlineScope {
  clusters: string[];
  targets: Target[];
  /** The stack publishes a desired state. */
  desiredState: boolean;
}


/** Every configured account in each of its regions (the account's own list, else all), as the enforcer sweeps them. */
export const accountRegions = (access: MemberAccess): Target[] => access.accounts.flatMap((a) => (a.regions ?? access.regions).map((region) => ({ account: a.id, region })));

/** `s3://bucket/key` as bucket and key. */
export function parseS3Url(url: string): { bucket: string; key: string } {
  const match = /^s3:\/\/([^/]+)\/(.+)$/.exec(url);
  if (!match) throw new Error(`not an s3://bucket/key URL: ${url}`);
  return { bucket: match[1]!, key: match[2]! };
}

/**
 * The reads with the SDK and the clusters' API servers: the stack's own resources with the
 * operator's credentials (--region, --profile), each member account through its member role as
 * doctor reaches it (from the stack's doctor role, or with --member-role from the operator's own
 * credentials), each cluster through the functions' own connector (EKS, or FLEETWARDEN_KUBECONFIG locally).
 */
export class AwsBloodlineSources implements BloodlineSources {
  private sessions: Promise<AccountSessions> | undefined;
  private readonly connector;
  private readonly connections = new Map<string, Promise<ClusterWorkloads>>();

  constructor(
    private readonly aws: AwsClientOptions,
    private readonly stack: { desiredStateUrl?: string; authorizationsTable: string; access: MemberAccess; clusters: ClusterConfig[]; doctorRoleArn?: string; memberRole?: string },
  ) {
    this.connector = clusterConnector(stack.clusters, (kubeConfig, reauthenticate) => new KubernetesWorkloads(kubeConfig, reauthenticate ? { reauthenticate } : {}));
  }

  async desiredState(): Promise<DesiredState | null> {
    if (!this.stack.desiredStateUrl) return null;
    const { bucket, key } = parseS3Url(this.stack.desiredStateUrl);
    return readDesiredState(bucket, key, this.aws);
  }

  async list(cluster: string, apiVersion: string, kind: string): Promise<KubeObject[]> {
    let connection = this.connections.get(cluster);
    if (!connection) {
      connection = this.connector.connect(cluster);
      this.connections.set(cluster, connection);
    }
    return (await connection).list(apiVersion, kind);
  }

  /** The home account with the operator's own credentials; a member account through its member role. */
  private async ec2(target: Target): Promise<EC2Client> {
    if (target.account === this.stack.access.homeAccount) return awsClient(EC2Client, { ...this.aws, region: target.region });
    this.sessions ??= this.memberSessions();
    return awsClient(EC2Client, await (await this.sessions).options(target.account, target.region));
  }

  private memberSessions(): Promise<AccountSessions> {
    const sessions = (async () => {
      const { homeAccount, memberRoleName } = this.stack.access;
      const base = this.aws.profile ? { profile: this.aws.profile } : {};
      const via = this.stack.memberRole ? undefined : this.stack.doctorRoleArn;
      if (!via) return new AccountSessions(homeAccount, this.stack.memberRole ?? memberRoleName, base);
      const out = await awsClient(STSClient, this.aws).send(new AssumeRoleCommand({ RoleArn: via, RoleSessionName: 'fleetwarden-bloodline', DurationSeconds: 900 }));
      const c = out.Credentials!;
      return new AccountSessions(homeAccount, memberRoleName, { credentials: { accessKeyId: c.AccessKeyId!, secretAccessKey: c.SecretAccessKey!, sessionToken: c.SessionToken } });
    })();
    // A failed AssumeRole of the doctor role is tried again by the next account-region.
    sessions.catch(() => (this.sessions = undefined));
    return sessions;
  }

  async instances(target: Target): Promise<InstanceFacts[]> {
    const ec2 = await this.ec2(target);
    const found: InstanceFacts[] = [];
    let NextToken: string | undefined;
    do {
      const out = await ec2.send(new DescribeInstancesCommand({ Filters: [{ Name: 'instance-state-name', Values: ['pending', 'running'] }], MaxResults: 1000, NextToken }));
      for (const i of (out.Reservations ?? []).flatMap((r) => r.Instances ?? [])) {
        found.push({
          ...target,
          instanceId: i.InstanceId!,
          state: i.State?.Name ?? 'unknown',
          launchTime: i.LaunchTime?.toISOString() ?? null,
          tags: Object.fromEntries((i.Tags ?? []).map((t) => [t.Key!, t.Value ?? ''])),
        });
      }
      NextToken = out.NextToken;
    } while (NextToken);
    return found;
  }

  async templateNames(target: Target, ids: string[]): Promise<Map<string, string>> {
    const names = new Map<string, string>();
    if (!ids.length) return names;
    const ec2 = await this.ec2(target);
    const ask = async (some: string[]) => {
      const out = await ec2.send(new DescribeLaunchTemplatesCommand({ LaunchTemplateIds: some }));
      for (const t of out.LaunchTemplates ?? []) if (t.LaunchTemplateId && t.LaunchTemplateName) names.set(t.LaunchTemplateId, t.LaunchTemplateName);
    };
    for (let i = 0; i < ids.length; i += 200) {
      const some = ids.slice(i, i + 200);
      // One deleted template fails the whole call: then each is asked for alone, and a gone one keeps its id only.
      await ask(some).catch(() => Promise.all(some.map((id) => ask([id]).catch(() => undefined))));
    }
    return names;
  }

  async enforcerRecords(): Promise<Map<string, EnforcerRecord>> {
    const records = new Map<string, EnforcerRecord>();
    for await (const flag of new DynamoFlagStore(documentClient(this.aws), this.stack.authorizationsTable).all()) {
      records.set(flag.instanceKey, { state: flag.state, ...(flag.creator ? { creator: flag.creator } : {}) });
    }
    return records;
  }
}

type Said = Pick<BloodlineReport, 'notes' | 'failures'>;
const plural = (n: number, one: string) => `${n} ${one}${n === 1 ? '' : 's'}`;
/** An error in a line: a Kubernetes API error says its Status message instead of the Status as JSON. */
export function errorLine(error: unknown): string {
  const e = error as Error & { cause?: { body?: { message?: unknown } } };
  const status = e.cause?.body?.message;
  const text = typeof status === 'string' ? e.message.replace(/: \{.*$/s, `: ${status}`) : e.message;
  return `${e.name}: ${text}`.slice(0, 300);
}

/**
 * Reads the bloodline of what the arguments ask for. A part that cannot be read (the desired
 * state, a cluster, an account-region, the enforcer's table) is reported failed, and the others
 * are read all the same; without the desired state no workload is listed (each would be called
 * undeclared), without the enforcer's table the instances are listed without their recorded creator.
 */
export async function readBloodline(args: BloodlineArgs, scope: BloodlineScope, sources: BloodlineSources): Promise<BloodlineReport> {
  const said: Said = { notes: [], failures: [] };
  const clusters = args.cluster ? [args.cluster] : scope.clusters;
  const reading = [...(args.workloads ? [plural(clusters.length, 'cluster')] : []), ...(args.instances ? [plural(scope.targets.length, 'account-region')] : [])];
  // One progress line on stderr for both parts (objects and instances read so far).
  const progress = new Progress(`reading ${reading.join(' and ')}`, 'objects');
  let workloads: WorkloadBloodline[] | undefined;
  let instances: InstanceBloodline[] | undefined;
  try {
    [workloads, instances] = await Promise.all([
      args.workloads ? readWorkloads(args, clusters, scope, sources, said, progress) : undefined,
      args.instances ? readInstances(scope.targets, sources, said, progress) : undefined,
    ]);
  } finally {
    progress.done();
  }
  return {
    ...(workloads ? { workloads } : {}),
    ...(instances ? { instances } : {}),
    notes: said.notes.sort(),
    failures: said.failures.sort((a, b) => a.target.localeCompare(b.target)),
  };
}

async function readWorkloads(args: BloodlineArgs, clusters: string[], scope: BloodlineScope, sources: BloodlineSources, report: Said, progress: Progress): Promise<WorkloadBloodline[]> {
  if (!clusters.length) {
    report.notes.push('no cluster is configured (kubernetes.clusters): there are no workloads to list');
    return [];
  }
  let state: DesiredState | null;
  try {
    state = await sources.desiredState();
  } catch (error) {
    report.failures.push({ target: 'desired state', error: errorLine(error) });
    return [];
  }
  if (!scope.desiredState) report.notes.push('the stack publishes no desired state (kubernetes.desiredState): no workload is declared');
  const rows: WorkloadBloodline[] = [];
  await Promise.all(
    clusters.map(async (cluster) => {
      if (state && !state.clusters.includes(cluster)) report.notes.push(`cluster ${cluster} has no folder in the desired state (${state.path}): none of its workloads is declared`);
      try {
        const live: KubeObject[] = [];
        for (const k of WORKLOAD_KINDS) {
          const listed = await sources.list(cluster, k.apiVersion, k.kind);
          progress.add(listed.length);
          live.push(...listed.filter((o) => !args.namespace || o.metadata?.namespace === args.namespace));
        }
        rows.push(...workloadBloodline({ cluster, declared: state?.objects.filter((o) => o.cluster === cluster) ?? [], source: state?.source ?? null, live }));
      } catch (error) {
        report.failures.push({ target: `cluster ${cluster}`, error: errorLine(error) });
      }
    }),
  );
  return rows.sort((a, b) => a.cluster.localeCompare(b.cluster));
}

async function readInstances(targets: Target[], sources: BloodlineSources, report: Said, progress: Progress): Promise<InstanceBloodline[]> {
  const [records, listed] = await Promise.all([
    sources.enforcerRecords().catch((error: unknown) => {
      report.failures.push({ target: "the enforcer's records (creators not shown)", error: errorLine(error) });
      return new Map<string, EnforcerRecord>();
    }),
    forEachTarget(targets, async (target) => {
      const instances = await sources.instances(target);
      progress.add(instances.length);
      const ids = [...new Set(instances.flatMap((i) => (i.tags[LAUNCH_TEMPLATE_ID_TAG] ? [i.tags[LAUNCH_TEMPLATE_ID_TAG]] : [])))];
      // Names are a courtesy: an instance is listed with its template's id when they cannot be read.
      const templateNames = await sources.templateNames(target, ids).catch(() => new Map<string, string>());
      return { instances, templateNames };
    }),
  ]);
  for (const f of listed.failed) report.failures.push({ target: `account ${f.account} ${f.region}`, error: f.error });
  const templateNames = new Map(listed.results.flatMap((r) => [...r.templateNames]));
  return instanceBloodline({ instances: listed.results.flatMap((r) => r.instances), templateNames, records });
}

/** The stack's outputs as bloodline's scope and sources; an unknown --cluster is bad usage. */
export async function bloodlineFromStack(args: BloodlineArgs): Promise<{ scope: BloodlineScope; sources: BloodlineSources }> {
  const aws = awsOptions(args);
  const outputs = await stackOutputs(args.stack, aws);
  const access = jsonOutput(outputs, 'MemberAccess', args.stack, MemberAccessSchema, 'bloodline');
  const clusters = outputs.KubernetesClusters ? jsonOutput(outputs, 'KubernetesClusters', args.stack, KubernetesClustersSchema, 'bloodline') : [];
  if (args.cluster && !clusters.some((c) => c.name === args.cluster)) {
    throw new CliUsageError(`--cluster: stack ${args.stack} has no cluster ${args.cluster} (${clusters.map((c) => c.name).join(', ') || 'none configured'})`);
  }
  const sources = new AwsBloodlineSources(aws, {
    ...(outputs.DesiredStateObjectUrl ? { desiredStateUrl: outputs.DesiredStateObjectUrl } : {}),
    authorizationsTable: requireOutput(outputs, 'AuthorizationsTableName', args.stack),
    access,
    clusters,
    ...(outputs.DoctorRoleArn ? { doctorRoleArn: outputs.DoctorRoleArn } : {}),
    ...(args['member-role'] ? { memberRole: args['member-role'] } : {}),
  });
  return { scope: { clusters: clusters.map((c) => c.name), targets: accountRegions(access), desiredState: !!outputs.DesiredStateObjectUrl }, sources };
}

/** `fleetwarden bloodline`: exit status 1 when a part could not be read (undeclared workloads are not a failure). */
export const BLOODLINE_COMMAND = cliCommand({
  path: ['bloodline'],
  summary: 'Where everything running comes from: each workload\'s commit, author, purpose and creation time, or its creator when undeclared; each EC2 instance\'s Auto Scaling group, launch template or recorded creator.',
  flags: BloodlineArgsSchema,
  args: bloodlineArgs,
  notes: 'Exit status: 0 listed, 1 something could not be read (a cluster, an account-region, the desired state: the rest is listed), 2 bad usage.',
  run: async (args: BloodlineArgs): Promise<CliResult> => {
    const { scope, sources } = await bloodlineFromStack(args);
    const report = await readBloodline(args, scope, sources);
    return { text: args.json ? JSON.stringify(report, null, 2) : formatBloodline(report), code: report.failures.length ? 1 : 0 };
  },
});

export const runBloodlineCommand = (argv: readonly string[]): Promise<CliResult> => runCommand(BLOODLINE_COMMAND, argv);
