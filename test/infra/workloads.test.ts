import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Template } from 'aws-cdk-lib/assertions';
import { AwsSolutionsChecks } from 'cdk-nag';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { driftIdOf } from '../../functions/workloads/drift';
import { buildApp } from '../../lib/app';
import { ConfigError, parseConfig } from '../../lib/config';
import { KUBERNETES_GROUP, WORKLOADS_GROUP, WORKLOAD_READER_ROLE, WORKLOAD_WRITER_ROLE } from '../../lib/kubernetes/rbac';
import { PROJECT_ROOT } from '../../lib/paths';
import { stateNames } from '../../local/stepfunctions';
import { commitAll } from '../../local/git';

/**
 * The Workloads construct as `cdk synth` builds it for a configured cluster and the fixture
 * desired state (test/fixtures/desired-state/clusters, committed in a temporary git checkout):
 * the drift schedule, the WorkloadRollback workflow, the functions' permissions, their EKS access
 * entries, the generated RBAC manifest, and cdk-nag on the whole stack.
 */
const base = { homeRegion: 'us-east-1', regions: ['us-east-1'], accounts: [{ id: '111111111111', name: 'payments-prod', environment: 'PROD' }] };
const clusters = [{ name: 'prod-eks', region: 'us-east-1' }];

let checkout: string;
let manifests: string;
/** The cloud assemblies this file synthesized (temporary directories), removed after it. */
const assemblies: string[] = [];

beforeAll(() => {
  // A checkout holding the fixture manifests, committed.
  checkout = mkdtempSync(path.join(tmpdir(), 'fleetwarden-workloads-infra-'));
  manifests = path.join(checkout, 'manifests', 'clusters');
  cpSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'desired-state', 'clusters'), manifests, { recursive: true });
  commitAll(checkout, 'storefront');
});
afterAll(() => {
  for (const dir of [checkout, ...assemblies]) rmSync(dir, { recursive: true, force: true });
});

const configWith = (extra: Record<string, unknown> = {}) => ({ ...base, kubernetes: { clusters, desiredState: { path: manifests } }, ...extra });

const synth = (config: Record<string, unknown> = configWith()) => {
  const { app, stack } = buildApp({ skipBundling: true, nag: false, config });
  const assembly = app.synth();
  assemblies.push(assembly.directory);
  const template = Template.fromJSON(assembly.getStackByName('Fleetwarden').template);
  const workloads = stack.workloads!;
  expect(workloads).toBeDefined();
  return { app, stack, assembly, template, workloads };
};

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: unknown };
const actionsOf = (s: Statement) => [s.Action].flat();

/** Every statement of the policies attached to the role with this logical id. */
function statementsOf(template: Template, roleId: string): Statement[] {
  return Object.values(template.findResources('AWS::IAM::Policy'))
    .filter((p) => (p.Properties.Roles as { Ref: string }[]).some((r) => r.Ref === roleId))
    .flatMap((p) => p.Properties.PolicyDocument.Statement as Statement[]);
}

/** The definition of a state machine, as CloudFormation receives it (Fn::Join of literals and refs). */
function definitionOf(template: Template, name: string): { QueryLanguage?: string; StartAt: string; States: Record<string, any> } {
  const [machine] = Object.values(template.findResources('AWS::StepFunctions::StateMachine', { Properties: { StateMachineName: name } }));
  expect(machine).toBeDefined();
  const body = machine!.Properties.DefinitionString;
  return JSON.parse(typeof body === 'string' ? body : (body['Fn::Join'][1] as unknown[]).map((p) => (typeof p === 'string' ? p : 'REF')).join(''));
}

/** cdk-nag's unacknowledged findings, by rule and construct path. */
function nagFindings(app: ReturnType<typeof buildApp>['app']): string[] {
  const report = new AwsSolutionsChecks().validateScope(app);
  return report.violations.flatMap((v) => v.violatingResources.map((r) => `${v.ruleName} ${(r as { constructPath?: string }).constructPath ?? r.resourceLogicalId}`));
}

