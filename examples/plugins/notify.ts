// POST plugin of Step3: runs after the parallel stage, invoked synchronously by the orchestrator.
import type { SNSEvent } from 'aws-lambda';
import { pluginMessage } from './message';

export async function handler(event: SNSEvent) {
  const message = pluginMessage(event);
  console.log(JSON.stringify({ plugin: 'Notify', uid: message.uid, workflow: message.workflow, notified: true }));
  return { notified: true };
}
