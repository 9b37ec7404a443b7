import type { LedgerWriter } from '../ledger/store';
import type { EventPublisher } from '../shared/bus';
import type { DesiredState } from './desired-state';
import type { DriftStore } from './drift-store';
import type { WorkloadDriftPolicy } from './policy';

/**
 * What workload drift does with a cluster's objects, as a small port: the drift cycle, the
 * rollback workflow and `fleetwarden bloodline` depend on it; the adapter (kubernetes.ts) speaks
 * the API server's JSON. Objects are plain JSON exactly as the server sent them.
 */

export type KubeObject = Record<string, unknown> & {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    generation?: number;
    creationTimestamp?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences?: { apiVersion: string; kind: string; name: string; uid?: string; controller?: boolean }[];
    managedFields?: { manager?: string; operation?: string; time?: string; subresource?: string }[];
  };
};

export interface ObjectRef {
  apiVersion: string;
  kind: string;
  /** null for cluster-scoped kinds. */
  namespace: string | null;
  name: string;
}

export interface ApplyOptions {
  /** Ask the server what the object would become, change nothing. */
  dryRun: boolean;
  fieldManager: string;
  /** Take over fields another manager owns (a rollback undoes an edit), as `kubectl apply --server-side --force-conflicts`. */
  force: boolean;
}

export interface ClusterWorkloads {
  /** Every object of the kind in the cluster (all namespaces), read page by page. */
  list(apiVersion: string, kind: string): Promise<KubeObject[]>;
  get(ref: ObjectRef): Promise<KubeObject | undefined>;
  /** Server-side apply of a full manifest: the object as the server stored it (or would, in a dry run). */
  apply(manifest: KubeObject, options: ApplyOptions): Promise<KubeObject>;
  /** Deletes the object if it still has this uid (a replacement under the same name is left alone). */
  delete(ref: ObjectRef, uid: string): Promise<'deleted' | 'absent' | 'replaced'>;
  /** API requests sent so far (the bench counts them). */
  readonly requests: number;
}

/** What both workload drift functions work with (each builds it from its environment, `wiring.ts`). */
export interface WorkloadPorts {
  /** The published desired state (read from its S3 asset). */
  desiredState(): Promise<DesiredState>;
  connect(cluster: string): Promise<ClusterWorkloads>;
  drifts: DriftStore;
  ledger: LedgerWriter;
  publisher: EventPublisher;
  policy: WorkloadDriftPolicy;
}

/** Fleetwarden's field manager in server-side apply: `metadata.managedFields` names it as the writer. */
export const FIELD_MANAGER = 'fleetwarden';
/** Annotation a rollback stamps on the objects it applies: the commit that declared them. */
export const COMMIT_ANNOTATION = 'fleetwarden.io/commit';
