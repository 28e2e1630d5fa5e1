/**
 * The plugin SDK's public types. They are declared here, on their own, so the published
 * declarations (lib/sdk/*.d.ts) need nothing but TypeScript itself (no `aws-lambda` or AWS SDK
 * types). plugin-handler.ts checks at compile time that the orchestrator's own status and message
 * types (lambda/shared/status.ts) fit them, so the two cannot drift apart.
 */

/** The states a plugin's entry in the status document can hold. */
export type PluginState = 'Not Started' | 'In Progress' | 'Complete' | 'Error' | 'Do Not Run';

/** The states of a stage, an activity or the run (a plugin's states plus the two summaries). */
export type SummaryState = PluginState | 'Mandatory Completed' | 'Optional Task Error';

/** An activity's stages, in the order they run: `pre`, `async` (the parallel stage), `post`. */
export type StageKey = 'pre' | 'async' | 'post';

/** Whether the stage waits for a plugin (`mandatory`) or only records it (`optional`). */
export type PluginKind = 'mandatory' | 'optional';

/** One plugin's entry: `activities.<activity>.<stage>.<kind>.<pluginName>`. */
export interface PluginEntry {
  readonly state: PluginState;
  /** Why it failed (at most 180 characters). */
  readonly message?: string;
  /** Failed invocations so far (PRE/POST plugins). */
  readonly attempts?: number;
  readonly updatedAt?: string;
}

/** One stage of an activity in the status document. */
export interface StageView {
  readonly status: { readonly state: SummaryState; readonly message?: string; readonly startTime?: string };
  readonly mandatory: { readonly [pluginName: string]: PluginEntry };
  readonly optional: { readonly [pluginName: string]: PluginEntry };
}

/** One activity in the status document. */
export interface ActivityView {
  readonly status: { readonly state: SummaryState; readonly message?: string };
  readonly pre: StageView;
  readonly async: StageView;
  readonly post: StageView;
}

/** The fields the orchestrator puts in every plugin message (they win over metadata fields of the same name). */
export interface PluginMessageFields {
  /** The work item the run is about (e.g. an application number). */
  readonly uid: string;
  /** The workflow of the run. */
  readonly workflow: string;
  /** The activity whose stage sent the message. */
  readonly activity: string;
  /** The stage that sent the message. */
  readonly stage: StageKey;
  /** The state of the whole run. */
  readonly status: { readonly state: SummaryState };
  /** Every activity of the run, with its stages and plugin entries (always complete in the SDK: see `truncated`). */
  readonly activities: { readonly [activity: string]: ActivityView };
  /** When the stage sent the message (ISO 8601). */
  readonly now: string;
  /**
   * Set on a message the orchestrator shortened to fit SNS (256 KB). The SDK then reads the status
   * item and hands the handler the complete message, so a handler never sees it set.
   */
  readonly truncated?: true;
}

/**
 * The message a plugin handler receives: the run's metadata fields (the workflow's input
 * `metadata`, typed by `M`) plus the orchestrator's fields.
 *
 * @typeParam M the run's metadata fields, e.g. `{ amount: number; customer: string }`
 */
export type PluginMessage<M extends object = Record<string, unknown>> =
  Readonly<Omit<M, keyof PluginMessageFields>> & PluginMessageFields;

/** Per-activity configuration a plugin announces in its `initialize` answer. */
export interface PluginOverride {
  /** Whether this activity's stage waits for the plugin. */
  readonly mandatory?: boolean;
  /** Position in this activity's PRE/POST stage. */
  readonly order?: number;
}

/**
 * How a plugin describes itself (behaviour.md "Plugin message and plugin protocol"). The SDK answers
 * an `{ "initialize": true }` message with it; when the plugin is added with `activity.addPlugin`,
 * the options given there are what the orchestrator uses, and `pluginName` must be the same.
 */
