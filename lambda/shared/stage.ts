/**
 * What the two stage handlers share: the conditional stage start (skipping finished stages) and
 * the plugin message with its SNS message attributes.
 */
import { RunContext, StatusItemMissing, StatusUpdateConflict } from './errors';
import {
  buildPluginMessage, isStageDone, messageAttributesFromMetadata, MessageAttribute, serializePluginMessage,
  SNS_MESSAGE_MAX_BYTES, StageKey, StatusDocument,
} from './status';
import { StageStart, stageStartUpdates, StatusTarget } from './status-store';
import { updateStatus } from './status-table';

export type StageStartOutcome =
  | { readonly started: true; readonly doc: StatusDocument }
  /** The activity or the stage is already done (a re-run): nothing was written. */
  | { readonly started: false; readonly doc: StatusDocument };

export async function startStage(target: StatusTarget, start: StageStart, context: RunContext): Promise<StageStartOutcome> {
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
  const activity = current.activities[start.activity];
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

/** The plugin message for one stage, sized so body and attributes fit in one SNS message. */
export function preparePluginMessage(doc: StatusDocument, activity: string, stage: StageKey, now: string): PreparedMessage {
  const attributes = messageAttributesFromMetadata(doc.metadata);
  const attributeBytes = new TextEncoder().encode(JSON.stringify(attributes)).length;
  const body = serializePluginMessage(buildPluginMessage(doc, { activity, stage, now }), SNS_MESSAGE_MAX_BYTES - attributeBytes);
  return { body, attributes };
}
