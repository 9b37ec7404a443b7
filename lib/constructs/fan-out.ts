import type { Duration } from 'aws-cdk-lib';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import type { FleetwardenConfig } from '../config';
import { logicStep } from './fleet-state-machine';
import { sweepTargets } from './runtime-config';

/** Account-regions one fan-out step covers (a few at once inside the function). */
export const TARGETS_PER_BATCH = 10;
/** Batches in flight: reads scale with them, but every change they record appends to the one ledger chain. */
export const BATCHES_AT_ONCE = 10;

/** Every configured account-region, in batches of TARGETS_PER_BATCH, as the workflow's first state carries them. */
export function targetBatches(config: FleetwardenConfig): { targets: { account: string; region: string }[] }[] {
  const all = sweepTargets(config);
  return Array.from({ length: Math.ceil(all.length / TARGETS_PER_BATCH) }, (_, i) => ({ targets: all.slice(i * TARGETS_PER_BATCH, (i + 1) * TARGETS_PER_BATCH) }));
}

export interface FanOutProps {
  fn: lambda.IFunction;
  /** The function's input for one batch; `$.runId` and `$.targets` are in the item. */
  payload: Record<string, unknown>;
  /** A report of nothing, in the shape the step returns: a batch whose step failed reports its targets failed in it. */
  emptyReport: Record<string, unknown>;
  names: { map: string; step: string; failed: string; take: string };
  runIdField: string;
  timeout: Duration;
}

/**
 * The Map over `$.batches` that runs one step per batch of account-regions and collects their
 * reports into `$.reports`. A batch whose function failed (timeout, crash) is reported failed as
 * a whole, with its error; the other batches go on.
 */
export function fanOutMap(scope: Construct, props: FanOutProps): sfn.Map {
  const step = logicStep(scope, props.names.step, props.fn, props.payload, '$.report', props.timeout);
  const { failed: _none, ...empty } = props.emptyReport;
  const failed = new sfn.Pass(scope, props.names.failed, {
    parameters: { ...empty, targets: 0, 'failed.$': '$.targets', 'batchError.$': "States.Format('{}: {}', $.error.Error, $.error.Cause)" },
  });
  step.addCatch(failed, { errors: ['States.ALL'], resultPath: '$.error' });
  step.next(new sfn.Pass(scope, props.names.take, { inputPath: '$.report' }));
  const map = new sfn.Map(scope, props.names.map, {
    itemsPath: '$.batches',
    itemSelector: { [`${props.runIdField}.$`]: `$.${props.runIdField}`, 'targets.$': '$$.Map.Item.Value.targets' },
    maxConcurrency: BATCHES_AT_ONCE,
    resultPath: '$.reports',
  });
  map.itemProcessor(step);
  return map;
}
