/**
 * sequential-stage: runs the `pre` or `post` plugins of one activity, one at a time in registry
 * order, each invoked synchronously with the plugin message in an SNS event.
 *
 * Writes: one UpdateItem starts the stage (and returns the document); one UpdateItem per plugin
 * outcome, the last of which also settles the stage, the activity and the run. A finished stage
 * (re-run) is skipped. A failed invocation throws `PluginInvocationFailed` so Step Functions retries
 * with backoff (no sleeping here); at `maxAttempts` the Error is recorded and `PluginFailed` thrown.
 */
import { randomUUID } from 'node:crypto';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { containerClient } from './shared/clients';
import { pluginTableName, statusTableName } from './shared/environment';
import {
  functionErrorMessage, PluginFailed, PluginInvocationFailed, RunContext, StatusItemMissing, StatusUpdateConflict,
} from './shared/errors';
import { addMetric, appendRunKeys, instrumented, logger, Metric } from './shared/observability';
import { loadPlugins, pluginKind, pluginRef, RegisteredPlugin } from './shared/registry';
import { preparePluginMessage, startStage } from './shared/stage';
import {
  activityOf, describeFailure, isPluginFinal, isPluginInvocable, PluginEntry, PluginState, registeredView, RegisteredRef,
  SequentialStageKey, snsEnvelope, stageFailure, State, StatusDocument, rollUp,
  pluginEntryOf, summarizeStage, trimMessage, unregisteredPendingEntries,
} from './shared/status';
import { EntryChange, stageFailedChange, StatusChange, statusChangeUpdate, StatusTarget } from './shared/status-store';
import { updateStatus } from './shared/status-table';
import { parseSequentialStageEvent, SequentialStageEvent } from './shared/validation';

const lambda = () => containerClient('lambda', LambdaClient);

/** How often to recompute a write whose condition failed because the item changed meanwhile. */
const MAX_WRITE_TRIES = 3;

export interface SequentialStageResult {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: SequentialStageKey;
  readonly state: State;
  /** False when the stage was already done (a re-run) and nothing ran. */
  readonly started: boolean;
  readonly invoked: readonly string[];
}

/** What one invocation told us. */
export type PluginOutcome =
  | { readonly kind: 'complete' }
  | { readonly kind: 'doNotRun' }
  /** The plugin ran and reported a failure of its own (`{ state: 'Error' }` or its entry): no retry. */
  | { readonly kind: 'businessError'; readonly message: string }
  /** The invocation failed (crash, timeout, throttling): retried up to maxAttempts. */
  | { readonly kind: 'invocationError'; readonly message: string };

interface StageRun {
  readonly event: SequentialStageEvent;
  readonly target: StatusTarget;
  readonly context: RunContext;
  readonly registered: readonly RegisteredRef[];
  doc: StatusDocument;
}

export const handler = instrumented(runSequentialStage);

async function runSequentialStage(rawEvent: unknown): Promise<SequentialStageResult> {
  const event = parseSequentialStageEvent(rawEvent);
  const { uid, workflow, activity, stage } = event;
  const context: RunContext = { uid, workflow, activity, stage };
  appendRunKeys(context);
  const target: StatusTarget = { tableName: statusTableName(), key: { uid, workflow } };

  const plugins = await loadPlugins(pluginTableName(), activity, stage);
  const now = new Date().toISOString();
  const start = await startStage(target, {
    activity,
    stage,
    plugins: plugins.map(pluginRef),
    // No plugins: the stage is complete the moment it starts.
    stageState: plugins.length > 0 ? State.IN_PROGRESS : State.COMPLETE,
    now,
  }, context);
  const result = (doc: StatusDocument, started: boolean, invoked: string[]): SequentialStageResult =>
    ({ uid, workflow, activity, stage, state: doc.activities[activity][stage].status.state, started, invoked });
  if (!start.started) {
    logger.info('Stage already done; skipped', { state: start.doc.activities[activity][stage].status.state });
    const skipped: StageRun = { event, target, context, registered: plugins.map(pluginRef), doc: start.doc };
    // A re-run that found this stage done still owes the activity and the run their summaries
    // (the reset put them back to In Progress, and the post stage is the activity's last writer).
    await store(skipped, () => resummarize(skipped), 'the activity summary');
    return result(skipped.doc, false, []);
  }
  // A retry (Step Functions retries PluginInvocationFailed) finds the first start's startTime.
  if (start.doc.activities[activity][stage].status.startTime === now) addMetric(Metric.STAGE_STARTED);

  const run: StageRun = { event, target, context, registered: plugins.map(pluginRef), doc: start.doc };
  // Only pending plugins: an Error recorded in this run (business error, timeout, retries used up)
  // is final, so a retry of the stage resumes at the plugin that failed an attempt.
  const toRun = plugins.filter((plugin) => isPluginInvocable(entryOf(run.doc, event, plugin)?.state));
  const invoked: string[] = [];
  for (const [index, plugin] of toRun.entries()) {
    const outcome = await invokePlugin(plugin, run);
    invoked.push(plugin.pluginName);
    logger.info('Plugin invoked', { plugin: plugin.pluginName, outcome: outcome.kind });
    if (outcome.kind === 'businessError' || outcome.kind === 'invocationError') addMetric(Metric.PLUGIN_ERRORS);
    await recordOutcome(run, plugin, outcome, index === toRun.length - 1);
  }
  if (toRun.length === 0) await settleWithoutPlugin(run);
  // Reached only when the stage settled without failing (a failure throws).
  addMetric(Metric.STAGE_COMPLETED);
  return result(run.doc, true, invoked);
}

