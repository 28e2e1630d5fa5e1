/**
 * cdk-orchestrator-local: runs a synthesized cdk-orchestrator app on one machine (DynamoDB Local,
 * the synthesized state machines, the functions' own code) — the test API. The CLI is `cli.ts`.
 */
export * from './engine';
export { startDynamoDbLocal } from './dynamodb-local';
export type { DynamoDbLocal, DynamoDbLocalOptions } from './dynamodb-local';
