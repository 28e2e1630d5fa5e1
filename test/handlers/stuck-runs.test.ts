/**
 * stuck-runs, the bundled handler, against DynamoDB Local with the open-run index (`openRuns`) the
 * Orchestrator creates. Runs are started and finished by the bundled start-run, sequential-stage,
 * parallel-stage and stage-failure handlers, so the index attributes are written by the real code.
 * EventBridge has no emulator here: the scripted endpoint (test/support/scripted-aws.ts) captures PutEvents (and can
 * refuse entries, as EventBridge reports them); everything DynamoDB is real.
 */
import { join } from 'node:path';
import { DynamoDBClient, UpdateTableCommand, DescribeTableCommand } from '@aws-sdk/client-dynamodb';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { OPEN_RUN_SHARDS, OPEN_RUNS_INDEX } from '../../lambda/shared/open-runs';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Claims';
const ORCHESTRATOR = 'claims-orch';
const STUCK_AFTER_SECONDS = 900;

type StuckRuns = (event: unknown) => Promise<{ reported: number; failed: number }>;

let h: Harness;
let stuckRuns: StuckRuns;
let counter = 0;

beforeAll(async () => {
  h = await Harness.create('stuck');
  // The index as src/private/stuck-run-detection.ts declares it (keys only, sparse).
  const raw = new DynamoDBClient({ endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } });
  await raw.send(new UpdateTableCommand({
    TableName: h.statusTable,
    AttributeDefinitions: [{ AttributeName: 'openShard', AttributeType: 'S' }, { AttributeName: 'openedAt', AttributeType: 'S' }],
    GlobalSecondaryIndexUpdates: [{
      Create: {
        IndexName: OPEN_RUNS_INDEX,
        KeySchema: [{ AttributeName: 'openShard', KeyType: 'HASH' }, { AttributeName: 'openedAt', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      },
    }],
  }));
  for (let i = 0; i < 50; i++) {
    const table = await raw.send(new DescribeTableCommand({ TableName: h.statusTable }));
    if (table.Table?.GlobalSecondaryIndexes?.every((index) => index.IndexStatus === 'ACTIVE')) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  raw.destroy();
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_EVENTBRIDGE: h.fake.endpoint,
    ORCHESTRATOR_NAME: ORCHESTRATOR,
    STUCK_AFTER_SECONDS: String(STUCK_AFTER_SECONDS),
  });
  stuckRuns = jest.requireActual<{ handler: StuckRuns }>(join(__dirname, '..', '..', 'assets', 'handlers', 'stuck-runs', 'index.js')).handler;
});
afterAll(async () => h.close());

beforeEach(async () => {
  // Each test starts with no run left to report: earlier tests' runs are marked by this sweep.
  await stuckRuns({});
  h.fake.clearCalls();
});

const newUid = () => `claim-${++counter}-${Date.now()}`;
const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
const SCHEDULED_EVENT = { 'detail-type': 'Scheduled Event', 'source': 'aws.events', 'detail': {} };

async function startRun(uid: string, activities = ['Intake']): Promise<void> {
  await h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities });
}

/** As if the run had been started `minutes` ago (only the index's sort key moves). */
async function age(uid: string, minutes: number): Promise<void> {
  await h.db.send(new UpdateCommand({
    TableName: h.statusTable,
    Key: { uid, workflow: WORKFLOW },
    UpdateExpression: 'SET openedAt = :at',
    ConditionExpression: 'attribute_exists(openedAt)',
    ExpressionAttributeValues: { ':at': minutesAgo(minutes) },
  }));
}

function events(): Array<{ Source: string; DetailType: string; Detail: Record<string, unknown> }> {
  return h.fake.callsTo('events', 'PutEvents')
    .flatMap((call) => call.input.Entries)
    .map((entry: any) => ({ Source: entry.Source, DetailType: entry.DetailType, Detail: JSON.parse(entry.Detail) }));
}

test('start-run puts a new run in the open-run index: an open shard and its start time', async () => {
  const uid = newUid();
  await startRun(uid);
  const item = await h.item(uid, WORKFLOW) as any;
  expect(item.openShard).toMatch(new RegExp(`^open#[0-${OPEN_RUN_SHARDS - 1}]$`));
  expect(Date.parse(item.openedAt)).toBeGreaterThan(Date.now() - 60_000);
  expect(item.stuckReportedAt).toBeUndefined();
});

