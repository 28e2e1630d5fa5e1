/**
 * queue-bridge, the bundled handler, against DynamoDB Local: runs started for real (start-run and
 * parallel-stage, bundled), the SNS event the bridge receives built from what parallel-stage
 * published (through ScriptedAws), registry items with the layout `addPlugin(fn, { queue: true })`
 * writes. SQS is the local engine's in-memory SqsService (local/src/engine/sqs.ts) behind its AWS
 * endpoint, so the bridge's SQS client speaks the real JSON protocol to it.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { snsEnvelope } from '../../lambda/shared/status';
import type { LocalQueue } from '../../local/src/engine/assembly';
import { AwsEndpoint, AwsError } from '../../local/src/engine/aws-endpoint';
import { SqsService } from '../../local/src/engine/sqs';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Claims';
const ACCOUNT = '123456789012';

interface EnqueueResult { enqueued: boolean; plugin?: string; reason?: string; messageId?: string }
type BridgeHandler = (event: unknown) => Promise<{ results?: EnqueueResult[]; batchItemFailures?: { itemIdentifier: string }[] }>;

let h: Harness;
let bridge: BridgeHandler;
let endpoint: AwsEndpoint;
let sqs: SqsService;
const queues: Record<string, LocalQueue> = {};

function queueNamed(name: string): LocalQueue {
  return { name, arn: `arn:aws:sqs:us-east-1:${ACCOUNT}:${name}`, url: '', fifo: name.endsWith('.fifo'), visibilityTimeoutSeconds: 30 };
}

beforeAll(async () => {
  h = await Harness.create('bridge');
  // The engine's SQS, reachable over HTTP; queue URLs point at it (the SQS client sends to the queue URL's host).
  const defs = ['plain', 'plain-dlq', 'ordered.fifo', 'ordered-dlq.fifo'].map(queueNamed);
  const unsupported = async () => { throw new AwsError('UnsupportedOperation', 'not used by this test'); };
  endpoint = new AwsEndpoint({
    json: { AmazonSQS: (operation, body) => sqs.handleApi(operation, body) },
    sns: unsupported,
    lambda: unsupported,
    dynamodbUrl: () => process.env.AWS_ENDPOINT_URL_DYNAMODB!,
  });
  await endpoint.start();
  for (const def of defs) queues[def.name] = { ...def, url: `${endpoint.url}/${ACCOUNT}/${def.name}` };
  sqs = new SqsService({
    queues: Object.values(queues),
    mappings: [],
    invoke: async () => { throw new Error('no event source mappings here'); },
    track: (work) => work,
    region: 'us-east-1',
  });
  process.env.AWS_ENDPOINT_URL_SQS = endpoint.url;
  bridge = jest.requireActual<{ handler: BridgeHandler }>(join(__dirname, '..', '..', 'assets', 'handlers', 'queue-bridge', 'index.js')).handler;
});
afterAll(async () => {
  await endpoint?.stop();
  await h.close();
});
beforeEach(async () => {
  await h.stream.read();
  h.fake.clearCalls();
  for (const q of Object.values(queues)) await sqs.handleApi('PurgeQueue', { QueueUrl: q.url });
});

let counter = 0;

interface QueuePlugin { readonly name: string; readonly mandatory?: boolean; readonly fifoKey?: string }

/** The registry item `addPlugin(fn, { queue: true })` writes: keyed by the bridge's subscription. */
async function register(activity: string, plugin: QueuePlugin): Promise<{ subscriptionArn: string; queue: LocalQueue; dlq: LocalQueue }> {
  const subscriptionArn = `${h.topicArn(`${activity}-parallel`)}:${randomUUID()}`;
  const [queue, dlq] = plugin.fifoKey ? [queues['ordered.fifo'], queues['ordered-dlq.fifo']] : [queues.plain, queues['plain-dlq']];
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
      queueUrl: queue.url,
      deadLetterQueueArn: dlq.arn,
      maxReceiveCount: 3,
      ...(plugin.fifoKey ? { fifoKey: plugin.fifoKey } : {}),
    },
  }));
  return { subscriptionArn, queue, dlq };
}

