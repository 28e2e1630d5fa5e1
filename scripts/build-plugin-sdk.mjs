// Builds the plugin SDK (lambda/sdk) into lib/sdk, the entry point `cdk-orchestrator/lib/sdk` of the
// npm package: index.js (one CommonJS bundle; the AWS SDK v3 is left to the Lambda runtime) and its
// declarations (lambda/sdk's own .d.ts files, which must import nothing outside lib/sdk, so a
// consumer needs no other types). Called by bundle-handlers.mjs, before jsii compiles src/ into lib/.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

const POWERTOOLS = '@aws-lambda-powertools/';

export async function buildPluginSdk(root) {
  const sdkDir = join(root, 'lambda', 'sdk');
  const outDir = join(root, 'lib', 'sdk');
  mkdirSync(outDir, { recursive: true });

  // The handlers trace their clients with Powertools (lambda/shared/observability.ts); a plugin's
  // function has no Powertools, so the SDK's bundle gets lambda/sdk/untraced.ts in its place.
  const untraced = {
    name: 'untraced',
    setup(b) {
      b.onResolve({ filter: /^\.\/observability$/ }, (args) => (args.importer.startsWith(join(root, 'lambda', 'shared'))
        ? { path: join(sdkDir, 'untraced.ts') } : undefined));
    },
  };
  const outfile = join(outDir, 'index.js');
  const tmpfile = join(outDir, `.index.${process.pid}.js`);
  const { metafile } = await build({
    entryPoints: [join(sdkDir, 'index.ts')],
    outfile: tmpfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // Readable in a plugin's stack traces; the plugin's own bundler may minify it.
    minify: false,
    sourcemap: false,
    external: ['@aws-sdk/*'],
    plugins: [untraced],
    metafile: true,
    logLevel: 'warning',
  });
  const forbidden = Object.keys(metafile.inputs).filter((input) => input.includes(POWERTOOLS) || input.endsWith('shared/observability.ts'));
  if (forbidden.length > 0) throw new Error(`The plugin SDK must not bundle Powertools or the handlers' observability: ${forbidden.join(', ')}`);
  renameSync(tmpfile, outfile);
  console.log(`bundle ${'plugin SDK (lib/sdk)'.padEnd(24)} ${(statSync(outfile).size / 1024).toFixed(1).padStart(7)} KB`);

  buildDeclarations(root, sdkDir, outDir);
}

/**
 * lambda/sdk/*.d.ts into lib/sdk, skipped when newer than lambda/sdk (they declare only lambda/sdk's
 * own types, so changes in lambda/shared cannot change them; tsc takes seconds on every test run).
 */
function buildDeclarations(root, sdkDir, outDir) {
  const sources = readdirSync(sdkDir).filter((f) => f.endsWith('.ts')).map((f) => join(sdkDir, f));
  const newestSource = Math.max(...sources.map((file) => statSync(file).mtimeMs), statSync(join(sdkDir, 'tsconfig.json')).mtimeMs);
  const index = join(outDir, 'index.d.ts');
  if (existsSync(index) && statSync(index).mtimeMs > newestSource) return;

  const tmp = mkdtempSync(join(tmpdir(), 'plugin-sdk-dts-'));
  try {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    execFileSync(process.execPath, [tsc, '-p', join(sdkDir, 'tsconfig.json'), '--outDir', tmp], { cwd: root, stdio: 'inherit' });
    const emitted = join(tmp, 'lambda', 'sdk');
    const files = readdirSync(emitted).filter((f) => f.endsWith('.d.ts'));
    for (const file of files) {
      // Code only: the TSDoc examples import `cdk-orchestrator/lib/sdk`.
      const text = readFileSync(join(emitted, file), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
      const outside = [...text.matchAll(/(?:from\s+|import\()\s*['"]([^'"]+)['"]/g)].map((m) => m[1]).filter((spec) => !/^\.\/[\w-]+$/.test(spec));
      if (outside.length > 0) {
        throw new Error(`lib/sdk/${file} imports ${outside.join(', ')}: the SDK's public types must be declared in lambda/sdk (types.ts) so its declarations stand alone`);
      }
    }
    // Keep the public files only: untraced.ts is an implementation detail of the bundle.
    for (const file of files.filter((f) => f !== 'untraced.d.ts')) {
      const tmpOut = join(outDir, `.${basename(file)}.${process.pid}`);
      writeFileSync(tmpOut, readFileSync(join(emitted, file)));
      renameSync(tmpOut, join(outDir, file));
    }
    console.log(`bundle ${'plugin SDK declarations'.padEnd(24)} ${files.length - 1} files in lib/sdk`);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
