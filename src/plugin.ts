import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct } from 'constructs';
import { ActivityStage } from './activity-stage';
import { PLUGIN_DEFAULTS } from './defaults';
import { complianceOf, providerPlacement } from './private/compliance';
import { KMS_TABLE_WRITE_ACTIONS } from './private/grants';
import { acknowledgeWildcards, KMS_ACTIONS_WILDCARD } from './private/nag';
import { buildParallelPlugin } from './private/parallel-plugin';
import { PluginFunction } from './private/plugin-function';
import { PluginTarget } from './private/plugin-wiring';
import { buildQueuePlugin } from './private/queue-bridge';
import { acknowledgeProviderFunction, registrationProvider } from './private/registration-provider';
import { ResolvedPluginOptions, ResolvedWiring, resolvePluginOptions } from './private/resolve-plugin';
import { buildSequentialPlugin } from './private/sequential-plugin';

/**
 * How a plugin serves an activity: `activity.addPlugin(handler, options)`.
 */
export interface PluginOptions {
  /** The stage the plugin serves. */
  readonly stage: ActivityStage;

  /**
   * The plugin's name: its key in the status document
   * (`activities.<activity>.<stage>.mandatory|optional.<pluginName>`) and in the plugin registry.
   * 1-64 characters from `A-Z a-z 0-9 - _`, unique per activity and stage.
   */
  readonly pluginName: string;

  /**
   * Whether the stage waits for the plugin. A failed optional plugin is recorded (`Error`, the
   * stage ends `Optional Task Error`) but never fails the activity.
   *
   * @default true
   */
  readonly mandatory?: boolean;

  /**
   * PRE and POST only: plugins of a sequential stage run one at a time, lowest `order` first (then
   * by name). A whole number from 0 to 1,000,000. Setting it for a PARALLEL plugin is an error.
   *
   * @default 90
   */
  readonly order?: number;

  /**
   * PARALLEL only: the SNS subscription filter policy on the message attributes (the run's first
   * 10 scalar metadata fields). A run whose message the policy rejects never reaches the plugin:
   * the parallel stage records it `Do Not Run` and does not wait for it. Setting it for a PRE or
   * POST plugin is an error.
   *
   * @default - the plugin receives every run's message
   */
  readonly filterPolicy?: { [attribute: string]: sns.SubscriptionFilter };

  /**
   * After how long the plugin counts as `Error` (stored as `timeoutSeconds` in the registry).
   * PRE/POST (1 second to 4.5 minutes): bounds each synchronous invocation by sequential-stage.
   * PARALLEL (1 minute to 6 hours): the plugin's maximum event age, so Lambda stops retrying it
   * after this long and its on-failure destination records `Error`; an attempt that already runs is
   * bounded by the function's own timeout.
   *
   * @default - PRE/POST: the invocation is bounded by the function's own timeout; PARALLEL: Lambda's default event age (6 hours)
   */
  readonly timeout?: Duration;

  /**
   * PARALLEL only: deliver through a queue bridge, for slow or throttled work. The stack's bridge
   * function receives the parallel stage's message, marks the plugin `In Progress` and sends the
   * message (body and message attributes unchanged) to the plugin's own SQS queue (SSL-only,
   * encrypted with the orchestrator's key when it has one); the plugin consumes it through an event
   * source (one message per invocation) and reports its state itself (the plugin SDK or the status
   * protocol: a return value is not recorded). A message the plugin fails on 3 times goes to the
   * queue's dead-letter queue and the plugin is recorded `Error`. PRE/POST plugins are invoked
   * synchronously by their stage, so `queue` is an error there; so is `timeout` (a queued message
   * waits until the plugin takes it: bound the stage with the activity's `parallelTimeout`).
   *
   * @default false
   */
  readonly queue?: boolean;

  /**
   * Queue plugins only: makes the queue FIFO. Messages with the same value of this metadata field
   * (the message group) reach the plugin one at a time, in the order their runs reached the stage;
   * a run whose metadata lacks the field (or holds no string, number or boolean there) is grouped
   * by its `uid`. Setting it without `queue: true` is an error.
   *
   * @default - a standard queue (no ordering)
   */
  readonly fifoKey?: string;

