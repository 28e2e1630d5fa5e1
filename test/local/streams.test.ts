/**
 * DynamoDB stream delivery on the local engine, driven by DynamoDB Local's Streams API: every
 * change once and in order per item, filter criteria, batch size, whole-batch retries with
 * bisection, and the failure destination when retries run out.
 */
import { randomUUID } from 'node:crypto';
import {
  BatchWriteItemCommand, CreateTableCommand, DeleteTableCommand, DynamoDBClient, PutItemCommand, TransactWriteItemsCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';
import { tablesWrittenBy } from '../../local/src/engine/aws-endpoint';
import { DynamoDbJsonClient } from '../../local/src/engine/dynamodb-json-client';
import * as lambdaService from '../../local/src/engine/lambda-service';
import { busyWaitMs, StreamReader } from '../../local/src/engine/streams';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

// Reports every batch it receives to a queue; fails batches containing a "poison" item.
const CONSUMER = `
const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');
const sqs = new SQSClient({});
exports.handler = async (event) => {
  const items = event.Records.map((r) => ({ pk: r.dynamodb.Keys.pk.S, n: Number((r.dynamodb.NewImage || {}).n?.N ?? -1), name: r.eventName, source: r.eventSourceARN }));
  await sqs.send(new SendMessageCommand({ QueueUrl: process.env.OUT, MessageBody: JSON.stringify(items) }));
  if (items.some((i) => i.pk === 'poison')) throw new Error('poison in batch of ' + items.length);
};`;

let engine: LocalEngine;
let ddb: DynamoDBClient;
let tableName: string;

beforeAll(async () => {
  const stack = newStack('StreamTest');
  const table = new dynamodb.Table(stack, 'Table', {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
  });
  const all = new sqs.Queue(stack, 'AllBatches');
  const filtered = new sqs.Queue(stack, 'FilteredBatches');
  const failures = new sqs.Queue(stack, 'Failures');
  const everything = inlineFunction(stack, 'Everything', CONSUMER, { environment: { OUT: all.queueUrl }, timeout: Duration.seconds(5) });
  everything.addEventSource(new DynamoEventSource(table, {
    startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    batchSize: 5,
    retryAttempts: 2,
    bisectBatchOnError: true,
    onFailure: new SqsDlq(failures),
  }));
  const onlyFlagged = inlineFunction(stack, 'OnlyFlagged', CONSUMER, { environment: { OUT: filtered.queueUrl } });
  onlyFlagged.addEventSource(new DynamoEventSource(table, {
    startingPosition: lambda.StartingPosition.TRIM_HORIZON,
    filters: [lambda.FilterCriteria.filter({ dynamodb: { NewImage: { flag: { S: lambda.FilterRule.isEqual('yes') } } } })],
  }));
  // Each consumer reports its batches through its own queue: it needs the right to send, as on AWS.
  all.grantSendMessages(everything);
  filtered.grantSendMessages(onlyFlagged);
  engine = new LocalEngine({ app: stack });
  await engine.start();
  tableName = engine.assembly.tables[0].name;
  ddb = new DynamoDBClient({ endpoint: engine.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
}, 60_000);

afterAll(async () => {
  ddb?.destroy();
  await engine?.stop();
});

type Seen = { pk: string; n: number; name: string; source: string };
const batches = (queue: string) => engine.queueMessages(queue).map((m) => JSON.parse(m.body) as Seen[]);

test('every change reaches each consumer once, in order per item, in batches of at most BatchSize', async () => {
  const writes: Promise<unknown>[] = [];
  for (const pk of ['a', 'b', 'c']) {
    writes.push((async () => {
      await ddb.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: pk }, n: { N: '0' } } }));
      for (let n = 1; n <= 9; n++) {
        const flag = pk === 'b' && n % 3 === 0 ? 'yes' : 'no';
        await ddb.send(new UpdateItemCommand({
          TableName: tableName,
          Key: { pk: { S: pk } },
          UpdateExpression: 'SET n = :n, flag = :f',
          ExpressionAttributeValues: { ':n': { N: String(n) }, ':f': { S: flag } },
        }));
      }
    })());
  }
  await Promise.all(writes);
  await engine.idle();
  const seen = batches('StreamTest/AllBatches');
  expect(seen.every((b) => b.length <= 5)).toBe(true);
  const records = seen.flat();
  expect(records).toHaveLength(30);
  for (const pk of ['a', 'b', 'c']) {
    expect(records.filter((r) => r.pk === pk).map((r) => r.n)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  }
  expect(records.filter((r) => r.name === 'INSERT')).toHaveLength(3);
  expect(records[0].source).toBe(engine.assembly.tables[0].streamArn);

  // Filter criteria: only b's changes with flag = yes (n = 3, 6, 9).
  expect(batches('StreamTest/FilteredBatches').flat().map((r) => `${r.pk}${r.n}`)).toEqual(['b3', 'b6', 'b9']);
  const counters = engine.counters();
  expect(counters.dynamodb.writes).toBe(30);
  expect(Object.values(counters.streams).map((s) => s.filteredOut).sort((x, y) => x - y)).toEqual([0, 27]);
});

