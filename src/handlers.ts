import * as fs from 'fs';
import * as path from 'path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { Construct } from 'constructs';
import {
  DEFAULT_LOG_RETENTION,
  DEFAULT_REMOVAL_POLICY,
  DLQ_RETENTION,
  HANDLER_FUNCTION_DEFAULTS,
  HANDLERS,
  observabilityEnvironment,
  PLUGIN_TABLE,
  POWERTOOLS_LAYER_PARAMETER_PREFIX,
  POWERTOOLS_MANIFEST_FILE,
  STATUS_SUMMARY_EVENT_SOURCE,
} from './defaults';
import { acknowledgeRedrivePolicy, handlerPlacement } from './private/compliance';
import { ENV } from './private/contract';
import { grantKey, grantTable, KMS_TOPIC_PUBLISH_ACTIONS } from './private/grants';
import {
  acknowledgeRule, acknowledgeWildcards, KMS_ACTIONS_WILDCARD, STREAM_LIST_WILDCARD, TASK_TOKEN_WILDCARD, XRAY_WILDCARD,
} from './private/nag';
import { activityStateMachineArnPattern, handlerLogGroupName } from './private/naming';
import { grantPluginRegistrar, PLUGIN_REGISTRAR_HANDLER, pluginRegistrarEnvironment } from './private/runtime-registration';
import { grantStuckRuns, STUCK_RUNS_HANDLER } from './private/stuck-run-detection';
import { describe } from './private/validation';

/** The bundled handlers (scripts/bundle-handlers.mjs), shipped in the package. */
const HANDLER_ASSETS = path.join(__dirname, '..', 'assets', 'handlers');

/**
 * Which handler log entries are written (`POWERTOOLS_LOG_LEVEL`): this level and the ones above it.
 */
export enum HandlerLogLevel {
  /** Everything, including the writes a handler skipped because the item had moved on. */
  DEBUG = 'DEBUG',
  /** What each invocation did: runs created, stages started and settled, plugins invoked. */
  INFO = 'INFO',
  /** Records ignored and registry items skipped. */
  WARN = 'WARN',
  /** Only failures. */
  ERROR = 'ERROR',
  /** Nothing (the metrics are still published). */
  SILENT = 'SILENT',
}

/**
 * How the handler functions log and where their Powertools come from: set on `OrchestratorProps`
 * (or `OrchestratorHandlersProps`).
 */
export interface HandlerOptions {
  /**
   * Retention of the handler log groups (an Orchestrator's state machine log group too).
   *
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Lowest level of the handlers' JSON log entries that is written (`POWERTOOLS_LOG_LEVEL`).
   *
   * @default HandlerLogLevel.INFO
   */
  readonly logLevel?: HandlerLogLevel;
  /**
   * The Lambda layer that provides Powertools for AWS Lambda (TypeScript) (logger, metrics, tracer)
   * to the handlers: their bundles leave out `@aws-lambda-powertools/*`. Give one where AWS does not
   * publish its layer (e.g. AWS China, GovCloud without the public parameter, or a region newer than
   * the layer): it must hold the logger, metrics and tracer packages of release
   * `OrchestratorHandlers.powertoolsVersion()` under `nodejs/node_modules`.
   *
   * @default - AWS's public Powertools layer of that release, its ARN read at deploy time from the
   * SSM parameter `/aws/service/powertools/typescript/generic/all/<version>`
   */
  readonly powertoolsLayer?: lambda.ILayerVersion;
}

/**
 * Props of `OrchestratorHandlers`.
 */
