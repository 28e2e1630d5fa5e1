// Bundles every handler entry point in lambda/ (one file per handler, shared code in lambda/shared)
// into assets/handlers/<name>/index.js. The AWS SDK v3 is left external: the Lambda Node.js
// runtime provides it. So is Powertools for AWS Lambda (TypeScript): the handler functions get it
// from AWS's Powertools layer of the version installed here, which this script records in
// assets/handlers/powertools.json for the constructs (src/handlers.ts) to pick that layer.
// Prints each bundle's size so regressions are visible in every build.
import { build } from 'esbuild';
import { readdirSync, statSync, rmSync, renameSync, existsSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, basename, dirname } from 'node:path';
import { buildPluginSdk } from './build-plugin-sdk.mjs';

const root = new URL('..', import.meta.url).pathname;
const lambdaDir = join(root, 'lambda');
const outRoot = join(root, 'assets', 'handlers');
const entries = readdirSync(lambdaDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));
/** Written next to the bundles: the Powertools version they were built and tested with. */
const POWERTOOLS_FILE = 'powertools.json';
const POWERTOOLS_SCOPE = '@aws-lambda-powertools/';
/** The Powertools packages the bundles require (collected from esbuild's metafiles). */
const powertoolsImports = new Set();

// Remove bundles of handlers that no longer exist, but never the directory itself: a test run in
// another process may be reading the bundles while this one rebuilds them.
const names = new Set(entries.map((f) => basename(f, '.ts')));
if (existsSync(outRoot)) {
  for (const dir of readdirSync(outRoot)) if (!names.has(dir) && dir !== POWERTOOLS_FILE) rmSync(join(outRoot, dir), { recursive: true, force: true });
}
for (const file of entries) {
  const name = basename(file, '.ts');
  const outfile = join(outRoot, name, 'index.js');
  const tmpfile = join(outRoot, name, `.index.${process.pid}.js`);
  const { metafile } = await build({
    entryPoints: [join(lambdaDir, file)],
    outfile: tmpfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    minify: true,
    sourcemap: false,
    external: ['@aws-sdk/*', `${POWERTOOLS_SCOPE}*`],
    metafile: true,
    logLevel: 'warning',
  });
  for (const input of Object.values(metafile.inputs)) {
    for (const imported of input.imports) if (imported.external && imported.path.startsWith(POWERTOOLS_SCOPE)) powertoolsImports.add(imported.path);
  }
  renameSync(tmpfile, outfile); // atomic: readers see the old or the new bundle, never half of one
  console.log(`bundle ${name.padEnd(24)} ${(statSync(outfile).size / 1024).toFixed(1).padStart(7)} KB`);
}

// One Powertools version for every package the bundles require: the layer provides one release.
const requireFromRoot = createRequire(join(root, 'package.json'));
const versions = new Map([...powertoolsImports].map((name) => {
  const packageName = name.split('/').slice(0, 2).join('/');
  // Its package.json is not exported: walk up from the entry point the bundles would load.
  let dir = dirname(requireFromRoot.resolve(packageName));
  while (!existsSync(join(dir, 'package.json')) || JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name !== packageName) dir = dirname(dir);
  return [packageName, JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version];
}));
const distinct = [...new Set(versions.values())];
if (distinct.length !== 1) {
  throw new Error(`The handlers must require one Powertools version (the layer holds one release); installed: ${JSON.stringify(Object.fromEntries(versions))}`);
}
mkdirSync(outRoot, { recursive: true });
const powertoolsFile = join(outRoot, POWERTOOLS_FILE);
const powertoolsTmp = join(outRoot, `.${POWERTOOLS_FILE}.${process.pid}`);
writeFileSync(powertoolsTmp, `${JSON.stringify({ version: distinct[0], packages: [...versions.keys()].sort() }, null, 2)}\n`);
renameSync(powertoolsTmp, powertoolsFile);
console.log(`bundle powertools layer version ${distinct[0]} (${[...versions.keys()].sort().join(', ')} external)`);

// The plugin SDK (lambda/sdk is not a handler): lib/sdk/index.js and its declarations, for the npm package.
await buildPluginSdk(root);
