/**
 * The CLI as a process: exit code 1 when the run fails (with --json on stdout), and Ctrl-C stops
 * everything it started (DynamoDB Local's Java process included) and exits 130.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARED_DYNAMODB_ENDPOINT_ENV } from '../src';
import { synthPluginApp } from './support/plugin-app';
import { isAlive, javaChildren } from './support/processes';

const ROOT = join(__dirname, '..', '..');
const TS_NODE = [require.resolve('ts-node/dist/bin.js'), '--transpile-only', '-O', JSON.stringify({ module: 'commonjs', moduleResolution: 'node', ignoreDeprecations: '6.0' })];

/** Runs the CLI with `env` as its whole environment (default: this process's; Node.js's warnings off unless `env` sets NODE_NO_WARNINGS), Node.js started with `nodeOptions`. */
function cli(args: string[], env: NodeJS.ProcessEnv = process.env, nodeOptions: string[] = []):
{ child: ChildProcess; stdout: string[]; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [...nodeOptions, ...TS_NODE, join(ROOT, 'local', 'src', 'cli.ts'), ...args], {
    cwd: ROOT, env: { NODE_NO_WARNINGS: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stdout: string[] = [];
  child.stdout!.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => stdout.push(chunk.toString()));
  return { child, stdout, exit: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}


async function until(check: () => boolean, timeoutMs: number, what: string) {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('cdk-orchestrator-local as a process', () => {
  test('a failed run exits 1 and --json prints the result', async () => {
    const app = synthPluginApp('exports.handler = async () => ({ state: "Error", message: "not today" });');
    // The run's shared DynamoDB Local (CDK_ORCHESTRATOR_LOCAL_DYNAMODB_ENDPOINT); Node.js's warnings printed.
    const { stdout, exit } = cli(['run', '--app', app, '--workflow', 'flow', '--input', '{"uid":"u-1","metadata":{}}', '--json'],
      { ...process.env, NODE_NO_WARNINGS: '0' });
    expect(await exit).toBe(1);
    const result = JSON.parse(stdout.join('').slice(stdout.join('').indexOf('{')));
    expect(result.status).toBe('FAILED');
    expect(result.statusDocument.activities.Step1.pre.mandatory.Plugin).toMatchObject({ state: 'Error', message: 'not today' });
    // The SDK the CLI uses itself does not print its Node.js version notice into the run's output.
    expect(stdout.join('')).not.toMatch(/NodeVersionSupportWarning/);
  }, 120_000);

  test('a sandbox does not run the code the CLI\'s Node.js preloads (node -r), as a Lambda sandbox does not; the host\'s other options stay', async () => {
    // A preload such as `-r dotenv/config`: it says which thread it ran in, and sets a variable.
    const dir = mkdtempSync(join(tmpdir(), 'cli-preload-'));
    const preload = join(dir, 'preload.js');
    const ranIn = join(dir, 'ran-in.log');
    writeFileSync(preload, `require('node:fs').appendFileSync(${JSON.stringify(ranIn)}, require('node:worker_threads').isMainThread ? 'host\\n' : 'sandbox\\n');
process.env.FROM_HOST_PRELOAD = 'yes';`);
    const app = synthPluginApp(`exports.handler = async () => {
  if (process.env.FROM_HOST_PRELOAD) return { state: "Error", message: "the host's preload set FROM_HOST_PRELOAD in this sandbox" };
  if (!process.sourceMapsEnabled) return { state: "Error", message: "the host's --enable-source-maps did not reach this sandbox" };
  return {};
};`);
    // --max-old-space-size: an option a worker rejects when it is given to it (it applies to the whole process).
    const { stdout, exit } = cli(['run', '--app', app, '--workflow', 'flow', '--input', '{"uid":"u-3","metadata":{}}', '--json'],
      process.env, ['--require', preload, '--enable-source-maps', '--max-old-space-size=2048']);
    const code = await exit;
    const output = stdout.join('');
    expect({ code, ranIn: readFileSync(ranIn, 'utf8') }).toEqual({ code: 0, ranIn: 'host\n' });
    expect(JSON.parse(output.slice(output.indexOf('{'))).statusDocument.activities.Step1.pre.mandatory.Plugin.state).toBe('Complete');
  }, 120_000);

  test('Ctrl-C stops the engine and DynamoDB Local, and exits 130', async () => {
    const app = synthPluginApp('exports.handler = async () => { await new Promise((r) => setTimeout(r, 50000)); return {}; };');
    const env = { ...process.env };
    delete env[SHARED_DYNAMODB_ENDPOINT_ENV];
    const { child, stdout, exit } = cli(['run', '--app', app, '--workflow', 'flow', '--input', '{"uid":"u-2","metadata":{}}'], env);
    await until(() => /engine started/.test(stdout.join('')), 90_000, `the engine to start:\n${stdout.join('')}`);
    const java = javaChildren(child.pid!);
    expect(java).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 1000)); // the run is in its PRE plugin now
    child.kill('SIGINT');
    expect(await exit).toBe(130);
    expect(stdout.join('')).toMatch(/SIGINT: stopping the local engine/);
    await until(() => !isAlive(java[0]), 10_000, 'DynamoDB Local to exit');
  }, 150_000);
});
