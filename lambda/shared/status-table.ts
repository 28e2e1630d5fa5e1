/**
 * Sends status-table requests built by status-store.ts and turns the answers into documents.
 * A failed condition is an expected outcome here (returned, not thrown), with the item as it was.
 */
import { GetCommand, PutCommand, PutCommandInput, UpdateCommand, UpdateCommandInput } from '@aws-sdk/lib-dynamodb';
import { fromAttributeMap, RawAttributeValue } from './attribute-values';
import { dynamoDb } from './clients';
import { asStatusDocument, StatusDocument } from './status';
import { StatusKey } from './status-store';

export type WriteOutcome =
  | { readonly applied: true; readonly item?: StatusDocument }
  | { readonly applied: false; readonly current?: StatusDocument };

export function isConditionalCheckFailed(error: unknown): error is Error & { Item?: Record<string, RawAttributeValue> } {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** The item a ConditionalCheckFailedException carries (ReturnValuesOnConditionCheckFailure ALL_OLD). */
function currentItem(error: { Item?: Record<string, RawAttributeValue> }): StatusDocument | undefined {
  return error.Item ? asStatusDocument(fromAttributeMap(error.Item)) : undefined;
}

export async function updateStatus(input: UpdateCommandInput): Promise<WriteOutcome> {
  try {
    const output = await dynamoDb().send(new UpdateCommand(input));
    return { applied: true, item: output.Attributes ? asStatusDocument(output.Attributes) : undefined };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return { applied: false, current: currentItem(error) };
    throw error;
  }
}

export async function putStatus(input: PutCommandInput): Promise<WriteOutcome> {
  try {
    await dynamoDb().send(new PutCommand(input));
    return { applied: true };
  } catch (error) {
    if (isConditionalCheckFailed(error)) return { applied: false, current: currentItem(error) };
    throw error;
  }
}

export async function readStatus(tableName: string, key: StatusKey): Promise<StatusDocument | undefined> {
  const output = await dynamoDb().send(new GetCommand({ TableName: tableName, Key: { uid: key.uid, workflow: key.workflow }, ConsistentRead: true }));
  return output.Item ? asStatusDocument(output.Item) : undefined;
}
