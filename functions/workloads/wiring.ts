import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { clusterConnector } from '../kubernetes/connector';
import { DynamoLedger } from '../ledger/store';
import { type AwsClientOptions, awsClient, documentClient } from '../shared/aws';
import { EVENT_SOURCES, EventBridgePublisher } from '../shared/bus';
import { parseOrThrow } from '../shared/validation';
import { type DesiredState, DesiredStateSchema } from './desired-state';
import { DynamoDriftStore } from './drift-store';
import type { WorkloadDriftEnv } from './env';
import { KubernetesWorkloads } from './kubernetes';
import type { WorkloadPorts } from './port';

/** The published desired state (its S3 asset), read and validated. */
export async function readDesiredState(bucket: string, key: string, aws: AwsClientOptions = {}): Promise<DesiredState> {
  const out = await awsClient(S3Client, aws).send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return parseOrThrow(DesiredStateSchema, JSON.parse(await out.Body!.transformToString()), `desired state s3://${bucket}/${key}`);
}

/**
 * The published desired state, read once per object key: the asset is content-addressed (a new
 * commit or manifest is a new key, and a deploy changes the function's environment), so a warm
 * function never reads it twice.
 */
export function s3DesiredState(bucket: string, key: string): () => Promise<DesiredState> {
  let read: Promise<DesiredState> | undefined;
  return () => {
    read ??= readDesiredState(bucket, key);
    read.catch(() => (read = undefined));
    return read;
  };
}

/** What both workload drift functions build from their environment. */
export function workloadDeps(env: WorkloadDriftEnv): WorkloadPorts {
  const ledger = new DynamoLedger(documentClient(), { tableName: env.LEDGER_TABLE_NAME });
  const connector = clusterConnector(env.KUBERNETES_CLUSTERS, (kubeConfig, reauthenticate) => new KubernetesWorkloads(kubeConfig, reauthenticate ? { reauthenticate } : {}));
  return {
    desiredState: s3DesiredState(env.DESIRED_STATE_BUCKET, env.DESIRED_STATE_KEY),
    connect: (cluster) => connector.connect(cluster),
    drifts: new DynamoDriftStore(documentClient(), env.FINDINGS_TABLE_NAME, ledger),
    ledger,
    publisher: new EventBridgePublisher(env.EVENT_BUS_NAME, EVENT_SOURCES.workloads),
    policy: env.WORKLOAD_DRIFT_POLICY,
  };
}
