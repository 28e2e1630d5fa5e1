/**
 * Runs one AWS SDK v3 call against the local endpoint: used for `Custom::AWS` resources
 * (`AwsCustomResource` onCreate calls, e.g. a DynamoDB putItem that registers a plugin at deploy
 * time) and for Step Functions `aws-sdk:*` / optimized service tasks. Clients are loaded lazily
 * from the installed `@aws-sdk/client-*` packages, except DynamoDB's: every plugin registered at
 * deploy time is one of its calls at each engine start, and the engine's own JSON client makes it
 * without loading the SDK into the engine's process (dynamodb-json-client.ts), doing what the SDK
 * did for these calls: attribute values of the wrong shape refused (dynamodb-parameters.ts), and
 * its retries. The answer is DynamoDB's as sent on the wire (numbers as strings, binary as base64,
 * timestamps as epoch seconds).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DynamoDbJsonClient, DynamoDbJsonError, isStreamsOperation } from './dynamodb-json-client';
import { binaryAsText, wrongAttributeValue } from './dynamodb-parameters';

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

export interface CallOptions {
  /** A `Custom::AWS` resource's call: its parameters as aws-cdk-lib's AwsCustomResource handler reads them. */
  readonly fromCustomResource?: boolean;
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
  service: string, action: string, parameters: Record<string, unknown>, target: SdkTarget, options: CallOptions = {},
): Promise<Record<string, unknown>> {
  const pkg = sdkPackageFor(service);
  const operation = action.charAt(0).toUpperCase() + action.slice(1);
  const key = `${pkg}|${target.endpoint}|${target.credentials.accessKeyId}`;
  if (pkg === DYNAMODB_PACKAGE) {
    let json = clients.get(key) as DynamoDbJsonClient | undefined;
    if (!json) clients.set(key, json = new DynamoDbJsonClient(target.endpoint, target.region, target.credentials.accessKeyId));
    return callDynamoDb(json, operation.replace(/Command$/, ''), parameters, options.fromCustomResource ?? false);
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

/** The SDK's DynamoDB client: 4 attempts in all, for throttling, server and network errors. */
const DYNAMODB_ATTEMPTS = 4;
const RETRIED_ERRORS = new Set([
  'ProvisionedThroughputExceededException', 'RequestLimitExceeded', 'ThrottlingException', 'TooManyRequestsException',
  'TransactionInProgressException', 'LimitExceededException',
]);
const RETRIED_NETWORK_ERRORS = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

/**
 * A DynamoDB call as the SDK's client made it: attribute values checked (binary given as text in
 * a custom resource), throttling, server and network errors retried with jittered backoff.
 */
async function callDynamoDb(
  client: DynamoDbJsonClient, operation: string, parameters: Record<string, unknown>, fromCustomResource: boolean,
): Promise<Record<string, unknown>> {
  if (isStreamsOperation(operation)) throw new Error(`DynamoDB has no ${operation} operation (it is DynamoDB Streams')`);
  const request = fromCustomResource ? binaryAsText(parameters) : parameters;
  const wrong = wrongAttributeValue(request);
  if (wrong) throw new DynamoDbJsonError('ValidationException', wrong, 400);
  for (let attempt = 1; ; attempt++) {
    try {
      return await client.call(operation, request);
    } catch (e) {
      if ((e as Error).name === 'UnknownOperationException') throw new Error(`DynamoDB has no ${operation} operation`);
      const retried = e instanceof DynamoDbJsonError
        ? e.status >= 500 || e.status === 429 || RETRIED_ERRORS.has(e.name)
        : RETRIED_NETWORK_ERRORS.has((e as NodeJS.ErrnoException).code ?? '');
      if (!retried || attempt >= DYNAMODB_ATTEMPTS) throw e;
      // Full jitter, as the SDK waits; on a local scale (its base is 100 ms).
      await sleep(Math.random() * 25 * 2 ** attempt);
    }
  }
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
