import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DesiredStateSchema } from '../../functions/workloads/desired-state';
import { buildApp } from '../../lib/app';
import { PROJECT_ROOT } from '../../lib/paths';
import { commitAll } from '../../local/git';

const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'payments-prod', environment: 'PROD' }] };
const clusters = [{ name: 'prod-eks', region: 'us-east-1' }];

let checkout: string;
let manifests: string;
let commit: string;

beforeAll(() => {
  // A checkout holding the example manifests, committed.
  checkout = mkdtempSync(path.join(tmpdir(), 'fleetwarden-desired-infra-'));
  manifests = path.join(checkout, 'manifests', 'clusters');
  cpSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'desired-state', 'clusters'), manifests, { recursive: true });
  commit = commitAll(checkout, 'storefront');
});
afterAll(() => rmSync(checkout, { recursive: true, force: true }));

const synth = (kubernetes: Record<string, unknown>) => {
  const { app, stack } = buildApp({ skipBundling: true, nag: false, config: { ...base, kubernetes } });
  const assembly = app.synth();
  return { stack, assembly, template: Template.fromJSON(assembly.getStackByName('Fleetwarden').template) };
};

describe('desired state asset', () => {
  it('publishes the validated manifests with their commit as an S3 asset, and names where in the DesiredStateObjectUrl output', () => {
    // Act
    const { stack, assembly, template } = synth({ clusters, desiredState: { path: manifests } });
    // Assess
    const key = stack.workloads!.desiredState.s3ObjectKey;
    expect(key).toMatch(/^[0-9a-f]{64}\.json$/);
    // The CDK bootstrap's asset bucket, where `cdk deploy` uploads it.
    expect(template.findOutputs('DesiredStateObjectUrl').DesiredStateObjectUrl!.Value).toEqual({ 'Fn::Sub': `s3://cdk-hnb659fds-assets-\${AWS::AccountId}-us-east-1/${key}` });
    const staged = readdirSync(assembly.directory).find((f) => f === `asset.${key}`)!;
    const published = DesiredStateSchema.parse(JSON.parse(readFileSync(path.join(assembly.directory, staged), 'utf8')));
    expect(published.source).toEqual({ provenance: 'git', commit, dirty: false, dirtyFiles: [] });
    expect(published.objects.map((o) => `${o.cluster} ${o.kind} ${o.namespace ?? '-'}/${o.name}`)).toEqual([
      'prod-eks PriorityClass -/storefront-critical',
      'prod-eks Namespace -/web',
      'prod-eks Deployment web/storefront',
      'prod-eks Service web/storefront',
    ]);
  });

  it('adds neither asset nor output without a configured cluster, or without a manifest', () => {
    for (const kubernetes of [{ clusters: [], desiredState: { path: manifests } }, { clusters, desiredState: { path: path.join(checkout, 'nothing-here') } }, { clusters }]) {
      const { stack, template, assembly } = synth(kubernetes);
      expect(stack.workloads).toBeUndefined();
      expect(template.findOutputs('DesiredStateObjectUrl')).toEqual({});
      expect(readdirSync(assembly.directory).filter((f) => f.endsWith('.json') && f.startsWith('asset.'))).toEqual([]);
    }
  });
});
