/**
 * lambda/shared/documents.ts against DynamoDB Local: the handlers' item requests with plain values,
 * marshalled as lib-dynamodb marshalled them, through one client that resolves each command's
 * middleware once (`cacheMiddleware`). The source module is tested here, with the SDK of this
 * repository; the handler tests run the bundles that include it.
 */
import { CreateTableCommand, DeleteTableCommand, DynamoDBClient, GetItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import * as documents from '../../lambda/shared/documents';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const TABLE = `documents-${process.pid}-${Date.now()}`;
const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
let raw: DynamoDBClient;

beforeAll(async () => {
  const endpoint = process.env[DYNAMODB_LOCAL_ENDPOINT]!;
  // What the constructs and the local engine give a handler: endpoint and region from the environment
  // (read when documents.ts first asks for its client).
  Object.assign(process.env, {
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
  });
  raw = new DynamoDBClient({ endpoint, region: 'us-east-1', credentials });
  await raw.send(new CreateTableCommand({
    TableName: TABLE,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [{ AttributeName: 'pk', AttributeType: 'S' }, { AttributeName: 'sk', AttributeType: 'N' }],
    KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }, { AttributeName: 'sk', KeyType: 'RANGE' }],
  }));
});

afterAll(async () => {
  await raw?.send(new DeleteTableCommand({ TableName: TABLE }));
  raw?.destroy();
});

test('a document is written and read back as plain values; undefined fields are left out', async () => {
  const item = {
    pk: 'doc',
    sk: 1,
    name: 'run',
    count: 3,
    ratio: 0.25,
    done: false,
    nothing: null,
    tags: new Set(['a', 'b']),
    sizes: new Set([1, 2]),
    list: [1, 'two', { three: 3 }],
    nested: { deeper: { plugins: ['A1', 'A2'] }, skipped: undefined },
    bytes: new Uint8Array([1, 2, 3]),
    absent: undefined,
  };
  await documents.putDocument({ TableName: TABLE, Item: item });

  const { Item } = await documents.getDocument({ TableName: TABLE, Key: { pk: 'doc', sk: 1 }, ConsistentRead: true });
  const { absent: _absent, ...stored } = item;
  expect(Item).toEqual({ ...stored, nested: { deeper: { plugins: ['A1', 'A2'] } } });
  expect(Item).not.toHaveProperty('absent');
  // DynamoDB's own types, as another client (or the AWS console) sees the item.
  const rawItem = (await raw.send(new GetItemCommand({ TableName: TABLE, Key: { pk: { S: 'doc' }, sk: { N: '1' } } }))).Item!;
  expect(rawItem.tags).toEqual({ SS: ['a', 'b'] });
  expect(rawItem.sizes).toEqual({ NS: ['1', '2'] });
  expect(rawItem.nested).toEqual({ M: { deeper: { M: { plugins: { L: [{ S: 'A1' }, { S: 'A2' }] } } } } });
  expect(await documents.getDocument({ TableName: TABLE, Key: { pk: 'none', sk: 1 } })).toEqual({ Item: undefined });
});

test('every call of a command sends its own input, though the client resolves the command once', async () => {
  // lib-dynamodb's document client cannot do this: its resolved handler keeps its first command.
  await documents.putDocument({ TableName: TABLE, Item: { pk: 'counter', sk: 1, n: 0 } });
  const resolved = jest.spyOn(UpdateItemCommand.prototype, 'resolveMiddleware');
  try {
    const answers = [];
    for (const step of [1, 2, 3]) {
      answers.push((await documents.updateDocument({
        TableName: TABLE,
        Key: { pk: 'counter', sk: 1 },
        UpdateExpression: 'SET n = n + :step, latest = :step',
        ExpressionAttributeValues: { ':step': step },
        ReturnValues: 'ALL_NEW',
      })).Attributes);
    }
    expect(answers).toEqual([
      { pk: 'counter', sk: 1, n: 1, latest: 1 },
      { pk: 'counter', sk: 1, n: 3, latest: 2 },
      { pk: 'counter', sk: 1, n: 6, latest: 3 },
    ]);
    const other = await documents.updateDocument({
      TableName: TABLE, Key: { pk: 'other', sk: 2 }, UpdateExpression: 'SET n = :n', ExpressionAttributeValues: { ':n': 9 }, ReturnValues: 'ALL_NEW',
    });
    expect(other.Attributes).toEqual({ pk: 'other', sk: 2, n: 9 });
    // Four updates, the file's first: one resolution (four without the cache).
    expect(resolved).toHaveBeenCalledTimes(1);
  } finally {
    resolved.mockRestore();
  }
});

test('undefined expression values are left out, and an update may have none', async () => {
  await documents.putDocument({ TableName: TABLE, Item: { pk: 'values', sk: 1, n: 1, gone: 'soon' } });
  // DynamoDB refuses a value no expression uses: the undefined one must not be sent.
  const set = await documents.updateDocument({
    TableName: TABLE,
    Key: { pk: 'values', sk: 1 },
    UpdateExpression: 'SET n = :n',
    ExpressionAttributeValues: { ':n': 2, ':unused': undefined },
    ReturnValues: 'ALL_NEW',
  });
  expect(set.Attributes).toEqual({ pk: 'values', sk: 1, n: 2, gone: 'soon' });
  const removed = await documents.updateDocument({ TableName: TABLE, Key: { pk: 'values', sk: 1 }, UpdateExpression: 'REMOVE gone', ReturnValues: 'ALL_NEW' });
  expect(removed.Attributes).toEqual({ pk: 'values', sk: 1, n: 2 });
});

