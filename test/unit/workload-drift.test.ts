import { loadAllYaml } from '@kubernetes/client-node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type DeclaredObject, type ManifestFile, formatProblem, objectIdentity, validateDesiredState } from '../../functions/workloads/desired-state';
import {
  type Candidate,
  type Observation,
  type WorkloadDrift,
  confirm,
  creatorOf,
  driftEvents,
  driftIdOf,
  effectiveManifest,
  examine,
  hpaTargets,
  kindsToList,
  planCycle,
  rollbackExecutionName,
} from '../../functions/workloads/drift';
import { type DriftSubject, WorkloadDriftPolicySchema, decideDriftAction, protectedNamespaces } from '../../functions/workloads/policy';
import { COMMIT_ANNOTATION, type KubeObject } from '../../functions/workloads/port';
import { rolloutSettled } from '../../functions/workloads/rollback';
import { WORKLOADS_GROUP, WORKLOAD_READER_ROLE, WORKLOAD_WRITER_ROLE, allowedPermissions, resourceOf, workloadRbac, workloadRbacManifest } from '../../lib/kubernetes/rbac';

const CLUSTER = 'prod-eks';
const COMMIT = 'a'.repeat(40);
const DECLARING_COMMIT = 'b'.repeat(40);
const T0 = new Date('2026-11-02T09:00:00.000Z');
const minutes = (n: number) => new Date(T0.getTime() + n * 60_000);

const policy = (p: Record<string, unknown> = {}) => WorkloadDriftPolicySchema.parse(p);

// ---------------------------------------------------------------------------- fixtures

const deploymentManifest = (namespace: string, name: string, image = 'nginx:1.27.2', replicas = 2) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name, team: 'shop' } },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image, ports: [{ containerPort: 8080 }] }] } } },
});

const declare = (manifest: Record<string, any>, lastChange: DeclaredObject['lastChange'] = null): DeclaredObject => ({
  cluster: CLUSTER,
  apiVersion: manifest.apiVersion,
  kind: manifest.kind,
  namespace: manifest.metadata.namespace ?? null,
  name: manifest.metadata.name,
  file: 'manifests/clusters/prod-eks/shop.yaml',
  document: 1,
  purpose: null,
  lastChange,
  manifest,
});

let uids = 0;
/** A manifest as the API server lists it: defaulted, with server metadata and status. */
function live(manifest: Record<string, any>, metadata: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject {
  const object = structuredClone(manifest);
  uids += 1;
  object.metadata = { ...object.metadata, uid: `uid-${uids}`, resourceVersion: String(100 + uids), generation: 1, creationTimestamp: '2026-11-01T00:00:00Z', ...metadata };
  if (object.kind === 'Deployment') {
    object.spec.strategy = { type: 'RollingUpdate' };
    for (const c of object.spec.template?.spec?.containers ?? []) {
      Object.assign(c, { imagePullPolicy: 'IfNotPresent', terminationMessagePath: '/dev/termination-log' });
      for (const p of c.ports ?? []) p.protocol ??= 'TCP';
    }
    object.status = { observedGeneration: 1, replicas: object.spec.replicas, availableReplicas: object.spec.replicas };
  }
  return object as KubeObject;
}

const hpa = (namespace: string, target: string, kind = 'Deployment'): KubeObject => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: target, namespace },
  spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind, name: target }, minReplicas: 2, maxReplicas: 10 },
});

const workload = (kind: string, namespace: string, name: string, metadata: Partial<NonNullable<KubeObject['metadata']>> = {}): KubeObject =>
  live({ apiVersion: kind === 'ReplicaSet' || ['Deployment', 'StatefulSet', 'DaemonSet'].includes(kind) ? 'apps/v1' : 'v1', kind, metadata: { name, namespace, labels: { app: name } }, spec: {} }, metadata);

const unauthorizedOf = (result: ReturnType<typeof examine>) => result.observations.filter((o) => o.type === 'unauthorized').map((o) => o.identity);

// ---------------------------------------------------------------------------- examine

