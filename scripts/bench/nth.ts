/**
 * AWS Node Termination Handler (NTH, queue mode) side by side with Fleetwarden (measures, never
 * asserts): the same Spot interruption event, put on the same SQS queue (Fleetwarden's interruption
 * queue in moto), for the same kind of node (a KWOK node for a moto Spot instance, 30 pods of one
 * Deployment, a spare node for the replacements: scripts/bench/kubernetes.ts's workload), one run
 * each. Reported: event queued -> node cordoned (spec.unschedulable) -> drain complete (no pod left
 * on the node), seen by one observer polling the API server as the admin, and the AWS and
 * Kubernetes API calls each made, counted on the wire.
 *
 * NTH is the upstream binary, unmodified (scripts/bench/nth-build.sh builds it from the Go module
 * proxy), run as its Helm chart runs it (chart defaults, queue mode), with these local stand-ins:
 * - Kubernetes: NTH only builds its client from the in-cluster config (rest.InClusterConfig():
 *   KUBERNETES_SERVICE_HOST/PORT and a token and CA at the fixed path
 *   /var/run/secrets/kubernetes.io/serviceaccount). It runs in a private mount namespace
 *   (unshare) where a tmpfs on /run holds a ServiceAccount token (TokenRequest) and the cluster
 *   CA, as a pod's projected volume would; its ServiceAccount has the chart's ClusterRole.
 * - AWS: AWS_ENDPOINT points its SDK (aws-sdk-go v1) at a loopback proxy to moto with
 *   credentials of the cluster's account 111111111111 (STS AssumeRole, as IRSA would give); the
 *   queue belongs to the stack's account (see nth-proxies.ts for the routing and the long poll).
 * - NODE_NAME is required by NTH's config parser even in queue mode (the chart sets it from the
 *   pod's node); it is not used to find the interrupted node, which NTH looks up by the instance's
 *   PrivateDnsName (DescribeInstances), so the KWOK nodes are named after it.
 *
 * Exported: nthComparison(ctx), for scripts/bench.ts (moto running, the AWS SDK pointed at a
 * CountingProxy in front of it). Standalone (`tsx scripts/bench/nth.ts`) starts moto, that proxy
 * and everything else itself, and prints the JSON. Starts and stops its own control plane.
 */
import '../quiet-runtime';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DescribeInstancesCommand, EC2Client } from '@aws-sdk/client-ec2';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { KubeConfig } from '@kubernetes/client-node';
import { awsClient } from '../../functions/shared/aws';
import { KUBERNETES_GROUP } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { type CountingProxy, startCountingProxy } from '../../local/counting-proxy';
import { motoEnvironment, startMoto } from '../../local/moto';
import { type LocalStack, provision } from '../../local/provision';
import { deliverToQueue, pumpQueue } from '../../local/sqs-source';
import { invokeFunction } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { applyRbac, clusterDown, clusterUp, clusterUser, runScript } from '../k8s/control-plane';
import { testInstance } from '../k8s/instances';
import { Workloads } from '../k8s/workloads';
import { type AwsProxy, type CallRecord, type KubeProxy, startAwsProxy, startKubeProxy } from './nth-proxies';
import { CLUSTER, PODS } from './kubernetes';

const ACCOUNT = '111111111111';
const NTH_SA = { name: 'aws-node-termination-handler', namespace: 'kube-system' };
const MANAGED_TAG = 'aws-node-termination-handler/managed';
const BUILD_SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'bench', 'nth-build.sh');
/** Bounds: every wait below ends. */
const DRAIN_TIMEOUT_MS = 60_000;
const NTH_READY_TIMEOUT_MS = 60_000;
const QUEUE_POLLING = new Set(['ReceiveMessage', 'DeleteMessage', 'ChangeMessageVisibility']);

export interface NthContext {
  /** moto itself (NTH's AWS proxy forwards there) */
  motoEndpoint: string;
  /** the CountingProxy the process's AWS SDK clients (FLEETWARDEN_AWS_ENDPOINT) go through */
  proxy: CountingProxy;
}

