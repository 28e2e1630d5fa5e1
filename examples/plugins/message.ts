// What every example plugin receives: the orchestrator's plugin message, delivered as an SNS event
// for every stage (pre and post plugins are invoked directly with the same shape). The plugins use
// no orchestrator code and no AWS SDK: they return or throw, and the orchestrator records that.
import type { SNSEvent } from 'aws-lambda';

/** The fields of the plugin message these examples use; the caller's metadata fields come along. */
export interface PluginMessage {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: 'pre' | 'async' | 'post';
  readonly now: string;
  readonly [metadata: string]: unknown;
}

export function pluginMessage(event: SNSEvent): PluginMessage {
  return JSON.parse(event.Records[0].Sns.Message) as PluginMessage;
}

/** A business failure: recorded as the plugin's `Error` with this message, without retries. */
export function businessError(message: string): { state: 'Error'; message: string } {
  return { state: 'Error', message };
}
