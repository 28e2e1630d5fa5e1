/**
 * Fault matrix on the local engine: one app synthesized in memory (an Orchestrator with one
 * activity and one Workflow per fault, zero-SDK plugins added with `activity.addPlugin`), run on ONE
 * LocalEngine with the bundled handlers and the DynamoDB Local of the jest global setup — as
 * test/local/e2e-runs.test.ts does. Each case injects one production fault and checks that the run
 * ends in the correct final state with nothing lost: the execution's result, the status document,
 * and which functions ran how often.
 *
 * Faults are injected only through what the engine offers publicly: plugin code (inline), SNS
 * `publish` (a duplicate delivery), direct conditional writes to the status table (what the plugin
 * SDK does), the Step Functions API on the engine's endpoint (a late SendTaskSuccess), and the
 * `plugins` option, which maps the status-summary function to a wrapper that kills its sandbox once,
 * `injectDynamoDbFault` (real DynamoDB error responses to the handlers' requests), and the
 * plugin-registrar reached through the engine's CloudTrail and the orchestrator's rule (an SNS
 * Subscribe / Unsubscribe through the SDK). The other faults of issue 6 (plugin
 * never answers, re-run after failure) are in test/local/e2e-runs.test.ts.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { BatchWriteCommand, DynamoDBDocumentClient, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { Duration, Stack, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { RecordedMessage } from './fixtures/reads-full-message';
import { eventually, inlineFunction, loggedRecords, newStack, outsideCallerConfig, testClock } from './support';
import { buildPluginMessage, messageAttributesFromMetadata, SNS_MESSAGE_MAX_BYTES, StatusDocument } from '../../lambda/shared/status';
import { pluginStateUpdate } from '../../lambda/shared/status-store';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { publishedBytes } from '../../local/src/engine/sns';
import { ActivityStage, Orchestrator, PluginOptions, Workflow } from '../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

// ---------------------------------------------------------------------------------------------
// Plugin code (inline, no SDK)

const SUCCEEDS = 'exports.handler = async () => ({ ok: true });';
const THROWS = 'exports.handler = async () => { throw new Error("backend unavailable"); };';
/** Fails its first invocation only (the flag file is renamed away atomically). */
const FAILS_ONCE = 'const fs = require("fs");\n'
  + 'exports.handler = async () => { try { fs.renameSync(process.env.ONCE_FLAG, process.env.ONCE_FLAG + ".used"); } catch { return {}; } throw new Error("transient glitch"); };';
/** Sleeps longer than its registered `timeout` (1 s), well within its function timeout (10 s). */
const SLEEPS_4S = 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 4000)); return {}; };';
/** Hands the work off and reports itself (here: the test writes its reports): plugin-outcome writes nothing. */
const REPORTS_ITSELF = 'exports.handler = async () => ({ state: "In Progress" });';
/** Keeps every SNS event it receives (one file per delivery), then succeeds. */
const RECORDS_EVENT = 'const fs = require("fs"); const path = require("path"); const crypto = require("crypto");\n'
  + 'exports.handler = async (event) => { fs.writeFileSync(path.join(process.env.EVENT_DIR, crypto.randomUUID() + ".json"), JSON.stringify(event)); return {}; };';
/** Waits until the file RELEASE exists (at most 20 s), then succeeds. */
const WAITS_FOR_RELEASE = 'const fs = require("fs");\n'
  + 'exports.handler = async () => { const end = Date.now() + 20000; while (!fs.existsSync(process.env.RELEASE) && Date.now() < end) await new Promise((r) => setTimeout(r, 50)); return {}; };';
/** Works 1.5 s (long enough for a second start of the same run to overlap), then succeeds. */
const WORKS_1500MS = 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 1500)); return {}; };';
/** Arms the one-time status-summary crash, then succeeds: its own report is the record that crashes it. */
const ARMS_SUMMARY_CRASH = 'const fs = require("fs");\n'
  + 'exports.handler = async () => { fs.writeFileSync(process.env.CRASH_FLAG, ""); return {}; };';

/** Registered at run time (it answers the initialize handshake); hands its work off and never reports. */
const HOLDS_THE_STAGE = 'exports.handler = async (event) => event.initialize === true ? { pluginName: "hold" } : { state: "In Progress" };';

/** A business failure with the longest message a plugin entry keeps (180 characters of 3 bytes in UTF-8). */
const FAILS_VERBOSELY = 'exports.handler = async () => ({ state: "Error", message: "\u20ac".repeat(400) });';

/** The shipped status-summary, wrapped: while CRASH_FLAG exists, one invocation kills its sandbox. */
function summaryCrashWrapper(flag: string): string {
  const real = join(__dirname, '..', '..', 'assets', 'handlers', 'status-summary', 'index.js');
  return `const fs = require('fs');
// An indirect require: esbuild leaves the shipped bundle as it is.
const load = require;
const real = load(${JSON.stringify(real)});
exports.handler = async (event, context) => {
  try {
    fs.renameSync(${JSON.stringify(flag)}, ${JSON.stringify(`${flag}.fired`)});
  } catch {
    return real.handler(event, context);
  }
  // The container dies mid-invocation (no answer, no cleanup): Lambda reports Runtime.ExitError.
  process.exit(137);
};
`;
}

// ---------------------------------------------------------------------------------------------
// The app: one activity and one workflow per fault

