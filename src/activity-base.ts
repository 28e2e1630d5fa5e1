import { Annotations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { IConstruct, IDependable } from 'constructs';
import { ActivityStage, ActivityStageKey } from './activity-stage';
import { ExecutionMetricsBase } from './execution-metrics-base';
import { ActivityPlugin, PluginOptions } from './plugin';
import { METRIC } from './private/contract';
import { handlerMetric } from './private/metrics';
import { PluginBook, PluginWiring } from './private/plugin-wiring';
import { describe } from './private/validation';

/**
 * An activity: a named step with a `pre`, a parallel and a `post` stage, run by its own state
 * machine, with one SNS topic per stage that plugins subscribe to.
 */
export interface IActivity extends IConstruct {
  /** The activity's name, e.g. `Step1`. */
  readonly activityName: string;
  /** The activity's state machine; its execution input is `{ uid, workflow }`. */
  readonly stateMachine: sfn.IStateMachine;
  /** Topic of the sequential pre stage. */
  readonly preTopic: sns.ITopic;
  /** Topic of the parallel stage: one message per activity run, every subscribed plugin works at once. */
  readonly parallelTopic: sns.ITopic;
  /** Topic of the sequential post stage. */
  readonly postTopic: sns.ITopic;
  /**
   * ARN pattern of the executions of the activity's state machine (`...:execution:<state machine name>:*`):
   * what a workflow follows and `grantRedrive` grants.
   */
  readonly executionArnPattern: string;
  /** The topic of a stage. */
  topic(stage: ActivityStage): sns.ITopic;
  /**
   * Adds a plugin (a Lambda function, in this stack or another one) to a stage of this activity and
   * registers it in the plugin registry at deploy time. Every resource this creates lives in the
   * function's stack. PARALLEL: the function is subscribed to the parallel topic, and its outcome is
   * reported through Lambda destinations, so a plain function that uses no orchestrator code works
   * (success -> `Complete`, failure after 2 retries -> `Error`). PRE/POST: sequential-stage invokes
   * it synchronously, in `order`.
   */
  addPlugin(handler: lambda.IFunction, options: PluginOptions): ActivityPlugin;
  /**
   * Failed executions of the activity's state machine (`AWS/States` `ExecutionsFailed`): a stage
   * failed, including a parallel stage that timed out (`States.Timeout`/`States.HeartbeatTimeout`).
   *
   * @default - sum over 5 minutes
   */
  metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Succeeded executions of the activity's state machine (`AWS/States` `ExecutionsSucceeded`).
   *
   * @default - sum over 5 minutes
   */
  metricSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Executions of the activity's state machine that hit an execution timeout (`AWS/States`
   * `ExecutionsTimedOut`). Activity executions have no timeout of their own, so this stays 0 unless
   * one is stopped that way; a parallel stage that times out fails the execution (`metricFailed`).
   *
   * @default - sum over 5 minutes
   */
  metricTimedOut(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * How long the activity's executions take, in milliseconds (`AWS/States` `ExecutionTime`).
   *
   * @default - average over 5 minutes
   */
  metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Plugin errors of this activity, from the handlers (`CdkOrchestrator` `PluginErrors`, dimensions
   * `service`, `orchestrator` and `activity`): each failed pre/post plugin attempt or `Error` result,
   * and each parallel plugin recorded `Error`. An imported activity knows its orchestrator's name from
   * `parallelTopicArn` (`<orchestratorName>-<activity>-parallel`); when that ARN is a token or named
   * otherwise, the metric has no `orchestrator` dimension and so matches none of the handlers' data
   * (a synth warning says so; give the ARN as a literal).
   *
   * @default - sum over 5 minutes
   */
  metricPluginErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * Lets the grantee redrive failed executions of the activity's state machine
   * (`states:RedriveExecution` on `execution:<state machine name>:*`). See README "Operations": to
   * recover a run, re-running the uid is usually what you want.
   */
  grantRedrive(grantee: iam.IGrantable): iam.Grant;
}

/**
 * What an activity created in this app and an imported one share (aws-cdk-lib's `StateMachineBase`
 * idiom): every method of `IActivity` is written here once; subclasses supply the fields.
 */
export abstract class ActivityBase extends ExecutionMetricsBase implements IActivity {
  public abstract readonly activityName: string;
  public abstract readonly stateMachine: sfn.IStateMachine;
  public abstract readonly preTopic: sns.ITopic;
  public abstract readonly parallelTopic: sns.ITopic;
  public abstract readonly postTopic: sns.ITopic;

  /**
   * The orchestrator resources `addPlugin` refers to (an import has what its attributes named).
   *
   * @internal
   */
  protected abstract readonly _pluginWiring: PluginWiring;

  /**
   * The parallel topic itself when `parallelTopic` only names it (an activity in a nested stack).
   *
   * @internal
   */
  protected _parallelTopicDependency?: IDependable;

  private readonly plugins = new PluginBook();

  /** The topic of a stage. */
  public topic(stage: ActivityStage): sns.ITopic {
    switch (stage) {
      case ActivityStage.PRE: return this.preTopic;
      case ActivityStage.PARALLEL: return this.parallelTopic;
      case ActivityStage.POST: return this.postTopic;
      default: throw new Error(`Unknown activity stage ${JSON.stringify(stage)}; expected one of ${ActivityStageKey.STAGES.join(', ')}`);
    }
  }

  /**
   * Adds a plugin (a Lambda function, in this stack or another one) to a stage of this activity and
   * registers it in the plugin registry at deploy time (see `IActivity.addPlugin`).
   */
  public addPlugin(handler: lambda.IFunction, options: PluginOptions): ActivityPlugin {
    return ActivityPlugin._create(handler, {
      where: describe('Activity', this),
      activityName: this.activityName,
      parallelTopic: this.parallelTopic,
      parallelTopicDependency: this._parallelTopicDependency,
      wiring: this._pluginWiring,
      book: this.plugins,
    }, options);
  }

  /**
   * Plugin errors of this activity (`CdkOrchestrator` `PluginErrors`, dimensions `service`, `orchestrator`, `activity`).
   *
   * @default - sum over 5 minutes
   */
  public metricPluginErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    const orchestratorName = this._pluginWiring.orchestratorName;
    if (orchestratorName === undefined) {
      Annotations.of(this).addWarningV2('cdk-orchestrator:pluginErrorsWithoutOrchestrator',
        `${describe('Activity', this)}: metricPluginErrors() has no "orchestrator" dimension, so it matches none of the handlers' `
        + 'PluginErrors data: the orchestrator\'s name is not known (parallelTopicArn is a token or not named '
        + '"<orchestratorName>-<activity>-parallel"). Import the activity with its parallel topic\'s ARN as a literal.');
    }
    return handlerMetric(METRIC.PLUGIN_ERRORS, orchestratorName, { activity: this.activityName }, props);
  }
}
