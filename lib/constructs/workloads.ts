import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Duration, Stack, Stage } from 'aws-cdk-lib';
import type * as eks from 'aws-cdk-lib/aws-eks';
import type * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { OPEN_FINDINGS_INDEX } from '../../functions/waste/finding-store';
import { ROLLOUT_CHECK_SECONDS } from '../../functions/workloads/cycle';
import type { DesiredState } from '../../functions/workloads/desired-state';
import { WorkloadDriftDetectorEnvSchema, WorkloadDriftEnvSchema } from '../../functions/workloads/env';
import { protectedNamespaces } from '../../functions/workloads/policy';
import type { FleetwardenConfig } from '../config';
import { WORKLOADS_GROUP, workloadRbac, workloadRbacManifest } from '../kubernetes/rbac';
import { acknowledge, logicalIdOf } from '../nag';
import { driftCycleTimeout, scheduleDriftCycle } from './drift';
import { grantClusterAccess } from './eks-access';
import { FleetFunction } from './fleet-function';
import { fleetStateMachine, logicStep } from './fleet-state-machine';
import type { StateStore } from './state-store';

export interface WorkloadsProps {
  config: FleetwardenConfig;
  store: StateStore;
  /** The validated desired state with its provenance (lib/workloads/desired-state.ts, `loadDesiredState`). */
  desiredState: DesiredState;
}

/** Template metadata key listing files the local provisioner uploads where the template expects an asset. */
export const FILE_ASSETS_METADATA_KEY = 'fleetwarden:file-assets';

/**
 * Kubernetes workloads declared in git, kept as declared. The desired state is published by
 * `cdk deploy` as an S3 asset (the JSON of `DesiredStateSchema`, content-addressed: a new commit
 * or manifest is a new object). Every `policies.drift.cycleMinutes` the WorkloadDrift detector
 * compares each cluster with it, opens and closes drifts, and starts the WorkloadRollback workflow
 * where a rule says rollback. Each cluster's RBAC (read what is watched, write only where declared
 * objects live) is written beside the template as `<stack>.<cluster>.workload-rbac.yaml`.
 */
export class Workloads extends Construct {
  readonly desiredState: Asset;
  readonly detector: FleetFunction;
  readonly steps: FleetFunction;
  readonly stateMachine: sfn.StateMachine;
  readonly schedule: events.Rule;
  readonly accessEntries: eks.CfnAccessEntry[] = [];
  /** The RBAC manifest files written at synth, by cluster. */
  readonly rbacFiles: Record<string, string> = {};