test('a failing batch is retried whole, bisected, and the poison record goes to the failure destination', async () => {
  const before = batches('StreamTest/AllBatches').length;
  for (const pk of ['p1', 'poison', 'p2']) {
    await ddb.send(new PutItemCommand({ TableName: tableName, Item: { pk: { S: pk }, n: { N: '1' } } }));
  }
  await eventually(() => engine.queueMessages('StreamTest/Failures').length === 1, 20_000, 'failure destination');
  await engine.idle();
  const failure = JSON.parse(engine.queueMessages('StreamTest/Failures')[0].body);
  expect(failure).toMatchObject({ requestContext: { condition: 'RetryAttemptsExhausted' }, DDBStreamBatchInfo: { batchSize: 1 } });
  const later = batches('StreamTest/AllBatches').slice(before).flat().map((r) => r.pk);
  // p1 and p2 were delivered and acknowledged in some batch; the poison record alone was given up.
  expect(later).toContain('p1');
  expect(later).toContain('p2');
  expect(later.filter((pk) => pk === 'poison').length).toBeGreaterThanOrEqual(3);
});

/**
 * The engine reads a stream when a write through its endpoint may have added records to it: only the
 * written table's. Polling on the interval is pushed out of the way (a minute), so every read seen
 * here was woken by a write.
 */
