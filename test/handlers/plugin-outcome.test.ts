/**
 * plugin-outcome, the bundled handler, against DynamoDB Local: the Lambda destination of PARALLEL
 * plugins added with addPlugin. The runs are real (start-run and parallel-stage, bundled), the
 * destination records carry the SNS event parallel-stage published (through ScriptedAws), and the
 * registry items have the layout the constructs write at deploy time.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DeleteCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { snsEnvelope } from '../../lambda/shared/status';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Claims';

interface OutcomeResult { recorded: boolean; reason?: string; plugin?: string; state?: string }
type OutcomeHandler = (event: unknown) => Promise<OutcomeResult>;

let h: Harness;
let pluginOutcome: OutcomeHandler;
beforeAll(async () => {
  h = await Harness.create('outcome');
  pluginOutcome = jest.requireActual<{ handler: OutcomeHandler }>(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-outcome', 'index.js')).handler;
});
afterAll(async () => h.close());
beforeEach(async () => {
  await h.stream.read(); // each test starts with a quiet stream
  h.fake.clearCalls();
});

let counter = 0;

interface Plugin { readonly name: string; readonly mandatory?: boolean }

/** Registry items as `addPlugin` writes them for PARALLEL plugins: keyed by the SNS subscription ARN. */
async function register(activity: string, plugin: Plugin, subscriptionArn = `${h.topicArn(`${activity}-parallel`)}:${randomUUID()}`): Promise<string> {
  await h.db.send(new PutCommand({
    TableName: h.pluginTable,
    Item: {
      orchestratorId: `${activity}|async`,
      subscriptionArn,
      functionName: `fn-${plugin.name}`,
      functionArn: h.functionArn(`fn-${plugin.name}`),
      pluginName: plugin.name,
      mandatory: plugin.mandatory ?? true,
      order: 90,
      source: 'cdk',
    },
  }));
  return subscriptionArn;
}

interface ParallelRun {
  readonly uid: string;
  readonly activity: string;
  readonly token: string;
  /** The SNS event each plugin received (by plugin name). */
  readonly events: Record<string, unknown>;
}

/** A run whose parallel stage has started and published its message. */
async function parallelRun(plugins: Plugin[], uid = `claim-${++counter}-${Date.now()}`, activity = `Out${counter}`): Promise<ParallelRun> {
  const subscriptions: Record<string, string> = {};
  for (const plugin of plugins) subscriptions[plugin.name] = await register(activity, plugin);
  return runOf(subscriptions, uid, activity);
}

/** A run of `activity` whose plugins are already registered (subscription ARN by plugin name). */
async function runOf(subscriptions: Record<string, string>, uid: string, activity: string): Promise<ParallelRun> {
  await h.handlers.startRun({ input: { uid, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: [activity] });
  const token = `token-${uid}`;
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token });
  await h.pump();
  const [published] = h.fake.published();
  const events: Record<string, unknown> = {};
  for (const [name, subscriptionArn] of Object.entries(subscriptions)) {
    events[name] = snsEnvelope({
      body: published.message,
      topicArn: published.topicArn,
      subscriptionArn,
      attributes: published.attributes as never,
      messageId: randomUUID(),
      now: new Date().toISOString(),
    });
  }
  h.fake.clearCalls();
  return { uid, activity, token, events };
}

/** The record Lambda sends to the destinations after an asynchronous invocation. */
type Outcome = { success: true; result?: unknown } | { success: false; error?: unknown; condition?: string };

function destinationRecord(requestPayload: unknown, outcome: Outcome, attempts = 1) {
  const failed = !outcome.success;
  return {
    version: '1.0',
    timestamp: new Date().toISOString(),
    requestContext: {
      requestId: randomUUID(),
      functionArn: `${h.functionArn('fn-plugin')}:$LATEST`,
      condition: outcome.success ? 'Success' : outcome.condition ?? 'RetriesExhausted',
      approximateInvokeCount: attempts,
    },
    requestPayload,
    responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(failed ? { functionError: 'Unhandled' } : {}) },
    responsePayload: outcome.success ? outcome.result ?? null : outcome.error,
  };
}

const succeeded = (event: unknown, result?: unknown) => destinationRecord(event, { success: true, result });
const failed = (event: unknown, error: unknown, attempts = 3) => destinationRecord(event, { success: false, error }, attempts);
const subscriptionOf = (event: unknown): string => (event as { Records: [{ EventSubscriptionArn: string }] }).Records[0].EventSubscriptionArn;
const stageOf = async (run: ParallelRun) => (await h.item(run.uid, WORKFLOW))!.activities[run.activity].async;

