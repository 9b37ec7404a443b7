/**
 * Workload drift at scale, beside `kubectl diff --server-side` on the same manifests (measures,
 * never asserts; a drift set that differs from the seeding is reported loudly, not hidden).
 *
 * - Cluster: the local control plane (scripts/k8s/cluster.sh: etcd, kube-apiserver,
 *   kube-controller-manager, kube-scheduler; no node, so the few pods there are stay Pending).
 *   50 namespaces of 40 Deployments each (2,000), replicas 0 except the 20 an HPA scales
 *   (declared 1), and those 20 HPAs: 2,020 declared objects, one YAML file per namespace.
 *   Seeded as a CD tool applies them: server-side apply with field manager `kubectl`, as
 *   cluster-admin, 20 requests in flight.
 * - Drift, known by construction: 20 image edits (`kubectl-set`), 10 env value edits
 *   (`kubectl-edit`), 5 Deployments deleted (missing), 5 undeclared Deployments (`helm`) in
 *   watched namespaces. Noise that is not drift: the 20 HPA targets scaled through the scale
 *   subresource by `kube-controller-manager` (as the HPA does), and 20 Deployments given a
 *   sidecar container by another field manager (`sidecar-injector`, server-side apply).
 * - Fleetwarden: the desired state built from those files by validateDesiredState and
 *   desiredState(), read back through DesiredStateSchema as the detector reads its S3 asset; the
 *   cycle (runWorkloadDriftCycle: observeCluster, the open drifts' query, the transitions'
 *   ledger transactions, the bus) run in a Node 22 process of its own that does nothing else (the
 *   detector's Lambda container), as Fleetwarden's workload identity (a client certificate in
 *   its Kubernetes group, the RBAC cdk synth generates from the same desired state), the findings
 *   and ledger tables and the bus in moto. The first cycle (discovery, 40 drifts opened) apart,
 *   then 5 cycles over the unchanged cluster, each reusing the connection as a warm container does.
 * - kubectl diff: `kubectl diff --server-side --force-conflicts -f <the same files>` as
 *   cluster-admin (default field manager, `kubectl` under --server-side, the seeder's), with -v=6
 *   to count its requests; a fresh discovery cache on the first run, the cache kept for the next
 *   two, and a last run without -v=6 (its wall time without the request log). Its output's
 *   `diff -u -N …/LIVE-…/<group>.<version>.<Kind>.<ns>.<name> …` headers name the objects it says
 *   differ; each is set against Fleetwarden's drifts and the seeding, every disagreement with its
 *   cause.
 *
 * Exported: workloadsBench(), for scripts/bench.ts (which starts moto). Standalone
 * (`tsx scripts/bench/workloads.ts [--scale 0.1]`) starts its own moto, prints the JSON and
 * writes nothing. `--cycle-process <config.json>` is the detector process the bench spawns.
 */
import '../quiet-runtime';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import * as path from 'node:path';
import * as https from 'node:https';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { DynamoLedger } from '../../functions/ledger/store';
import { awsClientConfig } from '../../functions/shared/aws';
import { EVENT_SOURCES, EventBridgePublisher, type EventPublisher } from '../../functions/shared/bus';
import { parseOrThrow } from '../../functions/shared/validation';
import { type ClusterDriftReport, type WorkloadDriftDeps, runWorkloadDriftCycle } from '../../functions/workloads/cycle';
import { type DesiredState, DesiredStateSchema, type ManifestFile, desiredState, validateDesiredState } from '../../functions/workloads/desired-state';
import type { DriftTransition, WorkloadDrift } from '../../functions/workloads/drift';
import { type DriftStore, DynamoDriftStore } from '../../functions/workloads/drift-store';
import { KubernetesWorkloads } from '../../functions/workloads/kubernetes';
import { WorkloadDriftPolicySchema } from '../../functions/workloads/policy';
import type { ApplyOptions, ClusterWorkloads, KubeObject, ObjectRef } from '../../functions/workloads/port';
import { WORKLOADS_GROUP, workloadRbac, workloadRbacManifest } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { applyRbac, clusterDown, clusterUp, clusterUser, runScript } from '../k8s/control-plane';
import { ASSUMPTIONS, PRICES } from './cost';
import { itemBytes, sampleMemory } from './harness';

const CLUSTER = 'bench-eks';
const NAMESPACES = 50;
const PER_NAMESPACE = 40;
/** Requests in flight while seeding and editing (a CD tool's apply of many objects is parallel too). */
const SEED_CONCURRENCY = 20;
/** Cycles over the unchanged cluster after the first. */
const STEADY_CYCLES = 5;
/**
 * kubectl diff runs: the first with an empty discovery cache, the rest with it kept; the last
 * without -v=6 (its wall time without the request log).
 */
const KUBECTL_RUNS = 4;
const DRIFT = { image: 20, config: 10, missing: 5, unauthorized: 5 } as const;
const NOISE = { hpaScaled: 20, sidecar: 20 } as const;
/** The detector's memory (lib/constructs/workloads.ts WorkloadDriftDetector), ARM64 as every function. */
const DETECTOR_MEMORY_MB = 1024;
/** The adapter's list page (functions/workloads/kubernetes.ts). */
const LIST_PAGE = 500;
const RESULT_MARKER = 'FLEETWARDEN-WORKLOADS-BENCH ';
const SCRIPT = fileURLToPath(import.meta.url);
const SCRIPT_SH = path.join(PROJECT_ROOT, 'scripts', 'k8s', 'cluster.sh');

const round = (n: number, digits = 1) => Number(n.toFixed(digits));
const mb = (bytes: number) => round(bytes / 1024 / 1024);
const sum = (values: Iterable<number>) => [...values].reduce((a, b) => a + b, 0);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
const stats = (values: number[]) => ({ median: round(median(values)), min: round(Math.min(...values)), max: round(Math.max(...values)), runs: values.length });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const key = (namespace: string, name: string) => `${namespace}/${name}`;

// ---------------------------------------------------------------------------------------------
// The declared workloads and the drift made on them.

interface Shape {
  namespaces: string[];
  deployments: { namespace: string; name: string }[];
}

function shapeOf(scale: number): Shape {
  const count = Math.max(5, Math.round(NAMESPACES * scale));
  const namespaces = Array.from({ length: count }, (_, i) => `wl-${String(i).padStart(2, '0')}`);
  return { namespaces, deployments: namespaces.flatMap((namespace) => Array.from({ length: PER_NAMESPACE }, (_, i) => ({ namespace, name: `svc-${String(i).padStart(3, '0')}` }))) };
}

