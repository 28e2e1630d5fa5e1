/**
 * An engine's Node.js sandboxes share the `require` resolutions they make (function-worker.ts,
 * reuseModuleResolutions): a sandbox uses what another one resolved, and a module must still be the
 * file Node.js itself would resolve for that sandbox — by the requiring module's directory and lookup
 * paths, the search path, the registered extensions and the function's Node.js options and tools.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { invokeForAnswer } from './support';
import { LocalEngine } from '../../local/src';
import { SharedModuleResolutions } from '../../local/src/engine/function-host';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

/** A handler that answers which file a request resolves to, or the error's code. */
const probe = (request: string) => `exports.handler = async () => {
  try { return { file: require.resolve(${JSON.stringify(request)}), name: require(${JSON.stringify(request)}).name }; } catch (e) { return { error: e.code }; }
};
`;

/** One asset: handlers in several directories, packages, and the ways a function can change how it resolves. */
const FILES: Record<string, string> = {
  'node_modules/pkg/package.json': JSON.stringify({ name: 'pkg', main: 'main.js' }),
  'node_modules/pkg/main.js': "exports.name = 'pkg';\n",
  'lib.js': "exports.name = 'lib';\n",
  'alias.js': "exports.name = 'alias';\n",
  'node_modules/other/index.js': "exports.name = 'other';\n",
  'plain.js': probe('pkg'),
  'planted.js': probe('other'),
  'planted-above.js': probe('above'),
  // './lib' from the root and from sub/, in one sandbox.
  'lib-probe.js': "exports.handler = async () => ({ root: require('./lib').name, sub: require('./sub').name });\n",
  'sub/lib.js': "exports.name = 'sub/lib';\n",
  'sub/index.js': "exports.name = require('./lib').name;\n",
  // A module alias tool of its own: Node.js's lookup step answers 'pkg' with alias.js.
  'aliased.js': `const Module = require('node:module');
const findPath = Module._findPath;
Module._findPath = function (request, paths, isMain) {
  return request === 'pkg' ? require('node:path').join(__dirname, 'alias.js') : findPath.call(this, request, paths, isMain);
};
${probe('pkg')}`,
  // Export conditions (NODE_OPTIONS=--conditions=development in one function only).
  'cond/node_modules/cpkg/package.json': JSON.stringify({ name: 'cpkg', exports: { development: './dev.js', default: './prod.js' } }),
  'cond/node_modules/cpkg/dev.js': "exports.name = 'dev';\n",
  'cond/node_modules/cpkg/prod.js': "exports.name = 'prod';\n",
  'cond/probe.js': probe('cpkg'),
  // A preload (NODE_OPTIONS=-r) that answers 'ppkg' with its alias.
  'pre/node_modules/ppkg/index.js': "exports.name = 'ppkg';\n",
  'pre/alias.js': "exports.name = 'pre/alias';\n",
  'pre/probe.js': probe('ppkg'),
  'preload.js': `const Module = require('node:module');
const findPath = Module._findPath;
Module._findPath = function (request, paths, isMain) {
  return request === 'ppkg' ? require('node:path').join(__dirname, 'pre', 'alias.js') : findPath.call(this, request, paths, isMain);
};
`,
  // A module that adds a lookup directory of its own (module.paths).
  'mp/node_modules/mpkg/index.js': "exports.name = 'mpkg';\n",
  'mp/override/mpkg/index.js': "exports.name = 'override';\n",
  'mp/probe.js': probe('mpkg'),
  'mp/unshift.js': `module.paths.unshift(require('node:path').join(__dirname, 'override'));\n${probe('mpkg')}`,
  // A search path set again (NODE_PATH, then Module._initPaths).
  'ip/extra/xpkg/index.js': "exports.name = 'xpkg';\n",
  'ip/init.js': `process.env.NODE_PATH = require('node:path').join(__dirname, 'extra'); require('node:module')._initPaths();\n${probe('xpkg')}`,
  'ip/probe.js': probe('xpkg'),
  // An extension registered ('.ts' read as JavaScript).
  'ext/util.ts': "exports.name = 'util.ts';\n",
  'ext/ts.js': `require.extensions['.ts'] = require.extensions['.js'];\n${probe('./util')}`,
  'ext/probe.js': probe('./util'),
};

/** Packages in the node_modules above the app's directory. */
const ABOVE: Record<string, string> = {
  'node_modules/above/index.js': "exports.name = require('inner').name;\n",
  'node_modules/inner/index.js': "exports.name = 'inner';\n",
  'node_modules/inner-alias/index.js': "exports.name = 'inner-alias';\n",
};

/** The functions, all of that one asset; `code` is where the asset was written (the preload is loaded from there). */
const functions = (code: string): Record<string, [handler: string, environment?: Record<string, string>]> => ({
  Plain: ['plain.handler'],
  PlainAgain: ['plain.handler'],
  Planted: ['planted.handler'],
  PlantedAbove: ['planted-above.handler'],
  Lib: ['lib-probe.handler'],
  Aliased: ['aliased.handler'],
  CondDevelopment: ['cond/probe.handler', { NODE_OPTIONS: '--conditions=development' }],
  CondDefault: ['cond/probe.handler'],
  Preloaded: ['pre/probe.handler', { NODE_OPTIONS: `-r ${join(code, 'preload.js')}` }],
  NotPreloaded: ['pre/probe.handler'],
  PathsDefault: ['mp/probe.handler'],
  PathsOwn: ['mp/unshift.handler'],
  SearchPathSet: ['ip/init.handler'],
  SearchPathDefault: ['ip/probe.handler'],
  TsRegistered: ['ext/ts.handler'],
  TsNotRegistered: ['ext/probe.handler'],
});

