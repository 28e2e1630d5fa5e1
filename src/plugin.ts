import { Annotations, Duration, Stack, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as cr from 'aws-cdk-lib/custom-resources';
import { Construct, IDependable } from 'constructs';
import { ActivityStage, ActivityStageKey } from './activity-stage';
import { PLUGIN_DEFAULTS, PLUGIN_LIMITS, QUEUE_BRIDGE } from './defaults';
import { ENV } from './private/contract';
import { grantTable, KMS_TABLE_WRITE_ACTIONS } from './private/grants';
import { acknowledgeWildcards, KMS_ACTIONS_WILDCARD } from './private/nag';
import { PluginTarget, PluginWiring } from './private/plugin-wiring';
import { createQueuePlugin } from './private/queue-bridge';
import { acknowledgeProviderFunction, registrationProvider } from './private/registration-provider';
import { quote, validateDuration, validateName } from './private/validation';

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

/** The environment variable naming the status table of a plugin that reports its own state (the plugin SDK reads it). */
const PLUGIN_STATUS_TABLE_ENV = ENV.pluginStatusTable;

/** What `ActivityPlugin._create` validated and defaulted. */
interface ResolvedPluginOptions {
  readonly stage: ActivityStage;
  readonly stageKey: string;
  readonly pluginName: string;
  readonly mandatory: boolean;
  readonly order: number;
  readonly timeoutSeconds?: number;
  readonly filterPolicy?: { [attribute: string]: sns.SubscriptionFilter };
  readonly queue: boolean;
  readonly fifoKey?: string;
  readonly reportsStatus: boolean;
}

/** Lambda destination (async invocation) to a function known by ARN. */
class FunctionArnDestination implements lambda.IDestination {
  constructor(private readonly functionArn: string) {}

  public bind(): lambda.DestinationConfig {
    return { destination: this.functionArn };
  }
}

/** Per plugin function: its outcome destinations (one EventInvokeConfig per function). */
const outcomeConfigs = new WeakMap<lambda.IFunction, { outcomeArn: string; maxEventAge?: number; reportsStatus: boolean; config: IDependable }>();
/** Per plugin function reporting its own state: the status table its environment names. */
const statusTableOfFunction = new WeakMap<lambda.IFunction, dynamodb.ITable>();
/** Per plugin function and sequential-stage role: the one resource-policy statement letting the role invoke it. */
const sequentialPermissions = new WeakMap<lambda.IFunction, Map<string, lambda.CfnPermission>>();

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
    const resolved = resolveOptions(target, handler, options);
    target.book.check(target.where, resolved.stageKey, resolved.pluginName, handler);
    const wiring = requireWiring(target, resolved);
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
    options: ResolvedPluginOptions, wiring: Required<Pick<PluginWiring, 'pluginTable'>> & PluginWiring) {
    super(scope, id);
    this.activityName = target.activityName;
    this.stage = options.stage;
    this.pluginName = options.pluginName;
    this.mandatory = options.mandatory;
    this.order = options.order;

    const dependencies: IDependable[] = [];
    let subscriptionArn: string;
    let filterPolicyJson: string | undefined;
    let queueFields: Record<string, Record<string, unknown>> = {};
    if (options.queue) {
      const queued = createQueuePlugin(this, handler, {
        statusTable: wiring.statusTable!,
        pluginTable: wiring.pluginTable,
        pluginOutcomeFunctionArn: wiring.pluginOutcomeFunctionArn!,
        encryptionKey: wiring.encryptionKey,
        powertoolsLayer: wiring.powertoolsLayer,
        orchestratorName: wiring.orchestratorName,
      }, {
        activityName: target.activityName,
        topic: target.parallelTopic,
        topicDependency: target.parallelTopicDependency,
        filterPolicy: options.filterPolicy,
        fifoKey: options.fifoKey,
      });
      this.subscription = queued.subscription;
      this.queue = queued.queue;
      this.deadLetterQueue = queued.deadLetterQueue;
      subscriptionArn = (queued.subscription.node.defaultChild as sns.CfnSubscription).ref;
      filterPolicyJson = options.filterPolicy ? Stack.of(this).toJsonString(renderFilterPolicy(options.filterPolicy)) : undefined;
      queueFields = queued.registryFields;
      dependencies.push(...queued.dependencies);
    } else if (options.stage === ActivityStage.PARALLEL) {
      const topic = target.parallelTopic;
      const snsPermission = new lambda.CfnPermission(this, 'SnsInvokePermission', {
        action: 'lambda:InvokeFunction',
        functionName: handler.functionArn,
        principal: 'sns.amazonaws.com',
        sourceArn: topic.topicArn,
      });
      const subscription = new sns.Subscription(this, 'Subscription', {
        topic,
        protocol: sns.SubscriptionProtocol.LAMBDA,
        endpoint: handler.functionArn,
        filterPolicy: options.filterPolicy,
      });
      // SNS must be allowed to invoke the function before the first message can arrive.
      subscription.node.addDependency(snsPermission);
      if (target.parallelTopicDependency) subscription.node.addDependency(target.parallelTopicDependency);
      this.subscription = subscription;
      subscriptionArn = (subscription.node.defaultChild as sns.CfnSubscription).ref;
      // The policy SNS evaluates (as the Subscription renders it), as JSON: parallel-stage evaluates it
      // to skip the plugins a run's message cannot reach.
      filterPolicyJson = options.filterPolicy ? Stack.of(this).toJsonString(renderFilterPolicy(options.filterPolicy)) : undefined;
      const outcomes = outcomeDestinations(target, handler, wiring.pluginOutcomeFunctionArn!, options.timeoutSeconds, options.reportsStatus);
      dependencies.push(snsPermission, outcomes);
    } else {
      dependencies.push(sequentialInvokePermission(handler, wiring.sequentialStageRoleArn!));
      subscriptionArn = `lambda:${handler.functionArn}`;
    }

    if (options.reportsStatus) dependencies.push(reportStatusAccess(target, handler, wiring.statusTable!));

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
    Object.assign(item, queueFields);
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
    const provider = registrationProvider(this);
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
    });
    acknowledgeWildcards(this.registration, [KMS_ACTIONS_WILDCARD]);
    acknowledgeProviderFunction(this);
    // Registered only once it can be invoked (and, PARALLEL, once its outcomes are reported).
    this.registration.node.addDependency(...dependencies);
  }
}

