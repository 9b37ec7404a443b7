import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { AutoScalingClient, CreateAutoScalingGroupCommand, DeleteAutoScalingGroupCommand } from '@aws-sdk/client-auto-scaling';
import { CreateLaunchTemplateCommand, DescribeInstancesCommand, EC2Client, RunInstancesCommand, TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { type KubernetesObject, KubernetesObjectApi, PatchStrategy, loadAllYaml } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { flagItem } from '../../functions/enforcement/flag-store';
import type { Flag } from '../../functions/enforcement/flags';
import { AccountSessions } from '../../functions/shared/accounts';
import { type AwsClientOptions, awsClient, documentClient } from '../../functions/shared/aws';
import { CliUsageError } from '../../functions/shared/cli';
import type { BloodlineReport } from '../../functions/workloads/bloodline';
import { runBloodlineCommand } from '../../functions/workloads/cli';
import { COMMIT_ANNOTATION, FIELD_MANAGER } from '../../functions/workloads/port';
import { FILE_ASSETS_METADATA_KEY } from '../../lib/constructs/workloads';
import { PROJECT_ROOT } from '../../lib/paths';
import { publishOutputs } from '../../local/outputs';
import { type LocalStack, provision } from '../../local/provision';
import { synthTemplate } from '../../local/template';
import { Workloads } from '../../scripts/k8s/workloads';
import { commitAll } from '../../local/git';

/**
 * `fleetwarden bloodline` end to end: a desired state committed to git, synthesized and
 * provisioned into moto with a CloudFormation stack carrying the synthesized outputs; the run's
 * real kube-apiserver read as Fleetwarden's workload identity (the reader role generated from the
 * same desired state); instances launched in moto in the home and a member account, by an Auto
 * Scaling group from a launch template, from a launch template alone, by hand with the enforcer's
 * record of the caller, and by hand unrecorded. The accounts' region is this file's own, so no
 * other test's instances are listed.
 */
const CLUSTER = 'bloodline-eks';
const HOME = '123456789012';
const MEMBER = '888888888888';
const REGION = 'eu-north-1';
const run = randomBytes(3).toString('hex');
const stackName = `fleetwarden-bloodline-${run}`;
const ALICE = `arn:aws:iam::${HOME}:user/alice-${run}`;

const deployment = (namespace: string, name: string, annotations: Record<string, string> = {}) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name }, annotations },
  spec: { replicas: 0, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: 'nginx:1.27.2' }] } } },
});

let k8s: Workloads;
let admin: KubernetesObjectApi;
let stack: LocalStack;
let shop: string;
let commit: string;
let operatorUid: string;
const instances: Record<'grouped' | 'templated' | 'recorded' | 'unknown', string> = { grouped: '', templated: '', recorded: '', unknown: '' };

async function ec2In(account: string): Promise<EC2Client> {
  return awsClient(EC2Client, await memberOptions(account));
}
const memberOptions = (account: string): Promise<AwsClientOptions> => new AccountSessions(HOME, 'fleetwarden-member').options(account, REGION);


/**
 * The read half of the generated workload RBAC (bloodline only reads): the reader ClusterRole
 * and its binding, created when absent. Never replaced: the role is cluster-wide, and another
 * test file's generated reader (which always has the workload kinds bloodline lists) may be
 * there with more kinds its own drift cycles need.
 */
async function applyReaderRbac(manifest: string): Promise<void> {
  for (const object of loadAllYaml(readFileSync(manifest, 'utf8')) as KubernetesObject[]) {
    if (object.kind !== 'ClusterRole' && object.kind !== 'ClusterRoleBinding') continue;
    await admin.create(object).catch((error: { code?: number }) => {
      if (error.code !== 409) throw error;
    });
  }
}

const bloodline = async (...argv: string[]) => {
  const { text, code } = await runBloodlineCommand(['--stack', stackName, ...argv]);
  return { code, text, report: (argv.includes('--json') ? JSON.parse(text) : undefined) as BloodlineReport };
};

