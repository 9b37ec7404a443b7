import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP proxy in front of moto that counts AWS API calls by operation: the bench's
 * "AWS API calls per unit of work" are counted on the wire, whatever client made them.
 */
export interface CountingProxy {
  endpoint: string;
  counts(): Record<string, number>;
  total(): number;
  reset(): void;
  stop(): Promise<void>;
}

function operationOf(method: string, url: string, headers: Record<string, string | string[] | undefined>, body: string): string {
  const target = headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop()!; // JSON protocols: DynamoDB, EventBridge, SQS, KMS…
  const action = /(?:^|[?&])Action=([A-Za-z]+)/.exec(url)?.[1] ?? /(?:^|&)Action=([A-Za-z]+)/.exec(body)?.[1];
  if (action) return action; // query protocols: EC2, STS, SNS, Auto Scaling…
  // REST (S3): a listing is a GET too, but S3 bills it as a LIST request.
  if (method === 'GET' && /[?&]list-type=2(?:&|$)/.test(url)) return 'S3:LIST';
  return `S3:${method}`;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const upstream = new URL(target);
  const counts = new Map<string, number>();
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const op = operationOf(req.method ?? 'GET', req.url ?? '/', req.headers, body.toString('utf8', 0, Math.min(body.length, 4096)));
      counts.set(op, (counts.get(op) ?? 0) + 1);
      const forward = request(
        { hostname: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      forward.on('error', (e) => {
        res.writeHead(502);
        res.end(String(e));
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    counts: () => Object.fromEntries([...counts].sort(([, a], [, b]) => b - a)),
    total: () => [...counts.values()].reduce((a, b) => a + b, 0),
    reset: () => counts.clear(),
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