const STACK = 'Fault';
const ORCHESTRATOR = 'fault';
const ACTIVITIES = ['Throws', 'FailsOnce', 'PreTimeout', 'Duplicate', 'OutOfOrder', 'Expiry', 'SameUid', 'SummaryCrash', 'Noisy', 'Large', 'Throttled', 'Unsubscribed'];
/** Case 8: Noisy's optional plugins fill the document, then Large's plugins get a message over 256 KB. */
const LARGE_WORKFLOW = 'large-message';
/** Registered at run time (plugin table items, as dynamic registration writes them): one function, many plugins. */
const NOISY_PLUGINS = { 'Noisy|pre': 100, 'Noisy|post': 100, 'Large|pre': 90 };
/** 64 KB of metadata (start-run's limit), one field: it is also a message attribute. */
const LARGE_METADATA = { workflow: LARGE_WORKFLOW, blob: 'm'.repeat(64 * 1024 - 60) };

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = bundled ? describe : describe.skip;

interface App {
  readonly stack: Stack;
  readonly dir: string;
  readonly onceFlag: string;
  readonly eventDir: string;
  readonly release: string;
  readonly crashFlag: string;
  readonly summaryWrapper: string;
  readonly largeDir: string;
}

function buildApp(): App {
  const dir = mkdtempSync(join(tmpdir(), 'fault-matrix-'));
  const app: Omit<App, 'stack'> = {
    dir,
    onceFlag: join(dir, 'once'),
    eventDir: mkdtempSync(join(dir, 'events-')),
    release: join(dir, 'release'),
    crashFlag: join(dir, 'crash'),
    summaryWrapper: join(dir, 'status-summary-wrapper.js'),
    largeDir: mkdtempSync(join(dir, 'large-')),
  };
  writeFileSync(app.summaryWrapper, summaryCrashWrapper(app.crashFlag));
  const stack = newStack(STACK);
  const orchestrator = new Orchestrator(stack, 'Orch', {
    orchestratorName: ORCHESTRATOR,
    activities: ACTIVITIES,
    activityOptions: {
      // Step Functions retries a failed pre/post invocation once (1 s), so the failure ends fast.
      Throws: { pluginRetries: 1 },
      // The plugin reports progress (heartbeats) but never finishes: the 4 s timeout fires, not the heartbeat.
      Expiry: { parallelTimeout: Duration.seconds(4), parallelHeartbeat: Duration.seconds(3) },
    },
  });
  for (const activity of ACTIVITIES) {
    new Workflow(stack, `Wf${activity}`, { orchestrator, activities: [activity], workflowName: workflowOf(activity) });
  }
  const plugins = new Construct(stack, 'Plugins');
  const add = (activity: string, name: string, code: string, options: Omit<PluginOptions, 'pluginName'>, env?: Record<string, string>, timeout = Duration.seconds(10)) => {
    const fn: lambda.IFunction = inlineFunction(plugins, `${activity}-${name}`, code, { functionName: functionName(activity, name), environment: env, timeout });
    orchestrator.activity(activity).addPlugin(fn, { pluginName: name, ...options });
  };
  const PRE = { stage: ActivityStage.PRE };
  const PAR = { stage: ActivityStage.PARALLEL };
  const POST = { stage: ActivityStage.POST };

  add('Throws', 'broken', THROWS, PRE);
  add('Throws', 'enrich', SUCCEEDS, PAR);
  add('Throws', 'notify', SUCCEEDS, POST);

  add('FailsOnce', 'flaky', FAILS_ONCE, PRE, { ONCE_FLAG: app.onceFlag });
  add('FailsOnce', 'enrich', SUCCEEDS, PAR);
  add('FailsOnce', 'notify', SUCCEEDS, POST);

  add('PreTimeout', 'sluggish', SLEEPS_4S, { ...PRE, timeout: Duration.seconds(1) });
  add('PreTimeout', 'enrich', SUCCEEDS, PAR);
  add('PreTimeout', 'notify', SUCCEEDS, POST);

  add('Duplicate', 'dup', RECORDS_EVENT, PAR, { EVENT_DIR: app.eventDir });
  add('Duplicate', 'gate', WAITS_FOR_RELEASE, PAR, { RELEASE: app.release }, Duration.seconds(25));
  add('Duplicate', 'notify', SUCCEEDS, POST);

  add('OutOfOrder', 'reporter', REPORTS_ITSELF, PAR);
  add('OutOfOrder', 'notify', SUCCEEDS, POST);

  add('Expiry', 'worker', REPORTS_ITSELF, PAR);
  add('Expiry', 'notify', SUCCEEDS, POST);

  add('SameUid', 'pre-check', SUCCEEDS, PRE);
  add('SameUid', 'work', WORKS_1500MS, PAR);
  add('SameUid', 'notify', SUCCEEDS, POST);

  add('SummaryCrash', 'arm', ARMS_SUMMARY_CRASH, PAR, { CRASH_FLAG: app.crashFlag });
  add('SummaryCrash', 'enrich', SUCCEEDS, PAR);
  add('SummaryCrash', 'notify', SUCCEEDS, POST);

  // Case 8: the noisy function's registrations are written in beforeAll; the reader serves every
  // stage of Large (its code is mapped to test/local/fixtures/reads-full-message.ts) and may read the status item.
  const noisy = inlineFunction(plugins, 'noisy', FAILS_VERBOSELY, { functionName: functionName('Noisy', 'noisy') });
  // Registered without addPlugin (no invoke permission): sequential-stage may invoke it by the orchestrator's tag.
  Tags.of(noisy).add(`cdk-orchestrator:${ORCHESTRATOR}`, 'plugin');
  const reader = inlineFunction(plugins, 'Large-reader', SUCCEEDS, { functionName: functionName('Large', 'reader'), environment: { EVENT_DIR: app.largeDir } });
  for (const stage of [ActivityStage.PRE, ActivityStage.PARALLEL, ActivityStage.POST]) {
    orchestrator.activity('Large').addPlugin(reader, { stage, pluginName: 'reader', ...(stage === ActivityStage.PARALLEL ? {} : { order: 1000 }) });
  }
  orchestrator.grantPluginStatus(reader);
  new Workflow(stack, 'WfLargeMessage', { orchestrator, activities: ['Noisy', 'Large'], workflowName: LARGE_WORKFLOW });

  add('Throttled', 'check', SUCCEEDS, PRE);
  add('Throttled', 'enrich', SUCCEEDS, PAR);
  add('Throttled', 'score', SUCCEEDS, PAR);
  add('Throttled', 'notify', SUCCEEDS, POST);

  // Unsubscribed: 'hold' is subscribed at run time by the test (answers the handshake, then hands its
  // work off and never reports); 'enrich' is deployed with addPlugin and completes.
  // As docs/PLUGIN-PROTOCOL.md asks of a plugin that joins at run time: the orchestrator's tag (the
  // registrar may invoke it for the handshake) and the SNS-to-Lambda permission for its topic.
  const hold = inlineFunction(plugins, 'Unsubscribed-hold', HOLDS_THE_STAGE, { functionName: functionName('Unsubscribed', 'hold') });
  Tags.of(hold).add(`cdk-orchestrator:${ORCHESTRATOR}`, 'plugin');
  hold.addPermission('SnsInvoke', {
    principal: new iam.ServicePrincipal('sns.amazonaws.com'),
    sourceArn: Stack.of(plugins).formatArn({ service: 'sns', resource: `${ORCHESTRATOR}-Unsubscribed-parallel` }),
  });
  add('Unsubscribed', 'enrich', SUCCEEDS, PAR);
  add('Unsubscribed', 'notify', SUCCEEDS, POST);
  return { ...app, stack };
}