beforeAll(async () => {
  k8s = new Workloads(inject('kubeconfig'));
  admin = KubernetesObjectApi.makeApiClient(k8s.kubeConfig);
  shop = await k8s.namespace('bloodline');

  // The desired state: storefront and catalog declared (and a worker not running), committed by Ada.
  const root = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bloodline-'));
  mkdirSync(path.join(root, CLUSTER));
  const declared = [deployment(shop, 'storefront', { 'fleetwarden.io/purpose': 'the shop\'s web tier' }), deployment(shop, 'catalog', { 'fleetwarden.io/purpose': 'the product catalog' }), deployment(shop, 'worker')];
  writeFileSync(path.join(root, CLUSTER, 'shop.yaml'), declared.map((o) => stringify(o)).join('---\n'));
  commit = commitAll(root, 'the shop');

  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  const template = synthTemplate({
    ...base,
    regions: ['us-east-1', REGION],
    accounts: [
      { id: HOME, name: 'fleetwarden-home', environment: 'PROD', regions: [REGION] },
      { id: MEMBER, name: 'bloodline-lab', environment: 'LAB', regions: [REGION] },
    ],
    kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], desiredState: { path: root } },
  });
  stack = await provision(template);
  const outputs = await publishOutputs(stack, stackName);
  const [asset] = template.Metadata![FILE_ASSETS_METADATA_KEY] as { path: string }[];
  const dir = path.dirname(asset!.path);
  await applyReaderRbac(path.join(dir, readdirSync(dir).find((f) => f.endsWith(`.${CLUSTER}.workload-rbac.yaml`))!));
  process.env.FLEETWARDEN_KUBECONFIG = inject('workloadsKubeconfig');

  // What runs: storefront as the cluster's deployer applied it, catalog as a Fleetwarden rollback
  // applied it (its commit stamped), one made by hand, one made by an operator (its owner).
  const apply = (object: object, manager: string) => admin.patch(object as never, undefined, undefined, manager, true, PatchStrategy.ServerSideApply);
  await apply(declared[0]!, 'kubectl');
  await apply(deployment(shop, 'catalog', { 'fleetwarden.io/purpose': 'the product catalog', [COMMIT_ANNOTATION]: commit }), FIELD_MANAGER);
  await apply(deployment(shop, 'intruder'), 'kubectl');
  const owner = await k8s.core.createNamespacedConfigMap({ namespace: shop, body: { metadata: { name: 'shop-operator-state' }, data: { owner: 'yes' } } });
  operatorUid = owner.metadata!.uid!;
  const made = deployment(shop, 'made-by-operator');
  await apply({ ...made, metadata: { ...made.metadata, ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'shop-operator-state', uid: operatorUid, controller: true }] } }, 'shop-operator');

  // What runs in EC2: in the member account, an Auto Scaling group's instance from a launch
  // template, an instance from the template alone, one by hand; in the home account, one by hand
  // that the enforcer flagged and whose caller CloudTrail named.
  const member = await ec2In(MEMBER);
  const lt = await member.send(new CreateLaunchTemplateCommand({ LaunchTemplateName: `web-${run}`, LaunchTemplateData: { ImageId: 'ami-12345678', InstanceType: 'm5.large' } }));
  const templateId = lt.LaunchTemplate!.LaunchTemplateId!;
  await awsClient(AutoScalingClient, await memberOptions(MEMBER)).send(
    new CreateAutoScalingGroupCommand({ AutoScalingGroupName: `web-${run}`, LaunchTemplate: { LaunchTemplateId: templateId, Version: '$Latest' }, MinSize: 1, MaxSize: 1, DesiredCapacity: 1, AvailabilityZones: [`${REGION}a`] }),
  );
  const launched = async (ec2: EC2Client, input: Partial<ConstructorParameters<typeof RunInstancesCommand>[0]>) =>
    (await ec2.send(new RunInstancesCommand({ MinCount: 1, MaxCount: 1, ...input }))).Instances![0]!.InstanceId!;
  instances.templated = await launched(member, { LaunchTemplate: { LaunchTemplateId: templateId, Version: '1' } });
  instances.unknown = await launched(member, { ImageId: 'ami-12345678', InstanceType: 'm5.large', TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'Name', Value: 'scratch' }] }] });
  instances.recorded = await launched(awsClient(EC2Client, { region: REGION }), { ImageId: 'ami-12345678', InstanceType: 'm5.large' });
  const running = await member.send(new DescribeInstancesCommand({ Filters: [{ Name: 'tag:aws:autoscaling:groupName', Values: [`web-${run}`] }] }));
  instances.grouped = running.Reservations![0]!.Instances![0]!.InstanceId!;
  const now = new Date();
  const flag: Flag = {
    instanceKey: `${HOME}/${REGION}/${instances.recorded}`,
    account: HOME,
    region: REGION,
    instanceId: instances.recorded,
    environment: 'PROD',
    state: 'flagged',
    flaggedAt: now.toISOString(),
    graceUntil: new Date(now.getTime() + 86_400_000).toISOString(),
    reason: 'unauthorized: none of tag ManagedBy=fleetwarden, an Auto Scaling group; not allow-listed',
    creator: ALICE,
    flagEventId: `cloudtrail-${run}`,
    version: 2,
  };
  await documentClient().send(new PutCommand({ TableName: outputs.AuthorizationsTableName, Item: flagItem(flag) }));
});

