import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Difference, atDeclaredFields, comparable, declaredDifferences, describeDifference, isImagePath, quantity } from '../../functions/workloads/compare';
import { driftType } from '../../functions/workloads/drift';

/** A container as a person declares it. */
const container = (name: string, image: string, extra: Record<string, unknown> = {}) => ({
  name,
  image,
  ports: [{ containerPort: 8080 }],
  env: [
    { name: 'MODE', value: 'prod' },
    { name: 'REGION', value: 'eu-west-1' },
  ],
  resources: { requests: { cpu: '0.5', memory: '256Mi' }, limits: { memory: '1Gi' } },
  ...extra,
});

/** A Deployment as declared in git. */
const declaredDeployment = (containers = [container('web', 'nginx:1.27.2')]) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'storefront', namespace: 'shop', labels: { app: 'storefront' } },
  spec: { replicas: 2, selector: { matchLabels: { app: 'storefront' } }, template: { metadata: { labels: { app: 'storefront' } }, spec: { containers } } },
});

/** The same Deployment as the API server returns it: defaulted, normalized, with status and server metadata. */
const liveDeployment = (containers?: Record<string, unknown>[]) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'storefront',
    namespace: 'shop',
    uid: '0b8c6f8e-1d1a-4e0c-9a47-5c3f5d9f2a11',
    resourceVersion: '4711',
    generation: 3,
    creationTimestamp: '2026-11-02T09:00:00Z',
    labels: { app: 'storefront' },
    annotations: { 'deployment.kubernetes.io/revision': '3' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply', time: '2026-11-02T09:00:00Z' }],
  },
  spec: {
    replicas: 2,
    revisionHistoryLimit: 10,
    progressDeadlineSeconds: 600,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
    selector: { matchLabels: { app: 'storefront' } },
    template: {
      metadata: { labels: { app: 'storefront' }, creationTimestamp: null },
      spec: {
        restartPolicy: 'Always',
        dnsPolicy: 'ClusterFirst',
        schedulerName: 'default-scheduler',
        terminationGracePeriodSeconds: 30,
        securityContext: {},
        containers: containers ?? [
          {
            name: 'web',
            image: 'nginx:1.27.2',
            imagePullPolicy: 'IfNotPresent',
            terminationMessagePath: '/dev/termination-log',
            terminationMessagePolicy: 'File',
            ports: [{ containerPort: 8080, protocol: 'TCP' }],
            env: [
              { name: 'MODE', value: 'prod' },
              { name: 'REGION', value: 'eu-west-1' },
            ],
            resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
          },
        ],
      },
    },
  },
  status: { observedGeneration: 3, replicas: 2, updatedReplicas: 2, readyReplicas: 2, availableReplicas: 2 },
});

type Live = ReturnType<typeof liveDeployment>;
const webOf = (live: Live) => live.spec.template.spec.containers[0] as Record<string, any>;
const differencesOf = (declared: Record<string, unknown>, live: unknown) => declaredDifferences(comparable(declared), live);
const pathsOf = (differences: readonly Difference[]) => differences.map((d) => d.path);

const WEB = 'spec.template.spec.containers[name=web]';

describe('declared-field comparison: what is not declared is not compared', () => {
  it('finds no difference between a declared Deployment and the live one the server defaulted, normalized and annotated', () => {
    // Act
    const differences = differencesOf(declaredDeployment(), liveDeployment());
    // Assess
    expect(differences).toEqual([]);
  });

  it('ignores status, server metadata and annotations nobody declared, but compares declared labels and annotations', () => {
    // Prepare
    const declared = { ...declaredDeployment(), metadata: { name: 'storefront', namespace: 'shop', labels: { app: 'storefront' }, annotations: { 'fleetwarden.io/purpose': 'the shop' } } };
    const live = liveDeployment();
    live.metadata.labels.app = 'shop-front';
    // Act
    const differences = differencesOf(declared, live);
    // Assess
    expect(differences).toEqual([
      { path: 'metadata.labels.app', declared: 'storefront', live: 'shop-front' },
      { path: 'metadata.annotations.fleetwarden.io/purpose', declared: 'the shop', live: undefined },
    ]);
  });

  it('reports a changed declared scalar at its dotted path, with both values', () => {
    // Prepare
    const live = liveDeployment();
    live.spec.replicas = 7;
    // Act + Assess
    expect(differencesOf(declaredDeployment(), live)).toEqual([{ path: 'spec.replicas', declared: 2, live: 7 }]);
  });

  it('reports a declared mapping the live object holds as something else, once, at the mapping', () => {
    expect(declaredDifferences({ spec: { selector: { matchLabels: { app: 'a' } } } }, { spec: { selector: 'app=a' } })).toEqual([
      { path: 'spec.selector', declared: { matchLabels: { app: 'a' } }, live: 'app=a' },
    ]);
  });
});

