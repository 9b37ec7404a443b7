import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CLUSTER_SCOPED_KINDS, DesiredStateSchema, type ManifestFile, formatProblem, validateDesiredState } from '../../functions/workloads/desired-state';
import { buildApp } from '../../lib/app';
import { ConfigError, parseConfig } from '../../lib/config';
import { PROJECT_ROOT } from '../../lib/paths';
import { loadDesiredState } from '../../lib/workloads/desired-state';
import { type Author, git } from '../../local/git';

const ROOT = 'manifests/clusters';
const FIXTURES = path.join(PROJECT_ROOT, 'test', 'fixtures', 'desired-state', 'clusters');
const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'payments-prod', environment: 'PROD' }] };
const clusters = [{ name: 'prod-eks', region: 'us-east-1' }];

const manifest = (cluster: string | undefined, name: string, text: string): ManifestFile => ({ cluster, file: `${ROOT}/${cluster ? `${cluster}/` : ''}${name}`, text });
const problemsOf = (...files: ManifestFile[]) => validateDesiredState(files, ['prod-eks'], ROOT).problems.map(formatProblem);

const deployment = (name: string, namespace?: string, apiVersion = 'apps/v1') =>
  `apiVersion: ${apiVersion}\nkind: Deployment\nmetadata:\n  name: ${name}\n${namespace ? `  namespace: ${namespace}\n` : ''}spec:\n  replicas: 1\n`;

