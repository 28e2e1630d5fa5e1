/**
 * queue-bridge: puts a PARALLEL plugin added with `queue: true` behind an SQS queue (DESIGN.md
 * "Queue bridge"). One function per plugin stack (and orchestrator) serves every queue plugin of
 * that stack; it is invoked two ways:
 *
 * - by SNS (the bridge's subscription to an activity's parallel topic): finds the queue plugin by
 *   its registry item (exact key `<activity>|async` + the delivery's subscription, as plugin-outcome),
 *   marks the plugin `In Progress` ("queued"), then sends the plugin message unchanged (body and
 *   message attributes) to the plugin's queue; FIFO queues get the group of the plugin's `fifoKey`
 *   metadata field (else the run's uid) and a deduplication id;
 * - by SQS (an event source on each queue plugin's dead-letter queue): a message the plugin failed
 *   on `maxReceiveCount` times; the plugin is recorded `Error`.
 *
 * Exactly one enqueue per plugin message, with nothing but the protocol's own entry fields: the
 * In Progress write is accepted only while the entry is `Not Started`, or `In Progress` with an
 * `updatedAt` older than the message (left from an earlier run of the stage), so a duplicate SNS
 * delivery — which finds the entry written after the message was sent — sends nothing, on standard
 * queues too (SQS deduplicates only FIFO queues, for 5 minutes). A send that fails puts the entry
 * back as it was and throws: Lambda retries the delivery, and after its retries the bridge's
 * on-failure destination (plugin-outcome) records the plugin `Error`.
 *
 * A dead letter is recorded `Error` keeping the message the plugin last wrote on its entry (the
 * plugin SDK writes its error there on every failed receive); without one, a generic message.
 */
import { createHash } from 'node:crypto';
import { MessageAttributeValue, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { containerClient } from './shared/clients';
import { Document, queryPage, UpdateInput } from './shared/documents';
import { pluginTableName, statusTableName } from './shared/environment';
import { OrchestratorError } from './shared/errors';
import { isObject } from './shared/json';
import { addActivityMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { deliveryStateUpdate, pluginDelivery, PluginDelivery } from './shared/plugin-delivery';
import { parseRegistryItem, pluginKind, registryId, RegisteredPlugin, registryItem } from './shared/registry';
import { isPluginFinal, PluginEntry, pluginEntryOf, PluginKind, State, StatusDocument } from './shared/status';
import { paths, StatusTarget, UpdateExpressionBuilder } from './shared/status-store';
import { updateStatus } from './shared/status-table';

/** The bridge was invoked with neither an SNS event nor an SQS event; nothing was read or written. */
export class InvalidBridgeEvent extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidBridgeEvent';
  }
}

/** A queue plugin's registry item: the registry fields plus where its messages go. */
export interface QueuedPlugin extends RegisteredPlugin {
  readonly queueUrl: string;
  readonly deadLetterQueueArn: string;
  /** Metadata field whose value is the FIFO message group (FIFO queues only). */
  readonly fifoKey?: string;
  readonly maxReceiveCount?: number;
}

export interface EnqueueResult {
  readonly enqueued: boolean;
  readonly plugin?: string;
  /** Why nothing was sent. */
  readonly reason?: string;
  readonly messageId?: string;
}

export interface BridgeResult {
  readonly results: EnqueueResult[];
}

export interface DeadLetterResponse {
  readonly batchItemFailures: { readonly itemIdentifier: string }[];
}

/** The Error message of a dead letter when the plugin wrote no message of its own on its entry. */
export const deadLetterMessage = (maxReceiveCount?: number): string =>
  `The plugin failed on its queued message${maxReceiveCount === undefined ? '' : ` ${maxReceiveCount} times`}; the message went to the dead-letter queue`;
/** SQS: a message group id is 1-128 characters of letters, digits and punctuation. */
const GROUP_ID = /^[\x21-\x7e]{1,128}$/;

export const handler = instrumented(bridge);

