// PARALLEL plugin of Step2 (mandatory, with a timeout): a throw is retried twice by Lambda, then
// recorded `Error` (failing the stage); `{ state: 'Error', message }` is a business failure.
import type { SNSEvent } from 'aws-lambda';
import { businessError, pluginMessage } from './message';

export async function handler(event: SNSEvent) {
  const message = pluginMessage(event);
  if (message.blocked === true) return businessError(`applicant of ${message.uid} is on the block list`);
  console.log(JSON.stringify({ plugin: 'FraudCheck', uid: message.uid, suspicious: false }));
  return { suspicious: false };
}
