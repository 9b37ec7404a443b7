import { createHash } from 'node:crypto';
import { DO_NOT_DISRUPT_TAG } from '../shared/groups';

/**
 * Node drift: an InService instance whose launch template, launch template version or
 * AMI differs from what its Auto Scaling group specifies now. Pure: the adapter gathers the facts
 * (DescribeAutoScalingGroups, DescribeLaunchTemplateVersions, DescribeInstances), this decides.
 */


/** A launch template version as the group names it (`5`, `$Latest`, `$Default`), resolved to the concrete version and its AMI. */
export interface ResolvedTemplate {
  launchTemplateId: string;
  /** As configured on the group (or a mixed instances override). */
  configured: string;
  version: number;
  /** The version's ImageId (SSM aliases resolved); unset when the version names no AMI. */
  imageId?: string;
}

/** What the group specifies: a launch template (plain or mixed instances policy, with per-type overrides) or a launch configuration. */
export type GroupSpec =
  | { kind: 'launch-template'; template: ResolvedTemplate; overrides: { instanceType: string; template: ResolvedTemplate }[] }
  | { kind: 'launch-configuration'; name: string }
  | { kind: 'none' };

export interface InstanceFacts {
  instanceId: string;
  lifecycleState: string;
  instanceType: string;
  /** ImageId from DescribeInstances. */
  imageId?: string;
  /** The launch template Auto Scaling reports for the instance; its version may be symbolic (`$Latest`). */
  launchTemplate?: { launchTemplateId: string; version?: string };
  /** EC2's own record of the version the instance was launched from (the `aws:ec2launchtemplate:version` tag): always a number. */
  launchedVersion?: string;
  launchConfiguration?: string;
  doNotDisrupt: boolean;
}

export interface GroupDriftFacts {
  name: string;
  spec: GroupSpec;
  instances: InstanceFacts[];
}

/** What a drifted instance should look like after the swap. */
export interface DriftTarget {
  launchTemplateId?: string;
  version?: number;
  imageId?: string;
  launchConfiguration?: string;
}

export interface NodeDriftFinding {
  group: string;
  instanceId: string;
  /** Each difference, e.g. `ami ami-old != ami-new`, `launch template version 3 != 5`. */
  differences: string[];
  /** One sentence for the ledger and the event: the differences, and why it is not repaired if it is not. */
  reason: string;
  /** False when the swap must not touch it (do-not-disrupt) or cannot repair it (a launch configuration group). */
  repairable: boolean;
  target: DriftTarget;
}

/** The instance's launched version as a number, when anything reports one. */
function concreteVersion(instance: InstanceFacts): number | undefined {
  for (const v of [instance.launchedVersion, instance.launchTemplate?.version]) {
    if (v !== undefined && /^\d+$/.test(v)) return Number(v);
  }
  return undefined;
}

function expectedTemplate(spec: Extract<GroupSpec, { kind: 'launch-template' }>, instanceType: string): ResolvedTemplate {
  return spec.overrides.find((o) => o.instanceType === instanceType)?.template ?? spec.template;
}

function differencesFromTemplate(instance: InstanceFacts, expected: ResolvedTemplate): string[] {
  const differences: string[] = [];
  if (instance.launchConfiguration && !instance.launchTemplate) {
    differences.push(`launch configuration ${instance.launchConfiguration} != launch template ${expected.launchTemplateId}`);
  } else if (instance.launchTemplate && instance.launchTemplate.launchTemplateId !== expected.launchTemplateId) {
    differences.push(`launch template ${instance.launchTemplate.launchTemplateId} != ${expected.launchTemplateId}`);
  } else {
    const version = concreteVersion(instance);
    if (version !== undefined && version !== expected.version) differences.push(`launch template version ${version} != ${expected.version}`);
  }
  if (expected.imageId && instance.imageId && instance.imageId !== expected.imageId) differences.push(`ami ${instance.imageId} != ${expected.imageId}`);
  return differences;
}

/**
 * The group's drifted InService instances, in the group's order. An instance tagged
 * `fleetwarden:do-not-disrupt=true` is reported but not repaired; a group on a launch
 * configuration is reported but not repaired (the swap launches from a launch template).
 */