function resolveOptions(target: PluginTarget, handler: lambda.IFunction, options: PluginOptions): ResolvedPluginOptions {
  const name = typeof options.pluginName === 'string' && !Token.isUnresolved(options.pluginName) ? options.pluginName : '?';
  const where = `${target.where}: addPlugin ${quote(name)}`;
  validateName(where, 'pluginName', options.pluginName, PLUGIN_LIMITS.pluginNameMaxLength,
    'the plugin\'s entry in the status document and its registry item');
  const stage = options.stage;
  if (!ActivityStageKey.STAGES.includes(stage)) {
    throw new Error(`${where}: stage ${quote(stage)} is not an ActivityStage; use ActivityStage.PRE, ActivityStage.PARALLEL or ActivityStage.POST`);
  }
  const stageKey = ActivityStageKey.of(stage);
  const parallel = stage === ActivityStage.PARALLEL;
  if (!handler || typeof handler.functionArn !== 'string') {
    throw new Error(`${where}: the plugin handler must be a Lambda function (lambda.IFunction), got ${quote(String(handler))}`);
  }
  const queue = options.queue === true;
  if (queue && !parallel) {
    throw new Error(`${where}: queue is only for PARALLEL plugins; ${stage} plugins are invoked synchronously by their stage, one at a time, `
      + 'and their result is the outcome: remove queue, or add the plugin to ActivityStage.PARALLEL');
  }
  if (queue && options.timeout !== undefined) {
    throw new Error(`${where}: timeout is not available with queue: a queued message waits until the plugin takes it, and each attempt is `
      + 'bounded by the function\'s own timeout (3 attempts, then Error); bound the stage with the activity\'s parallelTimeout and remove timeout');
  }
  if (options.fifoKey !== undefined) {
    if (!queue) {
      throw new Error(`${where}: fifoKey ${quote(options.fifoKey)} is only for queue plugins (it makes their queue FIFO): set queue: true or remove fifoKey`);
    }
    if (typeof options.fifoKey !== 'string' || Token.isUnresolved(options.fifoKey) || options.fifoKey.length < 1
      || options.fifoKey.length > QUEUE_BRIDGE.fifoKeyMaxLength) {
      throw new Error(`${where}: fifoKey is ${quote(options.fifoKey)}; it must be the name of a metadata field, `
        + `1-${QUEUE_BRIDGE.fifoKeyMaxLength} characters known at synth time`);
    }
  }
  if (options.order !== undefined) {
    if (parallel) {
      throw new Error(`${where}: order ${quote(options.order)} is only for PRE and POST plugins (they run one at a time, in order); `
        + 'PARALLEL plugins all receive the message at once: remove order');
    }
    if (Token.isUnresolved(options.order) || !Number.isInteger(options.order)
      || options.order < PLUGIN_LIMITS.minOrder || options.order > PLUGIN_LIMITS.maxOrder) {
      throw new Error(`${where}: order is ${quote(options.order)}; it must be a whole number from ${PLUGIN_LIMITS.minOrder} to ${PLUGIN_LIMITS.maxOrder.toLocaleString('en-US')}`);
    }
  }
  if (options.filterPolicy !== undefined && !parallel) {
    throw new Error(`${where}: filterPolicy is only for PARALLEL plugins (an SNS subscription filter); ${stage} plugins are invoked directly `
      + `for every run: remove filterPolicy ${quote(Object.keys(options.filterPolicy))}`);
  }
  const filterPolicy = options.filterPolicy && Object.keys(options.filterPolicy).length > 0 ? options.filterPolicy : undefined;
  let timeoutSeconds: number | undefined;
  if (options.timeout !== undefined) {
    if (options.timeout.isUnresolved()) {
      throw new Error(`${where}: timeout must be known at synth time (it is stored in the plugin registry), got a token`);
    }
    const [min, max] = parallel
      ? [PLUGIN_LIMITS.minParallelTimeout, PLUGIN_LIMITS.maxParallelTimeout]
      : [PLUGIN_LIMITS.minSequentialTimeout, PLUGIN_LIMITS.maxSequentialTimeout];
    timeoutSeconds = validateDuration(where, `timeout of a ${stage} plugin`, options.timeout, min, max);
  }
  return {
    stage,
    stageKey,
    pluginName: options.pluginName,
    mandatory: options.mandatory ?? PLUGIN_DEFAULTS.mandatory,
    order: options.order ?? PLUGIN_DEFAULTS.order,
    timeoutSeconds,
    filterPolicy,
    queue,
    fifoKey: options.fifoKey,
    reportsStatus: options.reportsStatus ?? queue,
  };
}

