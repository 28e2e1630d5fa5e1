/**
 * status-summary, the bundled handler, fed with records read from DynamoDB Local's real Streams
 * API (test/support/status-stream.ts). Step Functions answers are scripted on the local engine's
 * AWS endpoint (test/support/scripted-aws.ts), like Step Functions (a used token cannot be used again).
 * Plugins report through the shared conditional builder, as the plugin SDK will.
 */
import { StatusDocument } from '../../lambda/shared/status';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Renewals';

let h: Harness;
beforeAll(async () => { h = await Harness.create('summary'); });
afterAll(async () => h.close());
beforeEach(async () => {
  await h.stream.read(); // each test starts with a quiet stream
  h.fake.clearCalls();
});

let counter = 0;

interface WaitingStage {
  readonly uid: string;
  readonly activity: string;
  readonly token: string;
  report(plugin: string, state: 'In Progress' | 'Complete' | 'Error' | 'Do Not Run', message?: string, kind?: 'mandatory' | 'optional'): Promise<boolean>;
  item(): Promise<StatusDocument>;
}

/** A run whose parallel stage waits for `mandatory` (and `optional`) plugins, its own record already delivered. */
async function waitingStage(mandatory: string[], optional: string[] = []): Promise<WaitingStage> {
  const activity = `Sum${++counter}`;
  for (const name of mandatory) await h.registerPlugin({ activity, stage: 'async', name });
  for (const name of optional) await h.registerPlugin({ activity, stage: 'async', name, mandatory: false });
  const uid = `renewal-${counter}-${Date.now()}`;
  const token = `token-${uid}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn('p'), token });
  await h.pump();
  h.fake.clearCalls();
  return {
    uid,
    activity,
    token,
    report: (plugin, state, message, kind) => h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin, state, message, kind }),
    item: async () => (await h.item(uid, WORKFLOW))!,
  };
}

const sfnCalls = () => h.fake.callsTo('sfn').map((call) => call.action);

test('answers the token once, when the last mandatory plugin completes, and then stops waiting', async () => {
  const run = await waitingStage(['A', 'B', 'C']);
  for (const plugin of ['A', 'B', 'C']) {
    await run.report(plugin, 'In Progress');
    await h.pump();
  }
  await run.report('A', 'Complete');
  await run.report('B', 'Complete');
  await h.pump();
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(0);

  await run.report('C', 'Complete');
  await h.pump();

  const success = h.fake.callsTo('sfn', 'SendTaskSuccess');
  expect(success).toHaveLength(1);
  expect(success[0].input.taskToken).toBe(run.token);
  expect(JSON.parse(success[0].input.output)).toMatchObject({ state: 'Complete' });
  const item = await run.item();
  expect(item.activities[run.activity].async.status.state).toBe('Complete');
  expect(item.activities[run.activity].async.status.token).toBeUndefined();
  expect(item).not.toHaveProperty('awaiting');

  // Later changes no longer wake status-summary up (its filter needs `awaiting`).
  h.fake.clearCalls();
  await h.patch(run.uid, WORKFLOW, ['activities', run.activity, 'post', 'status', 'state'], 'In Progress');
  expect(await h.pump()).toBe(0);
});

test('progress without completion sends a heartbeat, so HeartbeatSeconds measures silence', async () => {
  const run = await waitingStage(['A', 'B']);
  await run.report('A', 'Complete');
  await h.pump();
  expect(sfnCalls()).toEqual(['SendTaskHeartbeat']);
  expect(h.fake.callsTo('sfn')[0].input.taskToken).toBe(run.token);
  expect((await run.item()).activities[run.activity].async.status.state).toBe('In Progress');
});

test('a mandatory plugin Error fails the task with PluginFailed "<plugin>: <message>" and records it up to the run', async () => {
  const run = await waitingStage(['Rating', 'Fraud']);
  await run.report('Rating', 'Complete');
  await run.report('Fraud', 'Error', 'blocked by sanctions list');
  await h.pump();

  const failure = h.fake.callsTo('sfn', 'SendTaskFailure');
  expect(failure).toHaveLength(1);
  expect(failure[0].input).toMatchObject({ taskToken: run.token, error: 'PluginFailed', cause: 'Fraud: blocked by sanctions list' });
  const item = await run.item();
  expect(item.activities[run.activity].async.status).toEqual({ state: 'Error', message: 'Fraud: blocked by sanctions list', startTime: expect.any(String) });
  expect(item.activities[run.activity].status).toEqual({ state: 'Error', message: 'async: Fraud: blocked by sanctions list' });
  expect(item.status.state).toBe('Error');
  expect(item).not.toHaveProperty('awaiting');
});

test('optional plugins never hold the execution: Mandatory Completed answers the token, then settles when they finish', async () => {
  const run = await waitingStage(['Core'], ['Extra']);
  await run.report('Core', 'Complete');
  await h.pump();
  expect(sfnCalls()).toEqual(['SendTaskSuccess']);
  let item = await run.item();
  expect(item.activities[run.activity].async.status.state).toBe('Mandatory Completed');
  expect(item.activities[run.activity].async.status.token).toBeUndefined();
  expect(item.awaiting).toEqual(new Set([run.activity]));

  await run.report('Extra', 'Complete', undefined, 'optional');
  await h.pump();
  item = await run.item();
  expect(item.activities[run.activity].async.status.state).toBe('Complete');
  expect(item).not.toHaveProperty('awaiting');
  expect(sfnCalls()).toEqual(['SendTaskSuccess']); // no second answer
});

describe('a token that expired or was already used is not an error', () => {
  test.each(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist'])('%s: the stage is still settled and the token removed', async (errorName) => {
    const run = await waitingStage(['Slow']);
    h.fake.expireToken(run.token, errorName);
    await run.report('Slow', 'Complete');

    await expect(h.pump()).resolves.toBeGreaterThan(0);

    expect(sfnCalls()).toEqual(['SendTaskSuccess']);
    const item = await run.item();
    expect(item.activities[run.activity].async.status.state).toBe('Complete');
    expect(item.activities[run.activity].async.status.token).toBeUndefined();
    expect(item).not.toHaveProperty('awaiting');
  });

  test('a redelivered batch answers nothing twice and changes nothing', async () => {
    const run = await waitingStage(['Once']);
    await run.report('Once', 'Complete');
    const batch = (await h.stream.read()).filter((record) => record.dynamodb?.NewImage?.awaiting);
    await h.handlers.statusSummary({ Records: batch });
    const settled = await run.item();

    await expect(h.handlers.statusSummary({ Records: batch })).resolves.toBeUndefined();

    expect(await run.item()).toEqual(settled);
    // The outcome is recorded (token removed) before the answer: a redelivery finds no token to answer.
    expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
  });

  test('the outcome is recorded before the token is answered, so the post stage sees the stage done', async () => {
    const run = await waitingStage(['Fast']);
    await run.report('Fast', 'Complete');
    let stateWhenAnswered: string | undefined;
    h.fake.beforeNextStepFunctions('SendTaskSuccess', async () => {
      stateWhenAnswered = (await run.item()).activities[run.activity].async.status.state;
    });
    await h.pump();
    expect(stateWhenAnswered).toBe('Complete');
  });

  test('an answer Step Functions could not take puts the token back, and the redelivery answers it', async () => {
    const run = await waitingStage(['Retry']);
    await run.report('Retry', 'Complete');
    const batch = (await h.stream.read()).filter((record) => record.dynamodb?.NewImage?.awaiting);
    // More failures than the SDK's own retries: the handler sees the error.
    h.fake.failStepFunctions('SendTaskSuccess', 'InternalFailure', 10);
    await expect(h.handlers.statusSummary({ Records: batch })).rejects.toThrow();
    const afterFailure = await run.item();
    expect(afterFailure.activities[run.activity].async.status.token).toBeDefined();
    expect(afterFailure.activities[run.activity].async.status.state).toBe('Complete');

    h.fake.failStepFunctions('SendTaskSuccess', 'InternalFailure', 0);
    await h.handlers.statusSummary({ Records: (await h.stream.read()).filter((record) => record.dynamodb?.NewImage?.awaiting) });
    expect((await run.item()).activities[run.activity].async.status.token).toBeUndefined();
    expect(h.fake.callsTo('sfn', 'SendTaskSuccess').length).toBeGreaterThanOrEqual(2);
  });
});

test('a late In Progress after Complete is refused, and the stage never moves backwards', async () => {
  const run = await waitingStage(['Late', 'Other']);
  await run.report('Late', 'Complete');
  await expect(run.report('Late', 'In Progress')).resolves.toBe(false);
  await run.report('Other', 'Error', 'first failure');
  await expect(run.report('Other', 'In Progress')).resolves.toBe(false);
  await expect(run.report('Other', 'Complete')).resolves.toBe(false);

  const stage = (await run.item()).activities[run.activity].async;
  expect(stage.mandatory.Late.state).toBe('Complete');
  expect(stage.mandatory.Other).toMatchObject({ state: 'Error', message: 'first failure' });
});

test('concurrent plugin updates to one item lose nothing, and the token is answered exactly once', async () => {
  const plugins = Array.from({ length: 20 }, (_, i) => `Plugin${i}`);
  const run = await waitingStage(plugins);
  await Promise.all(plugins.map((plugin) => run.report(plugin, 'In Progress')));
  await Promise.all(plugins.map((plugin) => run.report(plugin, 'Complete')));

  const stage = (await run.item()).activities[run.activity].async;
  expect(Object.values(stage.mandatory).map((entry) => entry.state)).toEqual(plugins.map(() => 'Complete'));

  await h.pump();
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
  expect((await run.item()).activities[run.activity].async.status.state).toBe('Complete');
});

test('records without awaiting are ignored', async () => {
  const activity = `Sum${++counter}`;
  const uid = `quiet-${counter}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  const records = await h.stream.read();
  expect(records.length).toBeGreaterThan(0);
  h.fake.clearCalls();
  await h.handlers.statusSummary({ Records: records });
  expect(h.fake.calls).toEqual([]);
});

describe('bad input fails with InvalidStreamEvent and writes nothing', () => {
  test.each<[string, unknown]>([
    ['not an object', 'records'],
    ['no Records', {}],
    ['Records not a list', { Records: {} }],
    ['a record without its dynamodb section', { Records: [{ eventName: 'MODIFY' }] }],
  ])('%s', async (_case, event) => {
    expect((await rejectionOf(h.handlers.statusSummary(event))).name).toBe('InvalidStreamEvent');
    expect(h.fake.calls).toEqual([]);
  });
});