describe('cdk-nag AwsSolutions with workloads', () => {
  it('reports no unacknowledged finding for the whole stack with the workload drift functions and workflow', () => {
    const { app } = synth();
    expect(nagFindings(app)).toEqual([]);
  });

  it('reports no unacknowledged finding when the account is known too (cdk synth with credentials)', () => {
    const saved = process.env.CDK_DEFAULT_ACCOUNT;
    process.env.CDK_DEFAULT_ACCOUNT = '111111111111';
    try {
      const { app, template } = synth();
      // The cluster is of the stack's account: its access entries are there.
      expect(Object.keys(template.findResources('AWS::EKS::AccessEntry')).length).toBeGreaterThan(0);
      expect(nagFindings(app)).toEqual([]);
    } finally {
      if (saved === undefined) delete process.env.CDK_DEFAULT_ACCOUNT;
      else process.env.CDK_DEFAULT_ACCOUNT = saved;
    }
  });
});

describe('the workload drift schedule', () => {
  it('runs the detector every minute by default, never retries a cycle and sends a failed delivery to the dead-letter queue', () => {
    const { stack, template, workloads } = synth();
    const fnArn = stack.resolve(workloads.detector.fn.functionArn);
    const rules = Object.values(template.findResources('AWS::Events::Rule')).filter((r) => (r.Properties.Targets as { Arn: unknown }[] | undefined)?.some((t) => JSON.stringify(t.Arn) === JSON.stringify(fnArn)));
    expect(rules).toHaveLength(1);
    const rule = rules[0]!;
    expect(rule.Properties.ScheduleExpression).toBe('rate(1 minute)');
    expect(rule.Properties.Targets).toEqual([
      expect.objectContaining({
        Arn: fnArn,
        RetryPolicy: expect.objectContaining({ MaximumRetryAttempts: 0 }),
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [expect.stringMatching(/^StateStoreAsyncDeadLettersQueue/), 'Arn'] } },
      }),
    ]);
  });

  it('follows policies.drift.cycleMinutes', () => {
    const { template } = synth(configWith({ policies: { drift: { cycleMinutes: 5 } } }));
    template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(5 minutes)', Description: 'Workload drift cycle every 5 minutes' });
    expect(Object.values(template.findResources('AWS::Events::Rule')).map((r) => r.Properties.ScheduleExpression)).not.toContain('rate(1 minute)');
  });
});