describe('examine: one listing, compared with the declared objects', () => {
  it('counts an object that runs as declared as in sync: no observation, no candidate', () => {
    // Prepare
    const storefront = deploymentManifest('shop', 'storefront');
    // Act
    const result = examine({ declared: [declare(storefront)], live: [live(storefront)], policy: policy() });
    // Assess
    expect(result).toEqual({ observations: [], candidates: [], inSync: 1 });
  });

  it('reports a declared object absent from the listing, or being deleted, as missing, with the declared labels', () => {
    // Prepare
    const catalog = deploymentManifest('shop', 'catalog');
    const settings = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings', namespace: 'shop' }, data: { theme: 'light' } };
    // Act
    const result = examine({ declared: [declare(catalog), declare(settings)], live: [live(settings, { deletionTimestamp: '2026-11-02T08:59:00Z' })], policy: policy() });
    // Assess
    expect(result.inSync).toBe(0);
    expect(result.candidates).toEqual([]);
    expect(result.observations).toEqual([
      { identity: 'apps/Deployment shop/catalog', ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'catalog' }, type: 'missing', diff: [], labels: { app: 'catalog', team: 'shop' }, declared: declare(catalog) },
      { identity: 'core/ConfigMap shop/settings', ref: { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop', name: 'settings' }, type: 'missing', diff: [], labels: {}, declared: declare(settings) },
    ]);
  });

  it('makes a declared object whose declared fields differ a candidate for a dry run, not yet a drift', () => {
    // Prepare
    const storefront = deploymentManifest('shop', 'storefront');
    const edited = live(deploymentManifest('shop', 'storefront', 'nginx:1.99-hotfix'));
    // Act
    const result = examine({ declared: [declare(storefront)], live: [edited], policy: policy() });
    // Assess
    expect(result.observations).toEqual([]);
    expect(result.inSync).toBe(0);
    expect(result.candidates).toEqual([
      {
        identity: 'apps/Deployment shop/storefront',
        declared: declare(storefront),
        live: edited,
        manifest: storefront,
        differences: [{ path: 'spec.template.spec.containers[name=storefront].image', declared: 'nginx:1.27.2', live: 'nginx:1.99-hotfix' }],
      },
    ]);
  });

  it('finds an object listed under another version of its group (apps/v1beta2 declared, apps/v1 listed)', () => {
    // Prepare
    const declared = { ...deploymentManifest('shop', 'storefront'), apiVersion: 'apps/v1beta2' };
    // Act
    const result = examine({ declared: [declare(declared)], live: [live(deploymentManifest('shop', 'storefront'))], policy: policy() });
    // Assess
    expect(result).toMatchObject({ observations: [], candidates: [], inSync: 1 });
  });

  it('does not compare the replicas of an object an HPA in its namespace scales, and leaves them out of the applied manifest', () => {
    // Prepare: the HPA scaled checkout to 5; storefront, in another namespace than its namesake's HPA, is not scaled.
    const checkout = deploymentManifest('shop', 'checkout');
    const storefront = deploymentManifest('shop', 'storefront');
    // Act
    const result = examine({
      declared: [declare(checkout), declare(storefront)],
      live: [live(deploymentManifest('shop', 'checkout', 'nginx:1.99', 5)), live(deploymentManifest('shop', 'storefront', undefined, 5)), hpa('shop', 'checkout'), hpa('other', 'storefront')],
      policy: policy(),
    });
    // Assess
    const byName = new Map(result.candidates.map((c) => [c.declared.name, c]));
    expect(byName.get('checkout')!.differences.map((d) => d.path)).toEqual(['spec.template.spec.containers[name=checkout].image']);
    expect(byName.get('checkout')!.manifest).not.toHaveProperty('spec.replicas');
    expect(checkout.spec.replicas).toBe(2);
    expect(byName.get('storefront')!.differences).toEqual([{ path: 'spec.replicas', declared: 2, live: 5 }]);
    expect(byName.get('storefront')!.manifest).toHaveProperty('spec.replicas', 2);
  });

  it('reports an undeclared Deployment, StatefulSet or DaemonSet in a namespace with declared objects as unauthorized, with its uid, labels and creator', () => {
    // Prepare
    const storefront = deploymentManifest('shop', 'storefront');
    const intruder = workload('Deployment', 'shop', 'intruder', { managedFields: [{ manager: 'kubectl', operation: 'Apply', time: '2026-11-02T08:00:00Z' }] });
    // Act
    const result = examine({ declared: [declare(storefront)], live: [live(storefront), intruder, workload('StatefulSet', 'shop', 'db'), workload('DaemonSet', 'shop', 'agent')], policy: policy() });
    // Assess
    expect(result.observations).toEqual([
      {
        identity: 'apps/Deployment shop/intruder',
        ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'intruder' },
        type: 'unauthorized',
        diff: [],
        labels: { app: 'intruder' },
        uid: intruder.metadata!.uid,
        creator: 'field manager kubectl at 2026-11-02T08:00:00Z',
      },
      expect.objectContaining({ identity: 'apps/StatefulSet shop/db', type: 'unauthorized' }),
      expect.objectContaining({ identity: 'apps/DaemonSet shop/agent', type: 'unauthorized' }),
    ]);
  });

  it('hunts undeclared workloads only in watched namespaces: those with declared objects and the policy\'s watchNamespaces', () => {
    // Prepare
    const declared = [declare(deploymentManifest('shop', 'storefront'))];
    const listed = [workload('Deployment', 'shop', 'a'), workload('Deployment', 'batch', 'b'), workload('Deployment', 'default', 'c')];
    // Act
    const unwatched = examine({ declared, live: listed, policy: policy() });
    const watched = examine({ declared, live: listed, policy: policy({ watchNamespaces: ['batch'] }) });
    // Assess
    expect(unauthorizedOf(unwatched)).toEqual(['apps/Deployment shop/a']);
    expect(unauthorizedOf(watched)).toEqual(['apps/Deployment shop/a', 'apps/Deployment batch/b']);
  });

  it('does not report undeclared objects of other kinds: ConfigMaps, HPAs, ReplicaSets, Pods, Services', () => {
    // Prepare
    const declared = [declare(deploymentManifest('shop', 'storefront'))];
    const listed = ['ConfigMap', 'ReplicaSet', 'Pod', 'Service'].map((kind) => workload(kind, 'shop', `stray-${kind.toLowerCase()}`));
    // Act
    const result = examine({ declared, live: [...listed, hpa('shop', 'stray')], policy: policy() });
    // Assess
    expect(result.observations.filter((o) => o.type === 'unauthorized')).toEqual([]);
  });

  it('does not report a workload of a group other than apps that happens to be called Deployment', () => {
    // Prepare
    const declared = [declare(deploymentManifest('shop', 'storefront'))];
    const lookalike = { ...workload('Deployment', 'shop', 'x'), apiVersion: 'example.com/v1' };
    // Act + Assess
    expect(unauthorizedOf(examine({ declared, live: [lookalike], policy: policy() }))).toEqual([]);
  });

  it('never watches a protected namespace, even one with declared objects or named in watchNamespaces', () => {
    // Prepare: kube-system is protected by default, platform by the policy.
    const declared = [declare(deploymentManifest('kube-system', 'coredns')), declare(deploymentManifest('platform', 'ingress'))];
    const listed = [live(deploymentManifest('kube-system', 'coredns')), live(deploymentManifest('platform', 'ingress')), workload('DaemonSet', 'kube-system', 'aws-node'), workload('Deployment', 'platform', 'stray'), workload('Deployment', 'kube-public', 'x')];
    // Act
    const result = examine({ declared, live: listed, policy: policy({ protectedNamespaces: ['platform'], watchNamespaces: ['kube-system', 'kube-public', 'platform'] }) });
    // Assess
    expect(result).toEqual({ observations: [], candidates: [], inSync: 2 });
  });

  it('still compares a declared object in a protected namespace: a missing one there is reported (and is at most alerted)', () => {
    // Act
    const result = examine({ declared: [declare(deploymentManifest('kube-system', 'coredns'))], live: [], policy: policy() });
    // Assess
    expect(result.observations.map((o) => [o.identity, o.type])).toEqual([['apps/Deployment kube-system/coredns', 'missing']]);
  });

  it('does not report an undeclared workload owned by a declared object, nor one controlled by another workload, nor one being deleted', () => {
    // Prepare: a declared custom resource whose operator made a Deployment; a Deployment controlled by an (undeclared) other one.
    const app = { apiVersion: 'example.com/v1', kind: 'WebApp', metadata: { name: 'shop-app', namespace: 'shop' }, spec: { size: 1 } };
    const madeByOperator = workload('Deployment', 'shop', 'shop-app-web', { ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'WebApp', name: 'shop-app', uid: 'u1', controller: true }] });
    const controlled = workload('StatefulSet', 'shop', 'child', { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'parent', uid: 'u2', controller: true }] });
    const terminating = workload('Deployment', 'shop', 'leaving', { deletionTimestamp: '2026-11-02T08:59:00Z' });
    // Act
    const result = examine({ declared: [declare(app)], live: [live(app), madeByOperator, controlled, workload('Deployment', 'shop', 'parent'), terminating], policy: policy() });
    // Assess
    expect(unauthorizedOf(result)).toEqual(['apps/Deployment shop/parent']);
  });

  it('reports an undeclared workload owned by something undeclared that is no workload, naming its owner as creator', () => {
    // Prepare
    const owned = workload('Deployment', 'shop', 'made', { ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'Operator', name: 'magic', uid: 'u3', controller: true }] });
    // Act
    const result = examine({ declared: [declare(deploymentManifest('shop', 'storefront'))], live: [owned], policy: policy() });
    // Assess
    expect(result.observations.find((o) => o.type === 'unauthorized')).toMatchObject({ identity: 'apps/Deployment shop/made', creator: 'owned by Operator magic' });
  });
});

describe('creatorOf: who made an undeclared object', () => {
  it('names the controlling owner first, else the first owner', () => {
    expect(creatorOf(workload('Deployment', 'shop', 'a', { ownerReferences: [{ apiVersion: 'v1', kind: 'A', name: 'first' }, { apiVersion: 'v1', kind: 'B', name: 'boss', controller: true }] }))).toBe('owned by B boss');
    expect(creatorOf(workload('Deployment', 'shop', 'a', { ownerReferences: [{ apiVersion: 'v1', kind: 'A', name: 'first' }] }))).toBe('owned by A first');
  });

  it('names the field manager of the creation (Create or Apply), else the first manager, else unknown', () => {
    expect(creatorOf(workload('Deployment', 'shop', 'a', { managedFields: [{ manager: 'kube-controller-manager', operation: 'Update' }, { manager: 'helm', operation: 'Create', time: '2026-11-01T00:00:00Z' }] }))).toBe('field manager helm at 2026-11-01T00:00:00Z');
    expect(creatorOf(workload('Deployment', 'shop', 'a', { managedFields: [{ manager: 'kubectl-edit', operation: 'Update' }] }))).toBe('field manager kubectl-edit');
    expect(creatorOf(workload('Deployment', 'shop', 'a'))).toBe('unknown');
  });
});

