import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { AdmissionregistrationV1Api, KubernetesObjectApi, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { observeCluster } from '../../functions/workloads/cycle';
import { desiredState, validateDesiredState } from '../../functions/workloads/desired-state';
import { KubernetesWorkloads } from '../../functions/workloads/kubernetes';
import { WorkloadDriftPolicySchema } from '../../functions/workloads/policy';
import { Workloads } from '../../scripts/k8s/workloads';

/**
 * A real mutating admission webhook, served by this test over HTTPS and called by the run's
 * kube-apiserver, rewrites every image of the Deployments in one namespace to a registry mirror
 * (`nginx:1.27.2` -> `mirror.local/library/nginx:1.27.2`) and annotates them: a declared field
 * changed by someone else on every write, which is what Argo CD users see reported as OutOfSync.
 * The workload drift comparison questions the object (its declared image differs from the live
 * one), and the server-side-apply dry run settles it: the webhook runs in dry runs too, so the
 * declared manifest would be stored exactly as it is. A real edit is still drift.
 */
const CLUSTER = 'prod-eks';
const MIRROR = 'mirror.local/library/';
const ns = `mirror-${randomBytes(3).toString('hex')}`;
const webhookName = `${ns}.mirror.fleetwarden.test`;

let k8s: Workloads;
let server: https.Server;
let certDir: string;
const admissions: { dryRun: boolean; operation: string }[] = [];

/** The webhook: a JSON patch that prefixes every container image with the mirror, and an annotation. */
function review(body: { request: { uid: string; dryRun?: boolean; operation: string; object: { metadata?: { annotations?: Record<string, string> }; spec?: { template?: { spec?: { containers?: { image?: string }[] } } } } } }) {
  const { request } = body;
  admissions.push({ dryRun: request.dryRun === true, operation: request.operation });
  const patch: unknown[] = [];
  (request.object.spec?.template?.spec?.containers ?? []).forEach((c, i) => {
    if (c.image && !c.image.startsWith(MIRROR)) patch.push({ op: 'replace', path: `/spec/template/spec/containers/${i}/image`, value: `${MIRROR}${c.image}` });
  });
  if (!request.object.metadata?.annotations) patch.push({ op: 'add', path: '/metadata/annotations', value: {} });
  patch.push({ op: 'add', path: '/metadata/annotations/mirror.local~1rewritten', value: 'true' });
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: request.uid, allowed: true, patchType: 'JSONPatch', patch: Buffer.from(JSON.stringify(patch)).toString('base64') } };
}

const declaredManifest = (image: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'storefront', namespace: ns, labels: { app: 'storefront' } },
  spec: { replicas: 1, selector: { matchLabels: { app: 'storefront' } }, template: { metadata: { labels: { app: 'storefront' } }, spec: { containers: [{ name: 'storefront', image }] } } },
});

const state = () => {
  const { objects, problems } = validateDesiredState([{ cluster: CLUSTER, file: `manifests/clusters/${CLUSTER}/shop.yaml`, text: stringify(declaredManifest('nginx:1.27.2')) }], [CLUSTER], 'manifests/clusters');
  expect(problems).toEqual([]);
  return desiredState({ path: 'manifests/clusters', clusters: [CLUSTER], objects, source: { provenance: 'unknown', reason: 'built in the test' }, lastChanges: new Map() });
};
const observe = () => observeCluster(CLUSTER, state(), new KubernetesWorkloads(k8s.kubeConfig), WorkloadDriftPolicySchema.parse({}));

beforeAll(async () => {
  k8s = new Workloads(inject('kubeconfig'));
  certDir = mkdtempSync(path.join(tmpdir(), 'fleetwarden-webhook-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', path.join(certDir, 'key.pem'), '-out', path.join(certDir, 'cert.pem')], { stdio: 'ignore' });
  const cert = readFileSync(path.join(certDir, 'cert.pem'));
  server = https.createServer({ key: readFileSync(path.join(certDir, 'key.pem')), cert }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(review(JSON.parse(Buffer.concat(chunks).toString('utf8')))));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  await k8s.core.createNamespace({ body: { metadata: { name: ns, labels: { 'fleetwarden.io/test-webhook': ns } } } });
  await k8s.kubeConfig.makeApiClient(AdmissionregistrationV1Api).createMutatingWebhookConfiguration({
    body: {
      metadata: { name: webhookName },
      webhooks: [
        {
          name: webhookName,
          clientConfig: { url: `https://127.0.0.1:${port}/mutate`, caBundle: cert.toString('base64') },
          rules: [{ apiGroups: ['apps'], apiVersions: ['v1'], operations: ['CREATE', 'UPDATE'], resources: ['deployments'] }],
          namespaceSelector: { matchLabels: { 'fleetwarden.io/test-webhook': ns } },
          // No side effects: the API server calls it in dry runs too, as it would a real sidecar or registry injector.
          sideEffects: 'None',
          admissionReviewVersions: ['v1'],
          failurePolicy: 'Fail',
          timeoutSeconds: 5,
        },
      ],
    },
  });
  // What the cluster's deployer applies, as declared; the webhook rewrites it on the way in.
  const admin = KubernetesObjectApi.makeApiClient(k8s.kubeConfig);
  for (let attempt = 0; ; attempt++) {
    try {
      await admin.patch(declaredManifest('nginx:1.27.2') as never, undefined, undefined, 'argocd-controller', true, PatchStrategy.ServerSideApply);
      break;
    } catch (error) {
      // A new webhook configuration takes a moment to reach the API server's admission chain.
      if (attempt > 20) throw error;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
});

afterAll(async () => {
  await k8s.kubeConfig.makeApiClient(AdmissionregistrationV1Api).deleteMutatingWebhookConfiguration({ name: webhookName }).catch(() => undefined);
  await k8s.core.deleteNamespace({ name: ns }).catch(() => undefined);
  await new Promise((resolve) => server?.close(resolve));
  rmSync(certDir, { recursive: true, force: true });
});

describe('workload drift beside a real mutating admission webhook', () => {
  it('reports no drift when a webhook rewrites a declared image on every write: the dry run goes through the webhook too', async () => {
    // Prepare
    const live = await k8s.apps.readNamespacedDeployment({ namespace: ns, name: 'storefront' });
    expect(live.spec?.template.spec?.containers[0]?.image).toBe(`${MIRROR}nginx:1.27.2`);
    const before = admissions.length;
    // Act
    const seen = await observe();
    // Assess: questioned by the comparison, settled by one dry run that the webhook mutated.
    expect(seen.observations).toEqual([]);
    expect(seen).toMatchObject({ declared: 1, inSync: 1, dryRuns: 1 });
    expect(admissions.slice(before)).toEqual([{ dryRun: true, operation: 'UPDATE' }]);
  });

  it('still reports a real edit of that image, with the declared value and what the cluster runs', async () => {
    // Prepare: a person sets another image; the webhook rewrites it to the mirror too.
    await k8s.apps.patchNamespacedDeployment({ namespace: ns, name: 'storefront', body: { spec: { template: { spec: { containers: [{ name: 'storefront', image: 'nginx:1.99' }] } } } } }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
    // Act
    const seen = await observe();
    // Assess
    expect(seen.observations.map((o) => [o.type, o.diff])).toEqual([['image', [`spec.template.spec.containers[name=storefront].image: nginx:1.27.2 -> ${MIRROR}nginx:1.99`]]]);
  });
});