test('success of a zero-SDK plugin: its entry becomes Complete with one GetItem and one UpdateItem, and the stage settles', async () => {
  const run = await parallelRun([{ name: 'Rate' }, { name: 'Fraud' }]);

  await expect(pluginOutcome(succeeded(run.events.Rate))).resolves.toEqual({ recorded: true, plugin: 'Rate', state: 'Complete' });
  expect(h.fake.dynamoDbRequests()).toEqual(['GetItem', 'UpdateItem']);
  await h.pump();
  expect(h.fake.callsTo('sfn').map((call) => call.action)).toEqual(['SendTaskHeartbeat']); // progress; Fraud is still running
  h.fake.clearCalls();

  await pluginOutcome(succeeded(run.events.Fraud, { rated: true }));
  await h.pump();
  const stage = await stageOf(run);
  expect(stage.mandatory.Rate).toMatchObject({ state: 'Complete' });
  expect(stage.mandatory.Fraud).toMatchObject({ state: 'Complete' });
  expect(stage.status.state).toBe('Complete');
  expect(h.fake.callsTo('sfn').map((call) => [call.action, call.input.taskToken])).toEqual([['SendTaskSuccess', run.token]]);
});

test('failure after the retries: Error with the trimmed error and the attempts; a mandatory plugin fails the stage', async () => {
  const run = await parallelRun([{ name: 'Rate' }]);
  const error = { errorType: 'RatingUnavailable', errorMessage: `rating service answered 503 ${'x'.repeat(300)}`, trace: ['at handler'] };

  await expect(pluginOutcome(failed(run.events.Rate, error))).resolves.toMatchObject({ recorded: true, state: 'Error' });
  await h.pump();

  const stage = await stageOf(run);
  expect(stage.mandatory.Rate.state).toBe('Error');
  expect(stage.mandatory.Rate.message).toMatch(/^RatingUnavailable: rating service answered 503 x+/);
  expect(stage.mandatory.Rate.message!.length).toBeLessThanOrEqual(180);
  expect(stage.status.state).toBe('Error');
  const [failure] = h.fake.callsTo('sfn', 'SendTaskFailure');
  expect(failure.input).toMatchObject({ taskToken: run.token, error: 'PluginFailed' });
  expect(failure.input.cause).toContain('Rate');
});

test('the message names the attempts when the error message fits', async () => {
  const run = await parallelRun([{ name: 'Rate' }]);
  await pluginOutcome(failed(run.events.Rate, { errorType: 'TypeError', errorMessage: 'premium is undefined' }, 3));
  expect((await stageOf(run)).mandatory.Rate.message).toBe('TypeError: premium is undefined (after 3 attempts)');
});

test('an optional plugin that fails is recorded Error and the stage ends Optional Task Error, without failing the activity', async () => {
  const run = await parallelRun([{ name: 'Rate' }, { name: 'Marketing', mandatory: false }]);

  await pluginOutcome(failed(run.events.Marketing, { errorType: 'Error', errorMessage: 'mailing list down' }));
  await pluginOutcome(succeeded(run.events.Rate));
  await h.pump();

  const stage = await stageOf(run);
  expect(stage.optional.Marketing).toMatchObject({ state: 'Error', message: 'Error: mailing list down (after 3 attempts)' });
  expect(stage.status.state).toBe('Optional Task Error');
  expect(h.fake.callsTo('sfn').map((call) => call.action)).toEqual(['SendTaskSuccess']);
});

test('a maximum event age exceeded (the plugin timeout) is an Error', async () => {
  const run = await parallelRun([{ name: 'Slow' }]);
  await pluginOutcome(destinationRecord(run.events.Slow, { success: false, condition: 'EventAgeExceeded', error: null }, 2));
  expect((await stageOf(run)).mandatory.Slow).toMatchObject({
    state: 'Error', message: 'Timed out: the plugin did not succeed within its maximum event age (after 2 attempts)',
  });
});

