// PARALLEL plugin of Step2 (OPTIONAL) that always fails: Lambda retries it twice, then its
// on-failure destination records `Error`. Optional means optional: the stage ends
// `Optional Task Error` and the workflow goes on.
import type { SNSEvent } from 'aws-lambda';
import { pluginMessage } from './message';

export async function handler(event: SNSEvent): Promise<never> {
  const message = pluginMessage(event);
  throw new Error(`marketing service unavailable (run ${message.uid})`);
}