describe('kindsToList, hpaTargets, effectiveManifest', () => {
  it('lists the watched workload kinds, the HPAs and each declared kind once, whatever the version declared', () => {
    // Prepare
    const declared = [
      declare(deploymentManifest('shop', 'a')),
      declare({ ...deploymentManifest('shop', 'b'), apiVersion: 'apps/v1beta2' }),
      declare({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' } }),
      declare({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'd', namespace: 'shop' } }),
      declare({ apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'e', namespace: 'shop' } }),
    ];
    // Act
    const kinds = kindsToList(declared);
    // Assess
    expect(kinds.map((k) => `${k.apiVersion} ${k.kind}`).sort()).toEqual(['apps/v1 DaemonSet', 'apps/v1 StatefulSet', 'apps/v1 Deployment', 'autoscaling/v2 HorizontalPodAutoscaler', 'networking.k8s.io/v1 Ingress', 'v1 ConfigMap'].sort());
  });

  it('lists a kind in the version it is declared in, so its objects are read in the declared shape (an autoscaling/v1 HPA)', () => {
    // Prepare
    const declared = [declare({ apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web', namespace: 'shop' }, spec: { targetCPUUtilizationPercentage: 70 } })];
    // Act
    const kinds = kindsToList(declared);
    // Assess
    expect(kinds.filter((k) => k.kind === 'HorizontalPodAutoscaler')).toEqual([{ apiVersion: 'autoscaling/v1', kind: 'HorizontalPodAutoscaler' }]);
  });

  it('keys an HPA\'s target by group, kind, the HPA\'s namespace and name, apps/v1 when the target names no version', () => {
    // Prepare
    const noVersion: KubeObject = { ...hpa('shop', 'web'), spec: { scaleTargetRef: { kind: 'Deployment', name: 'web' } } };
    const noTarget: KubeObject = { ...hpa('shop', 'x'), spec: {} };
    // Act + Assess
    expect([...hpaTargets([noVersion, noTarget, hpa('ops', 'db', 'StatefulSet')])]).toEqual(['apps/Deployment shop/web', 'apps/StatefulSet ops/db']);
  });

  it('stamps the commit on the applied manifest, keeping its annotations, without touching the declared object', () => {
    // Prepare
    const manifest = { ...deploymentManifest('shop', 'a'), metadata: { name: 'a', namespace: 'shop', annotations: { note: 'x' } } };
    const object = declare(manifest);
    const before = structuredClone(object);
    // Act
    const applied = effectiveManifest(object, true, COMMIT);
    // Assess
    expect(applied.metadata).toEqual({ name: 'a', namespace: 'shop', annotations: { note: 'x', [COMMIT_ANNOTATION]: COMMIT } });
    expect(applied).not.toHaveProperty('spec.replicas');
    expect(object).toEqual(before);
    expect(effectiveManifest(object, false, null)).toEqual(manifest);
  });
});

// ---------------------------------------------------------------------------- confirm

const candidateOf = (declaredManifest: Record<string, any>, liveObject: KubeObject): Candidate => {
  const [candidate] = examine({ declared: [declare(declaredManifest)], live: [liveObject], policy: policy() }).candidates;
  if (!candidate) throw new Error('no candidate');
  return candidate;
};

describe('confirm: a candidate judged by its server-side-apply dry run', () => {
  it('finds no drift when what the server would store equals the live object on the declared fields (a webhook\'s rewrite)', () => {
    // Prepare: a webhook rewrites the declared image to its full name, on apply and on the dry run alike.
    const declared = deploymentManifest('shop', 'storefront', 'nginx:1.27.2');
    const rewritten = live(deploymentManifest('shop', 'storefront', 'docker.io/library/nginx:1.27.2'));
    const candidate = candidateOf(declared, rewritten);
    // Act
    const drift = confirm(candidate, structuredClone(rewritten));
    // Assess
    expect(drift).toBeUndefined();
  });

  it('reports image drift with the declared values at the confirmed paths, the live uid and labels', () => {
    // Prepare
    const declared = deploymentManifest('shop', 'storefront');
    const edited = live(deploymentManifest('shop', 'storefront', 'nginx:1.99-hotfix'), { labels: { app: 'storefront', team: 'shop', hotfix: 'yes' } });
    const dryRun = live(declared);
    // Act
    const drift = confirm(candidateOf(declared, edited), dryRun);
    // Assess
    expect(drift).toEqual({
      identity: 'apps/Deployment shop/storefront',
      ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'storefront' },
      type: 'image',
      diff: ['spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.99-hotfix'],
      labels: { app: 'storefront', team: 'shop', hotfix: 'yes' },
      declared: declare(declared),
      uid: edited.metadata!.uid,
    });
  });

  it('reports config drift when anything but an image differs, a port among them (the dry run spells the port\'s protocol)', () => {
    // Prepare
    const declared = { ...deploymentManifest('shop', 'storefront') };
    declared.spec.template.spec.containers[0] = { name: 'storefront', image: 'nginx:1.27.2', ports: [{ containerPort: 8080, name: 'http' } as any] };
    const edited = live(declared);
    (edited.spec as any).template.spec.containers[0].image = 'nginx:1.99';
    (edited.spec as any).template.spec.containers[0].ports[0].name = 'web';
    const dryRun = live(declared);
    // Act
    const drift = confirm(candidateOf(declared, edited), dryRun);
    // Assess
    expect(drift?.type).toBe('config');
    expect(drift?.diff).toEqual(['spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.99', 'spec.template.spec.containers[name=storefront].ports[containerPort=8080].name: http -> web']);
  });

  it('reports only what the dry run confirms: a difference the server would also make (a webhook\'s rewrite) is not shown', () => {
    // Prepare: a webhook stores the declared image under its full name; someone also scaled the Deployment by hand.
    const declared = deploymentManifest('shop', 'storefront', 'nginx:1.27.2');
    const edited = live(deploymentManifest('shop', 'storefront', 'docker.io/library/nginx:1.27.2', 6));
    const dryRun = live(deploymentManifest('shop', 'storefront', 'docker.io/library/nginx:1.27.2', 2));
    const candidate = candidateOf(declared, edited);
    // Act
    const drift = confirm(candidate, dryRun);
    // Assess
    expect(candidate.differences.map((d) => d.path)).toEqual(['spec.replicas', 'spec.template.spec.containers[name=storefront].image']);
    expect(drift).toMatchObject({ type: 'config', diff: ['spec.replicas: 2 -> 6'] });
  });

  it('keeps at most ten lines of diff', () => {
    // Prepare
    const data = Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`k${i}`, 'declared']));
    const declared = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 's', namespace: 'shop' }, data };
    const edited = live({ ...declared, data: Object.fromEntries(Object.keys(data).map((k) => [k, 'edited'])) });
    // Act
    const drift = confirm(candidateOf(declared, edited), live(declared));
    // Assess
    expect(drift?.diff).toHaveLength(10);
    expect(drift?.diff[0]).toBe('data.k0: declared -> edited');
  });
});

