import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { DescribeExecutionCommand, ListExecutionsCommand, SFNClient, StopExecutionCommand } from '@aws-sdk/client-sfn';
import { AuthorizationV1Api, KubeConfig, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { stringify } from 'yaml';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClient, documentClient } from '../../functions/shared/aws';
import { DynamoDriftStore } from '../../functions/workloads/drift-store';
import { KubernetesWorkloads } from '../../functions/workloads/kubernetes';
import { COMMIT_ANNOTATION, FIELD_MANAGER } from '../../functions/workloads/port';
import { FILE_ASSETS_METADATA_KEY } from '../../lib/constructs/workloads';
import { PROJECT_ROOT } from '../../lib/paths';
import { applyRbac } from '../../scripts/k8s/control-plane';
import { listenToBus } from '../../local/listen';
import { type LocalFunction, type LocalStack, provision } from '../../local/provision';
import { invokeFunction, runStateMachine } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { Workloads } from '../../scripts/k8s/workloads';
import { commitAll } from '../../local/git';

/**
 * Workload drift end to end: manifests in a desired-state folder, synthesized and provisioned
 * into moto (the published asset, the findings and ledger tables, the bus, the rollback workflow),
 * the detector run as Lambda runs it against the run's real kube-apiserver as Fleetwarden's
 * workload identity (its RBAC generated from the same desired state), and the rollback workflow
 * run from its synthesized definition.
 */
const CLUSTER = 'prod-eks';
const run = randomBytes(3).toString('hex');
const shop = `shop-${run}`;
const ops = `ops-${run}`;

const container = (name: string, image: string) => ({
  name,
  image,
  ports: [{ containerPort: 8080 }],
  env: [{ name: 'MODE', value: 'prod' }],
  // Declared as a person writes them; the server stores 500m and 268435456 as 500m and 256Mi.
  resources: { requests: { cpu: '0.5', memory: '256Mi' } },
});
const deployment = (namespace: string, name: string, image: string, replicas = 2) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace, labels: { app: name }, annotations: { 'fleetwarden.io/purpose': `the ${name} service` } },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [container(name, image)] } } },
});
const configMap = (namespace: string, name: string, data: Record<string, string>) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace }, data });
const hpa = (namespace: string, target: string) => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: target, namespace },
  spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target }, minReplicas: 2, maxReplicas: 10, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] },
});

const declared = {
  storefront: deployment(shop, 'storefront', 'nginx:1.27.2'),
  checkout: deployment(shop, 'checkout', 'nginx:1.27.2'),
  checkoutHpa: hpa(shop, 'checkout'),
  settings: configMap(shop, 'storefront-settings', { currency: 'EUR', theme: 'light' }),
  catalog: deployment(shop, 'catalog', 'nginx:1.27.2', 1),
  // Its pods can never be scheduled: a rollout of it never settles.
  stuck: { ...deployment(shop, 'stuck', 'nginx:1.27.2', 1), spec: { ...deployment(shop, 'stuck', 'nginx:1.27.2', 1).spec, template: { metadata: { labels: { app: 'stuck' } }, spec: { nodeSelector: { 'fleetwarden.io/test-pool': 'nowhere' }, containers: [container('stuck', 'nginx:1.27.2')] } } } },
  reporting: deployment(ops, 'reporting', 'busybox:1.36', 1),
};
/** What the cluster's own deployer (kubectl, Argo CD) applied before Fleetwarden looked: everything but catalog. */
const deployedByCd = [declared.storefront, declared.checkout, declared.checkoutHpa, declared.settings, declared.stuck, declared.reporting];

let stack: LocalStack;
let detector: LocalFunction;
let k8s: Workloads;
let admin: KubernetesObjectApi;
let drifts: DynamoDriftStore;
let commit: string;

const scheduledEvent = () => ({ version: '0', id: randomBytes(8).toString('hex'), source: 'aws.events', 'detail-type': 'Scheduled Event', account: '123456789012', time: new Date().toISOString(), region: 'us-east-1', resources: [], detail: {} });
const cycle = async () => ((await invokeFunction(stack, detector, scheduledEvent())) as { clusters: Record<string, any>[] }).clusters[0]!;
const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

async function readDeployment(namespace: string, name: string) {
  return k8s.apps.readNamespacedDeployment({ namespace, name });
}

