/**
 * Plugins built with the plugin SDK (the bundle the npm package ships, lib/sdk/index.js), end to end
 * on the local engine: synthesized state machines, the bundled handlers, DynamoDB Local with its
 * stream, SNS delivery and Lambda destinations. The plugins are added with
 * `addPlugin(fn, { ..., reportsStatus: true })`, so their functions get the status table's name and
 * access, and a PARALLEL plugin's success is not reported a second time through its destination.
 *
 * Also measured: orchestrator invocations per run of one SDK PARALLEL plugin vs one zero-SDK plugin.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { inlineFunction, newStack } from './support';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, PluginOptions, Workflow } from '../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const SDK = join(__dirname, '..', '..', 'lib', 'sdk', 'index.js');
const built = existsSync(SDK) && existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = built ? describe : describe.skip;

/** A plugin function's code: the SDK wrapping `body` (an async function of the message). */
const sdkPlugin = (pluginName: string, body: string, config = '') => `const { pluginHandler, PluginBusinessError } = require(${JSON.stringify(SDK)});
exports.handler = pluginHandler({ pluginName: ${JSON.stringify(pluginName)}${config} }, async (message) => { ${body} });`;

/** Succeeds when the run's amount is not negative; a negative amount is a business failure. */
const CHECKS_AMOUNT = 'if (message.amount < 0) throw new PluginBusinessError(`amount must not be negative, got ${message.amount}`);';
const DECLINES = 'throw new PluginBusinessError(`declined for ${message.uid}: risk too high`);';
const ZERO_SDK = 'exports.handler = async () => ({ ok: true });';

const ORCHESTRATOR = 'sdk';
const ACTIVITIES = ['SdkStages', 'SdkMandatoryError', 'SdkOptionalError', 'OneSdkPlugin', 'OneZeroSdkPlugin'];
const workflowOf = (activity: string) => activity.toLowerCase();
const functionName = (activity: string, plugin: string) => `sdk-${activity}-${plugin}`;

function buildApp(): Stack {
  const stack = newStack('SdkE2E');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: ORCHESTRATOR, activities: ACTIVITIES });
  for (const activity of ACTIVITIES) new Workflow(stack, `Wf${activity}`, { orchestrator, activities: [activity], workflowName: workflowOf(activity) });
  const plugins = new Construct(stack, 'Plugins');
  const add = (activity: string, name: string, code: string, options: Omit<PluginOptions, 'pluginName'>) => {
    const fn = inlineFunction(plugins, `${activity}-${name}`, code, { functionName: functionName(activity, name), timeout: Duration.seconds(10) });
    orchestrator.activity(activity).addPlugin(fn, { pluginName: name, ...options });
  };
  const SDK_PRE = { stage: ActivityStage.PRE, reportsStatus: true };
  const SDK_PAR = { stage: ActivityStage.PARALLEL, reportsStatus: true };

  add('SdkStages', 'check', sdkPlugin('check', CHECKS_AMOUNT), SDK_PRE);
  add('SdkStages', 'rate', sdkPlugin('rate', 'return undefined;'), SDK_PAR);
  add('SdkMandatoryError', 'rate', sdkPlugin('rate', 'return undefined;'), SDK_PAR);
  add('SdkMandatoryError', 'risk', sdkPlugin('risk', DECLINES), SDK_PAR);
  add('SdkOptionalError', 'rate', sdkPlugin('rate', 'return undefined;'), SDK_PAR);
  add('SdkOptionalError', 'marketing', sdkPlugin('marketing', DECLINES, ', mandatory: false'), { ...SDK_PAR, mandatory: false });
  add('OneSdkPlugin', 'rate', sdkPlugin('rate', 'return undefined;'), SDK_PAR);
  add('OneZeroSdkPlugin', 'rate', ZERO_SDK, { stage: ActivityStage.PARALLEL });
  return stack;
}

