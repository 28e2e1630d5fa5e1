/**
 * End to end on the local engine: an Orchestrator with one activity and a Workflow, one plugin per
 * stage registered at "deploy" time (Custom::AWS), run through the synthesized state machines and
 * the bundled handlers (assets/handlers, built by `node scripts/bundle-handlers.mjs`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { inlineFunction, newStack } from './support';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

const PLUGIN = 'exports.handler = async (event) => { globalThis.seen = (globalThis.seen || 0) + 1; return { state: "Complete" }; };';

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = bundled ? describe : describe.skip;

maybe('Orchestrator + Workflow, one plugin per stage', () => {
  let engine: LocalEngine;

  beforeAll(async () => {
    const stack = newStack('E2E');
    const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'e2e' });
    new Workflow(stack, 'Onboard', { orchestrator, activities: ['Step1'], workflowName: 'onboard' });
    const activity = orchestrator.activity('Step1');
    const plugin = (id: string): lambda.IFunction => inlineFunction(stack, id, PLUGIN, { timeout: Duration.seconds(10) });
    activity.addPlugin(plugin('PreCheck'), { stage: ActivityStage.PRE, pluginName: 'pre-check' });
    activity.addPlugin(plugin('Enrich'), { stage: ActivityStage.PARALLEL, pluginName: 'enrich' });
    activity.addPlugin(plugin('Notify'), { stage: ActivityStage.POST, pluginName: 'notify' });
    engine = new LocalEngine({ app: stack, logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent' });
    await engine.start();
  }, 90_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('recognises the workflow and its activity from the state-machine shapes', () => {
    const shape = engine.shape();
    expect(Object.keys(shape.workflows)).toEqual(['onboard']);
    expect(shape.workflows.onboard.activities).toEqual(['Step1']);
    expect(Object.keys(shape.activities)).toEqual(['Step1']);
  });

  test('a run completes every stage and the status document says so', async () => {
    const before = engine.counters();
    const started = Date.now();
    const result = await engine.runWorkflow('onboard', { uid: 'policy-1', metadata: { workflow: 'onboard', region: 'eu' } }).result();
    const elapsed = Date.now() - started;
    if (result.status !== 'SUCCEEDED') {
      throw new Error(`${result.error}: ${result.cause}\n${engine.events.map((e) => formatEvent(e)).join('\n')}`);
    }
    await engine.idle();
    const doc = await engine.statusDocument('policy-1', 'onboard');
    // The post stage's last write completes the activity and the run.
    expect(doc?.status.state).toBe('Complete');
    expect(doc?.activities.Step1.status.state).toBe('Complete');
    for (const stage of ['pre', 'async', 'post']) expect(doc?.activities.Step1[stage].status.state).toBe('Complete');
    expect(doc?.awaiting).toBeUndefined();

    const kinds = new Set(engine.events.map((e) => `${e.kind}:${e.to}`));
    expect(kinds).toContain('plugin:Complete');
    expect(kinds).toContain('stage:Complete');
    const counters = engine.counters();
    const writes = counters.dynamodb.writes - before.dynamodb.writes;
    const reads = counters.dynamodb.reads - before.dynamodb.reads;
    // start-run's PutItem; pre: stage start, plugin Complete; parallel: token stored, plugin-outcome's
    // Complete, status-summary's settle; post: stage start, plugin Complete (activity and run Complete).
    expect(writes).toBe(8);
    // The budget of one activity run (DESIGN.md "Cost"): at most 20 DynamoDB requests.
    expect(writes + reads).toBeLessThanOrEqual(20);
    // The workflow's and the activity's states, each entered once: nothing retried.
    expect(counters.stepFunctions.stateTransitions - before.stepFunctions.stateTransitions).toBe(6);
    expect(counters.sns.publishes).toBe(1);
    // Printed so a reader of the test log sees what a run costs locally.
    console.log(`run took ${elapsed} ms; ${counters.totals.invocations} invocations, ${counters.dynamodb.reads} reads, `
      + `${counters.dynamodb.writes} writes, ${counters.stepFunctions.stateTransitions} transitions`);
  });

  test('concurrent runs all succeed (local throughput)', async () => {
    const runs = 10;
    const started = Date.now();
    const results = await Promise.all(Array.from({ length: runs }, (_, i) =>
      engine.runWorkflow('onboard', { uid: `batch-${i}`, metadata: { workflow: 'onboard' } }).result()));
    const seconds = (Date.now() - started) / 1000;
    expect(results.map((r) => r.status)).toEqual(Array(runs).fill('SUCCEEDED'));
    console.log(`${runs} concurrent runs in ${seconds.toFixed(1)} s: ${(runs / seconds).toFixed(2)} runs/s`);
  });
});
