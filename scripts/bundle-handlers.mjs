// Bundles every handler entry point in lambda/ (one file per handler, shared code in lambda/shared)
// into assets/handlers/<name>/index.js. The AWS SDK v3 is left external: the Lambda Node.js
// runtime provides it. Prints each bundle's size so regressions are visible in every build.
import { build } from 'esbuild';
import { readdirSync, statSync, rmSync, renameSync, existsSync } from 'node:fs';
import { join, basename } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const lambdaDir = join(root, 'lambda');
const outRoot = join(root, 'assets', 'handlers');
const entries = readdirSync(lambdaDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));

// Remove bundles of handlers that no longer exist, but never the directory itself: a test run in
// another process may be reading the bundles while this one rebuilds them.
const names = new Set(entries.map((f) => basename(f, '.ts')));
if (existsSync(outRoot)) {
  for (const dir of readdirSync(outRoot)) if (!names.has(dir)) rmSync(join(outRoot, dir), { recursive: true, force: true });
}
for (const file of entries) {
  const name = basename(file, '.ts');
  const outfile = join(outRoot, name, 'index.js');
  const tmpfile = join(outRoot, name, `.index.${process.pid}.js`);
  await build({
    entryPoints: [join(lambdaDir, file)],
    outfile: tmpfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  renameSync(tmpfile, outfile); // atomic: readers see the old or the new bundle, never half of one
  console.log(`bundle ${name.padEnd(24)} ${(statSync(outfile).size / 1024).toFixed(1).padStart(7)} KB`);
}
