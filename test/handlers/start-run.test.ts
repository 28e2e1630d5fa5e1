/**
 * start-run, the bundled handler, against DynamoDB Local. The handler reaches DynamoDB through the
 * local engine's AWS endpoint (test/support/scripted-aws.ts), which records every request.
 */
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Onboarding';
const ACTIVITIES = ['Step1', 'Step2'];

let h: Harness;
beforeAll(async () => { h = await Harness.create('start-run'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

let counter = 0;
const newUid = () => `policy-${++counter}-${Date.now()}`;
const startEvent = (uid: string, input: Record<string, unknown> = {}, activities = ACTIVITIES) =>
  ({ input: { uid, ...input }, workflow: WORKFLOW, activities });

/** Marks a run failed in Step2's post stage after Step1 completed, as the stage handlers would. */
async function failRun(uid: string): Promise<void> {
  const done = { status: { state: 'Complete' }, mandatory: { P: { state: 'Complete' } }, optional: {} };
  await h.patch(uid, WORKFLOW, ['activities', 'Step1'], { status: { state: 'Complete' }, pre: done, async: done, post: done });
  await h.patch(uid, WORKFLOW, ['activities', 'Step2'], {
    status: { state: 'Error', message: 'post: Q: boom' },
    pre: done,
    async: { status: { state: 'Optional Task Error' }, mandatory: { M: { state: 'Complete' } }, optional: { O: { state: 'Error', message: 'meh' } } },
    post: { status: { state: 'Error', message: 'Q: boom' }, mandatory: { P: { state: 'Complete' }, Q: { state: 'Error', message: 'boom', attempts: 3 } }, optional: {} },
  });
  await h.patch(uid, WORKFLOW, ['status', 'state'], 'Error');
}

test('a new run creates the status item with every activity and stage Not Started, in one request', async () => {
  const uid = newUid();
  await expect(h.handlers.startRun(startEvent(uid, { metadata: { region: 'EU', premium: 100 } })))
    .resolves.toEqual({ uid, workflow: WORKFLOW, rerun: false });

  const item = await h.item(uid, WORKFLOW);
  expect(item?.metadata).toEqual({ workflow: WORKFLOW, region: 'EU', premium: 100 });
  expect(item?.status).toEqual({ state: 'Not Started' });
  expect(Object.keys(item!.activities).sort()).toEqual(ACTIVITIES);
  for (const activity of ACTIVITIES) {
    expect(item!.activities[activity]).toEqual({
      status: { state: 'Not Started' },
      pre: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
      async: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
      post: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
    });
  }
  expect(item).not.toHaveProperty('awaiting');
  expect(item).not.toHaveProperty('expiresAt');
  expect(h.fake.dynamoDbRequests()).toEqual(['PutItem']);
});

test('retentionDays sets the TTL attribute that many days ahead', async () => {
  const uid = newUid();
  await h.handlers.startRun({ ...startEvent(uid), retentionDays: 30 });
  const expiresAt = (await h.item(uid, WORKFLOW))!.expiresAt!;
  expect(Math.abs(expiresAt - (Date.now() / 1000 + 30 * 86_400))).toBeLessThan(60);
});

test('starting a run that is still Not Started or In Progress fails with RunInProgress and changes nothing', async () => {
  const uid = newUid();
  await h.handlers.startRun(startEvent(uid));
  const before = await h.item(uid, WORKFLOW);
  expect((await rejectionOf(h.handlers.startRun(startEvent(uid)))).name).toBe('RunInProgress');

  await h.patch(uid, WORKFLOW, ['status', 'state'], 'In Progress');
  const error = await rejectionOf(h.handlers.startRun(startEvent(uid)));
  expect(error.name).toBe('RunInProgress');
  expect(error.message).toContain('In Progress');
  expect({ ...(await h.item(uid, WORKFLOW)), status: before!.status }).toEqual(before);
});

test('a re-run after a failure keeps completed work and resets every Error to Not Started', async () => {
  const uid = newUid();
  await h.handlers.startRun(startEvent(uid, { metadata: { region: 'EU' } }));
  await failRun(uid);
  h.fake.clearCalls();

  await expect(h.handlers.startRun(startEvent(uid, { metadata: { region: 'EU' } }))).resolves.toMatchObject({ rerun: true });
  const item = (await h.item(uid, WORKFLOW))!;
  expect(item.activities.Step1.status.state).toBe('Complete');
  const step2 = item.activities.Step2;
  expect(step2.pre.status.state).toBe('Complete');
  expect(step2.async.status.state).toBe('Not Started');
  expect(step2.async.mandatory.M.state).toBe('Complete');
  expect(step2.async.optional.O).toEqual({ state: 'Not Started' });
  expect(step2.post.status).toEqual({ state: 'Not Started' });
  expect(step2.post.mandatory).toEqual({ P: { state: 'Complete' }, Q: { state: 'Not Started' } }); // message, attempts cleared
  expect(step2.status).toEqual({ state: 'In Progress' });
  expect(item.status.state).toBe('In Progress');
  // The failed create hands the item back, so a re-run costs two requests and no read.
  expect(h.fake.dynamoDbRequests()).toEqual(['PutItem', 'PutItem']);
});

test('a re-run adds activities the workflow gained and drops those it no longer lists', async () => {
  const uid = newUid();
  await h.handlers.startRun(startEvent(uid));
  await failRun(uid);
  await h.handlers.startRun(startEvent(uid, {}, ['Step1', 'Step3']));
  const item = (await h.item(uid, WORKFLOW))!;
  expect(Object.keys(item.activities).sort()).toEqual(['Step1', 'Step3']);
  expect(item.activities.Step3.status.state).toBe('Not Started');
  expect(item.status.state).toBe('In Progress');
});

describe('metadata on a re-run', () => {
  let uid: string;
  beforeEach(async () => {
    uid = newUid();
    await h.handlers.startRun(startEvent(uid, { metadata: { region: 'EU', limits: { a: 1, b: 2 } } }));
    await failRun(uid);
    h.fake.clearCalls();
  });

  test('different metadata fails with MetadataMismatch naming the keys, and nothing is written', async () => {
    const before = await h.item(uid, WORKFLOW);
    const error = await rejectionOf(h.handlers.startRun(startEvent(uid, { metadata: { region: 'US', limits: { a: 1, b: 2 } } })));
    expect(error.name).toBe('MetadataMismatch');
    expect(error.message).toContain('region');
    expect(error.message).toContain('metadataOverride');
    expect(await h.item(uid, WORKFLOW)).toEqual(before);
    expect(h.fake.dynamoDbRequests()).toEqual(['PutItem']); // only the failed conditional create
  });

  test('the same metadata in another key order is the same run', async () => {
    await expect(h.handlers.startRun(startEvent(uid, { metadata: { limits: { b: 2, a: 1 }, region: 'EU' } }))).resolves.toMatchObject({ rerun: true });
  });

  test('metadataOverride replaces the stored metadata', async () => {
    await h.handlers.startRun(startEvent(uid, { metadata: { region: 'US' }, metadataOverride: true }));
    expect((await h.item(uid, WORKFLOW))!.metadata).toEqual({ workflow: WORKFLOW, region: 'US' });
  });

  test('omitted metadata re-runs with the stored metadata', async () => {
    await h.handlers.startRun(startEvent(uid));
    expect((await h.item(uid, WORKFLOW))!.metadata).toEqual({ workflow: WORKFLOW, region: 'EU', limits: { a: 1, b: 2 } });
  });
});

test('two racing starts of a new run: exactly one creates it, the other gets RunInProgress', async () => {
  const uid = newUid();
  const results = await Promise.allSettled([h.handlers.startRun(startEvent(uid)), h.handlers.startRun(startEvent(uid))]);
  expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
  const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
  expect(rejected.map((result) => result.reason.name)).toEqual(['RunInProgress']);
});

test('two racing re-runs of a failed run: exactly one resets it, the other gets RunInProgress', async () => {
  const uid = newUid();
  await h.handlers.startRun(startEvent(uid));
  await failRun(uid);
  const results = await Promise.allSettled([h.handlers.startRun(startEvent(uid)), h.handlers.startRun(startEvent(uid))]);
  expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
  expect(results.filter((result) => result.status === 'rejected').map((result) => (result as PromiseRejectedResult).reason.name)).toEqual(['RunInProgress']);
  expect((await h.item(uid, WORKFLOW))!.status.state).toBe('In Progress');
});

describe('bad input fails with InvalidRunInput and writes nothing', () => {
  test.each<[string, unknown]>([
    ['not an object', 'uid-1'],
    ['no input', { workflow: WORKFLOW, activities: ACTIVITIES }],
    ['no uid', { input: { metadata: {} }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['an empty uid', { input: { uid: '  ' }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['a numeric uid', { input: { uid: 42 }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['no workflow', { input: { uid: 'bad-1' }, activities: ACTIVITIES }],
    ['no activities', { input: { uid: 'bad-1' }, workflow: WORKFLOW }],
    ['an empty activity list', { input: { uid: 'bad-1' }, workflow: WORKFLOW, activities: [] }],
    ['a repeated activity', { input: { uid: 'bad-1' }, workflow: WORKFLOW, activities: ['A', 'A'] }],
    ['metadata that is not an object', { input: { uid: 'bad-1', metadata: 'x' }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['metadata naming another workflow', { input: { uid: 'bad-1', metadata: { workflow: 'Other' } }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['a non-boolean metadataOverride', { input: { uid: 'bad-1', metadataOverride: 'yes' }, workflow: WORKFLOW, activities: ACTIVITIES }],
    ['a bad retentionDays', { input: { uid: 'bad-1' }, workflow: WORKFLOW, activities: ACTIVITIES, retentionDays: -1 }],
  ])('%s', async (_case, event) => {
    const count = await h.itemCount();
    const error = await rejectionOf(h.handlers.startRun(event));
    expect(error.name).toBe('InvalidRunInput');
    expect(h.fake.dynamoDbRequests()).toEqual([]);
    expect(await h.itemCount()).toBe(count);
  });

  test('the message names every problem at once', async () => {
    const error = await rejectionOf(h.handlers.startRun({ input: {}, activities: [] }));
    expect(error.message).toMatch(/workflow.*input\.uid.*activities/);
  });
});