/** A deterministic shuffle (mulberry32), so every run edits the same objects. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

/** Which Deployments get which edit (disjoint sets), and where the undeclared ones go. */
function scenarioOf(shape: Shape) {
  const order = shuffled(shape.deployments, 20261207);
  let at = 0;
  const take = (n: number) => order.slice(at, (at += n));
  const image = take(DRIFT.image);
  const config = take(DRIFT.config);
  const missing = take(DRIFT.missing);
  const hpaScaled = take(NOISE.hpaScaled);
  const sidecar = take(NOISE.sidecar);
  const stride = Math.max(1, Math.floor(shape.namespaces.length / DRIFT.unauthorized));
  const unauthorized = Array.from({ length: DRIFT.unauthorized }, (_, i) => ({ namespace: shape.namespaces[(i * stride + 1) % shape.namespaces.length]!, name: `adhoc-debug-${i}` }));
  return { image, config, missing, hpaScaled, sidecar, unauthorized };
}
type Scenario = ReturnType<typeof scenarioOf>;

const image = (namespace: string, name: string) => `registry.example.com/${namespace}/${name}:1.4.2`;

function deploymentManifest(namespace: string, name: string, replicas: number): Record<string, unknown> {
  const labels = { app: name, tier: 'backend' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace, labels, annotations: { 'fleetwarden.io/purpose': `bench service ${name} of ${namespace}` } },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: 'app',
              image: image(namespace, name),
              ports: [{ name: 'http', containerPort: 8080 }],
              env: [
                { name: 'MODE', value: 'prod' },
                { name: 'LOG_LEVEL', value: 'info' },
              ],
              // Declared as people write them: the server keeps 0.1 as 100m.
              resources: { requests: { cpu: '0.1', memory: '128Mi' }, limits: { memory: '256Mi' } },
              readinessProbe: { httpGet: { path: '/healthz', port: 8080 } },
            },
          ],
        },
      },
    },
  };
}

const hpaManifest = (namespace: string, name: string) => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name, namespace },
  spec: {
    scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name },
    minReplicas: 1,
    maxReplicas: 5,
    metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
  },
});

/** The manifest files of the desired state: one per namespace, its Deployments then its HPAs. */
function manifestFiles(shape: Shape, scenario: Scenario, root: string): (ManifestFile & { objects: Record<string, unknown>[] })[] {
  const scaled = new Set(scenario.hpaScaled.map((d) => key(d.namespace, d.name)));
  return shape.namespaces.map((namespace) => {
    const here = shape.deployments.filter((d) => d.namespace === namespace);
    const objects = [
      ...here.map((d) => deploymentManifest(namespace, d.name, scaled.has(key(namespace, d.name)) ? 1 : 0)),
      ...here.filter((d) => scaled.has(key(namespace, d.name))).map((d) => hpaManifest(namespace, d.name)),
    ];
    return { cluster: CLUSTER, file: `${root}/${CLUSTER}/${namespace}.yaml`, text: objects.map((o) => stringify(o)).join('---\n'), objects };
  });
}

/** The published desired state, through the same validation `cdk synth` runs. */
function buildDesiredState(files: readonly ManifestFile[], root: string): DesiredState {
  const validated = validateDesiredState(files, [CLUSTER], root);
  if (validated.problems.length) throw new Error(`the bench's desired state does not validate: ${JSON.stringify(validated.problems.slice(0, 5))}`);
  const commit = 'b'.repeat(40);
  const change = { commit, author: { name: 'Bench', email: 'bench@example.com' }, authoredAt: '2026-12-07T09:00:00Z', committedAt: '2026-12-07T09:00:00Z' };
  return desiredState({
    path: root,
    clusters: [CLUSTER],
    objects: validated.objects,
    source: { provenance: 'git', commit, dirty: false, dirtyFiles: [] },
    lastChanges: new Map(files.map((f) => [f.file, change])),
  });
}

// ---------------------------------------------------------------------------------------------
// Seeding.

/** Runs `fn` over `items` with at most `concurrency` in flight; a failed item is tried 3 times. */
async function inPool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      for (let attempt = 1; ; attempt++) {
        try {
          await fn(item);
          break;
        } catch (error) {
          if (attempt >= 3) throw error;
          await sleep(200 * attempt);
        }
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

async function seed(adminKubeconfig: string, files: ReturnType<typeof manifestFiles>, shape: Shape, scenario: Scenario) {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const admin = new KubernetesWorkloads(kc);
  const apps = kc.makeApiClient(AppsV1Api);
  const asKubectl: ApplyOptions = { dryRun: false, fieldManager: 'kubectl', force: false };
  const started = performance.now();

  await inPool(shape.namespaces, SEED_CONCURRENCY, (name) => admin.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }, asKubectl));
  const declared = files.flatMap((f) => f.objects);
  await inPool(declared, SEED_CONCURRENCY, (o) => admin.apply(o as KubeObject, asKubectl));
  const seedSeconds = (performance.now() - started) / 1000;
  const seedRequests = admin.requests;

  const editStarted = performance.now();
  const SMP = setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
  const MERGE = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
  const containerPatch = (container: Record<string, unknown>) => ({ spec: { template: { spec: { containers: [{ name: 'app', ...container }] } } } });
  // Drift: what people and tools do to a cluster behind its deployer's back.
  await inPool(scenario.image, SEED_CONCURRENCY, (d) =>
    apps.patchNamespacedDeployment({ ...d, body: containerPatch({ image: `${image(d.namespace, d.name)}-hotfix` }), fieldManager: 'kubectl-set' }, SMP),
  );
  await inPool(scenario.config, SEED_CONCURRENCY, (d) => apps.patchNamespacedDeployment({ ...d, body: containerPatch({ env: [{ name: 'LOG_LEVEL', value: 'debug' }] }), fieldManager: 'kubectl-edit' }, SMP));
  await inPool(scenario.missing, SEED_CONCURRENCY, (d) => apps.deleteNamespacedDeployment(d));
  await inPool(scenario.unauthorized, SEED_CONCURRENCY, (d) => {
    const manifest = deploymentManifest(d.namespace, d.name, 0);
    ((manifest.spec as { template: { spec: { containers: { image: string }[] } } }).template.spec.containers[0]!).image = 'docker.io/someone/debug-tools:latest';
    return admin.apply(manifest as KubeObject, { dryRun: false, fieldManager: 'helm', force: false });
  });
  // Not drift: what other controllers legitimately own.
  await inPool(scenario.hpaScaled, SEED_CONCURRENCY, (d) => apps.patchNamespacedDeploymentScale({ ...d, body: { spec: { replicas: 2 } }, fieldManager: 'kube-controller-manager' }, MERGE));
  await inPool(scenario.sidecar, SEED_CONCURRENCY, (d) =>
    admin.apply(
      { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: d.name, namespace: d.namespace }, spec: { template: { spec: { containers: [{ name: 'log-shipper', image: 'fluent/fluent-bit:3.1' }] } } } },
      { dryRun: false, fieldManager: 'sidecar-injector', force: false },
    ),
  );
  const editSeconds = (performance.now() - editStarted) / 1000;

  // The controllers catch up (ReplicaSets, rollouts of the edited ones), so that nothing they do
  // competes with what is measured.
  const settleStarted = performance.now();
  let settled = false;
  let behind = -1;
  for (const deadline = performance.now() + 180_000; performance.now() < deadline; await sleep(1000)) {
    const deployments = await admin.list('apps/v1', 'Deployment');
    behind = deployments.filter((o) => ((o.status as { observedGeneration?: number } | undefined)?.observedGeneration ?? 0) < (o.metadata?.generation ?? 0)).length;
    if (behind === 0 && deployments.length >= shape.deployments.length) {
      settled = true;
      break;
    }
  }
  await sleep(3000);
  return {
    seedSeconds: round(seedSeconds),
    seedRequests,
    seedObjectsPerSecond: round((declared.length + shape.namespaces.length) / seedSeconds),
    driftAndNoiseSeconds: round(editSeconds),
    controllersSettled: settled,
    ...(settled ? {} : { deploymentsNotObservedYet: behind }),
    settleSeconds: round((performance.now() - settleStarted) / 1000),
  };
}

