/**
 * Node.js cold starts take a worker thread started ahead of need (a spare) when one is ready: the
 * sandbox it becomes must be the one a worker started for the function would be (its environment
 * only, its heap limit, its module state).
 */
import { existsSync, readFileSync } from 'node:fs';
import { inlineFunction, invokeForAnswer, newStack, setForTestFile, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';
import { SANDBOX_THREAD_NAME, withoutCodeLoadingOptions, withoutRejectedOptions } from '../../local/src/engine/function-host';

// \`fromSpare\`: the worker's start data (the engine's, not Lambda's) says whether it was started as a spare.
const REPORTER = `
const { getHeapStatistics } = require('node:v8');
const fromSpare = require('node:worker_threads').workerData?.spare === true;
let threadName;
try {
  threadName = require('node:fs').readFileSync('/proc/thread-self/comm', 'utf8').trim();
} catch {
  // not Linux
}
let calls = 0;
exports.handler = async () => ({
  env: { ...process.env }, heapLimitMb: getHeapStatistics().heap_size_limit / 2 ** 20, calls: ++calls, fromSpare, sourceMaps: process.sourceMapsEnabled, threadName,
});`;

interface Report { env: Record<string, string>; heapLimitMb: number; calls: number; fromSpare: boolean; sourceMaps: boolean; threadName?: string }

let engine: LocalEngine;
const ENGINE_ONLY = 'CDK_ORCHESTRATOR_SPARE_TEST_ENGINE_ONLY';
// The engine's own process environment is not a function's (set while spares start, too).
setForTestFile(ENGINE_ONLY);

beforeAll(async () => {
  const stack = newStack('Spares');
  for (const [id, memorySize] of [['First', 128], ['Second', 128], ['Third', 128], ['Large', 1024]] as const) {
    inlineFunction(stack, id, REPORTER, { memorySize, environment: { WHO: id.toLowerCase() } });
  }
  inlineFunction(stack, 'SourceMapped', REPORTER, { environment: { WHO: 'sourcemapped', NODE_OPTIONS: '--enable-source-maps' } });
  engine = await startTestEngine(stack);
}, 60_000);

afterAll(() => engine?.stop());

const invoke = (id: string) => invokeForAnswer<Report>(engine, `Spares/${id}`);

test('a sandbox started from a spare worker has its function\'s environment only, its heap limit and its own module state', async () => {
  // The first cold start starts the spares; the next ones of the same heap size take them.
  const reports: Record<string, Report> = {};
  for (const id of ['First', 'Second', 'Third', 'Large']) reports[id] = await invoke(id);
  // The first of each heap size starts the spares; the next ones of 128 MB take them.
  const fromSpare = Object.fromEntries(Object.entries(reports).map(([id, r]) => [id, r.fromSpare]));
  expect(fromSpare).toEqual({ First: false, Second: true, Third: true, Large: false });
  for (const [id, report] of Object.entries(reports)) {
    expect(report.env.WHO).toBe(id.toLowerCase());
    expect(report.env.AWS_LAMBDA_FUNCTION_NAME).toBe(engine.assembly.functions.find((f) => f.path === `Spares/${id}`)!.name);
    expect(report.env[ENGINE_ONLY]).toBeUndefined();
    // The same variables as the first function's, which started without a spare.
    expect(Object.keys(report.env).sort()).toEqual(Object.keys(reports.First.env).sort());
    expect(report.calls).toBe(1);
  }
  // The heap is limited by the memory size (at least 256 MB): a spare of another limit is not taken.
  for (const id of ['First', 'Second', 'Third']) expect(reports[id].heapLimitMb).toBeGreaterThanOrEqual(256);
  for (const id of ['First', 'Second', 'Third']) expect(reports[id].heapLimitMb).toBeLessThan(512);
  expect(reports.Large.heapLimitMb).toBeGreaterThanOrEqual(1024);
  // Warm now: module state is each sandbox's own.
  expect((await invoke('Second')).calls).toBe(2);
  expect((await invoke('Third')).calls).toBe(2);
}, 60_000);

test('a function that sets NODE_OPTIONS gets a worker started with it: Node.js reads it only then', async () => {
  await invoke('First'); // spares of this heap size are ready
  const report = await invoke('SourceMapped');
  expect(report.fromSpare).toBe(false);
  expect(report.sourceMaps).toBe(true);
  expect(report.env.NODE_OPTIONS).toBe('--enable-source-maps');
}, 60_000);

// Thread names are Linux's (/proc); elsewhere sandboxes keep the process's name.
const onLinux = existsSync('/proc/thread-self/comm') ? test : test.skip;

onLinux('every sandbox thread is named, a spare\'s too, and the engine\'s own thread keeps its name (top -H, ps -L, the bench tell them apart)', async () => {
  const reports = [];
  for (const id of ['First', 'Second', 'Large', 'SourceMapped']) reports.push(await invoke(id));
  expect(reports.map((r) => r.threadName)).toEqual(Array(4).fill(SANDBOX_THREAD_NAME));
  // Second's sandbox came from a spare (First's cold start started the spares).
  expect(reports[1].fromSpare).toBe(true);
  expect(readFileSync(`/proc/${process.pid}/task/${process.pid}/comm`, 'utf8').trim()).not.toBe(SANDBOX_THREAD_NAME);
}, 60_000);

test('sandboxes leave out the host\'s code-loading options in every form Node.js takes them, and keep the others', () => {
  expect(withoutCodeLoadingOptions(['--enable-source-maps', '--max-old-space-size=2048'])).toBeUndefined();
  expect(withoutCodeLoadingOptions([
    '-r', 'ts-node/register', '--require', 'dotenv/config', '--require=./a.js', '--import', 'file:///tsx/loader.mjs',
    '--import=tsx', '--loader', 'ts-node/esm', '--experimental-loader=./l.mjs', '--enable-source-maps', '--cpu-prof-dir', '/tmp/p',
  ])).toEqual(['--enable-source-maps', '--cpu-prof-dir', '/tmp/p']);
  // A worker given --max-old-space-size or --title rejects them (they apply to the whole process anyway).
  const rejected = Object.assign(new Error('Initiated Worker with invalid execArgv flags: --max-old-space-size=2048, --title'), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' });
  expect(withoutRejectedOptions(['--max-old-space-size=2048', '--enable-source-maps', '--title', 'x', '--no-warnings'], rejected))
    .toEqual(['--enable-source-maps', '--no-warnings']);
  // A function's own NODE_OPTIONS, refused with the same code, is not the host's to fix; nor is any other error.
  const nodeOptions = Object.assign(new Error('Initiated Worker with invalid NODE_OPTIONS env variable: --bogus'), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' });
  expect(withoutRejectedOptions(['--enable-source-maps'], nodeOptions)).toBeUndefined();
  expect(withoutRejectedOptions(['--enable-source-maps'], new Error('Initiated Worker with invalid execArgv flags: --enable-source-maps'))).toBeUndefined();
  expect(withoutRejectedOptions(['--enable-source-maps'], Object.assign(new Error('invalid execArgv flags: --other'), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' })))
    .toBeUndefined();
});