  constructor(scope: Construct, id: string, props: WorkloadsProps) {
    super(scope, id);
    const { config, store, desiredState } = props;
    const stack = Stack.of(this);
    const policy = config.policies.drift.workloads;
    const minutes = config.policies.drift.cycleMinutes;

    // Written into the cloud assembly directory (cdk.out), beside the template it belongs to.
    const outdir = Stage.of(this)?.outdir ?? path.resolve('cdk.out');
    mkdirSync(outdir, { recursive: true });
    const file = path.join(outdir, `${stack.artifactId}.desired-state.json`);
    writeFileSync(file, `${JSON.stringify(desiredState, null, 2)}\n`);
    this.desiredState = new Asset(this, 'DesiredState', { path: file });
    stack.templateOptions.metadata = {
      ...stack.templateOptions.metadata,
      [FILE_ASSETS_METADATA_KEY]: [{ path: file, bucket: this.desiredState.s3BucketName, key: this.desiredState.s3ObjectKey }],
    };
    for (const cluster of desiredState.clusters) {
      const rbac = workloadRbac(
        desiredState.objects.filter((o) => o.cluster === cluster),
        protectedNamespaces(policy),
        policy.watchNamespaces,
      );
      this.rbacFiles[cluster] = path.join(outdir, `${stack.artifactId}.${cluster}.workload-rbac.yaml`);
      writeFileSync(this.rbacFiles[cluster], workloadRbacManifest(cluster, rbac));
    }

    const clusters = config.kubernetes.clusters.filter((c) => desiredState.clusters.includes(c.name));
    const environment = {
      DESIRED_STATE_BUCKET: this.desiredState.s3BucketName,
      DESIRED_STATE_KEY: this.desiredState.s3ObjectKey,
      KUBERNETES_CLUSTERS: JSON.stringify(clusters),
      WORKLOAD_DRIFT_POLICY: JSON.stringify(policy),
      FINDINGS_TABLE_NAME: store.tables.findings.tableName,
      LEDGER_TABLE_NAME: store.tables.ledger.tableName,
      EVENT_BUS_NAME: store.bus.eventBusName,
    };
    const findings = store.tables.findings;
    const grant = (fn: FleetFunction) => {
      // The one published object (its key is its content hash), not the bootstrap bucket's `/*` and List*.
      fn.allow(['s3:GetObject'], [this.desiredState.bucket.arnForObjects(this.desiredState.s3ObjectKey)]);
      // What the drift store does (functions/workloads/drift-store.ts): get a drift, put it in the
      // ledger's transaction, list a cluster's open ones on the open-findings index; only on
      // workload drift items (the table also holds the waste findings). The data key below covers its encryption.
      fn.role.addToPrincipalPolicy(
        new iam.PolicyStatement({ actions: ['dynamodb:GetItem', 'dynamodb:PutItem'], resources: [findings.tableArn], conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['workload-drift#*'] } } }),
      );
      fn.allow(['dynamodb:Query'], [`${findings.tableArn}/index/${OPEN_FINDINGS_INDEX.name}`]);
      store.grantLedgerAppend(fn.role);
      store.grantDataKey(fn.role);
      fn.allow(['events:PutEvents'], [store.bus.eventBusArn]);
      // An accessRoleArn's entry is KubernetesNodes' (one entry per principal and cluster), which carries this group too.
      this.accessEntries.push(...grantClusterAccess(fn, fn.role, clusters, { skipAccessRoles: true, groups: [WORKLOADS_GROUP] }));
    };

    this.steps = new FleetFunction(this, 'WorkloadRollbackSteps', {
      entry: 'functions/workloads/steps/handler.ts',
      description: 'Re-applies a declared workload, removes an undeclared one, checks the rollout and records the result',
      envSchema: WorkloadDriftEnvSchema,
      environment,
      config,
      timeout: Duration.seconds(60),
      memorySize: 512,
    });
    grant(this.steps);

    const fn = this.steps.fn;
    const step = (name: string, payload: Record<string, unknown>, resultPath: string) => logicStep(this, name, fn, payload, resultPath, Duration.seconds(60));
    const recordFailed = step('Record the failed rollback', { step: 'record', 'driftId.$': '$.driftId', outcome: 'failed', 'detail.$': '$.error.Error' }, '$.recorded').next(
      new sfn.Fail(this, 'The rollback failed', { error: 'Terminal.RollbackFailed', cause: 'The rollback step failed; the drift stays open and alerted, and is not rolled back again. The failed step names the error.' }),
    );
    const apply = step('Re-check the drift and re-apply the declared object', { step: 'apply', 'driftId.$': '$.driftId' }, '$.action');
    const remove = step('Re-check and remove the undeclared workload', { step: 'remove', 'driftId.$': '$.driftId' }, '$.action');
    const check = step('Check whether the rollout settled', { step: 'check', 'driftId.$': '$.driftId', 'mode.$': '$.mode' }, '$.rollout');
    for (const task of [apply, remove, check]) task.addCatch(recordFailed, { errors: ['States.ALL'], resultPath: '$.error' });
    const wait = new sfn.Wait(this, 'Wait for the rollout', { time: sfn.WaitTime.duration(Duration.seconds(ROLLOUT_CHECK_SECONDS)) });
    const count = new sfn.Pass(this, 'Count the check', { parameters: { 'driftId.$': '$.driftId', 'mode.$': '$.mode', 'checks.$': '$.checks', 'attempt.$': 'States.MathAdd($.attempt, 1)', 'detail.$': '$.detail', 'rollout.$': '$.rollout' } });
    const settled = step('Record the settled rollback', { step: 'record', 'driftId.$': '$.driftId', outcome: 'settled', 'detail.$': '$.detail' }, '$.recorded').next(new sfn.Succeed(this, 'Rolled back'));
    const notSettled = step('Record the rollback that did not settle', { step: 'record', 'driftId.$': '$.driftId', outcome: 'not-settled', 'detail.$': '$.rollout.detail' }, '$.recorded').next(
      new sfn.Fail(this, 'The rollback did not settle', { error: 'Terminal.RolloutNotSettled', cause: `The workload did not settle within policies.drift.workloads.rolloutTimeoutSeconds (${policy.rolloutTimeoutSeconds} s). It was alerted and is not rolled back again: look at the workload (kubectl rollout status).` }),
    );
    const nothing = step('Record that nothing was left to do', { step: 'record', 'driftId.$': '$.driftId', outcome: 'skipped', 'detail.$': '$.action.detail' }, '$.recorded').next(new sfn.Succeed(this, 'Nothing to roll back'));
    const start = new sfn.Pass(this, 'Start counting the checks', { parameters: { 'driftId.$': '$.driftId', 'mode.$': '$.mode', 'checks.$': '$.checks', attempt: 0, 'detail.$': '$.action.detail' } });
    wait.next(check).next(
      new sfn.Choice(this, 'Has the rollout settled?')
        .when(sfn.Condition.booleanEquals('$.rollout.settled', true), settled)
        .otherwise(count.next(new sfn.Choice(this, 'Is the time up?').when(sfn.Condition.numberGreaterThanEqualsJsonPath('$.attempt', '$.checks'), notSettled).otherwise(wait))),
    );
    const changed = new sfn.Choice(this, 'Was anything changed?').when(sfn.Condition.booleanEquals('$.action.done', false), nothing).otherwise(start.next(wait));
    apply.next(changed);
    remove.next(changed);
    const definition = new sfn.Choice(this, 'Remove or re-apply?').when(sfn.Condition.stringEquals('$.mode', 'remove'), remove).otherwise(apply);

    this.stateMachine = fleetStateMachine(this, 'StateMachine', {
      stateMachineName: 'fleetwarden-workload-rollback',
      definition,
      timeout: Duration.seconds(policy.rolloutTimeoutSeconds + 600),
      store,
    });
    acknowledge(this.stateMachine, 'AwsSolutions-IAM5', 'Log delivery and X-Ray support no resource-level permissions; invoke is scoped to one function (":*" covers its versions).', [
      'Resource::*',
      `Resource::<${logicalIdOf(fn)}.Arn>:*`,
    ]);

    this.detector = new FleetFunction(this, 'WorkloadDriftDetector', {
      entry: 'functions/workloads/detect/handler.ts',
      description: 'Compares each cluster with the desired state in git, opens and closes workload drifts, starts rollbacks',
      envSchema: WorkloadDriftDetectorEnvSchema,
      environment: { ...environment, ROLLBACK_STATE_MACHINE_ARN: this.stateMachine.stateMachineArn },
      config,
      timeout: driftCycleTimeout(minutes),
      memorySize: 1024,
    });
    grant(this.detector);
    this.detector.allow(['states:StartExecution'], [this.stateMachine.stateMachineArn]);

    this.schedule = scheduleDriftCycle(this, this.detector, store, minutes, 'Workload drift');
  }
}
