import { describe, expect, it } from 'vitest';
import { CliUsageError } from '../../functions/shared/cli';
import { type BloodlineReport, type EnforcerRecord, type InstanceFacts, type WorkloadBloodline, formatBloodline, instanceBloodline, workloadBloodline } from '../../functions/workloads/bloodline';
import type { DeclaredObject, DesiredState, DesiredStateSource } from '../../functions/workloads/desired-state';
import { classify } from '../../functions/kubernetes/errors';
import { type BloodlineScope, type BloodlineSources, accountRegions, errorLine, parseBloodlineArgs, parseS3Url, readBloodline } from '../../functions/workloads/cli';
import type { KubeObject } from '../../functions/workloads/port';

const C1 = 'a'.repeat(40);
const C2 = 'b'.repeat(40);
const HEAD = 'c'.repeat(40);
const ada = { name: 'Ada Lovelace', email: 'ada@example.com' };

const declaredDeployment = (name: string, options: { namespace?: string; purpose?: string | null; commit?: string | null; kind?: string; apiVersion?: string } = {}): DeclaredObject => ({
  cluster: 'prod-eks',
  apiVersion: options.apiVersion ?? 'apps/v1',
  kind: options.kind ?? 'Deployment',
  namespace: options.namespace ?? 'shop',
  name,
  file: `manifests/clusters/prod-eks/${name}.yaml`,
  document: 1,
  purpose: options.purpose === undefined ? `the ${name} service` : options.purpose,
  lastChange: options.commit === null ? null : { commit: options.commit ?? C1, author: ada, authoredAt: '2026-11-02T09:00:00+00:00', committedAt: '2026-11-02T09:05:00+00:00' },
  manifest: { apiVersion: options.apiVersion ?? 'apps/v1', kind: options.kind ?? 'Deployment', metadata: { name, namespace: options.namespace ?? 'shop' } },
});

const live = (name: string, metadata: KubeObject['metadata'] = {}, kind = 'Deployment', apiVersion = 'apps/v1'): KubeObject => ({
  apiVersion,
  kind,
  metadata: { name, namespace: 'shop', uid: `uid-${name}`, creationTimestamp: '2026-12-07T10:00:00Z', ...metadata },
});

const git: DesiredStateSource = { provenance: 'git', commit: HEAD, dirty: false, dirtyFiles: [] };

const row = (rows: WorkloadBloodline[], name: string) => rows.find((r) => r.name === name)!;

