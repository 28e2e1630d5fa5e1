/** Jest `globalSetup: 'cdk-orchestrator-local/jest-global-setup'`: one DynamoDB Local for all test files. */
import { globalSetup } from './shared-dynamodb';

export = globalSetup;
