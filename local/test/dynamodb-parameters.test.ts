/**
 * The attribute values of DynamoDB requests that Custom::AWS resources and Step Functions tasks send
 * through the engine's own client: found where DynamoDB's operations hold them, checked as the SDK's
 * client and AWS check them, and binary given as text the way AwsCustomResource's handler reads it.
 */
import { binaryAsText, wrongAttributeValue } from '../src/engine/dynamodb-parameters';

describe('attribute values in DynamoDB requests', () => {
  test.each([
    ['PutItem', { TableName: 't', Item: { pk: { S: 'a' }, n: { N: '3' }, b: { B: 'aGk=' }, ok: { BOOL: true }, none: { NULL: true }, tags: { SS: ['x'] } } }],
    ['UpdateItem', { TableName: 't', Key: { pk: { S: 'a' } }, UpdateExpression: 'SET #n = :n', ExpressionAttributeValues: { ':n': { N: '1' } } }],
    ['nested maps and lists, keys that look like types', { TableName: 't', Item: { pk: { S: 'a' }, doc: { M: { S: { S: 'x' }, Key: { L: [{ N: '1' }, { M: {} }] } } } } }],
    ['BatchGetItem, a table named Keys', { RequestItems: { Keys: { Keys: [{ pk: { S: 'a' } }] } } }],
    ['BatchWriteItem, a table named Item', { RequestItems: { Item: [{ PutRequest: { Item: { pk: { S: 'a' } } } }, { DeleteRequest: { Key: { pk: { S: 'b' } } } }] } }],
    ['TransactWriteItems', { TransactItems: [{ Put: { TableName: 't', Item: { pk: { S: 'a' } } } }, { ConditionCheck: { TableName: 't', Key: { pk: { S: 'b' } }, ConditionExpression: 'x = :x', ExpressionAttributeValues: { ':x': { N: '0' } } } }] }],
    ['ExecuteStatement', { Statement: 'SELECT * FROM t WHERE pk = ?', Parameters: [{ S: 'a' }] }],
    ['legacy parameters, an attribute named Key', { TableName: 't', Item: { pk: { S: 'a' } }, Expected: { Key: { Exists: false } }, AttributeUpdates: { Item: { Action: 'PUT', Value: { S: 'x' } } } }],
    ['Query on a key named Key', { TableName: 't', KeyConditions: { Key: { ComparisonOperator: 'EQ', AttributeValueList: [{ S: 'a' }] } }, ExclusiveStartKey: { Key: { S: 'a' } } }],
  ])('%s: accepted', (_name, request) => {
    expect(wrongAttributeValue(request)).toBeUndefined();
  });

  test.each([
    ['a number as a number', { TableName: 't', Item: { pk: { S: 'a' }, n: { N: 3 } } }, 'Item.n.N must be a string, not number'],
    ['NULL false', { TableName: 't', Key: { pk: { S: 'a' } }, ExpressionAttributeValues: { ':v': { NULL: false } } }, 'ExpressionAttributeValues.:v.NULL must be true'],
    ['two types', { TableName: 't', Item: { pk: { S: 'a', N: '1' } } }, 'Item.pk must be an attribute value with exactly one type (S, N, B, SS, NS, BS, M, L, BOOL or NULL)'],
    ['a plain value', { TableName: 't', Key: { pk: 'a' } }, 'Key.pk must be an attribute value with exactly one type (S, N, B, SS, NS, BS, M, L, BOOL or NULL)'],
    ['deep in a list', { TableName: 't', Item: { pk: { S: 'a' }, l: { L: [{ S: 'x' }, { BOOL: 'yes' }] } } }, 'Item.l.L[1].BOOL must be true or false, not string'],
    ['in a batch write', { RequestItems: { t: [{ PutRequest: { Item: { pk: { S: 1 } } } }] } }, 'RequestItems.t[0].PutRequest.Item.pk.S must be a string, not number'],
    ['in a transaction', { TransactItems: [{ Update: { TableName: 't', Key: { pk: { NS: [1] } } } }] }, 'TransactItems[0].Update.Key.pk.NS must be a list of strings'],
    ['a PartiQL parameter', { Statement: 'x', Parameters: [{ X: 'a' }] }, 'Parameters[0] has an unknown type X (S, N, B, SS, NS, BS, M, L, BOOL or NULL)'],
  ])('%s: refused, saying where and what is allowed', (_name, request, message) => {
    expect(wrongAttributeValue(request)).toBe(message);
  });

  test('a custom resource\'s binary values are text: their UTF-8 bytes go to DynamoDB, in maps, lists and sets too', () => {
    const request = {
      TableName: 't',
      Item: { pk: { S: 'a' }, b: { B: 'hello' }, n: { B: 3 }, set: { BS: ['x', 'é'] }, doc: { M: { inner: { B: 'hi' } } }, list: { L: [{ B: 'hi' }, { S: 'hi' }] } },
      ExpressionAttributeValues: { ':b': { B: 'hi' } },
    };
    const base64 = (text: string) => Buffer.from(text, 'utf8').toString('base64');
    expect(binaryAsText(request)).toEqual({
      TableName: 't',
      Item: {
        pk: { S: 'a' },
        b: { B: base64('hello') },
        n: { B: base64('3') },
        set: { BS: [base64('x'), base64('é')] },
        doc: { M: { inner: { B: base64('hi') } } },
        list: { L: [{ B: base64('hi') }, { S: 'hi' }] },
      },
      ExpressionAttributeValues: { ':b': { B: base64('hi') } },
    });
    // The caller's parameters are left as they were.
    expect(request.Item.b).toEqual({ B: 'hello' });
  });
});