/** A run whose parallel stage published its message; the SNS event the bridge receives for it. */
async function parallelRun(plugin: QueuePlugin, metadata: Record<string, unknown> = { customer: 'acme', tier: 3 }) {
  const uid = `claim-${++counter}-${Date.now()}`;
  const activity = `Bridge${counter}`;
  const registered = await register(activity, plugin);
  await h.handlers.startRun({ input: { uid, metadata }, workflow: WORKFLOW, activities: [activity] });
  await h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity, stage: 'async', topicArn: h.topicArn(`${activity}-parallel`), token: `token-${uid}` });
  const published = h.fake.published().find((m) => m.topicArn === h.topicArn(`${activity}-parallel`))!;
  const event = snsEnvelope({
    body: published.message,
    topicArn: published.topicArn,
    subscriptionArn: registered.subscriptionArn,
    attributes: published.attributes as never,
    messageId: randomUUID(),
    now: new Date().toISOString(),
  });
  h.fake.clearCalls();
  return { uid, activity, event, published, ...registered };
}

const entryOf = async (uid: string, activity: string, plugin: string, kind = 'mandatory') =>
  (await h.item(uid, WORKFLOW))!.activities[activity].async[kind as 'mandatory'][plugin] as unknown as Record<string, unknown>;

describe('enqueue (an SNS delivery)', () => {
  test('marks the plugin In Progress and sends the plugin message with its attributes: one GetItem, one UpdateItem, one SendMessage', async () => {
    const run = await parallelRun({ name: 'Slow' });
    const answer = await bridge(run.event);
    expect(answer.results).toEqual([{ enqueued: true, plugin: 'Slow', messageId: expect.any(String) }]);
    const entry = await entryOf(run.uid, run.activity, 'Slow');
    // Only the protocol's entry fields: no message, no mark of the bridge's own.
    expect(entry).toEqual({ state: 'In Progress', updatedAt: expect.any(String) });
    const [message] = sqs.messages(run.queue.arn);
    expect(message.body).toBe(run.published.message);
    expect(message.attributes).toEqual({
      customer: { DataType: 'String', StringValue: 'acme' },
      tier: { DataType: 'Number', StringValue: '3' },
      workflow: { DataType: 'String', StringValue: WORKFLOW },
    });
    expect(h.fake.dynamoDbRequests()).toEqual(['GetItem', 'UpdateItem']);
  });

  test('a duplicate delivery of the same message is not queued again (standard queue: the entry was written after the message was sent)', async () => {
    const run = await parallelRun({ name: 'Slow' });
    await bridge(run.event);
    // SNS delivers again: same body (same `now`), a new SNS message id.
    const again = { Records: [{ ...(run.event as any).Records[0], Sns: { ...(run.event as any).Records[0].Sns, MessageId: randomUUID() } }] };
    expect((await bridge(again)).results).toEqual([{ enqueued: false, plugin: 'Slow', reason: 'already queued (a duplicate delivery of this message)' }]);
    expect(sqs.messages(run.queue.arn)).toHaveLength(1);
  });

  test('a plugin already Complete (a late delivery) is not queued; nor one the run has no entry for', async () => {
    const run = await parallelRun({ name: 'Slow' });
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Slow', state: 'Complete' });
    expect((await bridge(run.event)).results).toEqual([{ enqueued: false, plugin: 'Slow', reason: 'the plugin is already Complete' }]);
    expect(await entryOf(run.uid, run.activity, 'Slow')).toEqual(expect.objectContaining({ state: 'Complete' }));

    const late = await parallelRun({ name: 'Other' });
    // A second queue plugin registered after the stage started: no entry, nothing queued.
    const { subscriptionArn } = await register(late.activity, { name: 'Later' });
    const event = { Records: [{ ...(late.event as any).Records[0], EventSubscriptionArn: subscriptionArn }] };
    expect((await bridge(event)).results).toEqual([{ enqueued: false, plugin: 'Later', reason: 'the run has no entry for this plugin' }]);
    expect(sqs.messages(late.queue.arn)).toHaveLength(0);
  });

  test('a message from before the stage was started again (a re-run) is not queued', async () => {
    const run = await parallelRun({ name: 'Slow' });
    await h.patch(run.uid, WORKFLOW, ['activities', run.activity, 'async', 'status', 'startTime'], '2999-01-01T00:00:00.000Z');
    expect((await bridge(run.event)).results).toEqual([{ enqueued: false, plugin: 'Slow', reason: 'the stage was started again after this message was sent' }]);
  });

  test('a subscription that is not a queue plugin\'s is ignored', async () => {
    const run = await parallelRun({ name: 'Slow' });
    const event = { Records: [{ ...(run.event as any).Records[0], EventSubscriptionArn: `${run.subscriptionArn}-unknown` }] };
    expect((await bridge(event)).results).toEqual([{ enqueued: false, reason: expect.stringContaining('no queue plugin of') }]);
  });

  test('FIFO: the group is the fifoKey metadata field (else the uid)', async () => {
    const run = await parallelRun({ name: 'Ordered', fifoKey: 'customer' });
    await bridge(run.event);
    const api = (await sqs.handleApi('ReceiveMessage', { QueueUrl: run.queue.url, MaxNumberOfMessages: 10 })) as { Messages: any[] };
    expect(api.Messages.map((m) => m.Attributes.MessageGroupId)).toEqual(['acme']);

    const noKey = await parallelRun({ name: 'Ordered', fifoKey: 'customer' }, { region: 'EU' });
    await bridge(noKey.event);
    const spaced = await parallelRun({ name: 'Ordered', fifoKey: 'customer' }, { customer: 'ACME Corp. (EU)' });
    await bridge(spaced.event);
    const groups = sqs.messages(run.queue.arn).map((m) => JSON.parse(m.body).uid);
    expect(groups).toEqual([run.uid, noKey.uid, spaced.uid]);
    const received = (await sqs.handleApi('ReceiveMessage', { QueueUrl: run.queue.url, MaxNumberOfMessages: 10, VisibilityTimeout: 0 })) as { Messages: any[] };
    const groupOf = Object.fromEntries(received.Messages.map((m) => [JSON.parse(m.Body).uid, m.Attributes.MessageGroupId]));
    expect(groupOf[noKey.uid]).toBe(noKey.uid);
    // A value SQS would refuse as a group id (spaces) is grouped by its hash.
    expect(groupOf[spaced.uid]).toMatch(/^[0-9a-f]{64}$/);
  });

  test('FIFO deduplication (the local SQS, as SQS): a repeated deduplication id within 5 minutes is not delivered again', async () => {
    const q = queues['ordered.fifo'];
    const send = () => sqs.handleApi('SendMessage', { QueueUrl: q.url, MessageBody: 'x', MessageGroupId: 'g', MessageDeduplicationId: 'same' });
    await send();
    await send();
    expect(sqs.messages(q.arn)).toHaveLength(1);
  });

  test('a failed send takes the mark back and fails the invocation, so Lambda\'s retry queues the message', async () => {
    const run = await parallelRun({ name: 'Slow' });
    const item = (queueUrl: string) => ({
      orchestratorId: `${run.activity}|async`,
      subscriptionArn: run.subscriptionArn,
      functionName: 'fn-Slow',
      pluginName: 'Slow',
      mandatory: true,
      order: 90,
      source: 'cdk',
      queueUrl,
      deadLetterQueueArn: run.dlq.arn,
    });
    await h.db.send(new PutCommand({ TableName: h.pluginTable, Item: item(`${endpoint.url}/${ACCOUNT}/no-such-queue`) }));
    const error = await rejectionOf(bridge(run.event));
    expect(error.name).toBe('QueueDoesNotExist');
    const entry = await entryOf(run.uid, run.activity, 'Slow');
    // The entry is as it was before the delivery.
    expect(entry).toEqual({ state: 'Not Started', updatedAt: expect.any(String) });
    // The queue is reachable again: Lambda's retry of the same delivery is queued.
    await h.db.send(new PutCommand({ TableName: h.pluginTable, Item: item(run.queue.url) }));
    expect((await bridge(run.event)).results).toEqual([expect.objectContaining({ enqueued: true })]);
  });
});

