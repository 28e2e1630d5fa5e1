/**
 * Sends status-table requests built by status-store.ts and turns the answers into documents.
 * A failed condition is an expected outcome here (returned, not thrown), with the item as it was.
 */
import { getDocument, isConditionalCheckFailed, itemAsItWas, putDocument, PutInput, updateDocument, UpdateInput } from './documents';
import { asStatusDocument, buildPluginMessage, PluginMessage, StatusDocument, StatusRef } from './status';
import { StatusKey } from './status-store';

export type WriteOutcome =
  | { readonly applied: true; readonly item?: StatusDocument }
  | { readonly applied: false; readonly current?: StatusDocument };

/** The status item a refused write found (ReturnValuesOnConditionCheckFailure ALL_OLD). */
function currentItem(error: Parameters<typeof itemAsItWas>[0]): StatusDocument | undefined {
  const item = itemAsItWas(error);
  return item ? asStatusDocument(item) : undefined;
}

export async function updateStatus(input: UpdateInput): Promise<WriteOutcome> {
  try {
    const output = await updateDocument(input);
    return { applied: true, item: output.Attributes ? asStatusDocument(output.Attributes) : undefined };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return { applied: false, current: currentItem(error) };
    throw error;
  }
}

export async function putStatus(input: PutInput): Promise<WriteOutcome> {
  try {
    await putDocument(input);
    return { applied: true };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return { applied: false, current: currentItem(error) };
    throw error;
  }
}

export async function readStatus(tableName: string, key: StatusKey): Promise<StatusDocument | undefined> {
  const output = await getDocument({ TableName: tableName, Key: { uid: key.uid, workflow: key.workflow }, ConsistentRead: true });
  return output.Item ? asStatusDocument(output.Item) : undefined;
}

/** The status item a shortened plugin message refers to (`statusRef`); undefined when it is gone. */
export async function readReferencedStatus(ref: StatusRef): Promise<StatusDocument | undefined> {
  return readStatus(ref.tableName, ref.key);
}

/**
 * The full plugin message: a shortened one (`truncated` with a `statusRef`) rebuilt from the status
 * item as it is now, the same way the orchestrator built it; any other message as it is. What a
 * plugin with `grantPluginStatus` (GetItem) reads.
 */
export async function fullPluginMessage(message: PluginMessage): Promise<PluginMessage> {
  if (!message.truncated || !message.statusRef) return message;
  const doc = await readReferencedStatus(message.statusRef);
  if (!doc) return message;
  return buildPluginMessage(doc, { activity: message.activity, stage: message.stage, now: message.now });
}
