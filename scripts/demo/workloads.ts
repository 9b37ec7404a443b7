import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { DynamoLedger } from '../../functions/ledger/store';
import { documentClient } from '../../functions/shared/aws';
import { runBloodlineCommand } from '../../functions/workloads/cli';
import type { ClusterDriftReport } from '../../functions/workloads/cycle';
import { FILE_ASSETS_METADATA_KEY } from '../../lib/constructs/workloads';
import { WORKLOADS_GROUP } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { runStartedExecutions } from '../../local/executions';
import { publishOutputs } from '../../local/outputs';
import { listenToBus } from '../../local/listen';
import { provision } from '../../local/provision';
import { invokeFunction } from '../../local/stepfunctions';
import { synthTemplate } from '../../local/template';
import { applyRbac, clusterUser } from '../k8s/control-plane';
import type { DemoContext } from './timeline';
import { commitAll } from '../../local/git';
import { verifyOwnLedger, withControlPlane } from './control-plane';

const CLUSTER = 'prod-eks';
const NS = 'shop';

const deployment = (name: string, image: string, purpose: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, namespace: NS, labels: { app: name }, annotations: { 'fleetwarden.io/purpose': purpose } },
  spec: {
    replicas: 2,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image, ports: [{ containerPort: 8080 }], resources: { requests: { cpu: '0.25', memory: '128Mi' } } }] } },
  },
});
const hpa = (target: string) => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name: target, namespace: NS },
  spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: target }, minReplicas: 2, maxReplicas: 10, metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }] },
});

/**
 * Workloads: desired state in git, drift found within one cycle and rolled back by the
 * WorkloadRollback workflow, an undeclared Deployment alerted and removed after its (shortened)
 * grace, an HPA scaling a declared Deployment and nothing reported, and the bloodline. Against a
 * real control plane started for this chapter and a stack deployed with a desired-state folder.
 */
