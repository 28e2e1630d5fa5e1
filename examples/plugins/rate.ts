// PARALLEL plugin of Step2 (mandatory): the stage waits for it. Returning normally records
// `Complete`; its outcome reaches the orchestrator through the Lambda destinations addPlugin sets up.
import type { SNSEvent } from 'aws-lambda';
import { pluginMessage } from './message';

export async function handler(event: SNSEvent) {
  const message = pluginMessage(event);
  const amount = typeof message.amount === 'number' ? message.amount : 1000;
  const premium = Math.round(amount * 0.042 * 100) / 100;
  console.log(JSON.stringify({ plugin: 'Rate', uid: message.uid, premium }));
  return { premium };
}