describe('the WorkloadRollback workflow', () => {
  const action = ['Re-check the drift and re-apply the declared object', 'Re-check and remove the undeclared workload', 'Check whether the rollout settled'];

  it('is a JSONPath state machine whose state names read as sentences, with the rollback, rollout and not-settled states', () => {
    const { template } = synth();
    const definition = definitionOf(template, 'fleetwarden-workload-rollback');
    expect(definition.QueryLanguage).toBe('JSONPath');
    expect(Object.values(definition.States).filter((s) => s.QueryLanguage !== undefined && s.QueryLanguage !== 'JSONPath')).toEqual([]);
    const names = stateNames(definition);
    for (const name of [...action, 'Wait for the rollout', 'Record the rollback that did not settle']) expect(names).toContain(name);
    expect(names.filter((n) => !(/^[A-Z][a-z].* [a-z]/.test(n) || /^[A-Z][a-z]+ [a-z]+/.test(n)))).toEqual([]);
  });

  it('catches a failure of every action step into the failed-rollback record', () => {
    const { template } = synth();
    const { States } = definitionOf(template, 'fleetwarden-workload-rollback');
    for (const name of action) {
      expect({ name, type: States[name].Type }).toEqual({ name, type: 'Task' });
      expect({ name, catch: States[name].Catch }).toEqual({ name, catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record the failed rollback' }] });
    }
    // A failed step is recorded and fails the execution (its alarm tells operators).
    expect(States['Record the failed rollback'].Next).toBe('The rollback failed');
    expect(States['The rollback failed'].Type).toBe('Fail');
    expect(States['Record the rollback that did not settle'].Next).toBe('The rollback did not settle');
    expect(States['Wait for the rollout'].Type).toBe('Wait');
  });
});

describe('workload drift permissions', () => {
  it('lets the detector start only the rollback workflow, and the steps function start none', () => {
    const { stack, template, workloads } = synth();
    const detector = statementsOf(template, stack.resolve(workloads.detector.role.roleArn)['Fn::GetAtt'][0]);
    const steps = statementsOf(template, stack.resolve(workloads.steps.role.roleArn)['Fn::GetAtt'][0]);
    expect(detector.filter((s) => actionsOf(s).some((a) => a.startsWith('states:')))).toEqual([expect.objectContaining({ Effect: 'Allow', Action: 'states:StartExecution', Resource: stack.resolve(workloads.stateMachine.stateMachineArn) })]);
    expect(steps.filter((s) => actionsOf(s).some((a) => a.startsWith('states:')))).toEqual([]);
  });

  it('lets both functions read the published desired-state object (and only it), with no wildcard action', () => {
    const { stack, template, workloads } = synth();
    const object = stack.resolve(workloads.desiredState.bucket.arnForObjects(workloads.desiredState.s3ObjectKey));
    for (const fn of [workloads.detector, workloads.steps]) {
      const own = statementsOf(template, stack.resolve(fn.role.roleArn)['Fn::GetAtt'][0]);
      expect(own.length).toBeGreaterThan(0);
      expect({ fn: fn.node.id, s3: own.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:'))) }).toEqual({ fn: fn.node.id, s3: [expect.objectContaining({ Effect: 'Allow', Action: 's3:GetObject', Resource: object })] });
      expect({ fn: fn.node.id, wildcards: own.flatMap(actionsOf).filter((a) => a.includes('*')) }).toEqual({ fn: fn.node.id, wildcards: [] });
    }
  });

  it('limits the writes to the findings table to workload drift items', () => {
    const { stack, template, workloads } = synth();
    const findingsId = Object.keys(template.findResources('AWS::DynamoDB::Table')).find((id) => id.startsWith('StateStoreFindingsTable'))!;
    for (const fn of [workloads.detector, workloads.steps]) {
      const onFindings = statementsOf(template, stack.resolve(fn.role.roleArn)['Fn::GetAtt'][0]).filter((s) => JSON.stringify(s.Resource).includes(findingsId));
      const puts = onFindings.filter((s) => actionsOf(s).includes('dynamodb:PutItem'));
      expect(puts).toEqual([expect.objectContaining({ Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['workload-drift#*'] } } })]);
      expect(onFindings.flatMap(actionsOf).filter((a) => ['dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'].includes(a))).toEqual([]);
    }
    // The drift ids the functions write match the condition.
    expect(driftIdOf('prod-eks', 'apps/Deployment/web/storefront')).toMatch(/^workload-drift#/);
  });
});

describe('EKS access entries', () => {
  it("puts the workload functions' roles in the workload operators' group, and the node functions' in the node operators'", () => {
    const { stack, template, workloads } = synth();
    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties as { ClusterName: string; PrincipalArn: unknown; KubernetesGroups: string[]; Type: string });
    const groupsOf = (roleArn: string) => entries.filter((e) => JSON.stringify(e.PrincipalArn) === JSON.stringify(stack.resolve(roleArn))).map((e) => ({ cluster: e.ClusterName, groups: e.KubernetesGroups, type: e.Type }));
    for (const fn of [workloads.detector, workloads.steps]) expect(groupsOf(fn.role.roleArn)).toEqual([{ cluster: 'prod-eks', groups: [WORKLOADS_GROUP], type: 'STANDARD' }]);
    expect(workloads.accessEntries).toHaveLength(2);
    const nodeRoles = [stack.kubernetes!.drain.role, stack.swaps.nodes!.role];
    for (const role of nodeRoles) expect(groupsOf(role.roleArn)).toEqual([{ cluster: 'prod-eks', groups: [KUBERNETES_GROUP], type: 'STANDARD' }]);
    // No other entry, and no identity in both groups.
    expect(entries).toHaveLength(4);
    expect(entries.filter((e) => e.KubernetesGroups.length !== 1)).toEqual([]);
  });

  it("gives a cluster's access role one entry, in both groups, since every function reaches that cluster as the role", () => {
    // Arrange
    const accessRoleArn = 'arn:aws:iam::123456789012:role/fleetwarden-eks';
    // Act
    const { template } = synth(configWith({ kubernetes: { clusters: [{ ...clusters[0], accessRoleArn }], desiredState: { path: manifests } } }));
    // Assess
    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map((e) => e.Properties as { PrincipalArn: unknown; KubernetesGroups: string[] });
    expect(entries).toEqual([expect.objectContaining({ PrincipalArn: accessRoleArn, KubernetesGroups: [KUBERNETES_GROUP, WORKLOADS_GROUP] })]);
  });
});

describe('the per-cluster RBAC manifest', () => {
  const documentsOf = (file: string) => parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; rules?: { apiGroups: string[]; resources: string[]; verbs: string[] }[]; subjects?: { kind: string; name: string }[] };
  });

  it('is written in the assembly directory and holds the reader ClusterRole and writer Roles only where declared objects live, never on secrets', () => {
    const { assembly, workloads } = synth();
    const file = path.join(assembly.directory, 'Fleetwarden.prod-eks.workload-rbac.yaml');
    expect(existsSync(file)).toBe(true);
    expect(workloads.rbacFiles['prod-eks']).toBe(file);
    const docs = documentsOf(file);
    expect(docs.filter((d) => d.kind === 'ClusterRole').map((d) => d.metadata.name)).toEqual([WORKLOAD_READER_ROLE]);
    const roles = docs.filter((d) => d.kind === 'Role');
    // The fixture declares namespaced objects in web only (the Namespace and PriorityClass are cluster-scoped).
    expect(roles.map((d) => `${d.metadata.namespace}/${d.metadata.name}`)).toEqual([`web/${WORKLOAD_WRITER_ROLE}`]);
    const rules = docs.flatMap((d) => d.rules ?? []);
    expect(rules.length).toBeGreaterThan(0);
    expect(rules.filter((r) => r.resources.some((res) => res === 'secrets' || res.includes('*')) || r.verbs.includes('*'))).toEqual([]);
    // Every binding names the workload operators' group, the one their access entries put them in.
    const subjects = docs.flatMap((d) => d.subjects ?? []);
    expect(subjects.length).toBe(docs.filter((d) => d.kind.endsWith('Binding')).length);
    expect(subjects.every((s) => s.kind === 'Group' && s.name === WORKLOADS_GROUP)).toBe(true);
  });

  it('gives no Role in a protected namespace even when objects are declared there', () => {
    // Prepare: a second checkout with an object declared in kube-system too.
    const other = mkdtempSync(path.join(tmpdir(), 'fleetwarden-workloads-protected-'));
    try {
      const dir = path.join(other, 'manifests', 'clusters');
      cpSync(path.join(PROJECT_ROOT, 'test', 'fixtures', 'desired-state', 'clusters'), dir, { recursive: true });
      mkdirSync(path.join(dir, 'prod-eks', 'system'));
      writeFileSync(path.join(dir, 'prod-eks', 'system', 'coredns.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: coredns-custom\n  namespace: kube-system\ndata:\n  log.override: log\n');
      commitAll(other, 'storefront and coredns');
      // Act
      const { workloads } = synth({ ...base, kubernetes: { clusters, desiredState: { path: dir } } });
      // Assess
      const docs = documentsOf(workloads.rbacFiles['prod-eks']!);
      expect(docs.filter((d) => d.kind === 'Role' || d.kind === 'RoleBinding').map((d) => d.metadata.namespace)).toEqual(['web', 'web']);
      expect(docs.some((d) => d.metadata.namespace === 'kube-system')).toBe(false);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('workload drift config', () => {
  it('refuses a rule with an unknown action, naming its path', () => {
    const raw = { ...base, policies: { drift: { workloads: { rules: [{ action: 'delete' }] } } } };
    expect(() => parseConfig(raw)).toThrow(ConfigError);
    expect(() => parseConfig(raw)).toThrow('fleetwarden.policies.drift.workloads.rules[0].action');
    expect(() => buildApp({ skipBundling: true, nag: false, config: { ...configWith(), policies: raw.policies } })).toThrow(/fleetwarden\.policies\.drift\.workloads\.rules\[0\]\.action/);
  });
});

describe('outputs', () => {
  it('names the detector and the rollback workflow for the operator CLI', () => {
    const { stack, template, workloads } = synth();
    expect(template.findOutputs('WorkloadDriftDetectorName').WorkloadDriftDetectorName?.Value).toEqual(stack.resolve(workloads.detector.fn.functionName));
    expect(template.findOutputs('WorkloadRollbackStateMachineArn').WorkloadRollbackStateMachineArn?.Value).toEqual(stack.resolve(workloads.stateMachine.stateMachineArn));
  });
});
