/**
 * The plugin registry (plugin table): which plugins serve one stage of one activity, in the
 * order they run. Items are written by the constructs at deploy time and by the dynamic
 * registration path; a malformed item is logged and left out rather than failing every run.
 */
import { Document, getDocument, queryPage } from './documents';
import type { FilterPolicyScope } from './filter-policy';
import { logger } from './observability';
import { PluginKind, StageKey } from './status';
import { PluginRef } from './status-store';
import { RESERVED_NAMES } from './validation';
import { REGISTRY } from '../../src/private/contract';

export interface RegisteredPlugin {
  readonly pluginName: string;
  readonly subscriptionArn: string;
  readonly functionName: string;
  readonly functionArn?: string;
  readonly mandatory: boolean;
  readonly order: number;
  readonly timeoutSeconds?: number;
  /** JSON string of the SNS subscription filter policy. */
  readonly filterPolicy?: string;
  readonly filterPolicyScope?: FilterPolicyScope;
}

/** Plugins without an `order` run after ordered ones (the seed's default was 90). */
export const DEFAULT_PLUGIN_ORDER = REGISTRY.defaultOrder;

/** The registry's partition key for one stage of one activity. */
export function registryId(activity: string, stage: StageKey): string {
  return `${activity}|${stage}`;
}

export function pluginKind(plugin: Pick<RegisteredPlugin, 'mandatory'>): PluginKind {
  return plugin.mandatory ? 'mandatory' : 'optional';
}

export function pluginRef(plugin: RegisteredPlugin): PluginRef {
  return { name: plugin.pluginName, kind: pluginKind(plugin) };
}

/**
 * Why a run-time registration failed (its `initialize` handshake threw, timed out or answered
 * garbage), or undefined. Such an item records the failure; it is not a registered plugin: stages
 * neither create an entry for it nor wait for it (DESIGN.md "Run-time registration").
 */
export function registrationErrorOf(item: Record<string, unknown>): string | undefined {
  return typeof item.registrationError === 'string' && item.registrationError !== '' ? item.registrationError : undefined;
}

/**
 * Parses one registry item; undefined when it cannot name and reach a plugin, or when it records a
 * failed run-time registration (`registrationError`).
 */
export function parseRegistryItem(item: Record<string, unknown>): RegisteredPlugin | undefined {
  if (registrationErrorOf(item) !== undefined) return undefined;
  const functionName = typeof item.functionName === 'string' ? item.functionName : undefined;
  const pluginName = typeof item.pluginName === 'string' && item.pluginName !== '' ? item.pluginName : functionName;
  // A reserved name (`__proto__`, `constructor`, ...) cannot be a plugin entry of the status document.
  if (!pluginName || RESERVED_NAMES.has(pluginName) || !functionName || typeof item.subscriptionArn !== 'string') return undefined;
  const order = typeof item.order === 'number' && Number.isFinite(item.order) ? item.order : DEFAULT_PLUGIN_ORDER;
  return {
    pluginName,
    subscriptionArn: item.subscriptionArn,
    functionName,
    functionArn: typeof item.functionArn === 'string' ? item.functionArn : undefined,
    mandatory: item.mandatory !== false, // mandatory unless it says otherwise
    order,
    timeoutSeconds: typeof item.timeoutSeconds === 'number' ? item.timeoutSeconds : undefined,
    filterPolicy: typeof item.filterPolicy === 'string' && item.filterPolicy !== '' ? item.filterPolicy : undefined,
    filterPolicyScope: item.filterPolicyScope === 'MessageBody' ? 'MessageBody' : undefined,
  };
}

/** By `order`, then by name; one entry per plugin name (the first in that order wins). */
export function orderPlugins(plugins: readonly RegisteredPlugin[]): RegisteredPlugin[] {
  const sorted = [...plugins].sort((a, b) => a.order - b.order || (a.pluginName < b.pluginName ? -1 : a.pluginName > b.pluginName ? 1 : 0));
  const seen = new Set<string>();
  return sorted.filter((plugin) => !seen.has(plugin.pluginName) && seen.add(plugin.pluginName));
}

/** The registry item of one subscription to one stage (its exact key: no index, no scan), if there is one. */
export async function registryItem(
  tableName: string, activity: string, stage: StageKey, subscriptionArn: string,
): Promise<Record<string, unknown> | undefined> {
  const key = { orchestratorId: registryId(activity, stage), subscriptionArn };
  const answer = await getDocument({ TableName: tableName, Key: key });
  return answer.Item;
}

export async function loadPlugins(tableName: string, activity: string, stage: StageKey): Promise<RegisteredPlugin[]> {
  const plugins: RegisteredPlugin[] = [];
  let startKey: Document | undefined;
  do {
    const page = await queryPage({
      TableName: tableName,
      KeyConditionExpression: 'orchestratorId = :id',
      ExpressionAttributeValues: { ':id': registryId(activity, stage) },
      ExclusiveStartKey: startKey,
    });
    for (const item of page.Items) {
      const plugin = parseRegistryItem(item);
      if (plugin) plugins.push(plugin);
      else if (registrationErrorOf(item)) logger.warn('Plugin not registered: its initialize handshake failed', { activity, stage, item });
      else logger.warn('Ignoring malformed plugin registry item', { activity, stage, item });
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return orderPlugins(plugins);
}
