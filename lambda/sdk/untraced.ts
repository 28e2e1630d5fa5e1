/**
 * Stands in for lambda/shared/observability.ts in the plugin SDK's bundle only (scripts/build-plugin-sdk.mjs
 * resolves that module here): the orchestrator's handlers trace their AWS SDK clients with Powertools,
 * which a plugin's function does not have. The shared status code is otherwise the same.
 */
export const tracer = {
  captureAWSv3Client<T>(client: T): T {
    return client;
  },
};
