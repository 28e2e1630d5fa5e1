/** Stops the DynamoDB Local that global-setup started (same process, so the handle is on globalThis). */
import type { DynamoDbLocal } from '../../local/src/dynamodb-local';

export default async function globalTeardown(): Promise<void> {
  const holder = globalThis as { __dynamoDbLocal?: DynamoDbLocal };
  await holder.__dynamoDbLocal?.stop();
  delete holder.__dynamoDbLocal;
}
