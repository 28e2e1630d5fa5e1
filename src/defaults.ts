// Every default of the library, in one place (the aws-solutions-constructs idiom). Constructs read
// their defaults from here and merge user overrides on top; nothing else hard-codes a value.
// Not exported from index.ts: the documented defaults are on the props (`@default`).
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import {
  ENV, FIFO_KEY_MAX_LENGTH, METRICS_NAMESPACE, ORDER_RANGE, PLUGIN_INVOCATION_FAILED, PLUGIN_NAME_MAX_LENGTH, PLUGIN_TABLE_KEYS, REGISTRY,
  SERVICE_NAME, STATUS_TABLE_KEYS,
} from './private/contract';

/** Per-activity behaviour (overridable per activity). */
export const ACTIVITY_DEFAULTS = {
  parallelTimeout: Duration.hours(1),
  parallelHeartbeat: Duration.minutes(15),
  pluginRetries: 2,
};

/** Retry of a failed plugin invocation in a sequential stage (Step Functions Retry, no Lambda sleeps). */
export const PLUGIN_RETRY = {
  errors: [PLUGIN_INVOCATION_FAILED],
  interval: Duration.seconds(1),
  backoffRate: 2,
  /** The state's retries are shared by its plugins: later plugins do not wait minutes for their first retry. */
  maxDelay: Duration.seconds(30),
};

/**
 * A handler whose DynamoDB request was still throttled after the SDK's own retries fails with the
 * SDK's error name; the task is retried (the handlers are idempotent: conditional writes, finished
 * stages skipped), so a throttled table delays a run but never fails it. 1, 2, 4, 8, 16 s.
 */
export const THROTTLE_RETRY = {
  errors: ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'],
  interval: Duration.seconds(1),
  backoffRate: 2,
  maxAttempts: 5,
};

/** Limits enforced at synth time. */
export const LIMITS = {
  /** Activity names: SNS topic names and a state machine name derive from them. */
  activityNameMaxLength: 64,
  /** orchestratorName and workflowName. */
  nameMaxLength: 64,
  /** AWS limit for a state machine name (`<orchestratorName>-<activity>`). */
  stateMachineNameMaxLength: 80,
  /** Length of the generated default orchestratorName, so any valid activity name fits in 80 characters. */
  defaultOrchestratorNameMaxLength: 15,
  /** Step Functions standard workflows run at most one year. */
  maxTimeout: Duration.days(365),
  maxPluginRetries: 10,
  /** statusRetention: start-run sets the TTL in whole days. */
  minStatusRetentionDays: 1,
  maxStatusRetentionDays: 3650,
};

/** `addPlugin` defaults and limits (DESIGN.md "Deploy-time plugin registration"). */
export const PLUGIN_DEFAULTS = {
  mandatory: REGISTRY.defaultMandatory,
  /** The registry reader assumes it for items without `order`. */
  order: REGISTRY.defaultOrder,
  /** Asynchronous retries of a PARALLEL plugin before its on-failure destination records `Error`. */
  retryAttempts: 2,
  /** `registry.source` of the items written at deploy time. */
  source: REGISTRY.cdkSource,
};

export const PLUGIN_LIMITS = {
  pluginNameMaxLength: PLUGIN_NAME_MAX_LENGTH,
  /** `order`: a whole number in this range. */
  minOrder: ORDER_RANGE.min,
  maxOrder: ORDER_RANGE.max,
  /** PRE/POST: the invocation must end while sequential-stage (5 minutes) can still record it. */
  minSequentialTimeout: Duration.seconds(1),
  maxSequentialTimeout: Duration.seconds(270),
  /** PARALLEL: Lambda's maximum event age range (the timeout becomes the plugin's maximum event age). */
  minParallelTimeout: Duration.minutes(1),
  maxParallelTimeout: Duration.hours(6),
};

/** Names: what `[A-Za-z0-9_-]` allows, shared by SNS topic and state machine names. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]+$/;

/** State names of the workflow state machine besides the activities (an activity must not reuse one). */
export const WORKFLOW_STATE_NAMES = {
  startRun: 'StartRun',
  activityFailed: 'ActivityFailed',
  failed: 'Failed',
  succeeded: 'Succeeded',
};

/** State names of every activity state machine. */
export const ACTIVITY_STATE_NAMES = {
  pre: 'Pre',
  parallel: 'Parallel',
  post: 'Post',
  recordFailure: 'RecordFailure',
  failed: 'Failed',
};