  /**
   * The plugin reports its own state to the status document, as the TypeScript plugin SDK
   * (`cdk-orchestrator/lib/sdk`) does. The function's role may then `dynamodb:GetItem` and
   * `dynamodb:UpdateItem` the status table (and use its key), and its environment variable
   * `CDK_ORCHESTRATOR_STATUS_TABLE` names the table (a `lambda.Function`; set it yourself on an
   * imported one). A PARALLEL plugin's successful invocations are then not reported again through
   * its Lambda destination (no orchestrator invocation per run); failures still are (a crash after
   * its retries is recorded `Error`). Do not set it for a plugin that only returns its result: its
   * success would never be recorded.
   *
   * @default - true for a queue plugin (it reports itself), false otherwise
   */
  readonly reportsStatus?: boolean;
}

/**
 * A plugin of one stage of one activity: created by `activity.addPlugin(handler, options)`, as a
 * child of the plugin function, so every resource lives in the plugin's stack (which refers to the
 * orchestrator's stack, never the reverse). It holds:
 *
 * - PARALLEL: the SNS subscription of the function to the activity's parallel topic (with the
 *   filter policy) and the permission for SNS to invoke it; the function's asynchronous invocation
 *   reports its outcome to the orchestrator's `plugin-outcome` handler (Lambda destinations,
 *   2 retries), so a plugin that uses no orchestrator code needs nothing else;
 * - PARALLEL with `queue`: the plugin's queue and dead-letter queue, its event source on the queue,
 *   and the stack's queue bridge function's subscription to the parallel topic (DESIGN.md "Queue bridge");
 * - PRE/POST: a statement in the function's resource policy letting the orchestrator's
 *   sequential-stage role invoke it;
 * - the plugin's registry item, written at deploy time (`Custom::AWS`, DynamoDB PutItem) and deleted
 *   with the plugin.
 */
export class ActivityPlugin extends Construct {
  /**
   * Validates the options and creates the plugin.
   *
   * @internal
   */
  public static _create(handler: lambda.IFunction, target: PluginTarget, options: PluginOptions): ActivityPlugin {
    const { options: resolved, wiring } = resolvePluginOptions(target, handler, options);
    let id = `Plugin-${target.activityName}-${resolved.stageKey}`;
    // The same function in a same-named activity of another orchestrator: a distinct construct.
    for (let n = 2; handler.node.tryFindChild(id); n++) id = `Plugin-${target.activityName}-${resolved.stageKey}-${n}`;
    const plugin = new ActivityPlugin(handler, id, handler, target, resolved, wiring);
    target.book.add(resolved.stageKey, resolved.pluginName, handler);
    return plugin;
  }

  /** The activity the plugin serves. */
  public readonly activityName: string;
  /** The stage the plugin serves. */
  public readonly stage: ActivityStage;
  /** The plugin's name in the status document and the registry. */
  public readonly pluginName: string;
  /** Whether the stage waits for the plugin. */
  public readonly mandatory: boolean;
  /** Position in a PRE/POST stage (the default, 90, for PARALLEL plugins). */
  public readonly order: number;
  /** The subscription to the parallel topic (PARALLEL plugins only; a queue plugin's is its bridge's). */
  public readonly subscription?: sns.Subscription;
  /** A queue plugin's queue (FIFO when it has a `fifoKey`). */
  public readonly queue?: sqs.IQueue;
  /** A queue plugin's dead-letter queue: messages the plugin failed on 3 times (their plugin is recorded `Error`). */
  public readonly deadLetterQueue?: sqs.IQueue;
  /** The deploy-time registry write (PutItem on create and update, DeleteItem on delete). */
  public readonly registration: cr.AwsCustomResource;

