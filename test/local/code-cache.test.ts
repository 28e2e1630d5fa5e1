/**
 * Node.js sandboxes compile CommonJS modules with V8 code caches kept on disk (code-cache.ts): a
 * module must behave exactly as Node.js's own compile makes it behave, whether its cache is being
 * written or read, and a cache must never give a sandbox code that is not in the file.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { invokeForAnswer } from './support';
import { LocalEngine } from '../../local/src';
import { chosenDirectory, CODE_CACHE_ENV } from '../../local/src/engine/code-cache';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

/**
 * What a CommonJS module sees of itself, with the stack of an error thrown at a known line and
 * column (line 1, column 25 of lib.js: the first line, where a wrapper would shift it). dynamic.js uses `import()`, which a module compiled from a
 * cache would lose: Node.js compiles it.
 */
const HANDLER = `const lib = require('./lib');
exports.handler = async () => {
  let stack;
  try { lib.fail(); } catch (e) { stack = e.stack.split('\\n').slice(0, 2).join('|'); }
  return {
    thisIsExports: lib.thisIsExports,
    filename: __filename, dirname: __dirname,
    resolved: require.resolve('./lib'), inCache: require.cache[require.resolve('./lib')] !== undefined,
    paths: Array.isArray(require.resolve.paths('x')), main: require.main === undefined,
    replacedExports: typeof lib.fail, stack, dynamicImport: await require('./dynamic').joinType(),
    answer: ${JSON.stringify('AAAA')},
  };
};`;
const LIB = `function fail() { throw new Error('failed here'); }
const thisIsExports = this === module.exports;
module.exports = { thisIsExports, fail };
`;
const DYNAMIC = "exports.joinType = async () => typeof (await import('node:path')).join;\n";

let root: string;

beforeAll(() => {
  // Modules in the system's temporary directory are not cached: the apps here are outside it, as a
  // user's project is (in the repository's node_modules/.cache, which git ignores).
  const cache = join(process.cwd(), 'node_modules', '.cache');
  mkdirSync(cache, { recursive: true });
  root = mkdtempSync(join(cache, 'code-cache-test-'));
});

afterAll(() => {
  delete process.env[CODE_CACHE_ENV];
  rmSync(root, { recursive: true, force: true });
});

/** Synthesizes an app with one function from an asset directory; returns the cdk.out and the handler file in it. */
function synthesize(name: string, environment: Record<string, string> = {}, under = root): { outdir: string; file: string } {
  const code = join(under, `${name}-code`);
  mkdirSync(code, { recursive: true });
  writeFileSync(join(code, 'index.js'), HANDLER);
  writeFileSync(join(code, 'lib.js'), LIB);
  writeFileSync(join(code, 'dynamic.js'), DYNAMIC);
  const outdir = join(under, `${name}-cdk.out`);
  const app = new App({ outdir });
  new lambda.Function(new Stack(app, name), 'Fn', {
    runtime: lambda.Runtime.NODEJS_20_X,
    handler: 'index.handler',
    code: lambda.Code.fromAsset(code),
    timeout: Duration.seconds(10),
    environment,
  });
  const assembly = app.synth();
  const assetDir = readdirSync(assembly.directory).find((d) => d.startsWith('asset.'))!;
  return { outdir, file: join(assembly.directory, assetDir, 'index.js') };
}

/** One cold start on a fresh engine (its own sandboxes), with the code cache in `dir` or off. */
async function coldInvoke(outdir: string, name: string, dir: string): Promise<Record<string, unknown>> {
  process.env[CODE_CACHE_ENV] = dir;
  const engine = new LocalEngine({ app: outdir, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT] });
  await engine.start();
  try {
    const answer = await invokeForAnswer<Record<string, unknown>>(engine, `${name}/Fn`);
    await engine.idle();
    return answer;
  } finally {
    await engine.stop();
  }
}

