/**
 * parallel-stage: starts the `async` stage of one activity (a `waitForTaskToken` task). One
 * UpdateItem marks the stage started, creates the plugin entries, stores the task token and adds
 * the activity to `awaiting`; one SNS publish reaches every subscribed plugin; status-summary
 * answers the token when the mandatory plugins are done. With nothing mandatory to wait for, the
 * token is answered here at once and not stored. A finished stage (re-run) is answered at once too.
 */
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { containerClient } from './shared/clients';
import { pluginTableName, statusTableName } from './shared/environment';
import { RunContext, StatusItemMissing } from './shared/errors';
import { matchesFilterPolicy } from './shared/filter-policy';
import { addMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { loadPlugins, pluginKind, pluginRef, RegisteredPlugin } from './shared/registry';
import { preparePluginMessage, startStage } from './shared/stage';
import { activityOf, isPluginPending, MessageAttribute, ownField, State, StatusDocument, unregisteredPendingEntries } from './shared/status';
import { PluginRef, statusChangeUpdate, StatusTarget } from './shared/status-store';
import { readStatus, updateStatus } from './shared/status-table';
import { sendTaskSuccess } from './shared/task-token';
import { parseParallelStageEvent, ParallelStageEvent } from './shared/validation';

const sns = () => containerClient('sns', SNSClient);

const FILTERED_OUT_MESSAGE = 'Not sent: the subscription filter policy does not match this run';

export interface ParallelStageResult {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: 'async';
  readonly state: State;
  /** False when the stage was already done (a re-run). */
  readonly started: boolean;
  /** True when the token was stored for status-summary to answer. */
  readonly waiting: boolean;
  readonly published: boolean;
}

export const handler = instrumented(runParallelStage);

async function runParallelStage(rawEvent: unknown): Promise<ParallelStageResult> {
  const event = parseParallelStageEvent(rawEvent);
  const { uid, workflow, activity, token } = event;
  const context: RunContext = { uid, workflow, activity, stage: 'async' };
  appendRunKeys(context);
  const target: StatusTarget = { tableName: statusTableName(), key: { uid, workflow } };
  const now = new Date().toISOString();

  const plugins = await loadPlugins(pluginTableName(), activity, 'async');
  const unreachable = await pluginsFilteredOut(plugins, target, event, now, context);
  const reachable = plugins.filter((plugin) => !unreachable.some((ref) => ref.name === plugin.pluginName));
  const waitsForMandatory = reachable.some((plugin) => plugin.mandatory);
  const stageState = waitsForMandatory ? State.IN_PROGRESS : reachable.length > 0 ? State.MANDATORY_COMPLETED : State.COMPLETE;

  const start = await startStage(target, {
    activity,
    stage: 'async',
    plugins: plugins.map(pluginRef),
    stageState,
    now,
    token: waitsForMandatory ? token : undefined,
    // Optional plugins still report in: status-summary settles the stage when they are done.
    awaiting: reachable.length > 0,
    doNotRun: unreachable,
    doNotRunMessage: FILTERED_OUT_MESSAGE,
  }, context);
  const result = (doc: StatusDocument, started: boolean, published: boolean): ParallelStageResult => ({
    uid, workflow, activity, stage: 'async', state: doc.activities[activity].async.status.state, started, waiting: started && waitsForMandatory, published,
  });
  if (!start.started) {
    await sendTaskSuccess(token, { activity, stage: 'async', skipped: true });
    logger.info('Stage already done; skipped', { state: start.doc.activities[activity].async.status.state });
    return result(start.doc, false, false);
  }
  // A retried invocation finds the first start's startTime.
  if (start.doc.activities[activity].async.status.startTime === now) addMetric(Metric.STAGE_STARTED);

  let doc = start.doc;
  const stale = unregisteredPendingEntries(doc.activities[activity].async, plugins.map(pluginRef));
  if (stale.length > 0) {
    // Rare: plugins removed since an earlier run left pending entries that would hold the stage.
    const cleaned = await updateStatus(statusChangeUpdate(target, { activity, stage: 'async', now, removeEntries: stale }));
    if (cleaned.applied) doc = cleaned.item!;
  }
  // A re-run whose reachable plugins all finished in an earlier run has nobody to tell: status-summary
  // settles the stage from the stored entries (the start write wakes it).
  const entries = doc.activities[activity].async;
  const pending = reachable.filter((plugin) => isPluginPending(ownField(entries[pluginKind(plugin)], plugin.pluginName)?.state));
  if (pending.length > 0) {
    const { body, attributes } = preparePluginMessage(doc, activity, 'async', now);
    await sns().send(new PublishCommand({ TopicArn: event.topicArn, Message: body, MessageAttributes: attributes }));
  }
  if (!waitsForMandatory) {
    await sendTaskSuccess(token, { activity, stage: 'async', state: stageState });
    addMetric(Metric.STAGE_COMPLETED);
  }
  logger.info('Parallel stage started', { plugins: reachable.map((plugin) => plugin.pluginName), waiting: waitsForMandatory });
  return result(doc, true, pending.length > 0);
}

/**
 * Plugins whose SNS filter policy rejects this run's message never hear of it; they are recorded
 * `Do Not Run` instead of holding the stage until it times out. Costs one read, and only when a
 * registered plugin has a filter policy.
 */
async function pluginsFilteredOut(
  plugins: readonly RegisteredPlugin[], target: StatusTarget, event: ParallelStageEvent, now: string, context: RunContext,
): Promise<PluginRef[]> {
  if (!plugins.some((plugin) => plugin.filterPolicy)) return [];
  const doc = await readStatus(target.tableName, target.key);
  const activityDoc = doc ? activityOf(doc, event.activity) : undefined;
  if (!doc || !activityDoc) {
    throw new StatusItemMissing(`No status item for ${target.key.uid}/${target.key.workflow} with activity ${event.activity}`, context);
  }
  const { body, attributes } = preparePluginMessage(doc, event.activity, 'async', now);
  const stage = activityDoc.async;
  return plugins
    .filter((plugin) => plugin.filterPolicy && !receives(plugin, body, attributes))
    .map(pluginRef)
    // A plugin already done in an earlier run keeps its state.
    .filter((ref) => isPluginPending(stage[ref.kind][ref.name]?.state));
}

function receives(plugin: RegisteredPlugin, body: string, attributes: Record<string, MessageAttribute>): boolean {
  try {
    return matchesFilterPolicy(plugin.filterPolicy, { body, attributes }, plugin.filterPolicyScope);
  } catch (error) {
    // SNS never accepts a policy we cannot parse: wait for the plugin rather than skip it.
    logger.warn('Unreadable filter policy in the plugin registry', { plugin: plugin.pluginName, error });
    return true;
  }
}
