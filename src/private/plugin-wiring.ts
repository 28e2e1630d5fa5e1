// What an activity needs to add plugins (DESIGN.md "Deploy-time plugin registration"), and the
// book-keeping that keeps one activity's plugins consistent. Not part of the public API.
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct, IDependable } from 'constructs';
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

/** What a plugin builder (parallel, queue, sequential) made: what the registration records and waits for. */
export interface PluginDeliveryParts {
  /** The registry item's sort key: the subscription's ARN, or `lambda:<function ARN>` for PRE/POST. */
  readonly subscriptionArn: string;
  readonly subscription?: sns.Subscription;
  readonly queue?: sqs.IQueue;
  readonly deadLetterQueue?: sqs.IQueue;
  /** Registry item fields of this kind (DynamoDB JSON). */
  readonly registryFields: Record<string, Record<string, unknown>>;
  readonly dependencies: IDependable[];
}

/**
 * A Lambda subscription of `functionArn` to `topic`, created after the permission that lets SNS
 * invoke the function (and after the topic itself when only its name is known).
 */
export function subscribeFunction(scope: Construct, topic: sns.ITopic, functionArn: string,
  filterPolicy: { [attribute: string]: sns.SubscriptionFilter } | undefined, topicDependency?: IDependable) {
  const permission = new lambda.CfnPermission(scope, 'SnsInvokePermission', {
    action: 'lambda:InvokeFunction',
    functionName: functionArn,
    principal: 'sns.amazonaws.com',
    sourceArn: topic.topicArn,
  });
  const subscription = new sns.Subscription(scope, 'Subscription', { topic, protocol: sns.SubscriptionProtocol.LAMBDA, endpoint: functionArn, filterPolicy });
  // SNS must be allowed to invoke the function before the first message can arrive.
  subscription.node.addDependency(permission);
  if (topicDependency) subscription.node.addDependency(topicDependency);
  return { permission, subscription, subscriptionArn: (subscription.node.defaultChild as sns.CfnSubscription).ref };
}
