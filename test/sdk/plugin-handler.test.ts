/**
 * The plugin SDK (lib/sdk/index.js, the bundle the npm package ships) against DynamoDB Local, with
 * runs started and stages opened by the bundled orchestrator handlers (start-run, parallel-stage,
 * sequential-stage) and outcomes recorded by the bundled plugin-outcome. ScriptedAws stands in for SNS
 * and Lambda (no emulator here); it forwards and counts every DynamoDB request, so the tests also
 * say what the SDK costs per message.
 */
import { join } from 'node:path';
import { QueryCommand } from '@aws-sdk/lib-dynamodb';
import { asStatusDocument, buildPluginMessage, serializePluginMessage } from '../../lambda/shared/status';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Quotes';
const SDK_PATH = join(__dirname, '..', '..', 'lib', 'sdk', 'index.js');

// The bundle, loaded like a plugin's function would: require('cdk-orchestrator/lib/sdk').
type Sdk = typeof import('../../lambda/sdk');
let sdk: Sdk;
let h: Harness;
let outcomeHandler: (event: unknown) => Promise<{ recorded: boolean; reason?: string; state?: string }>;

beforeAll(async () => {
  h = await Harness.create('sdk');
  process.env.CDK_ORCHESTRATOR_STATUS_TABLE = h.statusTable;
  sdk = jest.requireActual<Sdk>(SDK_PATH);
  outcomeHandler = jest.requireActual(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-outcome', 'index.js')).handler;
});
afterAll(async () => h.close());

let counter = 0;

interface ParallelRun {
  readonly uid: string;
  readonly activity: string;
  /** The SNS event SNS delivers to the plugin (the message parallel-stage published). */
  readonly event: { Records: Array<{ EventSource: string; EventSubscriptionArn: string; Sns: { Message: string } }> };
  readonly message: Record<string, any>;
}

/** A run whose parallel stage started (by the bundled handlers) with the given plugins registered. */
async function parallelRun(
  plugins: Array<{ name: string; mandatory?: boolean }>, metadata: Record<string, unknown> = { amount: 1200 },
): Promise<ParallelRun> {
  const activity = `Sdk${++counter}`;
  for (const plugin of plugins) await h.registerPlugin({ activity, stage: 'async', name: plugin.name, mandatory: plugin.mandatory });
  const uid = `quote-${counter}`;
  await h.handlers.startRun({ input: { uid, metadata }, workflow: WORKFLOW, activities: [activity] });
  h.fake.clearCalls();
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: `token-${counter}` });
  const published = h.fake.published().at(-1)!;
  h.fake.clearCalls();
  const subscriptionArn = await subscriptionOf(activity, plugins[0].name);
  return {
    uid,
    activity,
    message: JSON.parse(published.message),
    event: { Records: [{ EventSource: 'aws:sns', EventSubscriptionArn: subscriptionArn, Sns: { Message: published.message } }] },
  };
}

async function subscriptionOf(activity: string, plugin: string): Promise<string> {
  const answer = await h.db.send(new QueryCommand({
    TableName: h.pluginTable, KeyConditionExpression: 'orchestratorId = :id', ExpressionAttributeValues: { ':id': `${activity}|async` },
  }));
  return answer.Items!.find((item) => item.pluginName === plugin)!.subscriptionArn;
}

async function entry(run: ParallelRun, plugin: string, kind: 'mandatory' | 'optional' = 'mandatory') {
  return (await h.item(run.uid, WORKFLOW))!.activities[run.activity].async[kind][plugin];
}

/** A Lambda destination record for the plugin's asynchronous invocation (what plugin-outcome receives). */
function destinationRecord(run: ParallelRun, condition: string, responsePayload: unknown, attempts = 1) {
  return {
    requestContext: { functionArn: h.functionArn('plugin'), condition, approximateInvokeCount: attempts },
    requestPayload: run.event,
    responseContext: condition === 'Success' ? {} : { functionError: 'Unhandled' },
    responsePayload,
  };
}

