import { Duration, Stack } from 'aws-cdk-lib';
import type * as eks from 'aws-cdk-lib/aws-eks';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { Construct } from 'constructs';
import { nodeDrainPattern } from '../../functions/kubernetes/events';
import { NodeDrainEnvSchema } from '../../functions/kubernetes/drain/env';
import type { FleetwardenConfig } from '../config';
import { accountInFinding, acknowledge } from '../nag';
import { KUBERNETES_GROUP, WORKLOADS_GROUP } from '../kubernetes/rbac';
import { grantClusterAccess } from './eks-access';
import { FleetFunction } from './fleet-function';
import { MEMBER_ROLE_TRUSTEES } from './member-access';
import { FleetQueue } from './fleet-queue';
import type { StateStore } from './state-store';

export interface KubernetesNodesProps {
  config: FleetwardenConfig;
  store: StateStore;
}

/**
 * Interruptions of Kubernetes nodes: a rule on Fleetwarden's own bus takes `InstanceInterrupted` events
 * of instances in the configured clusters -> SQS (+DLQ, alarm) -> the NodeDrain function, which
 * taints, cordons and drains the node through the cluster's API. Each same-account cluster gets
 * an EKS access entry putting the function's identity in the Kubernetes group that
 * manifests/fleetwarden-rbac.yaml binds to the ClusterRole.
 */
export class KubernetesNodes extends Construct {
  readonly queue: FleetQueue;
  readonly drain: FleetFunction;
  readonly rule: events.Rule;
  readonly accessEntries: eks.CfnAccessEntry[] = [];

  constructor(scope: Construct, id: string, props: KubernetesNodesProps) {
    super(scope, id);
    const { config, store } = props;
    const k8s = config.kubernetes;
    // The drain's hard cap, plus time to find the node, taint, cordon and record.
    const timeout = Duration.seconds(k8s.drainTimeoutSeconds + 90);

    this.queue = new FleetQueue(this, 'Events', {
      key: store.key,
      alarmTopic: store.topic,
      // AWS's guidance for a Lambda SQS source: at least 6 × the function timeout (it must never be
      // below it). A transiently failed record is not left to wait this out: the handler sets its
      // visibility to seconds (ChangeMessageVisibility), so the retry lands within the notice.
      visibilityTimeout: Duration.seconds(timeout.toSeconds() * 6),
      maxReceiveCount: 3,
      removalPolicy: store.removalPolicy,
    });
    const pattern = nodeDrainPattern(k8s.clusters.map((c) => c.name));
    this.rule = new events.Rule(this, 'InterruptedNodesRule', {
      description: 'InstanceInterrupted of a node of a configured cluster -> node drain queue',
      eventBus: store.bus,
      eventPattern: { source: pattern.source, detailType: pattern['detail-type'], detail: pattern.detail },
      targets: [new targets.SqsQueue(this.queue.queue, { deadLetterQueue: store.asyncDeadLetters.queue, retryAttempts: 10, maxEventAge: Duration.hours(1) })],
    });

    const { ledger } = store.tables;
    const stack = Stack.of(this);
    this.drain = new FleetFunction(this, 'NodeDrain', {
      entry: 'functions/kubernetes/drain/handler.ts',
      description: 'Taints, cordons and drains the Kubernetes node of an interrupted instance',
      envSchema: NodeDrainEnvSchema,
      environment: {
        LEDGER_TABLE_NAME: ledger.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
        DEAD_LETTER_QUEUE_URL: this.queue.deadLetterQueue.queueUrl,
        EVENTS_QUEUE_URL: this.queue.queue.queueUrl,
        KUBERNETES_CLUSTERS: JSON.stringify(k8s.clusters),
        KUBERNETES_POLICY: JSON.stringify({ rebalance: k8s.rebalance, drainTimeoutSeconds: k8s.drainTimeoutSeconds, doNotDisruptAnnotation: k8s.doNotDisruptAnnotation }),
        HOME_ACCOUNT_ID: stack.account,
        MEMBER_ROLE_NAME: config.memberRoleName,
      },
      config,
      timeout,
      roleName: MEMBER_ROLE_TRUSTEES.kubernetesDrain,
    });
    // No batching window: a Spot notice is two minutes. Records of a batch drain in parallel.
    this.drain.fn.addEventSource(new SqsEventSource(this.queue.queue, { batchSize: 10, reportBatchItemFailures: true }));
    store.grantLedgerAppend(this.drain.role);
    store.grantDataKey(this.drain.role);
    this.drain.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    this.drain.allow(['sqs:SendMessage'], [this.queue.deadLetterQueue.queueArn]);
    this.drain.allow(['sqs:ChangeMessageVisibility'], [this.queue.queue.queueArn]);
    // After the drain of a node whose group terminates it through a lifecycle hook: CONTINUE, in
    // the home account directly, in a member account through its member role.
    this.drain.allow(['autoscaling:CompleteLifecycleAction'], [`arn:${stack.partition}:autoscaling:*:${stack.account}:autoScalingGroup:*:autoScalingGroupName/*`]);
    const memberRoles = config.accounts.filter((a) => a.id !== stack.account).map((a) => `arn:${stack.partition}:iam::${a.id}:role/${config.memberRoleName}`);
    if (memberRoles.length) this.drain.allow(['sts:AssumeRole'], memberRoles);
    acknowledge(
      this.drain,
      'AwsSolutions-IAM5',
      "A node group's Auto Scaling group is named by the lifecycle event, not known at deploy time; CompleteLifecycleAction also needs the action's token from that event.",
      [`Resource::arn:<AWS::Partition>:autoscaling:*:${accountInFinding(this)}:autoScalingGroup:*:autoScalingGroupName/*`],
    );
    // eks:DescribeCluster, the clusters' access roles, and an access entry per cluster of this account and region.
    // An accessRoleArn's entry is this one (one entry per principal and cluster): it also carries
    // the workload drift group, which binds nothing until a cluster's workload RBAC is applied.
    this.accessEntries.push(...grantClusterAccess(this, this.drain.role, k8s.clusters, { accessRoleGroups: [KUBERNETES_GROUP, WORKLOADS_GROUP] }));
  }
}