function entryOf(doc: StatusDocument, event: SequentialStageEvent, plugin: RegisteredPlugin): PluginEntry | undefined {
  return pluginEntryOf(doc, event.activity, event.stage, pluginKind(plugin), plugin.pluginName);
}

async function invokePlugin(plugin: RegisteredPlugin, run: StageRun): Promise<PluginOutcome> {
  const now = new Date().toISOString();
  const { body, attributes } = preparePluginMessage(run.doc, run.event.activity, run.event.stage, now);
  const envelope = snsEnvelope({
    body, attributes, topicArn: run.event.topicArn, subscriptionArn: plugin.subscriptionArn, messageId: randomUUID(), now,
  });
  // A plugin's `timeout` bounds the synchronous call; without one the plugin's own function timeout does.
  const timeoutMs = plugin.timeoutSeconds ? plugin.timeoutSeconds * 1000 : undefined;
  try {
    const response = await lambda().send(new InvokeCommand({
      FunctionName: plugin.functionArn ?? plugin.functionName,
      InvocationType: 'RequestResponse',
      Payload: new TextEncoder().encode(JSON.stringify(envelope)),
    }), timeoutMs ? { abortSignal: AbortSignal.timeout(timeoutMs) } : undefined);
    const text = response.Payload ? new TextDecoder().decode(response.Payload) : '';
    if (response.FunctionError) return { kind: 'invocationError', message: functionErrorMessage(text, response.FunctionError) };
    return outcomeFromResult(text);
  } catch (error) {
    const failure = error as Error;
    // The plugin may still be running after we stop waiting: calling it again would run it twice at
    // once, so a timeout is a final Error rather than a retried invocation.
    if (timeoutMs && (failure.name === 'AbortError' || failure.name === 'TimeoutError')) {
      return { kind: 'businessError', message: `timed out after ${plugin.timeoutSeconds} s` };
    }
    return { kind: 'invocationError', message: `${failure.name}: ${failure.message}` };
  }
}

/** A plugin's return value: `{ state: 'Error', message }` and `{ state: 'Do Not Run' }` count; anything else is success. */
export function outcomeFromResult(payload: string): PluginOutcome {
  let result: unknown;
  try {
    result = payload ? JSON.parse(payload) : undefined;
  } catch {
    return { kind: 'complete' };
  }
  if (typeof result === 'object' && result !== null && 'state' in result) {
    const { state, message } = result as { state: unknown; message?: unknown };
    if (state === State.ERROR) return { kind: 'businessError', message: typeof message === 'string' && message ? message : 'the plugin reported Error' };
    if (state === State.DO_NOT_RUN) return { kind: 'doNotRun' };
  }
  return { kind: 'complete' };
}

/** The entry's own final state wins: a plugin may have reported `Complete`/`Error` itself before returning. */
function reconcile(outcome: PluginOutcome, entry: PluginEntry | undefined): PluginOutcome {
  if (!entry || !isPluginFinal(entry.state)) return outcome;
  if (entry.state === State.ERROR) return { kind: 'businessError', message: entry.message ?? 'the plugin reported Error' };
  return entry.state === State.DO_NOT_RUN ? { kind: 'doNotRun' } : { kind: 'complete' };
}

interface Decision {
  /** Undefined: nothing to write. */
  readonly change?: StatusChange;
  /** Thrown once the change is stored. */
  readonly error?: Error;
}

/**
 * Stores a decision; when its condition fails because someone else changed the item (typically the
 * plugin reporting its own state), decides again from the stored item ALL_OLD returned.
 */
async function store(run: StageRun, decideNow: () => Decision, what: string): Promise<void> {
  for (let tries = 0; tries < MAX_WRITE_TRIES; tries++) {
    const decision = decideNow();
    if (decision.change) {
      const written = await updateStatus(statusChangeUpdate(run.target, decision.change));
      if (!written.applied) {
        if (!written.current) throw new StatusItemMissing(`Status item ${run.target.key.uid}/${run.target.key.workflow} disappeared`, run.context);
        run.doc = written.current;
        continue;
      }
      run.doc = written.item!;
    }
    if (decision.error) throw decision.error;
    return;
  }
  throw new StatusUpdateConflict(`Could not record ${what}: the status item kept changing`, run.context);
}

async function recordOutcome(run: StageRun, plugin: RegisteredPlugin, invocation: PluginOutcome, isLast: boolean): Promise<void> {
  await store(run, () => decide(run, plugin, reconcile(invocation, entryOf(run.doc, run.event, plugin)), isLast), plugin.pluginName);
}

