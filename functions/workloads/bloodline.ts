import type { FlagState } from '../enforcement/flags';
import { GROUP_NAME_TAG } from '../shared/groups';
import { type DeclaredObject, type DesiredStateSource, PURPOSE_ANNOTATION, apiGroup, objectIdentity } from './desired-state';
import { WORKLOAD_KINDS, creatorOf, liveIdentity } from './drift';
import { COMMIT_ANNOTATION, type KubeObject } from './port';

/**
 * `fleetwarden bloodline`, decided (pure): where each running workload comes from (the commit,
 * author and purpose git declares it with, or, undeclared, what the cluster says about its
 * creator), and where each running EC2 instance comes from as far as Fleetwarden knows (its Auto
 * Scaling group and launch template, the creator the enforcer recorded, or unknown). The command
 * (cli.ts) reads; nothing here does I/O.
 */

// ---------------------------------------------------------------------------- workloads

/** Where a workload's commit was read. */
export type CommitSource = 'annotation' | 'last-change' | 'published';

export interface WorkloadBloodline {
  cluster: string;
  namespace: string;
  kind: string;
  name: string;
  /** `declared`: in the published desired state (itself, or the declared object that owns it). */
  status: 'declared' | 'undeclared';
  /**
   * The commit it comes from: the `fleetwarden.io/commit` annotation Fleetwarden stamps on what it
   * applies, else the last commit that changed the declaring file, else the commit the desired
   * state was published from; null when none is known.
   */
  commit: string | null;
  commitFrom: CommitSource | null;
  /** The last commit that changed the declaring file (null: undeclared, or not committed). */
  declaredCommit: string | null;
  /** Who wrote that last change, and when. */
  author: { name: string; email: string } | null;
  authoredAt: string | null;
  /** `fleetwarden.io/purpose`, as declared (else as the live object carries it). */
  purpose: string | null;
  /** The live object's creationTimestamp. */
  createdAt: string | null;
  /** The manifest file that declares it. */
  file: string | null;
  /** What the cluster says about who made it: its owner, or the field manager that created it (undeclared, or declared through its owner). */
  creator: string | null;
}

const isWorkloadKind = (o: KubeObject) => WORKLOAD_KINDS.some((k) => apiGroup(k.apiVersion) === apiGroup(o.apiVersion ?? '') && k.kind === o.kind);

/**
 * The bloodline of every running workload of one cluster (Deployments, StatefulSets, DaemonSets;
 * not those being deleted): declared ones with their commit, author and purpose, undeclared ones
 * with their creator. A workload owned by a declared object (an operator's custom resource
 * declared in git) is declared through it. `declared` are this cluster's declared objects, none
 * when the cluster is not under desired-state management; `source` where the state was published from.
 */
export function workloadBloodline(input: { cluster: string; declared: readonly DeclaredObject[]; source: DesiredStateSource | null; live: readonly KubeObject[] }): WorkloadBloodline[] {
  const declared = new Map(input.declared.map((o) => [objectIdentity(o), o] as const));
  const published = input.source?.provenance === 'git' ? input.source.commit : null;
  const rows: WorkloadBloodline[] = [];
  for (const live of input.live) {
    const namespace = live.metadata?.namespace;
    if (!namespace || live.metadata?.deletionTimestamp || !isWorkloadKind(live)) continue;
    const annotations = live.metadata?.annotations ?? {};
    const applied = annotations[COMMIT_ANNOTATION] || null;
    const itself = declared.get(liveIdentity(live));
    const owner = itself
      ? undefined
      : live.metadata?.ownerReferences?.map((r) => declared.get(objectIdentity({ apiVersion: r.apiVersion, kind: r.kind, namespace, name: r.name }))).find((o) => o !== undefined);
    const by = itself ?? owner;
    const lastChange = by?.lastChange ?? null;
    const [commit, commitFrom]: [string | null, CommitSource | null] = applied
      ? [applied, 'annotation']
      : lastChange
        ? [lastChange.commit, 'last-change']
        : by && published
          ? [published, 'published']
          : [null, null];
    rows.push({
      cluster: input.cluster,
      namespace,
      kind: live.kind ?? '',
      name: live.metadata?.name ?? '',
      status: by ? 'declared' : 'undeclared',
      commit,
      commitFrom,
      declaredCommit: lastChange?.commit ?? null,
      author: lastChange ? { ...lastChange.author } : null,
      authoredAt: lastChange?.authoredAt ?? null,
      purpose: by?.purpose ?? annotations[PURPOSE_ANNOTATION] ?? null,
      createdAt: live.metadata?.creationTimestamp ?? null,
      file: by?.file ?? null,
      creator: itself ? null : creatorOf(live),
    });
  }
  return rows.sort(byWorkload);
}