describe('declared-field comparison: merge-keyed lists', () => {
  it('matches containers by name whatever their order, and a sidecar added live is not a difference', () => {
    // Prepare: a mutating webhook's sidecar, put first.
    const declared = declaredDeployment([container('web', 'nginx:1.27.2'), container('worker', 'busybox:1.36')]);
    const live = liveDeployment([
      { name: 'istio-proxy', image: 'istio/proxyv2:1.24.0', args: ['proxy', 'sidecar'] },
      { ...container('worker', 'busybox:1.36'), imagePullPolicy: 'IfNotPresent' },
      { ...container('web', 'nginx:1.27.2'), imagePullPolicy: 'IfNotPresent' },
    ]);
    // Act + Assess
    expect(differencesOf(declared, live)).toEqual([]);
  });

  it('reports a declared container the live object lacks at its keyed path, the live side absent', () => {
    // Prepare
    const declared = declaredDeployment([container('web', 'nginx:1.27.2'), container('worker', 'busybox:1.36')]);
    // Act
    const differences = differencesOf(declared, liveDeployment());
    // Assess
    expect(differences).toEqual([{ path: 'spec.template.spec.containers[name=worker]', declared: container('worker', 'busybox:1.36'), live: undefined }]);
  });

  it('compares env by name: a changed value is reported at its variable, a variable added live or reordered is not', () => {
    // Prepare
    const live = liveDeployment();
    webOf(live).env = [
      { name: 'REGION', value: 'eu-west-1' },
      { name: 'DEBUG', value: 'true' },
      { name: 'MODE', value: 'staging' },
    ];
    // Act + Assess
    expect(differencesOf(declaredDeployment(), live)).toEqual([{ path: `${WEB}.env[name=MODE].value`, declared: 'prod', live: 'staging' }]);
  });

  it('matches container ports by containerPort and protocol, an omitted protocol meaning TCP', () => {
    // Prepare: declared without a protocol; the server stores TCP, and a UDP port of the same number is another port.
    const declared = declaredDeployment([container('dns', 'coredns:1.11', { ports: [{ containerPort: 53 }, { containerPort: 53, protocol: 'UDP' }, { containerPort: 9153, protocol: 'TCP' }] })]);
    const live = liveDeployment([{ ...container('dns', 'coredns:1.11'), ports: [{ containerPort: 9153, protocol: 'TCP' }, { containerPort: 53, protocol: 'TCP', name: 'dns-tcp' }] }]);
    // Act
    const differences = differencesOf(declared, live);
    // Assess: only the UDP port is missing.
    expect(differences).toEqual([{ path: 'spec.template.spec.containers[name=dns].ports[containerPort=53,protocol=UDP]', declared: { containerPort: 53, protocol: 'UDP' }, live: undefined }]);
  });

  it('matches Service ports by port and protocol', () => {
    // Prepare
    const declared = { spec: { ports: [{ port: 80, targetPort: 8080 }] } };
    const live = { spec: { type: 'ClusterIP', ports: [{ port: 443, protocol: 'TCP', targetPort: 8443 }, { port: 80, protocol: 'TCP', targetPort: 9090 }] } };
    // Act + Assess
    expect(declaredDifferences(declared, live)).toEqual([{ path: 'spec.ports[port=80].targetPort', declared: 8080, live: 9090 }]);
  });

  it('matches volumeMounts by mountPath: another volume at the declared path is a difference, an extra mount is not', () => {
    // Prepare
    const declared = declaredDeployment([container('web', 'nginx:1.27.2', { volumeMounts: [{ name: 'config', mountPath: '/etc/nginx/conf.d', readOnly: true }] })]);
    const live = liveDeployment();
    webOf(live).volumeMounts = [
      { name: 'kube-api-access', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount', readOnly: true },
      { name: 'other-config', mountPath: '/etc/nginx/conf.d', readOnly: true },
    ];
    // Act + Assess
    expect(differencesOf(declared, live)).toEqual([{ path: `${WEB}.volumeMounts[mountPath=/etc/nginx/conf.d].name`, declared: 'config', live: 'other-config' }]);
  });

  it('finds nothing for a declared empty list the live object omits', () => {
    expect(declaredDifferences({ spec: { tolerations: [], containers: [] } }, { spec: {} })).toEqual([]);
  });
});

describe('declared-field comparison: atomic lists', () => {
  it('compares args whole: an argument added, removed or reordered is one difference at the list with both lists', () => {
    // Prepare
    const declared = declaredDeployment([container('web', 'nginx:1.27.2', { args: ['--port', '8080'] })]);
    const liveWith = (args: string[]) => {
      const live = liveDeployment();
      webOf(live).args = args;
      return live;
    };
    // Act
    const outcomes = [['--port', '8080'], ['--port', '8080', '--debug'], ['--port'], ['8080', '--port']].map((args) => differencesOf(declared, liveWith(args)));
    // Assess
    expect(outcomes[0]).toEqual([]);
    for (const [i, args] of [['--port', '8080', '--debug'], ['--port'], ['8080', '--port']].entries()) {
      expect(outcomes[i + 1]).toEqual([{ path: `${WEB}.args`, declared: ['--port', '8080'], live: args }]);
    }
  });

  it('compares command whole, and reports a declared command the live object lacks', () => {
    // Prepare
    const declared = declaredDeployment([container('web', 'nginx:1.27.2', { command: ['nginx', '-g', 'daemon off;'] })]);
    const changed = liveDeployment();
    webOf(changed).command = ['nginx', '-g', 'daemon on;'];
    // Act + Assess
    expect(differencesOf(declared, changed)).toEqual([{ path: `${WEB}.command`, declared: ['nginx', '-g', 'daemon off;'], live: ['nginx', '-g', 'daemon on;'] }]);
    expect(differencesOf(declared, liveDeployment())).toEqual([{ path: `${WEB}.command`, declared: ['nginx', '-g', 'daemon off;'], live: undefined }]);
  });

  it('compares the items of an atomic list of mappings on their declared fields, but an extra item is a difference', () => {
    // Prepare
    const declared = { spec: { tolerations: [{ key: 'gpu', effect: 'NoSchedule' }] } };
    const defaulted = { spec: { tolerations: [{ key: 'gpu', operator: 'Equal', effect: 'NoSchedule' }] } };
    const extra = { spec: { tolerations: [{ key: 'gpu', effect: 'NoSchedule' }, { key: 'spot', effect: 'NoSchedule' }] } };
    // Act + Assess
    expect(declaredDifferences(declared, defaulted)).toEqual([]);
    expect(pathsOf(declaredDifferences(declared, extra))).toEqual(['spec.tolerations']);
  });
});

describe('declared-field comparison: quantities', () => {
  it.each([
    ['cpu', '0.5', '500m'],
    ['cpu', 1, '1000m'],
    ['cpu', '1', '1000m'],
    ['memory', '1Gi', '1073741824'],
    ['memory', 268435456, '256Mi'],
    ['memory', '1G', '1000M'],
    ['memory', '1e3', '1k'],
  ])('compares %s %j and %j by value under resources.requests and resources.limits', (resource, declaredValue, liveValue) => {
    // Prepare
    const declared = { resources: { requests: { [resource]: declaredValue }, limits: { [resource]: declaredValue } } };
    const live = { resources: { requests: { [resource]: liveValue }, limits: { [resource]: liveValue } } };
    // Act + Assess
    expect(declaredDifferences(declared, live)).toEqual([]);
  });

  it('reports a quantity of another value, with the values as written', () => {
    expect(declaredDifferences({ resources: { limits: { cpu: '1' } } }, { resources: { limits: { cpu: '1500m' } } })).toEqual([{ path: 'resources.limits.cpu', declared: '1', live: '1500m' }]);
    expect(declaredDifferences({ resources: { requests: { memory: '1Gi' } } }, { resources: { requests: { memory: '1G' } } })).toEqual([{ path: 'resources.requests.memory', declared: '1Gi', live: '1G' }]);
  });

  it('compares extended resources (nvidia.com/gpu) by value too: the server stores a declared 1 as "1"', () => {
    // Act + Assess
    expect(declaredDifferences({ resources: { limits: { 'nvidia.com/gpu': 1 } } }, { resources: { limits: { 'nvidia.com/gpu': '1' } } })).toEqual([]);
    expect(pathsOf(declaredDifferences({ resources: { limits: { 'nvidia.com/gpu': 1 } } }, { resources: { limits: { 'nvidia.com/gpu': '2' } } }))).toEqual(['resources.limits.nvidia.com/gpu']);
  });

  it('compares quantity-looking values as text anywhere else: env values, annotations, ConfigMap data', () => {
    // Prepare
    const declared = { metadata: { annotations: { size: '1Gi' } }, data: { ratio: '0.5' }, spec: { containers: [{ name: 'web', env: [{ name: 'CPU', value: '1' }] }] } };
    const live = { metadata: { annotations: { size: '1073741824' } }, data: { ratio: '500m' }, spec: { containers: [{ name: 'web', env: [{ name: 'CPU', value: '1000m' }] }] } };
    // Act + Assess
    expect(pathsOf(declaredDifferences(declared, live))).toEqual(['metadata.annotations.size', 'data.ratio', 'spec.containers[name=web].env[name=CPU].value']);
  });

  it('does not take a value that is no quantity for equal to anything but itself', () => {
    expect(pathsOf(declaredDifferences({ resources: { limits: { cpu: 'lots' } } }, { resources: { limits: { cpu: 'plenty' } } }))).toEqual(['resources.limits.cpu']);
    expect(declaredDifferences({ resources: { limits: { cpu: 'lots' } } }, { resources: { limits: { cpu: 'lots' } } })).toEqual([]);
  });

  it.each([
    ['500m', 0.5],
    ['0.5', 0.5],
    ['.5', 0.5],
    ['1', 1],
    ['1000m', 1],
    ['250u', 0.00025],
    ['2k', 2000],
    ['1Ki', 1024],
    ['256Mi', 268435456],
    ['1Gi', 1073741824],
    ['1e3', 1000],
    ['1E', 1e18],
    ['+2', 2],
    [' 3 ', 3],
    [42, 42],
  ])('reads the quantity %j as %d', (text, value) => {
    expect(quantity(text)).toBeCloseTo(value, 12);
  });

  it.each([['abc'], ['1 Gi'], ['1gi'], ['Gi'], [''], [null], [undefined], [true], [{}]])('reads %j as no quantity', (value) => {
    expect(quantity(value)).toBeUndefined();
  });
});

describe('declared-field comparison: declared null', () => {
  it('asks for the field to be absent: a live null or no field is no difference, a live value is one', () => {
    // Prepare
    const declared = { metadata: { annotations: { 'example.com/legacy': null, owner: 'shop' } } };
    // Act + Assess
    expect(declaredDifferences(declared, { metadata: { annotations: { owner: 'shop' } } })).toEqual([]);
    expect(declaredDifferences(declared, { metadata: { annotations: { 'example.com/legacy': null, owner: 'shop' } } })).toEqual([]);
    expect(declaredDifferences(declared, { metadata: { annotations: { 'example.com/legacy': 'yes', owner: 'shop' } } })).toEqual([{ path: 'metadata.annotations.example.com/legacy', declared: null, live: 'yes' }]);
    expect(declaredDifferences({ spec: { paused: null } }, { spec: { paused: false } })).toEqual([{ path: 'spec.paused', declared: null, live: false }]);
  });
});

describe('image and config drift', () => {
  it('classifies differences only at container images as image drift, any other difference making it config drift', () => {
    // Prepare
    const live = liveDeployment();
    webOf(live).image = 'nginx:1.99-hotfix';
    const both = liveDeployment();
    webOf(both).image = 'nginx:1.99-hotfix';
    webOf(both).env[0].value = 'debug';
    // Act
    const imageOnly = differencesOf(declaredDeployment(), live);
    const mixed = differencesOf(declaredDeployment(), both);
    // Assess
    expect(imageOnly).toEqual([{ path: `${WEB}.image`, declared: 'nginx:1.27.2', live: 'nginx:1.99-hotfix' }]);
    expect(driftType(imageOnly)).toBe('image');
    expect(driftType(mixed)).toBe('config');
  });

  it('takes an image of an init or ephemeral container for an image path, and an image-like field elsewhere for none', () => {
    expect(
      [
        'spec.template.spec.containers[name=web].image',
        'spec.template.spec.initContainers[name=migrate].image',
        'spec.template.spec.ephemeralContainers[name=debug].image',
        'spec.jobTemplate.spec.template.spec.containers[name=job].image',
        'spec.template.spec.containers[name=web].imagePullPolicy',
        'spec.template.spec.containers[name=web]',
        'spec.template.spec.containers',
        'metadata.annotations.image',
        'spec.image',
      ].map((path) => [path, isImagePath(path)]),
    ).toEqual([
      ['spec.template.spec.containers[name=web].image', true],
      ['spec.template.spec.initContainers[name=migrate].image', true],
      ['spec.template.spec.ephemeralContainers[name=debug].image', true],
      ['spec.jobTemplate.spec.template.spec.containers[name=job].image', true],
      ['spec.template.spec.containers[name=web].imagePullPolicy', false],
      ['spec.template.spec.containers[name=web]', false],
      ['spec.template.spec.containers', false],
      ['metadata.annotations.image', false],
      ['spec.image', false],
    ]);
  });

  it('calls a missing container config drift, not image drift (its image is not all that differs)', () => {
    expect(driftType([{ path: 'spec.template.spec.containers[name=worker]', declared: container('worker', 'busybox:1.36'), live: undefined }])).toBe('config');
  });

  it('calls no differences at all config drift, never image drift', () => {
    expect(driftType([])).toBe('config');
  });
});

describe('comparable: what of a manifest is compared', () => {
  it('drops apiVersion, kind, status and the server-owned metadata, keeping labels, annotations and the rest', () => {
    // Prepare
    const manifest = { ...declaredDeployment(), metadata: { name: 'a', namespace: 'b', uid: 'u', resourceVersion: '1', generation: 2, labels: { app: 'a' }, annotations: { note: 'x' }, finalizers: ['example.com/keep'] }, status: { replicas: 1 } };
    // Act
    const compared = comparable(manifest);
    // Assess
    expect(compared).toEqual({ metadata: { labels: { app: 'a' }, annotations: { note: 'x' }, finalizers: ['example.com/keep'] }, spec: declaredDeployment().spec });
    expect(manifest).toHaveProperty('status');
    expect(manifest).toHaveProperty('metadata.name', 'a');
  });

  it('leaves metadata out when only names remain', () => {
    expect(comparable({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'a', namespace: 'b' }, data: { k: 'v' } })).toEqual({ data: { k: 'v' } });
  });
});