// ---------------------------------------------------------------------------------------------
// The detector process: the cycle and nothing else.

interface CycleProcessConfig {
  kubeconfig: string;
  statePath: string;
  findingsTable: string;
  ledgerTable: string;
  bus: string;
  cycles: number;
}

/** A ClusterWorkloads that counts each call's API requests by operation (list per kind, dry run). */
class MeteredWorkloads implements ClusterWorkloads {
  private byOperation: Record<string, { calls: number; requests: number; objects: number }> = {};
  constructor(private readonly inner: ClusterWorkloads) {}

  get requests(): number {
    return this.inner.requests;
  }

  take() {
    const taken = this.byOperation;
    this.byOperation = {};
    return taken;
  }

  private async metered<T>(operation: string, call: () => Promise<T>, objects: (result: T) => number): Promise<T> {
    const before = this.inner.requests;
    let result: T | undefined;
    try {
      result = await call();
      return result;
    } finally {
      const o = (this.byOperation[operation] ??= { calls: 0, requests: 0, objects: 0 });
      o.calls += 1;
      o.requests += this.inner.requests - before;
      if (result !== undefined) o.objects += objects(result);
    }
  }

  list(apiVersion: string, kind: string): Promise<KubeObject[]> {
    return this.metered(`list ${kind}`, () => this.inner.list(apiVersion, kind), (r) => r.length);
  }
  get(ref: ObjectRef): Promise<KubeObject | undefined> {
    return this.metered(`get ${ref.kind}`, () => this.inner.get(ref), (r) => (r ? 1 : 0));
  }
  apply(manifest: KubeObject, options: ApplyOptions): Promise<KubeObject> {
    return this.metered(options.dryRun ? 'dry-run apply' : 'apply', () => this.inner.apply(manifest, options), () => 1);
  }
  delete(ref: ObjectRef, uid: string): Promise<'deleted' | 'absent' | 'replaced'> {
    return this.metered('delete', () => this.inner.delete(ref, uid), () => 1);
  }
}

/**
 * A DynamoDB client of the detector's own with a meter: calls by operation, read units as
 * on-demand DynamoDB bills them (a Query 1 RRU per started 4 KB read, half that eventually
 * consistent, as the open-drifts index is), write units of transactions (2 per started KB of
 * each item).
 */
function meteredDynamo() {
  const client = new DynamoDBClient(awsClientConfig());
  const totals = { calls: {} as Record<string, number>, readUnits: 0, writeUnits: 0 };
  type Item = Record<string, unknown>;
  type Input = { ConsistentRead?: boolean; Item?: Item; Key?: Item; TransactItems?: Record<string, { Item?: Item; Key?: Item } | undefined>[] };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const result = await next(args);
      const command = (context.commandName ?? '').replace(/Command$/, '');
      const input = args.input as Input;
      const output = (result.output ?? {}) as { Items?: Item[]; Item?: Item };
      totals.calls[command] = (totals.calls[command] ?? 0) + 1;
      const kb = (item: Item | undefined, size: number) => Math.max(1, Math.ceil(itemBytes(item ?? {}) / size));
      if (command === 'Query') totals.readUnits += Math.max(1, Math.ceil(sum((output.Items ?? []).map(itemBytes)) / 4096)) * (input.ConsistentRead ? 1 : 0.5);
      if (command === 'GetItem') totals.readUnits += kb(output.Item, 4096) * (input.ConsistentRead ? 1 : 0.5);
      if (command === 'PutItem' || command === 'UpdateItem' || command === 'DeleteItem') totals.writeUnits += kb(input.Item ?? input.Key, 1024);
      if (command === 'TransactWriteItems') {
        for (const t of input.TransactItems ?? []) {
          const p = t.Put ?? t.Update ?? t.Delete ?? t.ConditionCheck;
          if (p) totals.writeUnits += 2 * kb(p.Item ?? p.Key, 1024);
        }
      }
      return result;
    },
    { step: 'initialize', name: 'fleetwardenBenchWorkloadsDynamo' },
  );
  const mark = () => structuredClone(totals);
  const since = (m: ReturnType<typeof mark>) => ({
    calls: Object.fromEntries(Object.entries(totals.calls).flatMap(([c, n]) => (n > (m.calls[c] ?? 0) ? [[c, n - (m.calls[c] ?? 0)]] : []))),
    readUnits: totals.readUnits - m.readUnits,
    writeUnits: totals.writeUnits - m.writeUnits,
  });
  return { client, mark, since };
}


