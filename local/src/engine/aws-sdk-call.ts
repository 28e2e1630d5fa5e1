/**
 * Runs one AWS SDK v3 call against the local endpoint: used for `Custom::AWS` resources
 * (`AwsCustomResource` onCreate calls, e.g. a DynamoDB putItem that registers a plugin at deploy
 * time) and for Step Functions `aws-sdk:*` / optimized service tasks. Clients are loaded lazily
 * from the installed `@aws-sdk/client-*` packages, except DynamoDB's: every plugin registered at
 * deploy time is one of its calls at each engine start, and the engine's own JSON client makes it
 * without loading the SDK into the engine's process (dynamodb-json-client.ts), doing what the SDK
 * did for these calls: attribute values of the wrong type refused, and its retries. The answer is
 * DynamoDB's as sent on the wire (numbers as strings, binary as base64, timestamps as epoch seconds).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbJsonClient, DynamoDbJsonError } from './dynamodb-json-client';

/** v2-style service names (as `AwsCustomResource` and Step Functions use them) -> v3 package suffix. */
const PACKAGES: Record<string, string> = {
  dynamodb: 'dynamodb',
  dynamodbstreams: 'dynamodb-streams',
  sns: 'sns',
  sqs: 'sqs',
  ssm: 'ssm',
  lambda: 'lambda',
  sfn: 'sfn',
  stepfunctions: 'sfn',
  states: 'sfn',
};

export interface SdkTarget {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: { accessKeyId: string; secretAccessKey: string };
}

const clients = new Map<string, any>();

const DYNAMODB_PACKAGE = '@aws-sdk/client-dynamodb';

export function sdkPackageFor(service: string): string {
  const bare = service.replace(/^@aws-sdk\/client-/, '').replace(/-/g, '').toLowerCase();
  const pkg = PACKAGES[bare];
  if (!pkg) throw new Error(`The local engine cannot call AWS service "${service}"`);
  return `@aws-sdk/client-${pkg}`;
}

/** Calls `service.action(parameters)`; action may be camelCase (`putItem`) or PascalCase. */
export async function callAws(
  service: string, action: string, parameters: Record<string, unknown>, target: SdkTarget,
): Promise<Record<string, unknown>> {
  const pkg = sdkPackageFor(service);
  const operation = action.charAt(0).toUpperCase() + action.slice(1);
  const key = `${pkg}|${target.endpoint}|${target.credentials.accessKeyId}`;
  if (pkg === DYNAMODB_PACKAGE) {
    let json = clients.get(key) as DynamoDbJsonClient | undefined;
    if (!json) clients.set(key, json = new DynamoDbJsonClient(target.endpoint, target.region, target.credentials.accessKeyId));
    return callDynamoDb(json, operation.replace(/Command$/, ''), parameters);
  }
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const mod = require(pkg) as Record<string, any>;
  const Command = mod[`${operation}Command`];
  if (!Command) throw new Error(`${pkg} has no ${operation} operation`);
  let client = clients.get(key);
  if (!client) {
    const ClientClass = Object.entries(mod).find(([name, value]) => name.endsWith('Client') && typeof value === 'function' && name !== '__Client')?.[1];
    client = new ClientClass({ endpoint: target.endpoint, region: target.region, credentials: target.credentials });
    clients.set(key, client);
  }
  const { $metadata, ...output } = await client.send(new Command(parameters));
  void $metadata;
  return output;
}

/** The AWS SDK's standard retry mode: 3 attempts in all, for throttling and server errors. */
const DYNAMODB_ATTEMPTS = 3;
const THROTTLING = new Set(['ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'ThrottlingException', 'TooManyRequestsException']);

/** A DynamoDB call as the SDK's client made it: attribute values checked, throttling and server errors retried. */
async function callDynamoDb(client: DynamoDbJsonClient, operation: string, parameters: Record<string, unknown>): Promise<Record<string, unknown>> {
  const wrong = wrongAttributeValue(parameters, '');
  if (wrong) throw new DynamoDbJsonError('ValidationException', wrong, 400);
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.call(operation, parameters);
    } catch (e) {
      const error = e as DynamoDbJsonError;
      if (error.name === 'UnknownOperationException') throw new Error(`DynamoDB has no ${operation} operation`);
      const retryable = error instanceof DynamoDbJsonError && (error.status >= 500 || THROTTLING.has(error.name));
      if (!retryable || attempt >= DYNAMODB_ATTEMPTS) throw error;
      await sleep(50 * 2 ** attempt);
    }
  }
}

