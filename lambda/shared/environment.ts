/** Handler configuration from the environment (see docs/DESIGN.md "Handler environment"). */
import { ConfigurationError } from './errors';
import { ENV } from '../../src/private/contract';

/** The value of an environment variable the constructs set; a named error when it is missing. */
export function requiredEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new ConfigurationError(`Environment variable ${name} is not set`);
  return value;
}

export function statusTableName(): string {
  return requiredEnv(ENV.statusTableName);
}

export function pluginTableName(): string {
  return requiredEnv(ENV.pluginTableName);
}

/** The status table a plugin built with the plugin SDK reports to (lambda/sdk); `addPlugin` sets it with `reportsStatus: true`. */
export const PLUGIN_STATUS_TABLE_ENV = ENV.pluginStatusTable;
