/**
 * An engine's Node.js sandboxes share the `require` resolutions they make (function-worker.ts,
 * reuseModuleResolutions): a module must still be the file Node.js itself would resolve for that
 * sandbox — by the requiring module's directory, and with the function's own resolution tools.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { invokeForAnswer } from './support';
import { LocalEngine } from '../../local/src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

/** One asset: three handlers in two directories, a package, and an alias one handler maps the package to. */
const FILES: Record<string, string> = {
  'node_modules/pkg/package.json': JSON.stringify({ name: 'pkg', main: 'main.js' }),
  'node_modules/pkg/main.js': "exports.name = 'pkg';\n",
  'lib.js': "exports.name = 'lib';\n",
  'plain.js': 'exports.handler = async () => ({ pkg: require(\'pkg\').name, lib: require(\'./lib\').name, file: require.resolve(\'pkg\') });\n',
  'sub/lib.js': "exports.name = 'sub/lib';\n",
  'sub/nested.js': 'exports.handler = async () => ({ pkg: require(\'pkg\').name, lib: require(\'./lib\').name });\n',
  'alias.js': "exports.name = 'alias';\n",
  // A module alias tool of its own: Node.js's lookup step answers 'pkg' with alias.js.
  'aliased.js': `const Module = require('node:module');
const findPath = Module._findPath;
Module._findPath = function (request, paths, isMain) {
  return request === 'pkg' ? require('node:path').join(__dirname, 'alias.js') : findPath.call(this, request, paths, isMain);
};
exports.handler = async () => ({ pkg: require('pkg').name, lib: require('./lib').name });
`,
};

let root: string;
let engine: LocalEngine;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'module-resolutions-'));
  const code = join(root, 'code');
  for (const [file, text] of Object.entries(FILES)) {
    mkdirSync(dirname(join(code, file)), { recursive: true });
    writeFileSync(join(code, file), text);
  }
  const stack = new Stack(new App({ outdir: join(root, 'cdk.out') }), 'Resolutions');
  const handlers = { Plain: 'plain.handler', PlainAgain: 'plain.handler', Nested: 'sub/nested.handler', Aliased: 'aliased.handler' };
  for (const [id, handler] of Object.entries(handlers)) {
    new lambda.Function(stack, id, { runtime: lambda.Runtime.NODEJS_20_X, handler, code: lambda.Code.fromAsset(code), timeout: Duration.seconds(9) });
  }
  engine = new LocalEngine({ app: stack, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT] });
  await engine.start();
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  rmSync(root, { recursive: true, force: true });
});

test('a resolution one sandbox made serves the next; a relative require follows the requiring module\'s directory', async () => {
  const first = await invokeForAnswer<Record<string, string>>(engine, 'Resolutions/Plain');
  expect(first).toMatchObject({ pkg: 'pkg', lib: 'lib' });
  // A second invocation: the first one's resolutions reached the engine before its answer did.
  await invokeForAnswer(engine, 'Resolutions/Plain');
  const shared = Object.values((engine as any).lambda.moduleResolutions.all() as Record<string, Record<string, string>>);
  expect(shared.some((resolved) => Object.entries(resolved).some(([key, file]) => key.startsWith('pkg\0') && file === first.file))).toBe(true);

  // Another function's sandbox, given them: the same files.
  expect(await invokeForAnswer(engine, 'Resolutions/PlainAgain')).toEqual(first);
  // './lib' from sub/ is sub/lib.js, not the lib.js resolved for the asset's root.
  expect(await invokeForAnswer(engine, 'Resolutions/Nested')).toEqual({ pkg: 'pkg', lib: 'sub/lib' });
});

test('a function that replaces Node.js\'s own lookup gets its own answer, not one another sandbox resolved', async () => {
  await invokeForAnswer(engine, 'Resolutions/Plain');
  expect(await invokeForAnswer(engine, 'Resolutions/Aliased')).toEqual({ pkg: 'alias', lib: 'lib' });
});
