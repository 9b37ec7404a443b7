import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Stack, Stage } from 'aws-cdk-lib';
import { Asset } from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import type { DesiredState } from '../../functions/workloads/desired-state';

export interface WorkloadsProps {
  /** The validated desired state with its provenance (lib/workloads/desired-state.ts, `loadDesiredState`). */
  desiredState: DesiredState;
}

/**
 * Kubernetes workloads declared in git. The desired state is published by `cdk deploy` as an S3
 * asset (the JSON of `DesiredStateSchema`, content-addressed: a new commit or manifest is a new
 * object) for the drift functions to read; it is not `deployTime`, so asset garbage collection
 * keeps it while the stack refers to it.
 */
export class Workloads extends Construct {
  readonly desiredState: Asset;
  /** Where the drift functions read the desired state. */
  readonly desiredStateBucketName: string;
  readonly desiredStateObjectKey: string;

  constructor(scope: Construct, id: string, props: WorkloadsProps) {
    super(scope, id);
    // Written into the cloud assembly directory (cdk.out), beside the template it belongs to.
    const outdir = Stage.of(this)?.outdir ?? path.resolve('cdk.out');
    const file = path.join(outdir, `${Stack.of(this).artifactId}.desired-state.json`);
    mkdirSync(outdir, { recursive: true });
    writeFileSync(file, `${JSON.stringify(props.desiredState, null, 2)}\n`);
    this.desiredState = new Asset(this, 'DesiredState', { path: file });
    this.desiredStateBucketName = this.desiredState.s3BucketName;
    this.desiredStateObjectKey = this.desiredState.s3ObjectKey;
  }
}