test('a run older than stuckAfter is reported once: one event with uid and workflow, a second sweep reports nothing', async () => {
  const uid = newUid();
  await startRun(uid);
  await age(uid, 20);

  await expect(stuckRuns(SCHEDULED_EVENT)).resolves.toEqual({ reported: 1, failed: 0 });
  const item = await h.item(uid, WORKFLOW) as any;
  expect(events()).toEqual([{
    Source: 'cdk-orchestrator',
    DetailType: 'Orchestrator Run Stuck',
    Detail: {
      uid,
      workflow: WORKFLOW,
      orchestrator: ORCHESTRATOR,
      startedAt: item.openedAt,
      state: 'Not Started',
      stuckAfterSeconds: STUCK_AFTER_SECONDS,
      reportedAt: item.stuckReportedAt,
    },
  }]);
  // Out of the open shards (so it is not queried again), still unfinished.
  expect(item.openShard).toMatch(/^stuck#\d$/);
  expect(item.status.state).toBe('Not Started');

  h.fake.clearCalls();
  await expect(stuckRuns(SCHEDULED_EVENT)).resolves.toEqual({ reported: 0, failed: 0 });
  expect(events()).toEqual([]);
});

test('a run younger than stuckAfter is not reported', async () => {
  const uid = newUid();
  await startRun(uid);
  await age(uid, 14); // stuckAfter is 15 minutes
  await expect(stuckRuns({})).resolves.toEqual({ reported: 0, failed: 0 });
  expect(events()).toEqual([]);
  expect((await h.item(uid, WORKFLOW) as any).openShard).toMatch(/^open#/);
});

test('a completed run is never reported: the write that completes it takes it out of the index', async () => {
  const uid = newUid();
  const activity = 'Intake';
  await startRun(uid, [activity]);
  // No plugins registered: pre, parallel and post settle at once, as in a real activity execution.
  await h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage: 'pre', topicArn: h.topicArn('pre'), maxAttempts: 3 });
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn('parallel'), token: `t-${uid}` });
  expect((await h.item(uid, WORKFLOW) as any).openShard).toMatch(/^open#/); // still running
  await h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage: 'post', topicArn: h.topicArn('post'), maxAttempts: 3 });

  const item = await h.item(uid, WORKFLOW) as any;
  expect(item.status.state).toBe('Complete');
  expect(item.openShard).toBeUndefined();
  await h.patch(uid, WORKFLOW, ['openedAt'], minutesAgo(60)); // however old
  await expect(stuckRuns({})).resolves.toEqual({ reported: 0, failed: 0 });
  expect(events()).toEqual([]);
});

test('a failed run is never reported: stage-failure records Error and takes it out of the index', async () => {
  const uid = newUid();
  await startRun(uid);
  await rejectionOf(h.handlers.stageFailure({ uid, workflow: WORKFLOW, activity: 'Intake', error: { Error: 'States.TaskFailed', Cause: 'boom' } }));
  const item = await h.item(uid, WORKFLOW) as any;
  expect(item.status.state).toBe('Error');
  expect(item.openShard).toBeUndefined();
  await h.patch(uid, WORKFLOW, ['openedAt'], minutesAgo(60));
  await expect(stuckRuns({})).resolves.toEqual({ reported: 0, failed: 0 });
});

