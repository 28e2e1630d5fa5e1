/**
 * The package cdk-orchestrator-local declares what it needs: every package its sources import,
 * every AWS SDK client the orchestrator's handler bundles require (the Lambda runtime's, provided
 * locally by the packages installed with the engine), and Powertools at exactly the release the
 * handlers were bundled with. No import leaves the package except into lambda/shared (compiled in).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const manifest = JSON.parse(readFileSync(join(ROOT, 'local', 'package.json'), 'utf8'));
const declared = new Set([
  ...Object.keys(manifest.dependencies ?? {}), ...Object.keys(manifest.optionalDependencies ?? {}), ...Object.keys(manifest.peerDependencies ?? {}),
]);
/** The IAM evaluator (local/src/engine/iam/evaluator.ts): AGPL-3.0-or-later, so optional and never part of what the library publishes. */
const AGPL_EVALUATOR = ['@cloud-copilot/iam-simulate', '@cloud-copilot/iam-policy'];

function files(dir: string, ext: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path, ext) : path.endsWith(ext) ? [path] : [];
  });
}

/** Module specifiers of imports and requires (static and `require('x')`), outside comments and template sources. */
function specifiers(source: string): string[] {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const found = [...code.matchAll(/(?:from\s+|require\(\s*|import\(\s*)['"]([^'"]+)['"]/g)].map((m) => m[1]);
  return found.filter((s) => !s.startsWith('node:') && !builtinModules.includes(s));
}

function packageName(specifier: string): string {
  return specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0];
}

describe('local/package.json', () => {
  const sources = files(join(ROOT, 'local', 'src'), '.ts');

  test('declares every package the engine imports', () => {
    const used = new Set(sources.flatMap((f) => specifiers(readFileSync(f, 'utf8')).filter((s) => !s.startsWith('.')).map(packageName)));
    expect(used.size).toBeGreaterThan(3);
    expect([...used].filter((p) => !declared.has(p))).toEqual([]);
  });

  test('relative imports stay in the package or reach lambda/shared, which compiles into it', () => {
    const outside = sources.flatMap((f) => specifiers(readFileSync(f, 'utf8')).filter((s) => s.startsWith('.'))
      .map((s) => relative(ROOT, resolve(dirname(f), s)))
      .filter((target) => !target.startsWith(join('local', 'src')) && !target.startsWith(join('lambda', 'shared'))));
    expect(outside).toEqual([]);
  });

  test('declares every AWS SDK client and Powertools package the handler bundles require', () => {
    const bundles = files(join(ROOT, 'assets', 'handlers'), '.js');
    expect(bundles.length).toBeGreaterThan(5);
    const required = new Set(bundles.flatMap((f) => [...readFileSync(f, 'utf8').matchAll(/require\("(@aws-(?:sdk|lambda-powertools)\/[^"]+)"\)/g)].map((m) => packageName(m[1]))));
    expect([...required].filter((p) => !declared.has(p))).toEqual([]);
  });

  test('pins Powertools to the release the handlers were bundled with', () => {
    const bundled = JSON.parse(readFileSync(join(ROOT, 'assets', 'handlers', 'powertools.json'), 'utf8'));
    for (const name of bundled.packages) expect(`${name}@${manifest.dependencies[name]}`).toBe(`${name}@${bundled.version}`);
  });

  test('the AGPL IAM evaluator is an optional dependency of the engine only: not of the construct library, not in any handler bundle', () => {
    expect(Object.keys(manifest.optionalDependencies ?? {}).sort()).toEqual([...AGPL_EVALUATOR].sort());
    for (const name of AGPL_EVALUATOR) expect(manifest.dependencies?.[name]).toBeUndefined();
    const library = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'bundledDependencies']) {
      for (const name of AGPL_EVALUATOR) expect(library[field]?.[name]).toBeUndefined();
    }
    const bundles = files(join(ROOT, 'assets', 'handlers'), '.js');
    expect(bundles.length).toBeGreaterThan(3);
    for (const bundle of bundles) expect(readFileSync(bundle, 'utf8')).not.toContain('cloud-copilot');
    for (const source of [...files(join(ROOT, 'lambda'), '.ts'), ...files(join(ROOT, 'src'), '.ts')]) {
      expect(readFileSync(source, 'utf8')).not.toContain('@cloud-copilot/');
    }
  });

  test('bin, main, types and the jest hooks point into lib/', () => {
    expect(manifest.bin['cdk-orchestrator-local']).toBe('lib/local/src/cli.js');
    expect(manifest.main).toBe('lib/local/src/index.js');
    expect(manifest.types).toBe('lib/local/src/index.d.ts');
    expect(manifest.exports['./jest-global-setup']).toBe('./lib/local/src/jest/global-setup.js');
    expect(manifest.engines.node).toBe('>=20.16.0');
  });
});