const round = (n: number | undefined) => (n === undefined ? null : Math.round(n));
const ratio = (a: number | null, b: number | null) => (a === null || b === null || b === 0 ? null : Number((a / b).toFixed(2)));
const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);
const span = (from: number | null | undefined, to: number | null | undefined) => (from === null || from === undefined || to === null || to === undefined ? null : Math.round(to - from));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs nth-build.sh (waits on its lock, builds if the cache lacks the binary); resolves to the binary's path. */
const buildNth = (args: string[] = []) => runScript(BUILD_SCRIPT, args, { echo: '[nth]' });

/** The Spot interruption warning for an instance, as EventBridge puts it on the queue (test/events shape). */
function interruptionEvent(instanceId: string): Record<string, unknown> {
  const warning = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'test', 'events', 'spot-interruption-warning.json'), 'utf8'));
  return {
    ...warning,
    id: randomUUID(),
    account: ACCOUNT,
    time: new Date().toISOString(),
    resources: [`arn:aws:ec2:us-east-1a:instance/${instanceId}`],
    detail: { ...warning.detail, 'instance-id': instanceId },
  };
}

type Credentials = { accessKeyId: string; secretAccessKey: string; sessionToken: string };

/** The node under test and its 30 pods, plus a spare node for the replacements, as scripts/bench/kubernetes.ts builds them; nodes named after the instances' PrivateDnsName. */
async function workload(k8s: Workloads, credentials: Credentials, label: string): Promise<{ instanceId: string; node: string; namespace: string }> {
  const ec2 = awsClient(EC2Client, { region: 'us-east-1', credentials });
  const dnsName = async (id: string) => (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0]!.Instances![0]!.PrivateDnsName!;
  const tags = { 'eks:cluster-name': CLUSTER, [MANAGED_TAG]: 'true' };
  const pool = Workloads.unique(`bench-${label}`);
  const namespace = await k8s.namespace(`bench-${label}`);
  const instanceId = await testInstance(ACCOUNT, { tags });
  const node = await k8s.node(instanceId, { pool, name: await dnsName(instanceId) });
  await k8s.deployment(namespace, 'web', { replicas: PODS, pool });
  await k8s.waitForReady(namespace, 'web', PODS);
  const spare = await testInstance(ACCOUNT, { spot: false, tags });
  await k8s.node(spare, { pool, name: await dnsName(spare) });
  return { instanceId, node, namespace };
}

/** Polls the API server as the admin (~20 ms) from t0 until the node is cordoned and empty, or the timeout. */
function observe(k8s: Workloads, node: string, t0: number, timeoutMs: number) {
  const seen: { cordoned?: number; drained?: number } = {};
  let observing = true;
  const done = (async () => {
    while (observing && seen.drained === undefined && performance.now() - t0 < timeoutMs) {
      const [n, pods] = await Promise.all([k8s.core.readNode({ name: node }), k8s.podsOn(node)]);
      const at = performance.now() - t0;
      if (seen.cordoned === undefined && n.spec?.unschedulable) seen.cordoned = at;
      if (seen.cordoned !== undefined && pods.length === 0) seen.drained = at;
      await sleep(20);
    }
  })();
  return {
    seen,
    stop: async () => {
      observing = false;
      await done;
    },
    done,
  };
}

/** Where the Kubernetes side of a run spent its time, from the proxy's records (ms since t0). */
function kubeTimeline(calls: CallRecord[], t0: number) {
  const byStart = calls.filter((c) => c.end >= t0).sort((a, b) => a.start - b.start);
  const lastEnd = (list: CallRecord[]) => (list.length ? Math.max(...list.map((c) => c.end)) : undefined);
  const rel = (t: number | undefined) => (t === undefined ? null : Math.round(t - t0));
  const evictions = byStart.filter((c) => c.op === 'create pods/eviction');
  const nodeWrites = byStart.filter((c) => /^(patch|update) nodes$/.test(c.op));
  return {
    firstCallStart: rel(byStart[0]?.start),
    firstNodeWriteStart: rel(nodeWrites[0]?.start),
    firstNodeWriteEnd: rel(nodeWrites[0]?.end),
    lastNodeWriteEnd: rel(lastEnd(nodeWrites)),
    nodeWrites: nodeWrites.length,
    firstEvictionStart: rel(evictions[0]?.start),
    lastEvictionStart: rel(evictions.at(-1)?.start),
    lastEvictionEnd: rel(lastEnd(evictions)),
    evictions: evictions.length,
    // When each eviction left the client: their spacing shows a client-side rate limit, if any.
    evictionStarts: evictions.map((c) => Math.round(c.start - t0)),
    evictionsRefused: evictions.filter((c) => c.status !== 201 && c.status !== 200).length,
    lastCallEnd: rel(lastEnd(byStart)),
  };
}

