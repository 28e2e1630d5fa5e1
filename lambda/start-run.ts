/**
 * start-run: the workflow's first state. Creates the run's status item, or resets it for a re-run
 * (completed work kept, failed work back to `Not Started`). Returns `{ uid, workflow }`.
 * A new run costs one conditional PutItem; a re-run two (the first fails and returns the item).
 */
import { statusTableName } from './shared/environment';
import { MetadataMismatch, RunContext, RunInProgress } from './shared/errors';
import { addMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { withOpenRun } from './shared/open-runs';
import {
  metadataDifferences, metadataEqual, newStatusDocument, resetForRerun, State, StatusDocument,
} from './shared/status';
import { newRunPut, rerunPut } from './shared/status-store';
import { putStatus } from './shared/status-table';
import { parseStartRunEvent, StartRunEvent } from './shared/validation';

const SECONDS_PER_DAY = 86_400;

export interface StartRunResult {
  readonly uid: string;
  readonly workflow: string;
  /** True when an existing run was reset rather than created. */
  readonly rerun: boolean;
}

async function startRun(rawEvent: unknown): Promise<StartRunResult> {
  const event = parseStartRunEvent(rawEvent);
  const tableName = statusTableName();
  const { uid } = event.input;
  const { workflow } = event;
  const context: RunContext = { uid, workflow };
  appendRunKeys(context);
  const now = new Date();
  const expiresAt = event.retentionDays ? Math.floor(now.getTime() / 1000) + event.retentionDays * SECONDS_PER_DAY : undefined;

  const fresh = newStatusDocument({ uid, workflow, metadata: event.input.metadata, activities: event.activities, now: now.toISOString(), expiresAt });
  // Unfinished runs are in the open-run index until they finish (stuck-run detection).
  const created = await putStatus(newRunPut(tableName, withOpenRun(fresh, now.toISOString())));
  if (created.applied) {
    logger.info('Run created', { activities: event.activities });
    addMetric(Metric.RUN_STARTED);
    return { uid, workflow, rerun: false };
  }
  // The item was there: ALL_OLD handed it back with the failed condition, so no extra read.
  const existing = created.current;
  if (!existing) throw new RunInProgress(`Run ${uid}/${workflow} is being started by another execution`, context);
  const reset = rerunDocument(existing, event, context, now.toISOString(), expiresAt);
  const replaced = await putStatus(rerunPut(tableName, withOpenRun(reset, now.toISOString()), existing));
  if (!replaced.applied) {
    throw new RunInProgress(`Run ${uid}/${workflow} changed while this re-run was being prepared (another start won)`, context);
  }
  logger.info('Run reset for a re-run', { previousState: existing.status.state, state: reset.status.state });
  addMetric(Metric.RUN_RESTARTED);
  return { uid, workflow, rerun: true };
}

export const handler = instrumented(startRun);

function rerunDocument(existing: StatusDocument, event: StartRunEvent, context: RunContext, now: string, expiresAt?: number): StatusDocument {
  const { uid, workflow } = context;
  if (existing.status.state === State.NOT_STARTED || existing.status.state === State.IN_PROGRESS) {
    throw new RunInProgress(`Run ${uid}/${workflow} is ${existing.status.state}; wait for it to finish before running it again`, context);
  }
  // Omitted metadata means "the run as stored"; given metadata must match unless overridden.
  const given = event.input.metadata === undefined ? undefined : { ...event.input.metadata, workflow };
  if (given && !event.input.metadataOverride && !metadataEqual(existing.metadata, given)) {
    const keys = metadataDifferences(existing.metadata, given);
    throw new MetadataMismatch(
      `Run ${uid}/${workflow} exists with different metadata (${keys.join(', ')}); pass metadataOverride: true to replace it`,
      context, keys);
  }
  return resetForRerun(existing, {
    activities: event.activities,
    now,
    metadata: given && event.input.metadataOverride ? given : undefined,
    expiresAt,
  });
}
