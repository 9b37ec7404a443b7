import * as z from 'zod';
import { parseAllDocuments } from 'yaml';

/**
 * The desired state of Kubernetes workloads, declared in git (README, Workloads: desired state in
 * git). Pure: `cdk synth` reads the manifest files and git and hands their text and facts in here;
 * the drift functions read the published document back through `DesiredStateSchema`.
 */

/** Annotation that says why an object exists; it is published as the object's `purpose`. */
export const PURPOSE_ANNOTATION = 'fleetwarden.io/purpose';

/**
 * Kinds whose objects have no namespace. Every other kind (custom resources included) is taken to
 * be namespaced and must name its namespace: a manifest relying on kubectl's current context
 * would land wherever the applier happens to point.
 */
export const CLUSTER_SCOPED_KINDS: readonly string[] = [
  'APIService',
  'CSIDriver',
  'CSINode',
  'CertificateSigningRequest',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'FlowSchema',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'Namespace',
  'Node',
  'PersistentVolume',
  'PriorityClass',
  'PriorityLevelConfiguration',
  'RuntimeClass',
  'StorageClass',
  'ValidatingAdmissionPolicy',
  'ValidatingAdmissionPolicyBinding',
  'ValidatingWebhookConfiguration',
  'VolumeAttachment',
];

/** Where a manifest file sits: its cluster folder, and the path a user would look for. */
export interface ManifestFile {
  /** The cluster folder it is in (`undefined`: directly in the desired-state root). */
  cluster: string | undefined;
  /** As shown in errors and published: the configured path joined with the file's place under it. */
  file: string;
  text: string;
}

/** One thing wrong with the declared state, rendered `file: document n: path: message`. */
export interface DesiredStateProblem {
  file: string;
  /** 1-based, counting every `---` document of the file (empty ones too). */
  document?: number;
  /** Dotted path inside the document, e.g. `metadata.namespace`. */
  path?: string;
  message: string;
}

export const formatProblem = (p: DesiredStateProblem): string =>
  [p.file, p.document === undefined ? undefined : `document ${p.document}`, p.path, p.message].filter((part) => part !== undefined).join(': ');

