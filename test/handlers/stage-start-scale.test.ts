/**
 * A stage with many plugins (the benchmark's A=100): DynamoDB allows 4 KB per expression, about 55
 * `if_not_exists` plugin entries in the stage-start write, so the entries beyond 40 are created by
 * writes before it. The bundled parallel-stage handler against DynamoDB Local.
 */
import { STAGE_START_ENTRIES_PER_WRITE, stageStartUpdates } from '../../lambda/shared/status-store';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Scale';
const PLUGINS = 100;

let h: Harness;
beforeAll(async () => { h = await Harness.create('stagescale'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

test('the stage-start writes: one up to 40 plugins; extra entry writes first, the token and awaiting last', () => {
  const target = { tableName: 't', key: { uid: 'u', workflow: 'w' } };
  const plugins = (n: number) => Array.from({ length: n }, (_, i) => ({ kind: 'mandatory' as const, name: `P${i}` }));
  const start = { activity: 'A', stage: 'async' as const, stageState: 'In Progress' as never, now: 'now', token: 'tok', awaiting: true };
  expect(stageStartUpdates(target, { ...start, plugins: plugins(STAGE_START_ENTRIES_PER_WRITE) })).toHaveLength(1);
  const writes = stageStartUpdates(target, { ...start, plugins: plugins(PLUGINS) });
  expect(writes).toHaveLength(3);
  for (const write of writes) {
    expect(write.UpdateExpression!.length).toBeLessThan(4096);
    expect(write.ConditionExpression).toContain('attribute_exists(uid)');
  }
  expect(writes.slice(0, -1).every((w) => !JSON.stringify(w).includes('tok') && !w.UpdateExpression!.includes('ADD'))).toBe(true);
  expect(JSON.stringify(writes[2])).toContain('tok');
  expect(writes[2].ReturnValues).toBe('ALL_NEW');
});

test(`${PLUGINS} mandatory parallel plugins: every entry is created, then the token is stored and one message goes out`, async () => {
  const activity = 'Wide';
  for (let i = 0; i < PLUGINS; i++) await h.registerPlugin({ activity, stage: 'async', name: `Plugin${i}` });
  const uid = `wide-${Date.now()}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  h.fake.clearCalls();

  await expect(h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: 'token-wide' }))
    .resolves.toMatchObject({ state: 'In Progress', started: true, waiting: true, published: true });

  const item = (await h.item(uid, WORKFLOW))!;
  expect(Object.keys(item.activities[activity].async.mandatory)).toHaveLength(PLUGINS);
  expect(item.activities[activity].async.status).toMatchObject({ state: 'In Progress', token: 'token-wide' });
  expect(item.awaiting).toEqual(new Set([activity]));
  expect(h.fake.published()).toHaveLength(1);
  expect(h.fake.dynamoDbRequests()).toEqual(['Query', 'UpdateItem', 'UpdateItem', 'UpdateItem']);

  // A finished stage (a re-run) is skipped after the first refused write: nothing is written.
  await h.patch(uid, WORKFLOW, ['activities', activity, 'async', 'status', 'state'], 'Complete');
  h.fake.clearCalls();
  await expect(h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: 'token-again' }))
    .resolves.toMatchObject({ started: false });
  expect(h.fake.published()).toHaveLength(0);
});

test(`a parallel stage that times out with ${PLUGINS} pending mandatory plugins: the failure and every pending plugin are recorded`, async () => {
  const activity = 'WideTimeout';
  for (let i = 0; i < PLUGINS; i++) await h.registerPlugin({ activity, stage: 'async', name: `Plugin${i}` });
  const uid = `wide-timeout-${Date.now()}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: 'token-late' });
  await h.report({ uid, workflow: WORKFLOW, activity, stage: 'async', plugin: 'Plugin7', state: 'Complete' });

  const error = await rejectionOf(h.handlers.stageFailure({ uid, workflow: WORKFLOW, activity, error: { Error: 'States.Timeout' } }));

  expect(error.name).toBe('States.Timeout');
  const item = (await h.item(uid, WORKFLOW))!;
  const stage = item.activities[activity].async;
  expect(stage.status.state).toBe('Error');
  expect(stage.status.token).toBeUndefined();
  const states = Object.values(stage.mandatory).map((entry) => entry.state);
  expect(states.filter((s) => s === 'Error')).toHaveLength(PLUGINS - 1);
  expect(stage.mandatory.Plugin7.state).toBe('Complete');
  expect(item.status.state).toBe('Error');
  expect(item).not.toHaveProperty('awaiting');
});
