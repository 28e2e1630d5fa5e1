/**
 * status-summary: consumes the status table's stream (filtered to items with `awaiting`) and
 * settles waiting parallel stages. It reads the stream image only (no GetItem) and writes only
 * when a stage settles, conditioned on the token it is about to answer, so states never move
 * backwards and a token is answered once per settlement. Its own settling write removes the activity
 * from `awaiting`, so it does not wake itself up again.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import { fromAttributeMap, RawAttributeValue } from './shared/attribute-values';
import { statusTableName } from './shared/environment';
import { StatusSummaryFailed } from './shared/errors';
import { addActivityMetric, instrumented, logger, Metric, MetricUnit } from './shared/observability';
import {
  activityOf, asStatusDocument, deepEqual, describeFailure, stageFailure, State, StatusDocument, summarizeStage,
} from './shared/status';
import { stageFailedChange, StatusChange, statusChangeUpdate, StatusTarget } from './shared/status-store';
import { updateStatus } from './shared/status-table';
import { sendTaskFailure, sendTaskHeartbeat, sendTaskSuccess } from './shared/task-token';
import { parseStreamEvent } from './shared/validation';

/** Error name the waiting execution fails with when a mandatory plugin reports `Error`. */
const PLUGIN_FAILED = 'PluginFailed';

/** Stream images as DynamoDB JSON: converted inside `settleItem`, so a malformed one fails only its item. */
type RawImage = Record<string, RawAttributeValue>;

interface ItemChange {
  readonly newImage: RawImage;
  /** The item before the first record of this batch (undefined for a new item). */
  readonly oldImage?: RawImage;
}

export const handler = instrumented(summarizeStream);

async function summarizeStream(rawEvent: unknown): Promise<void> {
  const event = parseStreamEvent(rawEvent);
  const tableName = statusTableName();
  const items = latestImagePerItem(event.Records);
  const results = await Promise.allSettled([...items.values()].map((item) => settleItem(tableName, item)));
  const failures = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failures.length > 0) {
    // Everything here is idempotent: failing the batch makes Lambda deliver it again.
    for (const failure of failures) logger.error('Could not settle an item', { error: failure.reason });
    throw new StatusSummaryFailed(`${failures.length} of ${items.size} status items could not be settled`, { cause: failures[0].reason });
  }
}

/** Only the newest image of each item matters; the oldest old image tells what changed in the batch. */
function latestImagePerItem(records: readonly DynamoDBRecord[]): Map<string, ItemChange> {
  const latest = new Map<string, { newImage?: DynamoDBRecord['dynamodb']; first: DynamoDBRecord['dynamodb'] }>();
  for (const record of records) {
    const image = record.dynamodb;
    const keys = image?.Keys;
    if (typeof keys?.uid?.S !== 'string' || typeof keys.workflow?.S !== 'string' || !keys.uid.S || !keys.workflow.S) continue;
    const key = JSON.stringify([keys.uid.S, keys.workflow.S]);
    const seen = latest.get(key);
    latest.set(key, { first: seen?.first ?? image, newImage: image });
  }
  const changes = new Map<string, ItemChange>();
  for (const [key, { newImage, first }] of latest) {
    // Without `awaiting` in its newest image the item has nothing left to settle.
    if (!newImage?.NewImage?.awaiting) continue;
    changes.set(key, { newImage: newImage.NewImage as RawImage, oldImage: first?.OldImage as RawImage | undefined });
  }
  return changes;
}

/** Throws InvalidAttributeValue for what DynamoDB never sends (null values, 10,000 levels deep, ...). */
function toDocument(image: RawImage): StatusDocument {
  return asStatusDocument(fromAttributeMap(image));
}

async function settleItem(tableName: string, item: ItemChange): Promise<void> {
  // Converted here, inside the batch's error handling: a malformed image fails its item (named), not the process.
  const doc = toDocument(item.newImage);
  const oldImage = item.oldImage ? toDocument(item.oldImage) : undefined;
  const target: StatusTarget = { tableName, key: { uid: doc.uid, workflow: doc.workflow } };
  // One item, one writer at a time: settle its activities one after the other.
  for (const activity of [...doc.awaiting ?? []].sort()) {
    await settleActivity(target, doc, oldImage, activity);
  }
}