maybe('Plugin SDK end to end (local engine)', () => {
  let engine: LocalEngine;

  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');
  const invocations = (name: string) => engine.counters().functions[name]?.invocations ?? 0;

  async function run(activity: string, uid: string, metadata: Record<string, unknown> = {},
  ): Promise<{ result: ExecutionResult; item: Record<string, any> }> {
    const workflow = workflowOf(activity);
    const result = await engine.runWorkflow(workflow, { uid, metadata: { workflow, ...metadata } }).result();
    await engine.idle();
    const item = await engine.statusDocument(uid, workflow);
    if (!item) throw new Error(`no status item ${uid}/${workflow}`);
    return { result, item };
  }

  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
  }

  beforeAll(async () => {
    engine = new LocalEngine({
      app: buildApp(),
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      asyncRetryDelaysMs: [100, 200],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    });
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('an SDK plugin in PRE and one in the PARALLEL stage: run Complete, each ran once and reported itself', async () => {
    const { result, item } = await run('SdkStages', 'stages-1', { amount: 100 });
    expectStatus(result, 'SUCCEEDED', 'stages-1');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.SdkStages;
    for (const stage of ['pre', 'async', 'post']) expect(activity[stage].status.state).toBe('Complete');
    expect(activity.pre.mandatory.check.state).toBe('Complete');
    expect(activity.async.mandatory.rate.state).toBe('Complete');
    expect(item.awaiting).toBeUndefined();
    expect(invocations(functionName('SdkStages', 'check'))).toBe(1);
    expect(invocations(functionName('SdkStages', 'rate'))).toBe(1);
  });

  test('a PRE SDK plugin\'s business error fails the run at once (no retry), with its message', async () => {
    const before = invocations(functionName('SdkStages', 'check'));
    const { result, item } = await run('SdkStages', 'stages-2', { amount: -5 });
    expectStatus(result, 'FAILED', 'stages-2');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('amount must not be negative, got -5');
    expect(item.status.state).toBe('Error');
    expect(item.activities.SdkStages.pre.mandatory.check).toMatchObject({ state: 'Error', message: 'amount must not be negative, got -5' });
    expect(item.activities.SdkStages.async.status.state).toBe('Not Started');
    expect(invocations(functionName('SdkStages', 'check')) - before).toBe(1);
  });

  test('a mandatory PARALLEL SDK plugin\'s business error: run Error naming it, not retried by Lambda', async () => {
    const { result, item } = await run('SdkMandatoryError', 'mandatory-1');
    expectStatus(result, 'FAILED', 'mandatory-1');
    expect(result.error).toBe('PluginFailed');
    expect(result.cause).toContain('risk: declined for mandatory-1: risk too high');
    expect(item.status.state).toBe('Error');
    const activity = item.activities.SdkMandatoryError;
    expect(activity.async.status.state).toBe('Error');
    expect(activity.async.mandatory.risk).toMatchObject({ state: 'Error', message: 'declined for mandatory-1: risk too high' });
    expect(activity.async.mandatory.rate.state).toBe('Complete');
    expect(activity.post.status.state).toBe('Not Started');
    expect(invocations(functionName('SdkMandatoryError', 'risk'))).toBe(1);
  });

  test('an optional PARALLEL SDK plugin\'s business error: run Complete, stage Optional Task Error', async () => {
    const { result, item } = await run('SdkOptionalError', 'optional-1');
    expectStatus(result, 'SUCCEEDED', 'optional-1');
    expect(item.status.state).toBe('Complete');
    const activity = item.activities.SdkOptionalError;
    expect(activity.async.status.state).toBe('Optional Task Error');
    expect(activity.async.optional.marketing).toMatchObject({ state: 'Error', message: 'declined for optional-1: risk too high' });
    expect(activity.async.mandatory.rate.state).toBe('Complete');
    expect(activity.post.status.state).toBe('Complete');
    expect(invocations(functionName('SdkOptionalError', 'marketing'))).toBe(1);
  });

  test('orchestrator invocations per run: one SDK PARALLEL plugin vs one zero-SDK plugin', async () => {
    const orchestratorInvocations = () => Object.entries(engine.counters().functions)
      .filter(([name]) => !name.startsWith('sdk-'))
      .reduce((sum, [, stats]) => sum + stats.invocations, 0);
    const perFunction = () => Object.fromEntries(Object.entries(engine.counters().functions)
      .filter(([name]) => !name.startsWith('sdk-')).map(([name, stats]) => [name, stats.invocations]));
    const measure = async (activity: string, uid: string) => {
      await engine.idle();
      const before = orchestratorInvocations();
      const beforeEach = perFunction();
      const { result, item } = await run(activity, uid);
      expectStatus(result, 'SUCCEEDED', uid);
      expect(item.activities[activity].async.mandatory.rate.state).toBe('Complete');
      const after = perFunction();
      const changed = Object.fromEntries(Object.keys(after).map((name) => [name, after[name] - (beforeEach[name] ?? 0)]).filter(([, n]) => n !== 0));
      return { total: orchestratorInvocations() - before, perFunction: changed };
    };
    const sdk = await measure('OneSdkPlugin', 'count-sdk');
    const zero = await measure('OneZeroSdkPlugin', 'count-zero');
    console.log(`orchestrator invocations per run: SDK PARALLEL plugin ${sdk.total} ${JSON.stringify(sdk.perFunction)}; `
      + `zero-SDK PARALLEL plugin ${zero.total} ${JSON.stringify(zero.perFunction)}`);
    // The zero-SDK plugin's success reaches plugin-outcome through its destination. The SDK plugin
    // reports itself (no destination on success), but its In Progress report is one more stream
    // record for status-summary: no more invocations in all than the zero-SDK plugin.
    expect(sdk.total).toBeLessThanOrEqual(zero.total);
    const outcome = Object.keys(zero.perFunction).find((name) => name.includes('PluginOutcome'));
    expect(outcome).toBeDefined();
    expect(sdk.perFunction[outcome!]).toBeUndefined();
  });
});
