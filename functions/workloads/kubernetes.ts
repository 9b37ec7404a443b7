import * as https from 'node:https';
import { gunzipSync } from 'node:zlib';
import type { KubeConfig } from '@kubernetes/client-node';
import { classify, statusOf } from '../kubernetes/errors';
import type { ApplyOptions, ClusterWorkloads, KubeObject, ObjectRef } from './port';

/** An API error shaped as @kubernetes/client-node's ApiException (`code`, `body`), so `classify` names it. */
class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
    what: string,
  ) {
    super(`${what}: HTTP ${code}`);
  }
}

interface Resource {
  plural: string;
  namespaced: boolean;
}

const PAGE = 500;

export interface KubernetesWorkloadsOptions {
  /** A fresh kubeconfig after a 401 (an expired EKS token); the request is retried once with it. */
  reauthenticate?: () => Promise<KubeConfig>;
}

/**
 * ClusterWorkloads over the API server's REST API, with the JSON left as the server wrote it
 * (the typed client converts timestamps and drops unknown fields, which a comparison must not).
 * Kinds are resolved to resources by discovery, once per group version and connection.
 */
export class KubernetesWorkloads implements ClusterWorkloads {
  private resources = new Map<string, Promise<Map<string, Resource>>>();
  private sent = 0;

  constructor(
    private kubeConfig: KubeConfig,
    private readonly options: KubernetesWorkloadsOptions = {},
  ) {}

  get requests(): number {
    return this.sent;
  }

  async list(apiVersion: string, kind: string): Promise<KubeObject[]> {
    const resource = await this.resource(apiVersion, kind);
    const items: KubeObject[] = [];
    let token: string | undefined;
    do {
      const query = new URLSearchParams({ limit: String(PAGE), ...(token ? { continue: token } : {}) });
      const page = (await this.request('GET', `${base(apiVersion)}/${resource.plural}?${query}`, `list ${kind}`)) as { items?: KubeObject[]; metadata?: { continue?: string } };
      for (const item of page.items ?? []) items.push({ ...item, apiVersion, kind });
      token = page.metadata?.continue || undefined;
    } while (token);
    return items;
  }

  async get(ref: ObjectRef): Promise<KubeObject | undefined> {
    try {
      return (await this.request('GET', await this.path(ref), `read ${describe(ref)}`)) as KubeObject;
    } catch (error) {
      if (statusOf(error) === 404) return undefined;
      throw error;
    }
  }

  async apply(manifest: KubeObject, options: ApplyOptions): Promise<KubeObject> {
    const ref = refOf(manifest);
    const query = new URLSearchParams({ fieldManager: options.fieldManager, ...(options.force ? { force: 'true' } : {}), ...(options.dryRun ? { dryRun: 'All' } : {}) });
    const what = `${options.dryRun ? 'dry-run apply' : 'apply'} ${describe(ref)}`;
    return (await this.request('PATCH', `${await this.path(ref)}?${query}`, what, manifest, 'application/apply-patch+yaml')) as KubeObject;
  }

  async delete(ref: ObjectRef, uid: string): Promise<'deleted' | 'absent' | 'replaced'> {
    try {
      await this.request('DELETE', await this.path(ref), `delete ${describe(ref)}`, { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { uid }, propagationPolicy: 'Foreground' });
      return 'deleted';
    } catch (error) {
      if (statusOf(error) === 404) return 'absent';
      // 409: the uid precondition failed, so the name now holds another object.
      if (statusOf(error) === 409) return 'replaced';
      throw error;
    }
  }

  private async path(ref: ObjectRef): Promise<string> {
    const resource = await this.resource(ref.apiVersion, ref.kind);
    const ns = resource.namespaced ? `/namespaces/${encodeURIComponent(ref.namespace ?? '')}` : '';
    return `${base(ref.apiVersion)}${ns}/${resource.plural}/${encodeURIComponent(ref.name)}`;
  }

  private async resource(apiVersion: string, kind: string): Promise<Resource> {
    let discovered = this.resources.get(apiVersion);
    if (!discovered) {
      discovered = this.request('GET', base(apiVersion), `discover ${apiVersion}`).then((list) => {
        const byKind = new Map<string, Resource>();
        for (const r of (list as { resources?: { name: string; kind: string; namespaced: boolean }[] }).resources ?? []) {
          if (!r.name.includes('/')) byKind.set(r.kind, { plural: r.name, namespaced: r.namespaced });
        }
        return byKind;
      });
      discovered.catch(() => this.resources.delete(apiVersion));
      this.resources.set(apiVersion, discovered);
    }
    const resource = (await discovered).get(kind);
    if (!resource) throw classify(new ApiError(404, `the server has no kind ${kind} in ${apiVersion}`, `discover ${apiVersion}`), `discover ${kind}`);
    return resource;
  }

  private async request(method: string, path: string, what: string, body?: unknown, contentType = 'application/json'): Promise<unknown> {
    try {
      return await this.send(method, path, what, body, contentType);
    } catch (error) {
      if (statusOf(error) === 401 && this.options.reauthenticate) {
        this.kubeConfig = await this.options.reauthenticate();
        try {
          return await this.send(method, path, what, body, contentType);
        } catch (again) {
          throw expected(again) ? again : classify(again, what);
        }
      }
      throw expected(error) ? error : classify(error, what);
    }
  }

  private async send(method: string, path: string, what: string, body: unknown, contentType: string): Promise<unknown> {
    const cluster = this.kubeConfig.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(path, cluster.server);
    // gzip: a list of 2,000 Deployments is 6.6 MB as JSON and 0.3 MB compressed, every cycle.
    const options: https.RequestOptions = { method, headers: { accept: 'application/json', 'accept-encoding': 'gzip', ...(body === undefined ? {} : { 'content-type': contentType }) } };
    await this.kubeConfig.applyToHTTPSOptions(options);
    this.sent += 1;
    return new Promise((resolve, reject) => {
      const req = https.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let raw = Buffer.concat(chunks);
          try {
            if (res.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
          } catch (error) {
            reject(error as Error);
            return;
          }
          const text = raw.toString('utf8');
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            // not JSON: kept as text for the error
          }
          if ((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300) resolve(parsed);
          else reject(new ApiError(res.statusCode ?? 0, parsed, what));
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.setTimeout(30_000, () => req.destroy(new Error(`${what}: no answer in 30 s`)));
      if (body !== undefined) req.write(JSON.stringify(body));
      req.end();
    });
  }
}

/** 404 and 409 are answers the callers above turn into outcomes. */
const expected = (error: unknown) => statusOf(error) === 404 || statusOf(error) === 409;

const base = (apiVersion: string) => (apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`);

export const refOf = (o: KubeObject): ObjectRef => ({
  apiVersion: o.apiVersion ?? '',
  kind: o.kind ?? '',
  namespace: o.metadata?.namespace ?? null,
  name: o.metadata?.name ?? '',
});

export const describe = (ref: ObjectRef) => `${ref.kind} ${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`;
