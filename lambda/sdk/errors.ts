/**
 * The SDK's errors. Names are set from string literals (class names do not survive minification)
 * so logs and Lambda's `errorType` show them.
 */

/**
 * A business failure: the work cannot succeed for this run (invalid data, a rule that says no).
 * Throw it from a plugin handler: the SDK records the plugin `Error` with this message (at most
 * 180 characters are kept) and does not rethrow it, so Lambda does not retry. Any other error is
 * rethrown, so Lambda (or the orchestrator) retries the work.
 *
 * ```ts
 * if (amount < 0) throw new PluginBusinessError(`amount must not be negative, got ${amount}`);
 * ```
 */
export class PluginBusinessError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PluginBusinessError';
  }
}

/** `pluginHandler` was given an unusable configuration (thrown when the module loads). */
export class InvalidPluginConfig extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPluginConfig';
  }
}

/**
 * The invocation is neither `{ initialize: true }`, an SNS event, an SQS event nor a plugin message,
 * or a message lacks uid/workflow/activity/stage. Rethrown like a crash: Lambda's retries and the
 * queue's dead-letter queue keep it for inspection.
 */
export class InvalidPluginEvent extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidPluginEvent';
  }
}

/**
 * The run has no entry for this plugin: its `pluginName` differs from the name it was added with
 * (`activity.addPlugin`), or the run's status item is gone. Nothing ran. Thrown like a crash, so the
 * orchestrator records the plugin `Error` with this message once the retries are spent (PARALLEL:
 * its Lambda destination; PRE/POST: its stage) instead of waiting for it until the stage times out.
 */
export class PluginNotInRun extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PluginNotInRun';
  }
}

/** Whether an error is a business failure (also across copies of the SDK bundled twice). */
export function isBusinessError(error: unknown): error is Error {
  return error instanceof PluginBusinessError || (error instanceof Error && error.name === 'PluginBusinessError');
}
