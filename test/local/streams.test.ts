/**
 * DynamoDB stream delivery on the local engine, driven by DynamoDB Local's Streams API: every
 * change once and in order per item, filter criteria, batch size, whole-batch retries with
 * bisection, and the failure destination when retries run out.
 */
import { DynamoDBClient, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { DynamoEventSource, SqsDlq } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';

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