/** The cache files under a cache directory (one subdirectory per architecture and V8 tag). */
function cacheFiles(cacheDir: string): Map<string, { mtimeMs: number; bytes: Buffer }> {
  const files = new Map<string, { mtimeMs: number; bytes: Buffer }>();
  if (!existsSync(cacheDir)) return files;
  for (const version of readdirSync(cacheDir)) {
    for (const name of readdirSync(join(cacheDir, version))) {
      const file = join(cacheDir, version, name);
      files.set(file, { mtimeMs: statSync(file).mtimeMs, bytes: readFileSync(file) });
    }
  }
  return files;
}

test('a module compiled with the code cache sees what Node.js gives it: this, require, __filename, import(), stack positions', async () => {
  const { outdir } = synthesize('Semantics');
  const cacheDir = join(root, 'semantics-cache');
  const byNode = await coldInvoke(outdir, 'Semantics', 'off');
  const writingCache = await coldInvoke(outdir, 'Semantics', cacheDir);
  const files = cacheFiles(cacheDir);
  const readingCache = await coldInvoke(outdir, 'Semantics', cacheDir);

  expect(byNode).toMatchObject({
    thisIsExports: true, inCache: true, paths: true, main: true, replacedExports: 'function', dynamicImport: 'function', answer: 'AAAA',
  });
  expect(byNode.stack).toMatch(/^Error: failed here\|\s+at Object.fail \(.*lib\.js:1:25\)$/);
  expect(writingCache).toEqual(byNode);
  expect(readingCache).toEqual(byNode);
  // index.js and lib.js (not dynamic.js), written once: a cache V8 takes is not written again.
  expect(files.size).toBe(2);
  expect(cacheFiles(cacheDir)).toEqual(files);
}, 60_000);

test('a file changed to another of the same length runs as it is now, not as its cache was made', async () => {
  // V8 checks only the source's length: the cache is found by a hash of the source.
  const { outdir, file } = synthesize('Changed');
  const cacheDir = join(root, 'changed-cache');
  expect((await coldInvoke(outdir, 'Changed', cacheDir)).answer).toBe('AAAA');
  writeFileSync(file, readFileSync(file, 'utf8').replace('"AAAA"', '"BBBB"'));
  expect((await coldInvoke(outdir, 'Changed', cacheDir)).answer).toBe('BBBB');
}, 60_000);

test('a cache V8 refuses is replaced, and the module still runs', async () => {
  const { outdir } = synthesize('Refused');
  const cacheDir = join(root, 'refused-cache');
  await coldInvoke(outdir, 'Refused', cacheDir);
  const written = [...cacheFiles(cacheDir).keys()];
  expect(written).toHaveLength(2);
  for (const file of written) writeFileSync(file, Buffer.alloc(statSync(file).size, 7));
  expect((await coldInvoke(outdir, 'Refused', cacheDir)).answer).toBe('AAAA');
  for (const file of written) expect(readFileSync(file).equals(Buffer.alloc(statSync(file).size, 7))).toBe(false);
}, 60_000);

test('with source maps on (NODE_OPTIONS), Node.js compiles the modules itself and no cache is written', async () => {
  const { outdir } = synthesize('Mapped', { NODE_OPTIONS: '--enable-source-maps' });
  const cacheDir = join(root, 'mapped-cache');
  expect((await coldInvoke(outdir, 'Mapped', cacheDir)).answer).toBe('AAAA');
  expect(cacheFiles(cacheDir).size).toBe(0);
}, 60_000);

test('the same module in two apps: each runs as itself, and its stack traces name its own file', async () => {
  // A script compiled from a cache keeps the file name of the script that made it: caches are per file.
  const cacheDir = join(root, 'two-apps-cache');
  const first = synthesize('First');
  const second = synthesize('Second');
  const fromFirst = await coldInvoke(first.outdir, 'First', cacheDir);
  await coldInvoke(second.outdir, 'Second', cacheDir);
  expect(cacheFiles(cacheDir).size).toBe(4); // index.js and lib.js of each app
  const fromSecond = await coldInvoke(second.outdir, 'Second', cacheDir); // from its cache now
  expect(fromFirst.stack).toContain(`${dirname(first.file)}/lib.js:1:25`);
  expect(fromSecond.stack).toContain(`${dirname(second.file)}/lib.js:1:25`);
  expect(fromSecond.filename).toBe(second.file);
}, 60_000);