const byWorkload = (a: WorkloadBloodline, b: WorkloadBloodline) =>
  a.cluster.localeCompare(b.cluster) || a.namespace.localeCompare(b.namespace) || a.kind.localeCompare(b.kind) || a.name.localeCompare(b.name);

// ---------------------------------------------------------------------------- EC2 instances

/** EC2 records the launch template an instance was launched from with these tags. */
export const LAUNCH_TEMPLATE_ID_TAG = 'aws:ec2launchtemplate:id';
export const LAUNCH_TEMPLATE_VERSION_TAG = 'aws:ec2launchtemplate:version';

/** A pending or running instance, as DescribeInstances tells it in its own account and region. */
export interface InstanceFacts {
  account: string;
  region: string;
  instanceId: string;
  state: string;
  launchTime: string | null;
  tags: Record<string, string>;
}

/** What the enforcer recorded about an instance: its flag, and the RunInstances caller once CloudTrail named it. */
export interface EnforcerRecord {
  state: FlagState;
  creator?: string;
}

export type InstanceOrigin = 'auto-scaling-group' | 'enforcer' | 'launch-template' | 'unknown';

export interface InstanceBloodline {
  account: string;
  region: string;
  instanceId: string;
  /** Its `Name` tag. */
  name: string | null;
  launchedAt: string | null;
  autoScalingGroup: string | null;
  launchTemplate: { id: string; name: string | null; version: string | null } | null;
  /** Who called RunInstances, as the enforcer recorded it (only instances it flagged). */
  creator: string | null;
  /** The state of the enforcer's flag on it (null: never flagged, i.e. authorized). */
  flag: FlagState | null;
  /** The strongest answer: a group launched it, else the recorded caller, else its launch template, else unknown. */
  origin: InstanceOrigin;
}

export const instanceKeyOf = (i: Pick<InstanceFacts, 'account' | 'region' | 'instanceId'>) => `${i.account}/${i.region}/${i.instanceId}`;

/**
 * The bloodline of running instances from what Fleetwarden knows: the Auto Scaling and launch
 * template tags EC2 sets, the names of those templates, and the enforcer's records keyed by
 * `account/region/instanceId` (its flags' keys).
 */
export function instanceBloodline(input: { instances: readonly InstanceFacts[]; templateNames: ReadonlyMap<string, string>; records: ReadonlyMap<string, EnforcerRecord> }): InstanceBloodline[] {
  return input.instances
    .map((i): InstanceBloodline => {
      const record = input.records.get(instanceKeyOf(i));
      const group = i.tags[GROUP_NAME_TAG] || null;
      const templateId = i.tags[LAUNCH_TEMPLATE_ID_TAG] || null;
      const creator = record?.creator || null;
      return {
        account: i.account,
        region: i.region,
        instanceId: i.instanceId,
        name: i.tags.Name || null,
        launchedAt: i.launchTime,
        autoScalingGroup: group,
        launchTemplate: templateId ? { id: templateId, name: input.templateNames.get(templateId) ?? null, version: i.tags[LAUNCH_TEMPLATE_VERSION_TAG] || null } : null,
        creator,
        flag: record?.state ?? null,
        origin: group ? 'auto-scaling-group' : creator ? 'enforcer' : templateId ? 'launch-template' : 'unknown',
      };
    })
    .sort((a, b) => a.account.localeCompare(b.account) || a.region.localeCompare(b.region) || a.instanceId.localeCompare(b.instanceId));
}

// ---------------------------------------------------------------------------- the report

export interface BloodlineReport {
  /** Absent: not asked for (--instances-only). */
  workloads?: WorkloadBloodline[];
  /** Absent: not asked for (--workloads-only, --cluster, --namespace). */
  instances?: InstanceBloodline[];
  /** What the reader should know to read the rows right (a cluster outside desired-state management…). */
  notes: string[];
  /** What could not be read; the rows are complete only without them (exit status 1). */
  failures: { target: string; error: string }[];
}