test('a failed condition throws the SDK\'s ConditionalCheckFailedException with the item as it was', async () => {
  await documents.putDocument({ TableName: TABLE, Item: { pk: 'cond', sk: 1, state: 'Complete' } });
  const refused = documents.updateDocument({
    TableName: TABLE,
    Key: { pk: 'cond', sk: 1 },
    UpdateExpression: 'SET #s = :new',
    ConditionExpression: '#s = :old',
    ExpressionAttributeNames: { '#s': 'state' },
    ExpressionAttributeValues: { ':old': 'In Progress', ':new': 'Error' },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });
  await expect(refused).rejects.toMatchObject({ name: 'ConditionalCheckFailedException', Item: { state: { S: 'Complete' } } });
  expect((await documents.getDocument({ TableName: TABLE, Key: { pk: 'cond', sk: 1 } })).Item?.state).toBe('Complete');
  // The item it carries, as a document: the same as a read of it.
  const error = await refused.catch((e: unknown) => e);
  expect(documents.isConditionalCheckFailed(error)).toBe(true);
  expect(documents.itemAsItWas(error as Parameters<typeof documents.itemAsItWas>[0])).toEqual({ pk: 'cond', sk: 1, state: 'Complete' });
  expect(documents.isConditionalCheckFailed(new Error('other'))).toBe(false);
});

test('a conditional put or delete that fails throws, with the item as it was, and changes nothing', async () => {
  await documents.putDocument({ TableName: TABLE, Item: { pk: 'registry', sk: 1, source: 'cdk' } });
  const put = documents.putDocument({
    TableName: TABLE,
    Item: { pk: 'registry', sk: 1, source: 'runtime' },
    ConditionExpression: 'attribute_not_exists(pk) OR #source <> :cdk',
    ExpressionAttributeNames: { '#source': 'source' },
    ExpressionAttributeValues: { ':cdk': 'cdk' },
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });
  await expect(put).rejects.toMatchObject({ name: 'ConditionalCheckFailedException', Item: { source: { S: 'cdk' } } });
  const deleted = documents.deleteDocument({
    TableName: TABLE,
    Key: { pk: 'registry', sk: 1 },
    ConditionExpression: '#source = :runtime',
    ExpressionAttributeNames: { '#source': 'source' },
    ExpressionAttributeValues: { ':runtime': 'runtime' },
    ReturnValues: 'ALL_OLD',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });
  await expect(deleted).rejects.toMatchObject({ name: 'ConditionalCheckFailedException', Item: { source: { S: 'cdk' } } });
  expect((await documents.getDocument({ TableName: TABLE, Key: { pk: 'registry', sk: 1 } })).Item).toEqual({ pk: 'registry', sk: 1, source: 'cdk' });
});

test('what DynamoDB cannot store exactly is refused before anything is sent', async () => {
  await expect(documents.putDocument({ TableName: TABLE, Item: { pk: 'big', sk: 1, n: 2 ** 53 } })).rejects.toThrow(/Number 9007199254740992 is greater than Number.MAX_SAFE_INTEGER/);
  await expect(documents.putDocument({ TableName: TABLE, Item: { pk: 'big', sk: 2, tags: new Set() } })).rejects.toThrow(/empty set/i);
  expect((await documents.queryPage({ TableName: TABLE, KeyConditionExpression: 'pk = :pk', ExpressionAttributeValues: { ':pk': 'big' } }))).toEqual({ Items: [] });
});

test('queries page with plain start keys; delete answers the removed item', async () => {
  for (let sk = 1; sk <= 5; sk++) await documents.putDocument({ TableName: TABLE, Item: { pk: 'page', sk, label: `item ${sk}` } });
  const seen: unknown[] = [];
  const startKeys: unknown[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.queryPage({
      TableName: TABLE,
      KeyConditionExpression: 'pk = :pk AND sk >= :from',
      ExpressionAttributeValues: { ':pk': 'page', ':from': 2 },
      Limit: 2,
      ExclusiveStartKey: startKey,
    });
    seen.push(...page.Items.map((item) => item.label));
    startKey = page.LastEvaluatedKey;
    if (startKey) startKeys.push(startKey);
  } while (startKey);
  expect(seen).toEqual(['item 2', 'item 3', 'item 4', 'item 5']);
  expect(startKeys[0]).toEqual({ pk: 'page', sk: 3 });

  const removed = await documents.deleteDocument({ TableName: TABLE, Key: { pk: 'page', sk: 3 }, ReturnValues: 'ALL_OLD' });
  expect(removed.Attributes).toEqual({ pk: 'page', sk: 3, label: 'item 3' });
  expect(await documents.deleteDocument({ TableName: TABLE, Key: { pk: 'page', sk: 3 }, ReturnValues: 'ALL_OLD' })).toEqual({ Attributes: undefined });
});
