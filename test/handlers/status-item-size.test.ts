/**
 * The status item stays under DynamoDB's 400 KB (DESIGN.md "Status item size"): a stage with more
 * than 100 plugins, or a run with more plugin entries than the worst case allows, fails with
 * `TooManyPlugins` before any plugin runs; and the worst case at the limits really fits — written to
 * DynamoDB Local, which refuses items over 400 KB as DynamoDB does. Bundled handlers against DynamoDB Local.
 */
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  DYNAMODB_ITEM_MAX_BYTES, MAX_PLUGIN_ENTRIES_PER_RUN, MAX_PLUGINS_PER_STAGE, worstCaseItemBytes,
} from '../../lambda/shared/stage';
import { newStatusDocument, StatusDocument } from '../../lambda/shared/status';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Size';

let h: Harness;
beforeAll(async () => { h = await Harness.create('itemsize'); });
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

const parallelEvent = (uid: string, activity: string, token = `token-${activity}`) =>
  ({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token });

test(`more than ${MAX_PLUGINS_PER_STAGE} plugins in one stage: TooManyPlugins, nothing written, nothing published`, async () => {
  const activity = 'Crowded';
  for (let i = 0; i <= MAX_PLUGINS_PER_STAGE; i++) await h.registerPlugin({ activity, stage: 'async', name: `Plugin${i}` });
  const uid = `crowded-${Date.now()}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: [activity] });
  const before = await h.item(uid, WORKFLOW);
  h.fake.clearCalls();

  const error = await rejectionOf(h.handlers.parallelStage(parallelEvent(uid, activity)));
  expect(error.name).toBe('TooManyPlugins');
  expect(error.message).toContain(`${MAX_PLUGINS_PER_STAGE + 1} registered plugins`);
  expect(error.message).toContain(`at most ${MAX_PLUGINS_PER_STAGE} per stage`);
  expect(await h.item(uid, WORKFLOW)).toEqual(before);
  expect(h.fake.published()).toHaveLength(0);
});

test(`more than ${MAX_PLUGIN_ENTRIES_PER_RUN} plugin entries in one run: the stage that goes over fails with TooManyPlugins before its message goes out`, async () => {
  const activities = ['Wide1', 'Wide2', 'Wide3', 'OneMore'];
  for (const activity of activities.slice(0, 3)) {
    for (let i = 0; i < MAX_PLUGINS_PER_STAGE; i++) await h.registerPlugin({ activity, stage: 'async', name: `Plugin${i}` });
  }
  await h.registerPlugin({ activity: 'OneMore', stage: 'async', name: 'Last' });
  const uid = `entries-${Date.now()}`;
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities });
  for (const activity of activities.slice(0, 3)) {
    await expect(h.handlers.parallelStage(parallelEvent(uid, activity))).resolves.toMatchObject({ started: true, published: true });
  }
  h.fake.clearCalls();

  const error = await rejectionOf(h.handlers.parallelStage(parallelEvent(uid, 'OneMore')));
  expect(error.name).toBe('TooManyPlugins');
  expect(error.message).toContain(`has ${MAX_PLUGIN_ENTRIES_PER_RUN + 1} plugin entries`);
  expect(h.fake.published()).toHaveLength(0);
});

describe('the worst case at the limits fits in one DynamoDB item', () => {
  const euro = (n: number) => '\u20ac'.repeat(n);
  const name = (prefix: string, i: number) => `${prefix}${String(i).padStart(4, '0')}`.padEnd(64, 'x');

  /** Every field at its longest: 64 KB of metadata, 180-character messages of 3-byte characters, one 2,048-character token. */
  function worstCase(activityCount: number, entries: number): StatusDocument {
    const activities = Array.from({ length: activityCount }, (_, i) => name('Activity', i));
    const doc = newStatusDocument({
      uid: 'u'.repeat(1024),
      workflow: 'w'.repeat(1024),
      activities,
      now: new Date().toISOString(),
      // The shape DynamoDB counts largest for its JSON size: empty maps in a list (3 JSON bytes, 4 item bytes each).
      metadata: { list: Array.from({ length: 21_480 }, () => ({})) },
    });
    const now = new Date().toISOString();
    for (let i = 0; i < entries; i++) {
      const activity = doc.activities[activities[i % activities.length]];
      const stage = activity[(['pre', 'async', 'post'] as const)[i % 3]];
      stage.optional[name('Plugin', i)] = { state: 'Error' as never, message: euro(180), attempts: 20, updatedAt: now };
    }
    const failed = doc.activities[activities[0]];
    failed.status = { state: 'Error' as never, message: euro(180) };
    failed.async.status = { state: 'In Progress' as never, message: euro(180), startTime: now, token: 't'.repeat(2048) };
    (doc as any).awaiting = new Set(activities);
    return doc;
  }

  test.each([[25, MAX_PLUGIN_ENTRIES_PER_RUN], [200, 261]])('%i activities, %i entries (64-character names): within the estimate, and DynamoDB stores it', async (activityCount, entries) => {
    const doc = worstCase(activityCount, entries);
    expect(JSON.stringify(doc.metadata).length).toBeLessThanOrEqual(64 * 1024);
    expect(worstCaseItemBytes(doc)).toBeLessThanOrEqual(DYNAMODB_ITEM_MAX_BYTES);
    await expect(h.db.send(new PutCommand({ TableName: h.statusTable, Item: doc }))).resolves.toBeDefined();
  });

  test('one entry more than the estimate allows with 200 activities is refused by the check', () => {
    expect(worstCaseItemBytes(worstCase(200, 262))).toBeGreaterThan(DYNAMODB_ITEM_MAX_BYTES);
  });

  test('DynamoDB Local refuses an item over 400 KB (so the test above can fail)', async () => {
    const doc = worstCase(25, MAX_PLUGIN_ENTRIES_PER_RUN);
    (doc.metadata as Record<string, unknown>).extra = 'x'.repeat(150_000);
    await expect(h.db.send(new PutCommand({ TableName: h.statusTable, Item: doc }))).rejects.toThrow(/size/i);
  });
});
