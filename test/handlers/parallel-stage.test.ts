/**
 * parallel-stage, the bundled handler, against DynamoDB Local. SNS and Step Functions answers are
 * scripted on the local engine's AWS endpoint (test/support/scripted-aws.ts).
 */
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Quotes';

let h: Harness;
beforeAll(async () => { h = await Harness.create('parallel'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

let counter = 0;
const newActivity = () => `Par${++counter}`;
const token = () => `token-${counter}-${Math.random().toString(36).slice(2)}`;

async function newRun(activity: string, metadata: Record<string, unknown> = { region: 'EU' }): Promise<string> {
  const uid = `quote-${counter}-${Date.now()}`;
  await h.handlers.startRun({ input: { uid, metadata }, workflow: WORKFLOW, activities: [activity] });
  h.fake.clearCalls();
  return uid;
}

const parallelEvent = (uid: string, activity: string, taskToken: string) =>
  ({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: taskToken });

test('with mandatory plugins: one write stores the token and awaiting, one SNS publish reaches the plugins', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'Rating' });
  await h.registerPlugin({ activity, stage: 'async', name: 'Fraud' });
  await h.registerPlugin({ activity, stage: 'async', name: 'Marketing', mandatory: false });
  const uid = await newRun(activity, { region: 'EU', premium: 100 });
  const taskToken = token();

  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, taskToken)))
    .resolves.toMatchObject({ state: 'In Progress', started: true, waiting: true, published: true });

  const item = (await h.item(uid, WORKFLOW))!;
  const stage = item.activities[activity].async;
  expect(stage.status).toMatchObject({ state: 'In Progress', token: taskToken, startTime: expect.any(String) });
  expect(stage.mandatory).toEqual({ Rating: { state: 'Not Started', updatedAt: expect.any(String) }, Fraud: { state: 'Not Started', updatedAt: expect.any(String) } });
  expect(Object.keys(stage.optional)).toEqual(['Marketing']);
  expect(item.awaiting).toEqual(new Set([activity]));
  expect(item.activities[activity].status.state).toBe('In Progress');

  const [published] = h.fake.published();
  expect(h.fake.published()).toHaveLength(1);
  expect(published.topicArn).toBe(h.topicArn(`${activity}-parallel`));
  expect(published.attributes).toEqual({
    workflow: { DataType: 'String', StringValue: WORKFLOW },
    region: { DataType: 'String', StringValue: 'EU' },
    premium: { DataType: 'Number', StringValue: '100' },
  });
  const message = JSON.parse(published.message);
  expect(message).toMatchObject({ uid, workflow: WORKFLOW, activity, stage: 'async', region: 'EU', premium: 100 });
  expect(published.message).not.toContain(taskToken); // the token is a credential: plugins never see it
  expect(h.fake.callsTo('sfn')).toHaveLength(0); // status-summary answers the token later
  expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'UpdateItem']);
});

test('a stage with no plugins completes at once: SendTaskSuccess, no publish, no token, no awaiting', async () => {
  const activity = newActivity();
  const uid = await newRun(activity);
  const taskToken = token();

  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, taskToken))).resolves.toMatchObject({ state: 'Complete', waiting: false, published: false });

  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].async.status.state).toBe('Complete');
  expect(item.activities[activity].async.status.token).toBeUndefined();
  expect(item).not.toHaveProperty('awaiting');
  expect(h.fake.callsTo('sfn').map((call) => [call.action, call.input.taskToken])).toEqual([['SendTaskSuccess', taskToken]]);
  expect(h.fake.published()).toHaveLength(0);
});

test('only optional plugins: the execution continues at once, the message still goes out, and the stage settles later', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'Survey', mandatory: false });
  const uid = await newRun(activity);
  const taskToken = token();

  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, taskToken))).resolves.toMatchObject({ state: 'Mandatory Completed', waiting: false, published: true });
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
  expect(h.fake.published()).toHaveLength(1);
  let item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].async.status.token).toBeUndefined();
  expect(item.awaiting).toEqual(new Set([activity]));

  // The optional plugin fails later: the stage records it, the activity and run do not fail.
  await h.pump();
  await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', kind: 'optional', plugin: 'Survey', state: 'Error', message: 'survey API down' });
  await h.pump();
  item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].async.status.state).toBe('Optional Task Error');
  expect(item).not.toHaveProperty('awaiting');
  expect(item.activities[activity].status.state).toBe('In Progress');
  expect(item.status.state).toBe('In Progress');
  expect(h.fake.callsTo('sfn', 'SendTaskFailure')).toHaveLength(0);
});