/** `--cycle-process`: the detector's work, timed, counted and weighed, in a process of its own. */
async function cycleProcess(configFile: string): Promise<Record<string, unknown>> {
  const config = JSON.parse(readFileSync(configFile, 'utf8')) as CycleProcessConfig;
  const memoryAtLoad = process.memoryUsage();
  const parseStarted = performance.now();
  // As s3DesiredState reads the published asset (once per container).
  const state = parseOrThrow(DesiredStateSchema, JSON.parse(readFileSync(config.statePath, 'utf8')), 'desired state');
  const parseMs = performance.now() - parseStarted;

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(config.kubeconfig);
  const workloads = new MeteredWorkloads(new KubernetesWorkloads(kubeConfig));
  const dynamo = meteredDynamo();
  const doc = DynamoDBDocumentClient.from(dynamo.client, { marshallOptions: { removeUndefinedValues: true } });
  const store = new DynamoDriftStore(doc, config.findingsTable, new DynamoLedger(doc, { tableName: config.ledgerTable }));
  const bus = new EventBridgePublisher(config.bus, EVENT_SOURCES.workloads);
  const times = { openInAt: 0, openInMs: 0, recordMs: 0, events: 0, transitions: 0 };
  const drifts: DriftStore = {
    get: (id) => store.get(id),
    all: () => store.all(),
    openIn: async (cluster) => {
      times.openInAt = performance.now();
      const open = await store.openIn(cluster);
      times.openInMs = performance.now() - times.openInAt;
      return open;
    },
    record: async (transitions: readonly DriftTransition[], eventId: string, actor: string) => {
      const t = performance.now();
      await store.record(transitions, eventId, actor);
      times.recordMs += performance.now() - t;
      times.transitions += transitions.length;
    },
  };
  const publisher: EventPublisher = {
    publish: async (events) => {
      times.events += events.length;
      await bus.publish(events);
    },
  };
  // The policy only alerts: no rollback is ever started or looked up.
  const rollbacks = {
    start: async (name: string): Promise<never> => {
      throw new Error(`the bench's policy only alerts, yet a rollback ${name} was started`);
    },
    status: async (): Promise<string> => 'absent',
  };
  const deps: WorkloadDriftDeps = {
    desiredState: async () => state,
    // One connection for every cycle, as a warm container keeps it (discovery once).
    connect: async () => workloads,
    drifts,
    publisher,
    rollbacks,
    policy: WorkloadDriftPolicySchema.parse({}),
    dryRun: true,
    clock: () => new Date(),
  };

  const cycles: Record<string, unknown>[] = [];
  for (let i = 0; i < config.cycles; i++) {
    Object.assign(times, { openInAt: 0, openInMs: 0, recordMs: 0, events: 0, transitions: 0 });
    const dynamoMark = dynamo.mark();
    const memory = sampleMemory(5);
    const started = performance.now();
    const [report] = (await runWorkloadDriftCycle(`bench-cycle-${i}`, deps)) as [ClusterDriftReport];
    const ms = performance.now() - started;
    cycles.push({
      ms: round(ms),
      observeMs: round(times.openInAt - started),
      openDriftsQueryMs: round(times.openInMs),
      recordMs: round(times.recordMs),
      report: { declared: report.declared, inSync: report.inSync, dryRuns: report.dryRuns, observed: report.observed, opened: report.opened, resolved: report.resolved, ignored: report.ignored, requests: report.requests },
      requestsByOperation: workloads.take(),
      dynamodb: dynamo.since(dynamoMark),
      putEventsEntries: times.events,
      transitionsRecorded: times.transitions,
      memory: memory(),
    });
  }
  const maxRssMb = round(process.resourceUsage().maxRSS / 1024);
  // After the measured cycles (untimed): what the drift store holds open, and the listing's bytes.
  const open: WorkloadDrift[] = await store.openIn(CLUSTER);
  const listedBytes: Record<string, number> = {};
  for (const kind of ['Deployment', 'StatefulSet', 'DaemonSet', 'HorizontalPodAutoscaler']) {
    const apiVersion = kind === 'HorizontalPodAutoscaler' ? 'autoscaling/v2' : 'apps/v1';
    listedBytes[kind] = sum((await workloads.list(apiVersion, kind)).map((o) => Buffer.byteLength(JSON.stringify(o))));
  }
  return {
    node: process.version,
    memoryAtLoadMb: { rss: mb(memoryAtLoad.rss), heapUsed: mb(memoryAtLoad.heapUsed) },
    desiredStateObjects: state.objects.length,
    desiredStateBytes: Buffer.byteLength(readFileSync(config.statePath)),
    desiredStateParseMs: round(parseMs),
    cycles,
    processMaxRssMb: maxRssMb,
    openDrifts: open.map((d) => ({ type: d.type, kind: d.kind, namespace: d.namespace, name: d.name, diff: d.diff, creator: d.creator })),
    listedBytes,
    deploymentListOnTheWire: await listOnTheWire(kubeConfig, '/apis/apps/v1/deployments'),
  };
}

/**
 * The bytes a full listing of `path` takes on the wire, page by page as the adapter asks (limit
 * 500): as the adapter asks (no Accept-Encoding) and with `Accept-Encoding: gzip`, which the API
 * server honours for large responses. Untimed; for the note on what a cycle transfers.
 */