const short = (commit: string) => commit.slice(0, 12);
/** Kubernetes and EC2 times to the second, as kubectl shows them. */
const time = (iso: string | null) => (iso ? iso.replace(/\.\d+(?=Z$)/, '') : '-');

function commitText(w: WorkloadBloodline): string {
  if (!w.commit) return '-';
  if (w.commitFrom === 'published') return `${short(w.commit)} (published)`;
  if (w.commitFrom === 'annotation' && w.declaredCommit && w.declaredCommit !== w.commit) return `${short(w.commit)} (applied; file last changed in ${short(w.declaredCommit)})`;
  return short(w.commit);
}

function originText(i: InstanceBloodline): string {
  const parts: string[] = [];
  if (i.autoScalingGroup) parts.push(`Auto Scaling group ${i.autoScalingGroup}`);
  if (i.launchTemplate) {
    const t = i.launchTemplate;
    parts.push(`launch template ${t.name ? `${t.name} (${t.id})` : t.id}${t.version ? ` version ${t.version}` : ''}`);
  }
  if (i.creator) parts.push(`launched by ${i.creator} (recorded by the enforcer)`);
  else if (i.flag && !i.autoScalingGroup) parts.push('flagged by the enforcer, creator not recorded');
  return parts.length ? parts.join('; ') : 'unknown: no Auto Scaling group or launch template, no creator recorded by the enforcer';
}

/** Columns padded to their widest cell, two spaces apart; the last one free. */
export function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd());
}

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Two tables (workloads, instances), the notes, what could not be read, and a summary line. */
export function formatBloodline(report: BloodlineReport): string {
  const out: string[] = [];
  const summary: string[] = [];
  if (report.workloads) {
    const w = report.workloads;
    out.push('Workloads');
    if (!w.length) out.push('  none');
    else {
      const header = ['CLUSTER', 'NAMESPACE', 'KIND', 'NAME', 'STATUS', 'COMMIT', 'AUTHOR', 'CREATED', 'PURPOSE / CREATOR'];
      const rows = w.map((r) => [
        r.cluster,
        r.namespace,
        r.kind,
        r.name,
        r.status,
        commitText(r),
        r.author ? `${r.author.name} <${r.author.email}>` : '-',
        time(r.createdAt),
        r.status === 'declared' ? [r.purpose ?? '(no purpose declared)', ...(r.creator ? [`(${r.creator})`] : [])].join(' ') : (r.creator ?? 'unknown'),
      ]);
      out.push(...table([header, ...rows]).map((line) => `  ${line}`));
    }
    const declared = w.filter((r) => r.status === 'declared').length;
    const clusters = new Set(w.map((r) => r.cluster)).size;
    summary.push(`${plural(w.length, 'workload')}${clusters ? ` in ${plural(clusters, 'cluster')}` : ''}: ${declared} declared, ${w.length - declared} undeclared`);
  }
  if (report.instances) {
    const i = report.instances;
    if (out.length) out.push('');
    out.push('EC2 instances');
    if (!i.length) out.push('  none');
    else {
      const header = ['ACCOUNT', 'REGION', 'INSTANCE', 'NAME', 'LAUNCHED', 'ORIGIN'];
      const rows = i.map((r) => [r.account, r.region, r.instanceId, r.name ?? '-', time(r.launchedAt), originText(r)]);
      out.push(...table([header, ...rows]).map((line) => `  ${line}`));
    }
    const count = (origin: InstanceOrigin) => i.filter((r) => r.origin === origin).length;
    summary.push(
      `${plural(i.length, 'instance')}: ${count('auto-scaling-group')} from an Auto Scaling group, ${count('enforcer')} with a creator recorded by the enforcer, ${count('launch-template')} from a launch template alone, ${count('unknown')} unknown`,
    );
  }
  if (report.notes.length) out.push('', ...report.notes.map((n) => `Note: ${n}`));
  if (report.failures.length) out.push('', 'Not read (the lists above are incomplete):', ...report.failures.map((f) => `  ${f.target}: ${f.error}`));
  out.push('', `${summary.join('; ')}.`);
  return out.join('\n');
}