describe('stream reads follow the writes', () => {
  let woken: LocalEngine;
  let client: DynamoDBClient;
  let orders: string;
  let audit: string;

  beforeAll(async () => {
    const stack = newStack('StreamWakes');
    for (const id of ['Orders', 'Audit']) {
      new dynamodb.Table(stack, id, {
        partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        stream: dynamodb.StreamViewType.NEW_IMAGE,
      });
    }
    woken = new LocalEngine({ app: stack, streamPollIntervalMs: 60_000 });
    await woken.start();
    [orders, audit] = ['Orders', 'Audit'].map((id) => woken.assembly.tables.find((t) => t.path?.includes(`/${id}`))!.name);
    client = new DynamoDBClient({ endpoint: woken.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
    await woken.idle();
  }, 60_000);

  afterAll(async () => {
    client?.destroy();
    await woken?.stop();
  });

  const reads = () => woken.counters().streamReads;
  /** After the write, until the woken readers have read its records. */
  async function afterWrite(write: () => Promise<unknown>, expectedRecords: Record<string, number>) {
    const before = reads();
    await write();
    await eventually(() => Object.entries(expectedRecords).every(([table, n]) => reads()[table].records - before[table].records === n), 5_000, 'records read');
    // The reads of the written tables are done; a wrongly woken reader would have read by now too (3 ms later).
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = reads();
    return Object.fromEntries([orders, audit].map((table) => [table, after[table].getRecords - before[table].getRecords]));
  }

  test('a write wakes the stream of the table it wrote, and no other', async () => {
    const put = await afterWrite(() => client.send(new PutItemCommand({ TableName: orders, Item: { pk: { S: 'o1' } } })), { [orders]: 1 });
    expect(put[orders]).toBeGreaterThanOrEqual(1);
    expect(put[audit]).toBe(0);

    const batch = await afterWrite(() => client.send(new BatchWriteItemCommand({
      RequestItems: { [audit]: [{ PutRequest: { Item: { pk: { S: 'a1' } } } }, { PutRequest: { Item: { pk: { S: 'a2' } } } }] },
    })), { [audit]: 2 });
    expect(batch[audit]).toBeGreaterThanOrEqual(1);
    expect(batch[orders]).toBe(0);

    const transaction = await afterWrite(() => client.send(new TransactWriteItemsCommand({
      TransactItems: [{ Put: { TableName: orders, Item: { pk: { S: 'o2' } } } }, { Put: { TableName: audit, Item: { pk: { S: 'a3' } } } }],
    })), { [orders]: 1, [audit]: 1 });
    expect(transaction[orders]).toBeGreaterThanOrEqual(1);
    expect(transaction[audit]).toBeGreaterThanOrEqual(1);
  });

  test('the tables of a write: by name or ARN; a request that names none wakes every stream', () => {
    expect(tablesWrittenBy('UpdateItem', { TableName: 'arn:aws:dynamodb:us-east-1:123456789012:table/Orders' })).toEqual(['Orders']);
    expect(tablesWrittenBy('TransactWriteItems', { TransactItems: [{ ConditionCheck: { TableName: 'A' } }, { Delete: { TableName: 'B' } }] })).toEqual(['A', 'B']);
    expect(tablesWrittenBy('PutItem', {})).toBeUndefined();
    expect(tablesWrittenBy('TransactWriteItems', { TransactItems: [{ Put: {} }] })).toBeUndefined();
    expect(tablesWrittenBy('BatchWriteItem', { RequestItems: {} })).toBeUndefined();
  });
});

/** A reader on a table's real stream in DynamoDB Local, driven without an engine; `observe` sees each call's answer. */
type Observer = (operation: string, answer: any, reader: StreamReader, put: (pk: string) => Promise<unknown>) => Promise<void>;
async function readerOnNewTable(observe: Observer) {
  const endpoint = process.env[DYNAMODB_LOCAL_ENDPOINT]!;
  const client = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  const table = `stream-reader-${randomUUID()}`;
  const created = await client.send(new CreateTableCommand({
    TableName: table,
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
    BillingMode: 'PAY_PER_REQUEST',
    StreamSpecification: { StreamEnabled: true, StreamViewType: 'KEYS_ONLY' },
  }));
  const put = (pk: string) => client.send(new PutItemCommand({ TableName: table, Item: { pk: { S: pk } } }));
  const streams = new DynamoDbJsonClient(endpoint, 'us-east-1', 'local');
  const observed = {
    call: async (operation: 'DescribeStream' | 'GetShardIterator' | 'GetRecords', input: Record<string, unknown>) => {
      const answer = await streams.call(operation, input);
      await observe(operation, answer, reader, put);
      return answer;
    },
  } as unknown as DynamoDbJsonClient;
  const reader: StreamReader = new StreamReader({
    client: observed,
    localStreamArn: created.TableDescription!.LatestStreamArn!,
    eventSourceArn: `arn:aws:dynamodb:us-east-1:123456789012:table/${table}/stream/local`,
    region: 'us-east-1',
    consumers: [],
    // Only a wake polls: a pause that is not cut short lasts a minute.
    pollIntervalMs: 60_000,
    onError: (e) => { throw e; },
  });
  const cleanUp = async () => {
    await reader.stop();
    streams.destroy();
    await client.send(new DeleteTableCommand({ TableName: table }));
    client.destroy();
  };
  return { reader, put, cleanUp };
}

/**
 * A reader kept busy: every poll finds records, and a write wakes the reader while it polls (the
 * observer writes an item after each GetRecords answer, as a busy engine's handlers do).
 */
test('writes that keep coming are read together: while polls find records and writes wake the reader, the wait between polls doubles from 3 ms to 24 ms', async () => {
  expect([0, 1, 2, 3, 4, 5, 9].map(busyWaitMs)).toEqual([3, 3, 6, 12, 24, 24, 24]);
  const sleeps = jest.spyOn(lambdaService, 'sleep');
  let busyPollsLeft = 6;
  let recordsRead = 0;
  const { reader, put, cleanUp } = await readerOnNewTable(async (operation, answer, polling, write) => {
    if (operation !== 'GetRecords') return;
    recordsRead += answer.Records.length;
    // A write lands during this poll and wakes the reader, as the engine's endpoint does.
    if (busyPollsLeft-- > 0) {
      await write(`during-poll-${busyPollsLeft}`);
      polling.wake();
    }
  });
  try {
    await put('first');
    reader.start();
    reader.wake();
    await eventually(() => reader.caughtUp && busyPollsLeft < 0, 10_000, 'the writes read');
    // Polls 1-6 found records and were woken: the reader asked to wait 3, 6, 12, 24, 24, 24 ms after them.
    // (Nothing else in this file sleeps meanwhile: its engines are idle.)
    expect(sleeps.mock.calls.map(([ms]) => ms)).toEqual([1, 2, 3, 4, 5, 6].map(busyWaitMs));
    expect(recordsRead).toBe(7);
  } finally {
    sleeps.mockRestore();
    await cleanUp();
  }
});

test('a reader stopped while it polls stops then, not after its poll interval', async () => {
  let stopping: Promise<void> | undefined;
  let polls = 0;
  // The first poll was woken (it polls again at once); the second finds nothing new and ends caught up.
  const { reader, put, cleanUp } = await readerOnNewTable(async (operation, _answer, polling) => {
    if (operation === 'GetRecords' && ++polls === 2) stopping = polling.stop();
  });
  try {
    await put('only');
    reader.start();
    reader.wake();
    await eventually(() => stopping !== undefined, 10_000, 'a poll');
    const stopped = await Promise.race([stopping!.then(() => 'stopped'), new Promise((resolve) => setTimeout(resolve, 5_000, 'still paused'))]);
    expect(stopped).toBe('stopped');
  } finally {
    await cleanUp();
  }
});