async function listOnTheWire(kubeConfig: KubeConfig, listPath: string): Promise<Record<string, number | string>> {
  const page = async (query: string, gzip: boolean) => {
    const options: https.RequestOptions = { method: 'GET', headers: { accept: 'application/json', ...(gzip ? { 'accept-encoding': 'gzip' } : {}) } };
    await kubeConfig.applyToHTTPSOptions(options);
    return new Promise<{ bytes: number; encoding: string; body: Buffer }>((resolve, reject) => {
      const req = https.request(new URL(`${listPath}?${query}`, kubeConfig.getCurrentCluster()!.server), options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ bytes: sum(chunks.map((c) => c.length)), encoding: String(res.headers['content-encoding'] ?? 'identity'), body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  };
  const totals: Record<string, number | string> = { pages: 0, identityBytes: 0, gzipBytes: 0, gzipEncoding: '' };
  let token: string | undefined;
  do {
    const query = new URLSearchParams({ limit: String(LIST_PAGE), ...(token ? { continue: token } : {}) }).toString();
    const plain = await page(query, false);
    const zipped = await page(query, true);
    totals.pages = Number(totals.pages) + 1;
    totals.identityBytes = Number(totals.identityBytes) + plain.bytes;
    totals.gzipBytes = Number(totals.gzipBytes) + zipped.bytes;
    totals.gzipEncoding = zipped.encoding;
    token = (JSON.parse(plain.body.toString('utf8')) as { metadata?: { continue?: string } }).metadata?.continue || undefined;
  } while (token);
  return totals;
}

/** Spawns the detector process and reads its one result line. */
function runCycleProcess(config: CycleProcessConfig, dir: string, track: (child: ChildProcess | undefined) => void): Promise<Record<string, unknown>> {
  const file = path.join(dir, 'cycle-process.json');
  writeFileSync(file, JSON.stringify(config));
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(PROJECT_ROOT, 'node_modules', '.bin', 'tsx'), [SCRIPT, '--cycle-process', file], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-6000)));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      track(undefined);
      const line = stdout.split('\n').find((l) => l.startsWith(RESULT_MARKER));
      if (code === 0 && line) resolve(JSON.parse(line.slice(RESULT_MARKER.length)) as Record<string, unknown>);
      else reject(new Error(`the cycle process exited with ${code ?? signal}:\n${stderr.trim().split('\n').slice(-30).join('\n')}`));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// kubectl diff.

interface KubectlRun {
  ms: number;
  exitCode: number | null;
  requests: { total: number; byVerb: Record<string, number>; discovery: number; objectGets: number; dryRunPatches: number; other: number; byStatus: Record<string, number>; byPath: Record<string, number> };
  throttled: { waits: number; totalMs: number };
  differing: { object: string; apiVersion: string; kind: string; namespace: string; name: string; created: boolean; changedFields: string[] }[];
  stderrTail?: string;
}

/** `apps.v1.Deployment.wl-03.svc-007` -> its parts (kubectl's temp file names). */
function parseDiffName(file: string) {
  const parts = file.split('.');
  const name = parts.pop()!;
  const namespace = parts.pop()!;
  const kind = parts.pop()!;
  const version = parts.pop()!;
  const group = parts.join('.');
  return { apiVersion: group ? `${group}/${version}` : version, kind, namespace, name };
}

/** The objects a `kubectl diff` output says differ, each with the fields its changed lines touch. */
export function parseKubectlDiff(stdout: string): KubectlRun['differing'] {
  const out: KubectlRun['differing'] = [];
  const blocks = stdout.split(/^(?=diff -u -N )/m).filter((b) => b.startsWith('diff -u -N '));
  for (const block of blocks) {
    const header = /^diff -u -N (\S+) (\S+)/.exec(block)!;
    const file = path.basename(header[1]!);
    const lines = block.split('\n');
    const changed = lines.filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
    const created = /^@@ -0,0 /m.test(block);
    const fields = [...new Set(changed.map((l) => /^[-+]\s*(?:- )?([A-Za-z0-9_.\-/]+):/.exec(l)?.[1] ?? l.slice(1).trim()).filter((f) => f !== 'generation'))].sort();
    const o = parseDiffName(file);
    out.push({ object: `${o.kind} ${o.namespace}/${o.name}`, ...o, created, changedFields: created ? [] : fields });
  }
  return out;
}

/** Counts the requests a -v=6 log shows (klog's structured "Response" lines, or the older plain ones). */
export function countKubectlRequests(stderr: string): Pick<KubectlRun, 'requests' | 'throttled'> {
  const byVerb: Record<string, number> = {};
  const byStatus: Record<string, number> = {};
  const byPath: Record<string, number> = {};
  let discovery = 0;
  let objectGets = 0;
  let dryRunPatches = 0;
  let other = 0;
  const throttled = { waits: 0, totalMs: 0 };
  for (const line of stderr.split('\n')) {
    const structured = /"Response" verb="([A-Z]+)" url="([^"]+)" status="(\d{3})/.exec(line);
    const plain = structured ? null : /\] (GET|PATCH|POST|PUT|DELETE) (https?:\/\/\S+) (\d{3})/.exec(line);
    const m = structured ?? plain;
    if (m) {
      const [, verb, url, status] = m as unknown as [string, string, string, string];
      byVerb[verb] = (byVerb[verb] ?? 0) + 1;
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      const p = new URL(url).pathname;
      // `GET /apis/apps/v1/namespaces/*/deployments/* 200`: what each request was for.
      const what = `${verb} ${p.replace(/\/namespaces\/[^/]+/, '/namespaces/*').replace(/(\/namespaces\/\*\/[^/]+)\/[^/]+$/, '$1/*')} ${status}`;
      byPath[what] = (byPath[what] ?? 0) + 1;
      if (verb === 'GET' && (/^\/(api|apis)(\/[^/]+){0,2}$/.test(p) || p.startsWith('/openapi'))) discovery += 1;
      else if (verb === 'GET') objectGets += 1;
      else if (verb === 'PATCH' && /dryRun=All/.test(url)) dryRunPatches += 1;
      else other += 1;
      continue;
    }
    if (/throttling/i.test(line)) {
      throttled.waits += 1;
      const d = /(?:Waited for |delay=")([\d.]+)(ms|s)/.exec(line);
      if (d) throttled.totalMs += Number(d[1]) * (d[2] === 's' ? 1000 : 1);
    }
  }
  return { requests: { total: sum(Object.values(byVerb)), byVerb, discovery, objectGets, dryRunPatches, other, byStatus, byPath }, throttled: { waits: throttled.waits, totalMs: Math.round(throttled.totalMs) } };
}

function kubectlDiff(kubectl: string, kubeconfig: string, manifests: string, cacheDir: string, tmp: string, verbose: boolean, track: (child: ChildProcess | undefined) => void): Promise<KubectlRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(kubectl, ['--kubeconfig', kubeconfig, '--cache-dir', cacheDir, 'diff', '--server-side', '--force-conflicts', '-f', manifests, ...(verbose ? ['-v=6'] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, TMPDIR: tmp, KUBECTL_EXTERNAL_DIFF: '' },
    });
    track(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 10 * 60_000);
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      track(undefined);
      const ms = performance.now() - started;
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      // 0: no differences, 1: differences; anything else is an error.
      const failed = code !== 0 && code !== 1;
      resolve({ ms: round(ms), exitCode: code, ...countKubectlRequests(stderr), differing: parseKubectlDiff(stdout), ...(failed ? { stderrTail: stderr.split('\n').filter((l) => !/round_trippers|"Response"/.test(l)).slice(-20).join('\n') } : {}) });
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The section.

/** What Fleetwarden should report, by type, as `Deployment ns/name`. */
function expectedDrifts(scenario: Scenario): Record<string, string[]> {
  const names = (list: { namespace: string; name: string }[]) => list.map((d) => `Deployment ${key(d.namespace, d.name)}`).sort();
  return { image: names(scenario.image), config: names(scenario.config), missing: names(scenario.missing), unauthorized: names(scenario.unauthorized) };
}