async function settleActivity(target: StatusTarget, doc: StatusDocument, oldImage: StatusDocument | undefined, activity: string): Promise<void> {
  const context = { uid: doc.uid, workflow: doc.workflow, activity };
  const now = new Date().toISOString();
  const stage = activityOf(doc, activity)?.async;
  if (!stage) {
    // An activity the run no longer has (dropped by a re-run): stop waiting for it.
    await write(target, { activity, now, stopAwaiting: true });
    return;
  }
  const state = summarizeStage(stage);
  const token = stage.status.token;
  const settled = state === State.COMPLETE || state === State.OPTIONAL_TASK_ERROR || state === State.ERROR;
  // Optional plugins never hold the execution: `Mandatory Completed` releases it too.
  const released = settled || state === State.MANDATORY_COMPLETED;

  if (token && released) {
    const failure = state === State.ERROR ? describeFailure(stageFailure(stage)!) : undefined;
    // Record the outcome BEFORE answering: the answer lets the post stage start, and the post stage
    // summarizes the activity and the run from the document, so this stage must already read done.
    // The write is conditioned on the token: of two deliveries (or stage-failure) only one answers.
    const recorded = await write(target, failure !== undefined
      ? stageFailedChange({ activity, stage: 'async', now, message: failure }, { removeToken: true, stopAwaiting: true, expect: { token } })
      : { activity, stage: 'async', now, stageStatus: { state }, removeToken: true, stopAwaiting: settled, expect: { token } });
    if (!recorded) return;
    try {
      if (failure !== undefined) await sendTaskFailure(token, PLUGIN_FAILED, failure);
      else await sendTaskSuccess(token, { activity, stage: 'async', state });
    } catch (error) {
      // Not answered (a transient Step Functions error): put the token back and fail the batch, so
      // the redelivered record finds the recorded outcome with its token and answers it again.
      await write(target, { activity, stage: 'async', now, restoreToken: token });
      throw error;
    }
    logger.info('Parallel stage released', { ...context, state });
    if (failure === undefined) addActivityMetric({ ...context, stage: 'async' }, Metric.STAGE_COMPLETED);
    if (settled) recordDuration(context, stage.status.startTime, now);
  } else if (!token && settled) {
    const failure = state === State.ERROR ? describeFailure(stageFailure(stage)!) : undefined;
    const recorded = await write(target, { activity, stage: 'async', now, stageStatus: { state, message: failure }, stopAwaiting: true, expect: { noTokenAndAwaiting: true } });
    logger.info('Parallel stage settled', { ...context, state });
    if (recorded) recordDuration(context, stage.status.startTime, now);
  } else if (token && pluginsChanged(oldImage, doc, activity)) {
    // Progress resets the task's HeartbeatSeconds clock; silence lets it time out.
    await sendTaskHeartbeat(token);
  }
}

/** How long the stage's plugins took, from its start until it settled (once per stage: after a recorded write). */
function recordDuration(context: { uid: string; workflow: string; activity: string }, startTime: string | undefined, now: string): void {
  const started = startTime ? Date.parse(startTime) : NaN;
  if (Number.isNaN(started)) return;
  addActivityMetric({ ...context, stage: 'async' }, Metric.PARALLEL_STAGE_DURATION, Math.max(0, (Date.parse(now) - started) / 1000), MetricUnit.Seconds);
}

/** A failed condition means someone already moved on (stage-failure, or a newer record): nothing to do. */
async function write(target: StatusTarget, change: StatusChange): Promise<boolean> {
  const result = await updateStatus(statusChangeUpdate(target, change));
  if (!result.applied) logger.debug('Settling write skipped: the item moved on', { ...target.key, activity: change.activity });
  return result.applied;
}

function pluginsChanged(oldImage: StatusDocument | undefined, doc: StatusDocument, activity: string): boolean {
  const before = oldImage ? activityOf(oldImage, activity)?.async : undefined;
  const after = activityOf(doc, activity)?.async;
  if (!before || !after) return true;
  return !deepEqual([before.mandatory, before.optional], [after.mandatory, after.optional]);
}