export interface OrchestratorHandlersProps extends HandlerOptions {
  /**
   * Name of the orchestrator: the task-token permissions are scoped to the state machines named
   * `<orchestratorName>-*`.
   */
  readonly orchestratorName: string;
  /** The status table; it must have a stream. */
  readonly statusTable: dynamodb.ITable;
  /** The plugin registry table. */
  readonly pluginTable: dynamodb.ITable;
  /**
   * Key of the activity topics (the parallel-stage handler publishes to them); also encrypts the
   * handler log groups and the dead-letter queue.
   *
   * @default - no customer managed key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * What happens to the log groups and the dead-letter queue when they leave the stack.
   *
   * @default RemovalPolicy.RETAIN
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Creates the `stuck-runs` function (run by the Orchestrator's schedule): runs not finished this
   * long after they were (re)started are reported once. The status table must have the open-run
   * index (DESIGN.md "Operations").
   *
   * @default - no stuck-runs function
   */
  readonly stuckAfter?: Duration;
  /**
   * Creates the `plugin-registrar` function, which registers plugins subscribed outside CDK (the
   * Orchestrator's run-time registration rules invoke it; docs/PLUGIN-PROTOCOL.md).
   *
   * @default false
   */
  readonly pluginRegistrar?: boolean;
}

/**
 * The handler functions shared by every activity of an orchestrator (DESIGN.md "Resources"):
 * `start-run`, `sequential-stage`, `parallel-stage`, `status-summary` (with its DynamoDB stream
 * event source and dead-letter queue), `stage-failure` and `plugin-outcome`, plus `stuck-runs` and
 * `plugin-registrar` when those features are on. Each has its own role
 * and log group, and its role's policy depends on neither the number of activities nor of plugins.
 */
export class OrchestratorHandlers extends Construct {
  /**
   * The Powertools for AWS Lambda (TypeScript) release the handlers were built and tested with,
   * which their layer must provide (e.g. `2.36.0`).
   */
  public static powertoolsVersion(): string {
    const file = path.join(HANDLER_ASSETS, POWERTOOLS_MANIFEST_FILE);
    if (!fs.existsSync(file)) {
      throw new Error(`${file} is missing: the handler bundles are incomplete (run "node scripts/bundle-handlers.mjs" in a checkout of cdk-orchestrator)`);
    }
    const version = (JSON.parse(fs.readFileSync(file, 'utf8')) as { version?: unknown }).version;
    if (typeof version !== 'string' || !/^\d+\.\d+\.\d+$/.test(version)) {
      throw new Error(`${file}: "version" must be a release like "2.36.0", got ${JSON.stringify(version)}`);
    }
    return version;
  }

  /** `start-run`: initializes or resets the status item of a run. */
  public readonly startRun: lambda.IFunction;
  /** `sequential-stage`: runs the pre/post plugins of a stage in order. */
  public readonly sequentialStage: lambda.IFunction;
  /** `parallel-stage`: starts a parallel stage (token, SNS message). */
  public readonly parallelStage: lambda.IFunction;
  /** `status-summary`: settles parallel stages from the status table stream. */
  public readonly statusSummary: lambda.IFunction;
  /** `stage-failure`: records a failed stage and rethrows its error. */
  public readonly stageFailure: lambda.IFunction;
  /**
   * `plugin-outcome`: the on-success and on-failure Lambda destination of every PARALLEL plugin
   * added with `addPlugin`, so a plugin that uses no orchestrator code still reports its outcome.
   * Each plugin's execution role is allowed to invoke it (on the plugin's side).
   */
  public readonly pluginOutcome: lambda.IFunction;
  /**
   * Role of `sequential-stage`: a pre/post plugin's resource policy allows it to invoke the plugin.
   */
  public readonly sequentialStageRole: iam.IRole;
  /** Role of `parallel-stage`: each parallel topic's policy allows it to publish. */
  public readonly parallelStageRole: iam.IRole;
  /** Where the status-summary event source sends the records it could not process. */
  public readonly deadLetterQueue: sqs.IQueue;
  /**
   * `stuck-runs`: reports runs that did not finish within `stuckAfter` (an EventBridge event and the
   * `StuckRuns` metric), when stuck-run detection is on.
   */
  public readonly stuckRuns?: lambda.IFunction;
  /**
   * `plugin-registrar`: keeps the plugin registry in step with SNS subscriptions made outside CDK
   * (CloudTrail `Subscribe` / `Unsubscribe` / `UpdateFunctionCode`), when run-time registration is on.
   */
  public readonly pluginRegistrar?: lambda.IFunction;
  /** The layer that provides Powertools for AWS Lambda (TypeScript) to every handler. */
  public readonly powertoolsLayer: lambda.ILayerVersion;

