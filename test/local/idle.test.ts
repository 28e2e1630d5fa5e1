/**
 * `engine.idle()`: what it waits for (work in flight, queue messages a poller takes next, stream
 * records of writes by any client) and what it does not (messages a queue holds back).
 */
import { DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack, outsideCallerConfig, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

// Logs each message body it is given; fails a message's first delivery when its body starts with "fail".
const CONSUMER = `
exports.handler = async (event) => {
  for (const r of event.Records) {
    console.log('got ' + r.body);
    if (r.body.startsWith('fail') && r.attributes.ApproximateReceiveCount === '1') throw new Error('first delivery of ' + r.body);
  }
};`;
const STREAM_CONSUMER = `
exports.handler = async (event) => { for (const r of event.Records) console.log('record ' + r.dynamodb.Keys.pk.S); };`;

/** A failed message is delivered again after this long (on AWS: after its visibility timeout). */
const RETRY_DELAY_MS = 3000;

let engine: LocalEngine;
/** An engine with a table stream, read only when woken (its poll interval is a minute). */
let streamEngine: LocalEngine;
let client: SQSClient;

beforeAll(async () => {
  // Queues only: no stream reader adds its own wait to idle(), which is then shorter than a poll interval.
  const stack = newStack('IdleTest');
  const standard = new sqs.Queue(stack, 'Standard');
  const fifo = new sqs.Queue(stack, 'Ordered', { fifo: true, contentBasedDeduplication: true });
  for (const [id, queue] of [['Standard', standard], ['Ordered', fifo]] as const) {
    inlineFunction(stack, `${id}Consumer`, CONSUMER).addEventSource(new SqsEventSource(queue, { batchSize: 1 }));
  }
  const streams = newStack('IdleStreams');
  const table = new dynamodb.Table(streams, 'Items', {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    stream: dynamodb.StreamViewType.NEW_IMAGE,
  });
  inlineFunction(streams, 'StreamConsumer', STREAM_CONSUMER)
    .addEventSource(new DynamoEventSource(table, { startingPosition: lambda.StartingPosition.TRIM_HORIZON, batchSize: 1 }));
  [engine, streamEngine] = await Promise.all([
    startTestEngine(stack, { queueRetryDelayMs: RETRY_DELAY_MS }),
    startTestEngine(streams, { streamPollIntervalMs: 60_000 }),
  ]);
  client = new SQSClient(outsideCallerConfig(engine));
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await Promise.all([engine?.stop(), streamEngine?.stop()]);
});

const got = (fn: string) => engine.logs(`IdleTest/${fn}`).filter((line) => line.includes('got ')).map((line) => line.slice(line.indexOf('got ') + 4));
const queueUrl = (id: string) => engine.assembly.queues.find((q) => q.path?.includes(`/${id}`))!.url;
const send = (id: string, body: string, groupId?: string) =>
  client.send(new SendMessageCommand({ QueueUrl: queueUrl(id), MessageBody: body, MessageGroupId: groupId }));

test('idle() waits for a message that an event source mapping takes next, and for its function', async () => {
  // Each message lands between two polls of the queue at some point of the poll interval: several
  // rounds, so that an idle() that missed messages not yet taken would be caught.
  for (let i = 0; i < 8; i++) {
    await send('Standard', `m${i}`);
    await engine.idle();
    expect(got('StandardConsumer')).toContain(`m${i}`);
  }
});

test('idle() does not wait for messages a queue holds back: a failed one until its retry, and the rest of its FIFO group', async () => {
  await send('Ordered', 'fail-first', 'g1');
  await send('Ordered', 'second', 'g1');
  await send('Ordered', 'other-group', 'g2');
  const started = Date.now();
  await engine.idle();
  // Within the retry delay: the failed message is held back, and its group's next message waits for it.
  expect(Date.now() - started).toBeLessThan(RETRY_DELAY_MS);
  expect(got('OrderedConsumer').filter((body) => body !== 'other-group')).toEqual(['fail-first']);
  expect(got('OrderedConsumer')).toContain('other-group');
  // Once the retry delay has passed, the group goes on, in order.
  await eventually(() => got('OrderedConsumer').includes('second'), 20_000, 'the group to go on');
  expect(got('OrderedConsumer').filter((body) => body !== 'other-group')).toEqual(['fail-first', 'fail-first', 'second']);
}, 30_000);

test('idle() reads the streams: records of a write by another client (which wakes no reader) are delivered', async () => {
  // Straight to DynamoDB Local, not through the engine: no write wakes the stream reader.
  const ddb = new DynamoDBClient({ endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  try {
    const table = streamEngine.assembly.tables.find((t) => t.path?.includes('/Items'))!.name;
    await ddb.send(new PutItemCommand({ TableName: table, Item: { pk: { S: 'from-outside' } } }));
    await streamEngine.idle();
    expect(streamEngine.logs('IdleStreams/StreamConsumer').some((line) => line.includes('record from-outside'))).toBe(true);
  } finally {
    ddb.destroy();
  }
});