describe('the bloodline of a cluster\'s workloads', () => {
  it('gives a declared workload the commit Fleetwarden stamped on it when applying, and the author and purpose of its declaration', () => {
    // Act
    const rows = workloadBloodline({ cluster: 'prod-eks', declared: [declaredDeployment('catalog', { commit: C1 })], source: git, live: [live('catalog', { annotations: { 'fleetwarden.io/commit': C2 } })] });
    // Assess
    expect(rows).toEqual([
      {
        cluster: 'prod-eks',
        namespace: 'shop',
        kind: 'Deployment',
        name: 'catalog',
        status: 'declared',
        commit: C2,
        commitFrom: 'annotation',
        declaredCommit: C1,
        author: ada,
        authoredAt: '2026-11-02T09:00:00+00:00',
        purpose: 'the catalog service',
        createdAt: '2026-12-07T10:00:00Z',
        file: 'manifests/clusters/prod-eks/catalog.yaml',
        creator: null,
      },
    ]);
  });

  it('gives a declared workload without the annotation the last commit of its file, else the commit the state was published from, else none', () => {
    // Act
    const declared = [declaredDeployment('storefront'), declaredDeployment('draft', { commit: null, purpose: null })];
    const rows = workloadBloodline({ cluster: 'prod-eks', declared, source: git, live: [live('storefront'), live('draft')] });
    const noGit = workloadBloodline({ cluster: 'prod-eks', declared, source: { provenance: 'unknown', reason: 'no git' }, live: [live('draft')] });
    // Assess
    expect(row(rows, 'storefront')).toMatchObject({ status: 'declared', commit: C1, commitFrom: 'last-change', author: ada, purpose: 'the storefront service' });
    expect(row(rows, 'draft')).toMatchObject({ status: 'declared', commit: HEAD, commitFrom: 'published', declaredCommit: null, author: null, purpose: null });
    expect(noGit[0]).toMatchObject({ status: 'declared', commit: null, commitFrom: null });
  });

  it('matches a declared object whatever the version of its API group', () => {
    const rows = workloadBloodline({ cluster: 'prod-eks', declared: [declaredDeployment('legacy', { apiVersion: 'apps/v1beta2' })], source: git, live: [live('legacy')] });
    expect(rows[0]).toMatchObject({ status: 'declared', commit: C1 });
  });

  it('says of an undeclared workload what the cluster says about its creator: its controller owner first, else the manager that created it', () => {
    // Prepare
    const owned = live('operator-made', {
      ownerReferences: [
        { apiVersion: 'example.com/v1', kind: 'Widget', name: 'other', uid: 'u1' },
        { apiVersion: 'example.com/v1', kind: 'Shop', name: 'main', uid: 'u2', controller: true },
      ],
      managedFields: [{ manager: 'shop-operator', operation: 'Update', time: '2026-12-07T10:00:00Z' }],
    });
    const byHand = live('intruder', {
      managedFields: [
        { manager: 'kube-controller-manager', operation: 'Update', time: '2026-12-07T10:00:05Z', subresource: 'status' },
        { manager: 'kubectl', operation: 'Apply', time: '2026-12-07T10:00:00Z' },
      ],
      annotations: { 'fleetwarden.io/purpose': 'a quick test' },
    });
    // Act
    const rows = workloadBloodline({ cluster: 'prod-eks', declared: [], source: git, live: [owned, byHand, live('mystery', { managedFields: [] })] });
    // Assess
    expect(row(rows, 'operator-made')).toMatchObject({ status: 'undeclared', commit: null, commitFrom: null, author: null, file: null, creator: 'owned by Shop main' });
    expect(row(rows, 'intruder')).toMatchObject({ status: 'undeclared', creator: 'field manager kubectl at 2026-12-07T10:00:00Z', purpose: 'a quick test' });
    expect(row(rows, 'mystery')).toMatchObject({ status: 'undeclared', creator: 'unknown' });
  });

  it('keeps the commit annotation of an undeclared workload Fleetwarden once applied (removed from git since)', () => {
    const rows = workloadBloodline({ cluster: 'prod-eks', declared: [], source: git, live: [live('retired', { annotations: { 'fleetwarden.io/commit': C2 }, managedFields: [{ manager: 'fleetwarden', operation: 'Apply' }] })] });
    expect(rows[0]).toMatchObject({ status: 'undeclared', commit: C2, commitFrom: 'annotation', declaredCommit: null, creator: 'field manager fleetwarden' });
  });

  it('takes a workload owned by a declared object as declared through it, and names the owner', () => {
    // Prepare: a declared custom resource whose operator makes a Deployment.
    const shop = declaredDeployment('main', { kind: 'Shop', apiVersion: 'example.com/v1', purpose: 'the shop' });
    const made = live('main-web', { ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Shop', name: 'main', controller: true }] });
    // Act
    const rows = workloadBloodline({ cluster: 'prod-eks', declared: [shop], source: git, live: [made] });
    // Assess
    expect(rows).toEqual([expect.objectContaining({ name: 'main-web', status: 'declared', commit: C1, commitFrom: 'last-change', purpose: 'the shop', file: shop.file, creator: 'owned by Shop main' })]);
  });

  it('lists running Deployments, StatefulSets and DaemonSets only, not objects being deleted or of other kinds, in namespace, kind and name order', () => {
    // Act
    const rows = workloadBloodline({
      cluster: 'prod-eks',
      declared: [declaredDeployment('settings', { kind: 'ConfigMap', apiVersion: 'v1' })],
      source: git,
      live: [
        live('web'),
        live('db', {}, 'StatefulSet'),
        live('agent', { namespace: 'kube-system' }, 'DaemonSet'),
        live('settings', {}, 'ConfigMap', 'v1'),
        live('going', { deletionTimestamp: '2026-12-07T11:00:00Z' }),
      ],
    });
    // Assess
    expect(rows.map((r) => `${r.namespace}/${r.kind}/${r.name}`)).toEqual(['kube-system/DaemonSet/agent', 'shop/Deployment/web', 'shop/StatefulSet/db']);
  });
});

describe('the bloodline of EC2 instances', () => {
  const instance = (instanceId: string, tags: Record<string, string> = {}, account = '111111111111'): InstanceFacts => ({ account, region: 'us-east-1', instanceId, state: 'running', launchTime: '2026-12-07T09:00:00.000Z', tags });
  const records = new Map<string, EnforcerRecord>([
    ['111111111111/us-east-1/i-0000000000000000b', { state: 'flagged', creator: 'arn:aws:iam::111111111111:user/alice' }],
    ['111111111111/us-east-1/i-0000000000000000e', { state: 'left' }],
  ]);

  it('answers from the Auto Scaling group and launch template tags, the creator the enforcer recorded, or unknown', () => {
    // Act
    const rows = instanceBloodline({
      instances: [
        instance('i-0000000000000000a', { 'aws:autoscaling:groupName': 'web', 'aws:ec2launchtemplate:id': 'lt-0123', 'aws:ec2launchtemplate:version': '3', Name: 'web-node' }),
        instance('i-0000000000000000b'),
        instance('i-0000000000000000c', { 'aws:ec2launchtemplate:id': 'lt-gone', 'aws:ec2launchtemplate:version': '1' }),
        instance('i-0000000000000000d'),
        instance('i-0000000000000000e'),
      ],
      templateNames: new Map([['lt-0123', 'web-template']]),
      records,
    });
    // Assess
    expect(rows[0]).toEqual({
      account: '111111111111',
      region: 'us-east-1',
      instanceId: 'i-0000000000000000a',
      name: 'web-node',
      launchedAt: '2026-12-07T09:00:00.000Z',
      autoScalingGroup: 'web',
      launchTemplate: { id: 'lt-0123', name: 'web-template', version: '3' },
      creator: null,
      flag: null,
      origin: 'auto-scaling-group',
    });
    expect(rows[1]).toMatchObject({ origin: 'enforcer', creator: 'arn:aws:iam::111111111111:user/alice', flag: 'flagged', autoScalingGroup: null, launchTemplate: null });
    expect(rows[2]).toMatchObject({ origin: 'launch-template', launchTemplate: { id: 'lt-gone', name: null, version: '1' } });
    expect(rows[3]).toMatchObject({ origin: 'unknown', creator: null, flag: null });
    expect(rows[4]).toMatchObject({ origin: 'unknown', flag: 'left' });
  });

  it('keys the enforcer\'s records by account, region and instance: another account\'s record is not this instance\'s', () => {
    const rows = instanceBloodline({ instances: [instance('i-0000000000000000b', {}, '222222222222')], templateNames: new Map(), records });
    expect(rows[0]).toMatchObject({ origin: 'unknown', creator: null });
  });
});

describe('the text', () => {
  const report: BloodlineReport = {
    workloads: [
      ...workloadBloodline({
        cluster: 'prod-eks',
        declared: [declaredDeployment('catalog'), declaredDeployment('storefront')],
        source: git,
        live: [live('catalog', { annotations: { 'fleetwarden.io/commit': C2 } }), live('storefront'), live('intruder', { managedFields: [{ manager: 'kubectl', operation: 'Apply', time: '2026-12-07T10:01:00Z' }] })],
      }),
    ],
    instances: instanceBloodline({
      instances: [
        { account: '111111111111', region: 'us-east-1', instanceId: 'i-0000000000000000a', state: 'running', launchTime: '2026-12-07T09:00:00.000Z', tags: { 'aws:autoscaling:groupName': 'web', 'aws:ec2launchtemplate:id': 'lt-0123', 'aws:ec2launchtemplate:version': '3', Name: 'web-node' } },
        { account: '111111111111', region: 'us-east-1', instanceId: 'i-0000000000000000b', state: 'running', launchTime: '2026-12-07T09:30:00.000Z', tags: {} },
        { account: '222222222222', region: 'eu-west-1', instanceId: 'i-0000000000000000c', state: 'pending', launchTime: null, tags: {} },
      ],
      templateNames: new Map([['lt-0123', 'web-template']]),
      records: new Map([['111111111111/us-east-1/i-0000000000000000b', { state: 'flagged', creator: 'arn:aws:iam::111111111111:user/alice' }]]),
    }),
    notes: [],
    failures: [],
  };

  it('is two aligned tables and a summary', () => {
    expect(formatBloodline(report)).toBe(
      [
        'Workloads',
        '  CLUSTER   NAMESPACE  KIND        NAME        STATUS      COMMIT                                                     AUTHOR                          CREATED               PURPOSE / CREATOR',
        '  prod-eks  shop       Deployment  catalog     declared    bbbbbbbbbbbb (applied; file last changed in aaaaaaaaaaaa)  Ada Lovelace <ada@example.com>  2026-12-07T10:00:00Z  the catalog service',
        '  prod-eks  shop       Deployment  intruder    undeclared  -                                                          -                               2026-12-07T10:00:00Z  field manager kubectl at 2026-12-07T10:01:00Z',
        '  prod-eks  shop       Deployment  storefront  declared    aaaaaaaaaaaa                                               Ada Lovelace <ada@example.com>  2026-12-07T10:00:00Z  the storefront service',
        '',
        'EC2 instances',
        '  ACCOUNT       REGION     INSTANCE             NAME      LAUNCHED              ORIGIN',
        '  111111111111  us-east-1  i-0000000000000000a  web-node  2026-12-07T09:00:00Z  Auto Scaling group web; launch template web-template (lt-0123) version 3',
        '  111111111111  us-east-1  i-0000000000000000b  -         2026-12-07T09:30:00Z  launched by arn:aws:iam::111111111111:user/alice (recorded by the enforcer)',
        '  222222222222  eu-west-1  i-0000000000000000c  -         -                     unknown: no Auto Scaling group or launch template, no creator recorded by the enforcer',
        '',
        '3 workloads in 1 cluster: 2 declared, 1 undeclared; 3 instances: 1 from an Auto Scaling group, 1 with a creator recorded by the enforcer, 0 from a launch template alone, 1 unknown.',
      ].join('\n'),
    );
  });

  it('says what was not read and what to know, and shows only the parts asked for', () => {
    const text = formatBloodline({ workloads: [], notes: ['cluster staging-eks has no folder in the desired state (manifests/clusters): none of its workloads is declared'], failures: [{ target: 'cluster prod-eks', error: 'Retryable.KubernetesUnavailable: no answer' }] });
    expect(text).toBe(
      [
        'Workloads',
        '  none',
        '',
        'Note: cluster staging-eks has no folder in the desired state (manifests/clusters): none of its workloads is declared',
        '',
        'Not read (the lists above are incomplete):',
        '  cluster prod-eks: Retryable.KubernetesUnavailable: no answer',
        '',
        '0 workloads: 0 declared, 0 undeclared.',
      ].join('\n'),
    );
    expect(formatBloodline({ instances: [], notes: [], failures: [] })).toBe('EC2 instances\n  none\n\n0 instances: 0 from an Auto Scaling group, 0 with a creator recorded by the enforcer, 0 from a launch template alone, 0 unknown.');
  });
});

describe('fleetwarden bloodline flags', () => {
  it('asks for workloads and instances by default; --cluster and --namespace are about workloads and leave instances out', () => {
    expect(parseBloodlineArgs(['--stack', 'S'])).toMatchObject({ stack: 'S', workloads: true, instances: true, json: false });
    expect(parseBloodlineArgs(['--stack', 'S', '--cluster', 'prod-eks', '--namespace', 'shop', '--json'])).toMatchObject({ cluster: 'prod-eks', namespace: 'shop', workloads: true, instances: false, json: true });
    expect(parseBloodlineArgs(['--stack', 'S', '--workloads-only'])).toMatchObject({ workloads: true, instances: false });
    expect(parseBloodlineArgs(['--stack', 'S', '--instances-only', '--member-role', 'OrganizationAccountAccessRole'])).toMatchObject({ workloads: false, instances: true, 'member-role': 'OrganizationAccountAccessRole' });
  });

  it('takes --region, --profile and --json as the AWS CLI has them', () => {
    expect(parseBloodlineArgs(['--stack', 'S', '--region', 'eu-west-1', '--profile', 'ops', '--json'])).toMatchObject({ region: 'eu-west-1', profile: 'ops', json: true });
  });

  it('names the bad flag', () => {
    const parse = (...argv: string[]) => () => parseBloodlineArgs(argv);
    expect(parse()).toThrow('--stack: required');
    expect(parse('--stack')).toThrow('--stack: needs a value');
    expect(parse('--stack', 'S', '--namespace', 'Shop_1')).toThrow('--namespace: a namespace name: lower-case letters, digits and -, at most 63');
    expect(parse('--stack', 'S', '--namespace')).toThrow('--namespace: needs a value');
    expect(parse('--stack', 'S', '--cluster', 'prod eks')).toThrow('--cluster: an EKS cluster name: letters, digits, - and _');
    expect(parse('--stack', 'S', '--instances-only', '--cluster', 'prod-eks')).toThrow('--instances-only: lists no workloads: drop it or --cluster');
    expect(parse('--stack', 'S', '--instances-only', '--workloads-only')).toThrow('--instances-only: lists no workloads: drop it or --workloads-only');
    expect(parse('--stack', 'S', '--workloads-only=yes')).toThrow('--workloads-only: a switch takes no value');
    expect(parse('--stack', 'S', '--member-role', 'arn:aws:iam::1:role/x')).toThrow('--member-role: an IAM role name, like OrganizationAccountAccessRole');
    expect(parse('--stack', 'S', '--region', 'mars')).toThrow('--region: a region looks like us-east-1');
    expect(parse('--stack', 'S', '--namespcae', 'shop')).toThrow('unknown flag: --namespcae (did you mean --namespace?)');
    expect(parse('--stack', 'S', 'now')).toThrow(CliUsageError);
  });
});

describe('reading the bloodline', () => {
  const state: DesiredState = { version: 1, path: 'manifests/clusters', clusters: ['prod-eks'], source: git, objects: [declaredDeployment('storefront')] };
  const scope: BloodlineScope = {
    clusters: ['prod-eks', 'staging-eks', 'broken-eks'],
    targets: [
      { account: '111111111111', region: 'us-east-1' },
      { account: '222222222222', region: 'us-east-1' },
    ],
    desiredState: true,
  };
  const sources = (overrides: Partial<BloodlineSources> = {}): BloodlineSources => ({
    desiredState: () => Promise.resolve(state),
    list: (cluster, _apiVersion, kind) => {
      if (cluster === 'broken-eks') return Promise.reject(Object.assign(new Error('no answer in 30 s'), { name: 'Retryable.KubernetesUnavailable' }));
      if (kind !== 'Deployment') return Promise.resolve([]);
      return Promise.resolve([live('storefront'), { ...live('intruder'), metadata: { ...live('intruder').metadata, namespace: 'ops' } }]);
    },
    instances: (t) => (t.account === '222222222222' ? Promise.reject(Object.assign(new Error('not authorized'), { name: 'AccessDenied' })) : Promise.resolve([{ ...t, instanceId: 'i-0000000000000000a', state: 'running', launchTime: null, tags: { 'aws:ec2launchtemplate:id': 'lt-1' } }])),
    templateNames: () => Promise.resolve(new Map([['lt-1', 'batch']])),
    enforcerRecords: () => Promise.resolve(new Map()),
    ...overrides,
  });
  const args = (...argv: string[]) => parseBloodlineArgs(['--stack', 'S', ...argv]);

  it('reads every cluster and account-region, reports the ones that fail, and notes clusters outside desired-state management', async () => {
    // Act
    const report = await readBloodline(args(), scope, sources());
    // Assess
    expect(report.workloads!.map((w) => `${w.cluster} ${w.namespace}/${w.name} ${w.status}`)).toEqual(['prod-eks ops/intruder undeclared', 'prod-eks shop/storefront declared', 'staging-eks ops/intruder undeclared', 'staging-eks shop/storefront undeclared']);
    expect(report.instances).toEqual([expect.objectContaining({ instanceId: 'i-0000000000000000a', origin: 'launch-template', launchTemplate: { id: 'lt-1', name: 'batch', version: null } })]);
    expect(report.notes).toEqual(['cluster broken-eks has no folder in the desired state (manifests/clusters): none of its workloads is declared', 'cluster staging-eks has no folder in the desired state (manifests/clusters): none of its workloads is declared']);
    expect(report.failures).toEqual([
      { target: 'account 222222222222 us-east-1', error: 'AccessDenied: not authorized' },
      { target: 'cluster broken-eks', error: 'Retryable.KubernetesUnavailable: no answer in 30 s' },
    ]);
  });

  it('reads only the cluster and namespace asked for, and no instances then', async () => {
    const report = await readBloodline(args('--cluster', 'prod-eks', '--namespace', 'ops'), scope, sources());
    expect(report.workloads!.map((w) => w.name)).toEqual(['intruder']);
    expect(report.instances).toBeUndefined();
    expect(report.failures).toEqual([]);
  });

  it('lists no workload when the desired state cannot be read (each would be called undeclared), and instances without creators when the enforcer\'s table cannot be read', async () => {
    const broken = sources({ desiredState: () => Promise.reject(new Error('AccessDenied')), enforcerRecords: () => Promise.reject(Object.assign(new Error('no table'), { name: 'ResourceNotFoundException' })) });
    const report = await readBloodline(args(), scope, broken);
    expect(report.workloads).toEqual([]);
    expect(report.instances).toHaveLength(1);
    expect(report.failures.map((f) => f.target)).toEqual(['account 222222222222 us-east-1', 'desired state', "the enforcer's records (creators not shown)"]);
  });

  it('says when no desired state is published or no cluster is configured', async () => {
    const none = await readBloodline(args('--workloads-only'), { ...scope, desiredState: false }, sources({ desiredState: () => Promise.resolve(null) }));
    expect(none.notes).toContain('the stack publishes no desired state (kubernetes.desiredState): no workload is declared');
    expect(none.workloads!.every((w) => w.status === 'undeclared')).toBe(true);
    const noClusters = await readBloodline(args('--workloads-only'), { ...scope, clusters: [] }, sources());
    expect(noClusters).toEqual({ workloads: [], notes: ['no cluster is configured (kubernetes.clusters): there are no workloads to list'], failures: [] });
  });
});

describe('where bloodline looks', () => {
  it('visits every configured account in its own regions, else in all of them, the home account\'s home region included', () => {
    const access = {
      homeAccount: '123456789012',
      homeRegion: 'us-east-1',
      homeBusArn: 'arn:aws:events:us-east-1:123456789012:event-bus/default',
      memberRoleName: 'fleetwarden-member',
      regions: ['us-east-1', 'eu-west-1'],
      accounts: [
        { id: '123456789012', name: 'home' },
        { id: '222222222222', name: 'staging', regions: ['eu-west-1'] },
      ],
    };
    expect(accountRegions(access)).toEqual([
      { account: '123456789012', region: 'us-east-1' },
      { account: '123456789012', region: 'eu-west-1' },
      { account: '222222222222', region: 'eu-west-1' },
    ]);
  });

  it('says a Kubernetes API error by its Status message, not the Status as JSON', () => {
    const forbidden = classify(Object.assign(new Error('list Deployment: HTTP 403'), { code: 403, body: { kind: 'Status', status: 'Failure', message: 'deployments.apps is forbidden: User "ada" cannot list resource "deployments" in API group "apps" at the cluster scope', reason: 'Forbidden' } }), 'list Deployment');
    expect(errorLine(forbidden)).toBe('Terminal.KubernetesForbidden: list Deployment: HTTP 403: deployments.apps is forbidden: User "ada" cannot list resource "deployments" in API group "apps" at the cluster scope');
    expect(errorLine(Object.assign(new Error('User is not authorized to perform: sts:AssumeRole'), { name: 'AccessDenied' }))).toBe('AccessDenied: User is not authorized to perform: sts:AssumeRole');
  });

  it('reads the desired state from its s3:// URL', () => {
    expect(parseS3Url('s3://cdk-hnb659fds-assets-123456789012-us-east-1/abc.json')).toEqual({ bucket: 'cdk-hnb659fds-assets-123456789012-us-east-1', key: 'abc.json' });
    expect(() => parseS3Url('https://example.com/x')).toThrow('not an s3://bucket/key URL');
  });
});