export interface PluginConfig {
  /**
   * The plugin's name: its key in the status document and in the plugin registry. 1-64 characters
   * from `A-Z a-z 0-9 - _`; the same as `pluginName` in `activity.addPlugin`.
   */
  readonly pluginName: string;
  /**
   * Whether the stage waits for the plugin.
   *
   * @default true
   */
  readonly mandatory?: boolean;
  /**
   * PRE/POST plugins run lowest `order` first. A whole number from 0 to 1,000,000.
   *
   * @default 90
   */
  readonly order?: number;
  /**
   * Per-activity `mandatory` / `order`.
   *
   * @default - none
   */
  readonly overrides?: { readonly [activity: string]: PluginOverride };
  /**
   * Run the handler even when the plugin's entry is already final (`Complete`, `Do Not Run` or
   * `Error`). Its state reports are then refused (a final entry never changes in a run) and logged.
   *
   * @default false
   */
  readonly alwaysRun?: boolean;
  /**
   * `true`: before running, the SDK makes sure from the status item itself (not only from the
   * message, which a repeated delivery may carry stale) that the work is not already done: its
   * `In Progress` report is conditional and returns the stored item, and a refused report (the
   * entry is already final) skips the work. `false`: the SDK decides from the message alone and
   * runs the handler even when its `In Progress` report is refused.
   *
   * @default true
   */
  readonly idempotent?: boolean;
  /**
   * Seconds an orchestrator may wait for this optional plugin to register (run-time registration).
   *
   * @default - none
   */
  readonly pluginRegisterTimeout?: number;
  /**
   * What the plugin does, for people reading the registry.
   *
   * @default - none
   */
  readonly description?: string;
  /**
   * Queue bridge: the metadata field whose value is the FIFO message group (runs with the same
   * value are worked one at a time, in order).
   *
   * @default - standard queue; with a FIFO queue, the group is the run's uid
   */
  readonly fifoKey?: string;
  /**
   * The status table the plugin reports to.
   *
   * @default - the environment variable `CDK_ORCHESTRATOR_STATUS_TABLE`, which `activity.addPlugin`
   * sets (with `reportsStatus: true`)
   */
  readonly statusTableName?: string;
}

/** The `initialize` answer: the configuration with every default filled in. */
export interface PluginInitialization {
  readonly pluginName: string;
  readonly mandatory: boolean;
  readonly order: number;
  readonly overrides: { readonly [activity: string]: PluginOverride };
  readonly alwaysRun: boolean;
  readonly idempotent: boolean;
  readonly pluginRegisterTimeout?: number;
  readonly description?: string;
  readonly fifoKey?: string;
}

/**
 * What a handler may return. Nothing (or `{ state: 'Complete' }`) records `Complete`;
 * `{ state: 'Do Not Run', message? }` records that the run needs nothing from this plugin. A
 * business failure is a thrown `PluginBusinessError`.
 */
export interface PluginResult {
  readonly state: 'Complete' | 'Do Not Run';
  readonly message?: string;
}

/** Where a message came from. */
export type PluginMessageSource = 'sns' | 'sqs' | 'direct';

/** The parts of the Lambda context the SDK passes on (the full context object is passed as is). */
export interface LambdaContextLike {
  readonly awsRequestId?: string;
  readonly functionName?: string;
  getRemainingTimeInMillis?(): number;
}

/** What the handler gets besides the message. */
export interface PluginContext {
  /** The plugin's name (`PluginConfig.pluginName`). */
  readonly pluginName: string;
  /** Whether the stage waits for this plugin in this run. */
  readonly kind: PluginKind;
  /** SNS delivery (PARALLEL; also the shape PRE/POST plugins are invoked with), SQS (queue bridge) or a direct invocation. */
  readonly source: PluginMessageSource;
  /** The Lambda context of the invocation (undefined when called without one, e.g. in a test). */
  readonly lambdaContext?: LambdaContextLike;
}

/** A plugin handler: does the work for one run; throws `PluginBusinessError` for a business failure. */
export type PluginWork<M extends object> =
  (message: PluginMessage<M>, context: PluginContext) => Promise<PluginResult | void> | PluginResult | void;

/**
 * What the SDK returns to Lambda for one plugin message: the state the plugin's entry holds
 * afterwards. The orchestrator's own recording of the invocation result (PRE/POST: sequential-stage;
 * PARALLEL: the Lambda destination handler) reads the same state, so it agrees with the SDK's own
 * report and never overwrites it.
 */
export interface PluginOutcome {
  readonly state: PluginState;
  /** The failure's message (`Error`) or the handler's message. */
  readonly message?: string;
  /** The handler did not run: the entry was already final (or the plugin has no entry in the run). */
  readonly skipped: boolean;
  /** Whether the SDK's own report of `state` was written (false: refused, the entry already held a final state). */
  readonly reported: boolean;
}

/** The answer to an SQS batch: the messages to deliver again (partial batch failure). */
export interface SqsBatchResponse {
  readonly batchItemFailures: ReadonlyArray<{ readonly itemIdentifier: string }>;
}

/** What the wrapped handler returns, by event: initialize, one message (SNS or direct), an SQS batch. */
export type PluginInvocationResult = PluginInitialization | PluginOutcome | SqsBatchResponse;

/** The Lambda handler `pluginHandler` builds. */
export type PluginLambdaHandler = (event: unknown, context?: LambdaContextLike) => Promise<PluginInvocationResult>;
