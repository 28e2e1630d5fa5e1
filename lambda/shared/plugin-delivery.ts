/**
 * The run and plugin an SNS delivery to a PARALLEL plugin is about, read from the SNS event the plugin
 * (or the queue bridge) received; shared by plugin-outcome (Lambda destination records) and the queue
 * bridge, so both accept exactly the same plugin messages.
 */
import type { UpdateInput } from './documents';
import { isObject } from './json';
import { PluginKind, PluginState, isStageKey, StageKey } from './status';
import { pluginStateUpdate } from './status-store';
import { keyProblem } from './validation';


/** The run and plugin a destination record is about. */
export interface PluginDelivery {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: StageKey;
  /** When the stage sent the message (`now` of the plugin message). */
  readonly sentAt?: string;
  /** The subscription the message came through: the plugin's registry sort key. */
  readonly subscriptionArn: string;
}

/** The run and subscription from the SNS event the plugin received, or why it is not a plugin message. */
export function pluginDelivery(payload: unknown): PluginDelivery | string {
  const records = isObject(payload) ? payload.Records : undefined;
  const first = Array.isArray(records) ? records[0] : undefined;
  const sns = isObject(first) ? first.Sns : undefined;
  if (!isObject(first) || !isObject(sns) || typeof sns.Message !== 'string' || typeof first.EventSubscriptionArn !== 'string') {
    return 'the plugin was not invoked by an SNS delivery';
  }
  // The registry's sort key: DynamoDB refuses an empty one or one over 1,024 bytes, and SNS sends neither.
  if (keyProblem(first.EventSubscriptionArn) !== undefined) return 'the EventSubscriptionArn is not a subscription ARN (empty or over 1,024 bytes)';
  let message: unknown;
  try {
    message = JSON.parse(sns.Message);
  } catch {
    return 'the SNS message is not JSON';
  }
  if (!isObject(message)) return 'the SNS message is not a plugin message';
  const { uid, workflow, activity, stage, now } = message;
  // The same rules as the stage handlers' events: these become DynamoDB keys and names.
  if (keyProblem(uid) !== undefined || keyProblem(workflow) !== undefined || keyProblem(activity) !== undefined || !isStageKey(stage)) {
    return 'the SNS message is not a plugin message (uid, workflow, activity, stage)';
  }
  return { uid: uid as string, workflow: workflow as string, activity: activity as string, stage, sentAt: typeof now === 'string' && now !== '' ? now : undefined, subscriptionArn: first.EventSubscriptionArn };
}

/**
 * Adds to the plugin-state condition: the stage was started no later than the message was sent.
 * A record from an earlier run of this uid (late retries) must not settle the re-run's entry.
 */
export function notBeforeStageStart(update: UpdateInput, activity: string, stage: StageKey, sentAt: string): UpdateInput {
  const names = { '#poA': 'activities', '#poActivity': activity, '#poStage': stage, '#poStatus': 'status', '#poStart': 'startTime' };
  const startTime = '#poA.#poActivity.#poStage.#poStatus.#poStart';
  return {
    ...update,
    ConditionExpression: `${update.ConditionExpression} AND (attribute_not_exists(${startTime}) OR ${startTime} <= :poSentAt)`,
    ExpressionAttributeNames: { ...update.ExpressionAttributeNames, ...names },
    ExpressionAttributeValues: { ...update.ExpressionAttributeValues, ':poSentAt': sentAt },
  };
}

/**
 * The conditional write that settles one plugin's entry for a delivery (plugin-outcome's destination
 * records, the queue bridge's enqueue and dead letters): the plugin-state transition, then
 * `notBeforeStageStart` so a late delivery of an earlier run never settles a re-run's entry.
 * `adjust` adds to the write before the guard (the queue bridge's enqueue mark).
 */
export function deliveryStateUpdate(
  tableName: string,
  delivery: PluginDelivery,
  plugin: { readonly pluginName: string; readonly kind: PluginKind },
  change: { readonly state: PluginState; readonly message?: string; readonly messageUnlessSet?: string; readonly now?: string },
  adjust: (update: UpdateInput) => UpdateInput = (update) => update,
): UpdateInput {
  const update = adjust(pluginStateUpdate({ tableName, key: { uid: delivery.uid, workflow: delivery.workflow } }, {
    activity: delivery.activity,
    stage: delivery.stage,
    kind: plugin.kind,
    plugin: plugin.pluginName,
    state: change.state,
    message: change.message,
    messageUnlessSet: change.messageUnlessSet,
    now: change.now ?? new Date().toISOString(),
  }));
  return delivery.sentAt ? notBeforeStageStart(update, delivery.activity, delivery.stage, delivery.sentAt) : update;
}