describe('configuration and initialize', () => {
  test('answers { initialize: true } (direct, or as an SNS message) with its configuration, defaults filled in', async () => {
    const handler = sdk.pluginHandler({ pluginName: 'Rate', order: 20, description: 'Rates the quote', fifoKey: 'customer' }, async () => undefined);
    const expected = {
      pluginName: 'Rate', mandatory: true, order: 20, overrides: {}, alwaysRun: false, idempotent: true, description: 'Rates the quote', fifoKey: 'customer',
    };
    await expect(handler({ initialize: true })).resolves.toEqual(expected);
    await expect(handler({ Records: [{ EventSource: 'aws:sns', Sns: { Message: '{"initialize":true}' } }] })).resolves.toEqual(expected);
    expect(h.fake.dynamoDbRequests()).toEqual([]);
  });

  test('a bad configuration fails when the module loads, naming the field, the value and what is allowed', () => {
    expect(() => sdk.pluginHandler({ pluginName: 'has space' }, async () => undefined))
      .toThrow('pluginName is "has space"; it must be 1-64 characters from A-Z a-z 0-9 - _');
    expect(() => sdk.pluginHandler({ pluginName: 'Rate', order: 2.5 }, async () => undefined))
      .toThrow('pluginHandler "Rate": order is 2.5; it must be a whole number from 0 to 1,000,000');
    expect(() => sdk.pluginHandler({ pluginName: 'Rate', overrides: { Step1: { mandatory: 'yes' as unknown as boolean } } }, async () => undefined))
      .toThrow('overrides.Step1: mandatory is "yes"; it must be true or false');
    const error = (() => {
      try {
        sdk.pluginHandler({ pluginName: 'Rate' }, undefined as never);
      } catch (e) {
        return e as Error;
      }
      return undefined;
    })();
    expect(error?.name).toBe('InvalidPluginConfig');
  });

  test('an event that is no plugin message is a named error saying what is accepted', async () => {
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, async () => undefined);
    const error = await rejectionOf(handler({ hello: 'world' }));
    expect(error.name).toBe('InvalidPluginEvent');
    expect(error.message).toContain('expected { "initialize": true }, an SNS event, an SQS event or a plugin message');
    const partial = await rejectionOf(handler({ uid: 'u', workflow: 'w', activity: 'A', stage: 'later' }));
    expect(partial.message).toContain('stage must be "pre", "async" or "post"');
  });
});

