/**
 * Comparing a declared manifest with the object the API server holds, on the declared fields only
 * (pure). What the manifest does not declare is the server's or another field manager's: defaulted
 * fields (strategy, imagePullPolicy, terminationMessagePath…), status, and what a mutating webhook
 * or another controller adds (a sidecar container, an annotation) are never compared.
 *
 * Lists follow the API server's merge semantics: the lists Kubernetes merges by a key (containers
 * by name, ports by containerPort, …) are compared item by item for the declared items only; any
 * other list is atomic and compared whole, item by item on the declared fields. Resource
 * quantities compare by value (`1000m` is `1`, `1Gi` is `1073741824`).
 *
 * This is a pre-filter: an object it finds equal is in sync without asking the server; one it
 * finds different is confirmed by a server-side-apply dry run (README, Workloads: drift), which
 * also settles what only the server knows (conversions, a webhook that rewrites a declared field).
 */

export interface Difference {
  /** Dotted path with list items by key, e.g. `spec.template.spec.containers[name=web].image`. */
  path: string;
  declared: unknown;
  /** `undefined`: the live object lacks the field (or the keyed list item). */
  live: unknown;
}

/** Associative lists: the key fields of their items, by the list's field name. */
const MERGE_KEYS: Record<string, string[]> = {
  containers: ['name'],
  initContainers: ['name'],
  ephemeralContainers: ['name'],
  env: ['name'],
  volumes: ['name'],
  volumeMounts: ['mountPath'],
  volumeDevices: ['devicePath'],
  imagePullSecrets: ['name'],
  hostAliases: ['ip'],
  topologySpreadConstraints: ['topologyKey', 'whenUnsatisfiable'],
  resourceClaims: ['name'],
};

/** `ports` merge by containerPort in a container and by port in a Service; both with protocol. */
function mergeKeys(field: string, items: unknown[]): string[] | undefined {
  if (field === 'ports') {
    const first = items.find(isMapping);
    if (first && 'containerPort' in first) return ['containerPort', 'protocol'];
    if (first && 'port' in first) return ['port', 'protocol'];
    return undefined;
  }
  return MERGE_KEYS[field];
}

