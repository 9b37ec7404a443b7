/**
 * Loopback proxies for the NTH comparison (scripts/bench/nth.ts), each recording every call it
 * carries with its start and end time:
 * - an AWS proxy between NTH and moto. moto runs one request at a time (test/emulators/
 *   moto_serial.py), so NTH's 20 s SQS long poll would freeze every other AWS call for 20 s. The
 *   proxy answers a long poll as SQS does (as soon as a message is there, else after
 *   WaitTimeSeconds) by asking moto with short polls, every POLL_MS and at once when told a message
 *   was sent (`kick`). It also routes SQS calls to the account that owns the queue URL (moto picks
 *   the account from the caller's credentials only; AWS from the URL), so NTH, with credentials of
 *   the cluster's account, reads a queue of another account as a queue policy would allow.
 * - an HTTPS proxy in front of kube-apiserver, one per client identity: it presents the
 *   apiserver's own certificate (same CA, so clients verify it as they would the apiserver),
 *   passes bearer tokens through, and, for a client-certificate identity, speaks to the apiserver
 *   with that identity's certificate (TLS ends at the proxy). Calls are named `verb resource`.
 */
import { type IncomingHttpHeaders, createServer, request } from 'node:http';
import { Agent, createServer as createHttpsServer, request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';

export interface CallRecord {
  /** performance.now() when the request arrived and when its response ended */
  start: number;
  end: number;
  op: string;
  status: number;
  /** SQS ReceiveMessage only: messages returned */
  messages?: number;
}

interface Recorder {
  calls(): CallRecord[];
  counts(since?: number): Record<string, number>;
  reset(): void;
}

function recorder(): Recorder & { push(c: CallRecord): void } {
  let calls: CallRecord[] = [];
  return {
    push: (c) => calls.push(c),
    calls: () => [...calls],
    counts: (since = -Infinity) => {
      const counts = new Map<string, number>();
      for (const c of calls) if (c.end >= since) counts.set(c.op, (counts.get(c.op) ?? 0) + 1);
      return Object.fromEntries([...counts].sort(([a, x], [b, y]) => y - x || a.localeCompare(b)));
    },
    reset: () => (calls = []),
  };
}

export interface AwsProxy extends Recorder {
  endpoint: string;
  /** A message was just sent: pending long polls look again now. */
  kick(): void;
  /** Long polls waiting for a message right now. */
  pendingLongPolls(): number;
  stop(): Promise<void>;
}

const POLL_MS = 250;

function awsOperation(headers: IncomingHttpHeaders, body: string): string {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop()!; // JSON protocols (SQS)
  return /(?:^|&)Action=([A-Za-z]+)/.exec(body)?.[1] ?? 'unknown'; // query protocols (EC2, ASG)
}

export async function startAwsProxy(target: string): Promise<AwsProxy> {
  const upstream = new URL(target);
  const log = recorder();
  const waiters = new Set<() => void>();
  let stopping = false;

  const forward = (method: string, url: string, headers: IncomingHttpHeaders, body: Buffer) =>
    new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      const req = request({ hostname: upstream.hostname, port: upstream.port, method, path: url, headers: { ...headers, 'content-length': String(body.length) } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end(body);
    });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const start = performance.now();
        let body = Buffer.concat(chunks);
        const op = awsOperation(req.headers, body.toString('utf8'));
        const headers = { ...req.headers };
        let json: { QueueUrl?: string; WaitTimeSeconds?: number } | undefined;
        if (String(req.headers['x-amz-target'] ?? '').startsWith('AmazonSQS.')) {
          json = JSON.parse(body.toString('utf8') || '{}') as { QueueUrl?: string; WaitTimeSeconds?: number };
          const owner = /^https?:\/\/[^/]+\/(\d{12})\//.exec(json.QueueUrl ?? '')?.[1];
          if (owner) headers['x-moto-account-id'] = owner;
        }
        const waitSeconds = op === 'ReceiveMessage' ? Number(json?.WaitTimeSeconds ?? 0) : 0;
        if (waitSeconds > 0) body = Buffer.from(JSON.stringify({ ...json, WaitTimeSeconds: 0 }));
        const deadline = start + waitSeconds * 1000;
        let out = await forward(req.method ?? 'POST', req.url ?? '/', headers, body);
        let messages: number | undefined;
        for (;;) {
          if (op !== 'ReceiveMessage' || out.status !== 200) break;
          messages = (JSON.parse(out.body.toString('utf8') || '{}') as { Messages?: unknown[] }).Messages?.length ?? 0;
          if (messages > 0 || stopping || performance.now() >= deadline) break;
          await new Promise<void>((resolve) => {
            const wake = () => {
              clearTimeout(timer);
              waiters.delete(wake);
              resolve();
            };
            const timer = setTimeout(wake, Math.min(POLL_MS, Math.max(0, deadline - performance.now())));
            waiters.add(wake);
          });
          out = await forward(req.method ?? 'POST', req.url ?? '/', headers, body);
        }
        res.writeHead(out.status, { ...out.headers, 'content-length': String(out.body.length) });
        res.end(out.body);
        log.push({ start, end: performance.now(), op, status: out.status, ...(messages === undefined ? {} : { messages }) });
      })().catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(502);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    ...log,
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    kick: () => [...waiters].forEach((wake) => wake()),
    pendingLongPolls: () => waiters.size,
    stop: async () => {
      stopping = true;
      [...waiters].forEach((wake) => wake());
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export interface KubeProxy extends Recorder {
  server: string;
  port: number;
  stop(): Promise<void>;
}

/** `verb resource[/subresource]` as the apiserver's audit log names a request; `discovery` for /api, /apis… */
export function kubeOperation(method: string, url: string): string {
  const u = new URL(url, 'https://apiserver');
  const parts = u.pathname.split('/').filter(Boolean);
  const base = parts[0] === 'api' ? 2 : parts[0] === 'apis' ? 3 : -1;
  if (base < 0) return `${method} ${u.pathname}`;
  if (parts.length <= base) return 'discovery';
  let rest = parts.slice(base);
  if (rest[0] === 'namespaces' && rest.length > 2) rest = rest.slice(2);
  const [resource, name, sub] = rest;
  const verb =
    method === 'GET' ? (name ? 'get' : u.searchParams.get('watch') === 'true' ? 'watch' : 'list')
    : method === 'POST' ? 'create'
    : method === 'PATCH' ? 'patch'
    : method === 'PUT' ? 'update'
    : method === 'DELETE' ? (name ? 'delete' : 'deletecollection')
    : method.toLowerCase();
  return `${verb} ${resource}${sub ? `/${sub}` : ''}`;
}

export async function startKubeProxy(options: { upstream: string; ca: string; serverCert: string; serverKey: string; clientCert?: string; clientKey?: string }): Promise<KubeProxy> {
  const upstream = new URL(options.upstream);
  const log = recorder();
  // Kept-alive TLS connections to the apiserver, as a direct client would hold.
  const agent = new Agent({ keepAlive: true, maxSockets: 100, ca: options.ca, cert: options.clientCert, key: options.clientKey });
  const server = createHttpsServer({ cert: options.serverCert, key: options.serverKey }, (req, res) => {
    const start = performance.now();
    const op = kubeOperation(req.method ?? 'GET', req.url ?? '/');
    const headers = { ...req.headers, host: upstream.host };
    delete headers.connection;
    const forward = httpsRequest({ hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers, agent }, (up) => {
      res.writeHead(up.statusCode ?? 502, up.headers);
      up.pipe(res);
      up.on('end', () => log.push({ start, end: performance.now(), op, status: up.statusCode ?? 0 }));
    });
    forward.on('error', (error) => {
      log.push({ start, end: performance.now(), op, status: 502 });
      if (!res.headersSent) res.writeHead(502);
      res.end(String(error));
    });
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    ...log,
    server: `https://127.0.0.1:${port}`,
    port,
    stop: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
