/**
 * `semver` as the Lambda bundles see it: esbuild replaces that package by this module (an
 * `--alias` in lib/constructs/fleet-function.ts).
 *
 * The only bundled module that requires semver is aws-xray-sdk-core's AWS SDK v2 patcher
 * (`captureAWS`), which checks the v2 SDK's version with `gte`. Fleetwarden traces SDK v3
 * clients through Powertools Tracer and never calls that patcher, yet the package is 29 KB of
 * every bundle. test/infra/bundles.test.ts fails when any other bundled module starts requiring
 * semver, or this one calls more of it than `gte`.
 */

const parts = (version: string): number[] => {
  const match = /^v?(\d+)\.(\d+)\.(\d+)/.exec(version.trim());
  if (!match) throw new TypeError(`Invalid Version: ${version}`);
  return match.slice(1).map(Number);
};

/** Whether `version` is at least `minimum`, comparing major, minor and patch (prerelease tags ignored). */
export function gte(version: string, minimum: string): boolean {
  const [a, b] = [parts(version), parts(minimum)];
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return true;
}

export default { gte };
