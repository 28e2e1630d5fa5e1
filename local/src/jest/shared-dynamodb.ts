/**
 * One DynamoDB Local for a whole jest run. Jest's global set-up runs once in the parent process
 * before the test files; the variable it sets is inherited by the workers, where every
 * `new LocalEngine(...)` without `dynamodbEndpoint` uses it (tables get a per-engine prefix).
 *
 *   // jest.config.js
 *   globalSetup: 'cdk-orchestrator-local/jest-global-setup',
 *   globalTeardown: 'cdk-orchestrator-local/jest-global-teardown',
 */
import { DynamoDbLocal, startDynamoDbLocal } from '../dynamodb-local';

/** The environment variable that carries the shared DynamoDB Local's endpoint to the engines. */
export const SHARED_DYNAMODB_ENDPOINT_ENV = 'CDK_ORCHESTRATOR_LOCAL_DYNAMODB_ENDPOINT';

const HOLDER = '__cdkOrchestratorLocalDynamoDb';

/** Starts DynamoDB Local (unless one is already given in the environment) and publishes its endpoint. */
export async function globalSetup(): Promise<void> {
  if (process.env[SHARED_DYNAMODB_ENDPOINT_ENV]) return;
  const dynamoDb = await startDynamoDbLocal();
  process.env[SHARED_DYNAMODB_ENDPOINT_ENV] = dynamoDb.endpoint;
  (globalThis as Record<string, unknown>)[HOLDER] = dynamoDb;
}

/** Stops the DynamoDB Local that globalSetup started (same process: the handle is on globalThis). */
export async function globalTeardown(): Promise<void> {
  const holder = globalThis as Record<string, unknown>;
  const dynamoDb = holder[HOLDER] as DynamoDbLocal | undefined;
  if (!dynamoDb) return;
  await dynamoDb.stop();
  delete holder[HOLDER];
  delete process.env[SHARED_DYNAMODB_ENDPOINT_ENV];
}
