/**
 * sequential-stage, the bundled handler, against DynamoDB Local. Plugins are scripted Lambda functions
 * on the local engine's AWS endpoint (test/support/scripted-aws.ts).
 */
import type { SNSEvent } from 'aws-lambda';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Claims';

let h: Harness;
beforeAll(async () => { h = await Harness.create('sequential'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

let counter = 0;
/** A fresh activity name per test, so registry entries never leak between tests. */
const newActivity = () => `Act${++counter}`;
const newUid = () => `claim-${counter}-${Date.now()}`;

async function newRun(activity: string, activities = [activity], metadata: Record<string, unknown> = { region: 'EU' }): Promise<string> {
  const uid = newUid();
  await h.handlers.startRun({ input: { uid, metadata }, workflow: WORKFLOW, activities });
  h.fake.clearCalls();
  return uid;
}

const stageEvent = (uid: string, activity: string, stage: 'pre' | 'post', maxAttempts = 3) =>
  ({ uid, workflow: WORKFLOW, activity, stage, topicArn: h.topicArn(`${activity}-${stage}`), maxAttempts });

/** A plugin that throws its first `failures` invocations. */
function flakyPlugin(name: string, failures: number, message = 'downstream unavailable'): void {
  let calls = 0;
  h.fake.onInvoke(name, () => {
    calls++;
    if (calls <= failures) throw Object.assign(new Error(message), { name: 'ServiceError' });
    return { ok: true };
  });
}

test('runs the plugins one at a time in order, then completes the stage, in 1 query + 1 + N writes', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Second', order: 20 });
  await h.registerPlugin({ activity, stage: 'pre', name: 'First', order: 10 });
  await h.registerPlugin({ activity, stage: 'pre', name: 'AlsoSecond', order: 20, mandatory: false });
  const order: string[] = [];
  for (const name of ['First', 'Second', 'AlsoSecond']) h.fake.onInvoke(name, () => { order.push(name); });
  const uid = await newRun(activity);

  const result = await h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'));

  expect(order).toEqual(['First', 'AlsoSecond', 'Second']); // by order, then by name
  expect(result).toMatchObject({ state: 'Complete', started: true, invoked: ['First', 'AlsoSecond', 'Second'] });
  const item = (await h.item(uid, WORKFLOW))!;
  const pre = item.activities[activity].pre;
  expect(pre.status.state).toBe('Complete');
  expect(pre.status.startTime).toEqual(expect.any(String));
  expect(pre.mandatory.First.state).toBe('Complete');
  expect(pre.mandatory.Second.state).toBe('Complete');
  expect(pre.optional.AlsoSecond.state).toBe('Complete');
  expect(item.activities[activity].status.state).toBe('In Progress'); // async and post still to come
  expect(item.status.state).toBe('In Progress');
  expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'UpdateItem', 'UpdateItem', 'UpdateItem', 'UpdateItem']);
});

test('each plugin receives the plugin message in an SNS event with the metadata as message attributes', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Reader' });
  let received: SNSEvent | undefined;
  h.fake.onInvoke('Reader', (event: SNSEvent) => { received = event; });
  const uid = await newRun(activity, [activity], { region: 'EU', premium: 250, nested: { a: 1 } });

  await h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'));

  const record = received!.Records[0];
  expect(record.EventSource).toBe('aws:sns');
  expect(record.EventSubscriptionArn).toBe(`lambda:${h.functionArn('Reader')}`);
  expect(record.Sns.TopicArn).toBe(h.topicArn(`${activity}-pre`));
  expect(record.Sns.MessageAttributes).toEqual({
    workflow: { Type: 'String', Value: WORKFLOW },
    region: { Type: 'String', Value: 'EU' },
    premium: { Type: 'Number', Value: '250' },
  });
  const message = JSON.parse(record.Sns.Message);
  expect(message).toMatchObject({ uid, workflow: WORKFLOW, activity, stage: 'pre', status: { state: 'In Progress' }, region: 'EU', premium: 250, nested: { a: 1 } });
  expect(message.activities[activity].pre.mandatory.Reader.state).toBe('Not Started');
  expect(Date.parse(message.now)).not.toBeNaN();
});