/** The rollbacks the detector started (moto records them; nothing runs them but runStateMachine). */
async function startedRollbacks(): Promise<{ name: string; input: Record<string, unknown> }[]> {
  const arn = stack.ref('WorkloadsStateMachine');
  const sfn = awsClient(SFNClient);
  const listed = (await sfn.send(new ListExecutionsCommand({ stateMachineArn: arn }))).executions ?? [];
  return Promise.all(listed.map(async (e) => ({ name: e.name!, input: JSON.parse((await sfn.send(new DescribeExecutionCommand({ executionArn: e.executionArn! }))).input!) })));
}

async function ledgerOf(subjectPart: string) {
  const entries: Record<string, any>[] = [];
  for await (const e of new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') }).entries()) if (String(e.subject).includes(subjectPart)) entries.push(e);
  return entries;
}

beforeAll(async () => {
  k8s = new Workloads(inject('kubeconfig'));
  admin = KubernetesObjectApi.makeApiClient(k8s.kubeConfig);
  for (const ns of [shop, ops]) await k8s.core.createNamespace({ body: { metadata: { name: ns } } });
  await k8s.node(`i-0${randomBytes(8).toString('hex').slice(0, 16)}`, { pool: Workloads.unique('drift') });
  for (const object of deployedByCd) await admin.patch(object as never, undefined, undefined, 'kubectl', true, PatchStrategy.ServerSideApply);

  // The desired state: a folder per cluster, as in the repository.
  const root = mkdtempSync(path.join(tmpdir(), 'fleetwarden-desired-'));
  mkdirSync(path.join(root, CLUSTER));
  writeFileSync(path.join(root, CLUSTER, 'shop.yaml'), [declared.storefront, declared.checkout, declared.checkoutHpa, declared.settings, declared.catalog, declared.stuck].map((o) => stringify(o)).join('---\n'));
  writeFileSync(path.join(root, CLUSTER, 'ops.yaml'), stringify(declared.reporting));
  // Committed, as in the repository: the published state carries the commit and each object's author.
  commit = commitAll(root, 'shop and ops workloads');
  const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
  const template = synthTemplate({
      ...base,
      dryRun: false,
      kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], desiredState: { path: root } },
      policies: {
        drift: {
          workloads: {
            rules: [
              { match: { namespaces: [ops] }, action: 'alert' },
              { match: { namespaces: [shop], types: ['unauthorized'] }, action: 'rollback', graceMinutes: 0.05 },
              { match: { namespaces: [shop] }, action: 'rollback' },
            ],
            rolloutTimeoutSeconds: 60,
          },
        },
      },
    });
  stack = await provision(template);
  detector = [...stack.functions.values()].find((f) => f.entry === 'functions/workloads/detect/handler.ts')!;
  drifts = new DynamoDriftStore(documentClient(), stack.ref('StateStoreFindingsTable'));
  // Fleetwarden's workload identity, with the RBAC cdk synth generated from this desired state.
  const [asset] = template.Metadata![FILE_ASSETS_METADATA_KEY] as { path: string }[];
  const dir = path.dirname(asset!.path);
  await applyRbac(inject('kubeconfig'), path.join(dir, readdirSync(dir).find((f) => f.endsWith(`.${CLUSTER}.workload-rbac.yaml`))!));
  process.env.FLEETWARDEN_KUBECONFIG = inject('workloadsKubeconfig');
});

