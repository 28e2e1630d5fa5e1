import { Duration, Token } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { ActivityBase, IActivity } from './activity-base';
import { ActivityStage, ActivityStageKey } from './activity-stage';
import { ACTIVITY_STATE_NAMES, PLUGIN_RETRY, THROTTLE_RETRY } from './defaults';
import { ActivityWiring } from './private/activity-wiring';
import { sequentialStageRetryBudget } from './private/contract';
import { acknowledgeRule } from './private/nag';
import { activityArnsByName, activityStateMachineName, activityTopicName } from './private/naming';
import { PluginWiring } from './private/plugin-wiring';
import { describe, validateActivityName } from './private/validation';

/**
 * Behaviour of an activity. Set on `OrchestratorProps` for every activity, and per activity in
 * `OrchestratorProps.activityOptions`.
 */
export interface ActivityOptions {
  /**
   * How long the parallel stage may take, from the message to the parallel topic until every
   * mandatory plugin is done. The stage then fails with `States.Timeout`.
   *
   * @default Duration.hours(1)
   */
  readonly parallelTimeout?: Duration;

  /**
   * How long the parallel stage may go without progress (a plugin changing its state) before it
   * fails with `States.HeartbeatTimeout`. Must be shorter than `parallelTimeout`.
   *
   * @default Duration.minutes(15)
   */
  readonly parallelHeartbeat?: Duration;

  /**
   * How many times each pre/post plugin's failed invocation is retried before that plugin is marked
   * `Error` (a mandatory one fails its stage; an optional one never does). Every plugin has its own
   * retries, whatever the others do; a plugin that returned `Error` or exceeded its `timeout` is
   * never invoked again in the same run; a re-run starts every failed plugin's count afresh. Step
   * Functions waits between retries: 1 s, doubling, at most 30 s. 0 to 10.
   *
   * @default 2
   */
  readonly pluginRetries?: number;
}

/**
 * What identifies an existing activity. The optional handler ARNs are documented here and on
 * OrchestratorAttributes alike: each import is used alone, so each carries its own docs (API.md).
 */
export interface ActivityAttributes {
  /** The activity's name. */
  readonly activityName: string;
  /** ARN of the activity's state machine. */
  readonly stateMachineArn: string;
  /** ARN of the pre stage topic. */
  readonly preTopicArn: string;
  /** ARN of the parallel stage topic. */
  readonly parallelTopicArn: string;
  /** ARN of the post stage topic. */
  readonly postTopicArn: string;
  /**
   * The KMS key that encrypts the topics (and the plugin table).
   *
   * @default - the topics are not encrypted with a customer managed key
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * ARN of the orchestrator's plugin table (`orchestrator.pluginTable.tableArn`); needed to add plugins.
   *
   * @default - `addPlugin` is not available on the import
   */
  readonly pluginTableArn?: string;
  /**
   * ARN of the orchestrator's sequential-stage role (`orchestrator.handlers.sequentialStageRole.roleArn`);
   * needed to add PRE and POST plugins (their resource policy lets this role invoke them).
   *
   * @default - PRE and POST plugins cannot be added to the import
   */
  readonly sequentialStageRoleArn?: string;
  /**
   * ARN of the orchestrator's plugin-outcome function (`orchestrator.handlers.pluginOutcome.functionArn`);
   * needed to add PARALLEL plugins (their Lambda destination).
   *
   * @default - PARALLEL plugins cannot be added to the import
   */
  readonly pluginOutcomeFunctionArn?: string;
  /**
   * ARN of the orchestrator's status table (`orchestrator.statusTable.tableArn`); needed to add
   * PARALLEL plugins with `queue: true` (their queue bridge marks them `In Progress` there) and
   * plugins with `reportsStatus: true` (they report their own state there).
   *
   * @default - queue plugins and plugins that report their own state cannot be added to the import
   */
  readonly statusTableArn?: string;
}