// ---------------------------------------------------------------------------- decideDriftAction

const subject = (over: Partial<DriftSubject> = {}): DriftSubject => ({ cluster: CLUSTER, namespace: 'shop', kind: 'Deployment', name: 'storefront', labels: { app: 'storefront', tier: 'web' }, type: 'image', ...over });

describe('decideDriftAction: the first matching rule decides', () => {
  it('alerts by default when no rule matches', () => {
    expect(decideDriftAction(policy(), subject(), false)).toEqual({ action: 'alert', graceMinutes: 0, because: 'no rule matches: the default is alert' });
    expect(decideDriftAction(policy({ rules: [{ match: { namespaces: ['ops'] }, action: 'rollback' }] }), subject(), false).action).toBe('alert');
  });

  it('takes the first matching rule, not the most specific one, and names it', () => {
    // Prepare
    const p = policy({
      rules: [
        { match: { namespaces: ['ops'] }, action: 'ignore' },
        { match: { namespaces: ['shop'] }, action: 'rollback', graceMinutes: 15 },
        { match: { namespaces: ['shop'], names: ['storefront'] }, action: 'ignore' },
      ],
    });
    // Act + Assess
    expect(decideDriftAction(p, subject(), false)).toEqual({ action: 'rollback', graceMinutes: 15, because: 'rule 2 (rollback after 15 min)' });
  });

  it('matches names by glob: * is any run of characters, everything else is literal', () => {
    // Prepare
    const p = policy({ rules: [{ match: { names: ['storefront-*', '*-canary', 'api.v1'] }, action: 'ignore' }] });
    const decide = (name: string) => decideDriftAction(p, subject({ name }), false).action;
    // Act + Assess
    expect(['storefront-eu', 'storefront-', 'web-canary', 'api.v1'].map(decide)).toEqual(['ignore', 'ignore', 'ignore', 'ignore']);
    expect(['storefront', 'my-storefront-eu', 'web-canary-2', 'apixv1', 'api.v10'].map(decide)).toEqual(['alert', 'alert', 'alert', 'alert', 'alert']);
  });

  it('requires every label of the rule, with its value', () => {
    // Prepare
    const p = policy({ rules: [{ match: { labels: { tier: 'web', app: 'storefront' } }, action: 'ignore' }] });
    // Act + Assess
    expect(decideDriftAction(p, subject(), false).action).toBe('ignore');
    expect(decideDriftAction(p, subject({ labels: { tier: 'web' } }), false).action).toBe('alert');
    expect(decideDriftAction(p, subject({ labels: { tier: 'web', app: 'checkout' } }), false).action).toBe('alert');
  });

  it('matches drift types, kinds and clusters, and a namespace rule never matches a cluster-scoped object', () => {
    // Prepare
    const p = policy({
      rules: [
        { match: { types: ['unauthorized', 'missing'] }, action: 'rollback' },
        { match: { kinds: ['ConfigMap'], clusters: [CLUSTER] }, action: 'ignore' },
      ],
    });
    // Act + Assess
    expect(decideDriftAction(p, subject({ type: 'unauthorized' }), false).action).toBe('rollback');
    expect(decideDriftAction(p, subject({ type: 'missing' }), false).action).toBe('rollback');
    expect(decideDriftAction(p, subject({ type: 'config', kind: 'ConfigMap' }), false).action).toBe('ignore');
    expect(decideDriftAction(p, subject({ type: 'config', kind: 'ConfigMap', cluster: 'dr-eks' }), false).action).toBe('alert');
    expect(decideDriftAction(policy({ rules: [{ match: { namespaces: ['shop'] }, action: 'ignore' }] }), subject({ namespace: null, kind: 'PriorityClass' }), false).action).toBe('alert');
  });

  it('alerts instead of rolling back when Fleetwarden runs dry, keeping the grace and saying why', () => {
    // Prepare
    const p = policy({ rules: [{ match: {}, action: 'rollback', graceMinutes: 5 }] });
    // Act + Assess
    expect(decideDriftAction(p, subject(), true)).toEqual({ action: 'alert', graceMinutes: 5, because: 'rule 1 (rollback after 5 min), but dryRun is on: alert only' });
    expect(decideDriftAction(policy({ rules: [{ action: 'ignore' }] }), subject(), true).action).toBe('ignore');
  });

  it('never rolls back in a protected namespace, the default ones or the policy\'s, whatever the rule and dryRun', () => {
    // Prepare
    const p = policy({ protectedNamespaces: ['platform'], rules: [{ action: 'rollback' }] });
    // Act
    const decisions = ['kube-system', 'kube-public', 'kube-node-lease', 'platform'].flatMap((namespace) => [false, true].map((dryRun) => decideDriftAction(p, subject({ namespace }), dryRun)));
    // Assess
    for (const d of decisions) expect(d).toMatchObject({ action: 'alert', graceMinutes: 0, because: expect.stringMatching(/^rule 1 \(rollback\), but [a-z-]+ is protected: alert only$/) });
    expect([...protectedNamespaces(p)].sort()).toEqual(['kube-node-lease', 'kube-public', 'kube-system', 'platform']);
  });

  it('reads a policy with defaults and refuses an unknown field or action', () => {
    expect(policy()).toEqual({ rules: [], protectedNamespaces: [], watchNamespaces: [], rolloutTimeoutSeconds: 300 });
    expect(policy({ rules: [{ action: 'rollback' }] }).rules).toEqual([{ match: {}, action: 'rollback', graceMinutes: 0 }]);
    expect(WorkloadDriftPolicySchema.safeParse({ rules: [{ action: 'delete' }] }).success).toBe(false);
    expect(WorkloadDriftPolicySchema.safeParse({ rules: [{ match: { namespace: ['shop'] }, action: 'alert' }] }).success).toBe(false);
  });
});

// ---------------------------------------------------------------------------- planCycle

