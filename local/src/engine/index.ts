/** The local engine's public surface (not part of the jsii API). */
export { LocalEngine, UnsupportedRuntimeError } from './engine';
export type { EngineCounters, ExecutionHandle, ExecutionResult, LocalEngineOptions } from './engine';
export { orchestratorShape } from './shape';
export type { OrchestratorShape } from './shape';
export { AssemblyLoadError } from './assembly';
export { UnsupportedIntrinsicError, SUPPORTED_INTRINSICS } from './intrinsics';
export type { TimelineEvent } from './timeline';
export type { FunctionStats } from './function-host';
export type { LambdaApiCounters } from './lambda-service';
export { formatEvent } from './timeline';
export { loadAssembly } from './assembly';
export type { LocalAssembly } from './assembly';
export { DYNAMODB_ERROR_STATUS } from './fault-injection';
export type { DynamoDbFault, DynamoDbFaultRule, DynamoDbRequest } from './fault-injection';
export { AuthorizationUnavailableError } from './iam/enforcement';
export type { AuthorizationMode, AwsClientConfig, Denial } from './iam/enforcement';