/** What the stage needs from the orchestrator; an import that lacks it is told which attributes to pass. */
function requireWiring(target: PluginTarget, options: ResolvedPluginOptions): Required<Pick<PluginWiring, 'pluginTable'>> & PluginWiring {
  const { wiring } = target;
  const missing: string[] = [];
  if (!wiring.pluginTable) missing.push('pluginTableArn');
  if (options.stage === ActivityStage.PARALLEL && !wiring.pluginOutcomeFunctionArn) missing.push('pluginOutcomeFunctionArn');
  if (options.stage !== ActivityStage.PARALLEL && !wiring.sequentialStageRoleArn) missing.push('sequentialStageRoleArn');
  if ((options.queue || options.reportsStatus) && !wiring.statusTable) missing.push('statusTableArn');
  if (missing.length > 0) {
    throw new Error(`${target.where}: addPlugin ${quote(options.pluginName)}: this imported activity has no ${missing.join(', ')}; `
      + `a ${options.queue ? 'queue' : options.stage} plugin needs ${missing.length > 1 ? 'them' : 'it'}: pass ${missing.length > 1 ? 'them' : 'it'} to `
      + 'Activity.fromActivityAttributes (or Orchestrator.fromOrchestratorAttributes)');
  }
  return wiring as Required<Pick<PluginWiring, 'pluginTable'>> & PluginWiring;
}

/**
 * One statement in the plugin function's resource policy per sequential-stage role, however many
 * PRE/POST stages the function serves: the orchestrator's shared role never grows with plugins.
 */
function sequentialInvokePermission(handler: lambda.IFunction, roleArn: string): lambda.CfnPermission {
  const byRole = sequentialPermissions.get(handler) ?? new Map<string, lambda.CfnPermission>();
  sequentialPermissions.set(handler, byRole);
  let permission = byRole.get(roleArn);
  if (!permission) {
    const id = byRole.size === 0 ? 'OrchestratorInvokePermission' : `OrchestratorInvokePermission${byRole.size + 1}`;
    permission = new lambda.CfnPermission(handler, id, {
      action: 'lambda:InvokeFunction',
      functionName: handler.functionArn,
      principal: roleArn,
    });
    byRole.set(roleArn, permission);
  }
  return permission;
}

/**
 * The function's asynchronous invocation config: 2 retries, then on success and on failure a
 * destination record to plugin-outcome; the execution role may invoke plugin-outcome (Lambda invokes
 * destinations with it). One per function, shared by every PARALLEL stage it serves.
 */