  constructor(scope: Construct, id: string, props: OrchestratorHandlersProps) {
    super(scope, id);
    const { statusTable, pluginTable, encryptionKey } = props;
    if (!statusTable.tableStreamArn) {
      throw new Error(`${describe('OrchestratorHandlers', this)}: the status table has no stream; status-summary needs one (NEW_AND_OLD_IMAGES)`);
    }
    const removalPolicy = props.removalPolicy ?? DEFAULT_REMOVAL_POLICY;
    const logRetention = props.logRetention ?? DEFAULT_LOG_RETENTION;
    const taskTokenResources = [activityStateMachineArnPattern(this, props.orchestratorName)];
    // Logs, metrics (EMF, namespace CdkOrchestrator) and traces.
    const observability = observabilityEnvironment(props.logLevel);
    // One layer for the six functions; the public parameter becomes one template parameter
    // (type AWS::SSM::Parameter::Value<String>), resolved by CloudFormation at every deployment.
    this.powertoolsLayer = props.powertoolsLayer ?? lambda.LayerVersion.fromLayerVersionArn(this, 'PowertoolsLayer',
      ssm.StringParameter.valueForStringParameter(this, `${POWERTOOLS_LAYER_PARAMETER_PREFIX}${OrchestratorHandlers.powertoolsVersion()}`));

    const make = (constructId: string, spec: { name: string; timeout: Duration; description: string }, environment: Record<string, string>) => {
      const logGroup = new logs.LogGroup(this, `${constructId}Logs`, {
        // Named, so the customer managed key's policy can name this orchestrator's log groups only.
        logGroupName: handlerLogGroupName(this, props.orchestratorName, spec.name),
        retention: logRetention,
        encryptionKey,
        removalPolicy,
      });
      // Own role instead of the AWSLambdaBasicExecutionRole managed policy: logs only to its log group.
      const role = new iam.Role(this, `${constructId}Role`, {
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        description: `${spec.name} handler of orchestrator ${props.orchestratorName}`,
      });
      logGroup.grantWrite(role);
      // cdk-nag: X-Ray (active tracing) and the customer managed key's action patterns; more per handler below.
      acknowledgeWildcards(role, [XRAY_WILDCARD, KMS_ACTIONS_WILDCARD]);
      const fn = new lambda.Function(this, constructId, {
        ...HANDLER_FUNCTION_DEFAULTS,
        code: lambda.Code.fromAsset(path.join(HANDLER_ASSETS, spec.name)),
        layers: [this.powertoolsLayer],
        timeout: spec.timeout,
        description: spec.description,
        role,
        logGroup,
        // Its orchestrator's VPC, and a dead-letter queue when it is invoked asynchronously (docs/COMPLIANCE.md).
        ...handlerPlacement(this, constructId, role),
        // ENV.orchestratorName: the `orchestrator` dimension of every handler metric.
        environment: {
          [ENV.statusTableName]: statusTable.tableName, [ENV.orchestratorName]: props.orchestratorName, ...observability, ...environment,
        },
      });
      return { fn, role };
    };
    const withPlugins = { [ENV.pluginTableName]: pluginTable.tableName };

    // One conditional PutItem; a failed condition returns the existing item (ALL_OLD), no read.
    const startRun = make('StartRun', HANDLERS.startRun, {});
    grantTable(startRun.role, statusTable, ['dynamodb:PutItem'], true);
    this.startRun = startRun.fn;

    // Updates return the document (ALL_NEW / ALL_OLD on a failed condition): no reads.
    const sequential = make('SequentialStage', HANDLERS.sequentialStage, withPlugins);
    grantTable(sequential.role, statusTable, ['dynamodb:UpdateItem'], true);
    grantTable(sequential.role, pluginTable, ['dynamodb:Query'], false);
    this.sequentialStage = sequential.fn;
    this.sequentialStageRole = sequential.role;

    const parallel = make('ParallelStage', HANDLERS.parallelStage, withPlugins);
    grantTable(parallel.role, statusTable, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], true);
    grantTable(parallel.role, pluginTable, ['dynamodb:Query'], false);
    // No mandatory plugin to wait for: it completes its own task at once.
    iam.Grant.addToPrincipal({ grantee: parallel.role, actions: ['states:SendTaskSuccess'], resourceArns: taskTokenResources });
    acknowledgeWildcards(parallel.role, [TASK_TOKEN_WILDCARD]);
    // sns:Publish is granted by each parallel topic's resource policy; the topics' key is one key.
    if (encryptionKey) {
      grantKey(parallel.role, encryptionKey, KMS_TOPIC_PUBLISH_ACTIONS);
    }
    this.parallelStage = parallel.fn;
    this.parallelStageRole = parallel.role;

