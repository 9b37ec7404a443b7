import { execFileSync } from 'node:child_process';

/** Who a commit is by, and when (git's date formats; absent: now). */
export interface Author {
  name: string;
  email: string;
  date?: string;
}

/** The author of the example commits in the tests and the demo. */
export const ADA: Author = { name: 'Ada Lovelace', email: 'ada@example.com', date: '2026-11-02T09:00:00Z' };

/**
 * Runs git in `dir` as `who` (author and committer), isolated from the machine's git
 * configuration (no global or system config, branch main, no signing), so a checkout made for a
 * test or the demo commits the same way everywhere. Returns stdout, trimmed.
 */
export function git(dir: string, args: string[], who: Author = ADA): string {
  const when = who.date ? { GIT_AUTHOR_DATE: who.date, GIT_COMMITTER_DATE: who.date } : {};
  return execFileSync('git', ['-c', 'init.defaultBranch=main', '-c', 'commit.gpgsign=false', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, GIT_CONFIG_GLOBAL: '/dev/null', GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: who.name, GIT_AUTHOR_EMAIL: who.email, GIT_COMMITTER_NAME: who.name, GIT_COMMITTER_EMAIL: who.email, ...when },
  }).trim();
}

/** Makes `dir` a repository holding everything in it, in one commit by `who`; returns the commit's SHA. */
export function commitAll(dir: string, message: string, who: Author = ADA): string {
  git(dir, ['init', '-q'], who);
  git(dir, ['add', '.'], who);
  git(dir, ['commit', '-q', '-m', message], who);
  return git(dir, ['rev-parse', 'HEAD'], who);
}