test('no cache: for modules in the system\'s temporary directory, when turned off, in a directory others may write to', async () => {
  const temporary = mkdtempSync(join(tmpdir(), 'code-cache-test-'));
  const inTemporary = synthesize('Temporary', {}, temporary);
  const temporaryCache = join(root, 'temporary-cache');
  expect((await coldInvoke(inTemporary.outdir, 'Temporary', temporaryCache)).answer).toBe('AAAA');
  expect(cacheFiles(temporaryCache).size).toBe(0);
  rmSync(temporary, { recursive: true, force: true });

  const { outdir } = synthesize('Unused');
  expect((await coldInvoke(outdir, 'Unused', 'off')).answer).toBe('AAAA');
  expect(existsSync(join(process.cwd(), 'off'))).toBe(false); // not taken as a directory
  // The directory the engine would use (architecture and V8 tag), made writable by the group.
  const shared = join(root, 'shared-cache');
  const versionDir = join(shared, `${process.arch}-${cachedDataVersionTag()}`);
  mkdirSync(versionDir, { recursive: true });
  chmodSync(versionDir, 0o775);
  expect((await coldInvoke(outdir, 'Unused', shared)).answer).toBe('AAAA');
  expect(cacheFiles(shared).size).toBe(0);
}, 60_000);

test('require.resolve in a module compiled with the cache follows a module alias tool registered after it, as Node.js\'s does', async () => {
  const code = join(root, 'alias-code');
  mkdirSync(code, { recursive: true });
  // lib.js is compiled (with the cache) before the handler replaces Module._resolveFilename.
  writeFileSync(join(code, 'lib.js'), 'exports.resolve = (request) => require.resolve(request);\n');
  writeFileSync(join(code, 'target.js'), '');
  writeFileSync(join(code, 'index.js'), `const lib = require('./lib');
const Module = require('node:module');
const resolveFilename = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) { return resolveFilename.call(this, request === 'aliased' ? './target' : request, ...rest); };
exports.handler = async () => ({ resolved: lib.resolve('aliased') });
`);
  const app = new App({ outdir: join(root, 'alias-cdk.out') });
  new lambda.Function(new Stack(app, 'Alias'), 'Fn', { runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromAsset(code) });
  const assembly = app.synth();
  const assetDir = readdirSync(assembly.directory).find((d) => d.startsWith('asset.'))!;
  const cacheDir = join(root, 'alias-cache');
  expect(await coldInvoke(assembly.directory, 'Alias', cacheDir)).toEqual({ resolved: join(assembly.directory, assetDir, 'target.js') });
  expect(cacheFiles(cacheDir).size).toBeGreaterThan(0); // lib.js was compiled by the sandbox, with the cache
}, 60_000);

test('the cache directory: the project\'s node_modules/.cache, also for a pnpm installation; the one named; none when off or on Windows', () => {
  const version = `${process.arch}-${cachedDataVersionTag()}`;
  const project = join('/home', 'dev', 'app');
  const installed = join(project, 'node_modules', 'cdk-orchestrator-local', 'lib', 'local', 'src', 'engine');
  const byPnpm = join(project, 'node_modules', '.pnpm', 'cdk-orchestrator-local@1.2.3', 'node_modules', 'cdk-orchestrator-local', 'lib', 'local', 'src', 'engine');
  const expected = join(project, 'node_modules', '.cache', 'cdk-orchestrator-local', 'code-cache', version);
  expect(chosenDirectory(installed, {})).toBe(expected);
  expect(chosenDirectory(byPnpm, {})).toBe(expected);
  expect(chosenDirectory(installed, { [CODE_CACHE_ENV]: '/var/cache/mine' })).toBe(join('/var/cache/mine', version));
  expect(chosenDirectory(installed, { [CODE_CACHE_ENV]: 'off' })).toBeUndefined();
  expect(chosenDirectory(installed, {}, 'win32')).toBeUndefined();
});
