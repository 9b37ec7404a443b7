#!/usr/bin/env node
// postinstall: makes the AWS SDK's generated schema modules tree-shakeable by esbuild again.
//
// Since 3.930.0 the SDK clients describe every shape in dist-es/**/schemas/schemas_N.js, with
// trait objects written with computed keys over the file's string table: `{ [_xN]: _TSa }` where
// `const _xN = "xmlName";`. esbuild treats a computed key as a possible side effect (the key
// expression could run a toString()), so it keeps every such statement: every schema of the
// service, whichever commands the bundle imports (client-ec2: 550 KB in each bundle that sends
// one EC2 command). aws-sdk-js-v3 issue #7607; the fix, smithy-typescript PR #1889, makes the
// code generator write literal keys: `{ "xmlName": _TSa }`. Until an SDK release ships it, this
// script makes the same change in the installed files.
//
// For each schema file under node_modules/@aws-sdk (nested copies too), it replaces
// `[_id]:` by the string constant `_id` stands for, and writes the file only when both versions
// evaluate to the same thing: every export deep-equal (traits, nesting, the lazy `() => X$`
// references) and the same calls into their imports (the error registry), in a sandbox where the
// imports are recording stubs. A file is written whole or not at all.
//
// Safe to run again: a file without computed keys (already rewritten, or generated with literal
// keys) is left alone. When a file no longer has the expected shape (a computed key that is not
// one of its string constants, an import or export form the check does not know, a difference
// between the two evaluations), that file is left untouched, the reason is printed and the
// script exits 1 after the other files: npm ci fails loudly, and whoever upgraded the SDK updates
// this script or removes it (once the SDK's own files have literal keys).
//
// Only the ESM build (dist-es, what esbuild bundles through `module`) is rewritten; Node itself
// (tests, local harness) loads dist-cjs, which is left as shipped.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';

const NODE_MODULES = path.resolve(import.meta.dirname, '..', 'node_modules');
const SCHEMA_FILE = /^schemas_\d+\.js$/;
/** `[_id]:` at the start of an object member (after `{` or `,`): a computed trait key. */
const COMPUTED_KEY = /([{,]\s*)\[([A-Za-z_$][\w$]*)\]:/g;
/** Any other computed member key (a literal, a member expression…): a shape this script does not know. */
const OTHER_COMPUTED_KEY = /[{,]\s*\[(?![A-Za-z_$][\w$]*\]:)[^[\]{}\n]*\]\s*:/;
const has = (pattern, text) => new RegExp(pattern.source).test(text);
/** The file's string table: `const _xN = "xmlName";` (plain strings only, no escapes). */
const STRING_CONSTANT = /^const ([A-Za-z_$][\w$]*) = ("[^"\\\n]*");$/gm;

/** Every @aws-sdk package directory: node_modules/@aws-sdk/* and npm's nested copies. */
function sdkPackages(nodeModules, found = []) {
  if (!existsSync(nodeModules)) return found;
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const dir = path.join(nodeModules, entry.name);
    if (entry.name === '@aws-sdk') {
      for (const pkg of readdirSync(dir, { withFileTypes: true })) {
        if (!pkg.isDirectory()) continue;
        found.push(path.join(dir, pkg.name));
        sdkPackages(path.join(dir, pkg.name, 'node_modules'), found);
      }
    } else if (entry.name.startsWith('@')) {
      for (const pkg of readdirSync(dir, { withFileTypes: true })) {
        if (pkg.isDirectory()) sdkPackages(path.join(dir, pkg.name, 'node_modules'), found);
      }
    } else {
      sdkPackages(path.join(dir, 'node_modules'), found);
    }
  }
  return found;
}

/** dist-es/**\/schemas/schemas_N.js of one package. */
function schemaFiles(dir, found = []) {
  if (!existsSync(dir)) return found;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) schemaFiles(file, found);
    else if (SCHEMA_FILE.test(entry.name) && path.basename(dir) === 'schemas') found.push(file);
  }
  return found;
}

/** The rewritten text, or the reason the file is refused. */
function rewrite(text) {
  if (has(OTHER_COMPUTED_KEY, text)) return { refused: 'a computed key that is not one of the file\'s string constants' };
  const strings = new Map([...text.matchAll(STRING_CONSTANT)].map((m) => [m[1], m[2]]));
  const unknown = new Set();
  let keys = 0;
  const out = text.replace(COMPUTED_KEY, (all, before, id) => {
    const literal = strings.get(id);
    if (literal === undefined || literal === '"__proto__"') {
      unknown.add(id);
      return all;
    }
    keys += 1;
    return `${before}${literal}:`;
  });
  if (unknown.size) return { refused: `computed keys over names that are not plain string constants: ${[...unknown].slice(0, 5).join(', ')}` };
  return { text: out, keys };
}

/**
 * What a schema module evaluates to, as a string: its exports and the calls it makes into its
 * imports (stubs that record them), with shared and recursive references written as paths.
 */