describe('one message (SNS delivery of the parallel stage)', () => {
  test('reports In Progress, runs with the typed message, then Complete: two conditional writes, no read', async () => {
    const run = await parallelRun([{ name: 'Rate' }, { name: 'Fraud' }]);
    const seen: Array<{ amount: unknown; state: string; ownEntry: string; kind: string; source: string }> = [];
    const handler = sdk.pluginHandler<{ amount: number }>({ pluginName: 'Rate' }, async (message, context) => {
      const stored = await entry(run, 'Rate');
      const ownEntry = message.activities[message.activity].async.mandatory.Rate.state;
      seen.push({ amount: message.amount, state: stored.state, ownEntry, kind: context.kind, source: context.source });
    });
    await expect(handler(run.event)).resolves.toEqual({ state: 'Complete', skipped: false, reported: true });
    // While the work ran, the entry was In Progress, and the message the work got said so too.
    expect(seen).toEqual([{ amount: 1200, state: 'In Progress', ownEntry: 'In Progress', kind: 'mandatory', source: 'sns' }]);
    expect(await entry(run, 'Rate')).toMatchObject({ state: 'Complete' });
    expect(await entry(run, 'Fraud')).toMatchObject({ state: 'Not Started' });
    expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem', 'UpdateItem']);
  });

  test('an optional plugin reports into the optional map; a returned Do Not Run is recorded', async () => {
    const run = await parallelRun([{ name: 'Rate' }, { name: 'Marketing', mandatory: false }]);
    const handler = sdk.pluginHandler({ pluginName: 'Marketing', mandatory: false }, async (_message, context) => {
      expect(context.kind).toBe('optional');
      return { state: 'Do Not Run' as const, message: 'no consent to marketing' };
    });
    await expect(handler(run.event)).resolves.toMatchObject({ state: 'Do Not Run', message: 'no consent to marketing', reported: true });
    expect(await entry(run, 'Marketing', 'optional')).toMatchObject({ state: 'Do Not Run', message: 'no consent to marketing' });
  });

  test('skips work the message already shows Complete or Do Not Run, without any request', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    const work = jest.fn();
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, work);
    for (const state of ['Complete', 'Do Not Run']) {
      const message = structuredClone(run.message);
      message.activities[run.activity].async.mandatory.Rate.state = state;
      await expect(handler({ Records: [{ EventSource: 'aws:sns', Sns: { Message: JSON.stringify(message) } }] }))
        .resolves.toEqual({ state, skipped: true, reported: false });
    }
    expect(work).not.toHaveBeenCalled();
    expect(h.fake.dynamoDbRequests()).toEqual([]);
  });

  test('a repeated delivery (stale message) of work already Complete or Do Not Run is skipped: the status item decides', async () => {
    for (const state of ['Complete', 'Do Not Run'] as const) {
      const run = await parallelRun([{ name: 'Rate' }]);
      await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Rate', state });
      const before = await entry(run, 'Rate');
      const work = jest.fn();
      // The message still says Not Started.
      expect(run.message.activities[run.activity].async.mandatory.Rate.state).toBe('Not Started');
      await expect(sdk.pluginHandler({ pluginName: 'Rate' }, work)(run.event)).resolves.toEqual({ state, skipped: true, reported: false });
      expect(work).not.toHaveBeenCalled();
      expect(await entry(run, 'Rate')).toEqual(before);
      // The re-read is the refused In Progress write itself (it returns the stored item).
      expect(h.fake.dynamoDbRequests()).toEqual(['UpdateItem']);
      h.fake.clearCalls();
    }
  });

  test('idempotent: false decides from the message alone: a stale delivery runs again, and the final entry is kept', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Rate', state: 'Complete' });
    const before = await entry(run, 'Rate');
    const work = jest.fn();
    await expect(sdk.pluginHandler({ pluginName: 'Rate', idempotent: false }, work)(run.event))
      .resolves.toEqual({ state: 'Complete', skipped: false, reported: false });
    expect(work).toHaveBeenCalledTimes(1);
    expect(await entry(run, 'Rate')).toEqual(before);
  });

  test('alwaysRun runs even when the message says Complete; the entry stays as it was', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Rate', state: 'Complete' });
    const before = await entry(run, 'Rate');
    const message = structuredClone(run.message);
    message.activities[run.activity].async.mandatory.Rate.state = 'Complete';
    const work = jest.fn();
    await expect(sdk.pluginHandler({ pluginName: 'Rate', alwaysRun: true }, work)({ Records: [{ EventSource: 'aws:sns', Sns: { Message: JSON.stringify(message) } }] }))
      .resolves.toMatchObject({ state: 'Complete', skipped: false, reported: false });
    expect(work).toHaveBeenCalledTimes(1);
    expect(await entry(run, 'Rate')).toEqual(before);
  });

  test('a PluginBusinessError is recorded Error with its message (180 characters at most) and not rethrown', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    const long = `amount ${'9'.repeat(300)} is above the limit`;
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, async () => {
      throw new sdk.PluginBusinessError(long);
    });
    const result = await handler(run.event) as { state: string; message: string };
    expect(result).toMatchObject({ state: 'Error', skipped: false, reported: true });
    expect(result.message).toHaveLength(180);
    const stored = await entry(run, 'Rate');
    expect(stored.state).toBe('Error');
    expect(stored.message).toBe(result.message);
    expect(stored.message?.startsWith('amount 999')).toBe(true);
  });

  test('a crash is rethrown (Lambda retries) and the entry stays In Progress; the retry completes it', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    let attempts = 0;
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, async () => {
      if (++attempts === 1) throw new TypeError('rating service unreachable');
    });
    const error = await rejectionOf(handler(run.event));
    expect(error).toBeInstanceOf(TypeError);
    expect(error.message).toBe('rating service unreachable');
    expect(await entry(run, 'Rate')).toMatchObject({ state: 'In Progress' });
    await expect(handler(run.event)).resolves.toMatchObject({ state: 'Complete', reported: true });
    expect(attempts).toBe(2);
  });

  test('a shortened (truncated) message: the work gets the complete message, read back from the status item', async () => {
    const run = await parallelRun([{ name: 'Rate' }], { amount: 5, note: 'n'.repeat(2000) });
    // A message over SNS's limit is shortened by the orchestrator's own serializer (shown here with a
    // small limit): only the routing fields and a reference to the status item remain.
    const doc = (await h.item(run.uid, WORKFLOW))!;
    const body = serializePluginMessage(buildPluginMessage(asStatusDocument(doc as never), { activity: run.activity, stage: 'async', now: run.message.now }), 400, h.statusTable);
    const shortened = JSON.parse(body);
    expect(shortened).toMatchObject({ truncated: true, activities: {} });
    expect(shortened.note).toBeUndefined();
    let received: Record<string, any> | undefined;
    await sdk.pluginHandler({ pluginName: 'Rate' }, async (message) => { received = message; })({ Records: [{ EventSource: 'aws:sns', Sns: { Message: body } }] });
    expect(received!.truncated).toBeUndefined();
    expect(received!.statusRef).toBeUndefined();
    expect(received!.note).toHaveLength(2000);
    expect(received!.amount).toBe(5);
    expect(received!.activities[run.activity].async.mandatory.Rate.state).toBe('In Progress');
    // The entry was not in the message: one read to find it, then the two writes.
    expect(h.fake.dynamoDbRequests()).toEqual(['GetItem', 'UpdateItem', 'UpdateItem']);
    expect(await entry(run, 'Rate')).toMatchObject({ state: 'Complete' });
  });

  test('a pluginName the run does not know is PluginNotInRun, naming the entries there; nothing runs', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    const work = jest.fn();
    const error = await rejectionOf(sdk.pluginHandler({ pluginName: 'Rating' }, work)(run.event));
    expect(error.name).toBe('PluginNotInRun');
    expect(error.message).toContain(`plugin Rating has no entry in ${run.activity}.async`);
    expect(error.message).toContain('(entries: Rate)');
    expect(work).not.toHaveBeenCalled();
  });

  test('without the status table in its environment: a ConfigurationError saying how to set it', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    delete process.env.CDK_ORCHESTRATOR_STATUS_TABLE;
    try {
      const error = await rejectionOf(sdk.pluginHandler({ pluginName: 'Rate' }, async () => undefined)(run.event));
      expect(error.name).toBe('ConfigurationError');
      expect(error.message).toContain('CDK_ORCHESTRATOR_STATUS_TABLE is not set');
      expect(error.message).toContain('reportsStatus: true');
    } finally {
      process.env.CDK_ORCHESTRATOR_STATUS_TABLE = h.statusTable;
    }
    // The configuration may name the table instead.
    await expect(sdk.pluginHandler({ pluginName: 'Rate', statusTableName: h.statusTable }, async () => undefined)(run.event))
      .resolves.toMatchObject({ state: 'Complete' });
  });
});