function costOf(steadyMs: number, firstCycle: { dynamodb: { writeUnits: number }; putEventsEntries: number }, queryReadUnits: number) {
  const p = PRICES.items;
  const price = (k: keyof typeof p, quantity: number) => (quantity * p[k].usd) / p[k].per;
  const cycles = ASSUMPTIONS.hoursPerMonth * 60;
  const gbSeconds = cycles * (Math.ceil(steadyMs) / 1000) * (DETECTOR_MEMORY_MB / 1024);
  const lines = {
    lambdaCompute: { quantity: round(gbSeconds), unit: 'GB-seconds (ARM64)', usd: price('lambdaGbSecondsArm64', gbSeconds) },
    lambdaRequests: { quantity: cycles, unit: 'requests', usd: price('lambdaRequests', cycles) },
    openDriftsQuery: { quantity: cycles * queryReadUnits, unit: `read request units (${queryReadUnits} per cycle)`, usd: price('dynamodbReadUnits', cycles * queryReadUnits) },
  };
  const asked = sum(Object.values(lines).map((l) => l.usd));
  // Billed beside it (the cost model's assumptions): the platform's log lines per invocation, an
  // X-Ray trace per invocation, and the WorkloadDrifts series, emitted every cycle while a drift is open.
  const beside = {
    logs: { quantity: round((cycles * ASSUMPTIONS.unmeasured.logBytesPerLambdaInvocation) / 1024 ** 3, 3), unit: 'GB ingested', usd: price('cloudWatchLogsIngestion', (cycles * ASSUMPTIONS.unmeasured.logBytesPerLambdaInvocation) / 1024 ** 3) },
    traces: { quantity: Math.round(cycles * ASSUMPTIONS.xRaySampledShare), unit: 'traces', usd: price('xRayTraces', cycles * ASSUMPTIONS.xRaySampledShare) },
    workloadDriftsMetric: { quantity: 1, unit: 'metric-month (WorkloadDrifts, emitted every cycle)', usd: price('cloudWatchMetrics', 1) },
  };
  const usd = (n: number) => Number(n.toFixed(4));
  return {
    cyclesPerMonth: cycles,
    billedMsPerCycle: Math.ceil(steadyMs),
    memoryMb: DETECTOR_MEMORY_MB,
    lines: Object.fromEntries(Object.entries(lines).map(([k, l]) => [k, { ...l, usd: usd(l.usd) }])),
    usdPerMonth: usd(asked),
    besides: Object.fromEntries(Object.entries(beside).map(([k, l]) => [k, { ...l, usd: usd(l.usd) }])),
    usdPerMonthWithBesides: usd(asked + sum(Object.values(beside).map((l) => l.usd))),
    firstCycleOnce: {
      dynamodbWriteUnits: firstCycle.dynamodb.writeUnits,
      putEventsEntries: firstCycle.putEventsEntries,
      usd: usd(price('dynamodbWriteUnits', firstCycle.dynamodb.writeUnits) + price('eventBridgeCustomEvents', firstCycle.putEventsEntries)),
    },
    prices: `scripts/bench/cost.ts PRICES (${PRICES.region}, ${PRICES.asOf}); ${ASSUMPTIONS.hoursPerMonth} h a month, one cycle a minute`,
  };
}

type CycleResult = {
  ms: number;
  observeMs: number;
  openDriftsQueryMs: number;
  recordMs: number;
  report: { declared: number; inSync: number; dryRuns: number; observed: Record<string, number>; opened: number; resolved: number; requests: number };
  requestsByOperation: Record<string, { calls: number; requests: number; objects: number }>;
  dynamodb: { calls: Record<string, number>; readUnits: number; writeUnits: number };
  putEventsEntries: number;
  transitionsRecorded: number;
  memory: ReturnType<ReturnType<typeof sampleMemory>>;
};

/** A cycle's requests: per kind listed (pages; discovery apart), and the dry runs. */
function requestsOf(cycle: CycleResult) {
  const out: Record<string, number | Record<string, number>> = {};
  let discovery = 0;
  for (const [op, o] of Object.entries(cycle.requestsByOperation)) {
    if (op.startsWith('list ')) {
      const pages = Math.max(1, Math.ceil(o.objects / LIST_PAGE));
      out[op] = pages;
      discovery += o.requests - pages;
    } else out[op] = o.requests;
  }
  if (discovery) out.discovery = discovery;
  return { ...out, total: cycle.report.requests };
}

