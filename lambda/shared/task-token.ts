/**
 * Step Functions callbacks for the waiting parallel stage. A token that already expired or was
 * used (the execution timed out, failed, or was answered by an earlier delivery of the same stream
 * record) is not an error: the answer is simply no longer needed.
 */
import { SendTaskFailureCommand, SendTaskHeartbeatCommand, SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { containerClient } from './clients';
import { logger } from './observability';

const GONE_TOKEN_ERRORS = new Set(['TaskTimedOut', 'InvalidToken', 'TaskDoesNotExist']);
/** Step Functions limits for SendTaskFailure. */
const MAX_ERROR_LENGTH = 256;
const MAX_CAUSE_LENGTH = 32_768;

const stepFunctions = () => containerClient('sfn', SFNClient);

export type CallbackResult = 'sent' | 'token-gone';

async function ignoringGoneToken(action: string, send: () => Promise<unknown>): Promise<CallbackResult> {
  try {
    await send();
    return 'sent';
  } catch (error) {
    if (error instanceof Error && GONE_TOKEN_ERRORS.has(error.name)) {
      logger.info(`${action}: task token no longer valid; ignored`, { error: error.name });
      return 'token-gone';
    }
    throw error;
  }
}

export function sendTaskSuccess(token: string, output: unknown): Promise<CallbackResult> {
  return ignoringGoneToken('SendTaskSuccess', () =>
    stepFunctions().send(new SendTaskSuccessCommand({ taskToken: token, output: JSON.stringify(output) })));
}

export function sendTaskFailure(token: string, error: string, cause: string): Promise<CallbackResult> {
  return ignoringGoneToken('SendTaskFailure', () => stepFunctions().send(new SendTaskFailureCommand({
    taskToken: token, error: error.slice(0, MAX_ERROR_LENGTH), cause: cause.slice(0, MAX_CAUSE_LENGTH),
  })));
}

export function sendTaskHeartbeat(token: string): Promise<CallbackResult> {
  return ignoringGoneToken('SendTaskHeartbeat', () => stepFunctions().send(new SendTaskHeartbeatCommand({ taskToken: token })));
}
