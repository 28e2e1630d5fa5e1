/**
 * Runs once before all test files: bundles the handlers (tests exercise assets/handlers/<name>/index.js,
 * the code that ships) while one DynamoDB Local starts for the whole run — through the package's own
 * jest hook (`cdk-orchestrator-local/jest-global-setup`), as a user's jest.config.js would. Its
 * endpoint reaches the test files in CDK_ORCHESTRATOR_LOCAL_DYNAMODB_ENDPOINT (jest workers inherit
 * the environment set here); every LocalEngine without `dynamodbEndpoint` uses it.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { globalSetup as startSharedDynamoDb } from '../../local/src/jest/shared-dynamodb';

export default async function globalSetup(): Promise<void> {
  const root = join(__dirname, '..', '..');
  await Promise.all([
    promisify(execFile)(process.execPath, [join(root, 'scripts', 'bundle-handlers.mjs')], { cwd: root }),
    startSharedDynamoDb(),
  ]);
}