export async function workloadsBench(options: { scale?: number } = {}): Promise<Record<string, unknown>> {
  const scale = options.scale ?? 1;
  const sectionStarted = performance.now();
  const loadAtStart = loadavg()[0]!;
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bench-workloads-'));
  const clusterDir = path.join(dir, 'cluster');
  let child: ChildProcess | undefined;
  const track = (c: ChildProcess | undefined) => (child = c);
  // Interrupted: the control plane's processes run in their own sessions and would outlive us.
  const onSignal = (signal: NodeJS.Signals) => {
    child?.kill('SIGKILL');
    void clusterDown(clusterDir, { sync: true });
    rmSync(dir, { recursive: true, force: true });
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let ownMoto: { stop(): Promise<void> } | undefined;
  const savedEnv = { ...process.env };
  try {
    if (!process.env.FLEETWARDEN_AWS_ENDPOINT) {
      const { startMoto, motoEnvironment } = await import('../../local/moto');
      const moto = await startMoto();
      ownMoto = moto;
      Object.assign(process.env, motoEnvironment(moto.endpoint));
    }
    const { provision } = await import('../../local/provision');
    const { synthTemplate } = await import('../../local/template');
    const stack = await provision(synthTemplate(), { prefix: 'bench-wl' });

    const shape = shapeOf(scale);
    const scenario = scenarioOf(shape);
    const root = path.join(dir, 'desired-state');
    const files = manifestFiles(shape, scenario, root);
    mkdirSync(path.join(root, CLUSTER), { recursive: true });
    for (const f of files) writeFileSync(f.file, f.text);
    const state = buildDesiredState(files, root);
    const statePath = path.join(dir, 'desired-state.json');
    writeFileSync(statePath, JSON.stringify(state));

    console.log('workloads: starting the local control plane…');
    const up = await clusterUp(clusterDir, { echo: true });
    const kubectl = path.join(await runScript(SCRIPT_SH, ['bin']), 'kubectl');
    // Fleetwarden's workload identity, with the RBAC cdk synth generates from this desired state.
    const identity = await clusterUser(clusterDir, 'fleetwarden-workloads', WORKLOADS_GROUP);
    const rbacFile = path.join(dir, `${CLUSTER}.workload-rbac.yaml`);
    writeFileSync(rbacFile, workloadRbacManifest(CLUSTER, workloadRbac(state.objects, new Set(['kube-system', 'kube-public', 'kube-node-lease']))));

    console.log(`workloads: seeding ${shape.namespaces.length} namespaces, ${state.objects.length} declared objects (${shape.deployments.length} Deployments), then the drift…`);
    const seeding = await seed(up.kubeconfig, files, shape, scenario);
    await applyRbac(up.kubeconfig, rbacFile);
    console.log(`workloads: seeded in ${seeding.seedSeconds} s, drift and noise in ${seeding.driftAndNoiseSeconds} s, controllers settled: ${seeding.controllersSettled}`);

    console.log(`workloads: ${1 + STEADY_CYCLES} drift cycles in a detector process…`);
    const detector = await runCycleProcess(
      { kubeconfig: identity, statePath, findingsTable: stack.ref('StateStoreFindingsTable'), ledgerTable: stack.ref('StateStoreLedgerTable'), bus: stack.ref('StateStoreBus'), cycles: 1 + STEADY_CYCLES },
      dir,
      track,
    );
    const [first, ...steady] = detector.cycles as CycleResult[];
    if (!first || !steady.length) throw new Error('the cycle process reported no cycles');

    console.log(`workloads: kubectl diff --server-side over the same ${state.objects.length} manifests, ${KUBECTL_RUNS} runs…`);
    const cacheDir = path.join(dir, 'kubectl-cache');
    const kubectlTmp = path.join(dir, 'kubectl-tmp');
    mkdirSync(kubectlTmp, { recursive: true });
    const runs: KubectlRun[] = [];
    for (let i = 0; i < KUBECTL_RUNS; i++) runs.push(await kubectlDiff(kubectl, up.kubeconfig, path.join(root, CLUSTER), cacheDir, kubectlTmp, i < KUBECTL_RUNS - 1, track));
    const leftInTmp = readdirSync(kubectlTmp).length;

    // What each found, against the seeding and against each other.
    const expected = expectedDrifts(scenario);
    const open = detector.openDrifts as { type: string; kind: string; namespace: string; name: string; diff: string[]; creator?: string }[];
    const found: Record<string, string[]> = {};
    for (const d of open) (found[d.type] ??= []).push(`${d.kind} ${key(d.namespace, d.name)}`);
    for (const list of Object.values(found)) list.sort();
    const expectedAll = new Set(Object.values(expected).flat());
    const foundAll = new Set(Object.values(found).flat());
    const fleetwardenMatches = Object.keys({ ...expected, ...found }).every((t) => JSON.stringify(expected[t] ?? []) === JSON.stringify(found[t] ?? []));
    if (!fleetwardenMatches) console.error(`workloads: FLEETWARDEN'S DRIFTS DO NOT MATCH THE SEEDING:\n${JSON.stringify({ expected, found }, null, 2)}`);

    const last = runs.at(-1)!;
    const kubectlSet = new Map(last.differing.map((d) => [d.object, d] as const));
    const sameEveryRun = runs.every((r) => JSON.stringify(r.differing.map((d) => d.object).sort()) === JSON.stringify([...kubectlSet.keys()].sort()));
    const declaredDrift = [...expected.image!, ...expected.config!, ...expected.missing!];
    const hpaScaled = new Set(scenario.hpaScaled.map((d) => `Deployment ${key(d.namespace, d.name)}`));
    const sidecars = new Set(scenario.sidecar.map((d) => `Deployment ${key(d.namespace, d.name)}`));
    const cause = (o: string, d?: KubectlRun['differing'][number]) => {
      if (expected.unauthorized!.includes(o)) return 'undeclared workload: kubectl diff reads only the manifests it is given, so an object nobody declared is invisible to it';
      if (d && hpaScaled.has(o) && d.changedFields.every((f) => f === 'replicas')) return 'HPA-scaled replicas only: the dry-run apply puts the declared spec.replicas back (forcing the conflict with kube-controller-manager); Fleetwarden leaves replicas to the HPA that scales the object';
      if (d && sidecars.has(o)) return `sidecar of another field manager: ${d.changedFields.join(', ')}`;
      return d ? `fields: ${d.changedFields.join(', ') || '(created)'}` : 'not in the kubectl diff output';
    };
    const disagreements = [
      ...[...kubectlSet.values()].filter((d) => !foundAll.has(d.object)).map((d) => ({ object: d.object, flaggedBy: 'kubectl diff only', cause: cause(d.object, d) })),
      ...[...foundAll].filter((o) => !kubectlSet.has(o)).map((o) => ({ object: o, flaggedBy: 'Fleetwarden only', cause: cause(o) })),
    ].sort((a, b) => a.flaggedBy.localeCompare(b.flaggedBy) || a.object.localeCompare(b.object));
    const byCause: Record<string, number> = {};
    for (const d of disagreements) byCause[`${d.flaggedBy}: ${d.cause.split(':')[0]}`] = (byCause[`${d.flaggedBy}: ${d.cause.split(':')[0]}`] ?? 0) + 1;
    const kubectlKinds: Record<string, number> = {};
    for (const d of last.differing) {
      const what = d.created ? 'created (absent)' : d.changedFields.join('+');
      kubectlKinds[what] = (kubectlKinds[what] ?? 0) + 1;
    }

    const steadyMs = median(steady.map((c) => c.ms));
    const queryReadUnits = median(steady.map((c) => c.dynamodb.readUnits));
    const git = (...args: string[]) => execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
    const result = {
      scale,
      // What was measured: the commit, and any uncommitted change to the workload drift code.
      code: { commit: git('rev-parse', '--short', 'HEAD'), uncommittedWorkloadChanges: git('status', '--porcelain', 'functions/workloads').split('\n').filter(Boolean) },
      cluster: {
        kubernetes: 'v1.37.1 (scripts/k8s/cluster.sh: etcd, kube-apiserver, kube-controller-manager, kube-scheduler; no node)',
        namespaces: shape.namespaces.length,
        deployments: shape.deployments.length,
        declaredObjects: state.objects.length,
        declaredHpas: scenario.hpaScaled.length,
        controlPlaneStartSeconds: round(up.seconds),
        seedConcurrency: SEED_CONCURRENCY,
        ...seeding,
      },
      scenario: {
        drift: { image: `${DRIFT.image} container images changed (strategic merge patch, field manager kubectl-set)`, config: `${DRIFT.config} env values changed (kubectl-edit)`, missing: `${DRIFT.missing} Deployments deleted`, unauthorized: `${DRIFT.unauthorized} undeclared Deployments applied by helm in watched namespaces` },
        noise: { hpaScaled: `${NOISE.hpaScaled} HPA targets (HPA declared) scaled 1 -> 2 through the scale subresource by kube-controller-manager`, sidecar: `${NOISE.sidecar} Deployments given a log-shipper container by server-side apply of sidecar-injector` },
      },
      fleetwarden: {
        identity: `client certificate in group ${WORKLOADS_GROUP}, RBAC generated from the desired state (workloadRbac)`,
        process: `a ${detector.node as string} process running only the cycle (tsx), moto for DynamoDB and EventBridge`,
        desiredState: { objects: detector.desiredStateObjects, bytes: detector.desiredStateBytes, parseMs: detector.desiredStateParseMs },
        firstCycle: {
          ms: first.ms,
          observeMs: first.observeMs,
          openDriftsQueryMs: first.openDriftsQueryMs,
          recordMs: first.recordMs,
          requests: requestsOf(first),
          requestsByOperation: first.requestsByOperation,
          report: first.report,
          transitionsRecorded: first.transitionsRecorded,
          dynamodb: first.dynamodb,
          putEventsEntries: first.putEventsEntries,
          memory: first.memory,
        },
        cycles: {
          runs: steady.length,
          ms: stats(steady.map((c) => c.ms)),
          observeMs: stats(steady.map((c) => c.observeMs)),
          openDriftsQueryMs: stats(steady.map((c) => c.openDriftsQueryMs)),
          requestsPerCycle: requestsOf(steady[0]!),
          sameRequestsEveryCycle: steady.every((c) => c.report.requests === steady[0]!.report.requests),
          dryRunsPerCycle: steady[0]!.report.dryRuns,
          inSyncPerCycle: steady[0]!.report.inSync,
          observedPerCycle: steady[0]!.report.observed,
          openedOrResolved: sum(steady.map((c) => c.report.opened + c.report.resolved)),
          dynamodbPerCycle: steady[0]!.dynamodb,
          memory: {
            peakRssMb: Math.max(...steady.map((c) => c.memory.peakRssMb)),
            peakHeapUsedMb: Math.max(...steady.map((c) => c.memory.peakHeapUsedMb)),
            peakHeapGrowthMb: Math.max(...steady.map((c) => c.memory.peakHeapGrowthMb)),
            rssAtStartMb: steady[0]!.memory.rssAtStartMb,
            heapUsedAtStartMb: steady[0]!.memory.heapUsedAtStartMb,
          },
        },
        memoryAtLoadMb: detector.memoryAtLoadMb,
        processMaxRssMb: detector.processMaxRssMb,
        listedBytesPerCycle: detector.listedBytes,
        deploymentListOnTheWire: detector.deploymentListOnTheWire,
        driftsFound: Object.fromEntries(Object.entries(found).map(([t, l]) => [t, l.length])),
        matchesSeeding: fleetwardenMatches,
        ...(fleetwardenMatches ? {} : { expected, found }),
        examples: Object.fromEntries(['image', 'config', 'missing', 'unauthorized'].map((t) => [t, open.find((d) => d.type === t) ?? null])),
      },
      kubectlDiff: {
        command: 'kubectl diff --server-side --force-conflicts -f <the 50 manifest files> -v=6 (admin kubeconfig; field manager kubectl, the default under --server-side; --concurrency 1, the default)',
        runs: runs.map((r, i) => ({ ms: r.ms, requestLog: i < runs.length - 1, exitCode: r.exitCode, ...(i < runs.length - 1 ? { requests: r.requests.total, throttled: r.throttled } : {}), differing: r.differing.length, ...(r.stderrTail ? { stderrTail: r.stderrTail } : {}) })),
        firstRunMs: runs[0]!.ms,
        cachedDiscoveryMs: stats(runs.slice(1, -1).map((r) => r.ms)),
        withoutRequestLogMs: last.ms,
        requests: { firstRun: runs[0]!.requests, cachedDiscovery: runs[1]!.requests },
        differing: last.differing.length,
        differingBy: kubectlKinds,
        sameObjectsEveryRun: sameEveryRun,
        tempFilesLeft: leftInTmp,
      },
      agreement: {
        realDeclaredDrifts: declaredDrift.length,
        flaggedByBoth: declaredDrift.filter((o) => foundAll.has(o) && kubectlSet.has(o)).length,
        agreeOnDeclaredDrifts: declaredDrift.every((o) => foundAll.has(o) && kubectlSet.has(o)),
        fleetwardenAgainstSeeding: { expected: expectedAll.size, found: foundAll.size, exact: fleetwardenMatches },
        kubectlFalsePositives: [...kubectlSet.keys()].filter((o) => !expectedAll.has(o)).length,
        kubectlMissed: [...expectedAll].filter((o) => !kubectlSet.has(o)).length,
        // The noise, flagged by whom (0 is right: none of it is drift).
        noiseFlagged: {
          hpaScaled: { fleetwarden: [...hpaScaled].filter((o) => foundAll.has(o)).length, kubectlDiff: [...hpaScaled].filter((o) => kubectlSet.has(o)).length, of: hpaScaled.size },
          sidecar: { fleetwarden: [...sidecars].filter((o) => foundAll.has(o)).length, kubectlDiff: [...sidecars].filter((o) => kubectlSet.has(o)).length, of: sidecars.size },
        },
        disagreementsByCause: byCause,
        disagreements,
      },
      cost: costOf(steadyMs, first, queryReadUnits),
      sectionSeconds: round((performance.now() - sectionStarted) / 1000),
      // The machine's 1-minute load average: the durations are only as quiet as it was.
      loadAverage: { atStart: round(loadAtStart, 2), atEnd: round(loadavg()[0]!, 2) },
      note: 'one local kube-apiserver on loopback (no network latency: an EKS endpoint adds its round trips, about 40 requests a cycle); the cycle runs in its own Node 22 process under tsx (module load not counted); DynamoDB and EventBridge are moto; kubectl diff runs as cluster-admin, Fleetwarden as its RBAC-limited identity',
    };
    return result;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    child?.kill('SIGKILL');
    await clusterDown(clusterDir).catch((error: Error) => console.error(`workloads: clusterDown failed: ${error.message}`));
    rmSync(dir, { recursive: true, force: true });
    if (ownMoto) {
      await ownMoto.stop();
      process.env = savedEnv;
    }
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const at = process.argv.indexOf('--cycle-process');
  if (at !== -1) {
    cycleProcess(process.argv[at + 1]!)
      .then((result) => console.log(`${RESULT_MARKER}${JSON.stringify(result)}`))
      .catch((error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      });
  } else {
    const s = process.argv.indexOf('--scale');
    const scale = s === -1 ? 1 : Number(process.argv[s + 1]);
    if (!(scale > 0 && scale <= 1)) throw new Error('--scale takes a number in (0, 1]');
    workloadsBench({ scale })
      .then((result) => console.log(JSON.stringify(result, null, 2)))
      .catch((error: unknown) => {
        console.error(error);
        process.exitCode = 1;
      });
  }
}
