/**
 * Whole activity runs through the bundled handlers, against DynamoDB Local and its real stream.
 * `runActivity` below plays the activity state machine (DESIGN.md: Retry on PluginInvocationFailed,
 * waitForTaskToken, Catch -> stage-failure) and scripted answers on the local engine's AWS endpoint
 * (test/support/scripted-aws.ts) play Step Functions, SNS and Lambda. Holds the handlers to the budget:
 * <= 20 orchestrator DynamoDB requests and <= 12 invocations for 1 pre, 3 parallel, 1 post plugin.
 */
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Underwriting';

let h: Harness;
beforeAll(async () => { h = await Harness.create('activity'); });
afterAll(async () => h.close());
beforeEach(async () => {
  await h.stream.read();
  h.fake.clearCalls();
});

interface ActivityRun {
  readonly outcome: 'succeeded' | 'failed';
  readonly error?: string;
  /** Orchestrator handler invocations, status-summary included. */
  readonly invocations: number;
}

/**
 * The activity state machine: Pre (Retry), Parallel (waitForTaskToken; `parallelPlugins` acts as the
 * subscribed plugins, pumping the stream after each report), Post (Retry); any error -> RecordFailure.
 */
async function runActivity(uid: string, activity: string, maxAttempts: number, parallelPlugins: () => Promise<number>): Promise<ActivityRun> {
  let invocations = 0;
  const sequential = async (stage: 'pre' | 'post') => {
    for (let attempt = 1; ; attempt++) {
      invocations++;
      try {
        return await h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage, topicArn: h.topicArn(stage), maxAttempts });
      } catch (error) {
        // Retry: PluginInvocationFailed, MaxAttempts = maxAttempts - 1 (no waiting in a test).
        if ((error as Error).name !== 'PluginInvocationFailed' || attempt >= maxAttempts) throw error;
      }
    }
  };
  try {
    await sequential('pre');
    const token = `token-${uid}-${activity}-${Date.now()}`;
    invocations++;
    await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn('parallel'), token });
    invocations += await h.pump();
    invocations += await parallelPlugins();
    const answer = h.fake.callsTo('sfn').find((call) => call.input.taskToken === token && call.action !== 'SendTaskHeartbeat');
    if (!answer) throw Object.assign(new Error('timed out'), { name: 'States.Timeout' });
    if (answer.action === 'SendTaskFailure') throw Object.assign(new Error(answer.input.cause), { name: answer.input.error });
    await sequential('post');
    return { outcome: 'succeeded', invocations };
  } catch (error) {
    const { name, message } = error as Error;
    invocations++;
    const failure = await rejectionOf(h.handlers.stageFailure({
      uid, workflow: WORKFLOW, activity, error: { Error: name, Cause: JSON.stringify({ errorType: name, errorMessage: message }) },
    }));
    return { outcome: 'failed', error: failure.name, invocations };
  }
}

/** The subscribed parallel plugins: each reports In Progress, then Complete, as separate writes. */
function completingPlugins(uid: string, activity: string, plugins: string[]): () => Promise<number> {
  return async () => {
    let invocations = 0;
    for (const state of ['In Progress', 'Complete'] as const) {
      for (const plugin of plugins) {
        await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin, state });
        invocations += await h.pump(); // worst case: every plugin write is its own stream batch
      }
    }
    return invocations;
  };
}

async function registerActivity(activity: string): Promise<void> {
  await h.registerPlugin({ activity, stage: 'pre', name: `${activity}-Check` });
  for (const name of ['Rate', 'Fraud', 'Credit']) await h.registerPlugin({ activity, stage: 'async', name });
  await h.registerPlugin({ activity, stage: 'post', name: `${activity}-Notify` });
}

test('1 pre, 3 parallel and 1 post plugin complete the activity and the run within the request budget', async () => {
  const activity = 'Assess';
  await registerActivity(activity);
  h.fake.onInvoke(`${activity}-Check`, () => ({ ok: true }));
  h.fake.onInvoke(`${activity}-Notify`, () => ({ ok: true }));
  const uid = 'app-1';

  await h.handlers.startRun({ input: { uid, metadata: { product: 'home' } }, workflow: WORKFLOW, activities: [activity] });
  const run = await runActivity(uid, activity, 3, completingPlugins(uid, activity, ['Rate', 'Fraud', 'Credit']));

  expect(run.outcome).toBe('succeeded');
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.status.state).toBe('Complete');
  expect(item.activities[activity].status.state).toBe('Complete');
  for (const stage of ['pre', 'async', 'post'] as const) expect(item.activities[activity][stage].status.state).toBe('Complete');
  expect(item).not.toHaveProperty('awaiting');
  expect(h.fake.published()).toHaveLength(1);
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
  expect(h.fake.invocations().map((call) => call.input.functionName)).toEqual([`${activity}-Check`, `${activity}-Notify`]);

  const invocations = run.invocations + 1; // + start-run
  const requests = h.fake.dynamoDbRequests();
  process.stdout.write(`activity run budget: ${invocations} invocations, ${requests.length} DynamoDB requests (${requests.join(', ')})\n`);
  expect(invocations).toBeLessThanOrEqual(12);
  expect(requests.length).toBeLessThanOrEqual(20);
});

test('a re-run after a post-stage failure skips the finished stages and runs only the failed plugin', async () => {
  const activity = 'Bind';
  await registerActivity(activity);
  h.fake.onInvoke(`${activity}-Check`, () => undefined);
  let notifyCalls = 0;
  h.fake.onInvoke(`${activity}-Notify`, () => {
    notifyCalls++;
    if (notifyCalls <= 2) throw new Error('mail server down');
  });
  const uid = 'app-2';
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });

  const first = await runActivity(uid, activity, 2, completingPlugins(uid, activity, ['Rate', 'Fraud', 'Credit']));
  expect(first).toMatchObject({ outcome: 'failed', error: 'PluginFailed' });
  let item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].post.mandatory[`${activity}-Notify`]).toMatchObject({ state: 'Error', attempts: 2 });
  expect(item.status.state).toBe('Error');

  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  h.fake.clearCalls();
  const second = await runActivity(uid, activity, 2, async () => 0);

  expect(second.outcome).toBe('succeeded');
  expect(h.fake.invocations().map((call) => call.input.functionName)).toEqual([`${activity}-Notify`]);
  expect(h.fake.published()).toHaveLength(0); // the parallel stage was done: answered at once
  expect(h.fake.callsTo('sfn').map((call) => call.action)).toEqual(['SendTaskSuccess']);
  item = (await h.item(uid, WORKFLOW))!;
  expect(item.status.state).toBe('Complete');
  expect(item.activities[activity].post.mandatory[`${activity}-Notify`].state).toBe('Complete');
});

test('a mandatory parallel plugin failure fails the activity with PluginFailed and names the plugin', async () => {
  const activity = 'Price';
  await registerActivity(activity);
  h.fake.onInvoke(`${activity}-Check`, () => undefined);
  const uid = 'app-3';
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });

  const run = await runActivity(uid, activity, 3, async () => {
    await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Rate', state: 'Complete' });
    await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Fraud', state: 'Error', message: 'identity mismatch' });
    return h.pump();
  });

  expect(run).toMatchObject({ outcome: 'failed', error: 'PluginFailed' });
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].async.status).toMatchObject({ state: 'Error', message: 'Fraud: identity mismatch' });
  expect(item.activities[activity].status.state).toBe('Error');
  expect(item.status.state).toBe('Error');
  expect(h.fake.invocations(`${activity}-Notify`)).toHaveLength(0); // post never ran
});
