// The PRE/POST plugin builder: sequential-stage invokes the function synchronously, so all it needs is
// one statement in the function's resource policy for the orchestrator's sequential-stage role. Not
// part of the public API.
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { PluginFunction } from './plugin-function';
import { PluginDeliveryParts } from './plugin-wiring';
import { ResolvedWiring } from './resolve-plugin';

export function buildSequentialPlugin(handler: lambda.IFunction, wiring: ResolvedWiring): PluginDeliveryParts {
  return {
    // No subscription: the registry keys a PRE/POST plugin by its function.
    subscriptionArn: `lambda:${handler.functionArn}`,
    registryFields: {},
    dependencies: [PluginFunction.of(handler).sequentialInvokePermission(wiring.sequentialStageRoleArn!)],
  };
}