function outcomeDestinations(target: PluginTarget, handler: lambda.IFunction, outcomeArn: string, maxEventAge: number | undefined,
  reportsStatus: boolean): IDependable {
  const existing = outcomeConfigs.get(handler);
  if (existing) {
    if (existing.reportsStatus !== reportsStatus) {
      throw new Error(`${target.where}: function ${handler.node.path} is a PARALLEL plugin of several activities, with reportsStatus `
        + `${existing.reportsStatus} and ${reportsStatus}; one function reports its outcome one way (its Lambda destinations are shared): use one setting`);
    }
    if (existing.outcomeArn !== outcomeArn) {
      throw new Error(`${target.where}: function ${handler.node.path} is already a PARALLEL plugin of another orchestrator; `
        + 'its outcomes go to one orchestrator\'s plugin-outcome handler: use a separate function per orchestrator');
    }
    if (existing.maxEventAge !== maxEventAge) {
      throw new Error(`${target.where}: function ${handler.node.path} is a PARALLEL plugin of several activities with different timeouts `
        + `(${describeSeconds(existing.maxEventAge)} and ${describeSeconds(maxEventAge)}); the timeout is the function's maximum event age: use one timeout`);
    }
    return existing.config;
  }
  if (handler.node.tryFindChild('EventInvokeConfig')) {
    throw new Error(`${target.where}: function ${handler.node.path} already has an asynchronous invocation config (configureAsyncInvoke); `
      + 'a PARALLEL plugin reports its outcome through Lambda destinations that addPlugin configures: remove the configureAsyncInvoke call');
  }
  const dependencies: IDependable[] = [];
  const role = handler.role;
  if (role) {
    const grant = role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['lambda:InvokeFunction'], resources: [outcomeArn] }));
    if (grant.policyDependable) dependencies.push(grant.policyDependable);
  } else {
    Annotations.of(handler).addWarningV2('cdk-orchestrator:pluginOutcomeGrant',
      'The execution role of this PARALLEL plugin is not known: allow it lambda:InvokeFunction on the orchestrator\'s plugin-outcome '
      + 'function, or its outcomes are not reported');
  }
  const config = new lambda.EventInvokeConfig(handler, 'EventInvokeConfig', {
    function: handler,
    retryAttempts: PLUGIN_DEFAULTS.retryAttempts,
    maxEventAge: maxEventAge === undefined ? undefined : Duration.seconds(maxEventAge),
    // A plugin that reports its own state has nothing to add on success (saves an invocation per run).
    onSuccess: reportsStatus ? undefined : new FunctionArnDestination(outcomeArn),
    onFailure: new FunctionArnDestination(outcomeArn),
  });
  // Lambda checks the destination permission when the config is created.
  config.node.addDependency(...dependencies);
  outcomeConfigs.set(handler, { outcomeArn, maxEventAge, reportsStatus, config });
  return config;
}

/**
 * What a plugin that reports its own state needs (DESIGN.md "Plugin SDK"): GetItem and UpdateItem on
 * the status table only (and its key), and the table's name in its environment.
 */
function reportStatusAccess(target: PluginTarget, handler: lambda.IFunction, statusTable: dynamodb.ITable): IDependable {
  const named = statusTableOfFunction.get(handler);
  if (named && named !== statusTable) {
    throw new Error(`${target.where}: function ${handler.node.path} already reports its state to another orchestrator's status table; `
      + `its environment names one table (${PLUGIN_STATUS_TABLE_ENV}): use a separate function per orchestrator`);
  }
  statusTableOfFunction.set(handler, statusTable);
  if (handler instanceof lambda.Function) {
    handler.addEnvironment(PLUGIN_STATUS_TABLE_ENV, statusTable.tableName);
  } else if (!named) {
    Annotations.of(handler).addWarningV2('cdk-orchestrator:pluginStatusTable',
      `This plugin reports its own state, but its environment cannot be changed here (an imported function): set ${PLUGIN_STATUS_TABLE_ENV} `
      + 'to the orchestrator\'s status table name');
  }
  // cdk-nag: the table key's action patterns (kms:GenerateDataKey*, kms:ReEncrypt*) are on that one key.
  if (handler.role) acknowledgeWildcards(handler.role, [KMS_ACTIONS_WILDCARD]);
  return grantTable(handler, statusTable, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], true);
}

function renderFilterPolicy(policy: { [attribute: string]: sns.SubscriptionFilter }): Record<string, unknown[]> {
  return Object.fromEntries(Object.entries(policy).map(([attribute, filter]) => [attribute, filter.conditions]));
}

function describeSeconds(seconds: number | undefined): string {
  return seconds === undefined ? 'none' : Duration.seconds(seconds).toHumanString();
}
