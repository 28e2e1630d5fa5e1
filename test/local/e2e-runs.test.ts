/**
 * The "Local engine" end-to-end suite: one app synthesized in memory (an Orchestrator with one
 * activity per case, a Workflow per case, zero-SDK plugins added with `activity.addPlugin`) run on
 * ONE LocalEngine — the synthesized state machines, the bundled handlers (assets/handlers) and the
 * plugins' inline code, with the DynamoDB Local of the jest global setup. Every case checks the
 * execution's result and the status document a user reads, and the engine's counters say which
 * plugin functions ran.
 *
 * Zero-SDK plugin protocol (DESIGN.md): PRE/POST plugins report through their invocation result;
 * PARALLEL plugins through Lambda destinations (plugin-outcome). Returning `{ state: 'In Progress' }`
 * means "I will report myself": plugin-outcome records nothing.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { inlineFunction, newStack, testClock } from './support';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, PluginOptions, Workflow } from '../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

// ---------------------------------------------------------------------------------------------
// Plugin code (inline, no SDK)

/** Succeeds: the plugin's entry becomes `Complete`. */
const SUCCEEDS = 'exports.handler = async () => ({ ok: true });';
/** Throws: PRE/POST retried by Step Functions, PARALLEL by Lambda (2 async retries), then `Error`. */
const THROWS = 'exports.handler = async () => { throw new Error("backend unavailable"); };';
/** Hands the work off and never reports: plugin-outcome writes nothing. */
const NEVER_ANSWERS = 'exports.handler = async () => ({ state: "In Progress" });';
/** Completes after 3 s (its report is progress: status-summary heartbeats the waiting task). */
const SLOW = 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 3000)); return {}; };';
/** Fails while the file named by FAIL_FLAG exists (a failure on the first run only). */
const FAILS_WHILE_FLAGGED = 'const fs = require("fs");\n'
  + 'exports.handler = async () => { if (fs.existsSync(process.env.FAIL_FLAG)) throw new Error("flagged to fail"); return {}; };';

// ---------------------------------------------------------------------------------------------
// The app: one orchestrator, one activity (and workflow) per case

const ORCHESTRATOR = 'e2e';
const ACTIVITIES = [
  'AllSucceed', 'MandatoryFails', 'OptionalFails', 'RerunPost', 'RerunParallel', 'NoPlugins',
  'Filtered', 'Timeout', 'Heartbeat', 'Shared', 'Budget',
];

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = bundled ? describe : describe.skip;

interface App {
  readonly stack: Stack;
  readonly flagDir: string;
  readonly flag: string;
}

