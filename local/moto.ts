import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import * as path from 'node:path';
import { PROJECT_ROOT } from '../lib/paths';

/**
 * moto in server mode, started from the project's own venv (scripts/run.sh creates it), on a
 * free loopback port. The real AWS SDK clients reach it through FLEETWARDEN_AWS_ENDPOINT.
 */
export interface MotoServer {
  endpoint: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

export async function startMoto(options: { timeoutMs?: number } = {}): Promise<MotoServer> {
  const python = path.join(PROJECT_ROOT, '.venv', 'bin', 'python');
  if (!existsSync(python)) {
    throw new Error(`moto is not installed in ${path.dirname(python)}: run through \`npm test\` / \`npm run demo\`, which create the venv`);
  }
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  // Single-threaded, so each request is atomic as in DynamoDB (see test/emulators/moto_serial.py).
  const child = spawn(python, [path.join(PROJECT_ROOT, 'test', 'emulators', 'moto_serial.py'), '127.0.0.1', String(port)], {
    env: { ...process.env, MOTO_EC2_LOAD_DEFAULT_AMIS: 'false' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr = (stderr + chunk.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const stop = () => stopChild(child, exited);
  // Never leave moto behind, whatever way this process ends.
  process.once('exit', () => child.kill('SIGKILL'));

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`moto exited with ${child.exitCode}:\n${stderr}`);
    try {
      const response = await fetch(`${endpoint}/moto-api/data.json`);
      if (response.ok) return { endpoint, stop };
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`moto did not answer on ${endpoint} within ${options.timeoutMs ?? 30_000} ms:\n${stderr}`);
}

async function stopChild(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
  await exited;
  clearTimeout(timer);
}

/** Environment that points the SDK clients (ours and the handlers') at moto. */
export function motoEnvironment(endpoint: string): Record<string, string> {
  return {
    FLEETWARDEN_AWS_ENDPOINT: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_DEFAULT_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  };
}
