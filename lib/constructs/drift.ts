import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { NodeDriftEnvSchema } from '../../functions/drift/handler/env';
import type { FleetwardenConfig } from '../config';
import { acknowledge } from '../nag';
import { FleetFunction } from './fleet-function';
import type { StateStore } from './state-store';

export interface NodeDriftProps {
  config: FleetwardenConfig;
  store: StateStore;
  /** The batch swap state machine the detector starts (input: BatchRequestSchema). */
  batch: sfn.IStateMachine;
}

/** Whether any configured group asks for drift repair (the stack creates NodeDrift only then). */
export const wantsNodeDrift = (config: FleetwardenConfig): boolean => config.swaps.groups.some((g) => g.driftRepair);

/**
 * Node drift: every `policies.drift.cycleMinutes` the detector compares each InService
 * instance of the groups with driftRepair to its group's launch template version and AMI,
 * records and announces new drift, and starts one batch swap of the drifted instances (a
 * deterministic execution name, so a repeated detection does not start a second batch).
 */
export class NodeDrift extends Construct {
  readonly detector: FleetFunction;
  readonly schedule: events.Rule;

  constructor(scope: Construct, id: string, props: NodeDriftProps) {
    super(scope, id);
    const { config, store, batch } = props;
    const minutes = config.policies.drift.cycleMinutes;

    this.detector = new FleetFunction(this, 'NodeDriftDetector', {
      entry: 'functions/drift/handler/handler.ts',
      description: 'Detects node drift (launch template version, AMI) and starts the batch swap that repairs it',
      envSchema: NodeDriftEnvSchema,
      environment: {
        SWAP_GROUPS: JSON.stringify(config.swaps.groups),
        BATCH_STATE_MACHINE_ARN: batch.stateMachineArn,
        LEDGER_TABLE_NAME: store.tables.ledger.tableName,
        EVENT_BUS_NAME: store.bus.eventBusName,
      },
      config,
      timeout: driftCycleTimeout(minutes),
      memorySize: 256,
    });
    this.detector.allow(['autoscaling:DescribeAutoScalingGroups', 'ec2:DescribeLaunchTemplateVersions', 'ec2:DescribeInstances'], ['*']);
    this.detector.allow(['states:StartExecution', 'states:ListExecutions'], [batch.stateMachineArn]);
    store.grantLedgerAppend(this.detector.role);
    store.grantDataKey(this.detector.role);
    this.detector.allow(['events:PutEvents'], [store.bus.eventBusArn]);
    acknowledge(
      this.detector,
      'AwsSolutions-IAM5',
      'DescribeAutoScalingGroups, DescribeLaunchTemplateVersions and DescribeInstances support no resource-level permissions; the actions are read-only and explicit.',
      ['Resource::*'],
    );

    this.schedule = scheduleDriftCycle(this, this.detector, store, minutes, 'Node drift');
  }
}

/** A drift detector's timeout: shorter than a cycle, so that cycles do not pile up behind a slow one. */
export const driftCycleTimeout = (minutes: number): Duration => Duration.seconds(Math.min(55, minutes * 60 - 5));

/**
 * Runs a drift detector every `minutes`. Nothing retries a drift cycle: the next one, a cycle
 * later, is the retry (every effect is idempotent). EventBridge hands the event to Lambda once (a
 * failed hand-over goes to the dead-letter queue), and Lambda does not run a failed cycle again
 * (its default is 2 retries, which would overlap the next cycles): the failure goes to the same
 * dead-letter queue, whose alarm tells operators.
 */
export function scheduleDriftCycle(scope: Construct, detector: FleetFunction, store: StateStore, minutes: number, what: string): events.Rule {
  const deadLetters = store.asyncDeadLetters.queue;
  const rule = new events.Rule(scope, 'Schedule', {
    description: `${what} cycle every ${minutes} minute${minutes === 1 ? '' : 's'}`,
    schedule: events.Schedule.rate(Duration.minutes(minutes)),
    targets: [new targets.LambdaFunction(detector.fn, { deadLetterQueue: deadLetters, retryAttempts: 0, maxEventAge: Duration.minutes(minutes) })],
  });
  detector.fn.configureAsyncInvoke({
    retryAttempts: 0,
    maxEventAge: Duration.minutes(minutes),
    // Sent with the function's role: SendMessage here, the data key through the store's grant.
    onFailure: { bind: () => ({ destination: deadLetters.queueArn }) },
  });
  detector.allow(['sqs:SendMessage'], [deadLetters.queueArn]);
  return rule;
}
