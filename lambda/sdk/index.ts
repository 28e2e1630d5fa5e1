/**
 * cdk-orchestrator plugin SDK: `import { pluginHandler, PluginBusinessError } from 'cdk-orchestrator/lib/sdk'`.
 *
 * A TypeScript plugin wraps its work with `pluginHandler`; the SDK answers the `initialize`
 * handshake, skips work already done, reports `In Progress` / `Complete` / `Error` to the run's
 * status document, and tells business failures (`PluginBusinessError`: recorded, not retried) from
 * crashes (rethrown for Lambda to retry). Built into lib/sdk/index.js by scripts/bundle-handlers.mjs
 * (the AWS SDK v3 is left to the Lambda runtime).
 */
export { pluginHandler } from './plugin-handler';
export { PluginBusinessError, PluginNotInRun, InvalidPluginConfig, InvalidPluginEvent } from './errors';
import { PLUGIN_STATUS_TABLE_ENV as STATUS_TABLE_ENV } from '../shared/environment';
export type {
  ActivityView, LambdaContextLike, PluginConfig, PluginContext, PluginEntry, PluginInitialization, PluginInvocationResult,
  PluginKind, PluginLambdaHandler, PluginMessage, PluginMessageFields, PluginMessageSource, PluginOutcome, PluginOverride,
  PluginResult, PluginState, PluginWork, SqsBatchResponse, StageKey, StageView, SummaryState,
} from './types';

/**
 * The environment variable holding the status table's name (set by `activity.addPlugin` with
 * `reportsStatus: true`).
 */
export const PLUGIN_STATUS_TABLE_ENV: 'CDK_ORCHESTRATOR_STATUS_TABLE' = STATUS_TABLE_ENV;
