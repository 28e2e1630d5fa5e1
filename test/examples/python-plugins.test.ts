/**
 * The Python plugins of examples/python/plugins, written from docs/PLUGIN-PROTOCOL.md with boto3 only,
 * run end to end on the local engine: Python functions run on /usr/bin/python3 with Debian's
 * python3-boto3 (local/src/engine/python-host.ts), the orchestrator's bundled handlers, DynamoDB Local
 * of the jest global setup, the engine's SNS and SQS.
 *
 * - rate.py: a PARALLEL plugin with `reportsStatus: true` (Complete, Do Not Run, business Error);
 * - archive.py: a queue plugin (`queue: true`): Complete; and failing every receive, so the message
 *   reaches the dead-letter queue and the recorded Error keeps the plugin's own error text.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { pythonExecutable } from '../../local/src/engine/python-host';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { startTestEngine } from '../local/support';

const ROOT = join(__dirname, '..', '..');
const PLUGINS = join(ROOT, 'examples', 'python', 'plugins');
const bundled = existsSync(join(ROOT, 'assets', 'handlers', 'queue-bridge', 'index.js'));
const boto3 = spawnSync(pythonExecutable(), ['-c', 'import boto3'], { encoding: 'utf8' }).status === 0;
if (!boto3) {
  // .ci/run installs Debian's python3-boto3; say why the tests are skipped instead of passing silently.
  console.warn(`python-plugins: ${pythonExecutable()} cannot import boto3 (apt-get install python3-boto3); skipped`);
}
const maybe = bundled && boto3 ? describe : describe.skip;

function buildApp(): Stack {
  const stack = new Stack(new App(), 'PythonPlugins');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'py', activities: ['Quote', 'Archive'] });
  new Workflow(stack, 'Quote', { orchestrator, activities: ['Quote'], workflowName: 'quote' });
  new Workflow(stack, 'Archive', { orchestrator, activities: ['Archive'], workflowName: 'archive' });
  const python = (id: string, handler: string) => new lambda.Function(stack, id, {
    runtime: lambda.Runtime.PYTHON_3_12,
    handler,
    code: lambda.Code.fromAsset(PLUGINS, { exclude: ['__pycache__'] }),
    timeout: Duration.seconds(30),
  });
  orchestrator.activity('Quote').addPlugin(python('Rate', 'rate.handler'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true });
  orchestrator.activity('Archive').addPlugin(python('ArchiveFn', 'archive.handler'), { stage: ActivityStage.PARALLEL, pluginName: 'Archive', queue: true });
  return stack;
}

maybe('Python plugins (examples/python/plugins) on the local engine', () => {
  let engine: LocalEngine;
  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');

  async function run(workflow: string, uid: string, metadata: Record<string, unknown>): Promise<ExecutionResult> {
    const result = await engine.runWorkflow(workflow, { uid, metadata }).result();
    await engine.idle();
    return result;
  }
  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
  }
  const entry = async (uid: string, workflow: string, activity: string, plugin: string) =>
    (await engine.statusDocument(uid, workflow))!.activities[activity].async.mandatory[plugin];

  beforeAll(async () => {
    engine = await startTestEngine(buildApp(), { queueRetryDelayMs: 300 });
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('the handshake: both answer { "initialize": true } with their configuration', async () => {
    for (const [fn, name] of [['PythonPlugins/Rate', 'Rate'], ['PythonPlugins/ArchiveFn', 'Archive']]) {
      const answer = await engine.invoke(fn, { initialize: true });
      if (!answer.ok) throw new Error(JSON.stringify(answer.error));
      expect(JSON.parse(answer.payload)).toEqual(expect.objectContaining({ pluginName: name, mandatory: true }));
    }
  });

  test('rate.py (reportsStatus: true) reports Complete itself; its return value is recorded nowhere', async () => {
    expectStatus(await run('quote', 'py-1', { amount: 1000 }), 'SUCCEEDED', 'py-1');
    expect(await entry('py-1', 'quote', 'Quote', 'Rate')).toEqual({ state: 'Complete', updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/) });
    // No on-success destination: plugin-outcome never ran.
    const outcome = engine.assembly.functions.find((f) => f.path === 'PythonPlugins/Orch/Handlers/PluginOutcome')!.name;
    expect(engine.counters().functions[outcome]?.invocations ?? 0).toBe(0);
    expect(engine.logs('PythonPlugins/Rate').join('\n')).toContain('"premium": 42.0');
  });

  test('rate.py: Do Not Run without an amount; a business Error with its message fails the run naming it', async () => {
    expectStatus(await run('quote', 'py-2', {}), 'SUCCEEDED', 'py-2');
    expect((await entry('py-2', 'quote', 'Quote', 'Rate')).state).toBe('Do Not Run');

    const failed = await run('quote', 'py-3', { amount: -5 });
    expectStatus(failed, 'FAILED', 'py-3');
    expect(failed.error).toBe('PluginFailed');
    expect(failed.cause).toContain('Rate: amount must not be negative, got -5');
    const item = (await engine.statusDocument('py-3', 'quote'))!;
    expect(item.activities.Quote.async.mandatory.Rate).toEqual({ state: 'Error', message: 'amount must not be negative, got -5', updatedAt: expect.any(String) });
    expect(item.activities.Quote.async.status).toEqual(expect.objectContaining({ state: 'Error', message: 'Rate: amount must not be negative, got -5' }));
    expect([item.activities.Quote.status.state, item.status.state]).toEqual(['Error', 'Error']);
  });

  test('archive.py (queue: true) gets the plugin message as the SQS body and completes the run', async () => {
    expectStatus(await run('archive', 'py-4', { customer: 'acme' }), 'SUCCEEDED', 'py-4');
    expect(await entry('py-4', 'archive', 'Archive', 'Archive')).toEqual({ state: 'Complete', updatedAt: expect.any(String) });
    expect(engine.logs('PythonPlugins/ArchiveFn').join('\n')).toContain('"uid": "py-4", "archived": true');
  });

  test('archive.py failing every receive: 3 receives, the dead-letter queue, Error keeping the plugin\'s own error text', async () => {
    const result = await run('archive', 'py-5', { failArchive: true });
    expectStatus(result, 'FAILED', 'py-5');
    const message = 'ArchiveUnavailable: archive unavailable for py-5';
    expect(await entry('py-5', 'archive', 'Archive', 'Archive')).toEqual({ state: 'Error', message, updatedAt: expect.any(String) });
    expect(result.cause).toContain(`Archive: ${message}`);
    // The handshake, py-4's one receive and py-5's three (maxReceiveCount 3).
    const fn = engine.assembly.functions.find((f) => f.path === 'PythonPlugins/ArchiveFn' || f.path?.startsWith('PythonPlugins/ArchiveFn/'))!.name;
    expect(engine.counters().functions[fn].invocations).toBe(5);
  }, 30_000);
});