/**
 * An activity of an `Orchestrator`: a state machine (`Pre` -> `Parallel` -> `Post`, with a
 * `RecordFailure` path) and three SNS topics. Activities are created by their Orchestrator
 * (`OrchestratorProps.activities`) and found with `orchestrator.activity(name)`; other stacks
 * import them with `Activity.fromActivityAttributes`.
 *
 * An orchestrator with more than 25 activities puts them in nested stacks of its stack. Such an
 * activity's `stateMachine` and topics are then references by their names
 * (`<orchestratorName>-<activity>`...), so any stack uses them without a cross-stack output; the
 * API is the same.
 */
export class Activity extends ActivityBase {
  /**
   * Imports an activity created elsewhere (another stack or repository).
   */
  public static fromActivityAttributes(scope: Construct, id: string, attrs: ActivityAttributes): IActivity {
    return new ImportedActivity(scope, id, attrs);
  }

  /**
   * Creates an activity of an orchestrator.
   *
   * @internal
   */
  public static _create(scope: Construct, id: string, wiring: ActivityWiring): Activity {
    return new Activity(scope, id, wiring);
  }

  /** The activity's name. */
  public readonly activityName: string;
  /** The activity's state machine, named `<orchestratorName>-<activity>`; execution input `{ uid, workflow }`. */
  public readonly stateMachine: sfn.IStateMachine;
  /** Topic of the pre stage, named `<orchestratorName>-<activity>-pre`. */
  public readonly preTopic: sns.ITopic;
  /** Topic of the parallel stage, named `<orchestratorName>-<activity>-parallel`. */
  public readonly parallelTopic: sns.ITopic;
  /** Topic of the post stage, named `<orchestratorName>-<activity>-post`. */
  public readonly postTopic: sns.ITopic;
  /** @internal */
  protected readonly _pluginWiring: PluginWiring;

