import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { gte } from '../../functions/shared/xray-semver';
import { BUNDLE_ALIASES } from '../../lib/constructs/fleet-function';
import { PROJECT_ROOT } from '../../lib/paths';

/** The bundle the stack stages for one handler, with the same aliases, and esbuild's metafile. */
async function bundle(entry: string) {
  const alias = Object.fromEntries(Object.entries(BUNDLE_ALIASES).map(([from, to]) => [from, path.join(PROJECT_ROOT, to)]));
  const result = await build({
    entryPoints: [path.join(PROJECT_ROOT, entry)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    write: false,
    metafile: true,
    outfile: 'out.mjs',
    alias,
    logLevel: 'silent',
  });
  return result.metafile;
}

describe('bundle aliases', () => {
  it('leave semver required only by the X-Ray SDK v2 patcher, which calls only gte', async () => {
    const meta = await bundle('functions/ledger/digest/handler.ts');
    const inputs = Object.keys(meta.inputs);
    const importers = Object.entries(meta.inputs)
      .filter(([, input]) => input.imports.some((i) => i.original === 'semver'))
      .map(([file]) => file);
    expect(importers).toEqual([expect.stringMatching(/aws-xray-sdk-core\/dist\/lib\/patchers\/aws_p\.js$/)]);
    const calls = new Set([...readFileSync(path.join(PROJECT_ROOT, importers[0]!), 'utf8').matchAll(/\bsemver\.(\w+)/g)].map((m) => m[1]));
    expect([...calls]).toEqual(['gte']);
    expect(inputs.some((f) => /node_modules\/semver\//.test(f))).toBe(false);
    expect(inputs.some((f) => /node_modules\/@aws-sdk\/credential-provider-node\//.test(f))).toBe(false);
    expect(inputs).toContain('functions/shared/lambda-credentials.ts');
  });

  it("compare versions as semver's gte does for plain versions", () => {
    expect(gte('2.1693.0', '2.7.15')).toBe(true);
    expect(gte('2.7.15', '2.7.15')).toBe(true);
    expect(gte('2.7.9', '2.7.15')).toBe(false);
    expect(gte('v3.0.0', '2.99.99')).toBe(true);
    expect(gte('1.10.0', '1.9.0')).toBe(true);
    expect(() => gte('not-a-version', '1.0.0')).toThrow(/Invalid Version/);
  });
});