const imageDrift = (name = 'storefront', over: Partial<Observation> = {}): Observation => {
  const manifest = deploymentManifest('shop', name);
  return {
    identity: objectIdentity({ apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name }),
    ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name },
    type: 'image',
    diff: [`spec.template.spec.containers[name=${name}].image: nginx:1.27.2 -> nginx:1.99`],
    labels: { app: name },
    declared: declare(manifest),
    uid: `uid-${name}`,
    ...over,
  };
};
const intruderDrift = (): Observation => ({
  identity: 'apps/Deployment shop/intruder',
  ref: { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop', name: 'intruder' },
  type: 'unauthorized',
  diff: [],
  labels: { app: 'intruder' },
  uid: 'uid-intruder',
  creator: 'field manager kubectl',
});

type PlanInput = Parameters<typeof planCycle>[0];
const plan = (over: Partial<PlanInput>) => planCycle({ cluster: CLUSTER, observations: [], open: [], commit: COMMIT, policy: policy(), dryRun: false, now: T0, ...over });

/** The drifts a store would hold after recording a plan's transitions (the last write of each). */
const afterPlan = (open: readonly WorkloadDrift[], transitions: ReturnType<typeof planCycle>['transitions']) => {
  const byId = new Map(open.map((d) => [d.driftId, d] as const));
  for (const t of transitions) if (t.write !== 'none') byId.set(t.after.driftId, t.after);
  return [...byId.values()].filter((d) => d.state !== 'resolved');
};

describe('planCycle: drifts open once, act once, close once', () => {
  it('opens an observed drift once, however many cycles observe it', () => {
    // Prepare
    let open: WorkloadDrift[] = [];
    const actions: string[] = [];
    // Act
    for (let i = 0; i < 4; i++) {
      const p = plan({ observations: [imageDrift()], open, now: minutes(i) });
      actions.push(...p.transitions.map((t) => t.action));
      open = afterPlan(open, p.transitions);
    }
    // Assess
    expect(actions).toEqual(['workload.drift-detected']);
    expect(open).toHaveLength(1);
  });

  it('opens a drift as alert by default, with its facts, the declaring commit and version 1, not yet due', () => {
    // Prepare
    const declared = { ...imageDrift(), declared: declare(deploymentManifest('shop', 'storefront'), { commit: DECLARING_COMMIT, author: { name: 'Ada', email: 'ada@example.com' }, authoredAt: '2026-11-01T09:00:00Z', committedAt: '2026-11-01T09:00:00Z' }) };
    // Act
    const p = plan({ observations: [declared] });
    // Assess
    expect(p.transitions).toEqual([
      {
        action: 'workload.drift-detected',
        reason: 'image drift of Deployment shop/storefront: spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.99',
        after: {
          driftId: `workload-drift#${CLUSTER}#apps/Deployment shop/storefront`,
          cluster: CLUSTER,
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          namespace: 'shop',
          name: 'storefront',
          type: 'image',
          diff: declared.diff,
          declaredCommit: DECLARING_COMMIT,
          uid: 'uid-storefront',
          state: 'open',
          action: 'alert',
          because: 'no rule matches: the default is alert',
          openedAt: T0.toISOString(),
          actAfter: T0.toISOString(),
          version: 1,
        },
      },
    ]);
    expect(p).toMatchObject({ rollbacks: [], resumed: [], ignored: 0 });
  });

  it('records the published commit for a declared object without its own, none for an undeclared one, and its creator', () => {
    // Act
    const p = plan({ observations: [imageDrift(), intruderDrift()] });
    // Assess
    expect(p.transitions.map((t) => [t.after.name, t.after.declaredCommit, t.after.creator])).toEqual([
      ['storefront', COMMIT, undefined],
      ['intruder', null, 'field manager kubectl'],
    ]);
    expect(p.transitions[1]!.reason).toBe('unauthorized drift of Deployment shop/intruder: not declared (field manager kubectl)');
  });

  it('says a missing object is declared, not in the cluster', () => {
    expect(plan({ observations: [{ ...imageDrift(), type: 'missing', diff: [] }] }).transitions[0]!.reason).toBe('missing drift of Deployment shop/storefront: declared, not in the cluster');
  });

  it('opens nothing for a drift an ignore rule matches, and counts it', () => {
    // Act
    const p = plan({ observations: [imageDrift(), intruderDrift()], policy: policy({ rules: [{ match: { types: ['image'] }, action: 'ignore' }] }) });
    // Assess
    expect(p.transitions.map((t) => t.after.name)).toEqual(['intruder']);
    expect(p.ignored).toBe(1);
  });

  it('closes a drift no longer observed once, with the time and the next version', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    // Act
    const first = plan({ open: [opened!], now: minutes(3) });
    const second = plan({ open: afterPlan([opened!], first.transitions), now: minutes(4) });
    // Assess
    expect(first.transitions).toEqual([{ action: 'workload.drift-resolved', reason: 'in sync again', before: opened, after: { ...opened, state: 'resolved', closedAt: minutes(3).toISOString(), version: 2 } }]);
    expect(second.transitions).toEqual([]);
  });

  it('says a drift closing after its rollback is in sync again after the rollback', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    // Act
    const p = plan({ open: [{ ...opened!, state: 'rolled-back', version: 3 }] });
    // Assess
    expect(p.transitions[0]).toMatchObject({ action: 'workload.drift-resolved', reason: 'in sync again after the rollback', after: { state: 'resolved', version: 4 } });
  });

  it('rolls back only once the grace is over: opened now, acted on at openedAt + grace, never before', () => {
    // Prepare
    const p0 = policy({ rules: [{ match: { namespaces: ['shop'] }, action: 'rollback', graceMinutes: 10 }] });
    const opening = plan({ observations: [imageDrift()], policy: p0 });
    const open = afterPlan([], opening.transitions);
    // Act
    const early = plan({ observations: [imageDrift()], open, policy: p0, now: new Date(minutes(10).getTime() - 1) });
    const due = plan({ observations: [imageDrift()], open, policy: p0, now: minutes(10) });
    // Assess
    expect(opening.transitions.map((t) => t.action)).toEqual(['workload.drift-detected']);
    expect(opening.transitions[0]!.after).toMatchObject({ action: 'rollback', actAfter: minutes(10).toISOString(), because: 'rule 1 (rollback after 10 min)' });
    expect(opening.rollbacks).toEqual([]);
    expect(early).toMatchObject({ transitions: [], rollbacks: [] });
    const started = { ...open[0]!, state: 'rolling-back', execution: rollbackExecutionName(open[0]!), version: 2 };
    expect(due.transitions).toEqual([{ action: 'workload.rollback-started', reason: 'rule 1 (rollback after 10 min): re-apply the declared object', before: open[0], after: started }]);
    expect(due.rollbacks).toEqual([started]);
  });

  it('takes a fractional grace as seconds', () => {
    // Act
    const p = plan({ observations: [intruderDrift()], policy: policy({ rules: [{ action: 'rollback', graceMinutes: 0.05 }] }) });
    // Assess
    expect(p.transitions[0]!.after.actAfter).toBe(new Date(T0.getTime() + 3_000).toISOString());
  });

  it('writes a drift opened and acted on in the same cycle once: the opening without a write, the start as a create', () => {
    // Prepare
    const p0 = policy({ rules: [{ action: 'rollback' }] });
    // Act
    const p = plan({ observations: [imageDrift('a'), intruderDrift(), { ...imageDrift('c'), type: 'missing', diff: [] }], policy: p0 });
    // Assess
    expect(p.transitions.map((t) => [t.after.name, t.action, t.write, t.before?.version, t.after.version])).toEqual([
      ['a', 'workload.drift-detected', 'none', undefined, 1],
      ['a', 'workload.rollback-started', 'create', 1, 2],
      ['intruder', 'workload.drift-detected', 'none', undefined, 1],
      ['intruder', 'workload.rollback-started', 'create', 1, 2],
      ['c', 'workload.drift-detected', 'none', undefined, 1],
      ['c', 'workload.rollback-started', 'create', 1, 2],
    ]);
    expect(p.transitions.filter((t) => t.action === 'workload.rollback-started').map((t) => t.reason)).toEqual([
      'rule 1 (rollback): re-apply the declared object',
      'rule 1 (rollback): remove the undeclared workload',
      'rule 1 (rollback): deploy the declared object',
    ]);
    expect(p.rollbacks.map((d) => [d.name, d.state, d.execution])).toEqual(p.transitions.filter((t) => t.write === 'create').map((t) => [t.after.name, 'rolling-back', rollbackExecutionName(t.after)]));
  });

  it('writes a drift opened without acting with the default (update-or-create) write', () => {
    expect(plan({ observations: [imageDrift()] }).transitions.map((t) => t.write)).toEqual([undefined]);
  });

  it('never rolls back a drift whose action is alert, however long it stays', () => {
    // Prepare
    const open = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    // Act
    const later = plan({ observations: [imageDrift()], open, now: minutes(7 * 24 * 60) });
    // Assess
    expect(later).toMatchObject({ transitions: [], rollbacks: [], resumed: [] });
  });

  it('opens a drift a rollback rule matches as alert when Fleetwarden runs dry', () => {
    // Act
    const p = plan({ observations: [imageDrift()], policy: policy({ rules: [{ action: 'rollback' }] }), dryRun: true });
    // Assess
    expect(p.transitions.map((t) => [t.action, t.after.action])).toEqual([['workload.drift-detected', 'alert']]);
    expect(p.rollbacks).toEqual([]);
  });

  it('resumes a drift recorded as rolling back under its execution name, without opening or starting it again', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    const rollingBack: WorkloadDrift = { ...opened!, action: 'rollback', state: 'rolling-back', execution: rollbackExecutionName(opened!), version: 2 };
    // Act
    const p = plan({ observations: [imageDrift()], open: [rollingBack], policy: policy({ rules: [{ action: 'rollback' }] }), now: minutes(5) });
    // Assess
    expect(p).toEqual({ transitions: [], rollbacks: [], resumed: [rollingBack], ignored: 0 });
  });

  it('does not close a drift being rolled back that is no longer observed, and resumes its workflow, which records its end', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    const rollingBack: WorkloadDrift = { ...opened!, action: 'rollback', state: 'rolling-back', execution: 'x', version: 2 };
    // Act
    const p = plan({ open: [rollingBack] });
    // Assess: a detector that died between recording and starting leaves no drift stuck.
    expect(p.transitions).toEqual([]);
    expect(p.resumed).toEqual([rollingBack]);
  });

  it('only alerts an undeclared workload that a controller owns, whatever the rule says: its controller would re-create it', () => {
    // Prepare
    const owned = { ...imageDrift(), type: 'unauthorized' as const, diff: [], creator: 'owned by Rollout canary', controlledBy: 'Rollout canary', declared: undefined };
    // Act
    const p = plan({ observations: [owned], policy: policy({ rules: [{ action: 'rollback' }] }) });
    // Assess
    expect(p.rollbacks).toEqual([]);
    expect(p.transitions.map((t) => [t.action, t.after.action, t.after.because])).toEqual([['workload.drift-detected', 'alert', 'rule 1 (rollback), but it is controlled by Rollout canary: alert only']]);
  });

  it('never starts a failed rollback again while the drift is observed, and keeps it open while the workload is unsettled', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()], policy: policy({ rules: [{ action: 'rollback' }] }) }).transitions);
    const failed: WorkloadDrift = { ...opened!, state: 'rollback-failed', execution: rollbackExecutionName(opened!), outcome: 'not-settled: 0 available of 2', version: 3 };
    const p0 = policy({ rules: [{ action: 'rollback' }] });
    // Act
    const observed = plan({ observations: [imageDrift()], open: [failed], policy: p0, now: minutes(60) });
    const unsettled = plan({ open: [failed], policy: p0, now: minutes(61), unsettled: new Set([failed.driftId]) });
    const settled = plan({ open: [failed], policy: p0, now: minutes(62), unsettled: new Set() });
    // Assess
    expect(observed).toEqual({ transitions: [], rollbacks: [], resumed: [], ignored: 0 });
    expect(unsettled.transitions).toEqual([]);
    expect(settled.transitions).toEqual([{ action: 'workload.drift-resolved', reason: 'in sync again', before: failed, after: { ...failed, state: 'resolved', closedAt: minutes(62).toISOString(), version: 4 } }]);
  });

  it('alerts, once, a drift observed again after its rollback settled, and never rolls it back again: something else writes the object', () => {
    // Prepare
    const p0 = policy({ rules: [{ action: 'rollback' }] });
    const [opened] = afterPlan([], plan({ observations: [imageDrift()], policy: p0 }).transitions);
    const rolledBack: WorkloadDrift = { ...opened!, state: 'rolled-back', execution: rollbackExecutionName(opened!), outcome: 'settled', version: 3 };
    // Act
    const again = plan({ observations: [imageDrift()], open: [rolledBack], policy: p0, now: minutes(10) });
    const [failed] = afterPlan([rolledBack], again.transitions);
    const later = plan({ observations: [imageDrift()], open: [failed!], policy: p0, now: minutes(11), unsettled: new Set() });
    // Assess
    expect(again.transitions.map((t) => [t.action, t.after.state])).toEqual([['workload.rollback-failed', 'rollback-failed']]);
    expect(again.rollbacks).toEqual([]);
    expect(later).toEqual({ transitions: [], rollbacks: [], resumed: [], ignored: 0 });
    expect(driftEvents(again.transitions).map((e) => e.detailType)).toEqual(['WorkloadRollbackFailed']);
  });

  it('keeps the drifts of one cluster apart from another\'s', () => {
    // Act
    const p = planCycle({ cluster: 'dr-eks', observations: [imageDrift()], open: [], commit: null, policy: policy(), dryRun: false, now: T0 });
    // Assess
    expect(p.transitions[0]!.after).toMatchObject({ driftId: driftIdOf('dr-eks', 'apps/Deployment shop/storefront'), cluster: 'dr-eks' });
    expect(driftIdOf('dr-eks', 'x')).not.toBe(driftIdOf(CLUSTER, 'x'));
  });
});

