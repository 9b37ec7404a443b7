import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { verifyChain } from '../../functions/ledger/chain';
import type { DynamoLedger } from '../../functions/ledger/store';
import { clusterDown, clusterUp } from '../k8s/control-plane';
import { Workloads } from '../k8s/workloads';
import type { Timeline } from './timeline';

/** What a chapter with its own control plane gets: its directory (for clusterUser), the admin kubeconfig, the admin helper. */
export interface ControlPlane {
  dir: string;
  kubeconfig: string;
  k8s: Workloads;
}

/**
 * Runs a chapter against a control plane started for it and stopped at its end, whatever
 * happens: the objects it made are cleaned up, and `FLEETWARDEN_KUBECONFIG` (which the chapter
 * points at Fleetwarden's identity in it) is put back as it was.
 */
export async function withControlPlane(timeline: Timeline, name: string, describe: string, chapter: (cluster: ControlPlane) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), `fleetwarden-demo-${name}-`));
  const up = await clusterUp(dir, { echo: false });
  timeline.step('kubernetes', `control plane up in ${up.seconds.toFixed(1)} s at ${up.server}${describe}`);
  const k8s = new Workloads(up.kubeconfig);
  const savedKubeconfig = process.env.FLEETWARDEN_KUBECONFIG;
  try {
    await chapter({ dir, kubeconfig: up.kubeconfig, k8s });
  } finally {
    if (savedKubeconfig === undefined) delete process.env.FLEETWARDEN_KUBECONFIG;
    else process.env.FLEETWARDEN_KUBECONFIG = savedKubeconfig;
    await k8s.cleanup().catch(() => undefined);
    await clusterDown(dir);
    timeline.step('kubernetes', 'control plane stopped');
  }
}

/**
 * A chapter's own deployment's ledger, read whole, each entry handed to `show` (if given), then
 * verified: `this deployment's ledger: N entries, chain intact`.
 */
export async function verifyOwnLedger(ledger: DynamoLedger, timeline: Timeline, show?: (entry: Record<string, unknown>) => void): Promise<void> {
  const all: Record<string, unknown>[] = [];
  for await (const entry of ledger.entries()) all.push(entry);
  if (show) all.forEach(show);
  const verified = verifyChain('fleet', all);
  (verified.ok ? timeline.ok.bind(timeline) : timeline.fail.bind(timeline))(`this deployment's ledger: ${all.length} entries, chain ${verified.ok ? 'intact' : 'BROKEN'}`);
}