describe('atDeclaredFields: a dry run read at the declared fields', () => {
  it('keeps only declared fields and declared keyed items, in the declared order, with the server\'s values', () => {
    // Prepare: what a dry run of the declared manifest returns (defaults, the webhook's sidecar, normalized quantities).
    const declared = comparable(declaredDeployment([container('web', 'nginx:1.27.2'), container('worker', 'busybox:1.36')]));
    const dryRun = liveDeployment([{ name: 'istio-proxy', image: 'istio/proxyv2:1.24.0' }, { ...container('worker', 'busybox:1.36'), imagePullPolicy: 'IfNotPresent' }, webOf(liveDeployment())]);
    // Act
    const wouldBe = atDeclaredFields(declared, dryRun) as any;
    // Assess
    expect(Object.keys(wouldBe).sort()).toEqual(['metadata', 'spec']);
    expect(wouldBe.metadata).toEqual({ labels: { app: 'storefront' } });
    expect(wouldBe.spec.strategy).toBeUndefined();
    expect(wouldBe.spec.template.spec.containers.map((c: { name: string }) => c.name)).toEqual(['web', 'worker']);
    expect(wouldBe.spec.template.spec.containers[0]).toEqual({
      name: 'web',
      image: 'nginx:1.27.2',
      ports: [{ containerPort: 8080 }],
      env: [
        { name: 'MODE', value: 'prod' },
        { name: 'REGION', value: 'eu-west-1' },
      ],
      resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '1Gi' } },
    });
  });

  it('leaves out a declared field the server dropped, and keeps a declared null as absent', () => {
    // Prepare
    const declared = { spec: { replicas: 2, paused: null, selector: { matchLabels: { app: 'a' } } } };
    const dryRun = { spec: { replicas: 2, selector: { matchLabels: { app: 'a' } } } };
    // Act
    const wouldBe = atDeclaredFields({ ...declared, metadata: { annotations: { gone: 'x' } } }, dryRun);
    // Assess
    expect(wouldBe).toEqual({ spec: { replicas: 2, paused: undefined, selector: { matchLabels: { app: 'a' } } } });
    expect(Object.keys((wouldBe as { spec: object }).spec)).toEqual(['replicas', 'paused', 'selector']);
  });

  it('takes an atomic list from the server whole', () => {
    expect(atDeclaredFields({ spec: { args: ['a'] } }, { spec: { args: ['a', 'b'] } })).toEqual({ spec: { args: ['a', 'b'] } });
  });

  it('is in sync with the live object when the server would store what runs, and differs where it would not', () => {
    // Prepare: declared 0.5 CPU; the server stores 500m, as it does live.
    const declared = comparable(declaredDeployment());
    const edited = liveDeployment();
    webOf(edited).image = 'nginx:1.99-hotfix';
    // Act
    const wouldBe = atDeclaredFields(declared, liveDeployment());
    // Assess
    expect(declaredDifferences(wouldBe, liveDeployment())).toEqual([]);
    expect(declaredDifferences(wouldBe, edited)).toEqual([{ path: `${WEB}.image`, declared: 'nginx:1.27.2', live: 'nginx:1.99-hotfix' }]);
  });
});