function workflowOf(activity: string): string {
  return activity.replace(/[A-Z]/g, (c, i) => `${i ? '-' : ''}${c.toLowerCase()}`);
}

function functionName(activity: string, plugin: string): string {
  return `fault-${activity}-${plugin}`;
}

// ---------------------------------------------------------------------------------------------

maybe('Fault matrix on the local engine', () => {
  let app: App;
  let engine: LocalEngine;
  let db: DynamoDBDocumentClient;
  let statusTable: string;

  const invocations = (activity: string, plugin: string) => engine.counters().functions[functionName(activity, plugin)]?.invocations ?? 0;
  /** An orchestrator handler's function name (its construct is `<stack>/Orch/Handlers/<id>`). */
  const handlerName = (id: string) => engine.assembly.functions.find((f) => f.path === `${STACK}/Orch/Handlers/${id}`)!.name;
  const handlerStats = (id: string) => engine.counters().functions[handlerName(id)] ?? { invocations: 0, errors: 0 };
  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');

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

  /** A plugin's own report, as the plugin SDK writes it (the shared conditional builder). False: refused. */
  async function report(uid: string, workflow: string, activity: string, plugin: string, state: 'In Progress' | 'Complete' | 'Error', message?: string): Promise<boolean> {
    try {
      await db.send(new UpdateCommand(pluginStateUpdate(
        { tableName: statusTable, key: { uid, workflow } },
        { activity, stage: 'async', kind: 'mandatory', plugin, state, message, now: new Date().toISOString() },
      )));
      return true;
    } catch (error) {
      if ((error as Error).name === 'ConditionalCheckFailedException') return false;
      throw error;
    }
  }

  /** Runs a workflow to its end and waits until every report and stream record is processed. */
  async function run(workflow: string, uid: string, metadata: Record<string, unknown> = { workflow }): Promise<ExecutionResult> {
    const result = await engine.runWorkflow(workflow, { uid, metadata }).result();
    await engine.idle();
    if (process.env.E2E_TIMELINE) console.log(`${uid}: ${result.status} ${result.error ?? ''} ${result.cause ?? ''}\n${timeline(uid)}`);
    return result;
  }

  /** Every stage of an activity, and the run, ended in `state`; nothing left waiting. */
  function expectSettled(item: Record<string, any>, activity: string, state: string) {
    expect(item.status.state).toBe(state);
    expect(item.activities[activity].status.state).toBe(state);
    expect(item.activities[activity].async.status.token).toBeUndefined();
    expect(item.awaiting).toBeUndefined();
  }

  beforeAll(async () => {
    app = buildApp();
    engine = new LocalEngine({
      app: app.stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      clock: testClock(),
      asyncRetryDelaysMs: [100, 200],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
      // The shipped status-summary, behind a wrapper that can kill its sandbox once (case 7).
      plugins: {
        [`${STACK}/Orch/Handlers/StatusSummary`]: `${app.summaryWrapper}#handler`,
        [functionName('Large', 'reader')]: `${join(__dirname, 'fixtures', 'reads-full-message.ts')}#handler`,
      },
    });
    await engine.start();
    statusTable = engine.assembly.functions.map((f) => f.environment.STATUS_TABLE_NAME).find(Boolean)!;
    db = DynamoDBDocumentClient.from(new DynamoDBClient({
      endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    }));
    await registerNoisyPlugins();
  }, 300_000);

  /** Case 8's optional plugins, registered as dynamic registration does (one item per plugin), all one function. */
  async function registerNoisyPlugins() {
    const pluginTable = engine.assembly.functions.map((f) => f.environment.PLUGIN_TABLE_NAME).find(Boolean)!;
    const fn = engine.assembly.functions.find((f) => f.name === functionName('Noisy', 'noisy'))!;
    const items = Object.entries(NOISY_PLUGINS).flatMap(([orchestratorId, count]) => Array.from({ length: count }, (_, i) => {
      const pluginName = `optional-plugin-that-fails-with-a-long-message-${String(i).padStart(3, '0')}`;
      return {
        orchestratorId,
        subscriptionArn: `lambda:${fn.arn}:${pluginName}`,
        functionName: fn.name,
        functionArn: fn.arn,
        pluginName,
        mandatory: false,
        order: i,
        source: 'runtime',
      };
    }));
    for (let i = 0; i < items.length; i += 25) {
      await db.send(new BatchWriteCommand({ RequestItems: { [pluginTable]: items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } })) } }));
    }
  }

  beforeEach(async () => engine.idle());

  afterAll(async () => {
    db?.destroy();
    await engine?.stop();
    if (app) rmSync(app.dir, { recursive: true, force: true });
  });

  test('1a. a pre plugin that always throws: retried, then PluginFailed; plugin, stage, activity and run Error; later stages never run', async () => {
    const result = await run('throws', 'throws-1');
    expectStatus(result, 'FAILED', 'throws-1');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('broken');
    expect(result.cause).toContain('backend unavailable');

    const item = await doc('throws-1', 'throws');
    expectSettled(item, 'Throws', 'Error');
    const activity = item.activities.Throws;
    expect(activity.pre.status.state).toBe('Error');
    // pluginRetries 1: two attempts, both counted and the last error kept.
    expect(activity.pre.mandatory.broken).toMatchObject({ state: 'Error', attempts: 2, message: 'Error: backend unavailable (after 2 attempts)' });
    expect(activity.async.status.state).toBe('Not Started');
    expect(activity.post.status.state).toBe('Not Started');
    expect(invocations('Throws', 'broken')).toBe(2);
    expect(invocations('Throws', 'enrich')).toBe(0);
    expect(invocations('Throws', 'notify')).toBe(0);
  });

  test('1b. a pre plugin that throws once: Step Functions retries it, the run completes and the entry is Complete', async () => {
    writeFileSync(app.onceFlag, '');
    const result = await run('fails-once', 'once-1');
    expectStatus(result, 'SUCCEEDED', 'once-1');
    const item = await doc('once-1', 'fails-once');
    expectSettled(item, 'FailsOnce', 'Complete');
    const flaky = item.activities.FailsOnce.pre.mandatory.flaky;
    expect(flaky.state).toBe('Complete');
    expect(flaky.attempts).toBe(1);
    // The failed attempt's message is not kept on a Complete entry.
    expect(flaky.message).toBeUndefined();
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.FailsOnce[stage].status.state).toBe('Complete');
    expect(invocations('FailsOnce', 'flaky')).toBe(2);
    expect(invocations('FailsOnce', 'enrich')).toBe(1);
    expect(invocations('FailsOnce', 'notify')).toBe(1);
  });

  test('2. a pre plugin exceeding its timeout: Error "timed out after 1 s" without a retry; its late result changes nothing', async () => {
    const result = await run('pre-timeout', 'timeout-1');
    expectStatus(result, 'FAILED', 'timeout-1');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('sluggish');
    expect(result.cause).toContain('timed out after 1 s');
    // Decided at the 1 s timeout, not when the plugin returned (4 s).
    expect(result.stopDate!.getTime() - result.startDate.getTime()).toBeLessThan(4000);

    const failed = await doc('timeout-1', 'pre-timeout');
    expectSettled(failed, 'PreTimeout', 'Error');
    expect(failed.activities.PreTimeout.pre.status.state).toBe('Error');
    expect(failed.activities.PreTimeout.pre.mandatory.sluggish).toMatchObject({ state: 'Error', message: 'timed out after 1 s' });
    // The plugin is still running; it finishes (the engine counts an invocation when it ends) to nobody.
    await eventually(() => invocations('PreTimeout', 'sluggish') === 1, 10_000, 'the abandoned plugin invocation to end');
    await engine.idle();
    expect(invocations('PreTimeout', 'sluggish')).toBe(1); // never retried: it may still have been running
    expect(await doc('timeout-1', 'pre-timeout')).toEqual(failed);
    expect(invocations('PreTimeout', 'enrich')).toBe(0);
    expect(invocations('PreTimeout', 'notify')).toBe(0);
  });

  test('3. duplicate SNS delivery of the parallel message, while waiting and after the run: the run completes once, entries are not rewritten', async () => {
    const outcomeBefore = handlerStats('PluginOutcome').invocations;
    const execution = engine.runWorkflow('duplicate', { uid: 'dup-1', metadata: { workflow: 'duplicate' } });
    // dup has received the message and its outcome is recorded; gate holds the stage.
    const [delivered] = (await eventually(() => (readdirSync(app.eventDir).length > 0 ? readdirSync(app.eventDir) : undefined), 15_000, 'the first delivery'))!;
    const firstDup = await eventually(async () => {
      const entry = (await doc('dup-1', 'duplicate')).activities.Duplicate.async.mandatory.dup;
      return entry.state === 'Complete' ? entry : undefined;
    }, 15_000, 'dup to be Complete');
    const sns = JSON.parse(readFileSync(join(app.eventDir, delivered), 'utf8')).Records[0].Sns;
    const redeliver = () => engine.publish(sns.TopicArn, sns.Message,
      Object.fromEntries(Object.entries(sns.MessageAttributes as Record<string, { Type: string; Value: string }>)
        .map(([name, a]) => [name, { DataType: a.Type, StringValue: a.Value }])));

    // SNS delivers the same message again (to every subscriber: dup and gate run twice).
    redeliver();
    await eventually(() => invocations('Duplicate', 'dup') === 2 && handlerStats('PluginOutcome').invocations >= outcomeBefore + 2, 15_000, 'the duplicate delivery to dup');
    expect((await doc('dup-1', 'duplicate')).activities.Duplicate.async.mandatory.dup).toEqual(firstDup);
    expect((await doc('dup-1', 'duplicate')).activities.Duplicate.async.status.state).toBe('In Progress');

    writeFileSync(app.release, '');
    const result = await execution.result();
    await engine.idle();
    expectStatus(result, 'SUCCEEDED', 'dup-1');
    const item = await doc('dup-1', 'duplicate');
    expectSettled(item, 'Duplicate', 'Complete');
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.Duplicate[stage].status.state).toBe('Complete');
    expect(item.activities.Duplicate.async.mandatory.dup).toEqual(firstDup);
    expect(item.activities.Duplicate.async.mandatory.gate.state).toBe('Complete');
    expect(invocations('Duplicate', 'dup')).toBe(2);
    expect(invocations('Duplicate', 'gate')).toBe(2);
    expect(invocations('Duplicate', 'notify')).toBe(1);
    // Four destination records (two per plugin), two recorded, two refused as already Complete.
    expect(handlerStats('PluginOutcome').invocations - outcomeBefore).toBe(4);

    // A duplicate after the run ended: nothing is written (updatedAt included), nothing runs again.
    redeliver();
    await eventually(() => invocations('Duplicate', 'dup') === 3 && invocations('Duplicate', 'gate') === 3, 15_000, 'the late duplicate');
    await engine.idle();
    expect(await doc('dup-1', 'duplicate')).toEqual(item);
    expect(handlerStats('PluginOutcome').invocations - outcomeBefore).toBe(6);
    expect(invocations('Duplicate', 'notify')).toBe(1);
    expect(engine.execution(result.executionArn)?.status).toBe('SUCCEEDED');
  });

  test('4. out-of-order status updates: a late In Progress after Complete is refused, before and after the stage settles', async () => {
    const execution = engine.runWorkflow('out-of-order', { uid: 'order-1', metadata: { workflow: 'out-of-order' } });
    await eventually(async () => (await engine.statusDocument('order-1', 'out-of-order'))?.activities.OutOfOrder.async.mandatory.reporter, 15_000, 'the reporter entry');
    await eventually(() => invocations('OutOfOrder', 'reporter') === 1, 15_000, 'the reporter to be invoked');

    // The plugin's writes, delivered out of order: Complete lands before its earlier In Progress.
    expect(await report('order-1', 'out-of-order', 'OutOfOrder', 'reporter', 'Complete')).toBe(true);
    expect(await report('order-1', 'out-of-order', 'OutOfOrder', 'reporter', 'In Progress')).toBe(false);
    expect(await report('order-1', 'out-of-order', 'OutOfOrder', 'reporter', 'Error', 'late failure')).toBe(false);

    const result = await execution.result();
    await engine.idle();
    expectStatus(result, 'SUCCEEDED', 'order-1');
    const item = await doc('order-1', 'out-of-order');
    expectSettled(item, 'OutOfOrder', 'Complete');
    expect(item.activities.OutOfOrder.async.status.state).toBe('Complete');
    expect(item.activities.OutOfOrder.async.mandatory.reporter.state).toBe('Complete');
    expect(item.activities.OutOfOrder.async.mandatory.reporter.message).toBeUndefined();
    expect(invocations('OutOfOrder', 'notify')).toBe(1);

    // Late again, after the run: still refused, the document is unchanged.
    expect(await report('order-1', 'out-of-order', 'OutOfOrder', 'reporter', 'In Progress')).toBe(false);
    expect(await report('order-1', 'out-of-order', 'OutOfOrder', 'reporter', 'Complete')).toBe(false);
    await engine.idle();
    expect(await doc('order-1', 'out-of-order')).toEqual(item);
  });

  test('5. task token expired: States.Timeout records Error; a late report and a late SendTaskSuccess are ignored', async () => {
    const execution = engine.runWorkflow('expiry', { uid: 'expiry-1', metadata: { workflow: 'expiry' } });
    const token: string = await eventually(async () => (await engine.statusDocument('expiry-1', 'expiry'))?.activities.Expiry.async.status.token, 15_000, 'the stored task token');
    // The plugin reports progress (each report heartbeats the task) but never finishes.
    let done = false;
    const progress = (async () => {
      while (!done) {
        await report('expiry-1', 'expiry', 'Expiry', 'worker', 'In Progress', 'still working');
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    })();
    const result = await execution.result().finally(() => { done = true; });
    await progress;
    await engine.idle();
    expectStatus(result, 'FAILED', 'expiry-1');
    expect(result.error).toBe('States.Timeout');
    expect(result.cause).toContain('worker');

    const failed = await doc('expiry-1', 'expiry');
    expectSettled(failed, 'Expiry', 'Error');
    expect(failed.activities.Expiry.async.status).toMatchObject({ state: 'Error', message: 'States.Timeout: still waiting for worker' });
    expect(failed.activities.Expiry.async.mandatory.worker).toMatchObject({ state: 'Error', message: 'States.Timeout: no result in time' });
    expect(failed.activities.Expiry.post.status.state).toBe('Not Started');

    // The plugin finally answers: its report is refused (the entry is final), so nothing re-opens the stage.
    expect(await report('expiry-1', 'expiry', 'Expiry', 'worker', 'Complete')).toBe(false);
    // Anyone answering the expired token is told so; the execution stays FAILED.
    const sfn = new SFNClient({ endpoint: engine.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    try {
      await expect(sfn.send(new SendTaskSuccessCommand({ taskToken: token, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });
    } finally {
      sfn.destroy();
    }
    await engine.idle();
    expect(engine.execution(result.executionArn)?.status).toBe('FAILED');
    expect(await doc('expiry-1', 'expiry')).toEqual(failed);
    expect(invocations('Expiry', 'notify')).toBe(0);
  });

  test('6. two concurrent runs with the same uid: one runs, the other fails with RunInProgress; the document is one consistent run', async () => {
    const input = { uid: 'same-1', metadata: { workflow: 'same-uid', region: 'eu' } };
    const [a, b] = await Promise.all([
      engine.runWorkflow('same-uid', input).result(),
      engine.runWorkflow('same-uid', input).result(),
    ]);
    await engine.idle();
    const results = [a, b].sort((x, y) => x.status.localeCompare(y.status));
    expect(results.map((r) => r.status)).toEqual(['FAILED', 'SUCCEEDED']);
    expect(results[0].error).toBe('RunInProgress');
    expect(results[0].cause).toContain('same-1');

    const item = await doc('same-1', 'same-uid');
    expect(item.metadata).toEqual({ workflow: 'same-uid', region: 'eu' });
    expectSettled(item, 'SameUid', 'Complete');
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.SameUid[stage].status.state).toBe('Complete');
    // One run's worth of work: each plugin ran once.
    for (const plugin of ['pre-check', 'work', 'notify']) expect(invocations('SameUid', plugin)).toBe(1);

    // A later start of the same uid is a re-run of a Complete run: it succeeds and redoes nothing.
    const again = await engine.runWorkflow('same-uid', input).result();
    await engine.idle();
    expectStatus(again, 'SUCCEEDED', 'same-1');
    expect((await doc('same-1', 'same-uid')).status.state).toBe('Complete');
    for (const plugin of ['pre-check', 'work', 'notify']) expect(invocations('SameUid', plugin)).toBe(1);
  });

  test('7. status-summary crashes (its sandbox dies) once: the stream retries the batch and the run completes', async () => {
    const before = handlerStats('StatusSummary');
    const dlq = engine.assembly.queues.find((q) => q.path?.startsWith(`${STACK}/Orch/Handlers/StatusSummaryDeadLetterQueue`))!;
    const droppedBefore = engine.queueMessages(dlq.arn).length;
    const result = await run('summary-crash', 'crash-1');
    expectStatus(result, 'SUCCEEDED', 'crash-1');
    // The crash happened, once.
    expect(existsSync(`${app.crashFlag}.fired`)).toBe(true);
    expect(existsSync(app.crashFlag)).toBe(false);
    const after = handlerStats('StatusSummary');
    expect(after.errors - before.errors).toBe(1);
    expect(engine.logs(handlerName('StatusSummary')).some((line) => line.includes('retrying batch') && line.includes('Runtime.ExitError'))).toBe(true);

    const item = await doc('crash-1', 'summary-crash');
    expectSettled(item, 'SummaryCrash', 'Complete');
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.SummaryCrash[stage].status.state).toBe('Complete');
    expect(item.activities.SummaryCrash.async.mandatory.arm.state).toBe('Complete');
    expect(item.activities.SummaryCrash.async.mandatory.enrich.state).toBe('Complete');
    expect(invocations('SummaryCrash', 'notify')).toBe(1);
    // Nothing given up on.
    expect(engine.queueMessages(dlq.arn)).toHaveLength(droppedBefore);
  });

  test('8. a plugin message over 256 KB: delivered shortened with a statusRef; the plugin reads the full document; the run completes', async () => {
    const uid = 'large-1';
    const result = await run(LARGE_WORKFLOW, uid, LARGE_METADATA);
    expectStatus(result, 'SUCCEEDED', uid);
    const item = await doc(uid, LARGE_WORKFLOW);
    expect(item.status.state).toBe('Complete');
    expect(item.awaiting).toBeUndefined();
    // 290 optional plugins failed with 180-character messages: recorded, never holding the run.
    for (const stage of ['pre', 'post']) {
      expect(item.activities.Noisy[stage].status.state).toBe('Optional Task Error');
      expect(Object.values(item.activities.Noisy[stage].optional)).toHaveLength(100);
    }
    expect(Object.values(item.activities.Noisy.pre.optional as Record<string, { state: string; message: string }>)
      .every((entry) => entry.state === 'Error' && entry.message.length === 180)).toBe(true);
    for (const stage of ['pre', 'async', 'post']) expect(item.activities.Large[stage].mandatory.reader.state).toBe('Complete');
    expect(item.activities.Large.status.state).toBe('Complete');

    // The reader got one message per stage, each within SNS's limit, shortened, with the reference.
    const records: RecordedMessage[] = readdirSync(app.largeDir).map((file) => JSON.parse(readFileSync(join(app.largeDir, file), 'utf8')));
    expect(records.map((r) => r.message.stage).sort()).toEqual(['async', 'post', 'pre']);
    for (const { publishedBytes: delivered, message, full } of records) {
      expect(delivered).toBeLessThanOrEqual(SNS_MESSAGE_MAX_BYTES);
      expect(message.truncated).toBe(true);
      expect(message.statusRef).toEqual({ tableName: statusTable, key: { uid, workflow: LARGE_WORKFLOW } });
      // What had to go: the other activity's plugin maps (its status stays).
      const statusOnly = { status: expect.any(Object) };
      expect(message.activities.Noisy).toEqual({ ...statusOnly, pre: statusOnly, async: statusOnly, post: statusOnly });
      // Through the reference, the plugin read everything: metadata, every entry with its message.
      expect(full.truncated).toBeUndefined();
      expect(full).toMatchObject({ uid, workflow: LARGE_WORKFLOW, activity: 'Large', stage: message.stage, now: message.now, blob: LARGE_METADATA.blob });
      const noisy = (full.activities.Noisy as any).pre.optional;
      expect(Object.keys(noisy)).toHaveLength(100);
      expect(noisy['optional-plugin-that-fails-with-a-long-message-099'].message).toBe(`${'\u20ac'.repeat(179)}\u2026`);
      expect(JSON.stringify(full)).not.toContain('"token"');
    }
    // The message in full is over the limit, and the engine's SNS refuses it as AWS does.
    const full = records.find((r) => r.message.stage === 'async')!.full;
    const body = JSON.stringify(buildPluginMessage(item as StatusDocument, { activity: 'Large', stage: 'async', now: full.now }));
    const attributes = messageAttributesFromMetadata(item.metadata) as Record<string, { DataType: string; StringValue: string }>;
    expect(publishedBytes({ message: body, attributes })).toBeGreaterThan(SNS_MESSAGE_MAX_BYTES);
    expect(() => engine.publish(`${ORCHESTRATOR}-Large-parallel`, body, attributes)).toThrow('Message too long');
    expect(invocations('Noisy', 'noisy')).toBe(290);
    expect(invocations('Large', 'reader')).toBe(3);
  }, 180_000);
  describe('9. throttled status writes (real DynamoDB error responses injected into the handlers\' requests)', () => {
    /** The DynamoDB client's attempts per request (its default: 4 in @aws-sdk/client-dynamodb 3.11xx): this many throttles fail the handler. */
    const SDK_ATTEMPTS = 4;
    afterEach(() => engine.clearDynamoDbFaults());

    /** Orchestrator handler errors (failed invocations) so far. */
    const handlerErrors = () => ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome']
      .reduce((total, id) => total + handlerStats(id).errors, 0);

    async function expectCompleteThrottledRun(uid: string) {
      const item = await doc(uid, 'throttled');
      expectSettled(item, 'Throttled', 'Complete');
      for (const stage of ['pre', 'async', 'post']) expect(item.activities.Throttled[stage].status.state).toBe('Complete');
      expect(item.activities.Throttled.pre.mandatory.check.state).toBe('Complete');
      expect(item.activities.Throttled.async.mandatory.enrich.state).toBe('Complete');
      expect(item.activities.Throttled.async.mandatory.score.state).toBe('Complete');
      expect(item.activities.Throttled.post.mandatory.notify.state).toBe('Complete');
    }

    test('a: two throttled writes are retried by the handler\'s SDK client: no handler fails, every plugin runs once', async () => {
      const before = { errors: handlerErrors(), check: invocations('Throttled', 'check'), notify: invocations('Throttled', 'notify') };
      const fault = engine.injectDynamoDbFault({ error: 'ProvisionedThroughputExceededException', times: 2, operation: 'UpdateItem', tableName: statusTable });
      const result = await run('throttled', 'throttle-1');
      expectStatus(result, 'SUCCEEDED', 'throttle-1');
      expect(fault.injected).toBe(2);
      expect(handlerErrors()).toBe(before.errors);
      await expectCompleteThrottledRun('throttle-1');
      expect(invocations('Throttled', 'check') - before.check).toBe(1);
      expect(invocations('Throttled', 'notify') - before.notify).toBe(1);
    });

    test('b: a stage start throttled past the SDK\'s retries fails sequential-stage; Step Functions retries the task and the run completes', async () => {
      const before = { errors: handlerStats('SequentialStage').errors, check: invocations('Throttled', 'check') };
      // The pre stage's start: its first write, every attempt the SDK makes.
      const fault = engine.injectDynamoDbFault({
        error: 'ThrottlingException',
        times: SDK_ATTEMPTS,
        operation: 'UpdateItem',
        tableName: statusTable,
        match: ({ body }) => body.Key?.uid?.S === 'throttle-2' && Object.values(body.ExpressionAttributeNames ?? {}).includes('startTime'),
      });
      const result = await run('throttled', 'throttle-2');
      expectStatus(result, 'SUCCEEDED', 'throttle-2');
      expect(fault.injected).toBe(SDK_ATTEMPTS);
      expect(handlerStats('SequentialStage').errors - before.errors).toBe(1);
      await expectCompleteThrottledRun('throttle-2');
      expect(invocations('Throttled', 'check') - before.check).toBe(1);
    });

    test('c: status-summary\'s settling write throttled past the SDK\'s retries: the stream redelivers the batch and the run completes', async () => {
      const before = handlerStats('StatusSummary').errors;
      const dlq = engine.assembly.queues.find((q) => q.path?.startsWith(`${STACK}/Orch/Handlers/StatusSummaryDeadLetterQueue`))!;
      const droppedBefore = engine.queueMessages(dlq.arn).length;
      // The write that records the settled stage and removes the token (conditioned on it).
      const fault = engine.injectDynamoDbFault({
        error: 'ProvisionedThroughputExceededException',
        times: SDK_ATTEMPTS,
        operation: 'UpdateItem',
        tableName: statusTable,
        match: ({ body }) => body.Key?.uid?.S === 'throttle-3' && /\bREMOVE\b/.test(body.UpdateExpression ?? '')
          && Object.values(body.ExpressionAttributeNames ?? {}).includes('token') && /=/.test(body.ConditionExpression ?? ''),
      });
      const result = await run('throttled', 'throttle-3');
      expectStatus(result, 'SUCCEEDED', 'throttle-3');
      expect(fault.injected).toBe(SDK_ATTEMPTS);
      expect(handlerStats('StatusSummary').errors - before).toBeGreaterThanOrEqual(1);
      await expectCompleteThrottledRun('throttle-3');
      expect(engine.queueMessages(dlq.arn)).toHaveLength(droppedBefore);
    });

    test('d: plugin-outcome\'s write throttled past the SDK\'s retries: Lambda retries the asynchronous invocation and the run completes', async () => {
      const before = handlerStats('PluginOutcome').errors;
      const fault = engine.injectDynamoDbFault({
        error: 'ThrottlingException',
        times: SDK_ATTEMPTS,
        operation: 'UpdateItem',
        tableName: statusTable,
        // enrich's outcome only (score's is recorded at the same time, by another invocation).
        match: ({ body }) => body.Key?.uid?.S === 'throttle-4' && ':poSentAt' in (body.ExpressionAttributeValues ?? {})
          && Object.values(body.ExpressionAttributeNames ?? {}).includes('enrich'),
      });
      const result = await run('throttled', 'throttle-4');
      expectStatus(result, 'SUCCEEDED', 'throttle-4');
      expect(fault.injected).toBe(SDK_ATTEMPTS);
      expect(handlerStats('PluginOutcome').errors - before).toBe(1);
      await expectCompleteThrottledRun('throttle-4');
    });
  });
  test('13. a plugin unsubscribed mid-run no longer holds the stage: the registrar marks its pending entry Do Not Run in the running execution', async () => {
    // As an operator would: subscribe with the SNS API. The engine's CloudTrail records the call and
    // the orchestrator's rule hands it to the registrar, which registers hold after its handshake.
    const registrar = handlerName('PluginRegistrar');
    const topic = engine.assembly.topics.find((t) => t.name === `${ORCHESTRATOR}-Unsubscribed-parallel`)!;
    const hold = engine.assembly.functions.find((f) => f.name === functionName('Unsubscribed', 'hold'))!;
    const sns = new SNSClient(outsideCallerConfig(engine));
    const { SubscriptionArn } = await sns.send(new SubscribeCommand({ TopicArn: topic.arn, Protocol: 'lambda', Endpoint: hold.arn }));
    const registered = await eventually(() => loggedRecords(engine, registrar, 'Plugin registered').find((r) => r.subscriptionArn === SubscriptionArn),
      30_000, 'the registration of hold');
    expect(registered).toMatchObject({ plugin: 'hold', functionArn: hold.arn });

    const execution = engine.runWorkflow('unsubscribed', { uid: 'unsub-1', metadata: { workflow: 'unsubscribed' } });
    // The parallel stage waits for hold: enrich is done, hold handed its work off and will never report.
    await eventually(async () => {
      const stage = (await engine.statusDocument('unsub-1', 'unsubscribed'))?.activities.Unsubscribed.async;
      return stage?.status.token && stage.mandatory.enrich?.state === 'Complete' && stage.mandatory.hold?.state === 'Not Started';
    }, 45_000, 'the parallel stage waiting for hold');
    expect(engine.execution(execution.executionArn)!.status).toBe('RUNNING');

    await sns.send(new UnsubscribeCommand({ SubscriptionArn }));
    const unregistered = await eventually(() => loggedRecords(engine, registrar, 'Plugin unregistered').find((r) => r.subscriptionArn === SubscriptionArn),
      30_000, 'the unregistration of hold');
    expect(unregistered).toMatchObject({ plugin: 'hold', released: 1 });
    sns.destroy();

    const result = await execution.result();
    await engine.idle();
    expectStatus(result, 'SUCCEEDED', 'unsub-1');
    const item = await doc('unsub-1', 'unsubscribed');
    expectSettled(item, 'Unsubscribed', 'Complete');
    expect(item.activities.Unsubscribed.async.status.state).toBe('Complete');
    expect(item.activities.Unsubscribed.async.mandatory.hold).toMatchObject({ state: 'Do Not Run', message: expect.stringContaining('Unsubscribed during the run') });
    expect(invocations('Unsubscribed', 'notify')).toBe(1);

    // Runs started afterwards never create an entry for it.
    const next = await run('unsubscribed', 'unsub-2');
    expectStatus(next, 'SUCCEEDED', 'unsub-2');
    expect(Object.keys((await doc('unsub-2', 'unsubscribed')).activities.Unsubscribed.async.mandatory)).toEqual(['enrich']);
    expect(invocations('Unsubscribed', 'hold')).toBe(2); // the handshake and the first run's delivery
  }, 120_000);
});