test('the post stage completes the activity, and the last activity completes the run', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'post', name: 'Closer' });
  h.fake.onInvoke('Closer', () => undefined);
  const uid = await newRun(activity);
  const complete = { status: { state: 'Complete' }, mandatory: {}, optional: {} };
  await h.patch(uid, WORKFLOW, ['activities', activity, 'pre'], complete);
  await h.patch(uid, WORKFLOW, ['activities', activity, 'async'], { ...complete, status: { state: 'Optional Task Error' } });

  await h.handlers.sequentialStage(stageEvent(uid, activity, 'post'));

  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].post.status.state).toBe('Complete');
  expect(item.activities[activity].status.state).toBe('Complete'); // an optional failure does not fail it
  expect(item.status.state).toBe('Complete');
});

test('a stage with no plugins completes at once without invoking anything (1 query + 1 write)', async () => {
  const activity = newActivity();
  const uid = await newRun(activity);

  await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ state: 'Complete', invoked: [] });

  expect((await h.item(uid, WORKFLOW))!.activities[activity].pre.status.state).toBe('Complete');
  expect(h.fake.invocations()).toHaveLength(0);
  expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'UpdateItem']);
});

describe('retries', () => {
  test('below maxAttempts a failure throws PluginInvocationFailed; at maxAttempts it records Error and throws PluginFailed', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'Steady', order: 1 });
    await h.registerPlugin({ activity, stage: 'pre', name: 'Flaky', order: 2 });
    h.fake.onInvoke('Steady', () => undefined);
    flakyPlugin('Flaky', 99, 'rating service down');
    const uid = await newRun(activity);
    const event = stageEvent(uid, activity, 'pre', 3);

    for (const attempt of [1, 2]) {
      const error = await rejectionOf(h.handlers.sequentialStage(event));
      expect(error.name).toBe('PluginInvocationFailed');
      expect(error.message).toContain(`attempt ${attempt} of 3`);
      const entry = (await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory.Flaky;
      expect(entry).toMatchObject({ state: 'Not Started', attempts: attempt });
      expect((await h.item(uid, WORKFLOW))!.status.state).toBe('In Progress');
    }
    const final = await rejectionOf(h.handlers.sequentialStage(event));
    expect(final.name).toBe('PluginFailed');
    expect(final.message).toBe('Flaky: ServiceError: rating service down (after 3 attempts)');

    const item = (await h.item(uid, WORKFLOW))!;
    expect(item.activities[activity].pre.mandatory.Flaky).toMatchObject({ state: 'Error', attempts: 3, message: 'ServiceError: rating service down (after 3 attempts)' });
    expect(item.activities[activity].pre.status).toMatchObject({ state: 'Error', message: 'Flaky: ServiceError: rating service down (after 3 attempts)' });
    expect(item.activities[activity].status).toMatchObject({ state: 'Error', message: 'pre: Flaky: ServiceError: rating service down (after 3 attempts)' });
    expect(item.status.state).toBe('Error');
    // The plugin that completed on the first attempt was not run again by the retries.
    expect(h.fake.invocations('Steady')).toHaveLength(1);
    expect(h.fake.invocations('Flaky')).toHaveLength(3);
  });

  test('a plugin that recovers on a retry completes the stage', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'Recovers' });
    flakyPlugin('Recovers', 1);
    const uid = await newRun(activity);
    expect((await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre')))).name).toBe('PluginInvocationFailed');
    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ state: 'Complete' });
    expect((await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory.Recovers).toMatchObject({ state: 'Complete', attempts: 1 });
  });

  test('an unknown function counts as a failed invocation', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'NeverDeployed' });
    const uid = await newRun(activity);
    const error = await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 1)));
    expect(error.name).toBe('PluginFailed');
    expect(error.message).toContain('ResourceNotFoundException');
  });
});

test('a 2 KB error message is stored trimmed to 180 characters', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Verbose' });
  flakyPlugin('Verbose', 1, 'stack trace line '.repeat(120)); // about 2 KB
  const uid = await newRun(activity);

  const error = await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 1)));

  expect(error.name).toBe('PluginFailed');
  const item = (await h.item(uid, WORKFLOW))!;
  const { pre, status } = item.activities[activity];
  for (const message of [pre.mandatory.Verbose.message, pre.status.message, status.message]) {
    expect(message!.length).toBeLessThanOrEqual(180);
    expect(message).toContain('stack trace line');
  }
});