test('a plugin may return a business outcome like PRE/POST plugins: { state: "Error", message } and { state: "Do Not Run" }', async () => {
  const run = await parallelRun([{ name: 'Rate' }, { name: 'Fraud' }, { name: 'Survey' }]);
  await pluginOutcome(succeeded(run.events.Rate, { state: 'Error', message: 'declined: no rating for this region' }));
  await pluginOutcome(succeeded(run.events.Fraud, { state: 'Do Not Run' }));
  const stage = await stageOf(run);
  expect(stage.mandatory.Rate).toMatchObject({ state: 'Error', message: 'declined: no rating for this region' });
  expect(stage.mandatory.Fraud.state).toBe('Do Not Run');
});

test('a plugin that returns { state: "In Progress" } reports itself later: nothing is written', async () => {
  const run = await parallelRun([{ name: 'LongJob' }]);
  await expect(pluginOutcome(succeeded(run.events.LongJob, { state: 'In Progress' })))
    .resolves.toMatchObject({ recorded: false, reason: expect.stringContaining('reports its own outcome') });
  expect(h.fake.dynamoDbRequests()).toEqual([]);
  expect((await stageOf(run)).mandatory.LongJob.state).toBe('Not Started');
});

describe('never backwards: a plugin that already reported a final state itself (plugin SDK) keeps it', () => {
  test.each<['Complete' | 'Error' | 'Do Not Run', 'success' | 'failure']>([
    ['Complete', 'failure'],
    ['Error', 'success'],
    ['Do Not Run', 'success'],
    ['Complete', 'success'],
  ])('reported %s, then the %s record arrives', async (reported, outcome) => {
    const run = await parallelRun([{ name: 'Sdk' }]);
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Sdk', state: reported, message: 'said by the plugin' });
    const before = (await stageOf(run)).mandatory.Sdk;

    const record = outcome === 'success' ? succeeded(run.events.Sdk) : failed(run.events.Sdk, { errorType: 'Error', errorMessage: 'crashed after reporting' });
    await expect(pluginOutcome(record)).resolves.toMatchObject({ recorded: false, reason: `the plugin is already ${reported}` });

    expect((await stageOf(run)).mandatory.Sdk).toEqual(before);
  });

  test('an SDK plugin that only set In Progress is completed by its success record', async () => {
    const run = await parallelRun([{ name: 'Sdk' }]);
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Sdk', state: 'In Progress' });
    await expect(pluginOutcome(succeeded(run.events.Sdk))).resolves.toMatchObject({ recorded: true, state: 'Complete' });
    expect((await stageOf(run)).mandatory.Sdk.state).toBe('Complete');
  });
});