export function detectNodeDrift(group: GroupDriftFacts): NodeDriftFinding[] {
  const findings: NodeDriftFinding[] = [];
  for (const instance of group.instances) {
    if (instance.lifecycleState !== 'InService') continue;
    let differences: string[] = [];
    let target: DriftTarget;
    let unrepairable: string | undefined;
    const spec = group.spec;
    if (spec.kind === 'launch-template') {
      const expected = expectedTemplate(spec, instance.instanceType);
      differences = differencesFromTemplate(instance, expected);
      target = { launchTemplateId: expected.launchTemplateId, version: expected.version, imageId: expected.imageId };
    } else if (spec.kind === 'launch-configuration') {
      if (instance.launchTemplate) differences.push(`launch template ${instance.launchTemplate.launchTemplateId} != launch configuration ${spec.name}`);
      else if (instance.launchConfiguration && instance.launchConfiguration !== spec.name) differences.push(`launch configuration ${instance.launchConfiguration} != ${spec.name}`);
      target = { launchConfiguration: spec.name };
      unrepairable = 'the group uses a launch configuration; swaps launch from a launch template';
    } else continue;
    if (differences.length === 0) continue;
    if (instance.doNotDisrupt) unrepairable = `tagged ${DO_NOT_DISRUPT_TAG}=true`;
    findings.push({
      group: group.name,
      instanceId: instance.instanceId,
      differences,
      reason: unrepairable ? `${differences.join('; ')} (not repaired: ${unrepairable})` : differences.join('; '),
      repairable: unrepairable === undefined,
      target,
    });
  }
  return findings;
}

/** What the group's instances should become, as one stable string (for keys and names). */
export function targetKey(target: DriftTarget): string {
  return target.launchConfiguration ? `lc:${target.launchConfiguration}` : `${target.launchTemplateId}:${target.version}:${target.imageId ?? '-'}`;
}

/** Dedupe key of a drift fact in the ledger: the same instance drifted from the same target is recorded once. */
export function driftDedupeKey(region: string, finding: NodeDriftFinding): string {
  return `node-drift#${region}#${finding.group}#${finding.instanceId}#${targetKey(finding.target)}`;
}

const hash = (text: string, length: number) => createHash('sha256').update(text).digest('hex').slice(0, length);

/**
 * Prefix of every drift batch's execution name for a group: `drift-<group, made name-safe>-<hash
 * of the exact name>-` (the hash keeps groups apart whose safe names collide).
 */
export function driftExecutionPrefix(group: string): string {
  const safe = group.replace(/[^A-Za-z0-9_-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 32) || 'group';
  return `drift-${safe}-${hash(group, 6)}-`;
}

/**
 * The execution name of the drift batch for these instances and this target, on this UTC day:
 * a detection repeated every cycle starts one batch; a drift the batch could not repair is tried
 * again the next day (or at once when the set of drifted instances or the target changes).
 * At most 80 characters of [A-Za-z0-9_-], as Step Functions requires.
 */
export function driftExecutionName(group: string, instanceIds: string[], targets: DriftTarget[], now: Date): string {
  const day = now.toISOString().slice(0, 10).replace(/-/g, '');
  const subject = JSON.stringify([group, [...instanceIds].sort(), [...new Set(targets.map(targetKey))].sort()]);
  return `${driftExecutionPrefix(group)}${day}-${hash(subject, 12)}`;
}

/** The reason a drift batch carries: what the instances drifted from, in a sentence. */
export function driftBatchReason(findings: NodeDriftFinding[]): string {
  const targets = [...new Set(findings.map((f) => describeTarget(f.target)))];
  const n = findings.length;
  return `node drift: ${n} instance${n === 1 ? '' : 's'} differ${n === 1 ? 's' : ''} from ${targets.join(', ')}`;
}

function describeTarget(target: DriftTarget): string {
  if (target.launchConfiguration) return `launch configuration ${target.launchConfiguration}`;
  return `launch template ${target.launchTemplateId} version ${target.version}${target.imageId ? ` (${target.imageId})` : ''}`;
}