// ---------------------------------------------------------------------------- events and execution names

describe('driftEvents: an opening, a closing and a failed rollback each announce once', () => {
  it('announces an opening with the drift\'s facts and the reason', () => {
    // Prepare
    const { transitions } = plan({ observations: [intruderDrift()] });
    // Act
    const events = driftEvents(transitions);
    // Assess
    expect(events).toEqual([
      {
        detailType: 'WorkloadDriftDetected',
        detail: {
          driftId: `workload-drift#${CLUSTER}#apps/Deployment shop/intruder`,
          cluster: CLUSTER,
          namespace: 'shop',
          kind: 'Deployment',
          name: 'intruder',
          driftType: 'unauthorized',
          diff: [],
          declaredCommit: null,
          action: 'alert',
          creator: 'field manager kubectl',
          openedAt: T0.toISOString(),
          reason: 'unauthorized drift of Deployment shop/intruder: not declared (field manager kubectl)',
        },
      },
    ]);
  });

  it('announces a closing with its closedAt, a failed rollback with its outcome, and nothing for a start or a success', () => {
    // Prepare
    const [opened] = afterPlan([], plan({ observations: [imageDrift()] }).transitions);
    const rollingBack: WorkloadDrift = { ...opened!, state: 'rolling-back', execution: 'x', version: 2 };
    const failed: WorkloadDrift = { ...rollingBack, state: 'rollback-failed', outcome: 'not-settled: 0 of 2', version: 3 };
    const resolved: WorkloadDrift = { ...opened!, state: 'resolved', closedAt: minutes(9).toISOString(), version: 2 };
    // Act
    const events = driftEvents([
      { action: 'workload.rollback-started', reason: 'r', before: opened, after: rollingBack },
      { action: 'workload.rolled-back', reason: 'r', before: rollingBack, after: { ...rollingBack, state: 'rolled-back' } },
      { action: 'workload.removed', reason: 'r', before: rollingBack, after: { ...rollingBack, state: 'rolled-back' } },
      { action: 'workload.rollback-failed', reason: 'did not settle', before: rollingBack, after: failed },
      { action: 'workload.drift-resolved', reason: 'in sync again', before: opened, after: resolved },
    ]);
    // Assess
    expect(events.map((e) => e.detailType)).toEqual(['WorkloadRollbackFailed', 'WorkloadDriftResolved']);
    expect(events[0]!.detail).toMatchObject({ outcome: 'not-settled: 0 of 2', reason: 'did not settle', driftType: 'image', declaredCommit: COMMIT });
    expect(events[0]!.detail).not.toHaveProperty('closedAt');
    expect(events[1]!.detail).toMatchObject({ closedAt: minutes(9).toISOString(), openedAt: T0.toISOString() });
    expect(events[1]!.detail).not.toHaveProperty('creator');
    expect(events[1]!.detail).not.toHaveProperty('outcome');
  });
});