function evaluate(text, filename) {
  const exported = [];
  let body = text.replace(/^import\s*\{([^}]*)\}\s*from\s*("[^"\n]+"|'[^'\n]+');?[ \t]*$/gm, (_, names, spec) => {
    const bindings = names.split(',').map((n) => n.trim()).filter(Boolean).map((n) => n.replace(/^([\w$]+)\s+as\s+([\w$]+)$/, '$1: $2'));
    return `const { ${bindings.join(', ')} } = __import(${spec});`;
  });
  body = body.replace(/^export\s+(var|let|const|function|class)\s+([A-Za-z_$][\w$]*)/gm, (_, kind, name) => {
    exported.push(name);
    return `${kind} ${name}`;
  });
  if (/^\s*(import|export)\b/m.test(body)) throw new Error('an import or export form the check does not know');
  const labels = new WeakMap();
  const calls = [];
  const stub = (label) => {
    const proxy = new Proxy(function () {}, {
      get: (_, prop) => (typeof prop === 'symbol' ? undefined : stub(`${label}.${prop}`)),
      apply: (_, __, args) => (calls.push([label, 'call', args]), stub(`${label}()`)),
      construct: (_, args) => (calls.push([label, 'new', args]), stub(`new ${label}`)),
    });
    labels.set(proxy, label);
    return proxy;
  };
  const importStub = (spec) => new Proxy({}, { get: (_, name) => stub(`${spec}#${String(name)}`) });
  const factory = new vm.Script(`(function (__import) {\n${body}\nreturn { ${exported.join(', ')} };\n})`, { filename }).runInNewContext({});
  const exports = factory(importStub);

  const seen = new Map();
  const write = (value, at) => {
    if (typeof value === 'string') return JSON.stringify(value);
    if (value === null || (typeof value !== 'object' && typeof value !== 'function')) return `${typeof value}:${String(value)}`;
    if (labels.has(value)) return `stub(${labels.get(value)})`;
    if (seen.has(value)) return `ref(${seen.get(value)})`;
    seen.set(value, at);
    // The lazy references (`() => Foo$`) are followed: what they return is compared too.
    if (typeof value === 'function') return `fn(${value.toString()})${value.length === 0 ? `=>${write(value(), `${at}()`)}` : ''}`;
    if (Array.isArray(value)) return `[${value.map((v, i) => write(v, `${at}[${i}]`)).join(',')}]`;
    const proto = Object.getPrototypeOf(value);
    const members = Reflect.ownKeys(value).map((key) => {
      const d = Object.getOwnPropertyDescriptor(value, key);
      const name = typeof key === 'symbol' ? `symbol:${key.description}` : JSON.stringify(key);
      return 'value' in d ? `${name}:${write(d.value, `${at}.${String(key)}`)}` : `${name}:accessor`;
    });
    return `${proto === null ? 'null' : proto.constructor?.name}{${members.join(',')}}`;
  };
  return `${write(exports, 'exports')}\n${write(calls, 'calls')}`;
}

function patch(file) {
  const text = readFileSync(file, 'utf8');
  if (!has(COMPUTED_KEY, text) && !has(OTHER_COMPUTED_KEY, text)) return { status: 'literal' };
  const result = rewrite(text);
  if (result.refused) return { status: 'refused', reason: result.refused };
  let same;
  try {
    same = evaluate(text, file) === evaluate(result.text, file);
  } catch (error) {
    return { status: 'refused', reason: `could not be evaluated for the equivalence check: ${error.message}` };
  }
  if (!same) return { status: 'refused', reason: 'the rewritten module does not evaluate to the same schemas' };
  const tmp = `${file}.fleetwarden-tmp`;
  writeFileSync(tmp, result.text);
  renameSync(tmp, file);
  return { status: 'rewritten', keys: result.keys };
}

const files = sdkPackages(NODE_MODULES).flatMap((pkg) => schemaFiles(path.join(pkg, 'dist-es')));
const tally = { rewritten: 0, literal: 0, keys: 0 };
const refused = [];
for (const file of files) {
  const r = patch(file);
  if (r.status === 'refused') refused.push(`  ${path.relative(NODE_MODULES, file)}: ${r.reason}`);
  else {
    tally[r.status] += 1;
    tally.keys += r.keys ?? 0;
  }
}
console.log(
  `sdk-literal-keys: ${tally.keys} computed keys made literal in ${tally.rewritten} AWS SDK schema files; ${tally.literal} already had literal keys`,
);
if (refused.length) {
  console.error(
    [
      `sdk-literal-keys: ${refused.length} schema files do not have the shape this script rewrites; they were left as shipped:`,
      ...refused,
      'They work as they are, but esbuild keeps every schema of those clients (Lambda bundles grow by up to 550 KB each).',
      'The AWS SDK changed its generated code: update scripts/sdk-literal-keys.mjs to the new shape, or remove it from',
      'package.json "postinstall" if the SDK now writes literal keys itself (smithy-typescript PR #1889).',
    ].join('\n'),
  );
  process.exit(1);
}
