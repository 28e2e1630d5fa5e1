/**
 * Named errors. Step Functions Retry/Catch match on `name` (Lambda reports it as `errorType`), so
 * every class sets it from a string (a literal, or the contract's name): class names do not survive minification.
 */

import { PLUGIN_INVOCATION_FAILED } from '../../src/private/contract';

/** Where an error happened, as far as the handler knows. */
export interface RunContext {
  readonly uid?: string;
  readonly workflow?: string;
  readonly activity?: string;
  readonly stage?: string;
}

export abstract class OrchestratorError extends Error {
  public readonly uid?: string;
  public readonly workflow?: string;
  public readonly activity?: string;
  public readonly stage?: string;

  protected constructor(message: string, context: RunContext = {}, options?: ErrorOptions) {
    super(message, options);
    this.uid = context.uid;
    this.workflow = context.workflow;
    this.activity = context.activity;
    this.stage = context.stage;
  }
}

/** start-run: the workflow input or payload is unusable; nothing was written. */
export class InvalidRunInput extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'InvalidRunInput';
  }
}

/** sequential-stage / parallel-stage: the task payload is unusable; nothing was written. */
export class InvalidStageEvent extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'InvalidStageEvent';
  }
}

/** status-summary: the invocation is not a DynamoDB stream batch. */
export class InvalidStreamEvent extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStreamEvent';
  }
}

/**
 * A DynamoDB JSON value DynamoDB never produces (not an object, a payload of the wrong type, or
 * nested deeper than any item can be): status-summary reports it as the cause of StatusSummaryFailed.
 */
export class InvalidAttributeValue extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidAttributeValue';
  }
}

/** stage-failure: the payload is unusable; nothing was written. */
export class InvalidFailureEvent extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'InvalidFailureEvent';
  }
}

/** A handler environment variable is missing (a deployment problem, not a run problem). */
export class ConfigurationError extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/** start-run: the run is `Not Started`/`In Progress`, or another start-run won the race. */
export class RunInProgress extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'RunInProgress';
  }
}

/** start-run: a re-run's metadata differs from the stored metadata and `metadataOverride` is not set. */
export class MetadataMismatch extends OrchestratorError {
  constructor(message: string, context: RunContext, public readonly differentKeys: readonly string[]) {
    super(message, context);
    this.name = 'MetadataMismatch';
  }
}

/** The status item (or the activity in it) does not exist: start-run did not run for this uid/workflow. */
export class StatusItemMissing extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'StatusItemMissing';
  }
}

/** A plugin invocation failed and attempts remain: Step Functions retries the stage with backoff. */
export class PluginInvocationFailed extends OrchestratorError {
  constructor(message: string, context: RunContext, public readonly plugin: string, public readonly attempt: number) {
    super(message, context);
    this.name = PLUGIN_INVOCATION_FAILED;
  }
}

/** A mandatory plugin failed for good; its `Error` is recorded on plugin, stage, activity and run. */
export class PluginFailed extends OrchestratorError {
  constructor(message: string, context: RunContext, public readonly plugin?: string) {
    super(message, context);
    this.name = 'PluginFailed';
  }
}

/**
 * sequential-stage / parallel-stage: more plugins than the status item has room for (DESIGN.md
 * "Status item size"): more than 100 registered for one stage, or more than 300 entries in one run.
 * Checked before any plugin runs, so the run fails with this error instead of a DynamoDB size error later.
 */
export class TooManyPlugins extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'TooManyPlugins';
  }
}

/** A conditional write kept failing because others changed the item meanwhile (retryable). */
export class StatusUpdateConflict extends OrchestratorError {
  constructor(message: string, context?: RunContext) {
    super(message, context);
    this.name = 'StatusUpdateConflict';
  }
}

/** status-summary: some items of the batch could not be settled; the batch is retried (idempotent). */
export class StatusSummaryFailed extends OrchestratorError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, {}, options);
    this.name = 'StatusSummaryFailed';
  }
}

/**
 * stage-failure: re-raises the error that failed the stage under its original name (e.g.
 * `PluginFailed`, `States.Timeout`), so the execution fails with it, after recording it.
 */
export class StageFailed extends OrchestratorError {
  constructor(originalName: string, message: string, context: RunContext) {
    super(message, context);
    this.name = originalName;
  }
}

/** plugin-outcome: the invocation is not a Lambda destination record; nothing was written. */
export class InvalidOutcomeEvent extends OrchestratorError {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidOutcomeEvent';
  }
}

/** `errorType: errorMessage` from the payload of a Lambda invocation that returned a function error. */
export function functionErrorMessage(payload: string, functionError: string): string {
  try {
    const error = JSON.parse(payload) as { errorType?: unknown; errorMessage?: unknown };
    const type = typeof error.errorType === 'string' ? error.errorType : functionError;
    return typeof error.errorMessage === 'string' ? `${type}: ${error.errorMessage}` : type;
  } catch {
    return payload ? `${functionError}: ${payload}` : functionError;
  }
}
