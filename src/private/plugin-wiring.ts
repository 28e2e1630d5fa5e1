// What an activity needs to add plugins (DESIGN.md "Deploy-time plugin registration"), and the
// book-keeping that keeps one activity's plugins consistent. Not part of the public API.
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { IDependable } from 'constructs';
import { quote } from './validation';

/**
 * The orchestrator resources a plugin registration refers to. An activity of this app has all of
 * them; an imported activity has what its attributes named (`undefined` otherwise).
 */
export interface PluginWiring {
  readonly pluginTable?: dynamodb.ITable;
  /** Role of the sequential-stage handler: a PRE/POST plugin's resource policy lets it invoke the plugin. */
  readonly sequentialStageRoleArn?: string;
  /** The plugin-outcome handler: the Lambda destination of every PARALLEL plugin. */
  readonly pluginOutcomeFunctionArn?: string;
  /** The status table: a queue plugin's bridge marks the plugin `In Progress` there. */
  readonly statusTable?: dynamodb.ITable;
  /** The orchestrator's key: it also encrypts a queue plugin's queues. */
  readonly encryptionKey?: kms.IKey;
  /** The layer providing Powertools to the handler bundles (the queue bridge runs one). */
  readonly powertoolsLayer?: lambda.ILayerVersion;
  /**
   * The orchestrator's name, when known: a queue bridge's log group is named under the orchestrator's
   * log-group prefix, which its key policy admits, so the key can encrypt it.
   */
  readonly orchestratorName?: string;
}

/** The activity a plugin is added to, as far as a registration needs it. */
export interface PluginTarget {
  /** `Activity '<path>'`: the prefix of every error message. */
  readonly where: string;
  readonly activityName: string;
  readonly parallelTopic: sns.ITopic;
  /**
   * The parallel topic itself, when `parallelTopic` only names it (an activity in a nested stack):
   * the subscription is created after it.
   */
  readonly parallelTopicDependency?: IDependable;
  readonly wiring: PluginWiring;
  readonly book: PluginBook;
}

/**
 * The plugins of one activity, per stage: a plugin name is used once per stage, and a function is
 * added once per stage (two SNS subscriptions of one function to one topic would be one subscription).
 */
export class PluginBook {
  private readonly stages = new Map<string, Map<string, lambda.IFunction>>();

  /** Throws (naming both) when the name or the function is already used in this stage. */
  public check(where: string, stageKey: string, pluginName: string, handler: lambda.IFunction): void {
    const plugins = this.stages.get(stageKey) ?? new Map<string, lambda.IFunction>();
    if (plugins.has(pluginName)) {
      throw new Error(`${where}: addPlugin ${quote(pluginName)}: stage ${quote(stageKey)} already has a plugin named ${quote(pluginName)} `
        + `(function ${plugins.get(pluginName)!.node.path}); plugin names are unique per activity and stage`);
    }
    for (const [name, fn] of plugins) {
      if (fn === handler) {
        throw new Error(`${where}: addPlugin ${quote(pluginName)}: function ${handler.node.path} is already plugin ${quote(name)} `
          + `of stage ${quote(stageKey)}; a function serves a stage of an activity once`);
      }
    }
  }

  public add(stageKey: string, pluginName: string, handler: lambda.IFunction): void {
    const plugins = this.stages.get(stageKey) ?? new Map<string, lambda.IFunction>();
    plugins.set(pluginName, handler);
    this.stages.set(stageKey, plugins);
  }
}