describe('describeDifference', () => {
  it('renders a difference as path: declared -> live, objects as JSON and an absent side as (absent)', () => {
    expect(describeDifference({ path: `${WEB}.image`, declared: 'nginx:1.27.2', live: 'nginx:1.99' })).toBe(`${WEB}.image: nginx:1.27.2 -> nginx:1.99`);
    expect(describeDifference({ path: 'spec.replicas', declared: 2, live: 5 })).toBe('spec.replicas: 2 -> 5');
    expect(describeDifference({ path: 'spec.x', declared: { a: [1] }, live: undefined })).toBe('spec.x: {"a":[1]} -> (absent)');
  });

  it('cuts a long value to its limit, ending in an ellipsis', () => {
    // Act
    const line = describeDifference({ path: 'data.blob', declared: 'x'.repeat(500), live: 'short' }, 20);
    // Assess
    expect(line).toBe(`data.blob: ${'x'.repeat(19)}… -> short`);
  });
});

// ---------------------------------------------------------------------------- properties

/** Keys of generated mappings: none is a merge-keyed list's field or a quantity's place. */
const KEYS = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta'] as const;
const scalar = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -1000, max: 1000 }), fc.boolean());
const { tree } = fc.letrec((tie) => ({
  tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('mapping'), tie('list')),
  mapping: fc.dictionary(fc.constantFrom(...KEYS), tie('tree'), { maxKeys: 4 }),
  list: fc.array(tie('tree'), { maxLength: 3 }),
}));
const envArb = fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[A-Z]{1,4}$/), value: fc.string({ maxLength: 6 }) }), { selector: (e) => e.name, maxLength: 3 });
const containerArb = fc.record({ name: fc.stringMatching(/^[a-z]{1,5}$/), image: fc.string({ minLength: 1, maxLength: 8 }), env: envArb, extra: fc.dictionary(fc.constantFrom(...KEYS), tree, { maxKeys: 2 }) });
const declaredArb = fc.record({
  metadata: fc.record({ labels: fc.dictionary(fc.stringMatching(/^[a-z]{1,5}$/), fc.string({ maxLength: 5 }), { maxKeys: 3 }) }),
  spec: fc.record({
    containers: fc.uniqueArray(containerArb, { selector: (c) => c.name, minLength: 1, maxLength: 3 }).map((cs) => cs.map(({ extra, ...c }) => ({ ...extra, ...c }))),
    rest: fc.dictionary(fc.constantFrom(...KEYS), tree, { maxKeys: 4 }),
  }),
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * The declared value as a live object holds it with more: an extra key in every mapping, an
 * extra item in every keyed list (containers, env), keyed lists reversed; atomic lists keep their length.
 */
function widen(value: unknown, field: string, extra: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map((item) => widen(item, '', extra));
    if (field === 'containers') return [{ name: 'sidecar-proxy', image: 'istio/proxyv2', extraField: extra }, ...items.reverse()];
    if (field === 'env') return [{ name: 'injected_by_webhook', value: String(extra) }, ...items.reverse()];
    return items;
  }
  if (isObject(value)) return { ...Object.fromEntries(Object.entries(value).map(([k, v]) => [k, widen(v, k, extra)])), 'x-added-live': extra };
  return value;
}

interface Leaf {
  /** Where declaredDifferences reports a change of this leaf (an atomic list is reported whole). */
  reported: string;
  change: (root: unknown) => unknown;
}

/** Every declared scalar but the keys of keyed items, with where its change is reported. */
function leaves(value: unknown, path: string, field: string, atomic: string | undefined): Leaf[] {
  const at = (p: string, k: string) => (p ? `${p}.${k}` : k);
  if (Array.isArray(value)) {
    const keyed = field === 'containers' || field === 'env';
    return value.flatMap((item, i) => {
      const itemPath = keyed ? `${path}[name=${(item as { name: string }).name}]` : `${path}[${i}]`;
      return leaves(item, itemPath, '', keyed ? atomic : (atomic ?? path)).map((leaf) => ({
        reported: leaf.reported,
        change: (list: unknown) => (list as unknown[]).map((x, j) => (j === i ? leaf.change(x) : x)),
      }));
    });
  }
  if (isObject(value)) {
    return Object.entries(value).flatMap(([k, v]) => {
      if (k === 'name' && /\[name=[^\]]*\]$/.test(path)) return [];
      return leaves(v, at(path, k), k, atomic).map((leaf) => ({ reported: leaf.reported, change: (o: unknown) => ({ ...(o as object), [k]: leaf.change((o as Record<string, unknown>)[k]) }) }));
    });
  }
  const changed = typeof value === 'string' ? `${value}~` : typeof value === 'number' ? value + 1 : !value;
  return [{ reported: atomic ?? path, change: () => changed }];
}