test('a finished stage (re-run) answers the token at once and publishes nothing', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'Done' });
  const uid = await newRun(activity);
  await h.patch(uid, WORKFLOW, ['activities', activity, 'async', 'status'], { state: 'Complete' });
  const before = await h.item(uid, WORKFLOW);
  const taskToken = token();

  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, taskToken))).resolves.toMatchObject({ started: false, state: 'Complete' });

  expect(h.fake.callsTo('sfn').map((call) => [call.action, call.input.taskToken])).toEqual([['SendTaskSuccess', taskToken]]);
  expect(h.fake.published()).toHaveLength(0);
  expect(await h.item(uid, WORKFLOW)).toEqual(before);
});

test('a plugin whose filter policy rejects the run is recorded Do Not Run and not waited for', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'UsOnly', filterPolicy: { region: ['US'] } });
  await h.registerPlugin({ activity, stage: 'async', name: 'EuOnly', filterPolicy: { region: ['EU'] } });
  const uid = await newRun(activity, { region: 'EU' });

  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, token()))).resolves.toMatchObject({ waiting: true });

  const stage = (await h.item(uid, WORKFLOW))!.activities[activity].async;
  expect(stage.mandatory.UsOnly).toMatchObject({ state: 'Do Not Run', message: expect.stringContaining('filter policy') });
  expect(stage.mandatory.EuOnly.state).toBe('Not Started');
  expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'GetItem', 'UpdateItem']);
});

test('when every mandatory plugin is filtered out the execution continues at once', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'UsOnly', filterPolicy: { region: ['US'] } });
  const uid = await newRun(activity, { region: 'EU' });
  await expect(h.handlers.parallelStage(parallelEvent(uid, activity, token()))).resolves.toMatchObject({ state: 'Complete', waiting: false, published: false });
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
});

test('a run that start-run never created fails with StatusItemMissing and creates nothing', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'Lonely' });
  const count = await h.itemCount();
  expect((await rejectionOf(h.handlers.parallelStage(parallelEvent('nobody', activity, token())))).name).toBe('StatusItemMissing');
  expect(await h.itemCount()).toBe(count);
  expect(h.fake.callsTo('sns')).toHaveLength(0);
  expect(h.fake.callsTo('sfn')).toHaveLength(0);
});

describe('bad input fails with InvalidStageEvent before anything is read or written', () => {
  const valid = { uid: 'u', workflow: WORKFLOW, activity: 'A', stage: 'async', topicArn: 'arn:topic', token: 't' };
  test.each<[string, unknown]>([
    ['not an object', []],
    ['no token', { ...valid, token: undefined }],
    ['an empty token', { ...valid, token: '' }],
    ['a sequential stage', { ...valid, stage: 'pre' }],
    ['no workflow', { ...valid, workflow: undefined }],
  ])('%s', async (_case, event) => {
    expect((await rejectionOf(h.handlers.parallelStage(event))).name).toBe('InvalidStageEvent');
    expect(h.fake.calls).toEqual([]);
  });
});

test('activity and plugin names with dots, spaces, # and reserved words work end to end', async () => {
  const activity = `Step ${++counter}.status #token`;
  await h.registerPlugin({ activity, stage: 'async', name: 'rate.v2 (EU) state' });
  const uid = await newRun(activity);
  await h.handlers.parallelStage(parallelEvent(uid, activity, token()));
  await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'rate.v2 (EU) state', state: 'Complete' });
  await h.pump();

  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities[activity].async.mandatory['rate.v2 (EU) state'].state).toBe('Complete');
  expect(item.activities[activity].async.status.state).toBe('Complete');
  expect(h.fake.callsTo('sfn', 'SendTaskSuccess')).toHaveLength(1);
});

test('a filtered-out plugin that reports between the read and the write is a conflict, not a silently skipped stage', async () => {
  const activity = newActivity();
  await h.registerPlugin({ activity, stage: 'async', name: 'UsOnly', filterPolicy: { region: ['US'] } });
  await h.registerPlugin({ activity, stage: 'async', name: 'Main' });
  const uid = await newRun(activity, { region: 'EU' });
  await h.patch(uid, WORKFLOW, ['activities', activity, 'async', 'mandatory'], { UsOnly: { state: 'Not Started' } });
  h.fake.beforeNextDynamoDb('UpdateItem', async () => {
    await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'UsOnly', state: 'Complete' });
  });

  const error = await rejectionOf(h.handlers.parallelStage(parallelEvent(uid, activity, token())));

  expect(error.name).toBe('StatusUpdateConflict');
  expect(h.fake.callsTo('sfn')).toHaveLength(0); // the execution was not told the stage is done
  expect((await h.item(uid, WORKFLOW))!.activities[activity].async.status.state).toBe('Not Started');
});