function buildApp(): App {
  const stack = newStack('E2E');
  const flagDir = mkdtempSync(join(tmpdir(), 'e2e-flag-'));
  const flag = join(flagDir, 'fail');
  const orchestrator = new Orchestrator(stack, 'Orch', {
    orchestratorName: ORCHESTRATOR,
    activities: ACTIVITIES,
    activityOptions: {
      // No Step Functions retries: the flagged post plugin fails for good on its first attempt.
      RerunPost: { pluginRetries: 0 },
      // parallelHeartbeat must be shorter than parallelTimeout (synth-time rule); the SLOW plugin's
      // report at ~3 s is progress (heartbeat), so the 6 s timeout, not the 5 s heartbeat, fires.
      Timeout: { parallelTimeout: Duration.seconds(6), parallelHeartbeat: Duration.seconds(5) },
      // Nothing reports progress: the heartbeat fires first.
      Heartbeat: { parallelTimeout: Duration.seconds(30), parallelHeartbeat: Duration.seconds(2) },
    },
  });
  for (const activity of ACTIVITIES.filter((a) => a !== 'Shared')) {
    new Workflow(stack, `Wf${activity}`, { orchestrator, activities: [activity], workflowName: workflowOf(activity) });
  }
  new Workflow(stack, 'WfSharedA', { orchestrator, activities: ['Shared'], workflowName: 'shared-a' });
  new Workflow(stack, 'WfSharedB', { orchestrator, activities: ['Shared'], workflowName: 'shared-b' });

  // Plugin functions live outside the orchestrator's construct, so their counters are told apart by path.
  const plugins = new Construct(stack, 'Plugins');
  const add = (activity: string, name: string, code: string, options: Omit<PluginOptions, 'pluginName'>, env?: Record<string, string>) => {
    const fn: lambda.IFunction = inlineFunction(plugins, `${activity}-${name}`, code, {
      functionName: functionName(activity, name),
      environment: env,
      timeout: Duration.seconds(10),
    });
    orchestrator.activity(activity).addPlugin(fn, { pluginName: name, ...options });
  };
  const PRE = { stage: ActivityStage.PRE };
  const PAR = { stage: ActivityStage.PARALLEL };
  const POST = { stage: ActivityStage.POST };

  // 1. all plugins succeed
  add('AllSucceed', 'pre-check', SUCCEEDS, PRE);
  add('AllSucceed', 'enrich', SUCCEEDS, PAR);
  add('AllSucceed', 'score', SUCCEEDS, PAR);
  add('AllSucceed', 'notify', SUCCEEDS, POST);
  // 2. a mandatory parallel plugin fails
  add('MandatoryFails', 'pre-check', SUCCEEDS, PRE);
  add('MandatoryFails', 'enrich', SUCCEEDS, PAR);
  add('MandatoryFails', 'broken', THROWS, PAR);
  add('MandatoryFails', 'notify', SUCCEEDS, POST);
  // 3. an optional parallel plugin fails
  add('OptionalFails', 'enrich', SUCCEEDS, PAR);
  add('OptionalFails', 'nice-to-have', THROWS, { ...PAR, mandatory: false });
  add('OptionalFails', 'notify', SUCCEEDS, POST);
  // 4. re-run after a failure: a post plugin fails on the first run only
  add('RerunPost', 'pre-check', SUCCEEDS, PRE);
  add('RerunPost', 'enrich', SUCCEEDS, PAR);
  add('RerunPost', 'archive', SUCCEEDS, { ...POST, order: 10 });
  add('RerunPost', 'flaky', FAILS_WHILE_FLAGGED, { ...POST, order: 20 }, { FAIL_FLAG: flag });
  // 4b. re-run after a failure: a parallel plugin fails on the first run only
  add('RerunParallel', 'pre-check', SUCCEEDS, PRE);
  add('RerunParallel', 'enrich', SUCCEEDS, PAR);
  add('RerunParallel', 'flaky', FAILS_WHILE_FLAGGED, PAR, { FAIL_FLAG: flag });
  add('RerunParallel', 'notify', SUCCEEDS, POST);
  // 5. NoPlugins: none at all
  // 6. a filter policy excludes a mandatory plugin
  add('Filtered', 'eu-only', SUCCEEDS, { ...PAR, filterPolicy: { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['eu'] }) } });
  add('Filtered', 'us-only', SUCCEEDS, { ...PAR, filterPolicy: { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['us'] }) } });
  // 7. a parallel plugin that never answers
  add('Timeout', 'silent', NEVER_ANSWERS, PAR);
  add('Timeout', 'slow', SLOW, PAR);
  add('Heartbeat', 'silent', NEVER_ANSWERS, PAR);
  // 8. one activity, two workflows
  add('Shared', 'pre-check', SUCCEEDS, PRE);
  add('Shared', 'enrich', SUCCEEDS, PAR);
  add('Shared', 'notify', SUCCEEDS, POST);
  // Budget: configuration A (1 pre, 3 parallel, 1 post)
  add('Budget', 'pre-check', SUCCEEDS, PRE);
  add('Budget', 'enrich', SUCCEEDS, PAR);
  add('Budget', 'score', SUCCEEDS, PAR);
  add('Budget', 'verify', SUCCEEDS, PAR);
  add('Budget', 'notify', SUCCEEDS, POST);
  return { stack, flagDir, flag };
}