const isMapping = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** What an omitted key field means to the server (a port's protocol is TCP). */
const keyValue = (item: Record<string, unknown>, key: string): string => String(item[key] ?? (key === 'protocol' ? 'TCP' : ''));
const itemKey = (item: Record<string, unknown>, keys: string[]) => keys.map((k) => keyValue(item, k)).join(',');
const itemLabel = (item: Record<string, unknown>, keys: string[]) =>
  keys
    .filter((k) => k !== 'protocol' || item[k] !== undefined)
    .map((k) => `${k}=${keyValue(item, k)}`)
    .join(',');

const SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes resource quantity's value (`500m` -> 0.5, `1Gi` -> 1073741824), or undefined. */
export function quantity(value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(value.trim());
  if (!match) return undefined;
  return Number(match[1]) * 10 ** Number(match[2] ?? 0) * SUFFIXES[match[3] ?? '']!;
}

/** Under `resources` (limits, requests) and `overhead`, values are quantities (their names may hold dots: `nvidia.com/gpu`). */
const isQuantityPath = (path: string) => /(^|\.)(resources\.(limits|requests)|overhead|capacity|hard)\.[^[\]]+$/.test(path);

function scalarsEqual(declared: unknown, live: unknown, path: string): boolean {
  if (declared === live) return true;
  if (isQuantityPath(path)) {
    const a = quantity(declared);
    const b = quantity(live);
    if (a !== undefined && b !== undefined) return Math.abs(a - b) <= Math.abs(a) * 1e-12;
  }
  return false;
}

const join = (path: string, key: string) => (path ? `${path}.${key}` : key);

/**
 * The differences between a declared value and the live one, on what is declared. A declared
 * `null` asks for the field's absence.
 */
export function declaredDifferences(declared: unknown, live: unknown, path = ''): Difference[] {
  if (declared === null) return live === null || live === undefined ? [] : [{ path, declared, live }];
  if (isMapping(declared)) {
    // An empty mapping (or one of nulls) asks for nothing the server must keep: `nodeSelector: {}` absent live is in sync.
    if (!isMapping(live)) return live === undefined && Object.values(declared).every((v) => v === null) ? [] : [{ path, declared, live }];
    return Object.entries(declared).flatMap(([key, value]) => declaredDifferences(value, live[key], join(path, key)));
  }
  if (Array.isArray(declared)) {
    if (!Array.isArray(live)) return declared.length === 0 && live === undefined ? [] : [{ path, declared, live }];
    const field = path.slice(path.lastIndexOf('.') + 1);
    const keys = mergeKeys(field, declared);
    if (keys && declared.every(isMapping) && live.every(isMapping)) {
      const byKey = new Map(live.map((item) => [itemKey(item, keys), item] as const));
      return declared.flatMap((item) => {
        const itemPath = `${path}[${itemLabel(item, keys)}]`;
        const match = byKey.get(itemKey(item, keys));
        return match ? declaredDifferences(item, match, itemPath) : [{ path: itemPath, declared: item, live: undefined }];
      });
    }
    if (declared.length !== live.length) return [{ path, declared, live }];
    // Atomic: the whole list is the declaring manager's, item by item on the declared fields.
    return declared.some((item, i) => declaredDifferences(item, live[i], `${path}[${i}]`).length) ? [{ path, declared, live }] : [];
  }
  return scalarsEqual(declared, live, path) ? [] : [{ path, declared, live }];
}

/**
 * The live values at the declared fields of `source` (what a dry run returned): the declared
 * manifest as the API server would store it, to compare with the live object by
 * `declaredDifferences`. A declared field the server dropped is left out (it cannot differ).
 */
export function atDeclaredFields(declared: unknown, source: unknown, path = ''): unknown {
  if (isMapping(declared)) {
    if (!isMapping(source)) return source;
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(declared)) {
      if (source[key] === undefined && value !== null) continue;
      out[key] = atDeclaredFields(value, source[key], join(path, key));
    }
    return out;
  }
  if (Array.isArray(declared) && Array.isArray(source)) {
    const field = path.slice(path.lastIndexOf('.') + 1);
    const keys = mergeKeys(field, declared);
    if (keys && declared.every(isMapping) && source.every(isMapping)) {
      const byKey = new Map(source.map((item) => [itemKey(item, keys), item] as const));
      return declared.flatMap((item) => {
        const match = byKey.get(itemKey(item, keys));
        return match ? [atDeclaredFields(item, match, `${path}[]`)] : [];
      });
    }
    return source;
  }
  return source;
}

/** The parts of an object that are state, not declaration: never compared. */
const NOT_DECLARATION = ['status'];
const NOT_DECLARED_METADATA = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'managedFields', 'selfLink', 'ownerReferences', 'deletionTimestamp', 'deletionGracePeriodSeconds'];

/** The declared manifest reduced to what is compared: no apiVersion/kind/status, metadata only labels and annotations. */
export function comparable(manifest: Record<string, unknown>): Record<string, unknown> {
  const { apiVersion: _v, kind: _k, metadata, ...rest } = manifest;
  for (const key of NOT_DECLARATION) delete rest[key];
  const out: Record<string, unknown> = { ...rest };
  if (isMapping(metadata)) {
    const kept = Object.fromEntries(Object.entries(metadata).filter(([key]) => !NOT_DECLARED_METADATA.includes(key)));
    if (Object.keys(kept).length) out.metadata = kept;
  }
  return out;
}

/** Container image paths (`…containers[name=x].image`): a drift only there is image drift. */
export const isImagePath = (path: string) => /(^|\.)(initContainers|containers|ephemeralContainers)\[[^\]]*\]\.image$/.test(path);

/** A difference as one short line: `path: declared -> live`. */
export function describeDifference(d: Difference, max = 120): string {
  const show = (v: unknown) => {
    const text = v === undefined ? '(absent)' : typeof v === 'string' ? v : JSON.stringify(v);
    return text.length > max ? `${text.slice(0, max - 1)}…` : text;
  };
  return `${d.path}: ${show(d.declared)} -> ${show(d.live)}`;
}