test('a late record from an earlier run of the same uid does not settle the re-run', async () => {
  const first = await parallelRun([{ name: 'Rate' }]);
  // The first run fails (its stage times out); the plugin's retries are still going on.
  await h.handlers.stageFailure({ uid: first.uid, workflow: WORKFLOW, activity: first.activity, error: { Error: 'States.Timeout', Cause: 'timed out' } })
    .catch(() => undefined);
  await new Promise((resolve) => setTimeout(resolve, 5)); // the re-run's stage starts strictly later
  await h.handlers.startRun({ input: { uid: first.uid, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: [first.activity] });
  await h.handlers.parallelStage({ uid: first.uid, workflow: WORKFLOW, activity: first.activity, stage: 'async', topicArn: h.topicArn('p'), token: 'token-rerun' });
  expect((await stageOf(first)).mandatory.Rate.state).toBe('Not Started');

  await expect(pluginOutcome(succeeded(first.events.Rate)))
    .resolves.toMatchObject({ recorded: false, reason: 'the stage was started again after this message was sent' });
  expect((await stageOf(first)).mandatory.Rate.state).toBe('Not Started');
});

// The handler module (and what it remembers) lives for the whole file: every run registers its plugins
// under new subscription ARNs, so only the tests below meet a remembered plugin.
describe('a warm container remembers the plugin of a subscription', () => {
  test('the next run\'s outcome costs one UpdateItem', async () => {
    const first = await parallelRun([{ name: 'Rate' }]);
    await expect(pluginOutcome(succeeded(first.events.Rate))).resolves.toMatchObject({ recorded: true, plugin: 'Rate' });
    const second = await runOf({ Rate: subscriptionOf(first.events.Rate) }, `claim-${++counter}-${Date.now()}`, first.activity);

    await expect(pluginOutcome(succeeded(second.events.Rate))).resolves.toEqual({ recorded: true, plugin: 'Rate', state: 'Complete' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem']);
    expect((await stageOf(second)).mandatory.Rate.state).toBe('Complete');
  });

  test.each<[string, Plugin]>([
    ['made optional', { name: 'Rate', mandatory: false }],
    ['renamed', { name: 'Rating' }],
  ])('a registration %s since it was remembered: the refused write reads the registry again and records under the new entry', async (_, changed) => {
    const first = await parallelRun([{ name: 'Rate' }]);
    await pluginOutcome(succeeded(first.events.Rate));
    const subscription = subscriptionOf(first.events.Rate);
    await register(first.activity, changed, subscription); // a refresh rewrote the item
    const second = await runOf({ [changed.name]: subscription }, `claim-${++counter}-${Date.now()}`, first.activity);

    await expect(pluginOutcome(succeeded(second.events[changed.name]))).resolves.toEqual({ recorded: true, plugin: changed.name, state: 'Complete' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem', 'GetItem', 'UpdateItem']);
    await h.pump();
    const stage = await stageOf(second);
    expect(stage[changed.mandatory === false ? 'optional' : 'mandatory'][changed.name].state).toBe('Complete');
    expect(stage.status.state).toBe('Complete');
    // What was read is remembered: the next outcome of this subscription is one write again.
    const third = await runOf({ [changed.name]: subscription }, `claim-${++counter}-${Date.now()}`, first.activity);
    await pluginOutcome(succeeded(third.events[changed.name]));
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem']);
  });

  test('a re-run of the uid after a rename: the old name\'s entry is final, so the refused write reads the registry again', async () => {
    const first = await parallelRun([{ name: 'Rate' }, { name: 'Other' }]);
    await pluginOutcome(succeeded(first.events.Rate));
    await pluginOutcome(failed(first.events.Other, { errorType: 'Error', errorMessage: 'down' }));
    await h.handlers.stageFailure({ uid: first.uid, workflow: WORKFLOW, activity: first.activity, error: { Error: 'PluginFailed', Cause: 'Other' } })
      .catch(() => undefined);
    const subscription = subscriptionOf(first.events.Rate);
    await register(first.activity, { name: 'Rating' }, subscription);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the re-run's stage starts strictly later
    const rerun = await runOf({ Rating: subscription, Other: subscriptionOf(first.events.Other) }, first.uid, first.activity);
    expect((await stageOf(rerun)).mandatory.Rate.state).toBe('Complete'); // finished work is kept by the re-run

    await expect(pluginOutcome(succeeded(rerun.events.Rating))).resolves.toEqual({ recorded: true, plugin: 'Rating', state: 'Complete' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem', 'GetItem', 'UpdateItem']);
    expect((await stageOf(rerun)).mandatory.Rating.state).toBe('Complete');
  });

  test('a refused write whose registration did not change reads it once and writes nothing more (a plugin that reported itself)', async () => {
    const first = await parallelRun([{ name: 'Sdk' }]);
    await pluginOutcome(succeeded(first.events.Sdk));
    const second = await runOf({ Sdk: subscriptionOf(first.events.Sdk) }, `claim-${++counter}-${Date.now()}`, first.activity);
    await h.report({ uid: second.uid, workflow: WORKFLOW, activity: second.activity, stage: 'async', plugin: 'Sdk', state: 'Error', message: 'said by the plugin' });
    h.fake.clearCalls();

    await expect(pluginOutcome(succeeded(second.events.Sdk))).resolves.toEqual({ recorded: false, reason: 'the plugin is already Error', plugin: 'Sdk', state: 'Complete' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem', 'GetItem']);
    expect((await stageOf(second)).mandatory.Sdk).toMatchObject({ state: 'Error', message: 'said by the plugin' });
  });

  test('a late record from an earlier run of the uid: refused for the stage\'s later start, with no registry read', async () => {
    const warm = await parallelRun([{ name: 'Rate' }]);
    await pluginOutcome(succeeded(warm.events.Rate));
    const first = await runOf({ Rate: subscriptionOf(warm.events.Rate) }, `claim-${++counter}-${Date.now()}`, warm.activity);
    await h.handlers.stageFailure({ uid: first.uid, workflow: WORKFLOW, activity: first.activity, error: { Error: 'States.Timeout', Cause: 'timed out' } })
      .catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 5)); // the re-run's stage starts strictly later
    await runOf({ Rate: subscriptionOf(warm.events.Rate) }, first.uid, first.activity);

    await expect(pluginOutcome(succeeded(first.events.Rate)))
      .resolves.toMatchObject({ recorded: false, reason: 'the stage was started again after this message was sent' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem']);
  });

  test('a plugin unregistered since it was remembered is ignored once the run has no entry for it, and forgotten', async () => {
    const first = await parallelRun([{ name: 'Rate' }, { name: 'Fraud' }]);
    await pluginOutcome(succeeded(first.events.Rate));
    const subscription = subscriptionOf(first.events.Rate);
    await h.db.send(new DeleteCommand({ TableName: h.pluginTable, Key: { orchestratorId: `${first.activity}|async`, subscriptionArn: subscription } }));
    const second = await runOf({ Fraud: subscriptionOf(first.events.Fraud) }, `claim-${++counter}-${Date.now()}`, first.activity);
    const stray = JSON.parse(JSON.stringify(second.events.Fraud));
    stray.Records[0].EventSubscriptionArn = subscription;

    await expect(pluginOutcome(succeeded(stray))).resolves.toMatchObject({ recorded: false, reason: expect.stringContaining('no plugin of') });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem', 'GetItem']);
    expect((await stageOf(second)).mandatory).not.toHaveProperty('Rate');
    h.fake.clearCalls();
    await pluginOutcome(succeeded(stray));
    expect(h.fake.dynamoDbRequests()).toEqual(['GetItem']);
  });
});

test('a subscription that is not in the registry is ignored: nothing written', async () => {
  const run = await parallelRun([{ name: 'Rate' }]);
  const stranger = JSON.parse(JSON.stringify(run.events.Rate));
  stranger.Records[0].EventSubscriptionArn = `${h.topicArn('other')}:${randomUUID()}`;
  await expect(pluginOutcome(succeeded(stranger))).resolves.toMatchObject({ recorded: false, reason: expect.stringContaining('no plugin of') });
  expect(h.fake.dynamoDbRequests()).toEqual(['GetItem']);
});

test('a run without a status item (or without the plugin entry) is refused, not invented', async () => {
  const run = await parallelRun([{ name: 'Rate' }]);
  const ghost = JSON.parse(JSON.stringify(run.events.Rate));
  const message = JSON.parse(ghost.Records[0].Sns.Message);
  ghost.Records[0].Sns.Message = JSON.stringify({ ...message, uid: 'nobody' });
  const count = await h.itemCount();
  await expect(pluginOutcome(succeeded(ghost))).resolves.toMatchObject({ recorded: false, reason: 'no status item for this run' });
  expect(await h.itemCount()).toBe(count);

  // Registered after the stage started: the run has no entry for it.
  const late = await register(run.activity, { name: 'Late' });
  const lateEvent = JSON.parse(JSON.stringify(run.events.Rate));
  lateEvent.Records[0].EventSubscriptionArn = late;
  await expect(pluginOutcome(succeeded(lateEvent))).resolves.toMatchObject({ recorded: false, reason: 'the run has no entry for this plugin' });
  expect((await stageOf(run)).mandatory).not.toHaveProperty('Late');
});

describe('records that are not about a plugin message are ignored, nothing read or written', () => {
  test.each<[string, unknown]>([
    ['a direct asynchronous invocation', { some: 'event' }],
    ['an SNS message that is not JSON', { Records: [{ EventSubscriptionArn: 'arn:sub', Sns: { Message: 'hello' } }] }],
    ['an SNS message of another application', { Records: [{ EventSubscriptionArn: 'arn:sub', Sns: { Message: '{"orderId":1}' } }] }],
    ['a sequential stage message', { Records: [{ EventSubscriptionArn: 'arn:sub', Sns: { Message: '{"uid":"u","workflow":"w","activity":"a","stage":"pre"}' } }] }],
  ])('%s', async (_case, payload) => {
    await expect(pluginOutcome(succeeded(payload))).resolves.toMatchObject({ recorded: false });
    expect(h.fake.calls).toEqual([]);
  });
});

test('an invocation that is not a destination record fails with InvalidOutcomeEvent', async () => {
  for (const event of [undefined, [], { requestPayload: {} }, { requestContext: { condition: 'Success' } }]) {
    expect((await rejectionOf(pluginOutcome(event))).name).toBe('InvalidOutcomeEvent');
  }
  expect(h.fake.calls).toEqual([]);
});
