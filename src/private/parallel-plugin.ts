// The PARALLEL plugin builder (DESIGN.md "Deploy-time plugin registration"): the function's
// subscription to the parallel topic and its outcome reported through Lambda destinations. Not part
// of the public API.
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { PluginFunction } from './plugin-function';
import { PluginDeliveryParts, PluginTarget, subscribeFunction } from './plugin-wiring';
import { ResolvedPluginOptions, ResolvedWiring } from './resolve-plugin';

export function buildParallelPlugin(scope: Construct, handler: lambda.IFunction, target: PluginTarget,
  options: ResolvedPluginOptions, wiring: ResolvedWiring): PluginDeliveryParts {
  const subscribed = subscribeFunction(scope, target.parallelTopic, handler.functionArn, options.filterPolicy, target.parallelTopicDependency);
  const outcomes = PluginFunction.of(handler)
    .outcomeDestinations(target.where, wiring.pluginOutcomeFunctionArn!, options.timeoutSeconds, options.reportsStatus);
  return {
    subscriptionArn: subscribed.subscriptionArn,
    subscription: subscribed.subscription,
    registryFields: {},
    dependencies: [subscribed.permission, outcomes],
  };
}