export async function workloadSteps({ timeline }: DemoContext): Promise<void> {
  timeline.section('Workloads: desired state in git, drift, rollback, bloodline');
  await withControlPlane(timeline, 'workloads', '', async ({ dir, kubeconfig, k8s }) => {
    const admin = KubernetesObjectApi.makeApiClient(k8s.kubeConfig);
    await k8s.core.createNamespace({ body: { metadata: { name: NS } } });
    await k8s.node(`i-0${randomBytes(8).toString('hex')}`.slice(0, 19), { pool: 'general' });

    // The repository: manifests/clusters/prod-eks/shop.yaml, committed by Ada.
    const repo = mkdtempSync(path.join(tmpdir(), 'fleetwarden-demo-repo-'));
    const manifests = path.join(repo, 'manifests', 'clusters');
    mkdirSync(path.join(manifests, CLUSTER), { recursive: true });
    const declared = [deployment('storefront', 'nginx:1.27.2', "the shop's web tier"), deployment('checkout', 'nginx:1.27.2', 'takes the payments'), hpa('checkout')];
    writeFileSync(path.join(manifests, CLUSTER, 'shop.yaml'), declared.map((o) => stringify(o)).join('---\n'));
    const commit = commitAll(repo, 'shop: storefront and checkout');
    timeline.step('git', `manifests/clusters/${CLUSTER}/shop.yaml: Deployments storefront and checkout, an HPA on checkout; commit ${commit.slice(0, 12)} by Ada Lovelace`);

    // What the cluster's deployer (Argo CD, kubectl) applied.
    for (const object of declared) await admin.patch(object as never, undefined, undefined, 'argocd-controller', true, PatchStrategy.ServerSideApply);
    await k8s.waitForReady(NS, 'storefront', 2);
    timeline.step('argocd (stand-in)', `applied the three objects with server-side apply; storefront and checkout run 2/2`);

    const base = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')).context.fleetwarden;
    const template = synthTemplate({
      ...base,
      dryRun: false,
      kubernetes: { clusters: [{ name: CLUSTER, region: 'us-east-1' }], desiredState: { path: manifests } },
      policies: {
        drift: {
          workloads: {
            rules: [
              { match: { namespaces: [NS], types: ['unauthorized'] }, action: 'rollback', graceMinutes: 0.1 },
              { match: { namespaces: [NS], kinds: ['Deployment'] }, action: 'rollback' },
            ],
            rolloutTimeoutSeconds: 60,
          },
        },
      },
    });
    const stack = await provision(template, { prefix: 'demo-workloads' });
    timeline.step('cdk synth + deploy', `desired state published with commit ${commit.slice(0, 12)}; WorkloadDrift every minute; rules: ${NS} Deployments roll back, undeclared ones are removed after 6 s (demo grace)`);
    const [asset] = template.Metadata![FILE_ASSETS_METADATA_KEY] as { path: string }[];
    const rbac = readdirSync(path.dirname(asset!.path)).find((f) => f.endsWith(`.${CLUSTER}.workload-rbac.yaml`))!;
    await applyRbac(kubeconfig, path.join(path.dirname(asset!.path), rbac));
    process.env.FLEETWARDEN_KUBECONFIG = await clusterUser(dir, 'fleetwarden-workloads', WORKLOADS_GROUP);
    timeline.step('rbac', `${rbac.replace(/^.*?\./, '')} applied: read the watched kinds, write only in ${NS}, no secrets; Fleetwarden acts as group ${WORKLOADS_GROUP}`);

    const detector = [...stack.functions.values()].find((f) => f.entry === 'functions/workloads/detect/handler.ts')!;
    const published = await listenToBus(stack, ['fleetwarden.workloads'], 'demo-workloads');
    const cycle = async () => ((await invokeFunction(stack, detector, { id: randomBytes(8).toString('hex'), source: 'aws.events', 'detail-type': 'Scheduled Event', time: new Date().toISOString(), detail: {} })) as { clusters: ClusterDriftReport[] }).clusters[0]!;
    const say = (r: ClusterDriftReport) =>
      `${r.declared} declared, ${r.inSync} in sync, drift ${JSON.stringify(r.observed).replace(/"/g, '')}, ${r.opened} opened, ${r.resolved} resolved, ${r.rollbacksStarted.length} rollback(s) started; ${r.requests} API requests (${r.dryRuns} dry run${r.dryRuns === 1 ? '' : 's'})`;
    const rollbacks = async () => {
      for (const run of await runStartedExecutions(stack, 'WorkloadsStateMachine', { waitMs: 1_000 })) {
        const settled = run.result.events.filter((e) => e.state === 'Check whether the rollout settled' && e.type.endsWith('Entered')).length;
        (run.result.status === 'SUCCEEDED' ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(`WorkloadRollback ${run.name}: ${run.result.status} after ${settled} rollout check(s), ${run.result.transitions} state transitions`);
      }
    };

    timeline.step('workload drift', `cycle: ${say(await cycle())}`);

    await k8s.apps.patchNamespacedDeploymentScale({ namespace: NS, name: 'checkout', body: { spec: { replicas: 6 } } }, setHeaderOptions('Content-Type', PatchStrategy.MergePatch));
    timeline.step('hpa (stand-in)', 'scales checkout from 2 to 6 replicas');
    timeline.step('workload drift', `cycle: ${say(await cycle())}`);
    timeline.ok('nothing reported: the HPA owns checkout\'s replicas');

    await k8s.apps.patchNamespacedDeployment({ namespace: NS, name: 'storefront', body: { spec: { template: { spec: { containers: [{ name: 'storefront', image: 'nginx:1.99-hotfix' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    timeline.step('a person (kubectl edit)', 'storefront image nginx:1.27.2 -> nginx:1.99-hotfix');
    timeline.step('workload drift', `cycle: ${say(await cycle())}`);
    await rollbacks();
    const image = (await k8s.apps.readNamespacedDeployment({ namespace: NS, name: 'storefront' })).spec?.template.spec?.containers[0]?.image;
    timeline.step('kubernetes', `storefront runs ${image} again`);
    timeline.step('workload drift', `cycle: ${say(await cycle())}`);

    await admin.patch({ ...deployment('crypto-miner', 'xmrig/xmrig:latest', 'none'), spec: { ...deployment('crypto-miner', 'x', 'x').spec, replicas: 1, template: { metadata: { labels: { app: 'crypto-miner' } }, spec: { containers: [{ name: 'miner', image: 'xmrig/xmrig:latest' }] } } } } as never, undefined, undefined, 'kubectl', true, PatchStrategy.ServerSideApply);
    timeline.step('someone (kubectl apply)', `an undeclared Deployment crypto-miner in ${NS}`);
    timeline.step('workload drift', `cycle: ${say(await cycle())}`);
    await new Promise((resolve) => setTimeout(resolve, 6_500));
    timeline.step('workload drift', `cycle after the grace: ${say(await cycle())}`);
    await rollbacks();
    timeline.step('workload drift', `cycle: ${say(await cycle())}`);

    await k8s.core.createNamespace({ body: { metadata: { name: 'tools' } } });
    await admin.patch({ ...deployment('debug-shell', 'busybox:1.36', 'none'), metadata: { name: 'debug-shell', namespace: 'tools', labels: { app: 'debug-shell' } } } as never, undefined, undefined, 'kubectl-run', true, PatchStrategy.ServerSideApply);
    timeline.step('someone (kubectl run)', 'a Deployment debug-shell in namespace tools, which nothing declares (not watched: drift leaves it alone)');
    // `cdk deploy` leaves the outputs the CLI reads: a stand-in CloudFormation stack carries them.
    await publishOutputs(stack, 'FleetwardenWorkloadsDemo');
    timeline.step('fleetwarden bloodline', '--stack FleetwardenWorkloadsDemo --cluster prod-eks');
    const bloodline = await runBloodlineCommand(['--stack', 'FleetwardenWorkloadsDemo', '--cluster', CLUSTER]);
    for (const line of bloodline.text.split('\n')) timeline.detail(line);

    for (const event of await published()) {
      const d = event.detail as Record<string, unknown>;
      timeline.step('fleetwarden bus', `${event['detail-type']} ${d.kind} ${d.namespace}/${d.name} (${d.driftType})${Array.isArray(d.diff) && d.diff.length ? `: ${d.diff.join('; ')}` : d.creator ? `: ${d.creator}` : ''}`);
    }
    const ledger = new DynamoLedger(documentClient(), { tableName: stack.ref('StateStoreLedgerTable') });
    await verifyOwnLedger(ledger, timeline, (entry) => timeline.step('ledger', `#${entry.seq} ${entry.action} ${String(entry.subject).replace(/^workload-drift#[^#]+#/, '')}`));
  });
}
