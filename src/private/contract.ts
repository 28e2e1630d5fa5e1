/**
 * What the constructs (src/) and the handlers (lambda/) must agree on, written once. No imports:
 * esbuild inlines this module into the handler bundles, jsii compiles it with the constructs.
 */

/** Plugins one stage may have: the status item must stay under DynamoDB's 400 KB (DESIGN.md "Status item size"). */
export const MAX_PLUGINS_PER_STAGE = 100;

/** Plugin entries one run may hold (DESIGN.md "Status item size"). */
export const MAX_PLUGIN_ENTRIES_PER_RUN = 300;

/** The error a sequential stage fails an attempt with while the plugin that failed has retries left. */
export const PLUGIN_INVOCATION_FAILED = 'PluginInvocationFailed';

/**
 * Step Functions retries of one sequential-stage task that cover every plugin's own retries: the
 * handler counts attempts per plugin and throws `PluginInvocationFailed` only while the plugin that
 * failed has retries left, so the state's budget is `pluginRetries` for each plugin the stage may have.
 */
export function sequentialStageRetryBudget(pluginRetries: number): number {
  return pluginRetries * MAX_PLUGINS_PER_STAGE;
}

/** Environment variables the constructs set and the handlers read (DESIGN.md "Handler environment"). */
export const ENV = {
  statusTableName: 'STATUS_TABLE_NAME',
  pluginTableName: 'PLUGIN_TABLE_NAME',
  /** The `orchestrator` dimension of every handler metric. */
  orchestratorName: 'ORCHESTRATOR_NAME',
  /** plugin-registrar: `cdk-orchestrator:<orchestratorName>=plugin`. */
  pluginTag: 'PLUGIN_TAG',
  /** plugin-registrar: how long it waits for a plugin's `initialize` answer. */
  handshakeTimeoutSeconds: 'HANDSHAKE_TIMEOUT_SECONDS',
  /** stuck-runs: after how long an unfinished run is reported. */
  stuckAfterSeconds: 'STUCK_AFTER_SECONDS',
  /** The status table of a plugin that reports its own state (`reportsStatus: true`; the plugin SDK reads it). */
  pluginStatusTable: 'CDK_ORCHESTRATOR_STATUS_TABLE',
  powertoolsServiceName: 'POWERTOOLS_SERVICE_NAME',
  powertoolsMetricsNamespace: 'POWERTOOLS_METRICS_NAMESPACE',
  powertoolsLogLevel: 'POWERTOOLS_LOG_LEVEL',
} as const;

/** POWERTOOLS_SERVICE_NAME of every handler: the `service` key of its logs and dimension of its metrics. */
export const SERVICE_NAME = 'cdk-orchestrator';

/** POWERTOOLS_METRICS_NAMESPACE of every handler: the CloudWatch namespace of the handler metrics (EMF). */
export const METRICS_NAMESPACE = 'CdkOrchestrator';

/** The handler metrics (DESIGN.md "Observability"). */
export const METRIC = {
  /** start-run created a run. */
  RUN_STARTED: 'RunStarted',
  /** start-run reset an existing run for a re-run. */
  RUN_RESTARTED: 'RunRestarted',
  /** A stage started (not counted when a re-run skips a stage that is done). */
  STAGE_STARTED: 'StageStarted',
  /** A stage let the activity go on (pre/post: settled; parallel: the waiting task was answered with success). */
  STAGE_COMPLETED: 'StageCompleted',
  /** An activity execution failed in a stage (counted once, by stage-failure, the state machine's Catch). */
  STAGE_FAILED: 'StageFailed',
  /** A plugin invocation failed or a plugin reported `Error` (pre/post: every failed attempt). */
  PLUGIN_ERRORS: 'PluginErrors',
  /** Seconds from the start of a parallel stage until every plugin is done (counted when the stage settles). */
  PARALLEL_STAGE_DURATION: 'ParallelStageDuration',
  /** plugin-registrar registered (or refreshed) a plugin subscribed outside CDK after its initialize handshake. */
  PLUGIN_REGISTERED: 'PluginRegistered',
  /** plugin-registrar: a plugin's initialize handshake threw, timed out or answered garbage (the item records why). */
  PLUGIN_REGISTRATION_FAILED: 'PluginRegistrationFailed',
  /** plugin-registrar removed a run-time registration (Unsubscribe). */
  PLUGIN_UNREGISTERED: 'PluginUnregistered',
  /** stuck-runs reported runs not finished `stuckAfter` after they started (each run once). */
  STUCK_RUNS: 'StuckRuns',
} as const;

/** Dimensions of the handler metrics: CloudWatch matches a query only with exactly the published ones. */
export const METRIC_DIMENSION = {
  service: 'service',
  orchestrator: 'orchestrator',
  activity: 'activity',
  workflow: 'workflow',
} as const;

/** Status table keys and TTL attribute (DESIGN.md "Resources"). */
export const STATUS_TABLE_KEYS = { partitionKey: 'uid', sortKey: 'workflow', timeToLive: 'expiresAt' } as const;

/** Plugin registry keys and the index on `functionName` (DESIGN.md "Plugin registry item"). */
export const PLUGIN_TABLE_KEYS = { partitionKey: 'orchestratorId', sortKey: 'subscriptionArn', functionNameIndex: 'functionName', functionName: 'functionName' } as const;

/**
 * The sparse open-run index of the status table (DESIGN.md "Operations"): start-run writes the
 * attributes, stuck-runs queries them. Part of the deployed contract: never change them.
 */
export const OPEN_RUNS = { indexName: 'openRuns', shardAttribute: 'openShard', openedAtAttribute: 'openedAt' } as const;

/** `source` and `detail-type` of the events stuck-runs puts on the default bus. */
export const STUCK_RUN_EVENT = { source: 'cdk-orchestrator', detailType: 'Orchestrator Run Stuck' } as const;

/** Plugin names (`pluginName`, a handshake's answer): they key the plugin's status entries. */
export const PLUGIN_NAME_MAX_LENGTH = 64;

/** A PRE/POST plugin's `order`: a whole number in this range. */
export const ORDER_RANGE = { min: 0, max: 1_000_000 } as const;

/**
 * `fifoKey` (addPlugin and the handshake): the name of the metadata field whose value is the FIFO
 * message group (docs/PLUGIN-PROTOCOL.md).
 */
export const FIFO_KEY_MAX_LENGTH = 128;

/** Registry item fields with a fixed meaning (DESIGN.md "Plugin registry item"). */
export const REGISTRY = {
  /** `source` of the items written at deploy time (`addPlugin`). */
  cdkSource: 'cdk',
  /** `source` of the items the plugin-registrar writes. */
  runtimeSource: 'runtime',
  /** A plugin without `order` runs at 90 (the seed's default). */
  defaultOrder: 90,
  defaultMandatory: true,
} as const;
