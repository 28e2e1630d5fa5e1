/**
 * Runs once before all test files: bundles the handlers (tests exercise assets/handlers/<name>/index.js,
 * the code that ships) while one DynamoDB Local starts for the whole run. Its endpoint reaches the
 * test files through DYNAMODB_LOCAL_ENDPOINT (jest workers inherit the environment set here).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DYNAMODB_LOCAL_ENDPOINT } from './dynamodb-endpoint';
import { DynamoDbLocal, startDynamoDbLocal } from '../../local/src/dynamodb-local';

export default async function globalSetup(): Promise<void> {
  const root = join(__dirname, '..', '..');
  const [, dynamoDb] = await Promise.all([
    promisify(execFile)(process.execPath, [join(root, 'scripts', 'bundle-handlers.mjs')], { cwd: root }),
    startDynamoDbLocal(),
  ]);
  process.env[DYNAMODB_LOCAL_ENDPOINT] = dynamoDb.endpoint;
  (globalThis as { __dynamoDbLocal?: DynamoDbLocal }).__dynamoDbLocal = dynamoDb;
}
