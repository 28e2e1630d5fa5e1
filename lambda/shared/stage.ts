/**
 * What the two stage handlers share: the conditional stage start (skipping finished stages) and
 * the plugin message with its SNS message attributes.
 */
import { statusTableName } from './environment';
import { RunContext, StatusItemMissing, StatusUpdateConflict, TooManyPlugins } from './errors';
import {
  activityOf, buildPluginMessage, isStageDone, messageAttributesFromMetadata, MessageAttribute, PLUGIN_KINDS, serializePluginMessage,
  SNS_MESSAGE_MAX_BYTES, StageKey, STAGES, StatusDocument,
} from './status';
import { StageStart, stageStartUpdates, StatusTarget } from './status-store';
import { updateStatus } from './status-table';
import { MAX_PLUGIN_ENTRIES_PER_RUN, MAX_PLUGINS_PER_STAGE } from '../../src/private/contract';

export type StageStartOutcome =
  | { readonly started: true; readonly doc: StatusDocument }
  /** The activity or the stage is already done (a re-run): nothing was written. */
  | { readonly started: false; readonly doc: StatusDocument };

/**
 * Plugins one stage may have and plugin entries one run may hold, so the status item stays under
 * DynamoDB's 400 KB whatever the plugins and the stages write later (DESIGN.md "Status item size").
 */
export { MAX_PLUGINS_PER_STAGE, MAX_PLUGIN_ENTRIES_PER_RUN } from '../../src/private/contract';

/** DynamoDB's item size limit. */
export const DYNAMODB_ITEM_MAX_BYTES = 409_600;
/**
 * The worst case of everything that does not grow with plugin entries or activities: metadata (64 KB
 * of JSON is at most 128 KB as an item, see validation.ts), uid and workflow (1 KB each), run status,
 * timestamps and bookkeeping, the messages of the one activity that can fail (activity and stage:
 * 180 characters, 3 bytes each in UTF-8) and one task token (2,048 characters).
 */
const RESERVED_ITEM_BYTES = 131_072 + 2 * 1024 + 400 + 2 * 548 + 2_054;
/** One activity without messages or token, beyond its name (map overheads, 4 states, startTimes, `awaiting`). */
const ACTIVITY_ITEM_BYTES = 350;
/** One plugin entry beyond its name: `state`, a 180-character message of 3-byte characters, `attempts`, `updatedAt`. */
const ENTRY_ITEM_BYTES = 614;

function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).length;
}

/** Plugin entries of every activity and stage of a run. */
export function pluginEntryCount(doc: StatusDocument): number {
  let count = 0;
  for (const activity of Object.values(doc.activities)) {
    for (const stage of STAGES) {
      for (const kind of PLUGIN_KINDS) count += Object.keys(activity[stage]?.[kind] ?? {}).length;
    }
  }
  return count;
}

/**
 * The largest the status item can grow to from its activities and plugin entries as they are now,
 * with every message at its longest (DESIGN.md "Status item size").
 */
export function worstCaseItemBytes(doc: StatusDocument): number {
  let bytes = RESERVED_ITEM_BYTES;
  for (const [name, activity] of Object.entries(doc.activities)) {
    // The name twice: as the activity's key and as a member of `awaiting`.
    bytes += 2 * utf8Bytes(name) + ACTIVITY_ITEM_BYTES;
    for (const stage of STAGES) {
      for (const kind of PLUGIN_KINDS) {
        for (const plugin of Object.keys(activity[stage]?.[kind] ?? {})) bytes += utf8Bytes(plugin) + ENTRY_ITEM_BYTES;
      }
    }
  }
  return bytes;
}

/** Throws TooManyPlugins when a started stage left the run with more plugin entries than its item has room for. */
function checkRoomForPlugins(doc: StatusDocument, target: StatusTarget, start: StageStart, context: RunContext): void {
  const entries = pluginEntryCount(doc);
  const worstCase = worstCaseItemBytes(doc);
  if (entries <= MAX_PLUGIN_ENTRIES_PER_RUN && worstCase <= DYNAMODB_ITEM_MAX_BYTES) return;
  throw new TooManyPlugins(`Run ${target.key.uid}/${target.key.workflow} has ${entries} plugin entries in ${Object.keys(doc.activities).length} `
    + `activities once stage ${start.stage} of ${start.activity} started (worst-case item ${worstCase} bytes); at most `
    + `${MAX_PLUGIN_ENTRIES_PER_RUN} per run, and fewer with many activities, fit in DynamoDB's 400 KB item: use fewer plugins or split the workflow`, context);
}

export async function startStage(target: StatusTarget, start: StageStart, context: RunContext): Promise<StageStartOutcome> {
  if (start.plugins.length > MAX_PLUGINS_PER_STAGE) {
    throw new TooManyPlugins(`Stage ${start.stage} of ${start.activity} has ${start.plugins.length} registered plugins; `
      + `at most ${MAX_PLUGINS_PER_STAGE} per stage fit in the status item: unsubscribe some, or split the activity`, context);
  }
  const outcome = await startStageWrites(target, start, context);
  // Checked on the document the start returned, before any plugin runs and writes a message.
  if (outcome.started) checkRoomForPlugins(outcome.doc, target, start, context);
  return outcome;
}

async function startStageWrites(target: StatusTarget, start: StageStart, context: RunContext): Promise<StageStartOutcome> {
  // A stage with many plugins creates the extra entries first; a refused one means the stage is
  // done or gone, which the last write (same conditions) reports with the current document.
  const writes = stageStartUpdates(target, start);
  for (const write of writes.slice(0, -1)) {
    if (!(await updateStatus(write)).applied) break;
  }
  const result = await updateStatus(writes[writes.length - 1]);
  if (result.applied) return { started: true, doc: result.item! };
  const current = result.current;
  if (!current) {
    throw new StatusItemMissing(`No status item for ${target.key.uid}/${target.key.workflow}: start-run has not run for it`, context);
  }
  // Own fields only: an activity named like an Object.prototype member (`constructor`) is missing too.
  const activity = activityOf(current, start.activity);
  if (!activity) {
    throw new StatusItemMissing(`Run ${target.key.uid}/${target.key.workflow} has no activity ${start.activity}`, context);
  }
  if (isStageDone(activity.status.state) || isStageDone(activity[start.stage].status.state)) return { started: false, doc: current };
  // Only the Do Not Run entries' conditions are left: one of those plugins moved meanwhile.
  throw new StatusUpdateConflict(`Stage ${start.stage} of ${start.activity} changed while it was being started`, context);
}

export interface PreparedMessage {
  readonly body: string;
  readonly attributes: Record<string, MessageAttribute>;
}

/**
 * The plugin message for one stage, sized so body and attributes fit in one SNS message; a
 * shortened one refers to the status item in `tableName` (DESIGN.md "Plugin message").
 */
export function preparePluginMessage(doc: StatusDocument, activity: string, stage: StageKey, now: string,
  tableName: string = statusTableName()): PreparedMessage {
  const attributes = messageAttributesFromMetadata(doc.metadata);
  // More than SNS counts (name, type and value of each attribute): the JSON adds quotes and keys.
  const attributeBytes = new TextEncoder().encode(JSON.stringify(attributes)).length;
  const body = serializePluginMessage(buildPluginMessage(doc, { activity, stage, now }), SNS_MESSAGE_MAX_BYTES - attributeBytes, tableName);
  return { body, attributes };
}