/** A declared object as the manifest says it, before provenance is attached. */
export interface DeclaredDocument {
  cluster: string;
  apiVersion: string;
  kind: string;
  /** `null` for cluster-scoped kinds. */
  namespace: string | null;
  name: string;
  file: string;
  document: number;
  purpose: string | null;
  manifest: Record<string, unknown>;
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
const nonEmptyString = (value: unknown): value is string => typeof value === 'string' && value.trim() !== '';

/** The API group of an apiVersion (`apps/v1` -> `apps`, core `v1` -> ``): versions of one group name the same object. */
export const apiGroup = (apiVersion: string): string => (apiVersion.includes('/') ? apiVersion.slice(0, apiVersion.indexOf('/')) : '');

/** Identity of a declared object within its cluster: group, kind, namespace, name. */
export const objectIdentity = (o: Pick<DeclaredDocument, 'apiVersion' | 'kind' | 'namespace' | 'name'>): string =>
  `${apiGroup(o.apiVersion) || 'core'}/${o.kind} ${o.namespace ? `${o.namespace}/` : ''}${o.name}`;

/** Checks one document's object; returns the declared object or the problems, each with its path. */
function declaredObject(value: unknown, cluster: string, file: string, document: number): { object?: DeclaredDocument; problems: DesiredStateProblem[] } {
  const at = (path: string | undefined, message: string): DesiredStateProblem => ({ file, document, ...(path ? { path } : {}), message });
  if (!isMapping(value)) return { problems: [at(undefined, 'not a Kubernetes object (a mapping with apiVersion, kind and metadata)')] };
  const problems: DesiredStateProblem[] = [];
  const { apiVersion, kind, metadata } = value;
  if (!nonEmptyString(apiVersion)) problems.push(at('apiVersion', 'required'));
  else if (!/^([a-z0-9]([a-z0-9.-]*[a-z0-9])?\/)?[a-z0-9]+$/.test(apiVersion)) problems.push(at('apiVersion', `${apiVersion} is not group/version or version`));
  if (!nonEmptyString(kind)) problems.push(at('kind', 'required'));
  else if (kind === 'List' || (kind.endsWith('List') && Array.isArray(value.items))) return { problems: [...problems, at('kind', `${kind}: declare each item as its own document`)] };
  if (kind === 'Secret' && apiVersion === 'v1') return { problems: [at('kind', 'Secret: Fleetwarden never reads or writes secrets, and git is no place for them (use External Secrets or Sealed Secrets)')] };
  if (!isMapping(metadata)) return { problems: [...problems, at('metadata.name', 'required')] };
  const { name, namespace, generateName, annotations } = metadata;
  if (!nonEmptyString(name)) problems.push(at('metadata.name', generateName === undefined ? 'required' : 'required (a generateName object cannot be found again to compare)'));
  const kindName = nonEmptyString(kind) ? kind : 'this kind';
  const clusterScoped = nonEmptyString(kind) && CLUSTER_SCOPED_KINDS.includes(kind);
  if (clusterScoped && namespace !== undefined) problems.push(at('metadata.namespace', `${kindName} is cluster-scoped: remove the namespace`));
  if (!clusterScoped && !nonEmptyString(namespace)) problems.push(at('metadata.namespace', `required for ${kindName}`));
  let purpose: string | null = null;
  if (annotations !== undefined && annotations !== null) {
    if (!isMapping(annotations)) problems.push(at('metadata.annotations', 'a mapping of strings'));
    else if (annotations[PURPOSE_ANNOTATION] !== undefined) {
      const value = annotations[PURPOSE_ANNOTATION];
      if (typeof value === 'string') purpose = value;
      else problems.push(at(`metadata.annotations["${PURPOSE_ANNOTATION}"]`, 'a string'));
    }
  }
  if (problems.length) return { problems };
  return {
    object: { cluster, apiVersion: apiVersion as string, kind: kind as string, namespace: clusterScoped ? null : (namespace as string), name: name as string, file, document, purpose, manifest: value },
    problems,
  };
}

/** Parses one file's YAML documents (YAML 1.2, duplicate keys refused) into declared objects. */
export function parseManifestFile(manifest: ManifestFile & { cluster: string }): { objects: DeclaredDocument[]; problems: DesiredStateProblem[] } {
  const objects: DeclaredDocument[] = [];
  const problems: DesiredStateProblem[] = [];
  const documents = parseAllDocuments(manifest.text, { prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(documents)) return { objects, problems }; // an empty stream: comments or nothing
  documents.forEach((doc, index) => {
    const document = index + 1;
    if (doc.errors.length) {
      problems.push(...doc.errors.map((error) => ({ file: manifest.file, document, message: error.message.split('\n')[0]!.trim().replace(/:$/, '') })));
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return; // an empty document, which kubectl skips too
    const result = declaredObject(value, manifest.cluster, manifest.file, document);
    problems.push(...result.problems);
    if (result.object) objects.push(result.object);
  });
  return { objects, problems };
}

/**
 * Validates every manifest file of the desired state: each is in the folder of a configured cluster,
 * parses, and each object names apiVersion, kind, metadata.name and (when namespaced) its namespace;
 * no object is declared twice in one cluster (same group, kind, namespace and name, whatever the
 * version). Returns the objects in file and document order, or every problem found.
 */
export function validateDesiredState(files: readonly ManifestFile[], clusters: readonly string[], root: string): { objects: DeclaredDocument[]; problems: DesiredStateProblem[] } {
  const objects: DeclaredDocument[] = [];
  const problems: DesiredStateProblem[] = [];
  const unknownClusters = new Set<string>();
  for (const file of files) {
    if (file.cluster === undefined) {
      problems.push({ file: file.file, message: `not in a cluster's folder: put it under ${root}/<cluster>/` });
      continue;
    }
    if (!clusters.includes(file.cluster)) {
      if (!unknownClusters.has(file.cluster)) {
        unknownClusters.add(file.cluster);
        problems.push({ file: `${root}/${file.cluster}`, message: `no cluster ${file.cluster} in kubernetes.clusters (${clusters.join(', ') || 'none configured'})` });
      }
      continue;
    }
    const parsed = parseManifestFile({ ...file, cluster: file.cluster });
    problems.push(...parsed.problems);
    objects.push(...parsed.objects);
  }
  const seen = new Map<string, DeclaredDocument>();
  for (const object of objects) {
    const key = `${object.cluster}\0${objectIdentity(object)}`;
    const first = seen.get(key);
    if (first) problems.push({ file: object.file, document: object.document, message: `${objectIdentity(object)} is already declared in ${first.file} document ${first.document}` });
    else seen.set(key, object);
  }
  return { objects: problems.length ? [] : objects, problems };
}

/** The commit that last changed a file. */
export const LastChangeSchema = z.strictObject({
  commit: z.string().regex(/^[0-9a-f]{40,64}$/),
  author: z.strictObject({ name: z.string(), email: z.string() }),
  /** When the author wrote the change (`git log %aI`). */
  authoredAt: z.iso.datetime({ offset: true }),
  /** When it was committed where it is now (`git log %cI`; a rebase or cherry-pick moves it). */
  committedAt: z.iso.datetime({ offset: true }),
});
export type LastChange = z.infer<typeof LastChangeSchema>;

/** Where the published state came from: a commit of the checkout, or unknown (no git). */
export const DesiredStateSourceSchema = z.discriminatedUnion('provenance', [
  z.strictObject({
    provenance: z.literal('git'),
    /** `git rev-parse HEAD` of the checkout `cdk deploy` ran in. */
    commit: z.string().regex(/^[0-9a-f]{40,64}$/),
    /** Some manifest file differs from that commit (modified, staged, untracked, ignored or deleted). */
    dirty: z.boolean(),
    dirtyFiles: z.array(z.string()),
  }),
  z.strictObject({ provenance: z.literal('unknown'), reason: z.string() }),
]);
export type DesiredStateSource = z.infer<typeof DesiredStateSourceSchema>;

/** One declared object with its bloodline. */
export const DeclaredObjectSchema = z.strictObject({
  cluster: z.string(),
  apiVersion: z.string(),
  kind: z.string(),
  namespace: z.string().nullable(),
  name: z.string(),
  file: z.string(),
  document: z.number().int().min(1),
  /** The `fleetwarden.io/purpose` annotation, or null. */
  purpose: z.string().nullable(),
  /** null when git is unknown or the file is not committed yet. */
  lastChange: LastChangeSchema.nullable(),
  /** The object exactly as declared. */
  manifest: z.record(z.string(), z.unknown()),
});
export type DeclaredObject = z.infer<typeof DeclaredObjectSchema>;

/**
 * The published desired state (a deploy-time S3 asset; its URL is the stack output
 * `DesiredStateObjectUrl`).
 * @example
 * { "version": 1, "path": "manifests/clusters", "clusters": ["prod-eks"],
 *   "source": { "provenance": "git", "commit": "3f2c…", "dirty": false, "dirtyFiles": [] },
 *   "objects": [{ "cluster": "prod-eks", "apiVersion": "apps/v1", "kind": "Deployment", "namespace": "web", "name": "storefront",
 *     "file": "manifests/clusters/prod-eks/web.yaml", "document": 1, "purpose": "the shop's web tier",
 *     "lastChange": { "commit": "3f2c…", "author": { "name": "Ada", "email": "ada@example.com" }, "authoredAt": "2026-11-02T09:00:00Z", "committedAt": "2026-11-02T09:00:00Z" },
 *     "manifest": { "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "storefront", "namespace": "web" } } }] }
 */
export const DesiredStateSchema = z.strictObject({
  version: z.literal(1),
  /** The configured `kubernetes.desiredState.path`. */
  path: z.string(),
  /** Clusters with a folder of manifests: only these are under desired-state management (a configured cluster without one is not). */
  clusters: z.array(z.string()),
  source: DesiredStateSourceSchema,
  objects: z.array(DeclaredObjectSchema),
});
export type DesiredState = z.infer<typeof DesiredStateSchema>;

/** Attaches provenance to validated objects. `lastChanges` is keyed by the object's `file`. */
export function desiredState(input: {
  path: string;
  clusters: readonly string[];
  objects: readonly DeclaredDocument[];
  source: DesiredStateSource;
  lastChanges: ReadonlyMap<string, LastChange>;
}): DesiredState {
  return {
    version: 1,
    path: input.path,
    clusters: [...input.clusters],
    source: input.source,
    objects: input.objects.map((o) => ({
      cluster: o.cluster,
      apiVersion: o.apiVersion,
      kind: o.kind,
      namespace: o.namespace,
      name: o.name,
      file: o.file,
      document: o.document,
      purpose: o.purpose,
      lastChange: input.lastChanges.get(o.file) ?? null,
      manifest: o.manifest,
    })),
  };
}

/** Why a stage may not publish this state (null: it may). Production publishes only what a commit holds. */
export function refusalToPublish(stage: 'dev' | 'prod', source: DesiredStateSource, path: string): string | null {
  if (stage !== 'prod') return null;
  if (source.provenance === 'unknown') return `stage prod publishes the desired state only from a git checkout, and its provenance is unknown (${source.reason})`;
  if (source.dirty) return `stage prod publishes only committed manifests, and ${path} differs from commit ${source.commit.slice(0, 12)}: ${source.dirtyFiles.join(', ')} (commit them, or remove what is not to be deployed)`;
  return null;
}
