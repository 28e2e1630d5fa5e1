// PRE plugin of Step1: checks the application before any work starts. Invoked synchronously by the
// orchestrator, in `order`; returning `{ state: 'Error', message }` fails the stage at once.
import type { SNSEvent } from 'aws-lambda';
import { businessError, pluginMessage } from './message';

export async function handler(event: SNSEvent) {
  const message = pluginMessage(event);
  const amount = message.amount;
  if (amount !== undefined && (typeof amount !== 'number' || amount < 0)) {
    return businessError(`amount must be a non-negative number, got ${JSON.stringify(amount)}`);
  }
  console.log(JSON.stringify({ plugin: 'CheckApplication', uid: message.uid, checked: true }));
  return { checked: true };
}