afterAll(async () => {
  await k8s.cleanup();
  for (const ns of [shop, ops]) await k8s.core.deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('the workload drift identity\'s RBAC, generated from the desired state (real API server)', () => {
  const can = async (verb: string, group: string, resource: string, namespace?: string) => {
    const identity = new KubeConfig();
    identity.loadFromFile(inject('workloadsKubeconfig'));
    const review = await identity.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({ body: { spec: { resourceAttributes: { verb, group, resource, namespace } } } });
    return review.status?.allowed === true;
  };

  it('reads the watched and declared kinds cluster-wide, and writes only the declared kinds where declared objects live', async () => {
    // Act
    const allowed = await Promise.all([
      can('list', 'apps', 'deployments'),
      can('list', 'apps', 'statefulsets'),
      can('list', 'apps', 'daemonsets'),
      can('list', 'autoscaling', 'horizontalpodautoscalers'),
      can('list', '', 'configmaps'),
      can('patch', 'apps', 'deployments', shop),
      can('create', 'apps', 'deployments', shop),
      can('delete', 'apps', 'deployments', shop),
      can('patch', '', 'configmaps', shop),
      can('patch', 'autoscaling', 'horizontalpodautoscalers', shop),
      can('patch', 'apps', 'deployments', ops),
    ]);
    // Assess
    expect(allowed.every(Boolean)).toBe(true);
  });

  it('may not touch secrets, protected namespaces, namespaces without declared objects, pods or nodes', async () => {
    // Act
    const denied = await Promise.all([
      can('list', '', 'secrets'),
      can('get', '', 'secrets', shop),
      can('patch', 'apps', 'deployments', 'kube-system'),
      can('delete', 'apps', 'deployments', 'kube-system'),
      can('patch', 'apps', 'deployments', 'default'),
      can('patch', '', 'configmaps', ops),
      can('delete', '', 'configmaps', shop),
      can('create', '', 'pods', shop),
      can('delete', '', 'pods', shop),
      can('patch', '', 'nodes'),
      can('delete', '', 'namespaces'),
      can('update', 'rbac.authorization.k8s.io', 'roles', shop),
    ]);
    // Assess
    expect(denied.map((d, i) => (d ? i : undefined)).filter((i) => i !== undefined)).toEqual([]);
  });

  it('is refused (403) by the API server for a real apply outside the declared namespaces', async () => {
    // Prepare
    const identity = new KubeConfig();
    identity.loadFromFile(inject('workloadsKubeconfig'));
    const workloads = new KubernetesWorkloads(identity);
    // Act
    const outcome = await workloads.apply(deployment('default', `stray-${run}`, 'nginx:1.27.2'), { dryRun: false, fieldManager: FIELD_MANAGER, force: true }).then(
      () => 'applied',
      (error: Error) => error.name,
    );
    // Assess
    expect(outcome).toBe('Terminal.KubernetesForbidden');
  });
});

describe('workload drift against a real kube-apiserver', () => {
  it('reports nothing for what runs as declared: defaulted fields, normalized quantities, an HPA-scaled replica count and a sidecar added by another field manager are not drift', async () => {
    // Prepare: the HPA's controller scales checkout (through the scale subresource), and a
    // mutating webhook's work: a sidecar and an annotation, written under another field manager.
    await k8s.apps.patchNamespacedDeploymentScale({ namespace: shop, name: 'checkout', body: { spec: { replicas: 5 } } }, MERGE);
    await admin.patch(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'storefront', namespace: shop, annotations: { 'sidecar.istio.io/status': 'injected' } }, spec: { template: { spec: { containers: [{ name: 'istio-proxy', image: 'istio/proxyv2:1.24.0' }] } } } } as never,
      undefined,
      undefined,
      'istio-sidecar-injector',
      true,
      PatchStrategy.ServerSideApply,
    );
    // Act
    const report = await cycle();
    // Assess: only the missing catalog is drift; everything else is in sync.
    expect(report.observed).toEqual({ missing: 1 });
    expect(report.inSync).toBe(6);
    expect(report.dryRuns).toBe(0);
    // The HPA's count and the sidecar are untouched.
    expect((await readDeployment(shop, 'checkout')).spec?.replicas).toBe(5);
  });

  it('deploys a missing declared workload with the rollback workflow, stamped with its commit under Fleetwarden\'s field manager, and closes the drift once in sync', async () => {
    // Prepare: the first cycle opened the drift and started its rollback.
    const received = await listenToBus(stack, ['fleetwarden.workloads']);
    const started = (await startedRollbacks()).find((r) => String(r.input.driftId).endsWith(`/catalog`))!;
    expect(started.input).toMatchObject({ mode: 'apply', checks: 12 });
    // Act
    const rollback = await runStateMachine(stack, 'WorkloadsStateMachine', started.input, { waitMs: 300 });
    const after = await cycle();
    // Assess
    expect(rollback.status).toBe('SUCCEEDED');
    const catalog = await readDeployment(shop, 'catalog');
    expect(catalog.metadata?.annotations?.[COMMIT_ANNOTATION]).toBe(commit);
    expect(catalog.metadata?.managedFields?.some((f) => f.manager === FIELD_MANAGER && f.operation === 'Apply')).toBe(true);
    expect(catalog.status?.availableReplicas).toBe(1);
    expect(after).toMatchObject({ observed: {}, resolved: 1, opened: 0 });
    expect((await ledgerOf('/catalog')).map((e) => e.action)).toEqual(['workload.drift-detected', 'workload.rollback-started', 'workload.rolled-back', 'workload.drift-resolved']);
    const events = (await received()) as { 'detail-type': string; detail: Record<string, unknown> }[];
    expect(events.filter((e) => e.detail.name === 'catalog').map((e) => e['detail-type'])).toEqual(['WorkloadDriftResolved']);
  });

  it('finds an edited image within one cycle, announces and records it once, rolls it back with the workflow, and leaves the other manager\'s sidecar alone', async () => {
    // Prepare: a person edits the image by hand.
    const received = await listenToBus(stack, ['fleetwarden.workloads']);
    await k8s.apps.patchNamespacedDeployment({ namespace: shop, name: 'storefront', body: { spec: { template: { spec: { containers: [{ name: 'storefront', image: 'nginx:1.99-hotfix' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    // Act
    const first = await cycle();
    const second = await cycle();
    // Assess: found in the first cycle, confirmed by one dry run, opened once.
    expect(first).toMatchObject({ observed: { image: 1 }, opened: 1, dryRuns: 1 });
    expect(second).toMatchObject({ observed: { image: 1 }, opened: 0, rollbacksStarted: [] });
    const drift = (await drifts.openIn(CLUSTER)).find((d) => d.name === 'storefront')!;
    expect(drift).toMatchObject({ type: 'image', state: 'rolling-back', declaredCommit: commit, diff: ['spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> nginx:1.99-hotfix'] });
    const detected = ((await received()) as { 'detail-type': string; detail: Record<string, unknown> }[]).filter((e) => e.detail.name === 'storefront');
    expect(detected.map((e) => e['detail-type'])).toEqual(['WorkloadDriftDetected']);
    expect(detected[0]!.detail).toMatchObject({ cluster: CLUSTER, namespace: shop, kind: 'Deployment', driftType: 'image', declaredCommit: commit });

    // Act: the workflow the cycle started.
    const started = (await startedRollbacks()).find((r) => r.input.driftId === drift.driftId)!;
    const rollback = await runStateMachine(stack, 'WorkloadsStateMachine', started.input, { waitMs: 300 });
    const third = await cycle();
    // Assess
    expect(rollback.status).toBe('SUCCEEDED');
    const storefront = await readDeployment(shop, 'storefront');
    expect(storefront.spec?.template.spec?.containers.map((c) => `${c.name}=${c.image}`).sort()).toEqual(['istio-proxy=istio/proxyv2:1.24.0', 'storefront=nginx:1.27.2']);
    expect(third).toMatchObject({ observed: {}, resolved: 1 });
    expect((await ledgerOf('/storefront')).map((e) => e.action)).toEqual(['workload.drift-detected', 'workload.rollback-started', 'workload.rolled-back', 'workload.drift-resolved']);
  });

  it('finds config drift in a ConfigMap\'s data and re-applies the declared data', async () => {
    // Prepare
    await k8s.core.patchNamespacedConfigMap({ namespace: shop, name: 'storefront-settings', body: { data: { theme: 'dark' } } }, MERGE);
    // Act
    const report = await cycle();
    const started = (await startedRollbacks()).find((r) => String(r.input.driftId).endsWith('/storefront-settings'))!;
    const rollback = await runStateMachine(stack, 'WorkloadsStateMachine', started.input, { waitMs: 300 });
    // Assess
    expect(report).toMatchObject({ observed: { config: 1 }, opened: 1 });
    expect(rollback.status).toBe('SUCCEEDED');
    expect((await k8s.core.readNamespacedConfigMap({ namespace: shop, name: 'storefront-settings' })).data).toEqual({ currency: 'EUR', theme: 'light' });
  });

  it('only alerts where the rule says alert: opened once over many cycles, never rolled back', async () => {
    // Prepare
    await k8s.apps.patchNamespacedDeployment({ namespace: ops, name: 'reporting', body: { spec: { template: { spec: { containers: [{ name: 'reporting', image: 'busybox:1.37' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    // Act
    for (let i = 0; i < 3; i++) await cycle();
    // Assess
    const drift = (await drifts.openIn(CLUSTER)).find((d) => d.name === 'reporting')!;
    expect(drift).toMatchObject({ type: 'image', action: 'alert', state: 'open' });
    expect((await ledgerOf('/reporting')).map((e) => e.action)).toEqual(['workload.drift-detected']);
    expect((await startedRollbacks()).some((r) => r.input.driftId === drift.driftId)).toBe(false);
    expect((await readDeployment(ops, 'reporting')).spec?.template.spec?.containers[0]?.image).toBe('busybox:1.37');
  });

  it('alerts an undeclared Deployment at once and removes it only after its grace, keeping its manifest in the ledger', async () => {
    // Prepare: someone deploys by hand.
    await admin.patch(deployment(shop, 'intruder', 'nginx:latest', 1) as never, undefined, undefined, 'kubectl', true, PatchStrategy.ServerSideApply);
    // Act
    const first = await cycle();
    await new Promise((r) => setTimeout(r, 3_500));
    const second = await cycle();
    // Assess
    expect(first).toMatchObject({ observed: { unauthorized: 1 }, opened: 1, rollbacksStarted: [] });
    expect(second.rollbacksStarted).toHaveLength(1);
    const drift = (await drifts.get((await startedRollbacks()).find((r) => String(r.input.driftId).endsWith('/intruder'))!.input.driftId as string))!;
    expect(drift).toMatchObject({ type: 'unauthorized', creator: expect.stringContaining('field manager kubectl') });
    const rollback = await runStateMachine(stack, 'WorkloadsStateMachine', { driftId: drift.driftId, mode: 'remove', checks: 12 }, { waitMs: 300 });
    expect(rollback.status).toBe('SUCCEEDED');
    await expect(readDeployment(shop, 'intruder')).rejects.toMatchObject({ code: 404 });
    const entries = await ledgerOf('/intruder');
    expect(entries.map((e) => e.action)).toEqual(['workload.drift-detected', 'workload.rollback-started', 'workload.removing', 'workload.removed']);
    expect(entries[2]!.before).toMatchObject({ kind: 'Deployment', metadata: { name: 'intruder', namespace: shop }, spec: { template: { spec: { containers: [{ image: 'nginx:latest' }] } } } });
  });

  it('stops a rollback that does not settle, alerts it, and never starts it again for the same drift', async () => {
    // Prepare
    const received = await listenToBus(stack, ['fleetwarden.workloads']);
    await k8s.apps.patchNamespacedDeployment({ namespace: shop, name: 'stuck', body: { spec: { template: { spec: { containers: [{ name: 'stuck', image: 'nginx:1.99' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    await cycle();
    const drift = (await drifts.openIn(CLUSTER)).find((d) => d.name === 'stuck')!;
    const started = (await startedRollbacks()).find((r) => r.input.driftId === drift.driftId)!;
    // Act
    const rollback = await runStateMachine(stack, 'WorkloadsStateMachine', started.input, { waitMs: 50 });
    const later = await cycle();
    // Assess
    expect(rollback).toMatchObject({ status: 'FAILED', error: 'Terminal.RolloutNotSettled' });
    expect(await drifts.get(drift.driftId)).toMatchObject({ state: 'rollback-failed', outcome: expect.stringContaining('not-settled') });
    expect(later.rollbacksStarted).toEqual([]);
    expect((await startedRollbacks()).filter((r) => r.input.driftId === drift.driftId)).toHaveLength(1);
    const failed = ((await received()) as { 'detail-type': string; detail: Record<string, unknown> }[]).filter((e) => e['detail-type'] === 'WorkloadRollbackFailed');
    expect(failed.map((e) => e.detail.name)).toEqual(['stuck']);
  });

  it('records a rollback whose execution was stopped before it recorded anything as failed, once, and never starts it again', async () => {
    // Prepare: a config edit, its rollback started, then the execution stopped by hand.
    const received = await listenToBus(stack, ['fleetwarden.workloads']);
    await k8s.apps.patchNamespacedDeployment({ namespace: shop, name: 'checkout', body: { spec: { template: { spec: { containers: [{ name: 'checkout', env: [{ name: 'MODE', value: 'debug' }] }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    const first = await cycle();
    const drift = (await drifts.openIn(CLUSTER)).find((d) => d.name === 'checkout')!;
    const sfn = awsClient(SFNClient);
    const execution = ((await sfn.send(new ListExecutionsCommand({ stateMachineArn: stack.ref('WorkloadsStateMachine') }))).executions ?? []).find((e) => e.name === drift.execution)!;
    await sfn.send(new StopExecutionCommand({ executionArn: execution.executionArn!, error: 'Stopped', cause: 'stopped by an operator' }));
    // Act
    const second = await cycle();
    const third = await cycle();
    // Assess
    expect(first).toMatchObject({ observed: { config: 1 }, opened: 1, rollbacksStarted: [drift.execution] });
    expect(second.rollbacksStarted).toEqual([]);
    expect(await drifts.get(drift.driftId)).toMatchObject({ state: 'rollback-failed', outcome: 'execution ABORTED' });
    expect((await ledgerOf('/checkout')).map((e) => e.action)).toEqual(['workload.drift-detected', 'workload.rollback-started', 'workload.rollback-failed']);
    expect(third).toMatchObject({ opened: 0, resolved: 0, rollbacksStarted: [] });
    const events = ((await received()) as { 'detail-type': string; detail: Record<string, unknown> }[]).filter((e) => e.detail.name === 'checkout');
    expect(events.map((e) => e['detail-type'])).toEqual(['WorkloadDriftDetected', 'WorkloadRollbackFailed']);
  });
});