/** Status table schema (DESIGN.md "Resources"). */
export const STATUS_TABLE = {
  partitionKey: { name: STATUS_TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
  sortKey: { name: STATUS_TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
  timeToLiveAttribute: STATUS_TABLE_KEYS.timeToLive,
  stream: dynamodb.StreamViewType.NEW_AND_OLD_IMAGES,
};

/** Plugin registry table schema (DESIGN.md "Plugin registry item"). */
export const PLUGIN_TABLE = {
  partitionKey: { name: PLUGIN_TABLE_KEYS.partitionKey, type: dynamodb.AttributeType.STRING },
  sortKey: { name: PLUGIN_TABLE_KEYS.sortKey, type: dynamodb.AttributeType.STRING },
  functionNameIndex: PLUGIN_TABLE_KEYS.functionNameIndex,
  functionNameKey: { name: PLUGIN_TABLE_KEYS.functionName, type: dynamodb.AttributeType.STRING },
};

/** Data-bearing resources (tables, log groups, DLQ) are kept when the stack is deleted. */
export const DEFAULT_REMOVAL_POLICY = RemovalPolicy.RETAIN;

/** Log retention of the handler and state-machine log groups. */
export const DEFAULT_LOG_RETENTION = logs.RetentionDays.THREE_MONTHS;

/** Table props shared by both tables; keys and stream are added by the caller and cannot be overridden. */
export function defaultTableProps(encryptionKey: kms.IKey | undefined, removalPolicy: RemovalPolicy) {
  return {
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    encryption: encryptionKey ? dynamodb.TableEncryption.CUSTOMER_MANAGED : dynamodb.TableEncryption.AWS_MANAGED,
    encryptionKey,
    removalPolicy,
  };
}

/** The five shared handlers: bundle directory name and per-handler settings. */
export const HANDLERS = {
  startRun: { name: 'start-run', timeout: Duration.seconds(30), description: 'Initializes or resets the status item of a workflow run' },
  // Invokes pre/post plugins synchronously, one after the other: longer than a plugin invocation.
  sequentialStage: { name: 'sequential-stage', timeout: Duration.minutes(5), description: 'Runs the pre/post plugins of an activity stage in order' },
  parallelStage: { name: 'parallel-stage', timeout: Duration.seconds(30), description: 'Starts the parallel stage of an activity: stores the task token, publishes the plugin message' },
  statusSummary: { name: 'status-summary', timeout: Duration.minutes(1), description: 'Summarizes parallel stages from the status table stream and completes their tasks' },
  stageFailure: { name: 'stage-failure', timeout: Duration.seconds(30), description: 'Records a failed activity stage and rethrows its error' },
  // Lambda destination of every PARALLEL plugin added with addPlugin: one GetItem and one UpdateItem.
  pluginOutcome: { name: 'plugin-outcome', timeout: Duration.seconds(30), description: 'Records the outcome of a parallel plugin from its Lambda destination record' },
};

/** Settings common to every handler function. */
export const HANDLER_FUNCTION_DEFAULTS = {
  // The newest Node.js runtime Lambda offers (cdk-nag L1); bundles target node20, so older runtimes work too.
  runtime: lambda.Runtime.NODEJS_24_X,
  architecture: lambda.Architecture.ARM_64,
  memorySize: 256,
  tracing: lambda.Tracing.ACTIVE,
  handler: 'index.handler',
};

/** POWERTOOLS_LOG_LEVEL of every handler unless `logLevel` says otherwise. */
export const HANDLER_LOG_LEVEL = 'INFO';

/**
 * AWS's public SSM parameters naming its Powertools for AWS Lambda (TypeScript) layer, one per
 * release, in every commercial region: `<prefix><version>` holds that release's layer version ARN
 * (Powertools docs, "Lambda layers").
 */
export const POWERTOOLS_LAYER_PARAMETER_PREFIX = '/aws/service/powertools/typescript/generic/all/';

/**
 * Written by scripts/bundle-handlers.mjs next to the bundles: `{ version, packages }`, the
 * Powertools release the bundles were built and tested with and leave to the layer.
 */
export const POWERTOOLS_MANIFEST_FILE = 'powertools.json';

/** The Powertools environment every handler gets (DESIGN.md "Handler environment"). */
export function observabilityEnvironment(logLevel: string = HANDLER_LOG_LEVEL): Record<string, string> {
  return {
    [ENV.powertoolsServiceName]: SERVICE_NAME,
    [ENV.powertoolsMetricsNamespace]: METRICS_NAMESPACE,
    [ENV.powertoolsLogLevel]: logLevel,
  };
}

/** The status-summary DynamoDB stream event source. */
export const STATUS_SUMMARY_EVENT_SOURCE = {
  batchSize: 10,
  bisectBatchOnError: true,
  retryAttempts: 5,
  // TRIM_HORIZON: records written before the mapping is (re)created are still processed, so a
  // parallel stage that settled during a deployment is not left waiting for its timeout; the
  // handler is idempotent (writes conditioned on the token), so replaying old records is harmless.
  startingPosition: lambda.StartingPosition.TRIM_HORIZON,
};

/** Dead-letter queue of the status-summary event source. */
export const DLQ_RETENTION = Duration.days(14);

/** The queue bridge of `addPlugin(fn, { queue: true })` (DESIGN.md "Queue bridge"). */
export const QUEUE_BRIDGE = {
  handler: { name: 'queue-bridge', timeout: Duration.seconds(30), description: 'Queues parallel-stage plugin messages for queue plugins and records their dead letters' },
  /** Receives of a message before SQS moves it to the plugin's dead-letter queue (the plugin is then recorded `Error`). */
  maxReceiveCount: 3,
  /** One message (one run) per plugin invocation: a crash costs only that message a receive. */
  batchSize: 1,
  /** Dead letters are recorded `Error` and deleted; a batch of them is one bridge invocation. */
  deadLetterBatchSize: 10,
  /** AWS: a queue's visibility timeout should be 6 times its consumer function's timeout. */
  visibilityTimeoutFactor: 6,
  /** The queue's visibility timeout when the plugin function's timeout is not known (Lambda's maximum). */
  unknownFunctionTimeout: Duration.minutes(15),
  minVisibilityTimeout: Duration.seconds(30),
  maxVisibilityTimeout: Duration.hours(12),
  /** A message group comes from one metadata field, named by `fifoKey` (the handshake's limit too). */
  fifoKeyMaxLength: FIFO_KEY_MAX_LENGTH,
};