/** Parameters that hold maps of attribute name -> attribute value (`Keys`: a list of them). */
const ATTRIBUTE_MAPS = new Set(['ExclusiveStartKey', 'ExpressionAttributeValues', 'Item', 'Key', 'Keys']);

/**
 * Where the parameters hold an attribute value of the wrong shape (`{ "N": 3 }` rather than
 * `{ "N": "3" }`), as a message; the SDK's types and AWS refuse it, DynamoDB Local takes some.
 */
function wrongAttributeValue(value: unknown, path: string): string | undefined {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      const wrong = wrongAttributeValue(item, `${path}[${i}]`);
      if (wrong) return wrong;
    }
    return undefined;
  }
  if (!isObject(value)) return undefined;
  for (const [name, member] of Object.entries(value)) {
    const at = path ? `${path}.${name}` : name;
    const maps = !ATTRIBUTE_MAPS.has(name) ? [] : Array.isArray(member) ? member : [member];
    for (const [i, map] of maps.entries()) {
      if (!isObject(map)) continue;
      for (const [attribute, attributeValue] of Object.entries(map)) {
        const wrong = attributeValueProblem(attributeValue, `${name === 'Keys' ? `${at}[${i}]` : at}.${attribute}`);
        if (wrong) return wrong;
      }
    }
    const wrong = maps.length ? undefined : wrongAttributeValue(member, at);
    if (wrong) return wrong;
  }
  return undefined;
}

const STRING_TYPES = new Set(['S', 'N', 'B']);
const SET_TYPES = new Set(['SS', 'NS', 'BS']);

function attributeValueProblem(value: unknown, path: string): string | undefined {
  const types = isObject(value) ? Object.keys(value) : [];
  if (types.length !== 1) return `${path} must be an attribute value with exactly one type (S, N, B, SS, NS, BS, M, L, BOOL or NULL)`;
  const [type] = types;
  const member = (value as Record<string, unknown>)[type];
  const shape = Array.isArray(member) ? 'a list' : member === null ? 'null' : typeof member;
  if (STRING_TYPES.has(type)) return typeof member === 'string' ? undefined : `${path}.${type} must be a string, not ${shape}`;
  if (SET_TYPES.has(type)) {
    return Array.isArray(member) && member.every((m) => typeof m === 'string') ? undefined : `${path}.${type} must be a list of strings`;
  }
  if (type === 'BOOL' || type === 'NULL') return typeof member === 'boolean' ? undefined : `${path}.${type} must be true or false, not ${shape}`;
  if (type === 'M') {
    if (!isObject(member)) return `${path}.M must be a map of attribute values, not ${shape}`;
    for (const [name, nested] of Object.entries(member)) {
      const wrong = attributeValueProblem(nested, `${path}.M.${name}`);
      if (wrong) return wrong;
    }
    return undefined;
  }
  if (type === 'L') {
    if (!Array.isArray(member)) return `${path}.L must be a list of attribute values, not ${shape}`;
    for (const [i, nested] of member.entries()) {
      const wrong = attributeValueProblem(nested, `${path}.L[${i}]`);
      if (wrong) return wrong;
    }
    return undefined;
  }
  return `${path} has an unknown type ${type} (S, N, B, SS, NS, BS, M, L, BOOL or NULL)`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Forgets the cached clients (their sockets) of one endpoint, when the engine stops. */
export function releaseClients(endpoint: string) {
  for (const [key, client] of clients) {
    if (key.includes(`|${endpoint}|`)) {
      client.destroy?.();
      clients.delete(key);
    }
  }
}