let root: string;
let code: string;
let engine: LocalEngine;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'module-resolutions-'));
  code = join(root, 'code');
  for (const [file, text] of Object.entries(FILES)) {
    mkdirSync(dirname(join(code, file)), { recursive: true });
    writeFileSync(join(code, file), text);
  }
  // A package above the app (a project's node_modules, which an asset in its cdk.out finds), requiring another.
  for (const [file, text] of Object.entries(ABOVE)) {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  }
  const stack = new Stack(new App({ outdir: join(root, 'cdk.out') }), 'Resolutions');
  for (const [id, [handler, environment]] of Object.entries(functions(code))) {
    const props = { runtime: lambda.Runtime.NODEJS_20_X, handler, code: lambda.Code.fromAsset(code), timeout: Duration.seconds(10), environment };
    new lambda.Function(stack, id, props);
  }
  engine = new LocalEngine({ app: stack, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT] });
  await engine.start();
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  rmSync(root, { recursive: true, force: true });
});

type Answer = { file?: string; name?: string; error?: string };
const call = (fn: string) => invokeForAnswer<Answer>(engine, `Resolutions/${fn}`);
const shared = () => (engine as unknown as { lambda: { moduleResolutions: SharedModuleResolutions } }).lambda.moduleResolutions;

/** `first` runs (twice: the first answer's resolutions have reached the engine by the second's), then `second` starts. */
async function oneThenAnother(first: string, second: string): Promise<[Answer, Answer]> {
  const a = await call(first);
  await call(first);
  return [a, await call(second)];
}

test('a sandbox uses what another one resolved: a resolution planted in the engine is what a new sandbox loads', async () => {
  const [plain, again] = await oneThenAnother('Plain', 'PlainAgain');
  expect(plain).toMatchObject({ name: 'pkg' });
  expect(again).toEqual(plain);
  const codeDir = dirname(dirname(dirname(plain.file!))); // <asset>/node_modules/pkg/main.js
  const given = shared().under([codeDir]);
  const [context] = Object.keys(given).filter((c) => given[c][codeDir]?.pkg === plain.file);
  expect(context).toBeDefined();
  // Planted: 'other' (which no sandbox resolved) from the code's directory is alias.js.
  // A sandbox that uses what it is given loads that.
  shared().add({ context, resolved: { [codeDir]: { other: join(codeDir, 'alias.js') } } });
  expect(await call('Planted')).toMatchObject({ name: 'alias' });
});

test('a relative require follows the requiring module\'s directory', async () => {
  expect(await call('Lib')).toEqual({ root: 'lib', sub: 'sub/lib' });
});

test.each([
  ['a function that replaces Node.js\'s own lookup', 'Plain', 'Aliased', { name: 'alias' }],
  ['export conditions of another function\'s NODE_OPTIONS', 'CondDevelopment', 'CondDefault', { name: 'prod' }],
  ['another function\'s preload (NODE_OPTIONS=-r)', 'Preloaded', 'NotPreloaded', { name: 'ppkg' }],
  ['a module that adds its own lookup directory', 'PathsDefault', 'PathsOwn', { name: 'override' }],
  ['another function\'s search path, set again', 'SearchPathSet', 'SearchPathDefault', { error: 'MODULE_NOT_FOUND' }],
  ['another function\'s registered extension', 'TsRegistered', 'TsNotRegistered', { error: 'MODULE_NOT_FOUND' }],
])('%s: each sandbox gets what Node.js resolves for it', async (_what, first, second, expected) => {
  const [, answer] = await oneThenAnother(first, second);
  expect(answer).toMatchObject(expected);
});

test('a sandbox whose NODE_OPTIONS load code first neither uses nor shares resolutions', async () => {
  await call('Preloaded');
  await call('Preloaded');
  expect(Object.keys(shared().under([root])).filter((context) => context.includes('preload.js'))).toEqual([]);
});

test('the first of those resolved its own way too', async () => {
  expect(await call('CondDevelopment')).toMatchObject({ name: 'dev' });
  expect(await call('Preloaded')).toMatchObject({ name: 'pre/alias' });
  expect(await call('SearchPathSet')).toMatchObject({ name: 'xpkg' });
  expect(await call('TsRegistered')).toMatchObject({ name: 'util.ts' });
});

test('a new sandbox is given what was resolved in the node_modules above its code (a project\'s, for an asset in its cdk.out)', async () => {
  const [context] = Object.keys(shared().under([root]));
  expect(context).toBeDefined();
  const aboveDir = join(root, 'node_modules', 'above');
  shared().add({ context, resolved: { [aboveDir]: { inner: join(root, 'node_modules', 'inner-alias', 'index.js') } } });
  expect(await call('PlantedAbove')).toMatchObject({ name: 'inner-alias' });
});