afterAll(async () => {
  delete process.env.FLEETWARDEN_KUBECONFIG;
  await k8s?.cleanup();
  await awsClient(AutoScalingClient, await memberOptions(MEMBER)).send(new DeleteAutoScalingGroupCommand({ AutoScalingGroupName: `web-${run}`, ForceDelete: true })).catch(() => undefined);
  await (await ec2In(MEMBER)).send(new TerminateInstancesCommand({ InstanceIds: [instances.grouped, instances.templated, instances.unknown].filter(Boolean) })).catch(() => undefined);
  if (instances.recorded) await awsClient(EC2Client, { region: REGION }).send(new TerminateInstancesCommand({ InstanceIds: [instances.recorded] })).catch(() => undefined);
});

describe('fleetwarden bloodline: workloads (real kube-apiserver, desired state published to moto)', () => {
  it('gives each running workload of a namespace its commit, author, purpose and creation time, or undeclared with what the cluster says about its creator', async () => {
    // Act
    const { code, report } = await bloodline('--namespace', shop, '--json');
    // Assess
    expect(code).toBe(0);
    expect(report.instances).toBeUndefined();
    expect(report.failures).toEqual([]);
    const byName = Object.fromEntries(report.workloads!.map((w) => [w.name, w]));
    // worker is declared but not running: not listed.
    expect(Object.keys(byName).sort()).toEqual(['catalog', 'intruder', 'made-by-operator', 'storefront']);
    const file = expect.stringMatching(new RegExp(`/${CLUSTER}/shop\\.yaml$`));
    const createdAt = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const ada = { name: 'Ada Lovelace', email: 'ada@example.com' };
    expect(byName.storefront).toEqual({ cluster: CLUSTER, namespace: shop, kind: 'Deployment', name: 'storefront', status: 'declared', commit, commitFrom: 'last-change', declaredCommit: commit, author: ada, authoredAt: expect.any(String), purpose: "the shop's web tier", createdAt, file, creator: null });
    expect(byName.catalog).toMatchObject({ status: 'declared', commit, commitFrom: 'annotation', author: ada, purpose: 'the product catalog', createdAt });
    expect(byName.intruder).toMatchObject({ status: 'undeclared', commit: null, author: null, purpose: null, file: null, createdAt, creator: expect.stringMatching(/^field manager kubectl at \S+Z$/) });
    expect(byName['made-by-operator']).toMatchObject({ status: 'undeclared', creator: 'owned by ConfigMap shop-operator-state' });
  });

  it('prints them as a table, and with --cluster the same', async () => {
    // Act
    const { code, text } = await bloodline('--cluster', CLUSTER, '--namespace', shop);
    // Assess
    expect(code).toBe(0);
    const lines = text.split('\n');
    expect(lines[0]).toBe('Workloads');
    expect(lines[1]).toMatch(/^ {2}CLUSTER +NAMESPACE +KIND +NAME +STATUS +COMMIT +AUTHOR +CREATED +PURPOSE \/ CREATOR$/);
    expect(text).toMatch(new RegExp(`^  ${CLUSTER}  ${shop}  Deployment  catalog +declared +${commit.slice(0, 12)} +Ada Lovelace <ada@example\\.com>  \\S+Z  the product catalog$`, 'm'));
    expect(text).toMatch(new RegExp(`^  ${CLUSTER}  ${shop}  Deployment  intruder +undeclared +- +- +\\S+Z  field manager kubectl at \\S+Z$`, 'm'));
    // The columns line up: every row's STATUS starts where the header's does.
    const at = lines[1]!.indexOf('STATUS');
    expect(lines.slice(2, 6).map((l) => l.slice(at).split(' ')[0])).toEqual(['declared', 'undeclared', 'undeclared', 'declared']);
    expect(text).not.toContain('EC2 instances');
    expect(text.endsWith('4 workloads in 1 cluster: 2 declared, 2 undeclared.')).toBe(true);
  });

  it('lists the rest, says what it could not read and exits 1 when a cluster refuses the identity (Fleetwarden\'s node identity may not list workloads)', async () => {
    // Prepare
    process.env.FLEETWARDEN_KUBECONFIG = inject('fleetwardenKubeconfig');
    try {
      // Act
      const { code, text } = await bloodline('--namespace', shop);
      // Assess
      expect(code).toBe(1);
      expect(text).toContain(`Not read (the lists above are incomplete):\n  cluster ${CLUSTER}: Terminal.KubernetesForbidden: list Deployment: HTTP 403: deployments.apps is forbidden: User "fleetwarden" cannot list resource "deployments" in API group "apps" at the cluster scope`);
      expect(text.startsWith('Workloads\n  none\n')).toBe(true);
    } finally {
      process.env.FLEETWARDEN_KUBECONFIG = inject('workloadsKubeconfig');
    }
  });

  it('refuses a cluster the stack does not configure, naming --cluster', async () => {
    await expect(bloodline('--cluster', 'nowhere-eks')).rejects.toThrow(CliUsageError);
    await expect(bloodline('--cluster', 'nowhere-eks')).rejects.toThrow(`--cluster: stack ${stackName} has no cluster nowhere-eks (${CLUSTER})`);
  });
});

