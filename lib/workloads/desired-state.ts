import { existsSync, readdirSync, readFileSync, realpathSync } from 'node:fs';
import * as path from 'node:path';
import {
  type DesiredState,
  type DesiredStateSource,
  type LastChange,
  type ManifestFile,
  desiredState,
  formatProblem,
  refusalToPublish,
  validateDesiredState,
} from '../../functions/workloads/desired-state';
import { ConfigError, type FleetwardenConfig } from '../config';
import { PROJECT_ROOT } from '../paths';
import { type DesiredStateGit, cliGit } from './git';

const isManifest = (name: string) => /\.ya?ml$/i.test(name);

/** Every .yaml/.yml file under `dir` (hidden files and folders skipped), sorted, as absolute paths. */
function manifestFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => !entry.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .flatMap((entry) => {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) return manifestFiles(full);
      return entry.isFile() && isManifest(entry.name) ? [full] : [];
    });
}

export interface LoadOptions {
  /** What a relative `kubernetes.desiredState.path` is relative to (the project, where cdk.json is). */
  projectRoot?: string;
  git?: DesiredStateGit;
}

/**
 * Reads, validates and dates the declared state at synth: the manifests under
 * `kubernetes.desiredState.path` (a folder per cluster), the commit of the checkout and, per file,
 * the commit that last changed it. Returns undefined when there is nothing to publish (no cluster
 * configured, or no manifest file). Throws a ConfigError naming every bad file and the path inside
 * it, or why stage prod refuses (a dirty tree, no git).
 *
 * Dirty means the manifests differ from the commit, not the whole tree: the commit SHA is published
 * as the source of the declared objects, and a change elsewhere (code, cdk.json) does not make them
 * differ from it.
 */
export function loadDesiredState(config: FleetwardenConfig, options: LoadOptions = {}): DesiredState | undefined {
  const clusters = config.kubernetes.clusters.map((c) => c.name);
  const configured = config.kubernetes.desiredState.path;
  const given = path.resolve(options.projectRoot ?? PROJECT_ROOT, configured);
  if (!clusters.length || !existsSync(given)) return undefined;
  // Real path: git reports its checkout's real path (/tmp is a symlink on macOS).
  const dir = realpathSync(given);
  const shown = (file: string) => path.posix.join(configured.split(path.sep).join('/'), path.relative(dir, file).split(path.sep).join('/'));

  const absolute = manifestFiles(dir);
  if (!absolute.length) return undefined;
  const files: ManifestFile[] = absolute.map((file) => {
    const parts = path.relative(dir, file).split(path.sep);
    return { cluster: parts.length > 1 ? parts[0] : undefined, file: shown(file), text: readFileSync(file, 'utf8') };
  });
  const root = shown(dir).replace(/\/$/, '');
  const { objects, problems } = validateDesiredState(files, clusters, root);
  if (problems.length) throw new ConfigError(`Invalid desired state (kubernetes.desiredState.path ${configured}):\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`);

  const git = options.git ?? cliGit;
  const checkout = git.checkout(dir);
  const lastChanges = new Map<string, LastChange>();
  let source: DesiredStateSource;
  if ('unknown' in checkout) {
    source = { provenance: 'unknown', reason: checkout.unknown };
  } else {
    const dirtyFiles = [...new Set(git.changedFiles(checkout.root, dir).filter((f) => isManifest(f) && !path.relative(dir, f).split(path.sep).some((p) => p.startsWith('.'))).map(shown))].sort();
    source = { provenance: 'git', commit: checkout.commit, dirty: dirtyFiles.length > 0, dirtyFiles };
    for (const file of absolute) {
      const change = git.lastChange(checkout.root, file);
      if (change) lastChanges.set(shown(file), change);
    }
  }
  const refusal = refusalToPublish(config.stage, source, configured);
  if (refusal) throw new ConfigError(`Refusing to publish the desired state: ${refusal}`);
  const declared = [...new Set(files.map((f) => f.cluster).filter((c): c is string => c !== undefined))];
  return desiredState({ path: configured, clusters: declared, objects, source, lastChanges });
}