function decide(run: StageRun, plugin: RegisteredPlugin, outcome: PluginOutcome, isLast: boolean): Decision {
  const { event, context } = run;
  const entry = entryOf(run.doc, event, plugin);
  const ref = { kind: pluginKind(plugin), plugin: plugin.pluginName };
  const now = new Date().toISOString();
  const base = { activity: event.activity, stage: event.stage, now };

  const finalEntry = (state: PluginState, message?: string, attempts?: number): EntryChange | undefined =>
    // Already stored by the plugin itself: keep its message, write nothing for the entry.
    entry?.state === state ? undefined : { ...ref, state, message, attempts, allowSameState: true };
  const continueOrSettle = (change: EntryChange | undefined): Decision => {
    if (isLast) return settle(run, change);
    return change ? { change: { ...base, entries: [change] } } : {};
  };

  switch (outcome.kind) {
    case 'complete':
      return continueOrSettle(finalEntry(State.COMPLETE));
    case 'doNotRun':
      return continueOrSettle(finalEntry(State.DO_NOT_RUN));
    case 'businessError':
      if (plugin.mandatory) return failStage(run, plugin.pluginName, finalEntry(State.ERROR, outcome.message), outcome.message);
      return continueOrSettle(finalEntry(State.ERROR, outcome.message));
    case 'invocationError': {
      const attempts = (entry?.attempts ?? 0) + 1;
      if (attempts < event.maxAttempts) {
        return {
          change: { ...base, entries: [{ ...ref, attempts, message: outcome.message }] },
          error: new PluginInvocationFailed(
            `${plugin.pluginName} failed (attempt ${attempts} of ${event.maxAttempts}): ${trimMessage(outcome.message)}`,
            context, plugin.pluginName, attempts),
        };
      }
      const message = `${outcome.message} (after ${attempts} attempt${attempts === 1 ? '' : 's'})`;
      const failed: EntryChange = { ...ref, state: State.ERROR, message, attempts, allowSameState: true };
      return plugin.mandatory ? failStage(run, plugin.pluginName, failed, message) : continueOrSettle(failed);
    }
  }
}

/** A mandatory plugin failed for good: plugin, stage, activity and run `Error` in one write. */
function failStage(run: StageRun, plugin: string, entry: EntryChange | undefined, message: string): Decision {
  const { event, context } = run;
  const failure = describeFailure({ plugin, message });
  return {
    change: stageFailedChange(
      { activity: event.activity, stage: event.stage, now: new Date().toISOString(), message: failure },
      { entries: entry ? [entry] : [] },
    ),
    error: new PluginFailed(failure, context, plugin),
  };
}

/** The write that ends the stage: the last entry (if any) plus stage, activity and run summaries. */
function settle(run: StageRun, entry: EntryChange | undefined): Decision {
  const { event } = run;
  const projected = structuredClone(run.doc);
  const stage = projected.activities[event.activity][event.stage];
  if (entry?.state) {
    stage[entry.kind][entry.plugin] = { ...stage[entry.kind][entry.plugin], state: entry.state };
  }
  const stageState = summarizeStage(registeredView(stage, run.registered));
  if (stageState === State.ERROR) {
    // A mandatory entry was already Error (e.g. a run not reset by start-run): fail like any plugin failure.
    const failure = stageFailure(registeredView(stage, run.registered))!;
    return failStage(run, failure.plugin, entry, failure.message);
  }
  stage.status = { ...stage.status, state: stageState };
  const { activityState, runState } = rollUp(projected.activities, event.activity);
  const stale = unregisteredPendingEntries(run.doc.activities[event.activity][event.stage], run.registered);

  const current = run.doc.activities[event.activity];
  const unchanged = !entry && stale.length === 0 && current[event.stage].status.state === stageState
    && current.status.state === activityState && run.doc.status.state === runState;
  if (unchanged) return {};
  return {
    change: {
      activity: event.activity,
      stage: event.stage,
      now: new Date().toISOString(),
      entries: entry ? [entry] : [],
      removeEntries: stale,
      stageStatus: { state: stageState },
      activityStatus: { state: activityState },
      runState,
    },
  };
}

/**
 * A finished stage's activity and run summaries brought up to date, conditioned on the stage still
 * being in the state they were computed from; nothing is written when they already agree.
 */
function resummarize(run: StageRun): Decision {
  const { event } = run;
  const activity = activityOf(run.doc, event.activity);
  if (!activity) return {};
  const { activityState, runState } = rollUp(run.doc.activities, event.activity);
  // A failed activity or run keeps its message and state: only start-run resets them.
  if (activity.status.state === State.ERROR || run.doc.status.state === State.ERROR) return {};
  if (activity.status.state === activityState && run.doc.status.state === runState) return {};
  return {
    change: {
      activity: event.activity,
      stage: event.stage,
      now: new Date().toISOString(),
      activityStatus: { state: activityState },
      runState,
      expect: { stageState: activity[event.stage].status.state },
    },
  };
}

/** Nothing to invoke (no plugins, or all done in an earlier attempt): settle from what is stored. */
async function settleWithoutPlugin(run: StageRun): Promise<void> {
  await store(run, () => settle(run, undefined), 'the stage');
}
