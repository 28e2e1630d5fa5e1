/**
 * The plugin's configuration: checked once, when the plugin module loads (a mistake fails the
 * deployment's first invocation with a clear message, not a run), and answered to `initialize`.
 */
import { InvalidPluginConfig } from './errors';
import { PluginConfig, PluginInitialization, PluginOverride } from './types';

/** behaviour.md defaults. */
const DEFAULT_ORDER = 90;
const MAX_ORDER = 1_000_000;
const PLUGIN_NAME = /^[A-Za-z0-9_-]{1,64}$/;

function checkOrder(where: string, order: unknown): void {
  if (order !== undefined && (!Number.isInteger(order) || (order as number) < 0 || (order as number) > MAX_ORDER)) {
    throw new InvalidPluginConfig(`${where}: order is ${JSON.stringify(order)}; it must be a whole number from 0 to 1,000,000`);
  }
}

function checkBoolean(where: string, field: string, value: unknown): void {
  if (value !== undefined && typeof value !== 'boolean') {
    throw new InvalidPluginConfig(`${where}: ${field} is ${JSON.stringify(value)}; it must be true or false`);
  }
}

/** The configuration with defaults, or `InvalidPluginConfig` naming the field, the value and what is allowed. */
export function resolveConfig(config: PluginConfig): PluginInitialization & { readonly statusTableName?: string } {
  if (typeof config !== 'object' || config === null) {
    throw new InvalidPluginConfig('pluginHandler: the first argument must be the plugin configuration { pluginName, ... }');
  }
  const name = config.pluginName;
  if (typeof name !== 'string' || !PLUGIN_NAME.test(name)) {
    throw new InvalidPluginConfig(`pluginHandler: pluginName is ${JSON.stringify(name)}; it must be 1-64 characters from A-Z a-z 0-9 - _ `
      + '(the same name as in activity.addPlugin)');
  }
  const where = `pluginHandler ${JSON.stringify(name)}`;
  checkBoolean(where, 'mandatory', config.mandatory);
  checkBoolean(where, 'alwaysRun', config.alwaysRun);
  checkBoolean(where, 'idempotent', config.idempotent);
  checkOrder(where, config.order);
  const overrides: Record<string, PluginOverride> = {};
  for (const [activity, override] of Object.entries(config.overrides ?? {})) {
    if (typeof override !== 'object' || override === null) {
      throw new InvalidPluginConfig(`${where}: overrides.${activity} must be an object { mandatory?, order? }`);
    }
    checkBoolean(`${where}: overrides.${activity}`, 'mandatory', override.mandatory);
    checkOrder(`${where}: overrides.${activity}`, override.order);
    overrides[activity] = { ...override };
  }
  const timeout = config.pluginRegisterTimeout;
  if (timeout !== undefined && (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 0)) {
    throw new InvalidPluginConfig(`${where}: pluginRegisterTimeout is ${JSON.stringify(timeout)}; it must be a number of seconds, 0 or more`);
  }
  for (const field of ['description', 'fifoKey', 'statusTableName'] as const) {
    const value = config[field];
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new InvalidPluginConfig(`${where}: ${field} is ${JSON.stringify(value)}; it must be a non-empty string when given`);
    }
  }
  return {
    pluginName: name,
    mandatory: config.mandatory ?? true,
    order: config.order ?? DEFAULT_ORDER,
    overrides,
    alwaysRun: config.alwaysRun ?? false,
    idempotent: config.idempotent ?? true,
    ...(timeout !== undefined ? { pluginRegisterTimeout: timeout } : {}),
    ...(config.description !== undefined ? { description: config.description } : {}),
    ...(config.fifoKey !== undefined ? { fifoKey: config.fifoKey } : {}),
    ...(config.statusTableName !== undefined ? { statusTableName: config.statusTableName } : {}),
  };
}

/** The `initialize` answer (the resolved configuration without SDK-only settings). */
export function initialization(resolved: PluginInitialization & { readonly statusTableName?: string }): PluginInitialization {
  const { statusTableName: _statusTableName, ...answer } = resolved;
  return answer;
}