function workflowOf(activity: string): string {
  return activity.replace(/[A-Z]/g, (c, i) => `${i ? '-' : ''}${c.toLowerCase()}`);
}

function functionName(activity: string, plugin: string): string {
  return `e2e-${activity}-${plugin}`;
}

// ---------------------------------------------------------------------------------------------

maybe('Local engine end to end', () => {
  let app: App;
  let engine: LocalEngine;

  /** Invocations of a plugin function so far (0 when it never ran: its host does not exist). */
  const invocations = (activity: string, plugin: string) => engine.counters().functions[functionName(activity, plugin)]?.invocations ?? 0;

  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');

  /** Runs a workflow to its end and waits until every report and stream record is processed. */
  async function run(workflow: string, uid: string, metadata: Record<string, unknown> = {}): Promise<ExecutionResult> {
    const result = await engine.runWorkflow(workflow, { uid, metadata: { workflow, ...metadata } }).result();
    await engine.idle();
    // E2E_TIMELINE=1 prints each run's outcome and status timeline.
    if (process.env.E2E_TIMELINE) console.log(`${uid}: ${result.status} ${result.error ?? ''} ${result.cause ?? ''}\n${timeline(uid)}`);
    return result;
  }

  /** Asserts the execution status; on a mismatch the message carries the error and the run's timeline. */
  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) {
      throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
    }
  }

  async function doc(uid: string, workflow: string): Promise<Record<string, any>> {
    const item = await engine.statusDocument(uid, workflow);
    if (!item) throw new Error(`no status item ${uid}/${workflow}`);
    return item;
  }

  beforeAll(async () => {
    app = buildApp();
    engine = new LocalEngine({
      app: app.stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      clock: testClock(),
      // Lambda waits about 1 and 2 minutes between asynchronous retries; locally a moment.
      asyncRetryDelaysMs: [100, 200],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    });
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
    if (app) rmSync(app.flagDir, { recursive: true, force: true });
  });

  test('1. all plugins succeed: execution SUCCEEDED, run, activity, stages and plugins Complete', async () => {
    const result = await run('all-succeed', 'ok-1');
    expectStatus(result, 'SUCCEEDED', 'ok-1');
    const item = await doc('ok-1', 'all-succeed');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.AllSucceed;
    expect(activity.status.state).toBe('Complete');
    for (const stage of ['pre', 'async', 'post']) expect(activity[stage].status.state).toBe('Complete');
    expect(activity.pre.mandatory['pre-check'].state).toBe('Complete');
    expect(activity.async.mandatory.enrich.state).toBe('Complete');
    expect(activity.async.mandatory.score.state).toBe('Complete');
    expect(activity.post.mandatory.notify.state).toBe('Complete');
    // Settled: no token kept, nothing awaited.
    expect(activity.async.status.token).toBeUndefined();
    expect(item.awaiting).toBeUndefined();
    for (const plugin of ['pre-check', 'enrich', 'score', 'notify']) expect(invocations('AllSucceed', plugin)).toBe(1);
  });

  test('2. a mandatory parallel plugin fails: execution FAILED with PluginFailed naming it, run Error, post stage never runs', async () => {
    const result = await run('mandatory-fails', 'fail-1');
    expectStatus(result, 'FAILED', 'fail-1');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('broken');
    expect(result.cause).toContain('backend unavailable');

    const item = await doc('fail-1', 'mandatory-fails');
    expect(item.status.state).toBe('Error');
    const activity = item.activities.MandatoryFails;
    expect(activity.status.state).toBe('Error');
    expect(activity.status.message).toContain('broken');
    expect(activity.pre.status.state).toBe('Complete');
    expect(activity.async.status.state).toBe('Error');
    expect(activity.async.status.message).toContain('broken');
    expect(activity.async.mandatory.broken.state).toBe('Error');
    // Lambda's error, after the first attempt and 2 asynchronous retries.
    expect(activity.async.mandatory.broken.message).toBe('Error: backend unavailable (after 3 attempts)');
    expect(activity.async.mandatory.enrich.state).toBe('Complete');
    expect(activity.async.status.token).toBeUndefined();
    expect(item.awaiting).toBeUndefined();
    expect(activity.post.status.state).toBe('Not Started');
    expect(invocations('MandatoryFails', 'broken')).toBe(3);
    expect(invocations('MandatoryFails', 'notify')).toBe(0);
  });

  test('3. an optional parallel plugin fails: run Complete, stage Optional Task Error, plugin Error', async () => {
    const result = await run('optional-fails', 'opt-1');
    expectStatus(result, 'SUCCEEDED', 'opt-1');
    const item = await doc('opt-1', 'optional-fails');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.OptionalFails;
    expect(activity.status.state).toBe('Complete');
    expect(activity.async.status.state).toBe('Optional Task Error');
    expect(activity.async.mandatory.enrich.state).toBe('Complete');
    expect(activity.async.optional['nice-to-have'].state).toBe('Error');
    expect(activity.async.optional['nice-to-have'].message).toContain('backend unavailable');
    expect(activity.post.status.state).toBe('Complete');
    expect(item.awaiting).toBeUndefined();
    expect(invocations('OptionalFails', 'nice-to-have')).toBe(3);
    expect(invocations('OptionalFails', 'notify')).toBe(1);
  });

  test('4. a re-run after a failure runs only the failed plugin (post stage)', async () => {
    writeFileSync(app.flag, '');
    try {
      const first = await run('rerun-post', 'rerun-1');
      expectStatus(first, 'FAILED', 'rerun-1');
      expect(first.error).toBe('PluginFailed');
      expect(first.cause).toContain('flaky');
      const failed = await doc('rerun-1', 'rerun-post');
      expect(failed.status.state).toBe('Error');
      expect(failed.activities.RerunPost.post.status.state).toBe('Error');
      expect(failed.activities.RerunPost.post.mandatory.archive.state).toBe('Complete');
      expect(failed.activities.RerunPost.post.mandatory.flaky.state).toBe('Error');
    } finally {
      rmSync(app.flag, { force: true });
    }
    const before = Object.fromEntries(['pre-check', 'enrich', 'archive', 'flaky'].map((p) => [p, invocations('RerunPost', p)]));
    expect(before).toEqual({ 'pre-check': 1, 'enrich': 1, 'archive': 1, 'flaky': 1 });

    const second = await run('rerun-post', 'rerun-1');
    expectStatus(second, 'SUCCEEDED', 'rerun-1');
    const item = await doc('rerun-1', 'rerun-post');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.RerunPost;
    expect(activity.status.state).toBe('Complete');
    for (const stage of ['pre', 'async', 'post']) expect(activity[stage].status.state).toBe('Complete');
    expect(activity.post.mandatory.flaky.state).toBe('Complete');
    // Only the failed plugin ran again.
    expect(invocations('RerunPost', 'flaky')).toBe(2);
    expect(invocations('RerunPost', 'pre-check')).toBe(1);
    expect(invocations('RerunPost', 'enrich')).toBe(1);
    expect(invocations('RerunPost', 'archive')).toBe(1);
  });

  test('4b. a re-run after a parallel plugin failed waits only for that plugin', async () => {
    writeFileSync(app.flag, '');
    try {
      const first = await run('rerun-parallel', 'rerun-2');
      expectStatus(first, 'FAILED', 'rerun-2');
      expect(first.error).toBe('PluginFailed');
      expect(first.cause).toContain('flaky');
    } finally {
      rmSync(app.flag, { force: true });
    }
    const failed = await doc('rerun-2', 'rerun-parallel');
    const enrichBefore = failed.activities.RerunParallel.async.mandatory.enrich;
    expect(enrichBefore.state).toBe('Complete');
    expect(invocations('RerunParallel', 'flaky')).toBe(3);

    const second = await run('rerun-parallel', 'rerun-2');
    expectStatus(second, 'SUCCEEDED', 'rerun-2');
    const item = await doc('rerun-2', 'rerun-parallel');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.RerunParallel;
    for (const stage of ['pre', 'async', 'post']) expect(activity[stage].status.state).toBe('Complete');
    expect(activity.async.mandatory.flaky.state).toBe('Complete');
    expect(invocations('RerunParallel', 'flaky')).toBe(4);
    expect(invocations('RerunParallel', 'pre-check')).toBe(1);
    expect(invocations('RerunParallel', 'notify')).toBe(1);
    // SNS delivers the re-run's message to every subscriber, so the zero-SDK `enrich` ran again;
    // its entry was final and stays exactly as the first run recorded it.
    expect(invocations('RerunParallel', 'enrich')).toBe(2);
    expect(activity.async.mandatory.enrich).toEqual(enrichBefore);
  });

  test('5. no plugins at all: run Complete, nothing published', async () => {
    const publishes = engine.counters().sns.publishes;
    const result = await run('no-plugins', 'empty-1');
    expectStatus(result, 'SUCCEEDED', 'empty-1');
    const item = await doc('empty-1', 'no-plugins');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.NoPlugins;
    expect(activity.status.state).toBe('Complete');
    for (const stage of ['pre', 'async', 'post']) {
      expect(activity[stage].status.state).toBe('Complete');
      expect(activity[stage].mandatory).toEqual({});
      expect(activity[stage].optional).toEqual({});
    }
    expect(item.awaiting).toBeUndefined();
    expect(engine.counters().sns.publishes).toBe(publishes);
  });

  test('6. a filter policy excludes a mandatory plugin: Do Not Run, not waited for, never invoked', async () => {
    const result = await run('filtered', 'filter-1', { region: 'us' });
    expectStatus(result, 'SUCCEEDED', 'filter-1');
    const item = await doc('filter-1', 'filtered');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.Filtered;
    expect(activity.status.state).toBe('Complete');
    expect(activity.async.status.state).toBe('Complete');
    expect(activity.async.mandatory['eu-only'].state).toBe('Do Not Run');
    expect(activity.async.mandatory['us-only'].state).toBe('Complete');
    expect(invocations('Filtered', 'eu-only')).toBe(0);
    expect(invocations('Filtered', 'us-only')).toBe(1);
  });

  test('7. a parallel plugin that never answers: States.Timeout, stage Error naming it, run Error', async () => {
    const started = Date.now();
    const result = await run('timeout', 'timeout-1');
    expectStatus(result, 'FAILED', 'timeout-1');
    expect(result.error).toBe('States.Timeout');
    expect(result.cause).toContain('silent');
    expect(Date.now() - started).toBeGreaterThanOrEqual(6000);

    const item = await doc('timeout-1', 'timeout');
    expect(item.status.state).toBe('Error');
    const activity = item.activities.Timeout;
    expect(activity.status.state).toBe('Error');
    expect(activity.async.status.state).toBe('Error');
    expect(activity.async.status.message).toBe('States.Timeout: still waiting for silent');
    // The pending plugin is final for this run; the one that reported keeps its state.
    expect(activity.async.mandatory.silent.state).toBe('Error');
    expect(activity.async.mandatory.slow.state).toBe('Complete');
    expect(activity.async.status.token).toBeUndefined();
    expect(item.awaiting).toBeUndefined();
    expect(activity.post.status.state).toBe('Not Started');
  });

  test('7b. no progress within parallelHeartbeat: States.HeartbeatTimeout naming the pending plugin', async () => {
    const result = await run('heartbeat', 'heartbeat-1');
    expectStatus(result, 'FAILED', 'heartbeat-1');
    expect(result.error).toBe('States.HeartbeatTimeout');
    expect(result.cause).toContain('silent');
    const item = await doc('heartbeat-1', 'heartbeat');
    expect(item.status.state).toBe('Error');
    expect(item.activities.Heartbeat.async.status.state).toBe('Error');
    expect(item.activities.Heartbeat.async.status.message).toBe('States.HeartbeatTimeout: still waiting for silent');
    expect(item.activities.Heartbeat.async.mandatory.silent.state).toBe('Error');
  });

  test('8. two workflows sharing one activity run concurrently, each with its own status item', async () => {
    const [a, b] = await Promise.all([
      engine.runWorkflow('shared-a', { uid: 'same-uid', metadata: { workflow: 'shared-a' } }).result(),
      engine.runWorkflow('shared-b', { uid: 'same-uid', metadata: { workflow: 'shared-b' } }).result(),
    ]);
    await engine.idle();
    expectStatus(a, 'SUCCEEDED', 'same-uid');
    expectStatus(b, 'SUCCEEDED', 'same-uid');
    for (const workflow of ['shared-a', 'shared-b']) {
      const item = await doc('same-uid', workflow);
      expect(item.workflow).toBe(workflow);
      expect(item.metadata.workflow).toBe(workflow);
      expect(item.status.state).toBe('Complete');
      expect(Object.keys(item.activities)).toEqual(['Shared']);
      const activity = item.activities.Shared;
      expect(activity.status.state).toBe('Complete');
      for (const stage of ['pre', 'async', 'post']) expect(activity[stage].status.state).toBe('Complete');
    }
    // Each run invoked each plugin once.
    for (const plugin of ['pre-check', 'enrich', 'notify']) expect(invocations('Shared', plugin)).toBe(2);
  });

  /** What the engine counted so far, with invocations split by construct path (orchestrator vs plugins). */
  function snapshot() {
    const c = engine.counters();
    const under = (prefix: string) => engine.assembly.functions.filter((f) => f.path?.startsWith(prefix)).map((f) => f.name);
    const sum = (names: string[]) => names.reduce((n, name) => n + (c.functions[name]?.invocations ?? 0), 0);
    return {
      orchestratorFunctions: under('E2E/Orch/').length,
      orchestrator: sum(under('E2E/Orch/')),
      plugins: sum(under('E2E/Plugins/')),
      perFunction: Object.fromEntries(Object.entries(c.functions).map(([name, f]) => [name, f.invocations])),
      dynamodb: c.dynamodb,
      sns: c.sns,
      transitions: c.stepFunctions.stateTransitions,
    };
  }

  /** The difference of two snapshots (zero entries left out). */
  function costsBetween(before: ReturnType<typeof snapshot>, after: ReturnType<typeof snapshot>) {
    const delta = (a: Record<string, number>, b: Record<string, number>) => Object.fromEntries(Object.entries(b)
      .map(([k, n]) => [k, n - (a[k] ?? 0)]).filter(([, n]) => n !== 0));
    return {
      orchestratorInvocations: after.orchestrator - before.orchestrator,
      pluginInvocations: after.plugins - before.plugins,
      dynamodbReads: after.dynamodb.reads - before.dynamodb.reads,
      dynamodbWrites: after.dynamodb.writes - before.dynamodb.writes,
      dynamodbOther: after.dynamodb.other - before.dynamodb.other,
      snsPublishes: after.sns.publishes - before.sns.publishes,
      snsDeliveries: after.sns.deliveries - before.sns.deliveries,
      transitions: after.transitions - before.transitions,
      perFunction: delta(before.perFunction, after.perFunction),
      dynamodbByOperation: delta(before.dynamodb.byOperation, after.dynamodb.byOperation),
    };
  }

  /** StateEntered + StateRetried events per state machine while `work` runs. */
  async function countTransitions<T>(work: () => Promise<T>): Promise<{ value: T; transitions: Record<string, number> }> {
    const transitions: Record<string, number> = {};
    const onState = (e: { type: string; stateMachineName: string }) => {
      if (e.type === 'StateEntered' || e.type === 'StateRetried') transitions[e.stateMachineName] = (transitions[e.stateMachineName] ?? 0) + 1;
    };
    engine.on('state', onState);
    try {
      return { value: await work(), transitions };
    } finally {
      engine.off('state', onState);
    }
  }

  test('design budgets of one run of configuration A (1 pre, 3 parallel, 1 post plugin)', async () => {
    await engine.idle();
    const before = snapshot();
    // Six run handlers, plus stuck-runs (scheduled) and plugin-registrar (CloudTrail events): neither
    // is invoked by a run, so the per-run budgets below are unchanged.
    expect(before.orchestratorFunctions).toBe(8);
    const { value: result, transitions } = await countTransitions(() => run('budget', 'budget-1'));
    const costs = { ...costsBetween(before, snapshot()), transitionsPerStateMachine: transitions };
    console.log(`configuration A, one run: ${JSON.stringify(costs, null, 2)}`);
    expectStatus(result, 'SUCCEEDED', 'budget-1');
    const item = await doc('budget-1', 'budget');
    expect(item.status.state).toBe('Complete');
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.Budget[stage].status.state).toBe('Complete');

    expect(costs.pluginInvocations).toBe(5);
    expect(costs.orchestratorInvocations).toBeLessThanOrEqual(12);
    // The plugins use no SDK: every DynamoDB request is the orchestrator's.
    expect(costs.dynamodbReads + costs.dynamodbWrites + costs.dynamodbOther).toBeLessThanOrEqual(20);
    expect(costs.snsPublishes).toBe(1);
    expect(costs.snsDeliveries).toBe(3);
    // Pre -> Parallel -> Post; the workflow: StartRun -> Budget -> Succeeded.
    expect(transitions[`${ORCHESTRATOR}-Budget`]).toBe(3);
    expect(Object.values(transitions).reduce((a, b) => a + b, 0)).toBe(6);
  });

  test('throughput: 10 concurrent runs of configuration A stay within the per-run budgets', async () => {
    const runs = 10;
    await engine.idle();
    const before = snapshot();
    const started = Date.now();
    const { value: results, transitions } = await countTransitions(() => Promise.all(Array.from({ length: runs }, (_, i) =>
      engine.runWorkflow('budget', { uid: `load-${i}`, metadata: { workflow: 'budget' } }).result())));
    const seconds = (Date.now() - started) / 1000;
    await engine.idle();
    const costs = costsBetween(before, snapshot());
    results.forEach((result, i) => expectStatus(result, 'SUCCEEDED', `load-${i}`));
    for (let i = 0; i < runs; i++) expect((await doc(`load-${i}`, 'budget')).status.state).toBe('Complete');
    console.log(`${runs} concurrent runs of configuration A in ${seconds.toFixed(1)} s (${(runs / seconds).toFixed(2)} runs/s); `
      + `per run: ${(costs.orchestratorInvocations / runs).toFixed(1)} orchestrator invocations, `
      + `${((costs.dynamodbReads + costs.dynamodbWrites) / runs).toFixed(1)} DynamoDB requests; ${JSON.stringify(costs.perFunction)}`);
    expect(costs.pluginInvocations).toBe(5 * runs);
    expect(costs.orchestratorInvocations).toBeLessThanOrEqual(12 * runs);
    expect(costs.dynamodbReads + costs.dynamodbWrites + costs.dynamodbOther).toBeLessThanOrEqual(20 * runs);
    expect(transitions[`${ORCHESTRATOR}-Budget`]).toBe(3 * runs);
  });
});
