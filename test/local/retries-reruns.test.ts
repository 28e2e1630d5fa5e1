/**
 * Retries and re-runs keep the contract (issue "Retries and re-runs"): the five bugs, each as the
 * case that found it, run on the local engine (synthesized state machines, bundled handlers,
 * DynamoDB Local). Plugins do what `script.json` says and log every call of their work, so the
 * tests assert which plugin ran, how often and in which order.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { marshall } from '@aws-sdk/util-dynamodb';
import {
  ActivitySpec, AppSpec, Behaviour, buildScriptedApp, BUNDLED, pluginId, readCalls, runKey, RunScript, writeScript,
} from './scripted-app';
import { startTestEngine } from './support';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';

const maybe = BUNDLED ? describe : describe.skip;

const ACTIVITIES: ActivitySpec[] = [
  // Bug 1: an optional Error before a mandatory plugin that fails its first attempt.
  {
    name: 'ErrorThenFlaky',
    pluginRetries: 2,
    plugins: [
      { name: 'alpha', stage: 'pre', mandatory: false, order: 10 },
      { name: 'bravo', stage: 'pre', mandatory: true, order: 20 },
    ],
  },
  // Bug 1: a business error next to a mandatory plugin that always throws.
  {
    name: 'ErrorThenDown',
    pluginRetries: 2,
    plugins: [
      { name: 'biz', stage: 'post', mandatory: false, order: 10 },
      { name: 'down', stage: 'post', mandatory: true, order: 20 },
    ],
  },
  // Bug 1: a plugin that exceeded its timeout is not called again when a later plugin is retried.
  {
    name: 'TimeoutThenFlaky',
    pluginRetries: 1,
    plugins: [
      { name: 'late', stage: 'pre', mandatory: false, order: 10, timeoutSeconds: 1 },
      { name: 'flaky', stage: 'pre', mandatory: true, order: 20 },
    ],
  },
  // Bug 2: retries are per plugin.
  {
    name: 'OwnBudgets',
    pluginRetries: 2,
    plugins: [
      { name: 'alpha', stage: 'pre', mandatory: false, order: 10 },
      { name: 'bravo', stage: 'pre', mandatory: true, order: 20 },
    ],
  },
  {
    name: 'ThreeFlaky',
    pluginRetries: 1,
    plugins: [
      { name: 'one', stage: 'post', mandatory: true, order: 1 },
      { name: 'two', stage: 'post', mandatory: true, order: 2 },
      { name: 'three', stage: 'post', mandatory: true, order: 3 },
    ],
  },
  // Bug 3: the only failure is an optional parallel plugin (alone, and next to a Complete mandatory one).
  { name: 'OptionalOnly', pluginRetries: 2, plugins: [{ name: 'extra', stage: 'async', mandatory: false }] },
  {
    name: 'OptionalAndMandatory',
    pluginRetries: 2,
    plugins: [
      { name: 'main', stage: 'async', mandatory: true },
      { name: 'extra', stage: 'async', mandatory: false },
    ],
  },
  // Bugs 4 and 5: items written as another moment (or another tool) left them.
  {
    name: 'Settling',
    pluginRetries: 2,
    plugins: [
      { name: 'main', stage: 'async', mandatory: true },
      { name: 'extra', stage: 'async', mandatory: false },
    ],
  },
];
const SPEC: AppSpec = {
  activities: ACTIVITIES,
  workflows: ACTIVITIES.map((activity) => ({ name: activity.name.toLowerCase(), activities: [activity.name] })),
};

maybe('Retries and re-runs on the local engine', () => {
  let dir: string;
  let engine: LocalEngine;
  let phase = 1;
  const scripts: Record<string, RunScript> = {};

  /** What the plugins of one activity do, by plugin name: one behaviour per phase. */
  function script(activity: string, uid: string, behaviours: Record<string, Behaviour[]>) {
    const spec = ACTIVITIES.find((a) => a.name === activity)!;
    scripts[runKey(uid, activity.toLowerCase())] = Object.fromEntries(Object.entries(behaviours).map(([name, list]) =>
      [pluginId(activity, spec.plugins.find((p) => p.name === name)!), list]));
    writeScript(dir, phase, scripts);
  }

  function setPhase(next: number) {
    phase = next;
    writeScript(dir, phase, scripts);
  }

  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');

  async function run(activity: string, uid: string): Promise<ExecutionResult> {
    const workflow = activity.toLowerCase();
    const result = await engine.runWorkflow(workflow, { uid, metadata: { workflow } }).result();
    await engine.idle();
    return result;
  }

  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
  }

  /** Plugin names in the order their work was called, for one run and phase. */
  function callOrder(activity: string, uid: string, onPhase = phase): string[] {
    return readCalls(dir).filter((c) => c.key === runKey(uid, activity.toLowerCase()) && c.phase === onPhase).map((c) => c.id.split('.')[2]);
  }

  async function doc(activity: string, uid: string): Promise<Record<string, any>> {
    const item = await engine.statusDocument(uid, activity.toLowerCase());
    if (!item) throw new Error(`no status item for ${uid}`);
    return item;
  }

  async function putItem(item: Record<string, unknown>) {
    const table = engine.assembly.tables.find((t) => t.keySchema.some((k) => k.AttributeName === 'uid'))!.name;
    const client = new DynamoDBClient({ endpoint: engine.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    try {
      await client.send(new PutItemCommand({ TableName: table, Item: marshall(item, { removeUndefinedValues: true }) }));
    } finally {
      client.destroy();
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'retries-'));
    writeScript(dir, phase, scripts);
    engine = await startTestEngine(buildScriptedApp(SPEC, dir, 'Retries'), { retryIntervalMs: 50 });
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  beforeEach(() => setPhase(1));

  test('bug 1: a retry of a stage does not call a plugin that already recorded Error in this run, and keeps the order', async () => {
    script('ErrorThenFlaky', 'b1', { alpha: ['businessError'], bravo: ['failFirst'] });
    const result = await run('ErrorThenFlaky', 'b1');
    expectStatus(result, 'SUCCEEDED', 'b1');
    expect(callOrder('ErrorThenFlaky', 'b1')).toEqual(['alpha', 'bravo', 'bravo']);
    const item = await doc('ErrorThenFlaky', 'b1');
    expect(item.activities.ErrorThenFlaky.pre.status.state).toBe('Optional Task Error');
    expect(item.activities.ErrorThenFlaky.pre.optional.alpha).toMatchObject({ state: 'Error', message: 'declined by ErrorThenFlaky.pre.alpha' });
    expect(item.activities.ErrorThenFlaky.pre.mandatory.bravo.state).toBe('Complete');
    expect(item.status.state).toBe('Complete');
  });

  test('bug 1: a business-error plugin runs once while a mandatory plugin after it uses up its retries', async () => {
    script('ErrorThenDown', 'b1-down', { biz: ['businessError'], down: ['throws'] });
    const result = await run('ErrorThenDown', 'b1-down');
    expectStatus(result, 'FAILED', 'b1-down');
    expect(result.error).toBe('PluginFailed');
    expect(callOrder('ErrorThenDown', 'b1-down')).toEqual(['biz', 'down', 'down', 'down']);
    const item = await doc('ErrorThenDown', 'b1-down');
    expect(item.activities.ErrorThenDown.post.mandatory.down).toMatchObject({ state: 'Error', message: 'Error: backend unavailable (after 3 attempts)', attempts: 3 });
    expect(item.status.state).toBe('Error');
  });

  test('bug 1: a plugin that exceeded its timeout is recorded Error and never called again in the run', async () => {
    script('TimeoutThenFlaky', 'b1-late', { late: ['exceedTimeout'], flaky: ['failFirst'] });
    const result = await run('TimeoutThenFlaky', 'b1-late');
    expectStatus(result, 'SUCCEEDED', 'b1-late');
    expect(callOrder('TimeoutThenFlaky', 'b1-late')).toEqual(['late', 'flaky', 'flaky']);
    const item = await doc('TimeoutThenFlaky', 'b1-late');
    expect(item.activities.TimeoutThenFlaky.pre.optional.late).toMatchObject({ state: 'Error', message: 'timed out after 1 s' });
    expect(item.activities.TimeoutThenFlaky.pre.status.state).toBe('Optional Task Error');
  });

  test('bug 2: an optional plugin that always throws uses its own retries, and never fails the run', async () => {
    script('OwnBudgets', 'b2', { alpha: ['throws'], bravo: ['failFirst'] });
    const result = await run('OwnBudgets', 'b2');
    expectStatus(result, 'SUCCEEDED', 'b2');
    expect(callOrder('OwnBudgets', 'b2')).toEqual(['alpha', 'alpha', 'alpha', 'bravo', 'bravo']);
    const item = await doc('OwnBudgets', 'b2');
    expect(item.status.state).toBe('Complete');
    expect(item.activities.OwnBudgets.pre.status.state).toBe('Optional Task Error');
    expect(item.activities.OwnBudgets.pre.optional.alpha).toMatchObject({ state: 'Error', message: 'Error: backend unavailable (after 3 attempts)', attempts: 3 });
    expect(item.activities.OwnBudgets.pre.mandatory.bravo).toMatchObject({ state: 'Complete', attempts: 1 });
  });

  test('bug 2: three mandatory plugins that each fail once all get their retry; a re-run counts attempts afresh', async () => {
    script('ThreeFlaky', 'b2-three', { one: ['failFirst', 'throws'], two: ['failFirst'], three: ['failFirst'] });
    const result = await run('ThreeFlaky', 'b2-three');
    expectStatus(result, 'SUCCEEDED', 'b2-three');
    expect(callOrder('ThreeFlaky', 'b2-three')).toEqual(['one', 'one', 'two', 'two', 'three', 'three']);
    expect((await doc('ThreeFlaky', 'b2-three')).status.state).toBe('Complete');

    // Another uid: `one` always throws (pluginRetries 1: 2 calls); its re-run gets 2 calls again.
    script('ThreeFlaky', 'b2-again', { one: ['throws', 'throws'] });
    expectStatus(await run('ThreeFlaky', 'b2-again'), 'FAILED', 'b2-again');
    expect(callOrder('ThreeFlaky', 'b2-again')).toEqual(['one', 'one']);
    setPhase(2);
    expectStatus(await run('ThreeFlaky', 'b2-again'), 'FAILED', 'b2-again');
    expect(callOrder('ThreeFlaky', 'b2-again')).toEqual(['one', 'one']);
    const item = await doc('ThreeFlaky', 'b2-again');
    expect(item.activities.ThreeFlaky.post.mandatory.one).toMatchObject({ state: 'Error', message: 'Error: backend unavailable (after 2 attempts)', attempts: 2 });
  });

  test.each([
    ['OptionalOnly', { extra: ['businessError', 'businessError'] as Behaviour[] }],
    ['OptionalAndMandatory', { main: ['succeed', 'succeed'] as Behaviour[], extra: ['businessError', 'businessError'] as Behaviour[] }],
  ])('bug 3: %s — a re-run whose only failure was an optional parallel plugin ends, and the uid can run again', async (activity, behaviours) => {
    const uid = `b3-${activity}`;
    script(activity, uid, behaviours);
    expectStatus(await run(activity, uid), 'SUCCEEDED', uid);
    const first = await doc(activity, uid);
    expect(first.activities[activity].async.status.state).toBe('Optional Task Error');
    expect(first.status.state).toBe('Complete');

    setPhase(2);
    expectStatus(await run(activity, uid), 'SUCCEEDED', uid);
    const second = await doc(activity, uid);
    expect(second.status.state).toBe('Complete');
    expect(second.activities[activity].status.state).toBe('Complete');
    expect(second.activities[activity].async.status.state).toBe('Optional Task Error');
    expect(second.activities[activity].async.optional.extra.state).toBe('Error');
    // The failed optional plugin ran again; a Complete mandatory one kept its entry and did no work.
    expect(callOrder(activity, uid)).toEqual(['extra']);
    if (activity === 'OptionalAndMandatory') expect(second.activities[activity].async.mandatory.main).toEqual(first.activities[activity].async.mandatory.main);
    expect(second.awaiting).toBeUndefined();

    // Not locked: a third run starts and ends.
    setPhase(3);
    expectStatus(await run(activity, uid), 'SUCCEEDED', uid);
  });

  /** Run 1 completes; then the item is rewritten as `edit` says, and the re-run must finish what it left. */
  async function rerunAfter(uid: string, edit: (item: Record<string, any>) => void) {
    script('Settling', uid, { main: ['succeed', 'succeed'], extra: ['succeed', 'succeed'] });
    expectStatus(await run('Settling', uid), 'SUCCEEDED', uid);
    const item = await doc('Settling', uid);
    edit(item);
    await putItem(item);
    setPhase(2);
    expectStatus(await run('Settling', uid), 'SUCCEEDED', uid);
    return doc('Settling', uid);
  }

  test('bug 4: a re-run while the parallel stage is Mandatory Completed with an optional Error runs that plugin again', async () => {
    const after = await rerunAfter('b4', (item) => {
      // The moment before status-summary rewrote the stage to Optional Task Error.
      const stage = item.activities.Settling.async;
      stage.status.state = 'Mandatory Completed';
      stage.optional.extra = { state: 'Error', message: 'declined', updatedAt: stage.optional.extra.updatedAt };
      // Without `awaiting`, so status-summary does not settle it before the re-run reads it.
    });
    expect(callOrder('Settling', 'b4')).toEqual(['extra']);
    expect(after.activities.Settling.async.optional.extra.state).toBe('Complete');
    expect(after.activities.Settling.async.status.state).toBe('Complete');
    expect(after.activities.Settling.status.state).toBe('Complete');
    expect(after.status.state).toBe('Complete');
    expect(after.awaiting).toBeUndefined();
  });

  test('bug 5: a plugin entry that is null (written by another tool) does not trip the summaries', async () => {
    const after = await rerunAfter('b5', (item) => {
      item.activities.Settling.async.optional.extra = null;
      item.activities.Settling.async.mandatory.stranger = null;
      item.activities.Settling.async.status.state = 'Error';
      item.activities.Settling.status.state = 'Error';
      item.status.state = 'Error';
    });
    // The null entry of a registered plugin reads as Not Started: it runs; the stranger's is dropped.
    expect(callOrder('Settling', 'b5')).toEqual(['extra']);
    expect(after.activities.Settling.async.optional.extra.state).toBe('Complete');
    expect(after.activities.Settling.async.mandatory.stranger).toBeUndefined();
    expect(after.activities.Settling.async.status.state).toBe('Complete');
    expect(after.status.state).toBe('Complete');
  });
});