async function bridge(event: unknown): Promise<BridgeResult | DeadLetterResponse> {
  const records = isObject(event) && Array.isArray(event.Records) ? event.Records as unknown[] : [];
  if (records.length > 0 && records.every((r) => isObject(r) && r.EventSource === 'aws:sns')) {
    const results: EnqueueResult[] = [];
    for (const record of records) results.push(await enqueue(record as Record<string, unknown>));
    return { results };
  }
  if (records.length > 0 && records.every((r) => isObject(r) && r.eventSource === 'aws:sqs')) {
    // SQS always sends these as strings; anything else would fail as a TypeError, reported as a batch item failure.
    const malformed = (records as Record<string, unknown>[]).find((r) => ['messageId', 'body', 'eventSourceARN'].some((field) => typeof r[field] !== 'string'));
    if (malformed) throw new InvalidBridgeEvent('Invalid queue-bridge event: an SQS record needs string messageId, body and eventSourceARN');
    return recordDeadLetters(records as SqsRecord[]);
  }
  throw new InvalidBridgeEvent('Invalid queue-bridge event: expected an SNS event (a parallel-stage plugin message) '
    + 'or an SQS event (a queue plugin\'s dead-letter queue)');
}

// Enqueue ----------------------------------------------------------------------------------------

async function enqueue(record: Record<string, unknown>): Promise<EnqueueResult> {
  const delivery = pluginDelivery({ Records: [record] });
  if (typeof delivery === 'string') return skipped(delivery);
  appendRunKeys({ uid: delivery.uid, workflow: delivery.workflow, activity: delivery.activity, stage: delivery.stage });
  if (delivery.stage !== 'async') return skipped(`a ${delivery.stage} plugin message; only parallel-stage messages are queued`);
  const plugin = await pluginBySubscription(delivery);
  if (!plugin) return skipped(`no queue plugin of ${registryId(delivery.activity, delivery.stage)} is registered for subscription ${delivery.subscriptionArn}`);

  const sns = record.Sns as { Message: string; MessageId?: string; MessageAttributes?: Record<string, { Type: string; Value: string }> };
  const kind = pluginKind(plugin);
  const deduplicationId = sha256([delivery.uid, delivery.workflow, delivery.activity, delivery.stage, plugin.pluginName, delivery.sentAt ?? sns.MessageId ?? ''].join('\n'));
  const target: StatusTarget = { tableName: statusTableName(), key: { uid: delivery.uid, workflow: delivery.workflow } };
  const entry = paths.entry(delivery.activity, delivery.stage, kind, plugin.pluginName);
  const now = new Date().toISOString();
  const guarded = deliveryStateUpdate(statusTableName(), delivery, { pluginName: plugin.pluginName, kind },
    { state: State.IN_PROGRESS, now }, (update) => notQueuedYet(update, entry, delivery.sentAt));
  // ALL_OLD both ways: the entry as it was, to put it back if the send fails, or to say why the write was refused.
  const written = await updateStatus({ ...guarded, ReturnValues: 'ALL_OLD', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
  if (!written.applied) {
    const reason = refusal(written.current, delivery, kind, plugin.pluginName);
    logger.info('Plugin message not queued', { plugin: plugin.pluginName, reason });
    return { enqueued: false, plugin: plugin.pluginName, reason };
  }

  const fifo = plugin.queueUrl.endsWith('.fifo');
  try {
    const sent = await sqs().send(new SendMessageCommand({
      QueueUrl: plugin.queueUrl,
      MessageBody: sns.Message,
      MessageAttributes: sqsAttributes(sns.MessageAttributes),
      ...(fifo ? { MessageGroupId: messageGroupId(sns.Message, plugin.fifoKey, delivery.uid), MessageDeduplicationId: deduplicationId } : {}),
    }));
    logger.info('Plugin message queued', { plugin: plugin.pluginName, queueUrl: plugin.queueUrl, messageId: sent.MessageId });
    return { enqueued: true, plugin: plugin.pluginName, messageId: sent.MessageId };
  } catch (error) {
    // Put the entry back so Lambda's retry of this delivery sends it; then fail the invocation.
    const before = written.item && pluginEntryOf(written.item, delivery.activity, delivery.stage, kind, plugin.pluginName);
    await updateStatus(putBack(target, entry, now, before))
      .catch((putBackError: unknown) => logger.error('Could not put the plugin\'s entry back', { plugin: plugin.pluginName, error: putBackError }));
    throw error;
  }
}

function skipped(reason: string): EnqueueResult {
  logger.warn('Plugin message not queued', { reason });
  return { enqueued: false, reason };
}

/**
 * Adds to the plugin's In Progress write: the entry is `Not Started`, or was last written before the
 * message was sent (`updatedAt` < the message's `now`: an entry left `In Progress` by an earlier run
 * of the stage). A duplicate delivery finds the entry written after the message was sent: refused.
 */
export function notQueuedYet(update: UpdateInput, entry: string[], sentAt: string | undefined): UpdateInput {
  const entryNames = Object.fromEntries(entry.map((segment, i) => [`#qb${i}`, segment]));
  const path = Object.keys(entryNames).join('.');
  const notStarted = `${path}.#qbState = :qbNotStarted`;
  const olderThanMessage = sentAt === undefined ? undefined : `${path}.#qbUpdatedAt < :qbSentAt`;
  return {
    ...update,
    ConditionExpression: `${update.ConditionExpression} AND ${olderThanMessage ? `(${notStarted} OR ${olderThanMessage})` : notStarted}`,
    ExpressionAttributeNames: {
      ...update.ExpressionAttributeNames, ...entryNames, '#qbState': 'state', ...(olderThanMessage ? { '#qbUpdatedAt': 'updatedAt' } : {}),
    },
    ExpressionAttributeValues: {
      ...update.ExpressionAttributeValues, ':qbNotStarted': State.NOT_STARTED, ...(olderThanMessage ? { ':qbSentAt': sentAt } : {}),
    },
  };
}

/** The entry as it was before the In Progress write whose message could not be sent (only if that write is still the last). */
function putBack(target: StatusTarget, entry: string[], writtenAt: string, before: PluginEntry | undefined): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  builder.set([...entry, 'state'], before?.state ?? State.NOT_STARTED);
  if (before?.updatedAt !== undefined) builder.set([...entry, 'updatedAt'], before.updatedAt);
  if (before?.message !== undefined) builder.set([...entry, 'message'], before.message);
  builder.condition(`${builder.path([...entry, 'updatedAt'])} = ${builder.value(writtenAt)}`);
  builder.condition(`${builder.path([...entry, 'state'])} = ${builder.value(State.IN_PROGRESS)}`);
  return builder.build(target);
}

/** Why the In Progress write was refused, from the item as it was (ALL_OLD). */
function refusal(current: StatusDocument | undefined, delivery: PluginDelivery, kind: PluginKind, plugin: string): string {
  if (!current) return 'no status item for this run';
  const entry = pluginEntryOf(current, delivery.activity, delivery.stage, kind, plugin);
  if (!entry) return 'the run has no entry for this plugin';
  if (isPluginFinal(entry.state)) return `the plugin is already ${entry.state}`;
  const startTime = current.activities[delivery.activity]?.[delivery.stage]?.status?.startTime;
  if (delivery.sentAt !== undefined && startTime !== undefined && startTime > delivery.sentAt) return 'the stage was started again after this message was sent';
  return 'already queued (a duplicate delivery of this message)';
}

/** The FIFO group: the plugin's `fifoKey` metadata field when it holds a scalar, else the run's uid. */
export function messageGroupId(body: string, fifoKey: string | undefined, uid: string): string {
  let value: unknown;
  if (fifoKey) {
    try {
      const message = JSON.parse(body) as Record<string, unknown>;
      value = message[fifoKey];
    } catch {
      value = undefined;
    }
  }
  const group = (typeof value === 'string' && value !== '') || typeof value === 'number' || typeof value === 'boolean' ? String(value) : uid;
  // A value SQS would refuse (too long, spaces, non-ASCII) keeps its grouping through its hash.
  return GROUP_ID.test(group) ? group : sha256(group);
}

/** SNS message attributes (Lambda record shape) as SQS message attributes. */
function sqsAttributes(attributes: Record<string, { Type: string; Value: string }> | undefined): Record<string, MessageAttributeValue> | undefined {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, attribute] of Object.entries(attributes ?? {})) {
    if (!attribute || typeof attribute.Value !== 'string') continue;
    out[name] = attribute.Type === 'Binary'
      ? { DataType: 'Binary', BinaryValue: Buffer.from(attribute.Value, 'base64') }
      : { DataType: attribute.Type || 'String', StringValue: attribute.Value };
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

async function pluginBySubscription(delivery: PluginDelivery): Promise<QueuedPlugin | undefined> {
  const item = await registryItem(pluginTableName(), delivery.activity, delivery.stage, delivery.subscriptionArn);
  return item ? queuedPlugin(item) : undefined;
}

/** A registry item of a queue plugin, or undefined (logged) when it is not one. */
export function queuedPlugin(item: Record<string, unknown>): QueuedPlugin | undefined {
  const plugin = parseRegistryItem(item);
  if (!plugin || typeof item.queueUrl !== 'string' || typeof item.deadLetterQueueArn !== 'string') {
    logger.warn('Ignoring a registry item that is not a queue plugin', { item });
    return undefined;
  }
  return {
    ...plugin,
    queueUrl: item.queueUrl,
    deadLetterQueueArn: item.deadLetterQueueArn,
    fifoKey: typeof item.fifoKey === 'string' && item.fifoKey !== '' ? item.fifoKey : undefined,
    maxReceiveCount: typeof item.maxReceiveCount === 'number' ? item.maxReceiveCount : undefined,
  };
}

// Dead letters -----------------------------------------------------------------------------------

interface SqsRecord {
  readonly messageId: string;
  readonly body: string;
  readonly eventSourceARN: string;
}

async function recordDeadLetters(records: SqsRecord[]): Promise<DeadLetterResponse> {
  const batchItemFailures: { itemIdentifier: string }[] = [];
  for (const record of records) {
    try {
      await recordDeadLetter(record);
    } catch (error) {
      // Retried from the dead-letter queue (no redrive: it stays there until recorded or expired).
      logger.error('Dead letter not recorded', { messageId: record.messageId, error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
}

async function recordDeadLetter(record: SqsRecord): Promise<void> {
  // The queued body is the plugin message: read it as the SNS delivery it came from.
  const delivery = pluginDelivery({ Records: [{ EventSubscriptionArn: record.eventSourceARN, Sns: { Message: record.body } }] });
  // The body is logged: the dead-letter message is deleted once handled.
  const body = record.body.slice(0, 4096);
  if (typeof delivery === 'string') {
    logger.warn('Dead letter ignored', { reason: delivery, messageId: record.messageId, body });
    return;
  }
  const keys = { uid: delivery.uid, workflow: delivery.workflow, activity: delivery.activity, stage: delivery.stage };
  const plugin = await pluginByDeadLetterQueue(delivery, record.eventSourceARN);
  if (!plugin) {
    logger.warn('Dead letter ignored', { ...keys, reason: `no queue plugin of ${registryId(delivery.activity, delivery.stage)} has dead-letter queue ${record.eventSourceARN}`, body });
    return;
  }
  // The plugin's own last message (its error) wins over ours.
  const guarded = deliveryStateUpdate(statusTableName(), delivery, { pluginName: plugin.pluginName, kind: pluginKind(plugin) },
    { state: State.ERROR, messageUnlessSet: deadLetterMessage(plugin.maxReceiveCount) });
  const written = await updateStatus({ ...guarded, ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
  if (!written.applied) {
    const entry = written.current && pluginEntryOf(written.current, delivery.activity, delivery.stage, pluginKind(plugin), plugin.pluginName);
    const reason = !written.current ? 'no status item for this run' : !entry ? 'the run has no entry for this plugin'
      : isPluginFinal(entry.state) ? `the plugin is already ${entry.state}` : 'the stage was started again after this message was sent';
    logger.info('Dead letter not recorded', { ...keys, plugin: plugin.pluginName, reason, body });
    return;
  }
  logger.error('Queue plugin recorded Error: its message went to the dead-letter queue', { ...keys, plugin: plugin.pluginName, body });
  addActivityMetric({ ...keys, activity: delivery.activity }, Metric.PLUGIN_ERRORS);
}

/** The queue plugin of this stage whose dead-letter queue this is (one Query of the stage's registry items). */
async function pluginByDeadLetterQueue(delivery: PluginDelivery, deadLetterQueueArn: string): Promise<QueuedPlugin | undefined> {
  let startKey: Document | undefined;
  do {
    const page = await queryPage({
      TableName: pluginTableName(),
      KeyConditionExpression: 'orchestratorId = :id',
      FilterExpression: 'deadLetterQueueArn = :dlq',
      ExpressionAttributeValues: { ':id': registryId(delivery.activity, delivery.stage), ':dlq': deadLetterQueueArn },
      ExclusiveStartKey: startKey,
    });
    const item = page.Items[0];
    if (item) return queuedPlugin(item);
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return undefined;
}

// ------------------------------------------------------------------------------------------------

function sqs(): SQSClient {
  return containerClient('sqs', SQSClient);
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