describe('rollbackExecutionName', () => {
  const drift = (over: Partial<Pick<WorkloadDrift, 'driftId' | 'openedAt' | 'kind' | 'name'>> = {}) => ({ driftId: driftIdOf(CLUSTER, 'apps/Deployment shop/storefront'), openedAt: T0.toISOString(), kind: 'Deployment', name: 'storefront', ...over });

  it('is a valid Step Functions execution name for any kind and name: at most 80 characters of [A-Za-z0-9_-]', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.string({ maxLength: 300 }), fc.string(), (kind, name, id) => {
        // Act
        const execution = rollbackExecutionName(drift({ kind, name, driftId: id }));
        // Assess
        expect(execution.length).toBeLessThanOrEqual(80);
        expect(execution).toMatch(/^[A-Za-z0-9_-]+$/);
      }),
    );
  });

  it('reads as kind-name, with what Step Functions refuses replaced', () => {
    expect(rollbackExecutionName(drift({ name: 'shop.api:v1' }))).toMatch(/^Deployment-shop-api-v1-[0-9a-f]{16}$/);
  });

  it('is the same for the same opening and differs for another opening or another drift', () => {
    // Act
    const names = [rollbackExecutionName(drift()), rollbackExecutionName(drift()), rollbackExecutionName(drift({ openedAt: minutes(1).toISOString() })), rollbackExecutionName(drift({ driftId: driftIdOf('dr-eks', 'apps/Deployment shop/storefront') }))];
    // Assess
    expect(names[0]).toBe(names[1]);
    expect(new Set(names).size).toBe(3);
  });
});

// ---------------------------------------------------------------------------- rolloutSettled

describe('rolloutSettled: whether a rollback\'s rollout is through', () => {
  const object = (kind: string, spec: Record<string, unknown>, status: Record<string, unknown> | undefined, generation = 4): KubeObject => ({ apiVersion: 'apps/v1', kind, metadata: { name: 'w', namespace: 'shop', generation }, spec, ...(status ? { status } : {}) });

  it('settles a Deployment once its controller saw the generation and every replica is updated and available, with no old one left', () => {
    expect(rolloutSettled(object('Deployment', { replicas: 3 }, { observedGeneration: 4, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }))).toEqual({ settled: true, detail: 'generation 4/4, 3 updated, 3 available of 3' });
    expect(rolloutSettled(object('Deployment', { replicas: 3 }, { observedGeneration: 3, replicas: 3, updatedReplicas: 3, availableReplicas: 3 })).settled).toBe(false);
    expect(rolloutSettled(object('Deployment', { replicas: 3 }, { observedGeneration: 4, replicas: 3, updatedReplicas: 2, availableReplicas: 3 })).settled).toBe(false);
    expect(rolloutSettled(object('Deployment', { replicas: 3 }, { observedGeneration: 4, replicas: 3, updatedReplicas: 3, availableReplicas: 2, readyReplicas: 3 })).settled).toBe(false);
    expect(rolloutSettled(object('Deployment', { replicas: 3 }, { observedGeneration: 4, replicas: 4, updatedReplicas: 3, availableReplicas: 3 }))).toEqual({ settled: false, detail: 'generation 4/4, 3 updated, 3 available of 3 (1 old still running)' });
  });

  it('takes a Deployment without replicas for one, and one scaled to zero as settled once observed', () => {
    expect(rolloutSettled(object('Deployment', {}, { observedGeneration: 4, replicas: 1, updatedReplicas: 1, availableReplicas: 1 })).settled).toBe(true);
    expect(rolloutSettled(object('Deployment', { replicas: 0 }, { observedGeneration: 4 })).settled).toBe(true);
    expect(rolloutSettled(object('Deployment', { replicas: 0 }, undefined)).settled).toBe(false);
  });

  it('counts a StatefulSet\'s ready replicas', () => {
    expect(rolloutSettled(object('StatefulSet', { replicas: 2 }, { observedGeneration: 4, replicas: 2, updatedReplicas: 2, readyReplicas: 2 })).settled).toBe(true);
    expect(rolloutSettled(object('StatefulSet', { replicas: 2 }, { observedGeneration: 4, replicas: 2, updatedReplicas: 2, readyReplicas: 1, availableReplicas: 2 })).settled).toBe(false);
  });

  it('settles a DaemonSet when every scheduled pod is updated and available', () => {
    expect(rolloutSettled(object('DaemonSet', {}, { observedGeneration: 4, desiredNumberScheduled: 5, updatedNumberScheduled: 5, numberAvailable: 5 }))).toEqual({ settled: true, detail: 'generation 4/4, 5 updated, 5 available of 5' });
    expect(rolloutSettled(object('DaemonSet', {}, { observedGeneration: 4, desiredNumberScheduled: 5, updatedNumberScheduled: 4, numberAvailable: 5 })).settled).toBe(false);
    expect(rolloutSettled(object('DaemonSet', {}, { observedGeneration: 4, desiredNumberScheduled: 5, updatedNumberScheduled: 5, numberAvailable: 4 })).settled).toBe(false);
    expect(rolloutSettled(object('DaemonSet', {}, { observedGeneration: 3, desiredNumberScheduled: 5, updatedNumberScheduled: 5, numberAvailable: 5 })).settled).toBe(false);
  });

  it('settles a ConfigMap, or any kind without a rollout, once stored', () => {
    expect(rolloutSettled({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'shop' }, data: {} })).toEqual({ settled: true, detail: 'stored' });
  });
});

// ---------------------------------------------------------------------------- RBAC

