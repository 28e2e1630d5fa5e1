/**
 * stage-failure, the bundled handler, against DynamoDB Local. Step Functions, SNS and Lambda
 * answers are scripted on the local engine's AWS endpoint (test/support/scripted-aws.ts).
 */
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Payouts';

let h: Harness;
beforeAll(async () => { h = await Harness.create('failure'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

let counter = 0;

async function newRun(activity: string): Promise<string> {
  const uid = `payout-${++counter}-${Date.now()}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  return uid;
}

/** A run whose parallel stage waits for `plugins`. */
async function waitingRun(plugins: string[]): Promise<{ uid: string; activity: string; token: string }> {
  const activity = `Fail${++counter}`;
  for (const name of plugins) await h.registerPlugin({ activity, stage: 'async', name });
  const uid = await newRun(activity);
  const token = `token-${uid}`;
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn('p'), token });
  h.fake.clearCalls();
  return { uid, activity, token };
}

const failureEvent = (uid: string, activity: string, Error: string, Cause?: string) =>
  ({ uid, workflow: WORKFLOW, activity, error: { Error, ...(Cause === undefined ? {} : { Cause }) } });

describe('a parallel stage that times out', () => {
  test.each(['States.Timeout', 'States.HeartbeatTimeout'])('%s: records Error naming the pending plugins and rethrows it', async (errorName) => {
    const { uid, activity } = await waitingRun(['Alpha', 'Beta', 'Gamma']);
    await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Alpha', state: 'Complete' });
    await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Gamma', state: 'In Progress' });

    const error = await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, errorName)));

    expect(error.name).toBe(errorName);
    expect(error.message).toContain('Beta, Gamma');
    const item = (await h.item(uid, WORKFLOW))!;
    const stage = item.activities[activity].async;
    expect(stage.status.state).toBe('Error');
    expect(stage.status.message).toBe(`${errorName}: still waiting for Beta, Gamma`);
    expect(stage.status.token).toBeUndefined();
    expect(stage.mandatory.Alpha.state).toBe('Complete');
    expect(stage.mandatory.Beta).toMatchObject({ state: 'Error', message: `${errorName}: no result in time` });
    expect(stage.mandatory.Gamma.state).toBe('Error');
    expect(item.activities[activity].status).toEqual({ state: 'Error', message: `async: ${errorName}: still waiting for Beta, Gamma` });
    expect(item.status.state).toBe('Error');
    expect(item).not.toHaveProperty('awaiting');
  });

  test('a plugin reporting after the timeout cannot revive the stage', async () => {
    const { uid, activity } = await waitingRun(['Slow']);
    await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, 'States.Timeout')));
    await expect(h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Slow', state: 'Complete' })).resolves.toBe(false);
    expect((await h.item(uid, WORKFLOW))!.activities[activity].async.mandatory.Slow.state).toBe('Error');
  });
});

test('a failure the stage handler already recorded (PluginFailed) is rethrown without another write', async () => {
  const activity = `Fail${++counter}`;
  await h.registerPlugin({ activity, stage: 'pre', name: 'Broken' });
  h.fake.onInvoke('Broken', () => { throw new Error('no such account'); });
  const uid = await newRun(activity);
  const stageError = await rejectionOf(h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage: 'pre', topicArn: 'arn:t', maxAttempts: 1 }));
  const before = await h.item(uid, WORKFLOW);
  h.fake.clearCalls();

  // What Step Functions hands to Catch for a Lambda error: the errorType and a JSON cause.
  const cause = JSON.stringify({ errorType: stageError.name, errorMessage: stageError.message, trace: [] });
  const error = await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, 'PluginFailed', cause)));

  expect(error.name).toBe('PluginFailed');
  expect(error.message).toBe(`stage pre of activity ${activity} failed: Broken: Error: no such account (after 1 attempt)`);
  expect(await h.item(uid, WORKFLOW)).toEqual(before);
  expect(h.fake.dynamoDbRequests()).toEqual(['GetItem']);
});

test('an error no handler recorded (e.g. a Lambda service error in pre) is recorded on the stage in progress', async () => {
  const activity = `Fail${++counter}`;
  const uid = await newRun(activity);
  await h.patch(uid, WORKFLOW, ['activities', activity, 'pre', 'status'], { state: 'In Progress', startTime: 'T1' });
  const cause = JSON.stringify({ errorType: 'Lambda.TooManyRequestsException', errorMessage: 'Rate exceeded' });

  const error = await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, 'Lambda.TooManyRequestsException', cause)));

  expect(error.name).toBe('Lambda.TooManyRequestsException');
  expect(error.message).toBe(`stage pre of activity ${activity} failed: Rate exceeded`);
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].pre.status).toMatchObject({ state: 'Error', message: 'Rate exceeded' });
  expect(item.activities[activity].status).toEqual({ state: 'Error', message: 'pre: Rate exceeded' });
  expect(item.status.state).toBe('Error');
});

test('a failure before any stage started still fails the activity and the run', async () => {
  const activity = `Fail${++counter}`;
  const uid = await newRun(activity);
  await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, 'States.TaskFailed', 'plain text cause')));
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].status).toEqual({ state: 'Error', message: 'plain text cause' });
  expect(item.status.state).toBe('Error');
});

test('when the Catch records the failure before status-summary, both agree and nothing is answered or recorded twice', async () => {
  const { uid, activity, token } = await waitingRun(['Fraud']);
  await h.pump();
  await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Fraud', state: 'Error', message: 'sanctions hit' });
  // The execution moved on to the Catch first (e.g. the task timed out): the token is gone.
  h.fake.expireToken(token);
  await rejectionOf(h.handlers.stageFailure(failureEvent(uid, activity, 'PluginFailed', 'Fraud: sanctions hit')));
  const recorded = await h.item(uid, WORKFLOW);
  expect(recorded!.activities[activity].async.status).toMatchObject({ state: 'Error', message: 'Fraud: sanctions hit' });
  expect(recorded!.activities[activity].async.status.token).toBeUndefined();

  // Now status-summary goes on from its (stale) image: its write finds the token gone, so it answers nothing.
  await expect(h.pump()).resolves.toBe(1);
  expect(h.fake.callsTo('sfn', 'SendTaskFailure')).toHaveLength(0);
  expect(await h.item(uid, WORKFLOW)).toEqual(recorded);
});

test('a missing status item: the original error is rethrown and nothing is created', async () => {
  const count = await h.itemCount();
  const error = await rejectionOf(h.handlers.stageFailure(failureEvent('nobody', 'Any', 'StatusItemMissing', '{"errorMessage":"No status item"}')));
  expect(error.name).toBe('StatusItemMissing');
  expect(error.message).toContain('No status item');
  expect(await h.itemCount()).toBe(count);
});

describe('bad input fails with InvalidFailureEvent and writes nothing', () => {
  const valid = { uid: 'u', workflow: WORKFLOW, activity: 'A', error: { Error: 'X', Cause: 'y' } };
  test.each<[string, unknown]>([
    ['not an object', 7],
    ['no error', { ...valid, error: undefined }],
    ['an error without a name', { ...valid, error: { Cause: 'y' } }],
    ['a non-string cause', { ...valid, error: { Error: 'X', Cause: 5 } }],
    ['no activity', { ...valid, activity: undefined }],
  ])('%s', async (_case, event) => {
    expect((await rejectionOf(h.handlers.stageFailure(event))).name).toBe('InvalidFailureEvent');
    expect(h.fake.calls).toEqual([]);
  });
});
