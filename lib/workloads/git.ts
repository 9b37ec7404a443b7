import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import type { LastChange } from '../../functions/workloads/desired-state';

/** What synth asks git about the desired state (a port, so that tests can hand in facts). */
export interface DesiredStateGit {
  /** The checkout holding `dir`, or why there is none (no .git, no git binary, no commit yet). */
  checkout(dir: string): { root: string; commit: string } | { unknown: string };
  /** Files under `dir` (absolute paths) that differ from HEAD: modified, staged, untracked, ignored, deleted, renamed. */
  changedFiles(root: string, dir: string): string[];
  /** The commit that last changed `file` (absolute path), or null when no commit holds it. */
  lastChange(root: string, file: string): LastChange | null;
}

function git(cwd: string, args: string[]): string {
  // --no-optional-locks: status must not rewrite the index of a checkout someone is working in.
  return execFileSync('git', ['--no-optional-locks', ...args], { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });
}

const reason = (error: unknown): string => {
  const e = error as { code?: string; stderr?: string; message?: string };
  if (e.code === 'ENOENT') return 'git is not installed';
  return (e.stderr || e.message || String(error)).trim().split('\n')[0]!;
};

/** The `git` binary on PATH. */
export const cliGit: DesiredStateGit = {
  checkout(dir) {
    let root: string;
    try {
      root = git(dir, ['rev-parse', '--show-toplevel']).trim();
    } catch (error) {
      return { unknown: `${dir} is not in a git checkout (${reason(error)})` };
    }
    try {
      return { root, commit: git(root, ['rev-parse', '--verify', 'HEAD']).trim() };
    } catch (error) {
      return { unknown: `the checkout at ${root} has no commit yet (${reason(error)})` };
    }
  },
  changedFiles(root, dir) {
    // -z: paths verbatim; a rename or copy entry is followed by its original path.
    const tokens = git(root, ['status', '--porcelain=v1', '-z', '--untracked-files=all', '--ignored=matching', '--', dir]).split('\0').filter(Boolean);
    const files: string[] = [];
    for (let i = 0; i < tokens.length; i++) {
      const entry = tokens[i]!;
      files.push(path.join(root, entry.slice(3)));
      if (entry[0] === 'R' || entry[0] === 'C') files.push(path.join(root, tokens[++i]!));
    }
    return files;
  },
  lastChange(root, file) {
    const out = git(root, ['log', '-1', '--format=%H%x00%an%x00%ae%x00%aI%x00%cI', '--', file]).trim();
    if (!out) return null;
    const [commit, name, email, authoredAt, committedAt] = out.split('\0') as [string, string, string, string, string];
    return { commit, author: { name, email }, authoredAt, committedAt };
  },
};
