/**
 * DynamoDB item requests with plain values (`{ uid: 'u1', plugins: { A1: {...} } }`, lib-dynamodb's
 * shapes), sent through the container's DynamoDB client (clients.ts). Used by the handlers and the
 * plugin SDK.
 *
 * Why not lib-dynamodb's document client: it refuses the SDK's `cacheMiddleware` option (its command
 * handlers close over the first command sent), so every call would resolve the client's middleware
 * stack again. Marshalling here with `@aws-sdk/util-dynamodb` (what lib-dynamodb uses) and sending
 * the plain commands lets the client resolve each command's stack once per container. Measured with
 * the SDK's own work only (docs/DESIGN.md "Handler SDK calls"): about a fifth less CPU per call than
 * the plain client without the cache, a third less than the document client.
 *
 * Values are marshalled as lib-dynamodb marshalls them with `removeUndefinedValues`: an undefined
 * field is left out, a number beyond Number.MAX_SAFE_INTEGER or an empty set is refused before
 * anything is sent, a Set becomes a set type. Only the fields the handlers use are converted (keys,
 * items, expression values, start keys); the legacy parameters (`Expected`, `AttributeUpdates`,
 * `KeyConditions`, `QueryFilter`) are not accepted. Answers carry only what the handlers read (the
 * item, the attributes, a page's items and its last key), not `ConsumedCapacity` or `$metadata`.
 */
import {
  AttributeValue, DeleteItemCommand, DeleteItemCommandInput, GetItemCommand, GetItemCommandInput, PutItemCommand, PutItemCommandInput,
  QueryCommand, QueryCommandInput, UpdateItemCommand, UpdateItemCommandInput,
} from '@aws-sdk/client-dynamodb';
import { marshall, NativeAttributeValue, unmarshall } from '@aws-sdk/util-dynamodb';
import { dynamoDb } from './clients';

/** An item, a key or expression values as plain values. */
export type Document = Record<string, NativeAttributeValue>;

interface WithValues { readonly ExpressionAttributeValues?: Document }

export type GetInput = Omit<GetItemCommandInput, 'Key'> & { readonly Key: Document };
export type PutInput = Omit<PutItemCommandInput, 'Item' | 'Expected' | 'ExpressionAttributeValues'> & WithValues & { readonly Item: Document };
export type UpdateInput = Omit<UpdateItemCommandInput, 'Key' | 'AttributeUpdates' | 'Expected' | 'ExpressionAttributeValues'> & WithValues & {
  readonly Key: Document;
};
export type DeleteInput = Omit<DeleteItemCommandInput, 'Key' | 'Expected' | 'ExpressionAttributeValues'> & WithValues & { readonly Key: Document };
export type QueryInput = Omit<QueryCommandInput, 'KeyConditions' | 'QueryFilter' | 'ExclusiveStartKey' | 'ExpressionAttributeValues'> & WithValues & {
  readonly ExclusiveStartKey?: Document;
};

const MARSHALL_OPTIONS = { removeUndefinedValues: true } as const;

type Attributes = Record<string, AttributeValue>;

function toAttributes(document: Document): Attributes {
  return marshall(document, MARSHALL_OPTIONS);
}

function toAttributesIfAny(document: Document | undefined): Attributes | undefined {
  return document === undefined ? undefined : toAttributes(document);
}

function fromAttributesIfAny(attributes: Attributes | undefined): Document | undefined {
  return attributes === undefined ? undefined : unmarshall(attributes);
}

export async function getDocument(input: GetInput): Promise<{ Item?: Document }> {
  const output = await dynamoDb().send(new GetItemCommand({ ...input, Key: toAttributes(input.Key) }));
  return { Item: fromAttributesIfAny(output.Item) };
}

export async function putDocument(input: PutInput): Promise<{ Attributes?: Document }> {
  const output = await dynamoDb().send(new PutItemCommand({
    ...input, Item: toAttributes(input.Item), ExpressionAttributeValues: toAttributesIfAny(input.ExpressionAttributeValues),
  }));
  return { Attributes: fromAttributesIfAny(output.Attributes) };
}

export async function updateDocument(input: UpdateInput): Promise<{ Attributes?: Document }> {
  const output = await dynamoDb().send(new UpdateItemCommand({
    ...input, Key: toAttributes(input.Key), ExpressionAttributeValues: toAttributesIfAny(input.ExpressionAttributeValues),
  }));
  return { Attributes: fromAttributesIfAny(output.Attributes) };
}

export async function deleteDocument(input: DeleteInput): Promise<{ Attributes?: Document }> {
  const output = await dynamoDb().send(new DeleteItemCommand({
    ...input, Key: toAttributes(input.Key), ExpressionAttributeValues: toAttributesIfAny(input.ExpressionAttributeValues),
  }));
  return { Attributes: fromAttributesIfAny(output.Attributes) };
}

/**
 * Whether `error` is DynamoDB refusing a write whose condition did not hold. Its `Item` (with
 * `ReturnValuesOnConditionCheckFailure: 'ALL_OLD'`) is the item as it was, in DynamoDB's types:
 * `itemAsItWas` gives it as a document.
 */
export function isConditionalCheckFailed(error: unknown): error is Error & { Item?: Attributes } {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** The item a refused write found (undefined without ALL_OLD, or when there was none), converted as every answer is. */
export function itemAsItWas(error: { Item?: Attributes }): Document | undefined {
  return fromAttributesIfAny(error.Item);
}

/** One page of a query: its items and the key to start the next page from (none after the last). */
export async function queryPage(input: QueryInput): Promise<{ Items: Document[]; LastEvaluatedKey?: Document }> {
  const output = await dynamoDb().send(new QueryCommand({
    ...input,
    ExclusiveStartKey: toAttributesIfAny(input.ExclusiveStartKey),
    ExpressionAttributeValues: toAttributesIfAny(input.ExpressionAttributeValues),
  }));
  return { Items: (output.Items ?? []).map((item) => unmarshall(item)), LastEvaluatedKey: fromAttributesIfAny(output.LastEvaluatedKey) };
}