describe('the orchestrator\'s own recording agrees with the SDK and never overwrites it', () => {
  test('PARALLEL: plugin-outcome, given the SDK\'s result, changes nothing (Complete and Error)', async () => {
    const ok = await parallelRun([{ name: 'Rate' }]);
    const okResult = await sdk.pluginHandler({ pluginName: 'Rate' }, async () => undefined)(ok.event);
    const okEntry = await entry(ok, 'Rate');
    await expect(outcomeHandler(destinationRecord(ok, 'Success', okResult))).resolves.toMatchObject({ recorded: false, reason: 'the plugin is already Complete' });
    expect(await entry(ok, 'Rate')).toEqual(okEntry);

    const failed = await parallelRun([{ name: 'Rate' }]);
    const failedResult = await sdk.pluginHandler({ pluginName: 'Rate' }, async () => {
      throw new sdk.PluginBusinessError('declined: risk too high');
    })(failed.event);
    const failedEntry = await entry(failed, 'Rate');
    expect(failedEntry).toMatchObject({ state: 'Error', message: 'declined: risk too high' });
    await expect(outcomeHandler(destinationRecord(failed, 'Success', failedResult))).resolves.toMatchObject({ recorded: false, reason: 'the plugin is already Error' });
    expect(await entry(failed, 'Rate')).toEqual(failedEntry);
  });

  test('PARALLEL: a crash that exhausts Lambda\'s retries is recorded Error by plugin-outcome (the SDK left In Progress)', async () => {
    const run = await parallelRun([{ name: 'Rate' }]);
    await rejectionOf(sdk.pluginHandler({ pluginName: 'Rate' }, async () => { throw new Error('backend down'); })(run.event));
    expect(await entry(run, 'Rate')).toMatchObject({ state: 'In Progress' });
    await expect(outcomeHandler(destinationRecord(run, 'RetriesExhausted', { errorType: 'Error', errorMessage: 'backend down' }, 3)))
      .resolves.toMatchObject({ recorded: true, state: 'Error' });
    expect(await entry(run, 'Rate')).toMatchObject({ state: 'Error', message: 'Error: backend down (after 3 attempts)' });
  });

  test('PRE: sequential-stage invokes the SDK plugin synchronously; Complete, and a business error fails the stage with the SDK\'s message', async () => {
    const activity = `SdkPre${++counter}`;
    await h.registerPlugin({ activity, stage: 'pre', name: 'Check' });
    const uid = `pre-${counter}`;
    await h.handlers.startRun({ input: { uid, metadata: { amount: -1 } }, workflow: WORKFLOW, activities: [activity] });
    let calls = 0;
    h.fake.onInvoke('Check', sdk.pluginHandler<{ amount: number }>({ pluginName: 'Check' }, async (message) => {
      calls++;
      if (message.amount < 0) throw new sdk.PluginBusinessError(`amount must not be negative, got ${message.amount}`);
    }));
    const error = await rejectionOf(h.handlers.sequentialStage({ uid, workflow: WORKFLOW, activity, stage: 'pre', topicArn: h.topicArn(`${activity}-pre`), maxAttempts: 3 }));
    expect(error.name).toBe('PluginFailed');
    expect(calls).toBe(1); // a business error is not retried
    const item = (await h.item(uid, WORKFLOW))!;
    expect(item.activities[activity].pre.mandatory.Check).toMatchObject({ state: 'Error', message: 'amount must not be negative, got -1' });
    expect(item.activities[activity].pre.status.state).toBe('Error');

    const activity2 = `SdkPre${++counter}`;
    await h.registerPlugin({ activity: activity2, stage: 'pre', name: 'Check' });
    await h.handlers.startRun({ input: { uid, metadata: { amount: 10 } }, workflow: 'Quotes2', activities: [activity2] });
    await expect(h.handlers.sequentialStage({ uid, workflow: 'Quotes2', activity: activity2, stage: 'pre', topicArn: h.topicArn(`${activity2}-pre`), maxAttempts: 3 }))
      .resolves.toMatchObject({ state: 'Complete' });
    const done = (await h.item(uid, 'Quotes2'))!;
    expect(done.activities[activity2].pre.mandatory.Check.state).toBe('Complete');
  });
});