describe('desired state validation', () => {
  it('reads every document of a multi-document file, numbering them as a reader counts the --- separators', () => {
    // Prepare
    const text = `${deployment('a', 'web')}---\n# only a comment\n---\n${deployment('b', 'web')}`;
    // Act
    const { objects, problems } = validateDesiredState([manifest('prod-eks', 'web.yaml', text)], ['prod-eks'], ROOT);
    // Assess
    expect(problems).toEqual([]);
    expect(objects.map((o) => [o.name, o.document])).toEqual([
      ['a', 1],
      ['b', 3],
    ]);
  });

  it('accepts the example manifests, cluster-scoped kinds without a namespace, the purpose from its annotation or null', () => {
    const files = ['web.yaml', 'platform/priority.yaml'].map((name) => manifest('prod-eks', name, readFileSync(path.join(FIXTURES, 'prod-eks', name), 'utf8')));
    const { objects, problems } = validateDesiredState(files, ['prod-eks'], ROOT);
    expect(problems).toEqual([]);
    expect(objects.map(({ kind, namespace, name, file, document, purpose }) => ({ kind, namespace, name, file, document, purpose }))).toEqual([
      { kind: 'Namespace', namespace: null, name: 'web', file: 'manifests/clusters/prod-eks/web.yaml', document: 1, purpose: null },
      { kind: 'Deployment', namespace: 'web', name: 'storefront', file: 'manifests/clusters/prod-eks/web.yaml', document: 2, purpose: "the shop's web tier (team storefront, ticket SHOP-142)" },
      { kind: 'Service', namespace: 'web', name: 'storefront', file: 'manifests/clusters/prod-eks/web.yaml', document: 3, purpose: null },
      { kind: 'PriorityClass', namespace: null, name: 'storefront-critical', file: 'manifests/clusters/prod-eks/platform/priority.yaml', document: 1, purpose: 'keeps the storefront scheduled ahead of batch work' },
    ]);
    expect(objects[1]!.manifest).toMatchObject({ spec: { replicas: 3, template: { spec: { containers: [{ image: 'public.ecr.aws/nginx/nginx:1.27' }] } } } });
  });

  it('requires a namespace of a namespaced kind, naming the file, the document and the path', () => {
    expect(problemsOf(manifest('prod-eks', 'web.yaml', `${deployment('a', 'web')}---\n${deployment('b')}`))).toEqual([
      'manifests/clusters/prod-eks/web.yaml: document 2: metadata.namespace: required for Deployment',
    ]);
  });

  it('takes a kind it does not know as namespaced, and refuses a namespace on a cluster-scoped kind', () => {
    expect(CLUSTER_SCOPED_KINDS).toEqual(expect.arrayContaining(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass']));
    const text = 'apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: web\n  namespace: web\n';
    expect(problemsOf(manifest('prod-eks', 'x.yaml', text))).toEqual([
      'manifests/clusters/prod-eks/x.yaml: document 1: metadata.namespace: required for Widget',
      'manifests/clusters/prod-eks/x.yaml: document 2: metadata.namespace: Namespace is cluster-scoped: remove the namespace',
    ]);
  });

  it('names each missing field: apiVersion, kind, metadata.name, and a document that is not an object', () => {
    const text = 'kind: Deployment\nmetadata: {name: a, namespace: web}\n---\napiVersion: v1\nmetadata: {name: b, namespace: web}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: c-, namespace: web}\n---\n- just\n- a list\n';
    expect(problemsOf(manifest('prod-eks', 'broken.yml', text))).toEqual([
      'manifests/clusters/prod-eks/broken.yml: document 1: apiVersion: required',
      'manifests/clusters/prod-eks/broken.yml: document 2: kind: required',
      'manifests/clusters/prod-eks/broken.yml: document 3: metadata.name: required (a generateName object cannot be found again to compare)',
      'manifests/clusters/prod-eks/broken.yml: document 4: not a Kubernetes object (a mapping with apiVersion, kind and metadata)',
    ]);
  });

  it('refuses YAML that does not parse, naming the line, and a key given twice', () => {
    const problems = problemsOf(manifest('prod-eks', 'bad.yaml', `${deployment('a', 'web')}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a: b\n`), manifest('prod-eks', 'twice.yaml', `${deployment('a', 'api')}kind: Service\n`));
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^manifests\/clusters\/prod-eks\/bad\.yaml: document 2: Nested mappings are not allowed in compact mappings at line 12, column 9$/);
    expect(problems[1]).toMatch(/^manifests\/clusters\/prod-eks\/twice\.yaml: document 1: Map keys must be unique/);
  });

  it('refuses an object declared twice in a cluster, whatever the version of its group, naming where it was first', () => {
    const problems = problemsOf(manifest('prod-eks', 'a.yaml', deployment('web', 'shop')), manifest('prod-eks', 'b.yaml', `${deployment('api', 'shop')}---\n${deployment('web', 'shop', 'apps/v1beta2')}`));
    expect(problems).toEqual(['manifests/clusters/prod-eks/b.yaml: document 2: apps/Deployment shop/web is already declared in manifests/clusters/prod-eks/a.yaml document 1']);
  });

  it('lets two clusters declare the same object, and two namespaces the same name', () => {
    const { problems } = validateDesiredState(
      [manifest('prod-eks', 'a.yaml', `${deployment('web', 'shop')}---\n${deployment('web', 'staging')}`), manifest('dr-eks', 'a.yaml', deployment('web', 'shop'))],
      ['prod-eks', 'dr-eks'],
      ROOT,
    );
    expect(problems).toEqual([]);
  });

  it('refuses a folder that names no configured cluster, once, and a manifest outside any cluster folder', () => {
    expect(problemsOf(manifest('staging-eks', 'a.yaml', deployment('a', 'web')), manifest('staging-eks', 'b.yaml', deployment('b', 'web')), manifest(undefined, 'loose.yaml', deployment('c', 'web')))).toEqual([
      'manifests/clusters/staging-eks: no cluster staging-eks in kubernetes.clusters (prod-eks)',
      "manifests/clusters/loose.yaml: not in a cluster's folder: put it under manifests/clusters/<cluster>/",
    ]);
  });

  it('refuses a List, whose items must be declared one by one', () => {
    expect(problemsOf(manifest('prod-eks', 'list.yaml', 'apiVersion: v1\nkind: List\nmetadata: {name: l}\nitems: []\n'))).toEqual(['manifests/clusters/prod-eks/list.yaml: document 1: kind: List: declare each item as its own document']);
  });
});

// Temporary git repositories with fixed authors and dates, away from the user's git config.
const temporary: string[] = [];
afterEach(() => {
  for (const dir of temporary.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-desired-'));
  temporary.push(dir);
  return dir;
}

const GRACE: Author = { name: 'Grace Hopper', email: 'grace@example.com', date: '2026-11-20T17:30:00+01:00' };

/** A checkout holding the example manifests under manifests/clusters, committed by Ada. */
function checkout(): string {
  const dir = tempDir();
  cpSync(FIXTURES, path.join(dir, ROOT), { recursive: true });
  writeFileSync(path.join(dir, 'cdk.json'), '{}\n');
  git(dir, ['init', '-q']);
  git(dir, ['add', '.']);
  git(dir, ['commit', '-q', '-m', 'storefront']);
  return dir;
}

const configFor = (stage: 'dev' | 'prod' = 'dev', kubernetes: Record<string, unknown> = { clusters }) => parseConfig({ ...base, stage, kubernetes });

describe('desired state provenance', () => {
  it('publishes the commit of the checkout, and per object who last changed its file, when, and why the object exists', () => {
    // Prepare
    const dir = checkout();
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'platform', 'priority.yaml'), readFileSync(path.join(FIXTURES, 'prod-eks', 'platform', 'priority.yaml'), 'utf8').replace('100000', '200000'));
    git(dir, ['commit', '-q', '-am', 'storefront first'], GRACE);
    const head = git(dir, ['rev-parse', 'HEAD']).trim();
    const first = git(dir, ['rev-parse', 'HEAD~1']).trim();
    // Act
    const state = loadDesiredState(configFor(), { projectRoot: dir })!;
    // Assess
    expect(DesiredStateSchema.parse(state)).toEqual(state);
    expect(state.source).toEqual({ provenance: 'git', commit: head, dirty: false, dirtyFiles: [] });
    expect(state.clusters).toEqual(['prod-eks']);
    const storefront = state.objects.find((o) => o.kind === 'Deployment')!;
    expect(storefront).toMatchObject({
      cluster: 'prod-eks',
      namespace: 'web',
      name: 'storefront',
      file: 'manifests/clusters/prod-eks/web.yaml',
      document: 2,
      purpose: "the shop's web tier (team storefront, ticket SHOP-142)",
      lastChange: { commit: first, author: { name: 'Ada Lovelace', email: 'ada@example.com' }, authoredAt: '2026-11-02T09:00:00+00:00', committedAt: '2026-11-02T09:00:00+00:00' },
    });
    expect(state.objects.find((o) => o.kind === 'PriorityClass')!.lastChange).toEqual({ commit: head, author: { name: 'Grace Hopper', email: 'grace@example.com' }, authoredAt: '2026-11-20T17:30:00+01:00', committedAt: '2026-11-20T17:30:00+01:00' });
    expect(state.objects.find((o) => o.kind === 'Namespace')!.purpose).toBeNull();
  });

  it('marks the state dirty, naming the files, when a manifest is modified or not committed, and still publishes it for stage dev', () => {
    const dir = checkout();
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'web.yaml'), readFileSync(path.join(dir, ROOT, 'prod-eks', 'web.yaml'), 'utf8').replace('replicas: 3', 'replicas: 4'));
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'api.yaml'), deployment('api', 'web'));

    const state = loadDesiredState(configFor('dev'), { projectRoot: dir })!;

    expect(state.source).toMatchObject({ provenance: 'git', dirty: true, dirtyFiles: ['manifests/clusters/prod-eks/api.yaml', 'manifests/clusters/prod-eks/web.yaml'] });
    expect(state.objects.find((o) => o.name === 'api')!.lastChange).toBeNull();
  });

  it('refuses to publish a dirty state for stage prod, naming the files and why', () => {
    const dir = checkout();
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'web.yaml'), readFileSync(path.join(dir, ROOT, 'prod-eks', 'web.yaml'), 'utf8').replace('replicas: 3', 'replicas: 4'));

    expect(() => loadDesiredState(configFor('prod'), { projectRoot: dir })).toThrow(ConfigError);
    expect(() => loadDesiredState(configFor('prod'), { projectRoot: dir })).toThrow(
      /^Refusing to publish the desired state: stage prod publishes only committed manifests, and manifests\/clusters differs from commit [0-9a-f]{12}: manifests\/clusters\/prod-eks\/web\.yaml \(commit them/,
    );
  });

  it('counts a deleted or git-ignored manifest as dirty too, but not a change outside the manifests path', () => {
    const dir = checkout();
    writeFileSync(path.join(dir, 'cdk.json'), '{"changed":true}\n');
    expect(loadDesiredState(configFor('prod'), { projectRoot: dir })!.source).toMatchObject({ dirty: false });

    rmSync(path.join(dir, ROOT, 'prod-eks', 'platform', 'priority.yaml'));
    writeFileSync(path.join(dir, '.gitignore'), 'local-*.yaml\n');
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'local-debug.yaml'), deployment('debug', 'web'));
    expect(loadDesiredState(configFor('dev'), { projectRoot: dir })!.source).toMatchObject({
      dirty: true,
      dirtyFiles: ['manifests/clusters/prod-eks/local-debug.yaml', 'manifests/clusters/prod-eks/platform/priority.yaml'],
    });
  });

  it('publishes provenance unknown outside a git checkout, and stage prod refuses it', () => {
    const dir = tempDir();
    cpSync(FIXTURES, path.join(dir, ROOT), { recursive: true });

    const state = loadDesiredState(configFor('dev'), { projectRoot: dir })!;
    expect(state.source).toMatchObject({ provenance: 'unknown', reason: expect.stringContaining('is not in a git checkout') });
    expect(state.objects.every((o) => o.lastChange === null)).toBe(true);
    expect(() => loadDesiredState(configFor('prod'), { projectRoot: dir })).toThrow(/^Refusing to publish the desired state: stage prod publishes the desired state only from a git checkout, and its provenance is unknown/);
  });

  it('reads the folder kubernetes.desiredState.path names, and publishes nothing without a cluster or a manifest', () => {
    const dir = checkout();
    mkdirSync(path.join(dir, 'gitops', 'prod-eks'), { recursive: true });
    writeFileSync(path.join(dir, 'gitops', 'prod-eks', 'README.md'), 'not a manifest\n');

    expect(loadDesiredState(configFor('dev', { clusters, desiredState: { path: 'gitops' } }), { projectRoot: dir })).toBeUndefined();
    expect(loadDesiredState(configFor('dev', { clusters: [] }), { projectRoot: dir })).toBeUndefined();
    expect(loadDesiredState(configFor('dev', { clusters, desiredState: { path: 'nowhere' } }), { projectRoot: dir })).toBeUndefined();
    expect(loadDesiredState(configFor('dev', { clusters, desiredState: { path: path.join(dir, ROOT) } }))!.objects).toHaveLength(4);
  });

  it('fails the synth itself, listing every bad manifest with its file and path', () => {
    const dir = checkout();
    writeFileSync(path.join(dir, ROOT, 'prod-eks', 'api.yaml'), `${deployment('api', 'web')}---\n${deployment('worker')}`);
    mkdirSync(path.join(dir, ROOT, 'staging-eks'));
    writeFileSync(path.join(dir, ROOT, 'staging-eks', 'web.yaml'), deployment('web', 'web'));

    const root = path.join(dir, ROOT);

    expect(() => buildApp({ skipBundling: true, nag: false, config: { ...base, kubernetes: { clusters, desiredState: { path: root } } } })).toThrow(
      [
        `Invalid desired state (kubernetes.desiredState.path ${root}):`,
        `  ${root}/prod-eks/api.yaml: document 2: metadata.namespace: required for Deployment`,
        `  ${root}/staging-eks: no cluster staging-eks in kubernetes.clusters (prod-eks)`,
      ].join('\n'),
    );
  });
});
