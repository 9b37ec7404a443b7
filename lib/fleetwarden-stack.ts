import { CfnOutput, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import type { FleetwardenConfig } from './config';
import { Enforcement } from './constructs/enforcement';
import { Waste } from './constructs/waste';
import { InterruptionIntelligence } from './constructs/interruption';
import { KubernetesNodes } from './constructs/kubernetes';
import { LedgerAudit } from './constructs/ledger';
import { NodeDrift, wantsNodeDrift } from './constructs/drift';
import { NodeSwap } from './constructs/swap';
import { Notifications } from './constructs/notifications';
import { DoctorAccess } from './constructs/doctor';
import { Operations } from './constructs/operations';
import { StateStore } from './constructs/state-store';
import { SwapBatch } from './constructs/batch';
import { Workloads } from './constructs/workloads';
import { loadDesiredState } from './workloads/desired-state';

export interface FleetwardenStackProps extends StackProps {
  config: FleetwardenConfig;
}

/** Wiring only: each capability is one construct, given what it needs from the others. */
export class FleetwardenStack extends Stack {
  readonly store: StateStore;
  readonly ledger: LedgerAudit;
  readonly interruptions: InterruptionIntelligence;
  readonly enforcement: Enforcement;
  readonly waste: Waste;
  readonly swaps: NodeSwap;
  readonly batches: SwapBatch;
  readonly drift?: NodeDrift;
  readonly kubernetes?: KubernetesNodes;
  readonly workloads?: Workloads;

  constructor(scope: Construct, id: string, props: FleetwardenStackProps) {
    super(scope, id, props);
    const { config } = props;
    Tags.of(this).add('ManagedBy', 'fleetwarden');

    this.store = new StateStore(this, 'StateStore', { config });
    this.ledger = new LedgerAudit(this, 'Ledger', { config, store: this.store });
    this.interruptions = new InterruptionIntelligence(this, 'Interruptions', { config, store: this.store });
    this.enforcement = new Enforcement(this, 'Enforcement', { config, store: this.store });
    this.waste = new Waste(this, 'Waste', { config, store: this.store });
    this.swaps = new NodeSwap(this, 'Swaps', { config, store: this.store });
    this.batches = new SwapBatch(this, 'SwapBatch', { config, store: this.store, swap: this.swaps.stateMachine });
    if (wantsNodeDrift(config)) this.drift = new NodeDrift(this, 'NodeDrift', { config, store: this.store, batch: this.batches.stateMachine });
    if (config.kubernetes.clusters.length) this.kubernetes = new KubernetesNodes(this, 'KubernetesNodes', { config, store: this.store });
    const desiredState = loadDesiredState(config);
    if (desiredState) this.workloads = new Workloads(this, 'Workloads', { config, store: this.store, desiredState });
    const doctor = new DoctorAccess(this, 'Doctor', { config });
    const notifications = new Notifications(this, 'Notifications', { config, store: this.store });
    const operations = new Operations(this, 'Operations', { config, store: this.store, ledger: this.ledger, interruptions: this.interruptions, enforcement: this.enforcement, waste: this.waste, swaps: this.swaps, batches: this.batches, drift: this.drift, kubernetes: this.kubernetes, workloads: this.workloads });

    // The operator CLI finds the stack's resources through these outputs.
    const outputs: Record<string, string> = {
      LedgerTableName: this.store.tables.ledger.tableName,
      ArchiveBucketName: this.ledger.archive.bucketName,
      DigestSigningKeyArn: this.ledger.signingKey.keyArn,
      EventBusName: this.store.bus.eventBusName,
      NotificationTopicArn: this.store.topic.topicArn,
      LedgerDigestStateMachineArn: this.ledger.stateMachine.stateMachineArn,
      PoolRiskTableName: this.store.tables.poolRisk.tableName,
      InterruptionQueueUrl: this.interruptions.queue.queue.queueUrl,
      AuthorizationsTableName: this.store.tables.authorizations.tableName,
      EnforcementQueueUrl: this.enforcement.queue.queue.queueUrl,
      EnforcementSweepStateMachineArn: this.enforcement.stateMachine.stateMachineArn,
      FindingsTableName: this.store.tables.findings.tableName,
      WasteScanStateMachineArn: this.waste.stateMachine.stateMachineArn,
      NodeSwapStateMachineArn: this.swaps.stateMachine.stateMachineArn,
      SwapBatchStateMachineArn: this.batches.stateMachine.stateMachineArn,
      ...(this.kubernetes ? { NodeDrainQueueUrl: this.kubernetes.queue.queue.queueUrl } : {}),
      // `fleetwarden status`: every dead-letter queue (any output named *DeadLetterQueueUrl), what
      // acts and what only records (functions/shared/operating-mode.ts reads it), and whether node drift is deployed.
      AsyncDeadLetterQueueUrl: this.store.asyncDeadLetters.queue.queueUrl,
      InterruptionDeadLetterQueueUrl: this.interruptions.queue.deadLetterQueue.queueUrl,
      EnforcementDeadLetterQueueUrl: this.enforcement.queue.deadLetterQueue.queueUrl,
      LedgerArchiveDeadLetterQueueUrl: this.ledger.archiveDeadLetters.queue.queueUrl,
      ...(this.kubernetes ? { NodeDrainDeadLetterQueueUrl: this.kubernetes.queue.deadLetterQueue.queueUrl } : {}),
      ...(notifications.deadLetters ? { NotificationDeadLetterQueueUrl: notifications.deadLetters.queue.queueUrl } : {}),
      OperatingMode: JSON.stringify({
        dryRun: config.dryRun,
        enforcementActions: config.policies.enforcement.actions,
        wasteCleanup: config.policies.waste.cleanup.byEnvironment,
        quarantine: config.policies.quarantine,
      }),
      ...(this.drift ? { NodeDriftDetectorName: this.drift.detector.fn.functionName } : {}),
      DashboardName: operations.dashboard.dashboardName,
      // `fleetwarden doctor` reaches member accounts through it.
      DoctorRoleArn: doctor.role.roleArn,
      // `fleetwarden doctor`: where the member stack must be, what it forwards to, what the home bus must accept.
      MemberAccess: this.toJsonString({
        homeAccount: this.account,
        homeRegion: config.homeRegion,
        homeBusArn: `arn:${this.partition}:events:${this.region}:${this.account}:event-bus/default`,
        memberRoleName: config.memberRoleName,
        ...(config.organizations.id ? { organizationId: config.organizations.id } : {}),
        regions: config.regions,
        accounts: config.accounts.map((a) => ({ id: a.id, name: a.name, ...(a.regions ? { regions: a.regions } : {}) })),
      }),
      // The drift functions and `fleetwarden bloodline` read the declared workloads there.
      ...(this.workloads
        ? {
            DesiredStateObjectUrl: this.workloads.desiredState.s3ObjectUrl,
            WorkloadDriftDetectorName: this.workloads.detector.fn.functionName,
            WorkloadRollbackStateMachineArn: this.workloads.stateMachine.stateMachineArn,
          }
        : {}),
      ...(config.kubernetes.clusters.length ? { KubernetesClusters: JSON.stringify(config.kubernetes.clusters) } : {}),
    };
    for (const [name, value] of Object.entries(outputs)) new CfnOutput(this, name, { value });
  }
}