/** Fleetwarden's pipeline exactly as scripts/bench/kubernetes.ts runs it (ingest function -> bus -> drain queue -> NodeDrain), one run. */
async function fleetwardenRun(stack: LocalStack, k8s: Workloads, ctx: NthContext, kube: KubeProxy, credentials: Credentials) {
  const { instanceId, node } = await workload(k8s, credentials, 'fw');
  const event = interruptionEvent(instanceId);
  ctx.proxy.reset();
  kube.reset();
  const t0 = performance.now();
  const observer = observe(k8s, node, t0, DRAIN_TIMEOUT_MS);
  await deliverToQueue(stack, 'InterruptionsEventsQueue', [event]);
  const ingest = await pumpQueue(stack, 'InterruptionsEventsQueue', 'InterruptionsInterruptionIngest');
  const ingestMs = performance.now() - t0;
  const drain = await pumpQueue(stack, 'KubernetesNodesEventsQueue', 'KubernetesNodesNodeDrain');
  const drainReportedMs = performance.now() - t0;
  await Promise.race([observer.done, sleep(10_000)]);
  await observer.stop();
  const { seen } = observer;
  if (seen.cordoned === undefined || seen.drained === undefined) throw new Error(`Fleetwarden: node ${node} was not cordoned and drained (${JSON.stringify(seen)})`);
  const aws = ctx.proxy.counts();
  const kubeCounts = kube.counts(t0);
  // Harness, not Fleetwarden: the SendMessage that queues the event (EventBridge's delivery).
  const harness = { SendMessage: 1 };
  // Lambda's SQS event source mapping: one receive that returned the batch and one delete per
  // message, per queue; the local pump's extra empty receive before it stops is left out.
  const eventSourceMapping = { ReceiveMessage: ingest.batches + drain.batches, DeleteMessageBatch: (aws.DeleteMessageBatch ?? 0) + (aws.DeleteMessage ?? 0), ChangeMessageVisibility: aws.ChangeMessageVisibility ?? 0 };
  const timeline = kubeTimeline(kube.calls(), t0);
  const functionCalls = sum(aws) - harness.SendMessage - [...QUEUE_POLLING].reduce((n, op) => n + (aws[op] ?? 0), 0);
  return {
    queuedToCordonedMs: round(seen.cordoned),
    queuedToDrainCompleteMs: round(seen.drained),
    awsApiCalls: {
      total: functionCalls + sum(eventSourceMapping),
      byFunctions: functionCalls,
      byEventSourceMapping: eventSourceMapping,
      byOperationOnTheWire: aws,
      note: 'total = the functions\' calls + the event source mapping\'s receives that returned a message and its deletes; the wire counts also hold the harness\'s SendMessage (the event being queued) and the local pump\'s empty receive per queue',
    },
    kubernetesApiCalls: { total: sum(kubeCounts), byOperation: kubeCounts },
    whereTheTimeGoesMs: {
      ingestFunction: round(ingestMs),
      drainFunctionUntilFirstNodeWrite: span(ingestMs, timeline.firstNodeWriteStart),
      nodeWrites: span(timeline.firstNodeWriteStart, timeline.lastNodeWriteEnd),
      untilFirstEviction: span(timeline.lastNodeWriteEnd, timeline.firstEvictionStart),
      evictions: span(timeline.firstEvictionStart, timeline.lastEvictionEnd),
      afterEvictionsUntilFunctionReturned: span(timeline.lastEvictionEnd, drainReportedMs),
    },
    timelineMs: {
      ingestFunctionDone: round(ingestMs),
      drainFunctionDone: round(drainReportedMs),
      ...timeline,
    },
  };
}

interface NthProcess {
  child: ChildProcess;
  log: string;
  exited: Promise<number | null>;
}

/**
 * NTH in a private mount namespace whose /run (/var/run) is a tmpfs holding the ServiceAccount
 * files where rest.InClusterConfig() reads them; nothing outside the namespace sees them.
 */