test('a plugin that outlives its timeout is recorded Error at once and not invoked again', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Slow', timeoutSeconds: 1 });
  h.fake.onInvoke('Slow', () => new Promise((resolve) => setTimeout(resolve, 3000)));
  const uid = await newRun(activity);

  const error = await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 3)));

  expect(error.name).toBe('PluginFailed');
  expect((await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory.Slow).toMatchObject({ state: 'Error', message: 'timed out after 1 s' });
  expect(h.fake.invocations('Slow')).toHaveLength(1);
});

test('a plugin that returns { state: "Error" } fails the stage at once, without retries', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Validator' });
  h.fake.onInvoke('Validator', () => ({ state: 'Error', message: 'postcode is missing' }));
  const uid = await newRun(activity);

  const error = await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 3)));

  expect(error.name).toBe('PluginFailed');
  expect(error.message).toBe('Validator: postcode is missing');
  expect((await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory.Validator).toMatchObject({ state: 'Error', message: 'postcode is missing' });
  expect(h.fake.invocations('Validator')).toHaveLength(1);
});

test('a plugin that reports its own state through the status item is respected', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'SelfReporting', order: 1 });
  await h.registerPlugin({ activity, stage: 'pre', name: 'SelfFailing', order: 2 });
  const uid = await newRun(activity);
  const report = (plugin: string, state: 'In Progress' | 'Complete' | 'Error', message?: string) =>
    h.report({ uid, workflow: WORKFLOW, activity, stage: 'pre', plugin, state, message });
  h.fake.onInvoke('SelfReporting', async () => { await report('SelfReporting', 'In Progress'); await report('SelfReporting', 'Complete'); });
  // Records its business failure itself, then returns normally (what the plugin SDK does).
  h.fake.onInvoke('SelfFailing', async () => { await report('SelfFailing', 'In Progress'); await report('SelfFailing', 'Error', 'limit exceeded'); });

  const error = await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre')));

  expect(error.name).toBe('PluginFailed');
  expect(error.message).toBe('SelfFailing: limit exceeded');
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].pre.mandatory.SelfReporting.state).toBe('Complete');
  expect(item.activities[activity].pre.mandatory.SelfFailing).toMatchObject({ state: 'Error', message: 'limit exceeded' });
  expect(item.activities[activity].pre.status.state).toBe('Error');
  expect(item.status.state).toBe('Error');
});

describe('optional plugins', () => {
  test('an optional plugin that fails for good is recorded, the stage goes on, and ends Optional Task Error', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'post', name: 'Nice', order: 1, mandatory: false });
    await h.registerPlugin({ activity, stage: 'post', name: 'Needed', order: 2 });
    flakyPlugin('Nice', 99, 'newsletter down');
    h.fake.onInvoke('Needed', () => undefined);
    const uid = await newRun(activity);

    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'post', 1))).resolves.toMatchObject({ state: 'Optional Task Error' });

    const item = (await h.item(uid, WORKFLOW))!;
    expect(item.activities[activity].post.optional.Nice).toMatchObject({ state: 'Error', attempts: 1 });
    expect(item.activities[activity].post.mandatory.Needed.state).toBe('Complete');
    expect(item.activities[activity].status.state).not.toBe('Error');
    expect(item.status.state).not.toBe('Error');
  });

  test('a stage with only optional plugins completes when they do', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'OptionalOnly', mandatory: false });
    h.fake.onInvoke('OptionalOnly', () => ({ state: 'Complete' }));
    const uid = await newRun(activity);
    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ state: 'Complete' });
  });

  test('a plugin answering { state: "Do Not Run" } is recorded so and does not hold the stage', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'NotForMe' });
    h.fake.onInvoke('NotForMe', () => ({ state: 'Do Not Run' }));
    const uid = await newRun(activity);
    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ state: 'Complete' });
    expect((await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory.NotForMe.state).toBe('Do Not Run');
  });
});

