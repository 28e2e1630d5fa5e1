/**
 * The `initialize` handshake of run-time registration (docs/PLUGIN-PROTOCOL.md "The initialize
 * handshake"): the registrar invokes a newly subscribed plugin synchronously with
 * `{ "initialize": true }` and the plugin answers with its configuration. No AWS calls: the
 * registrar validates answers with it and the plugin SDK can check its answer against it.
 */
import { isObject } from './json';
import { FIFO_KEY_MAX_LENGTH, ORDER_RANGE, PLUGIN_NAME_MAX_LENGTH, REGISTRY } from '../../src/private/contract';
import type { PluginConfig as SdkPluginConfig, PluginOverride } from '../sdk/types';

export { ORDER_RANGE };

/** What the registrar sends. A plugin that sees `initialize: true` answers and does no work. */
export const INITIALIZE_REQUEST = { initialize: true } as const;

/** Pre/post plugin names, like `addPlugin`'s `pluginName`: they key the plugin's status entries. */
const PLUGIN_NAME = new RegExp(`^[A-Za-z0-9_-]{1,${PLUGIN_NAME_MAX_LENGTH}}$`);
/** `pluginRegisterTimeout` is stored in seconds; a day is more than any stage waits. */
const MAX_REGISTER_TIMEOUT_SECONDS = 86_400;
const MAX_DESCRIPTION_LENGTH = 1024;
/** A registration error is stored on the registry item and logged: keep it readable. */
const MAX_ERROR_LENGTH = 500;

/** Per-activity settings that win over the plugin's own (the SDK's `PluginOverride`). */
export type ActivityOverride = PluginOverride;

/**
 * A plugin's answer to the handshake, validated: the SDK's `PluginConfig` (which answers it) with
 * every field optional and without the SDK's own `statusTableName`.
 */
export type PluginConfig = Partial<Omit<SdkPluginConfig, 'statusTableName'>>;

/** The configuration as it applies to one activity (overrides resolved, defaults filled in). */
export interface ResolvedPluginConfig {
  readonly pluginName: string;
  readonly mandatory: boolean;
  readonly order: number;
  readonly alwaysRun?: boolean;
  readonly idempotent?: boolean;
  readonly pluginRegisterTimeout?: number;
  readonly description?: string;
  readonly fifoKey?: string;
}

export type HandshakeAnswer =
  | { readonly ok: true; readonly config: PluginConfig }
  | { readonly ok: false; readonly error: string };


