import * as path from 'path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as eventSources from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import {
  DEFAULT_LOG_RETENTION,
  DEFAULT_REMOVAL_POLICY,
  DLQ_RETENTION,
  HANDLER_FUNCTION_DEFAULTS,
  HANDLERS,
  observabilityEnvironment,
  STATUS_SUMMARY_EVENT_SOURCE,
} from './defaults';
import { grantKey, grantTable, KMS_TOPIC_PUBLISH_ACTIONS } from './private/grants';
import {
  acknowledgeRule, acknowledgeWildcards, KMS_ACTIONS_WILDCARD, STREAM_LIST_WILDCARD, TASK_TOKEN_WILDCARD, XRAY_WILDCARD,
} from './private/nag';
import { activityStateMachineArnPattern } from './private/naming';
import { describe } from './private/validation';

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
 * Props of `OrchestratorHandlers`.
 */
export interface OrchestratorHandlersProps {
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
   * Retention of the handler log groups.
   *
   * @default logs.RetentionDays.THREE_MONTHS
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Level of the handlers' JSON log entries.
   *
   * @default HandlerLogLevel.INFO
   */
  readonly logLevel?: HandlerLogLevel;
}

/**
 * The six handler functions shared by every activity of an orchestrator (DESIGN.md "Resources"):
 * `start-run`, `sequential-stage`, `parallel-stage`, `status-summary` (with its DynamoDB stream
 * event source and dead-letter queue), `stage-failure` and `plugin-outcome`. Each has its own role
 * and log group, and its role's policy depends on neither the number of activities nor of plugins.
 */
export class OrchestratorHandlers extends Construct {
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

  constructor(scope: Construct, id: string, props: OrchestratorHandlersProps) {
    super(scope, id);
    const { statusTable, pluginTable, encryptionKey } = props;
    if (!statusTable.tableStreamArn) {
      throw new Error(`${describe('OrchestratorHandlers', this)}: the status table has no stream; status-summary needs one (NEW_AND_OLD_IMAGES)`);
    }
    const removalPolicy = props.removalPolicy ?? DEFAULT_REMOVAL_POLICY;
    const logRetention = props.logRetention ?? DEFAULT_LOG_RETENTION;
    const taskTokenResources = [activityStateMachineArnPattern(this, props.orchestratorName)];
    // Logs, metrics (EMF, namespace CdkOrchestrator) and traces: lambda/shared/observability.ts.
    const observability = observabilityEnvironment(props.logLevel);

    const make = (constructId: string, spec: { name: string; timeout: Duration; description: string }, environment: Record<string, string>) => {
      const logGroup = new logs.LogGroup(this, `${constructId}Logs`, { retention: logRetention, encryptionKey, removalPolicy });
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
        code: lambda.Code.fromAsset(path.join(__dirname, '..', 'assets', 'handlers', spec.name)),
        timeout: spec.timeout,
        description: spec.description,
        role,
        logGroup,
        environment: { STATUS_TABLE_NAME: statusTable.tableName, ...observability, ...environment },
      });
      return { fn, role };
    };
    const withPlugins = { PLUGIN_TABLE_NAME: pluginTable.tableName };

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
    });
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
  }
}
