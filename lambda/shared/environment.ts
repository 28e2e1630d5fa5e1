/** Handler configuration from the environment (see docs/DESIGN.md "Handler environment"). */
import { ConfigurationError } from './errors';

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigurationError(`Environment variable ${name} is not set`);
  return value;
}

export function statusTableName(): string {
  return required('STATUS_TABLE_NAME');
}

export function pluginTableName(): string {
  return required('PLUGIN_TABLE_NAME');
}

/**
 * The status table a plugin built with the plugin SDK reports to (lambda/sdk). `activity.addPlugin`
 * sets it with `reportsStatus: true`; src/plugin.ts names the same variable.
 */
export const PLUGIN_STATUS_TABLE_ENV = 'CDK_ORCHESTRATOR_STATUS_TABLE';