    // Works from the stream images; writes are conditioned on the task token.
    const summary = make('StatusSummary', HANDLERS.statusSummary, {});
    grantTable(summary.role, statusTable, ['dynamodb:UpdateItem'], true);
    iam.Grant.addToPrincipal({
      grantee: summary.role,
      actions: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'],
      resourceArns: taskTokenResources,
    });
    acknowledgeWildcards(summary.role, [TASK_TOKEN_WILDCARD, STREAM_LIST_WILDCARD]);
    const deadLetterQueue = new sqs.Queue(this, 'StatusSummaryDeadLetterQueue', {
      enforceSSL: true,
      encryption: encryptionKey ? sqs.QueueEncryption.KMS : sqs.QueueEncryption.SQS_MANAGED,
      encryptionMasterKey: encryptionKey,
      retentionPeriod: DLQ_RETENTION,
      removalPolicy,
      // A dead-letter queue: it says so (AWS Control Tower CT.SQS.PR.1 accepts a redrive allow policy on dead-letter queues).
      redriveAllowPolicy: { redrivePermission: sqs.RedrivePermission.ALLOW_ALL },
    });
    acknowledgeRedrivePolicy(deadLetterQueue, 'the on-failure destination of the status-summary stream mapping');
    acknowledgeRule(deadLetterQueue, 'AwsSolutions-SQS3',
      'This queue is itself a dead-letter destination: the on-failure destination of the status-summary stream mapping; '
      + 'cdk-nag only recognizes queues named as another queue\'s redrive target');
    summary.fn.addEventSource(new eventSources.DynamoEventSource(statusTable, {
      ...STATUS_SUMMARY_EVENT_SOURCE,
      onFailure: new eventSources.SqsDlq(deadLetterQueue),
      // Only items with a parallel stage to settle: most status writes never invoke the function.
      filters: [lambda.FilterCriteria.filter({ dynamodb: { NewImage: { awaiting: { SS: lambda.FilterRule.exists() } } } })],
    }));
    this.statusSummary = summary.fn;
    this.deadLetterQueue = deadLetterQueue;

    const failure = make('StageFailure', HANDLERS.stageFailure, {});
    grantTable(failure.role, statusTable, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], true);
    this.stageFailure = failure.fn;

    // Finds the plugin by its registry key (GetItem), then one conditional UpdateItem of its entry.
    const outcome = make('PluginOutcome', HANDLERS.pluginOutcome, withPlugins);
    grantTable(outcome.role, statusTable, ['dynamodb:UpdateItem'], true);
    grantTable(outcome.role, pluginTable, ['dynamodb:GetItem'], false);
    this.pluginOutcome = outcome.fn;

    // Queries the open-run index, marks each stuck run once (UpdateItem), puts one event per run.
    if (props.stuckAfter) {
      const stuck = make('StuckRuns', STUCK_RUNS_HANDLER, {
        [ENV.stuckAfterSeconds]: String(props.stuckAfter.toSeconds()),
      });
      grantStuckRuns(stuck.role, statusTable);
      this.stuckRuns = stuck.fn;
    }

    // Handshake (invoke tagged functions), registry Put/Delete/Get + Query on functionName, releasing runs.
    if (props.pluginRegistrar) {
      const registrar = make('PluginRegistrar', PLUGIN_REGISTRAR_HANDLER, pluginRegistrarEnvironment(props.orchestratorName, pluginTable));
      grantPluginRegistrar(registrar.role, {
        orchestratorName: props.orchestratorName, pluginTable, statusTable, functionNameIndex: PLUGIN_TABLE.functionNameIndex,
      });
      this.pluginRegistrar = registrar.fn;
    }
  }
}
