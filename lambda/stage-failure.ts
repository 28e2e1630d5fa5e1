/**
 * stage-failure: the activity state machine's `Catch`. Records `Error` on the stage that failed
 * (the one `In Progress`; a timeout of the waiting parallel stage names the plugins still
 * pending), on the activity and on the run, removes the token and `awaiting`, then throws an error
 * with the original name so the execution fails with it (Retry/Catch and alarms see the real cause).
 * When the failing handler already recorded the failure (PluginFailed), nothing is written.
 */
import { statusTableName } from './shared/environment';
import { RunContext, StageFailed } from './shared/errors';
import { addMetric, appendRunKeys, instrumented, logger, Metric, metrics } from './shared/observability';
import {
  ActivityDocument, activityOf, pendingPlugins, StageKey, STAGES, State, StatusDocument, trimMessage,
} from './shared/status';
import { stageFailedChange, StatusChange, statusChangeUpdate, StatusTarget } from './shared/status-store';
import { readStatus, updateStatus } from './shared/status-table';
import { parseStageFailureEvent } from './shared/validation';

const TIMEOUT_ERRORS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);
/** Re-read and retry when a plugin or status-summary changes the item between our read and write. */
const MAX_WRITE_TRIES = 3;

export interface ReadableFailure {
  readonly name: string;
  readonly message: string;
}

/** The caught error's name and a message a person can read (Lambda's JSON cause unwrapped). */
export function readableFailure(error: { Error: string; Cause?: string }): ReadableFailure {
  const cause = error.Cause?.trim();
  if (!cause) {
    const defaults: Record<string, string> = {
      'States.Timeout': 'the stage timed out',
      'States.HeartbeatTimeout': 'no plugin reported progress within the heartbeat interval',
    };
    return { name: error.Error, message: defaults[error.Error] ?? error.Error };
  }
  try {
    const parsed = JSON.parse(cause) as { errorMessage?: unknown };
    if (typeof parsed.errorMessage === 'string' && parsed.errorMessage !== '') return { name: error.Error, message: parsed.errorMessage };
  } catch {
    // Not JSON: the cause is the message.
  }
  return { name: error.Error, message: cause };
}

/** Which stage failed: a timeout belongs to the waiting parallel stage, anything else to the stage in progress. */
export function failedStage(activity: ActivityDocument, failure: ReadableFailure): StageKey | undefined {
  if (TIMEOUT_ERRORS.has(failure.name) && activity.async.status.state === State.IN_PROGRESS) return 'async';
  return STAGES.find((stage) => activity[stage].status.state === State.IN_PROGRESS);
}

/** The write that records the failure, or undefined when there is nothing (left) to record. */
export function failureRecord(doc: StatusDocument, activityName: string, failure: ReadableFailure, now: string): StatusChange | undefined {
  const activity = activityOf(doc, activityName);
  if (!activity) return undefined;
  const stage = failedStage(activity, failure);
  if (!stage) {
    const alreadyRecorded = activity.status.state === State.ERROR && doc.status.state === State.ERROR;
    if (alreadyRecorded) return undefined;
    // Failed before any stage started (e.g. the item was missing a stage): the activity and run still fail.
    return {
      activity: activityName,
      now,
      activityStatus: { state: State.ERROR, message: failure.message },
      runState: State.ERROR,
      stopAwaiting: true,
    };
  }
  const timedOut = stage === 'async' && TIMEOUT_ERRORS.has(failure.name);
  const pending = timedOut ? pendingPlugins(activity.async) : [];
  const message = timedOut
    ? `${failure.name}: still waiting for ${pending.length > 0 ? pending.join(', ') : 'no mandatory plugin'}`
    : failure.message;
  return stageFailedChange({ activity: activityName, stage, now, message }, {
    // Pending plugins that timed out are final for this run: a late report cannot revive the stage.
    entries: pending.map((plugin) => ({ kind: 'mandatory' as const, plugin, state: State.ERROR, message: `${failure.name}: no result in time` })),
    removeToken: stage === 'async',
    stopAwaiting: true,
    expect: { stageState: State.IN_PROGRESS },
  });
}

/**
 * Pending plugins marked Error per write: each costs about 100 characters of update and condition
 * expression, and DynamoDB allows 4 KB per expression.
 */
const ENTRIES_PER_WRITE = 25;

/** The change with at most `perWrite` plugin entries, then the other entries, `perWrite` per change. */
export function splitEntries(change: StatusChange, perWrite: number): [StatusChange, ...StatusChange[]] {
  const entries = change.entries ?? [];
  const rest: StatusChange[] = [];
  for (let i = perWrite; i < entries.length; i += perWrite) {
    rest.push({ activity: change.activity, stage: change.stage, now: change.now, entries: entries.slice(i, i + perWrite) });
  }
  return [rest.length ? { ...change, entries: entries.slice(0, perWrite) } : change, ...rest];
}

export const handler = instrumented(recordStageFailure);

async function recordStageFailure(rawEvent: unknown): Promise<never> {
  const event = parseStageFailureEvent(rawEvent);
  const { uid, workflow, activity } = event;
  const context: RunContext = { uid, workflow, activity };
  appendRunKeys(context);
  const target: StatusTarget = { tableName: statusTableName(), key: { uid, workflow } };
  const failure = readableFailure(event.error);

  let recorded: StatusChange | undefined;
  let doc: StatusDocument | undefined;
  for (let tries = 0; tries < MAX_WRITE_TRIES && !recorded; tries++) {
    doc = await readStatus(target.tableName, target.key);
    const change = doc ? failureRecord(doc, activity, failure, new Date().toISOString()) : undefined;
    if (!change) break; // nothing (left) to record
    const [first, ...more] = splitEntries(change, ENTRIES_PER_WRITE);
    const written = await updateStatus(statusChangeUpdate(target, first));
    if (written.applied) {
      recorded = change;
      // Many pending plugins (a wide stage timed out): the rest are marked in further writes. The
      // stage is already Error, so one refused here (the plugin reported meanwhile) changes nothing.
      for (const extra of more) await updateStatus(statusChangeUpdate(target, extra));
    }
  }
  if (recorded) logger.info('Failure recorded', { stage: recorded.stage, error: failure.name });
  // Nothing recorded now: the failing handler did it already, on the stage now in Error.
  const activityDoc = doc ? activityOf(doc, activity) : undefined;
  const stage = recorded?.stage ?? STAGES.find((key) => activityDoc?.[key].status.state === State.ERROR);
  // Every failed activity execution passes here once (the Catch), whoever recorded the failure.
  if (stage) metrics.addMetadata('stage', stage);
  metrics.addMetadata('error', failure.name);
  addMetric(Metric.STAGE_FAILED);
  const where = stage ? `stage ${stage} of activity ${activity}` : `activity ${activity}`;
  // What was recorded (e.g. the plugins a timeout waited for) is the most useful message.
  const message = recorded?.stageStatus?.message ?? failure.message;
  throw new StageFailed(failure.name, trimMessage(`${where} failed: ${message}`, 1000), { ...context, stage });
}
