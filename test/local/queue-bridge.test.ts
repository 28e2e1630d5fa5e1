/**
 * The queue bridge end to end on the local engine (DESIGN.md "Queue bridge"): an orchestrator stack
 * and a plugins stack synthesized in memory, the bundled handlers (queue-bridge included) and the
 * engine's in-memory SNS and SQS (queues, FIFO groups, redrive to the dead-letter queue, event source
 * mappings with partial batch failures), with the DynamoDB Local of the jest global setup.
 *
 * The queue plugins are one local module (test/local/fixtures/queue-plugin.ts) that reports its own
 * state with the status protocol, configured per function by its environment.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { eventually, inlineFunction } from './support';
import { State } from '../../lambda/shared/status';
import { pluginStateUpdate } from '../../lambda/shared/status-store';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const ACTIVITIES = ['Queued', 'Fifo', 'Crash', 'CrashOptional', 'Dup', 'Plain'];
const FIXTURE = join(__dirname, 'fixtures', 'queue-plugin.ts');
const ORCHESTRATOR_HANDLERS = ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome'];

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'queue-bridge', 'index.js'));
const maybe = bundled ? describe : describe.skip;

interface LogLine {
  uid: string;
  customer?: string;
  outcome: string;
  start: number;
  end: number;
  body: string;
  attributes?: Record<string, { dataType: string; stringValue?: string }>;
  groupId?: string;
}

function buildApp(dir: string) {
  const app = new App();
  const platform = new Stack(app, 'QueuePlatform');
  const orchestrator = new Orchestrator(platform, 'Orch', { orchestratorName: 'qb', activities: ACTIVITIES });
  for (const activity of ACTIVITIES) new Workflow(platform, `Wf${activity}`, { orchestrator, activities: [activity], workflowName: activity.toLowerCase() });

  // The plugins live in a stack of their own: the bridge and the queues with them.
  const plugins = new Stack(app, 'QueuePlugins');
  const pluginPaths: Record<string, string> = {};
  type Options = { mandatory?: boolean; fifoKey?: string; timeout?: Duration };
  const add = (activity: string, name: string, env: Record<string, string>, options: Options = {}) => {
    const id = `${activity}-${name}`;
    const mandatory = options.mandatory ?? true;
    const fn = inlineFunction(plugins, id, 'exports.handler = async () => { throw new Error("mapped to the fixture"); };', {
      functionName: `qb-${id}`,
      timeout: options.timeout ?? Duration.seconds(10),
      environment: {
        STATUS_TABLE: orchestrator.statusTable.tableName,
        PLUGIN_NAME: name,
        PLUGIN_KIND: mandatory ? 'mandatory' : 'optional',
        LOG_FILE: join(dir, `${id}.log`),
        ...env,
      },
    });
    orchestrator.activity(activity).addPlugin(fn, {
      stage: ActivityStage.PARALLEL, pluginName: name, queue: true, mandatory, fifoKey: options.fifoKey,
    });
    pluginPaths[`QueuePlugins/${id}`] = `${FIXTURE}#handler`;
  };
  add('Queued', 'slow', { MODE: 'complete', WORK_MS: '50' });
  add('Fifo', 'ordered', { MODE: 'complete', WORK_MS: '100', HOLD_DIR: dir }, { fifoKey: 'customer', timeout: Duration.seconds(30) });
  add('Crash', 'crasher', { MODE: 'crash' });
  add('CrashOptional', 'crasher', { MODE: 'crash' }, { mandatory: false });
  // A second queue plugin of the same activity in the same stack: a second bridge.
  add('CrashOptional', 'fine', { MODE: 'complete' });
  add('Dup', 'holder', { MODE: 'in-progress' });
  // For comparison: a zero-SDK PARALLEL plugin (no queue), reporting through its Lambda destination.
  orchestrator.activity('Plain').addPlugin(inlineFunction(plugins, 'Plain-direct', 'exports.handler = async () => ({});', { functionName: 'qb-Plain-direct' }),
    { stage: ActivityStage.PARALLEL, pluginName: 'direct' });
  return { app, pluginPaths };
}

maybe('queue bridge on the local engine', () => {
  let dir: string;
  let engine: LocalEngine;

  const readLog = (id: string): LogLine[] => {
    const file = join(dir, `${id}.log`);
    return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((line) => JSON.parse(line)) : [];
  };
  const functionOf = (path: string) => engine.assembly.functions.find((f) => f.path === path || f.path?.startsWith(`${path}/`))!;
  const invocations = (path: string) => engine.counters().functions[functionOf(path).name]?.invocations ?? 0;
  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');

  async function run(workflow: string, uid: string, metadata: Record<string, unknown> = {}): Promise<ExecutionResult> {
    const result = await engine.runWorkflow(workflow, { uid, metadata: { workflow, ...metadata } }).result();
    await engine.idle();
    return result;
  }

  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
  }

  async function doc(uid: string, workflow: string): Promise<Record<string, any>> {
    const item = await engine.statusDocument(uid, workflow);
    if (!item) throw new Error(`no status item ${uid}/${workflow}`);
    return item;
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'queue-bridge-'));
    const { app, pluginPaths } = buildApp(dir);
    engine = new LocalEngine({
      app,
      plugins: pluginPaths,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      asyncRetryDelaysMs: [100, 200],
      // A message whose consumer failed is delivered again after 0.3 s (AWS: when its visibility timeout, 6 x 10 s, has passed).
      queueRetryDelayMs: 300,
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    });
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('a queue plugin completes a run: bridge -> queue -> plugin -> its own Complete; the orchestrator invocations it costs', async () => {
    // The same run with a zero-SDK PARALLEL plugin, for comparison.
    const beforePlain = engine.counters().functions;
    expectStatus(await run('plain', 'p-1', { customer: 'acme', tier: 3 }), 'SUCCEEDED', 'p-1');
    const before = engine.counters().functions;
    const result = await run('queued', 'q-1', { customer: 'acme', tier: 3 });
    expectStatus(result, 'SUCCEEDED', 'q-1');
    const item = await doc('q-1', 'queued');
    expect(item.status.state).toBe('Complete');
    expect(item.activities.Queued.async.status.state).toBe('Complete');
    expect(item.activities.Queued.async.mandatory.slow.state).toBe('Complete');
    // The bridge's "queued" In Progress came first: the timeline shows the plugin moving through it.
    expect(timeline('q-1')).toMatch(/slow.*In Progress[\s\S]*slow.*Complete/);

    // The plugin received the plugin message unchanged, and the metadata as message attributes.
    const [received] = readLog('Queued-slow');
    expect(JSON.parse(received.body)).toEqual(expect.objectContaining({ uid: 'q-1', workflow: 'queued', activity: 'Queued', stage: 'async', customer: 'acme', tier: 3 }));
    expect(received.attributes).toEqual(expect.objectContaining({
      customer: { dataType: 'String', stringValue: 'acme' }, tier: { dataType: 'Number', stringValue: '3' },
    }));
    expect(invocations('QueuePlugins/Queued-slow')).toBe(1);

    // Orchestrator invocations of one run of a one-activity workflow with one queue plugin.
    const after = engine.counters().functions;
    const delta = (name: string, from = before, to = after) => (to[name]?.invocations ?? 0) - (from[name]?.invocations ?? 0);
    const handlerCounts = (from: typeof before, to: typeof before) =>
      Object.fromEntries(ORCHESTRATOR_HANDLERS.map((h) => [h, delta(functionOf(`QueuePlatform/Orch/Handlers/${h}`).name, from, to)]));
    const perHandler = handlerCounts(before, after);
    const plain = handlerCounts(beforePlain, before);
    const bridge = delta(functionOf('QueuePlugins/CdkOrchestratorQueueBridge/Function').name);
    console.log(`queue plugin run: orchestrator handler invocations ${JSON.stringify(perHandler)}, queue bridge ${bridge}; `
      + `zero-SDK PARALLEL plugin run: ${JSON.stringify(plain)}`);
    expect(plain.PluginOutcome).toBe(1);
    expect(bridge).toBe(1);
    // The plugin reports itself: no destination record, so plugin-outcome is not invoked.
    expect(perHandler.PluginOutcome).toBe(0);
    expect(perHandler).toEqual(expect.objectContaining({ StartRun: 1, SequentialStage: 2, ParallelStage: 1, StageFailure: 0 }));
  });

  test('FIFO: a message waits for the one before it of the same fifoKey value; other values are not held up', async () => {
    const entryOf = async (uid: string) => (await engine.statusDocument(uid, 'fifo'))?.activities?.Fifo?.async?.mandatory?.ordered;
    // The first message of customer "acme" works until the test lets it finish.
    writeFileSync(join(dir, 'hold-acme'), '');
    const first = engine.runWorkflow('fifo', { uid: 'f-1', metadata: { workflow: 'fifo', customer: 'acme' } });
    await eventually(() => existsSync(join(dir, 'holding-acme')), 20_000, 'the first acme message to be taken');
    const second = engine.runWorkflow('fifo', { uid: 'f-2', metadata: { workflow: 'fifo', customer: 'acme' } });
    const other = engine.runWorkflow('fifo', { uid: 'f-3', metadata: { workflow: 'fifo', customer: 'zeta' } });
    // Another customer's message is another group: it is processed while acme's first message still works.
    expectStatus(await other.result(), 'SUCCEEDED', 'f-3');
    // acme's second message is queued, and waits.
    await eventually(async () => (await entryOf('f-2'))?.state === State.IN_PROGRESS, 20_000, 'the second acme message to be queued');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(readLog('Fifo-ordered').map((line) => line.uid)).toEqual(['f-3']);
    expect((await entryOf('f-2')).state).toBe(State.IN_PROGRESS);

    rmSync(join(dir, 'holding-acme'));
    const results = await Promise.all([first.result(), second.result()]);
    await engine.idle();
    results.forEach((result, i) => expectStatus(result, 'SUCCEEDED', `f-${i + 1}`));
    const log = readLog('Fifo-ordered');
    expect(log.map((line) => [line.uid, line.outcome, line.groupId])).toEqual([
      ['f-3', State.COMPLETE, 'zeta'],
      ['f-1', State.COMPLETE, 'acme'],
      ['f-2', State.COMPLETE, 'acme'],
    ]);
    // In order: the second started only once the first had ended.
    expect(log[2].start).toBeGreaterThanOrEqual(log[1].end);
  }, 60_000);

  test('a mandatory queue plugin that always crashes: 3 receives, the dead-letter queue, Error; the run fails naming it', async () => {
    const result = await run('crash', 'c-1');
    expectStatus(result, 'FAILED', 'c-1');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('crasher');
    const item = await doc('c-1', 'crash');
    expect(item.status.state).toBe('Error');
    const entry = item.activities.Crash.async.mandatory.crasher;
    expect(entry.state).toBe('Error');
    expect(entry.message).toBe('The plugin failed on its queued message 3 times; the message went to the dead-letter queue');
    expect(readLog('Crash-crasher').map((line) => line.outcome)).toEqual(['crashed', 'crashed', 'crashed']);
    // Recorded, the dead letter is deleted.
    expect(engine.queueMessages('QueuePlugins/Crash-crasher/Plugin-Crash-async/DeadLetterQueue')).toEqual([]);
  }, 30_000);

  test('an optional queue plugin that always crashes: Error, the stage ends Optional Task Error and the run succeeds', async () => {
    const result = await run('crashoptional', 'co-1');
    expectStatus(result, 'SUCCEEDED', 'co-1');
    // The run goes on once the mandatory plugin is done (the stage is Mandatory Completed); the optional
    // plugin's dead letter is recorded when its third receive has failed.
    await eventually(async () => (await doc('co-1', 'crashoptional')).activities.CrashOptional.async.status.state === 'Optional Task Error',
      15_000, 'the optional plugin\'s Error to settle the stage');
    const item = await doc('co-1', 'crashoptional');
    expect(item.status.state).toBe('Complete');
    const stage = item.activities.CrashOptional.async;
    expect(stage.status.state).toBe('Optional Task Error');
    expect(stage.optional.crasher.state).toBe('Error');
    expect(stage.mandatory.fine.state).toBe('Complete');
    // Two queue plugins of one activity in one stack: two bridges (one subscription per topic and endpoint).
    expect(invocations('QueuePlugins/CdkOrchestratorQueueBridge2/Function')).toBeGreaterThan(0);
  }, 30_000);

  test('a duplicate SNS delivery of the same message is not queued again', async () => {
    const handle = engine.runWorkflow('dup', { uid: 'd-1', metadata: { workflow: 'dup', customer: 'acme' } });
    await eventually(() => readLog('Dup-holder').length > 0, 15_000, 'the holder plugin to get its message');
    const [received] = readLog('Dup-holder');
    expect(received.outcome).toBe(State.IN_PROGRESS);

    // SNS delivers the same message again (at-least-once delivery).
    const topic = engine.assembly.topics.find((t) => t.name === 'qb-Dup-parallel')!;
    const attributes = Object.fromEntries(Object.entries(received.attributes ?? {})
      .map(([name, a]) => [name, { DataType: a.dataType, StringValue: a.stringValue! }]));
    const bridge = functionOf('QueuePlugins/CdkOrchestratorQueueBridge/Function').name;
    const bridgeCalls = invocations('QueuePlugins/CdkOrchestratorQueueBridge/Function');
    engine.publish(topic.arn, received.body, attributes);
    await eventually(() => invocations('QueuePlugins/CdkOrchestratorQueueBridge/Function') > bridgeCalls, 10_000, 'the bridge to get the duplicate');
    await engine.idle();
    expect(engine.logs(bridge).join('\n')).toContain('already queued (a duplicate delivery of this message)');
    expect(invocations('QueuePlugins/Dup-holder')).toBe(1);
    expect(readLog('Dup-holder')).toHaveLength(1);

    // The plugin's work, done elsewhere, reports Complete: the run finishes.
    const statusTable = engine.assembly.functions.find((f) => f.environment.STATUS_TABLE_NAME)!.environment.STATUS_TABLE_NAME;
    const ddb = DynamoDBDocumentClient.from(new DynamoDBClient({
      endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }));
    await ddb.send(new UpdateCommand(pluginStateUpdate({ tableName: statusTable, key: { uid: 'd-1', workflow: 'dup' } }, {
      activity: 'Dup', stage: 'async', kind: 'mandatory', plugin: 'holder', state: State.COMPLETE, now: new Date().toISOString(),
    })));
    ddb.destroy();
    const result = await handle.result();
    expectStatus(result, 'SUCCEEDED', 'd-1');
  }, 30_000);
});
