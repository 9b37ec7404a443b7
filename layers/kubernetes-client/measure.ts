/**
 * Should the cluster-facing functions get @kubernetes/client-node from a Lambda layer, or bundle
 * it? Measured, not guessed: `npx tsx layers/kubernetes-client/measure.ts` writes
 * layers/kubernetes-client/measurement.json.
 *
 * - bundled: the NodeDrain handler bundled exactly as the FleetFunction construct bundles it
 *   (esbuild, ESM, minified, node22), client included;
 * - layer: the same bundle with @kubernetes/client-node external, plus a layer zip of
 *   `nodejs/node_modules` holding the client and its production dependencies (npm install).
 * Sizes are zip bytes (what Lambda stores and downloads) and unzipped bytes. Cold init is the
 * module load in a fresh Node 22 process, median of 9, with the layer's node_modules next to
 * the bundle (where Node's ESM resolution finds it; see the note on /opt below).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from 'esbuild';
import { PROJECT_ROOT } from '../../lib/paths';

const ENTRY = path.join(PROJECT_ROOT, 'functions', 'kubernetes', 'drain', 'handler.ts');
const BANNER = "import { createRequire as __fwCreateRequire } from 'node:module'; const require = __fwCreateRequire(import.meta.url);";
const RUNS = 9;

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(full) : statSync(full).size;
  }
  return total;
}

function zipBytes(dir: string, what: string[]): number {
  const out = path.join(dir, '..', `${path.basename(dir)}.zip`);
  rmSync(out, { force: true });
  execFileSync('zip', ['-qr9', out, ...what], { cwd: dir });
  return statSync(out).size;
}

async function bundle(outdir: string, external: string[]): Promise<void> {
  await build({
    entryPoints: [ENTRY],
    bundle: true,
    outfile: path.join(outdir, 'index.mjs'),
    platform: 'node',
    target: 'node22',
    format: 'esm',
    minify: true,
    sourcemap: true,
    sourcesContent: false,
    mainFields: ['module', 'main'],
    banner: { js: BANNER },
    external,
    logLevel: 'error',
  });
}

function coldInitMs(dir: string): { median: number; min: number; max: number } {
  const times: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const ms = execFileSync('node', ['--input-type=module', '-e', `const t=performance.now(); await import(${JSON.stringify(path.join(dir, 'index.mjs'))}); console.log(performance.now()-t)`], {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, AWS_REGION: 'us-east-1' },
    });
    times.push(Number(ms.trim()));
  }
  const round = (n: number) => Number(n.toFixed(1));
  return { median: round(median(times)), min: round(Math.min(...times)), max: round(Math.max(...times)) };
}

async function main() {
  const work = mkdtempSync(path.join(tmpdir(), 'fleetwarden-layer-'));
  try {
    const version = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'node_modules', '@kubernetes', 'client-node', 'package.json'), 'utf8')).version as string;

    const bundled = path.join(work, 'bundled');
    mkdirSync(bundled);
    await bundle(bundled, []);

    const thin = path.join(work, 'thin');
    mkdirSync(thin);
    await bundle(thin, ['@kubernetes/client-node']);

    // The layer: what `npm install` puts under nodejs/node_modules for the client alone.
    const layer = path.join(work, 'layer');
    mkdirSync(path.join(layer, 'nodejs'), { recursive: true });
    writeFileSync(path.join(layer, 'nodejs', 'package.json'), JSON.stringify({ name: 'kubernetes-client-layer', private: true, dependencies: { '@kubernetes/client-node': version } }));
    execFileSync('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: path.join(layer, 'nodejs'), stdio: ['ignore', 'ignore', 'inherit'] });

    // Function + layer as Lambda would load them: node_modules resolvable from the bundle.
    const withLayer = path.join(work, 'with-layer');
    cpSync(thin, withLayer, { recursive: true });
    cpSync(path.join(layer, 'nodejs', 'node_modules'), path.join(withLayer, 'node_modules'), { recursive: true });

    const bundledZip = zipBytes(bundled, ['index.mjs', 'index.mjs.map']);
    const thinZip = zipBytes(thin, ['index.mjs', 'index.mjs.map']);
    const layerZip = zipBytes(layer, ['nodejs']);
    const result = {
      measuredAt: new Date().toISOString(),
      node: process.version,
      client: `@kubernetes/client-node@${version}`,
      bundled: {
        functionZipBytes: bundledZip,
        functionUnzippedBytes: dirBytes(bundled) - 0,
        coldInitMs: coldInitMs(bundled),
      },
      layer: {
        functionZipBytes: thinZip,
        functionUnzippedBytes: dirBytes(thin),
        layerZipBytes: layerZip,
        layerUnzippedBytes: dirBytes(path.join(layer, 'nodejs')),
        totalZipBytes: thinZip + layerZip,
        coldInitMs: coldInitMs(withLayer),
      },
    };
    const file = path.join(PROJECT_ROOT, 'layers', 'kubernetes-client', 'measurement.json');
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