  private constructor(scope: Construct, id: string, wiring: ActivityWiring) {
    super(scope, id);
    this.activityName = wiring.activityName;
    const { orchestratorName, handlers, encryptionKey, nested } = wiring;

    // In a nested stack (a large orchestrator) only the parallel topic, which carries the plugin
    // messages, has a policy: the pre and post topics carry none (their plugins are invoked directly).
    const topic = (stage: ActivityStage, topicId: string) => new sns.Topic(this, topicId, {
      topicName: activityTopicName(orchestratorName, this.activityName, stage),
      enforceSSL: stage === ActivityStage.PARALLEL || !nested,
      masterKey: encryptionKey,
    });
    const preTopic = topic(ActivityStage.PRE, 'PreTopic');
    const parallelTopic = topic(ActivityStage.PARALLEL, 'ParallelTopic');
    // Resource side, so the shared parallel-stage role's policy does not grow with every activity.
    parallelTopic.addToResourcePolicy(new iam.PolicyStatement({
      sid: 'ParallelStagePublish',
      principals: [handlers.parallelStageRole],
      actions: ['sns:Publish'],
      resources: [parallelTopic.topicArn],
    }));
    const postTopic = topic(ActivityStage.POST, 'PostTopic');
    if (nested) {
      for (const quiet of [preTopic, postTopic]) {
        acknowledgeRule(quiet, 'AwsSolutions-SNS3', 'Nothing publishes to the pre and post topics (their plugins are invoked directly); in a large '
          + 'orchestrator\'s nested stacks they go without a topic policy (SNS allows one topic per policy), the parallel topic keeps its SSL-only policy');
      }
    }
    this._pluginWiring = {
      pluginTable: wiring.pluginTable,
      sequentialStageRoleArn: handlers.sequentialStageRole.roleArn,
      pluginOutcomeFunctionArn: handlers.pluginOutcome.functionArn,
      statusTable: wiring.statusTable,
      encryptionKey,
      powertoolsLayer: handlers.powertoolsLayer,
      orchestratorName,
    };

    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      stateMachineName: activityStateMachineName(orchestratorName, this.activityName),
      comment: `Activity ${this.activityName} of orchestrator ${orchestratorName}: pre, parallel and post stages`,
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(new Construct(this, 'Definition'), wiring, {
        [ActivityStage.PRE]: preTopic, [ActivityStage.PARALLEL]: parallelTopic, [ActivityStage.POST]: postTopic,
      })),
      stateMachineType: sfn.StateMachineType.STANDARD,
      role: wiring.stateMachineRole,
      logs: { destination: wiring.logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
    });
    stateMachine.node.addDependency(...wiring.stateMachineDependencies);

    if (nested) {
      // What other stacks see: the same resources, by their deterministic names (no outputs).
      const arns = activityArnsByName(nested.nameScope, orchestratorName, this.activityName);
      const keyArn = encryptionKey?.keyArn;
      const byName = (stage: ActivityStage, topicId: string) =>
        sns.Topic.fromTopicAttributes(this, topicId, { topicArn: arns.topicArn(stage), keyArn });
      this.preTopic = byName(ActivityStage.PRE, 'PreTopicByName');
      this.parallelTopic = byName(ActivityStage.PARALLEL, 'ParallelTopicByName');
      this.postTopic = byName(ActivityStage.POST, 'PostTopicByName');
      this.stateMachine = sfn.StateMachine.fromStateMachineArn(this, 'StateMachineByName', arns.stateMachineArn);
      this._executionArns = arns.executionArnPattern;
      // A subscription by name must still wait for the topic (same stack: DependsOn the nested stack).
      this._parallelTopicDependency = parallelTopic;
    } else {
      this.preTopic = preTopic;
      this.parallelTopic = parallelTopic;
      this.postTopic = postTopic;
      this.stateMachine = stateMachine;
    }
  }

  /** DESIGN.md "Activity <name>": Pre -> Parallel -> Post, every stage caught into RecordFailure -> Failed. */
  private definition(scope: Construct, wiring: ActivityWiring, topics: Record<ActivityStage, sns.ITopic>): sfn.IChainable {
    const maxAttempts = wiring.pluginRetries + 1;
    const common = { 'uid.$': '$.uid', 'workflow.$': '$.workflow', 'activity': this.activityName };
    const catchAll = { errors: [sfn.Errors.ALL], resultPath: '$.error' };

    // stage-failure records the error and rethrows it under the same name; the Fail state only
    // runs if it ever returned, and still fails the execution with the original error.
    const recordFailureTask = new tasks.LambdaInvoke(scope, ACTIVITY_STATE_NAMES.recordFailure, {
      lambdaFunction: wiring.handlers.stageFailure,
      payload: sfn.TaskInput.fromObject({ ...common, 'error.$': '$.error' }),
      resultPath: sfn.JsonPath.DISCARD,
    });
    // A throttled failure record is retried too: otherwise the stage would stay In Progress.
    recordFailureTask.addRetry(THROTTLE_RETRY);
    const recordFailure = recordFailureTask.next(new sfn.Fail(scope, ACTIVITY_STATE_NAMES.failed, { errorPath: '$.error.Error', causePath: '$.error.Cause' }));

    const sequential = (stateName: string, stage: ActivityStage) => {
      const task = new tasks.LambdaInvoke(scope, stateName, {
        lambdaFunction: wiring.handlers.sequentialStage,
        payload: sfn.TaskInput.fromObject({
          ...common,
          stage: ActivityStageKey.of(stage),
          topicArn: topics[stage].topicArn,
          maxAttempts,
        }),
        resultPath: sfn.JsonPath.DISCARD,
      });
      // The handler owns each plugin's budget (maxAttempts per plugin); this budget only has to
      // outlast every plugin's retries together, so one flaky plugin never uses up another's.
      task.addRetry({
        errors: PLUGIN_RETRY.errors,
        interval: PLUGIN_RETRY.interval,
        backoffRate: PLUGIN_RETRY.backoffRate,
        maxDelay: PLUGIN_RETRY.maxDelay,
        maxAttempts: sequentialStageRetryBudget(wiring.pluginRetries),
      });
      task.addRetry(THROTTLE_RETRY);
      task.addCatch(recordFailure, catchAll);
      return task;
    };

    const parallel = new tasks.LambdaInvoke(scope, ACTIVITY_STATE_NAMES.parallel, {
      lambdaFunction: wiring.handlers.parallelStage,
      integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
      payload: sfn.TaskInput.fromObject({
        ...common,
        stage: ActivityStageKey.of(ActivityStage.PARALLEL),
        topicArn: topics[ActivityStage.PARALLEL].topicArn,
        token: sfn.JsonPath.taskToken,
      }),
      taskTimeout: sfn.Timeout.duration(wiring.parallelTimeout),
      heartbeatTimeout: sfn.Timeout.duration(wiring.parallelHeartbeat),
      resultPath: sfn.JsonPath.DISCARD,
    });
    parallel.addRetry(THROTTLE_RETRY);
    parallel.addCatch(recordFailure, catchAll);

    return sequential(ACTIVITY_STATE_NAMES.pre, ActivityStage.PRE)
      .next(parallel)
      .next(sequential(ACTIVITY_STATE_NAMES.post, ActivityStage.POST));
  }
}