describe('SQS batches (queue bridge)', () => {
  // A failed record is logged (console.error); keep the test output readable.
  beforeEach(() => jest.spyOn(console, 'error').mockImplementation(() => undefined));
  afterEach(() => jest.restoreAllMocks());
  const sqsRecord = (messageId: string, body: string, queue = 'arn:aws:sqs:us-east-1:123456789012:plugin-queue') =>
    ({ messageId, body, eventSource: 'aws:sqs', eventSourceARN: queue, receiptHandle: 'r', attributes: {}, messageAttributes: {}, md5OfBody: '', awsRegion: 'us-east-1' });

  test('each record is one run; only the record whose work crashed is returned for redelivery', async () => {
    const runs = [await parallelRun([{ name: 'Rate' }]), await parallelRun([{ name: 'Rate' }]), await parallelRun([{ name: 'Rate' }])];
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, async (message) => {
      if (message.uid === runs[1].uid) throw new Error('throttled');
      if (message.uid === runs[2].uid) throw new sdk.PluginBusinessError('declined');
    });
    const result = await handler({ Records: runs.map((run, i) => sqsRecord(`m${i}`, run.event.Records[0].Sns.Message)) });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }] });
    expect(await entry(runs[0], 'Rate')).toMatchObject({ state: 'Complete' });
    // The crash's text is on the entry: the queue bridge keeps it when the message reaches the dead-letter queue.
    expect(await entry(runs[1], 'Rate')).toMatchObject({ state: 'In Progress', message: 'Error: throttled' });
    // A business error is an outcome, not a failed message: it is not delivered again.
    expect(await entry(runs[2], 'Rate')).toMatchObject({ state: 'Error', message: 'declined' });
  });

  test('FIFO: the records after a failed one are returned too, so the group keeps its order; an SNS-wrapped body is read', async () => {
    const runs = [await parallelRun([{ name: 'Rate' }]), await parallelRun([{ name: 'Rate' }]), await parallelRun([{ name: 'Rate' }])];
    const worked: string[] = [];
    const handler = sdk.pluginHandler({ pluginName: 'Rate' }, async (message) => {
      if (message.uid === runs[1].uid) throw new Error('throttled');
      worked.push(message.uid);
    });
    const fifo = 'arn:aws:sqs:us-east-1:123456789012:plugin-queue.fifo';
    const wrapped = JSON.stringify({ Type: 'Notification', Message: runs[0].event.Records[0].Sns.Message });
    const result = await handler({
      Records: [sqsRecord('m0', wrapped, fifo), sqsRecord('m1', runs[1].event.Records[0].Sns.Message, fifo), sqsRecord('m2', runs[2].event.Records[0].Sns.Message, fifo)],
    });
    expect(result).toEqual({ batchItemFailures: [{ itemIdentifier: 'm1' }, { itemIdentifier: 'm2' }] });
    expect(worked).toEqual([runs[0].uid]);
    expect(await entry(runs[2], 'Rate')).toMatchObject({ state: 'Not Started' });
  });
});