describe('declared-field comparison: properties', () => {
  it('finds no difference in any live object that holds the declared one and more (extra keys, extra keyed items, keyed items reordered)', () => {
    fc.assert(
      fc.property(declaredArb, scalar, (declared, extra) => {
        // Act
        const differences = declaredDifferences(declared, widen(declared, '', extra));
        // Assess
        expect(differences).toEqual([]);
      }),
    );
  });

  it('finds exactly the one declared scalar changed, at its path (an atomic list\'s whole path)', () => {
    fc.assert(
      fc.property(
        declaredArb.chain((declared) => {
          const all = leaves(declared, '', '', undefined);
          return fc.tuple(fc.constant(declared), all.length ? fc.constantFrom(...all) : fc.constant(undefined), scalar);
        }),
        ([declared, leaf, extra]) => {
          if (!leaf) return;
          // Prepare
          const live = widen(declared, '', extra);
          // Act
          const differences = declaredDifferences(leaf.change(declared), live);
          // Assess
          expect(pathsOf(differences)).toEqual([leaf.reported]);
        },
      ),
    );
  });

  it('finds a quantity equal to its value written without a suffix, and unequal to the next one in its unit', () => {
    const units = fc.constantFrom(['m', 1e-3] as const, ['', 1] as const, ['k', 1e3] as const, ['Ki', 1024] as const, ['Mi', 2 ** 20] as const, ['Gi', 2 ** 30] as const, ['M', 1e6] as const, ['G', 1e9] as const);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), units, (n, [suffix, factor]) => {
        // Prepare
        const live = { resources: { requests: { memory: String(n * factor) } } };
        // Act
        const same = declaredDifferences({ resources: { requests: { memory: `${n}${suffix}` } } }, live);
        const next = declaredDifferences({ resources: { requests: { memory: `${n + 1}${suffix}` } } }, live);
        // Assess
        expect(same).toEqual([]);
        expect(pathsOf(next)).toEqual(['resources.requests.memory']);
      }),
    );
  });
});

describe('empty declared mappings', () => {
  it('finds `nodeSelector: {}` (or a mapping of nulls) absent live in sync, as the server stores nothing for it', () => {
    // Act + Assess
    expect(declaredDifferences({ spec: { nodeSelector: {}, tolerations: [] } }, { spec: {} })).toEqual([]);
    expect(declaredDifferences({ metadata: { annotations: { stale: null } } }, { metadata: {} })).toEqual([]);
    expect(declaredDifferences({ spec: { nodeSelector: { pool: 'a' } } }, { spec: {} })).toEqual([{ path: 'spec.nodeSelector', declared: { pool: 'a' }, live: undefined }]);
  });
});