describe('resourceOf: a kind as RBAC names it', () => {
  it.each([
    ['apps/v1', 'Deployment', 'apps', 'deployments'],
    ['v1', 'ConfigMap', '', 'configmaps'],
    ['v1', 'Service', '', 'services'],
    ['networking.k8s.io/v1', 'Ingress', 'networking.k8s.io', 'ingresses'],
    ['networking.k8s.io/v1', 'IngressClass', 'networking.k8s.io', 'ingressclasses'],
    ['networking.k8s.io/v1', 'NetworkPolicy', 'networking.k8s.io', 'networkpolicies'],
    ['autoscaling/v2', 'HorizontalPodAutoscaler', 'autoscaling', 'horizontalpodautoscalers'],
    ['policy/v1', 'PodDisruptionBudget', 'policy', 'poddisruptionbudgets'],
    ['scheduling.k8s.io/v1', 'PriorityClass', 'scheduling.k8s.io', 'priorityclasses'],
    ['gateway.networking.k8s.io/v1', 'Gateway', 'gateway.networking.k8s.io', 'gateways'],
    ['v1', 'Endpoints', '', 'endpoints'],
  ])('names %s %s as %j %j', (apiVersion, kind, group, resource) => {
    expect(resourceOf(apiVersion, kind)).toEqual({ group, resource });
  });
});

describe('workloadRbac: what workload drift may do in a cluster, from what is declared there', () => {
  const declared = [
    { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'shop' },
    { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'shop' },
    { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', namespace: 'shop' },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', namespace: 'shop' },
    { apiVersion: 'apps/v1', kind: 'Deployment', namespace: 'ops' },
    { apiVersion: 'apps/v1', kind: 'DaemonSet', namespace: 'kube-system' },
    { apiVersion: 'v1', kind: 'ConfigMap', namespace: 'platform' },
    { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', namespace: null },
  ];
  const rbac = workloadRbac(declared, new Set(['kube-system', 'kube-public', 'kube-node-lease', 'platform']));

  it('may remove undeclared workloads in a watched namespace without declared objects, and do nothing else there', () => {
    // Act
    const watched = workloadRbac(declared, new Set(['kube-system']), ['batch', 'kube-system']);
    // Assess
    expect(watched.writers.find((w) => w.namespace === 'batch')!.rules).toEqual([{ apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'statefulsets'], verbs: ['delete'] }]);
    expect(watched.writers.map((w) => w.namespace)).not.toContain('kube-system');
  });

  it('reads the watched workloads, the HPAs and every declared kind, cluster-wide, with get and list only', () => {
    expect(rbac.reader).toEqual([
      { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] },
      { apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'statefulsets'], verbs: ['get', 'list'] },
      { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list'] },
      { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'list'] },
      { apiGroups: ['scheduling.k8s.io'], resources: ['priorityclasses'], verbs: ['get', 'list'] },
    ]);
  });

  it('reads the watched workloads and HPAs even when nothing is declared, and writes nowhere', () => {
    expect(workloadRbac([], new Set())).toEqual({
      reader: [
        { apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'statefulsets'], verbs: ['get', 'list'] },
        { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'list'] },
      ],
      writers: [],
    });
  });

  it('writes only in the non-protected namespaces declared objects live in: apply of the kinds declared there, delete of apps workloads', () => {
    expect(rbac.writers).toEqual([
      {
        namespace: 'ops',
        rules: [
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'statefulsets'], verbs: ['delete'] },
        ],
      },
      {
        namespace: 'shop',
        rules: [
          { apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['autoscaling'], resources: ['horizontalpodautoscalers'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['networking.k8s.io'], resources: ['ingresses'], verbs: ['get', 'create', 'patch'] },
          { apiGroups: ['apps'], resources: ['daemonsets', 'deployments', 'statefulsets'], verbs: ['delete'] },
        ],
      },
    ]);
  });

  it('grants nothing on secrets, no wildcard, no update, and deletes nothing but apps workloads', () => {
    // Prepare
    const all = [...allowedPermissions(rbac.reader), ...rbac.writers.flatMap((w) => [...allowedPermissions(w.rules)])];
    // Act + Assess
    expect(all.filter((p) => p.includes('secrets') || p.includes('*') || p.endsWith(':update') || p.endsWith(':deletecollection'))).toEqual([]);
    expect([...new Set(all.filter((p) => p.endsWith(':delete')))].sort()).toEqual(['apps/daemonsets:delete', 'apps/deployments:delete', 'apps/statefulsets:delete']);
  });

  it('renders a ClusterRole and its binding, and a Role and RoleBinding per writable namespace, all for the workload group', () => {
    // Act
    const docs = loadAllYaml(workloadRbacManifest(CLUSTER, rbac)) as any[];
    // Assess
    expect(docs.map((d) => [d.kind, d.metadata.name, d.metadata.namespace])).toEqual([
      ['ClusterRole', WORKLOAD_READER_ROLE, undefined],
      ['ClusterRoleBinding', WORKLOAD_READER_ROLE, undefined],
      ['Role', WORKLOAD_WRITER_ROLE, 'ops'],
      ['RoleBinding', WORKLOAD_WRITER_ROLE, 'ops'],
      ['Role', WORKLOAD_WRITER_ROLE, 'shop'],
      ['RoleBinding', WORKLOAD_WRITER_ROLE, 'shop'],
    ]);
    expect(docs[0].rules).toEqual(rbac.reader);
    expect(docs[4].rules).toEqual(rbac.writers[1]!.rules);
    for (const binding of docs.filter((d) => d.kind.endsWith('Binding'))) {
      expect(binding.subjects).toEqual([{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: WORKLOADS_GROUP }]);
      expect(binding.roleRef.kind).toBe(binding.kind === 'ClusterRoleBinding' ? 'ClusterRole' : 'Role');
    }
  });
});

// ---------------------------------------------------------------------------- desired state

describe('desired state validation: secrets', () => {
  const ROOT = 'manifests/clusters';
  const manifest = (name: string, text: string): ManifestFile => ({ cluster: 'prod-eks', file: `${ROOT}/prod-eks/${name}`, text });
  const problemsOf = (...files: ManifestFile[]) => validateDesiredState(files, ['prod-eks'], ROOT).problems.map(formatProblem);

  it('refuses a Secret, naming the file and document, and publishes nothing of the state', () => {
    // Prepare
    const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: db, namespace: shop}\nstringData: {password: hunter2}\n';
    // Act
    const { objects, problems } = validateDesiredState([manifest('shop.yaml', text)], ['prod-eks'], ROOT);
    // Assess
    expect(problems.map(formatProblem)).toEqual([
      'manifests/clusters/prod-eks/shop.yaml: document 2: kind: Secret: Fleetwarden never reads or writes secrets, and git is no place for them (use External Secrets or Sealed Secrets)',
    ]);
    expect(objects).toEqual([]);
  });

  it('refuses a Secret with that one problem even when it lacks its name and namespace', () => {
    expect(problemsOf(manifest('s.yaml', 'apiVersion: v1\nkind: Secret\nmetadata: {}\n'))).toEqual([
      'manifests/clusters/prod-eks/s.yaml: document 1: kind: Secret: Fleetwarden never reads or writes secrets, and git is no place for them (use External Secrets or Sealed Secrets)',
    ]);
  });

  it('accepts a SealedSecret or ExternalSecret, which hold no secret', () => {
    // Prepare
    const text = 'apiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {name: db, namespace: shop}\nspec: {encryptedData: {password: AgBy}}\n---\napiVersion: external-secrets.io/v1beta1\nkind: ExternalSecret\nmetadata: {name: api, namespace: shop}\n';
    // Act
    const { objects, problems } = validateDesiredState([manifest('sealed.yaml', text)], ['prod-eks'], ROOT);
    // Assess
    expect(problems).toEqual([]);
    expect(objects.map((o) => o.kind)).toEqual(['SealedSecret', 'ExternalSecret']);
  });
});
