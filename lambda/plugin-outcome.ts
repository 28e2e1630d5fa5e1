/**
 * plugin-outcome: the on-success and on-failure Lambda destination of every PARALLEL plugin added
 * with `addPlugin`, so a plugin that uses no orchestrator code still reports its outcome.
 *
 * Lambda sends a destination record after the plugin's asynchronous invocation (the SNS delivery)
 * succeeded, or failed for good (after its retries, or when the event grew older than its maximum
 * event age). The record carries the SNS event the plugin received, so the run (uid, workflow,
 * activity, stage, `now`) comes from the plugin message and the plugin from the registry item keyed
 * by the subscription the message came through: one GetItem, one conditional UpdateItem. A warm
 * container remembers the plugins it read (`RememberedPlugins`), so a subscription's later outcomes
 * cost the UpdateItem alone.
 *
 * The write is the plugin-state transition every plugin uses (`pluginStateUpdate`): never backwards.
 * A plugin that already reported a final state itself (the plugin SDK) keeps it, and a record that
 * arrives after the stage was started again (a re-run) changes nothing.
 */
import { pluginTableName, statusTableName } from './shared/environment';
import { InvalidOutcomeEvent } from './shared/errors';
import { isObject } from './shared/json';
import { addMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { deliveryStateUpdate, PluginDelivery, pluginDelivery } from './shared/plugin-delivery';
import { parseRegistryItem, pluginKind, registryId, RegisteredPlugin, registryItem } from './shared/registry';
import { isPluginFinal, pluginEntryOf, PluginState, State, StatusDocument } from './shared/status';
import { updateStatus } from './shared/status-table';

/** The conditions Lambda sends to a destination; any other record is logged and ignored. */
export const DESTINATION_CONDITIONS: readonly string[] = ['Success', 'RetriesExhausted', 'EventAgeExceeded'];

/** What Lambda sends to a destination after an asynchronous invocation. */
export interface DestinationRecord {
  readonly requestContext: {
    readonly functionArn: string;
    /** `Success`, `RetriesExhausted` or `EventAgeExceeded`. */
    readonly condition: string;
    readonly approximateInvokeCount?: number;
  };
  /** The event the plugin was invoked with: here, an SNS event. */
  readonly requestPayload?: unknown;
  readonly responseContext?: { readonly functionError?: string };
  /** The plugin's return value, or its error `{ errorType, errorMessage }`. */
  readonly responsePayload?: unknown;
}

/** What the plugin's invocation says about its state. `undefined` state: nothing to record. */
export interface InvocationOutcome {
  readonly state?: PluginState;
  readonly message?: string;
}

export interface PluginOutcomeResult {
  readonly recorded: boolean;
  /** Why nothing was written. */
  readonly reason?: string;
  readonly plugin?: string;
  readonly state?: PluginState;
}

export const handler = instrumented(recordPluginOutcome);

async function recordPluginOutcome(rawEvent: unknown): Promise<PluginOutcomeResult> {
  const record = parseDestinationRecord(rawEvent);
  if (!DESTINATION_CONDITIONS.includes(record.requestContext.condition)) {
    return ignored(`condition ${JSON.stringify(record.requestContext.condition.slice(0, 100))} is not one Lambda sends (${DESTINATION_CONDITIONS.join(', ')})`, record);
  }
  const delivery = pluginDelivery(record.requestPayload);
  if (typeof delivery === 'string') return ignored(delivery, record);
  appendRunKeys({ uid: delivery.uid, workflow: delivery.workflow, activity: delivery.activity, stage: delivery.stage });
  if (delivery.stage !== 'async') {
    // PRE/POST plugins are invoked synchronously: sequential-stage records their result itself.
    return ignored(`a ${delivery.stage} plugin message; sequential-stage records those`, record);
  }
  const outcome = invocationOutcome(record);
  if (!outcome.state) return ignored('the plugin returned In Progress: it reports its own outcome', record);

  const remembered = rememberedPlugins.get(delivery);
  let plugin = remembered ?? await readRegisteredPlugin(delivery);
  if (!plugin) return ignored(notRegistered(delivery), record);
  const change = { state: outcome.state, message: outcome.message };
  let written = await recordState(delivery, plugin, change);
  if (!written.applied && remembered && mayBeStale(written.current, delivery, plugin)) {
    plugin = await readRegisteredPlugin(delivery);
    if (!plugin) return ignored(notRegistered(delivery), record);
    if (plugin.pluginName !== remembered.pluginName || plugin.mandatory !== remembered.mandatory) {
      logger.info('Plugin registration changed since it was remembered', {
        before: { plugin: remembered.pluginName, kind: pluginKind(remembered) }, after: { plugin: plugin.pluginName, kind: pluginKind(plugin) },
      });
      written = await recordState(delivery, plugin, change);
    }
  }
  if (!written.applied) {
    const reason = refusal(written.current, delivery, plugin);
    logger.info('Plugin outcome not recorded', { plugin: plugin.pluginName, state: outcome.state, reason });
    return { recorded: false, reason, plugin: plugin.pluginName, state: outcome.state };
  }
  logger.info('Plugin outcome recorded', { plugin: plugin.pluginName, state: outcome.state, condition: record.requestContext.condition });
  if (outcome.state === State.ERROR) addMetric(Metric.PLUGIN_ERRORS);
  return { recorded: true, plugin: plugin.pluginName, state: outcome.state };
}

/** The conditional write of the plugin's new state; on a refused write, the item as it was tells why (no extra read). */
function recordState(delivery: PluginDelivery, plugin: PluginIdentity, change: { readonly state: PluginState; readonly message?: string }) {
  const guarded = deliveryStateUpdate(statusTableName(), delivery, { pluginName: plugin.pluginName, kind: pluginKind(plugin) }, change);
  return updateStatus({ ...guarded, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
}

function notRegistered(delivery: PluginDelivery): string {
  return `no plugin of ${registryId(delivery.activity, delivery.stage)} is registered for subscription ${delivery.subscriptionArn}`;
}

function ignored(reason: string, record: DestinationRecord): PluginOutcomeResult {
  logger.warn('Destination record ignored', { reason, functionArn: record.requestContext.functionArn, condition: record.requestContext.condition });
  return { recorded: false, reason };
}


/** A Lambda destination record, or `InvalidOutcomeEvent`. */
export function parseDestinationRecord(event: unknown): DestinationRecord {
  const context = isObject(event) ? event.requestContext : undefined;
  if (!isObject(context) || typeof context.condition !== 'string' || typeof context.functionArn !== 'string') {
    throw new InvalidOutcomeEvent('Invalid plugin-outcome event: expected a Lambda destination record '
      + '{ requestContext: { functionArn, condition }, requestPayload, responsePayload }');
  }
  return event as unknown as DestinationRecord;
}

/**
 * Success -> `Complete`, unless the plugin returned `{ state: 'Error', message? }` (a business
 * failure, as for PRE/POST plugins), `{ state: 'Do Not Run' }`, or `{ state: 'In Progress' }` (it
 * reports its outcome itself later: nothing is recorded). Failure -> `Error` with the error.
 */
export function invocationOutcome(record: DestinationRecord): InvocationOutcome {
  const { condition, approximateInvokeCount } = record.requestContext;
  const attempts = typeof approximateInvokeCount === 'number' && approximateInvokeCount > 0 ? approximateInvokeCount : undefined;
  if (condition === 'Success' && !record.responseContext?.functionError) {
    const result = record.responsePayload;
    if (isObject(result)) {
      if (result.state === State.ERROR) {
        return { state: State.ERROR, message: typeof result.message === 'string' && result.message !== '' ? result.message : 'the plugin reported Error' };
      }
      if (result.state === State.DO_NOT_RUN) return { state: State.DO_NOT_RUN };
      if (result.state === State.IN_PROGRESS) return {};
    }
    return { state: State.COMPLETE };
  }
  const after = attempts === undefined ? '' : ` (after ${attempts} attempt${attempts === 1 ? '' : 's'})`;
  if (condition === 'EventAgeExceeded') {
    return { state: State.ERROR, message: `Timed out: the plugin did not succeed within its maximum event age${after}` };
  }
  // A condition Lambda never sends says nothing about the plugin.
  if (condition !== 'RetriesExhausted' && condition !== 'Success') return {};
  return { state: State.ERROR, message: `${errorText(record.responsePayload)}${after}` };
}

/** `errorType: errorMessage` of a Lambda function error. */
function errorText(payload: unknown): string {
  if (isObject(payload)) {
    const type = typeof payload.errorType === 'string' && payload.errorType !== '' ? payload.errorType : 'Error';
    return typeof payload.errorMessage === 'string' && payload.errorMessage !== '' ? `${type}: ${payload.errorMessage}` : type;
  }
  return typeof payload === 'string' && payload !== '' ? payload : 'the plugin failed';
}

/** What plugin-outcome needs of a registry item: the name and kind of the run's entry. */
type PluginIdentity = Pick<RegisteredPlugin, 'pluginName' | 'mandatory'>;

/**
 * The plugins this container read from the registry, by subscription, for `REMEMBER_MS`: a warm
 * container records a subscription's later outcomes without reading the registry. A remembered name
 * or kind the run has no pending entry for (renamed, made optional or mandatory, unregistered) makes
 * the write refused, and such a refusal reads the registry again (`mayBeStale`). The registry is read after the
 * run's stage started with or without this memory, so a registration changed mid-run could always be
 * told apart only by name; remembering widens that to changes made up to `REMEMBER_MS` before.
 */
class RememberedPlugins {
  private static key(delivery: PluginDelivery): string {
    return `${registryId(delivery.activity, delivery.stage)}\n${delivery.subscriptionArn}`;
  }

  private readonly entries = new Map<string, { readonly plugin: PluginIdentity; readonly until: number }>();

  public get(delivery: PluginDelivery): PluginIdentity | undefined {
    const key = RememberedPlugins.key(delivery);
    const known = this.entries.get(key);
    if (known && known.until > Date.now()) return known.plugin;
    this.entries.delete(key);
    return undefined;
  }

  /** Remembers what the registry said; `undefined` (not registered) forgets the subscription. */
  public set(delivery: PluginDelivery, plugin: RegisteredPlugin | undefined): void {
    const key = RememberedPlugins.key(delivery);
    this.entries.delete(key);
    if (!plugin) return;
    // The oldest is forgotten first: a container that serves many subscriptions stays small.
    if (this.entries.size >= REMEMBER_AT_MOST) this.entries.delete(this.entries.keys().next().value!);
    this.entries.set(key, { plugin: { pluginName: plugin.pluginName, mandatory: plugin.mandatory }, until: Date.now() + REMEMBER_MS });
  }
}
const REMEMBER_MS = 60_000;
const REMEMBER_AT_MOST = 1000;
const rememberedPlugins = new RememberedPlugins();

/** Reads the registry item of the subscription the message came through, and remembers it. */
async function readRegisteredPlugin(delivery: PluginDelivery): Promise<RegisteredPlugin | undefined> {
  const item = await registryItem(pluginTableName(), delivery.activity, delivery.stage, delivery.subscriptionArn);
  const plugin = item ? parseRegistryItem(item) : undefined;
  if (item && !plugin) logger.warn('Ignoring malformed plugin registry item', { item });
  rememberedPlugins.set(delivery, plugin);
  return plugin;
}

/** The run's entry for this plugin under its name and kind, if the run has one. */
function entryOf(current: StatusDocument, delivery: PluginDelivery, plugin: PluginIdentity) {
  return pluginEntryOf(current, delivery.activity, delivery.stage, pluginKind(plugin), plugin.pluginName);
}

/**
 * Whether a refused write may be the remembered plugin's fault, so the registry is read again: the
 * registration may have changed since (renamed, made optional or mandatory), and the run then has no
 * entry under the remembered name and kind, or (a re-run keeps finished work) a final one. A pending
 * entry was refused for the stage's later start, which no name changes.
 */
function mayBeStale(current: StatusDocument | undefined, delivery: PluginDelivery, plugin: PluginIdentity): boolean {
  if (!current) return false;
  const entry = entryOf(current, delivery, plugin);
  return !entry || isPluginFinal(entry.state);
}

/** Why a refused write was refused, from the item as it was (ALL_OLD). */
function refusal(current: StatusDocument | undefined, delivery: PluginDelivery, plugin: PluginIdentity): string {
  if (!current) return 'no status item for this run';
  const entry = entryOf(current, delivery, plugin);
  if (!entry) return 'the run has no entry for this plugin';
  if (isPluginFinal(entry.state)) return `the plugin is already ${entry.state}`;
  return 'the stage was started again after this message was sent';
}
