/** Jest `globalTeardown: 'cdk-orchestrator-local/jest-global-teardown'`: stops the shared DynamoDB Local. */
import { globalTeardown } from './shared-dynamodb';

export = globalTeardown;