describe('dead letters (an SQS event from a queue plugin\'s dead-letter queue)', () => {
  const deadLetter = (run: { dlq: LocalQueue; published: { message: string } }, messageId = randomUUID()) => ({
    Records: [{ messageId, receiptHandle: 'r', body: run.published.message, attributes: {}, messageAttributes: {}, eventSource: 'aws:sqs', eventSourceARN: run.dlq.arn }],
  });

  test('records the plugin Error (mandatory: the stage fails), once; a second copy changes nothing', async () => {
    const run = await parallelRun({ name: 'Crashy' });
    await bridge(run.event);
    expect(await bridge(deadLetter(run))).toEqual({ batchItemFailures: [] });
    const entry = await entryOf(run.uid, run.activity, 'Crashy');
    expect(entry).toEqual(expect.objectContaining({
      state: 'Error', message: 'The plugin failed on its queued message 3 times; the message went to the dead-letter queue',
    }));
    expect(h.fake.dynamoDbRequests()).toEqual(['GetItem', 'UpdateItem', 'Query', 'UpdateItem']);
    expect(await bridge(deadLetter(run))).toEqual({ batchItemFailures: [] });
    expect((await entryOf(run.uid, run.activity, 'Crashy')).state).toBe('Error');
  });

  test('the message the plugin last wrote on its entry (its error) is kept in the Error', async () => {
    const run = await parallelRun({ name: 'Crashy' });
    await bridge(run.event);
    // What the plugin SDK writes when a queued message fails (and a zero-SDK plugin may write).
    await h.report({ uid: run.uid, workflow: WORKFLOW, activity: run.activity, stage: 'async', plugin: 'Crashy', state: 'In Progress', message: 'TypeError: rate is undefined' });
    await bridge(deadLetter(run));
    expect(await entryOf(run.uid, run.activity, 'Crashy')).toEqual({ state: 'Error', message: 'TypeError: rate is undefined', updatedAt: expect.any(String) });
  });

  test('an optional plugin is recorded Error in its optional entry', async () => {
    const run = await parallelRun({ name: 'Nice', mandatory: false });
    await bridge(run.event);
    await bridge(deadLetter(run));
    expect((await entryOf(run.uid, run.activity, 'Nice', 'optional')).state).toBe('Error');
  });

  test('a dead letter of an earlier run of the uid does not touch the re-run', async () => {
    const run = await parallelRun({ name: 'Crashy' });
    await h.patch(run.uid, WORKFLOW, ['activities', run.activity, 'async', 'status', 'startTime'], '2999-01-01T00:00:00.000Z');
    await bridge(deadLetter(run));
    expect((await entryOf(run.uid, run.activity, 'Crashy')).state).toBe('Not Started');
  });

  test('a dead letter that is not a plugin message, or of no registered queue, is ignored (deleted), not retried', async () => {
    const run = await parallelRun({ name: 'Crashy' });
    expect(await bridge({ Records: [{ ...deadLetter(run).Records[0], body: 'not json' }] })).toEqual({ batchItemFailures: [] });
    expect(await bridge({ Records: [{ ...deadLetter(run).Records[0], eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:other' }] })).toEqual({ batchItemFailures: [] });
    expect((await entryOf(run.uid, run.activity, 'Crashy')).state).toBe('Not Started');
  });
});

test('an event that is neither SNS nor SQS: InvalidBridgeEvent, nothing read or written', async () => {
  for (const event of [{}, { Records: [] }, { Records: [{ eventSource: 'aws:dynamodb' }] }, 'initialize']) {
    const error = await rejectionOf(bridge(event));
    expect(error.name).toBe('InvalidBridgeEvent');
    expect(error.message).toContain('expected an SNS event');
  }
  expect(h.fake.dynamoDbRequests()).toEqual([]);
});