function startNth(binary: string, saDir: string, env: Record<string, string>, log: string): NthProcess {
  const script = [
    'set -e',
    'run=$(readlink -f /var/run)',
    'mount -t tmpfs -o size=1m,mode=0755 nth-serviceaccount "$run"',
    'sa="$run/secrets/kubernetes.io/serviceaccount"',
    'mkdir -p "$sa"',
    'cp "$NTH_SA_DIR/token" "$NTH_SA_DIR/ca.crt" "$NTH_SA_DIR/namespace" "$sa/"',
    'bin=$NTH_BIN',
    'unset NTH_BIN NTH_SA_DIR',
    'exec "$bin"',
  ].join('\n');
  const userns = process.getuid?.() === 0 ? [] : ['--user', '--map-root-user'];
  const fd = openSync(log, 'a');
  const child = spawn('unshare', [...userns, '--mount', '--propagation', 'private', 'sh', '-c', script], {
    env: { ...env, NTH_BIN: binary, NTH_SA_DIR: saDir },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  process.once('exit', () => child.kill('SIGKILL'));
  return { child, log, exited };
}

async function stopNth(nth: NthProcess): Promise<void> {
  if (nth.child.exitCode !== null || nth.child.signalCode !== null) return;
  nth.child.kill('SIGTERM'); // NTH leaves its interruption loop on SIGTERM
  const timer = setTimeout(() => nth.child.kill('SIGKILL'), 5000);
  await nth.exited;
  clearTimeout(timer);
}

const logTail = (file: string) => readFileSync(file, 'utf8').split('\n').slice(-30).join('\n');

async function nthRun(opts: { binary: string; stack: LocalStack; k8s: Workloads; files: string; aws: AwsProxy; kube: KubeProxy; credentials: Credentials; token: string; ca: string }) {
  const { binary, stack, k8s, files, aws, kube, credentials } = opts;
  const { instanceId, node } = await workload(k8s, credentials, 'nth');
  const saDir = mkdtempSync(path.join(files, 'serviceaccount-'));
  writeFileSync(path.join(saDir, 'token'), opts.token, { mode: 0o600 });
  writeFileSync(path.join(saDir, 'ca.crt'), opts.ca);
  writeFileSync(path.join(saDir, 'namespace'), NTH_SA.namespace);
  // The chart's defaults (config/helm/aws-node-termination-handler/values.yaml at this version)
  // in queue mode, metrics, probes, webhook and Kubernetes events off.
  const config: Record<string, string> = {
    ENABLE_SQS_TERMINATION_DRAINING: 'true',
    QUEUE_URL: stack.ref('InterruptionsEventsQueue'),
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT: aws.endpoint,
    NODE_NAME: 'nth-bench-host',
    POD_NAME: 'aws-node-termination-handler-bench',
    NAMESPACE: NTH_SA.namespace,
    KUBERNETES_SERVICE_HOST: '127.0.0.1',
    KUBERNETES_SERVICE_PORT: String(kube.port),
    CHECK_TAG_BEFORE_DRAINING: 'true',
    MANAGED_TAG,
    USE_PROVIDER_ID: 'false',
    DELETE_SQS_MSG_IF_NODE_NOT_FOUND: 'false',
    DRY_RUN: 'false',
    CORDON_ONLY: 'false',
    TAINT_NODE: 'false',
    EXCLUDE_FROM_LOAD_BALANCERS: 'false',
    DELETE_LOCAL_DATA: 'true',
    IGNORE_DAEMON_SETS: 'true',
    POD_TERMINATION_GRACE_PERIOD: '-1',
    NODE_TERMINATION_GRACE_PERIOD: '120',
    WORKERS: '10',
    SQS_MSG_VISIBILITY_TIMEOUT_SEC: '20',
    ENABLE_PROMETHEUS_SERVER: 'false',
    ENABLE_PROBES_SERVER: 'false',
    EMIT_KUBERNETES_EVENTS: 'false',
    LOG_LEVEL: 'info',
    JSON_LOGGING: 'false',
  };
  const env: Record<string, string> = {
    ...config,
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: saDir,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_SESSION_TOKEN: credentials.sessionToken,
    AWS_CONFIG_FILE: '/dev/null',
    AWS_SHARED_CREDENTIALS_FILE: '/dev/null',
    AWS_EC2_METADATA_DISABLED: 'true',
  };
  const log = path.join(files, 'nth.log');
  const nth = startNth(binary, saDir, env, log);
  try {
    const readyBy = performance.now() + NTH_READY_TIMEOUT_MS;
    while (aws.pendingLongPolls() === 0) {
      if (nth.child.exitCode !== null) throw new Error(`NTH exited with ${nth.child.exitCode} before polling the queue:\n${logTail(log)}`);
      if (performance.now() > readyBy) throw new Error(`NTH did not poll the queue within ${NTH_READY_TIMEOUT_MS} ms:\n${logTail(log)}`);
      await sleep(50);
    }
    const startupCalls = { aws: aws.counts(), kubernetes: kube.counts() };
    aws.reset();
    kube.reset();
    const event = interruptionEvent(instanceId);
    const t0 = performance.now();
    const observer = observe(k8s, node, t0, DRAIN_TIMEOUT_MS);
    await deliverToQueue(stack, 'InterruptionsEventsQueue', [event]);
    aws.kick(); // SQS answers a pending long poll as soon as the message is there
    await observer.done;
    const { seen } = observer;
    if (seen.cordoned === undefined || seen.drained === undefined) throw new Error(`NTH: node ${node} was not cordoned and drained within ${DRAIN_TIMEOUT_MS} ms (${JSON.stringify(seen)}):\n${logTail(log)}`);
    // NTH deletes the message once its drain returns (PostDrainTask); that ends its work.
    const deletedBy = performance.now() + 30_000;
    while (!aws.calls().some((c) => c.op === 'DeleteMessage') && performance.now() < deletedBy && nth.child.exitCode === null) await sleep(50);
    const awsCalls = aws.calls().filter((c) => c.end >= t0);
    const received = awsCalls.find((c) => c.op === 'ReceiveMessage' && (c.messages ?? 0) > 0);
    const described = awsCalls.find((c) => c.op === 'DescribeInstances');
    const deleted = awsCalls.find((c) => c.op === 'DeleteMessage');
    const awsCounts = aws.counts(t0);
    const kubeCounts = kube.counts(t0);
    const timeline = kubeTimeline(kube.calls(), t0);
    const describedEnd = described ? described.end - t0 : undefined;
    return {
      queuedToCordonedMs: round(seen.cordoned),
      queuedToDrainCompleteMs: round(seen.drained),
      queuedToMessageDeletedMs: round(deleted && deleted.end - t0),
      awsApiCalls: {
        total: sum(awsCounts),
        byOperation: awsCounts,
        idleQueuePolling: 'one ReceiveMessage per 20 s long poll (3 a minute) while the queue is empty, on top',
        note: 'from the event queued until NTH deleted the message: the long poll that returned the message, DescribeInstances for the node name and tags, DeleteMessage',
      },
      kubernetesApiCalls: { total: sum(kubeCounts), byOperation: kubeCounts },
      whereTheTimeGoesMs: {
        queueUntilMessageReceived: round(received && received.end - t0),
        describeInstances: span(received && received.end - t0, describedEnd),
        // NTH's main loop takes events from its store on a 1 s ticker (0-1 s, depending on phase).
        waitForInterruptionLoopTick: span(describedEnd, timeline.firstCallStart),
        nodeLookupAndCordon: span(timeline.firstCallStart, timeline.lastNodeWriteEnd),
        untilFirstEviction: span(timeline.lastNodeWriteEnd, timeline.firstEvictionStart),
        evictions: span(timeline.firstEvictionStart, timeline.lastEvictionEnd),
        afterEvictionsUntilMessageDeleted: span(timeline.lastEvictionEnd, deleted && deleted.end - t0),
      },
      startupCalls,
      timelineMs: {
        messageReceived: round(received && received.end - t0),
        describeInstancesDone: round(describedEnd),
        ...timeline,
        messageDeleted: round(deleted && deleted.end - t0),
      },
      config,
    };
  } catch (error) {
    if (error instanceof Error && !error.message.includes(log)) error.message += `\n(NTH log: ${log})`;
    throw error;
  } finally {
    await stopNth(nth);
  }
}

/** NTH's identity, as its chart creates it: a ServiceAccount bound to the chart's ClusterRole. */
function nthRbacManifest(): string {
  return `apiVersion: v1
kind: ServiceAccount
metadata: {name: ${NTH_SA.name}, namespace: ${NTH_SA.namespace}}
---
# config/helm/aws-node-termination-handler/templates/clusterrole.yaml (emitKubernetesEvents false)
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: ${NTH_SA.name}}
rules:
  - {apiGroups: [""], resources: [nodes], verbs: [get, list, patch, update]}
  - {apiGroups: [""], resources: [pods], verbs: [list, get]}
  - {apiGroups: [""], resources: [pods/eviction], verbs: [create]}
  - {apiGroups: [extensions], resources: [daemonsets], verbs: [get]}
  - {apiGroups: [apps], resources: [daemonsets], verbs: [get]}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: ${NTH_SA.name}}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: ${NTH_SA.name}}
subjects:
  - {kind: ServiceAccount, name: ${NTH_SA.name}, namespace: ${NTH_SA.namespace}}
`;
}

export async function nthComparison(ctx: NthContext): Promise<Record<string, unknown>> {
  const [binary, version] = await Promise.all([buildNth(), buildNth(['version'])]);
  const dir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bench-nth-'));
  const up = await clusterUp(dir, { echo: true });
  // NTH's token, CA copy and log: outside the cluster's dir (`cluster.sh down` removes that), kept if the run fails.
  const files = mkdtempSync(path.join(tmpdir(), 'fleetwarden-bench-nth-files-'));
  let ok = false;
  const saved = process.env.FLEETWARDEN_KUBECONFIG;
  const k8s = new Workloads(up.kubeconfig);
  const stops: (() => Promise<void>)[] = [];
  try {
    const pki = (name: string) => readFileSync(path.join(dir, 'pki', name), 'utf8');
    const tls = { upstream: up.server, ca: pki('ca.crt'), serverCert: pki('apiserver.crt'), serverKey: pki('apiserver.key') };

    // Fleetwarden: its own identity (client certificate in its group, its manifest's RBAC), reached through a counting proxy.
    const fwKubeconfig = await clusterUser(dir, 'fleetwarden', KUBERNETES_GROUP);
    await applyRbac(up.kubeconfig, path.join(PROJECT_ROOT, 'manifests', 'fleetwarden-rbac.yaml'));
    const fw = new KubeConfig();
    fw.loadFromFile(fwKubeconfig);
    const fwUser = fw.getCurrentUser()!;
    const fwKube = await startKubeProxy({ ...tls, clientCert: Buffer.from(fwUser.certData!, 'base64').toString(), clientKey: Buffer.from(fwUser.keyData!, 'base64').toString() });
    stops.push(() => fwKube.stop());
    const proxied = new KubeConfig();
    proxied.loadFromOptions({ clusters: fw.clusters.map((c) => ({ ...c, server: fwKube.server })), users: fw.users, contexts: fw.contexts, currentContext: fw.currentContext });
    const proxiedKubeconfig = path.join(dir, 'fleetwarden-counted.kubeconfig');
    writeFileSync(proxiedKubeconfig, proxied.exportConfig(), { mode: 0o600 });
    process.env.FLEETWARDEN_KUBECONFIG = proxiedKubeconfig;

    // NTH: a ServiceAccount token (TokenRequest, 1 h), reached through its own counting proxy.
    const rbac = path.join(dir, 'nth-rbac.yaml');
    writeFileSync(rbac, nthRbacManifest());
    await applyRbac(up.kubeconfig, rbac);
    const token = (await k8s.core.createNamespacedServiceAccountToken({ ...NTH_SA, body: { spec: { expirationSeconds: 3600, audiences: [] } } })).status?.token;
    if (!token) throw new Error(`no token for ServiceAccount ${NTH_SA.namespace}/${NTH_SA.name}`);
    const nthKube = await startKubeProxy(tls);
    stops.push(() => nthKube.stop());
    const nthAws = await startAwsProxy(ctx.motoEndpoint);
    stops.push(() => nthAws.stop());
    const assumed = await awsClient(STSClient).send(
      new AssumeRoleCommand({ RoleArn: `arn:aws:iam::${ACCOUNT}:role/aws-node-termination-handler`, RoleSessionName: 'nth-bench', DurationSeconds: 3600 }),
    );
    const credentials = { accessKeyId: assumed.Credentials!.AccessKeyId!, secretAccessKey: assumed.Credentials!.SecretAccessKey!, sessionToken: assumed.Credentials!.SessionToken! };

    const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
    const stack = await provision(synthTemplate({ ...base, dryRun: false, kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], drainTimeoutSeconds: 90 } }), { prefix: 'bench-nth' });
    // Warm containers, as NTH is a running process: load both handler modules (and wire them
    // with the counted kubeconfig) by invoking each once with an empty batch.
    for (const prefix of ['InterruptionsInterruptionIngest', 'KubernetesNodesNodeDrain']) {
      const fn = [...stack.functions.values()].find((f) => f.logicalId.startsWith(prefix))!;
      await invokeFunction(stack, fn, { Records: [] }).catch(() => undefined);
    }

    const fleetwarden = await fleetwardenRun(stack, k8s, ctx, fwKube, credentials);
    const nth = await nthRun({ binary, stack, k8s, files, aws: nthAws, kube: nthKube, credentials, token, ca: tls.ca });

    ok = true;
    return {
      nthVersion: version,
      nthBinary: binary,
      podsPerNode: PODS,
      runs: 1,
      controlPlaneStartSeconds: Number(up.seconds.toFixed(1)),
      nth,
      fleetwarden,
      ratios: {
        note: 'NTH / Fleetwarden',
        queuedToCordoned: ratio(nth.queuedToCordonedMs, fleetwarden.queuedToCordonedMs),
        queuedToDrainComplete: ratio(nth.queuedToDrainCompleteMs, fleetwarden.queuedToDrainCompleteMs),
        awsApiCalls: ratio(nth.awsApiCalls.total, fleetwarden.awsApiCalls.total),
        kubernetesApiCalls: ratio(nth.kubernetesApiCalls.total, fleetwarden.kubernetesApiCalls.total),
      },
      notes: [
        'one run each, Fleetwarden first, then NTH; each on a fresh node of the same shape (Spot m5.large in us-east-1a of account 111111111111 tagged eks:cluster-name and aws-node-termination-handler/managed, KWOK node named after its PrivateDnsName with providerID aws:///us-east-1a/<id>, 30 pods of one Deployment, a spare node), the same event shape on the same queue (the stack\'s interruption queue in moto); no PodDisruptionBudget, KWOK deletes evicted pods at once',
        'times: from just before the SendMessage that queues the event, seen by an independent observer polling the node and its pods as the admin every ~20 ms (the same observer as scripts/bench/kubernetes.ts)',
        'Fleetwarden: its real functions in this process, warm (each invoked once with an empty batch before), Lambda\'s SQS event source mapping played by the local pump with no polling delay (real mapping: a long poll that returns as a message lands)',
        'NTH: the upstream binary, a separate process, warm (its long poll already pending when the event is queued); Helm chart defaults, queue mode; its long poll answered by the proxy within ms of the SendMessage (kick) or within 250 ms, as SQS answers one at once',
        'NTH at this version builds its Kubernetes client with client-go\'s default client-side rate limit (rest.InClusterConfig(), no QPS/Burst set: 5 QPS, burst 10): evictions after the 10th leave ~200 ms apart (timelineMs.evictionStarts), and kubectl drain checks each pod\'s deletion every 1 s before NTH deletes the message; its main loop takes events from its store on a 1 s ticker (0-1 s wait, by phase)',
        'Fleetwarden\'s ingest function (ledger, pool state, bus) makes its DynamoDB and EventBridge calls to moto, which serves one request at a time and copies table state per transaction: its duration is emulator-bound',
        'API calls: counted on the wire by loopback proxies (AWS: in front of moto; Kubernetes: one HTTPS proxy per identity in front of kube-apiserver), from the event queued until each tool is done (Fleetwarden: both functions returned; NTH: its DeleteMessage); the observer\'s own calls are not counted',
      ],
    };
  } finally {
    if (saved === undefined) delete process.env.FLEETWARDEN_KUBECONFIG;
    else process.env.FLEETWARDEN_KUBECONFIG = saved;
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await k8s.cleanup().catch(() => undefined);
    await clusterDown(dir);
    if (ok) rmSync(files, { recursive: true, force: true });
    else console.error(`[nth] kept NTH's files (log, token) for a look: ${files}`);
  }
}

async function main() {
  const moto = await startMoto();
  const proxy = await startCountingProxy(moto.endpoint);
  Object.assign(process.env, motoEnvironment(proxy.endpoint));
  try {
    console.log(JSON.stringify(await nthComparison({ motoEndpoint: moto.endpoint, proxy }), null, 2));
  } finally {
    await proxy.stop();
    await moto.stop();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
