/**
 * cdk-orchestrator-local: runs a synthesized cdk-orchestrator app on one machine (DynamoDB Local,
 * the synthesized state machines, the functions' own code) — the test API. The CLI is `cli.ts`.
 */
export * from './engine';
export { startDynamoDbLocal } from './dynamodb-local';
export type { DynamoDbLocal, DynamoDbLocalOptions } from './dynamodb-local';
export { globalSetup, globalTeardown, SHARED_DYNAMODB_ENDPOINT_ENV } from './jest/shared-dynamodb';
export { preflight } from './preflight';
export type { Problem, PreflightOptions, PreflightResult } from './preflight';
export { renderReport, reportBars } from './report/report';
export type { ReportBar, ReportData } from './report/report';