function shown(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

function isOrder(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= ORDER_RANGE.min && value <= ORDER_RANGE.max;
}

const ORDER_RULE = `a whole number from ${ORDER_RANGE.min} to ${ORDER_RANGE.max}`;

/**
 * Validates the plugin's answer (its invocation result, JSON-decoded). Unknown fields are ignored
 * (newer plugins may say more); a known field of the wrong type or out of range makes the whole
 * answer invalid, with every problem named.
 */
export function parseHandshakeAnswer(answer: unknown): HandshakeAnswer {
  if (!isObject(answer)) {
    return invalid([`the answer must be a JSON object with the plugin's configuration (pluginName, mandatory, order, ...), got ${shown(answer)}`]);
  }
  const problems: string[] = [];
  const config: Record<string, unknown> = {};
  const { pluginName, mandatory, order, overrides, alwaysRun, idempotent, pluginRegisterTimeout, description, fifoKey } = answer;
  if (pluginName !== undefined) {
    if (typeof pluginName === 'string' && PLUGIN_NAME.test(pluginName)) config.pluginName = pluginName;
    else problems.push(`pluginName must be 1-${PLUGIN_NAME_MAX_LENGTH} characters from A-Z a-z 0-9 _ -, got ${shown(pluginName)}`);
  }
  for (const [field, value] of [['mandatory', mandatory], ['alwaysRun', alwaysRun], ['idempotent', idempotent]] as const) {
    if (value === undefined) continue;
    if (typeof value === 'boolean') config[field] = value;
    else problems.push(`${field} must be true or false, got ${shown(value)}`);
  }
  if (order !== undefined) {
    if (isOrder(order)) config.order = order;
    else problems.push(`order must be ${ORDER_RULE}, got ${shown(order)}`);
  }
  if (pluginRegisterTimeout !== undefined) {
    if (typeof pluginRegisterTimeout === 'number' && Number.isFinite(pluginRegisterTimeout)
      && pluginRegisterTimeout >= 0 && pluginRegisterTimeout <= MAX_REGISTER_TIMEOUT_SECONDS) {
      config.pluginRegisterTimeout = pluginRegisterTimeout;
    } else {
      problems.push(`pluginRegisterTimeout must be a number of seconds from 0 to ${MAX_REGISTER_TIMEOUT_SECONDS}, got ${shown(pluginRegisterTimeout)}`);
    }
  }
  if (description !== undefined) {
    if (typeof description === 'string' && description.length <= MAX_DESCRIPTION_LENGTH) config.description = description;
    else problems.push(`description must be a string of at most ${MAX_DESCRIPTION_LENGTH} characters, got ${shown(description)}`);
  }
  if (fifoKey !== undefined) {
    if (typeof fifoKey === 'string' && fifoKey !== '' && fifoKey.length <= FIFO_KEY_MAX_LENGTH) config.fifoKey = fifoKey;
    else problems.push(`fifoKey must be the name of a metadata field (1-${FIFO_KEY_MAX_LENGTH} characters), got ${shown(fifoKey)}`);
  }
  if (overrides !== undefined) {
    const parsed = parseOverrides(overrides, problems);
    if (parsed) config.overrides = parsed;
  }
  return problems.length ? invalid(problems) : { ok: true, config: config as PluginConfig };
}

function parseOverrides(overrides: unknown, problems: string[]): Record<string, ActivityOverride> | undefined {
  if (!isObject(overrides)) {
    problems.push(`overrides must be an object keyed by activity name, got ${shown(overrides)}`);
    return undefined;
  }
  // A null prototype: an activity named `__proto__` or `constructor` is just a key.
  const out: Record<string, ActivityOverride> = Object.create(null);
  for (const [activity, value] of Object.entries(overrides)) {
    if (!isObject(value)) {
      problems.push(`overrides.${activity} must be an object { mandatory?, order? }, got ${shown(value)}`);
      continue;
    }
    const override: { mandatory?: boolean; order?: number } = {};
    if (value.mandatory !== undefined) {
      if (typeof value.mandatory === 'boolean') override.mandatory = value.mandatory;
      else problems.push(`overrides.${activity}.mandatory must be true or false, got ${shown(value.mandatory)}`);
    }
    if (value.order !== undefined) {
      if (isOrder(value.order)) override.order = value.order;
      else problems.push(`overrides.${activity}.order must be ${ORDER_RULE}, got ${shown(value.order)}`);
    }
    out[activity] = override;
  }
  return out;
}

function invalid(problems: string[]): HandshakeAnswer {
  const text = `invalid initialize answer: ${problems.join('; ')}`;
  return { ok: false, error: text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 3)}...` : text };
}

/** The configuration for one activity: its override wins, then the plugin's own values, then the defaults. */
export function resolvePluginConfig(config: PluginConfig, activity: string, functionName: string): ResolvedPluginConfig {
  const override = config.overrides && Object.hasOwn(config.overrides, activity) ? config.overrides[activity] : undefined;
  return {
    pluginName: config.pluginName ?? functionName,
    mandatory: override?.mandatory ?? config.mandatory ?? REGISTRY.defaultMandatory,
    order: override?.order ?? config.order ?? REGISTRY.defaultOrder,
    alwaysRun: config.alwaysRun,
    idempotent: config.idempotent,
    pluginRegisterTimeout: config.pluginRegisterTimeout,
    description: config.description,
    fifoKey: config.fifoKey,
  };
}

/** Shortens an error text for the registry item and the log. */
export function registrationErrorText(text: string): string {
  return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH - 3)}...` : text;
}