  private constructor(scope: Construct, id: string, handler: lambda.IFunction, target: PluginTarget,
    options: ResolvedPluginOptions, wiring: ResolvedWiring) {
    super(scope, id);
    this.activityName = target.activityName;
    this.stage = options.stage;
    this.pluginName = options.pluginName;
    this.mandatory = options.mandatory;
    this.order = options.order;

    // One small builder per kind; each returns what the registry item records and must wait for.
    const parts = options.queue ? buildQueuePlugin(this, handler, target, options, wiring)
      : options.stage === ActivityStage.PARALLEL ? buildParallelPlugin(this, handler, target, options, wiring)
        : buildSequentialPlugin(handler, wiring);
    this.subscription = parts.subscription;
    this.queue = parts.queue;
    this.deadLetterQueue = parts.deadLetterQueue;
    const subscriptionArn = parts.subscriptionArn;
    const dependencies = [...parts.dependencies];
    if (options.reportsStatus) dependencies.push(PluginFunction.of(handler).reportStatusAccess(target.where, wiring.statusTable!));
    // The policy SNS evaluates (as the Subscription renders it), as JSON: parallel-stage evaluates it
    // to skip the plugins a run's message cannot reach.
    const filterPolicyJson = options.filterPolicy ? Stack.of(this).toJsonString(renderFilterPolicy(options.filterPolicy)) : undefined;

    const orchestratorId = `${target.activityName}|${options.stageKey}`;
    const table = wiring.pluginTable;
    const item: Record<string, Record<string, unknown>> = {
      orchestratorId: { S: orchestratorId },
      subscriptionArn: { S: subscriptionArn },
      functionName: { S: handler.functionName },
      functionArn: { S: handler.functionArn },
      pluginName: { S: options.pluginName },
      mandatory: { BOOL: options.mandatory },
      order: { N: String(options.order) },
      source: { S: PLUGIN_DEFAULTS.source },
    };
    if (options.timeoutSeconds !== undefined) item.timeoutSeconds = { N: String(options.timeoutSeconds) };
    if (filterPolicyJson !== undefined) item.filterPolicy = { S: filterPolicyJson };
    Object.assign(item, parts.registryFields);
    const put: cr.AwsSdkCall = {
      service: 'DynamoDB',
      action: 'putItem',
      parameters: { TableName: table.tableName, Item: item },
      // A new key (e.g. a replaced subscription) is a new physical id: CloudFormation then deletes the old item.
      physicalResourceId: cr.PhysicalResourceId.of(`${orchestratorId}|${subscriptionArn}`),
    };
    const statements = [new iam.PolicyStatement({ actions: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], resources: [table.tableArn] })];
    if (table.encryptionKey) {
      statements.push(new iam.PolicyStatement({ actions: KMS_TABLE_WRITE_ACTIONS, resources: [table.encryptionKey.keyArn] }));
    }
    // The orchestrator's settings, found from its activity's topic (none for an imported orchestrator).
    const compliance = complianceOf(target.parallelTopic);
    const provider = registrationProvider(this, compliance);
    this.registration = new cr.AwsCustomResource(this, 'Registration', {
      onCreate: put,
      onUpdate: put,
      onDelete: {
        service: 'DynamoDB',
        action: 'deleteItem',
        parameters: { TableName: table.tableName, Key: { orchestratorId: item.orchestratorId, subscriptionArn: item.subscriptionArn } },
        // The registry may already be gone with its orchestrator.
        ignoreErrorCodesMatching: 'ResourceNotFoundException',
      },
      policy: cr.AwsCustomResourcePolicy.fromStatements(statements),
      installLatestAwsSdk: false,
      // The stack's provider runs with a role and log group of ours (no managed policy); this policy is attached to that role.
      role: provider.role,
      logGroup: provider.logGroup,
      // The orchestrator's VPC (docs/COMPLIANCE.md); 256 MB, not Lambda's default 128 (cdk-nag Serverless).
      ...providerPlacement(compliance),
      memorySize: 256,
    });
    acknowledgeWildcards(this.registration, [KMS_ACTIONS_WILDCARD]);
    acknowledgeProviderFunction(this);
    // Registered only once it can be invoked (and, PARALLEL, once its outcomes are reported).
    this.registration.node.addDependency(...dependencies);
  }
}

function renderFilterPolicy(policy: { [attribute: string]: sns.SubscriptionFilter }): Record<string, unknown[]> {
  return Object.fromEntries(Object.entries(policy).map(([attribute, filter]) => [attribute, filter.conditions]));
}
