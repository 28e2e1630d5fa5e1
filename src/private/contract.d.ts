/**
 * What the constructs (src/) and the handlers (lambda/) must agree on, written once. No imports:
 * esbuild inlines this module into the handler bundles, jsii compiles it with the constructs.
 */
/** Plugins one stage may have: the status item must stay under DynamoDB's 400 KB (DESIGN.md "Status item size"). */
export declare const MAX_PLUGINS_PER_STAGE = 100;
/** Plugin entries one run may hold (DESIGN.md "Status item size"). */
export declare const MAX_PLUGIN_ENTRIES_PER_RUN = 300;
/** The error a sequential stage fails an attempt with while the plugin that failed has retries left. */
export declare const PLUGIN_INVOCATION_FAILED = "PluginInvocationFailed";
/**
 * Step Functions retries of one sequential-stage task that cover every plugin's own retries: the
 * handler counts attempts per plugin and throws `PluginInvocationFailed` only while the plugin that
 * failed has retries left, so the state's budget is `pluginRetries` for each plugin the stage may have.
 */
export declare function sequentialStageRetryBudget(pluginRetries: number): number;