describe('re-runs', () => {
  test('a finished stage is skipped: no plugin runs and nothing is written', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'Once' });
    h.fake.onInvoke('Once', () => undefined);
    const uid = await newRun(activity);
    await h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'));
    const before = await h.item(uid, WORKFLOW);
    h.fake.clearCalls();

    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ started: false, state: 'Complete', invoked: [] });

    expect(h.fake.invocations()).toHaveLength(0);
    expect(await h.item(uid, WORKFLOW)).toEqual(before);
    expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'UpdateItem']); // the refused conditional start
  });

  test('after a failure and start-run, only the failed plugin runs again', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'Good', order: 1 });
    await h.registerPlugin({ activity, stage: 'pre', name: 'Bad', order: 2 });
    h.fake.onInvoke('Good', () => undefined);
    flakyPlugin('Bad', 1);
    const uid = await newRun(activity);
    expect((await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 1)))).name).toBe('PluginFailed');

    await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
    const reset = (await h.item(uid, WORKFLOW))!.activities[activity].pre;
    expect(reset.mandatory).toMatchObject({ Good: { state: 'Complete' }, Bad: { state: 'Not Started' } });
    expect(reset.mandatory.Bad.attempts).toBeUndefined();
    h.fake.clearCalls();

    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre', 1))).resolves.toMatchObject({ state: 'Complete', invoked: ['Bad'] });
    expect(h.fake.invocations().map((call) => call.input.functionName)).toEqual(['Bad']);
  });

  test('an entry left by a plugin no longer registered is removed and does not hold the stage', async () => {
    const activity = newActivity();
    await h.registerPlugin({ activity, stage: 'pre', name: 'Current' });
    h.fake.onInvoke('Current', () => undefined);
    const uid = await newRun(activity);
    await h.patch(uid, WORKFLOW, ['activities', activity, 'pre', 'mandatory'], { Retired: { state: 'Not Started' } });

    await expect(h.handlers.sequentialStage(stageEvent(uid, activity, 'pre'))).resolves.toMatchObject({ state: 'Complete' });
    expect(Object.keys((await h.item(uid, WORKFLOW))!.activities[activity].pre.mandatory)).toEqual(['Current']);
  });
});

test('a run that start-run never created fails with StatusItemMissing and creates nothing', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'pre', name: 'Orphan' });
  const count = await h.itemCount();
  const error = await rejectionOf(h.handlers.sequentialStage(stageEvent('nobody', activity, 'pre')));
  expect(error.name).toBe('StatusItemMissing');
  expect(error).toMatchObject({ uid: 'nobody', workflow: WORKFLOW, activity });
  expect(await h.itemCount()).toBe(count);
  expect(h.fake.invocations()).toHaveLength(0);
});

test('an activity the run does not list fails with StatusItemMissing', async () => {
  const activity = newActivity();
  const uid = await newRun(activity);
  const before = await h.item(uid, WORKFLOW);
  expect((await rejectionOf(h.handlers.sequentialStage(stageEvent(uid, 'Unlisted', 'pre')))).name).toBe('StatusItemMissing');
  expect(await h.item(uid, WORKFLOW)).toEqual(before);
});

describe('bad input fails with InvalidStageEvent before anything is read or written', () => {
  const valid = { uid: 'u', workflow: WORKFLOW, activity: 'A', stage: 'pre', topicArn: 'arn:topic', maxAttempts: 3 };
  test.each<[string, unknown]>([
    ['not an object', null],
    ['no uid', { ...valid, uid: undefined }],
    ['no activity', { ...valid, activity: '' }],
    ['the async stage', { ...valid, stage: 'async' }],
    ['an unknown stage', { ...valid, stage: 'middle' }],
    ['no topicArn', { ...valid, topicArn: undefined }],
    ['maxAttempts 0', { ...valid, maxAttempts: 0 }],
    ['a fractional maxAttempts', { ...valid, maxAttempts: 1.5 }],
  ])('%s', async (_case, event) => {
    const error = await rejectionOf(h.handlers.sequentialStage(event));
    expect(error.name).toBe('InvalidStageEvent');
    expect(h.fake.calls).toEqual([]);
  });
});