test('a re-run of a reported run opens it again (no stale report): it is reported again only once stuck again', async () => {
  const uid = newUid();
  await startRun(uid);
  await rejectionOf(h.handlers.stageFailure({ uid, workflow: WORKFLOW, activity: 'Intake', error: { Error: 'States.TaskFailed', Cause: 'boom' } }));
  await expect(h.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Intake'] })).resolves.toMatchObject({ rerun: true });
  const reopened = await h.item(uid, WORKFLOW) as any;
  expect(reopened.openShard).toMatch(/^open#/);
  expect(reopened.stuckReportedAt).toBeUndefined();
  await expect(stuckRuns({})).resolves.toEqual({ reported: 0, failed: 0 });
  await age(uid, 30);
  await expect(stuckRuns({})).resolves.toEqual({ reported: 1, failed: 0 });
});

test(`many runs over all ${OPEN_RUN_SHARDS} shards: each reported exactly once, one Query per shard, 10 events per PutEvents`, async () => {
  const uids = Array.from({ length: 45 }, () => newUid());
  for (const uid of uids) await startRun(uid);
  for (const uid of uids) await age(uid, 16);
  const shards = new Set<string>();
  for (const uid of uids) shards.add((await h.item(uid, WORKFLOW) as any).openShard);
  expect(shards.size).toBe(OPEN_RUN_SHARDS);
  h.fake.clearCalls();

  // Two sweeps at the same time (e.g. a manual invocation during a scheduled one): still once per run.
  const [first, second] = await Promise.all([stuckRuns({}), stuckRuns({})]);
  expect(first.reported + second.reported).toBe(uids.length);
  const reportedUids = events().map((event) => event.Detail.uid);
  expect(reportedUids.sort()).toEqual([...uids].sort());
  const queries = h.fake.callsTo('dynamodb', 'Query');
  expect(queries).toHaveLength(2 * OPEN_RUN_SHARDS);
  expect(new Set(queries.map((q) => q.input.ExpressionAttributeValues[':shard'].S))).toEqual(
    new Set(Array.from({ length: OPEN_RUN_SHARDS }, (_, i) => `open#${i}`)));
  expect(h.fake.callsTo('dynamodb', 'Scan')).toEqual([]);
  for (const call of h.fake.callsTo('events', 'PutEvents')) expect(call.input.Entries.length).toBeLessThanOrEqual(10);
});

test('an event EventBridge refuses is not lost: its run goes back to its open shard, the sweep fails, the next one reports it', async () => {
  const [a, b] = [newUid(), newUid()];
  await startRun(a);
  await startRun(b);
  await age(a, 40);
  await age(b, 30);
  h.fake.rejectPutEventsEntries(1); // the first entry (the oldest run, a)

  const error = await rejectionOf(stuckRuns({}));
  expect(error.name).toBe('StuckRunReportFailed');
  const itemA = await h.item(a, WORKFLOW) as any;
  expect(itemA.openShard).toMatch(/^open#/);
  expect(itemA.stuckReportedAt).toBeUndefined();
  expect((await h.item(b, WORKFLOW) as any).openShard).toMatch(/^stuck#/);

  h.fake.clearCalls();
  await expect(stuckRuns({})).resolves.toEqual({ reported: 1, failed: 0 });
  expect(events().map((event) => event.Detail.uid)).toEqual([a]);
});

test('marking a run stuck changes no stage: status-summary, woken by the record, neither writes nor heartbeats', async () => {
  const uid = newUid();
  const activity = 'Waits';
  await h.registerPlugin({ activity, stage: 'async', name: 'Slow' });
  await startRun(uid, [activity]);
  await h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage: 'pre', topicArn: h.topicArn('pre'), maxAttempts: 3 });
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn('parallel'), token: `t-${uid}` });
  await h.pump();
  await age(uid, 20);
  await h.stream.read(); // the test's own back-dating is not what is under test
  const before = await h.item(uid, WORKFLOW) as any;
  h.fake.clearCalls();

  await expect(stuckRuns({})).resolves.toEqual({ reported: 1, failed: 0 });
  const records = (await h.stream.read()).filter((record) => record.dynamodb?.NewImage?.awaiting);
  expect(records).toHaveLength(1); // the mark is a change of an item that awaits: the mapping delivers it
  h.fake.clearCalls();
  await h.handlers.statusSummary({ Records: records });
  expect(h.fake.callsTo('sfn')).toEqual([]);
  expect(h.fake.callsTo('dynamodb', 'UpdateItem')).toEqual([]);
  const after = await h.item(uid, WORKFLOW) as any;
  expect(after.activities).toEqual(before.activities);
  expect(after.updatedAt).toBe(before.updatedAt);
});

test('a misconfigured function fails with a named error and writes nothing', async () => {
  const saved = process.env.STUCK_AFTER_SECONDS;
  process.env.STUCK_AFTER_SECONDS = 'soon';
  try {
    const error = await rejectionOf(stuckRuns({}));
    expect(error.name).toBe('ConfigurationError');
    expect(error.message).toMatch(/STUCK_AFTER_SECONDS.*"soon"/);
    expect(h.fake.callsTo('dynamodb')).toEqual([]);
  } finally {
    process.env.STUCK_AFTER_SECONDS = saved;
  }
});

test('publishes the StuckRuns metric (EMF): the orchestrator\'s count on every sweep, and per workflow when there are some', async () => {
  const uid = newUid();
  await startRun(uid);
  await age(uid, 20);
  const saved = { ...process.env };
  Object.assign(process.env, { POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator' });
  let fresh!: StuckRuns;
  // A fresh module instance: Powertools reads its environment when the bundle loads.
  jest.isolateModules(() => {
    fresh = jest.requireActual<{ handler: StuckRuns }>(join(__dirname, '..', '..', 'assets', 'handlers', 'stuck-runs', 'index.js')).handler;
  });
  const lines: string[] = [];
  const write = process.stdout.write;
  process.stdout.write = ((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter((line) => line.startsWith('{')));
    return true;
  }) as typeof process.stdout.write;
  try {
    await fresh({});
    await fresh({});
  } finally {
    process.stdout.write = write;
    process.env = saved;
  }
  const records = lines.map((line) => JSON.parse(line)).filter((line) => line._aws)
    .map((line) => {
      const [metrics] = line._aws.CloudWatchMetrics;
      return { dimensions: metrics.Dimensions[0].sort(), namespace: metrics.Namespace, value: line.StuckRuns, workflow: line.workflow };
    });
  expect(records).toEqual([
    { dimensions: ['orchestrator', 'service'], namespace: 'CdkOrchestrator', value: 1, workflow: undefined },
    { dimensions: ['orchestrator', 'service', 'workflow'], namespace: 'CdkOrchestrator', value: 1, workflow: WORKFLOW },
    { dimensions: ['orchestrator', 'service'], namespace: 'CdkOrchestrator', value: 0, workflow: undefined },
  ]);
});
