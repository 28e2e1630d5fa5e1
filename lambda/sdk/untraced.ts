/**
 * Stands in for lambda/shared/observability.ts in the plugin SDK's bundle only (scripts/build-plugin-sdk.mjs
 * resolves that module here): the orchestrator's handlers trace their AWS SDK clients with Powertools,
 * which a plugin's function does not have. The shared status code is otherwise the same.
 */
/** A plugin's function is never traced by the orchestrator's tracer: its clients stay plain. */
export function sampledTracer(): undefined {
  return undefined;
}
