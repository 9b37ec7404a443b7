/**
 * Starting and stopping the local control plane (scripts/k8s/cluster.sh) from TypeScript: the
 * test run's global setup, the demo and the bench use these.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { KubeConfig, KubernetesObjectApi, loadAllYaml, type KubernetesObject } from '@kubernetes/client-node';
import { PROJECT_ROOT } from '../../lib/paths';

const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'k8s', 'cluster.sh');

/**
 * Runs a bash script of the test infrastructure; resolves to its stdout, rejects with its last
 * stderr lines when it fails. `echo` names the prefix of the progress lines shown as they come
 * (a cold build takes many minutes).
 */
export function runScript(script: string, args: string[], options: { echo?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let tail = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => {
      tail = (tail + chunk.toString()).slice(-6000);
      if (options.echo) for (const line of chunk.toString().split('\n')) if (line.startsWith(options.echo)) process.stderr.write(`${line}\n`);
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(stdout.trim());
      else reject(new Error(`${path.relative(PROJECT_ROOT, script)} ${args.join(' ')} exited with ${code}:\n${tail.trim().split('\n').slice(-40).join('\n')}`));
    });
  });
}

/** Runs cluster.sh, showing its `[k8s]` progress lines when asked. */
const run = (args: string[], options: { echo?: boolean } = {}) => runScript(SCRIPT, args, { echo: options.echo ? '[k8s]' : undefined });

/** Builds the binaries if the cache lacks them (minutes, once per version), starts everything, waits until usable. */
export async function clusterUp(dir: string, options: { echo?: boolean } = { echo: true }): Promise<{ kubeconfig: string; server: string; seconds: number }> {
  const started = performance.now();
  await run(['up', dir], options);
  return { kubeconfig: path.join(dir, 'kubeconfig'), server: readFileSync(path.join(dir, 'server'), 'utf8').trim(), seconds: (performance.now() - started) / 1000 };
}

export async function clusterDown(dir: string, options: { sync?: boolean } = {}): Promise<void> {
  if (options.sync) {
    spawnSync('bash', [SCRIPT, 'down', dir], { stdio: 'ignore' });
    return;
  }
  await run(['down', dir]);
}

/** A client-certificate identity `name` in Kubernetes group `group`; returns its kubeconfig path. */
export async function clusterUser(dir: string, name: string, group: string): Promise<string> {
  return run(['user', dir, name, group]);
}

/** Creates (or replaces) every object of a manifest, as the admin. */
export async function applyRbac(adminKubeconfig: string, manifest: string): Promise<void> {
  const kc = new KubeConfig();
  kc.loadFromFile(adminKubeconfig);
  const api = KubernetesObjectApi.makeApiClient(kc);
  for (const object of loadAllYaml(readFileSync(manifest, 'utf8')) as KubernetesObject[]) {
    try {
      await api.create(object);
    } catch (error) {
      if ((error as { code?: number }).code !== 409) throw error;
      await api.replace(object);
    }
  }
}
