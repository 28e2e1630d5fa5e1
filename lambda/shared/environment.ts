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