// The same fields as Activity's (duplicates lists the pair): ActivityBase declares them abstract and
// each subclass supplies its own, as aws-cdk-lib's StateMachine and its Import do; TypeScript lets only
// the declaring class assign a readonly field, so the declarations cannot move into the base.
class ImportedActivity extends ActivityBase {
  public readonly activityName: string;
  public readonly stateMachine: sfn.IStateMachine;
  public readonly preTopic: sns.ITopic;
  public readonly parallelTopic: sns.ITopic;
  public readonly postTopic: sns.ITopic;
  /** @internal */
  protected readonly _pluginWiring: PluginWiring;

  constructor(scope: Construct, id: string, attrs: ActivityAttributes) {
    super(scope, id);
    validateActivityName(describe('Activity', this), attrs.activityName);
    this.activityName = attrs.activityName;
    this.stateMachine = sfn.StateMachine.fromStateMachineArn(this, 'StateMachine', attrs.stateMachineArn);
    const keyArn = attrs.encryptionKey?.keyArn;
    this.preTopic = sns.Topic.fromTopicAttributes(this, 'PreTopic', { topicArn: attrs.preTopicArn, keyArn });
    this.parallelTopic = sns.Topic.fromTopicAttributes(this, 'ParallelTopic', { topicArn: attrs.parallelTopicArn, keyArn });
    this.postTopic = sns.Topic.fromTopicAttributes(this, 'PostTopic', { topicArn: attrs.postTopicArn, keyArn });
    this._pluginWiring = {
      pluginTable: attrs.pluginTableArn
        ? dynamodb.Table.fromTableAttributes(this, 'PluginTable', { tableArn: attrs.pluginTableArn, encryptionKey: attrs.encryptionKey })
        : undefined,
      sequentialStageRoleArn: attrs.sequentialStageRoleArn,
      pluginOutcomeFunctionArn: attrs.pluginOutcomeFunctionArn,
      statusTable: attrs.statusTableArn
        ? dynamodb.Table.fromTableAttributes(this, 'StatusTable', { tableArn: attrs.statusTableArn, encryptionKey: attrs.encryptionKey })
        : undefined,
      encryptionKey: attrs.encryptionKey,
      orchestratorName: orchestratorNameOfTopic(attrs.parallelTopicArn, attrs.activityName),
    };
  }
}

/**
 * The orchestrator's name from a parallel topic ARN named `<orchestratorName>-<activity>-parallel`;
 * undefined when the ARN is a token or named otherwise.
 */
function orchestratorNameOfTopic(topicArn: string, activityName: string): string | undefined {
  if (Token.isUnresolved(topicArn)) return undefined;
  const topicName = topicArn.split(':').pop() ?? '';
  const suffix = `-${activityName}-parallel`;
  return topicName.endsWith(suffix) && topicName.length > suffix.length ? topicName.slice(0, -suffix.length) : undefined;
}