describe('fleetwarden bloodline: EC2 instances (moto, home and member accounts)', () => {
  it('answers from the Auto Scaling group and launch template, the creator the enforcer recorded, or unknown', async () => {
    // Act
    const { code, report } = await bloodline('--instances-only', '--json');
    // Assess
    expect(code).toBe(0);
    expect(report.workloads).toBeUndefined();
    expect(report.failures).toEqual([]);
    const byId = Object.fromEntries(report.instances!.map((i) => [i.instanceId, i]));
    expect(Object.keys(byId).sort()).toEqual(Object.values(instances).sort());
    expect(byId[instances.grouped]).toMatchObject({ account: MEMBER, region: REGION, origin: 'auto-scaling-group', autoScalingGroup: `web-${run}`, launchTemplate: { id: expect.stringMatching(/^lt-/), name: `web-${run}`, version: '1' }, creator: null, flag: null });
    expect(byId[instances.templated]).toMatchObject({ origin: 'launch-template', autoScalingGroup: null, launchTemplate: { name: `web-${run}`, version: '1' } });
    expect(byId[instances.recorded]).toMatchObject({ account: HOME, origin: 'enforcer', creator: ALICE, flag: 'flagged', launchTemplate: null });
    expect(byId[instances.unknown]).toMatchObject({ account: MEMBER, origin: 'unknown', name: 'scratch', creator: null, flag: null, launchedAt: expect.stringMatching(/Z$/) });
  });

  it('reaches member accounts with --member-role from the operator\'s own credentials too', async () => {
    const { code, report } = await bloodline('--instances-only', '--member-role', 'OrganizationAccountAccessRole', '--json');
    expect(code).toBe(0);
    expect(report.instances!.filter((i) => i.account === MEMBER)).toHaveLength(3);
  });

  it('lists workloads and instances together by default', async () => {
    const { code, report } = await bloodline('--json');
    expect(code).toBe(0);
    expect(report.failures).toEqual([]);
    expect(report.workloads!.filter((w) => w.namespace === shop)).toHaveLength(4);
    expect(report.instances).toHaveLength(4);
  });
});

describe('the fleetwarden binary', () => {
  const cli = (args: string[]) =>
    promisify(execFile)(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [path.join(PROJECT_ROOT, 'bin', 'fleetwarden-cli.ts'), ...args], { env: process.env, cwd: PROJECT_ROOT }).then(
      (out) => ({ code: 0, stdout: out.stdout, stderr: out.stderr }),
      (error: { code: number; stdout: string; stderr: string }) => ({ code: error.code, stdout: error.stdout, stderr: error.stderr }),
    );

  it('runs bloodline, and answers bad usage with the flag, its usage and exit status 2', async () => {
    const out = await cli(['bloodline', '--stack', stackName, '--instances-only']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('EC2 instances');
    expect(out.stdout).toContain(`launched by ${ALICE} (recorded by the enforcer)`);
    const bad = await cli(['bloodline', '--stack', stackName, '--instances-only', '--namespace', shop]);
    expect(bad.code).toBe(2);
    expect(bad.stdout).toBe('');
    expect(bad.stderr).toContain('fleetwarden: --instances-only: lists no workloads: drop it or --namespace');
    expect(bad.stderr).toContain('usage: fleetwarden bloodline --stack NAME');
  });
});
