/**
 * Runs one AWS SDK v3 call against the local endpoint: used for `Custom::AWS` resources
 * (`AwsCustomResource` onCreate calls, e.g. a DynamoDB putItem that registers a plugin at deploy
 * time) and for Step Functions `aws-sdk:*` / optimized service tasks. Clients are loaded lazily
 * from the installed `@aws-sdk/client-*` packages, except DynamoDB's: every plugin registered at
 * deploy time is one of its calls at each engine start, and the engine's own JSON client makes it
 * without loading the SDK into the engine's process (dynamodb-json-client.ts). Its answer is
 * DynamoDB's as sent on the wire, the shape Step Functions returns too (binary as base64).
 */
import { DynamoDbJsonClient } from './dynamodb-json-client';


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
    return json.call(operation, parameters);
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

/** Forgets the cached clients (their sockets) of one endpoint, when the engine stops. */
export function releaseClients(endpoint: string) {
  for (const [key, client] of clients) {
    if (key.includes(`|${endpoint}|`)) {
      client.destroy?.();
      clients.delete(key);
    }
  }
}
