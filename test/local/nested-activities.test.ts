/**
 * A large orchestrator on the local engine: with more than 25 activities the Orchestrator puts them
 * in nested stacks (DESIGN.md "Scale"). The engine reads the nested templates (their parameters come
 * from the parent), and a workflow runs through activities in nested groups with plugins from the
 * orchestrator's stack and from a stack of their own, subscribed to the topics by name.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import { inlineFunction } from './support';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { SCALE } from '../../src/private/scale';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const SUCCEEDS = 'exports.handler = async () => ({ ok: true });';
const ACTIVITIES = Array.from({ length: SCALE.maxActivitiesInStack + 5 }, (_, i) => `Step${i}`);

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));
const maybe = bundled ? describe : describe.skip;

maybe('activities in nested stacks', () => {
  let engine: LocalEngine;
  let orchestrator: Orchestrator;

  beforeAll(async () => {
    const app = new App();
    const stack = new Stack(app, 'Big');
    orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'big', activities: ACTIVITIES });
    new Workflow(stack, 'Flow', { orchestrator, activities: ['Step3', 'Step17'], workflowName: 'flow' });
    const plugins = new Stack(app, 'BigPlugins');
    const step3 = orchestrator.activity('Step3');
    step3.addPlugin(inlineFunction(plugins, 'Check', SUCCEEDS), { stage: ActivityStage.PRE, pluginName: 'check' });
    step3.addPlugin(inlineFunction(plugins, 'Rate', SUCCEEDS), { stage: ActivityStage.PARALLEL, pluginName: 'rate' });
    step3.addPlugin(inlineFunction(plugins, 'Notify', SUCCEEDS), { stage: ActivityStage.POST, pluginName: 'notify' });
    orchestrator.activity('Step17').addPlugin(inlineFunction(stack, 'Enrich', SUCCEEDS), { stage: ActivityStage.PARALLEL, pluginName: 'enrich' });
    engine = new LocalEngine({
      app: stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    });
    await engine.start();
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('the activities really are in nested stacks, and the engine loads every one of them', () => {
    for (const name of ['Step3', 'Step17']) expect(NestedStack.isNestedStack(Stack.of(orchestrator.activity(name)))).toBe(true);
    expect(Object.keys(engine.shape().activities).sort()).toEqual([...ACTIVITIES].sort());
    expect(engine.assembly.topics.map((t) => t.name)).toContain('big-Step17-parallel');
  });

  test('a workflow runs through two nested activities: every stage and plugin completes', async () => {
    const result = await engine.runWorkflow('flow', { uid: 'big-1' }).result();
    if (result.status !== 'SUCCEEDED') {
      throw new Error(`${result.error}: ${result.cause}\n${engine.events.map((e) => formatEvent(e)).join('\n')}`);
    }
    await engine.idle();
    const doc = await engine.statusDocument('big-1', 'flow');
    expect(doc?.status.state).toBe('Complete');
    expect(doc?.activities.Step3.pre.mandatory.check.state).toBe('Complete');
    expect(doc?.activities.Step3.async.mandatory.rate.state).toBe('Complete');
    expect(doc?.activities.Step3.post.mandatory.notify.state).toBe('Complete');
    expect(doc?.activities.Step17.async.mandatory.enrich.state).toBe('Complete');
    expect(doc?.awaiting).toBeUndefined();
    // One message per parallel stage, delivered by the subscriptions made by name.
    expect(engine.counters().sns).toMatchObject({ publishes: 2, deliveries: 2 });
  });
});
