/**
 * `pluginHandler`: wraps a TypeScript plugin's work in the plugin protocol (behaviour.md "Plugin
 * message and plugin protocol"; DESIGN.md "Plugin SDK"). Every status write is the shared
 * plugin-state transition (`pluginStateUpdate`, lambda/shared/status-store.ts): conditional, never
 * backwards, so the SDK, the stage handlers and the Lambda destination handler agree on every entry.
 */
import { initialization, resolveConfig } from './config';
import { InvalidPluginConfig, InvalidPluginEvent, isBusinessError, PluginNotInRun } from './errors';
import {
  ActivityView, LambdaContextLike, PluginConfig, PluginContext, PluginInitialization, PluginLambdaHandler, PluginMessage,
  PluginMessageFields, PluginMessageSource, PluginOutcome, PluginResult, PluginState, PluginWork, SqsBatchResponse,
} from './types';
import { PLUGIN_STATUS_TABLE_ENV } from '../shared/environment';
import { ConfigurationError } from '../shared/errors';
import { isObject } from '../shared/json';
import {
  buildPluginMessage, isPluginFinal, isPluginSkippable, isStageKey, PLUGIN_KINDS, PluginEntry as StoredEntry,
  PluginKind, PluginState as StoredState, State, StatusDocument, trimMessage,
} from '../shared/status';
import { pluginStateUpdate, StatusTarget } from '../shared/status-store';
import { readStatus, updateStatus, WriteOutcome } from '../shared/status-table';

type Fields = Record<string, unknown>;
type ResolvedConfig = ReturnType<typeof resolveConfig>;

/** A received plugin message after validation (the wire shape; `activities` may be shortened). */
interface ReceivedMessage extends Fields {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: PluginMessageFields['stage'];
  readonly now?: string;
  readonly truncated?: boolean;
  readonly statusRef?: { readonly tableName?: unknown };
}

/** The plugin's entry in a document: which map it is in, and its state. */
interface FoundEntry {
  readonly kind: PluginKind;
  readonly entry: StoredEntry;
}

/**
 * Makes a Lambda handler of a plugin's work. The handler serves every way a plugin message arrives:
 * the SNS event of a PARALLEL stage (and the SNS-shaped event PRE/POST plugins are invoked with), an
 * SQS batch (queue bridge: each record's body is the plugin message), a plugin message invoked
 * directly, and the `{ "initialize": true }` handshake, answered with the configuration.
 *
 * For each message it:
 * 1. skips the work when the plugin's entry is already `Complete` or `Do Not Run` (unless
 *    `alwaysRun`); with `idempotent` (the default) it makes sure from the status item itself, where
 *    any final entry (also `Error`, a failure already recorded in this run) is skipped;
 * 2. reports `In Progress`, runs `work` with the complete message (a shortened one is read back from
 *    the status item), then reports `Complete` (or the `Do Not Run` the work returned);
 * 3. on a `PluginBusinessError` reports `Error` with its message and returns (no retry); any other
 *    error is rethrown, so Lambda retries (the entry stays `In Progress` meanwhile).
 *
 * The plugin needs `dynamodb:GetItem` and `dynamodb:UpdateItem` on the status table and its name
 * in `CDK_ORCHESTRATOR_STATUS_TABLE`: `activity.addPlugin(fn, { ..., reportsStatus: true })` does both.
 *
 * ```ts
 * import { pluginHandler, PluginBusinessError } from 'cdk-orchestrator/lib/sdk';
 *
 * export const handler = pluginHandler<{ amount: number }>({ pluginName: 'Rate' }, async (message) => {
 *   if (message.amount < 0) throw new PluginBusinessError('amount must not be negative');
 *   await rate(message.uid, message.amount);
 * });
 * ```
 *
 * @param config the plugin's configuration; checked when the module loads (`InvalidPluginConfig`)
 * @param work the plugin's work for one run
 * @typeParam M the run's metadata fields
 */
export function pluginHandler<M extends object = Record<string, unknown>>(config: PluginConfig, work: PluginWork<M>): PluginLambdaHandler {
  const resolved = resolveConfig(config);
  if (typeof work !== 'function') {
    throw new InvalidPluginConfig(`pluginHandler ${JSON.stringify(resolved.pluginName)}: the second argument must be the plugin's work, `
      + 'an async function (message, context) => void');
  }
  const answer = initialization(resolved);
  const runOne = (body: unknown, source: PluginMessageSource, lambdaContext?: LambdaContextLike) =>
    processMessage(resolved, work as PluginWork<object>, body, source, lambdaContext);

  return async (event: unknown, lambdaContext?: LambdaContextLike) => {
    if (isInitialize(event)) return answer;
    if (isSqsEvent(event)) return processBatch(event.Records, runOne, lambdaContext);
    if (isSnsEvent(event)) {
      // SNS invokes a function with one record; a hand-made event with several is worked in order.
      let outcome: PluginOutcome | PluginInitialization = answer;
      for (const record of event.Records) {
        const body = parseBody(record.Sns.Message);
        outcome = isInitialize(body) ? answer : await runOne(body, 'sns', lambdaContext);
      }
      return outcome;
    }
    if (isObject(event) && 'uid' in event) return runOne(event, 'direct', lambdaContext);
    throw new InvalidPluginEvent(`Plugin ${resolved.pluginName}: expected { "initialize": true }, an SNS event, an SQS event or a plugin message `
      + `{ uid, workflow, activity, stage, ... }; got ${describe(event)}`);
  };
}

// ---------------------------------------------------------------------------------------------
// One message

async function processMessage(
  config: ResolvedConfig, work: PluginWork<object>, body: unknown, source: PluginMessageSource, lambdaContext?: LambdaContextLike,
): Promise<PluginOutcome> {
  const message = parseMessage(config.pluginName, body);
  const { uid, workflow, activity, stage } = message;
  const name = config.pluginName;
  const target: StatusTarget = { tableName: statusTable(config, message), key: { uid, workflow } };
  const log = (level: 'info' | 'warn', text: string, fields: Fields = {}) => writeLog(level, text, { plugin: name, uid, workflow, activity, stage, ...fields });

  // 1. The message's own view (free). A shortened message may lack the entry: read the item.
  let found = findEntry(message.activities as Record<string, ActivityView> | undefined, activity, stage, name);
  let stored: StatusDocument | undefined;
  if (found && isPluginSkippable(found.entry.state) && !config.alwaysRun) {
    log('info', 'Plugin already done; skipped', { state: found.entry.state });
    return skipped(found.entry);
  }
  if (!found) {
    stored = await readStatus(target.tableName, target.key);
    if (!stored) missing(`no status item for run ${uid}/${workflow} in table ${target.tableName}`);
    found = findEntry(stored.activities, activity, stage, name);
    if (!found) {
      const known = PLUGIN_KINDS.flatMap((kind) => Object.keys(stored!.activities[activity]?.[stage]?.[kind] ?? {})).sort();
      missing(`plugin ${name} has no entry in ${activity}.${stage} of run ${uid}/${workflow} (entries: ${known.join(', ') || 'none'}); `
        + 'pluginName must be the name the plugin was added with (activity.addPlugin)');
    }
    if (isPluginFinal(found.entry.state) && !config.alwaysRun) {
      log('info', 'Plugin already done; skipped', { state: found.entry.state });
      return skipped(found.entry);
    }
  }
  const kind = found.kind;
  const report = (state: StoredState, text?: string) => updateStatus({
    ...pluginStateUpdate(target, { activity, stage, kind, plugin: name, state, message: text, now: new Date().toISOString() }),
    // The stored item comes back either way: after the write, or as it was when the write was refused.
    ReturnValues: 'ALL_NEW',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  });

  // 2. Claim the work. The conditional write is the re-read: refused = the entry is already final.
  const claim = await report(State.IN_PROGRESS);
  const current = documentOf(claim) ?? stored;
  if (!claim.applied) {
    const now = current ? findEntry(current.activities, activity, stage, name)?.entry : undefined;
    if (!now) missing(`the status item of run ${uid}/${workflow} or the plugin's entry is gone`);
    if (config.idempotent && !config.alwaysRun) {
      log('info', 'Plugin already done; skipped', { state: now.state });
      return skipped(now);
    }
    log('warn', 'In Progress not recorded (the entry is final); running anyway', { state: now.state, alwaysRun: config.alwaysRun, idempotent: config.idempotent });
  }

  // 3. The work, with the complete message.
  const full = current ? messageFrom(current, message) : message;
  const context: PluginContext = { pluginName: name, kind, source, lambdaContext };
  let state: StoredState = State.COMPLETE;
  let text: string | undefined;
  try {
    const result = await work(full as unknown as PluginMessage<object>, context);
    if (isResult(result) && result.state === State.DO_NOT_RUN) state = State.DO_NOT_RUN;
    text = isResult(result) && typeof result.message === 'string' && result.message !== '' ? trimMessage(result.message) : undefined;
  } catch (error) {
    // A crash goes back to Lambda for a retry; the entry stays In Progress meanwhile.
    if (!isBusinessError(error)) {
      // From a queue, the crash's text is written on the entry: after the last receive the queue
      // bridge records Error keeping it (Lambda tells nobody why a queued message failed).
      if (source === 'sqs') {
        await report(State.IN_PROGRESS, trimMessage(errorText(error)))
          .catch((reportError: unknown) => log('warn', 'Could not write the error on the entry', { error: errorText(reportError) }));
      }
      throw error;
    }
    state = State.ERROR;
    text = trimMessage(error.message || 'the plugin reported Error');
  }

  // 4. The outcome. A refused report leaves what is stored (e.g. the stage timed the plugin out).
  const done = await report(state, text);
  if (done.applied) {
    log('info', 'Plugin outcome recorded', { state, ...(text ? { message: text } : {}) });
    return { state, ...(text !== undefined ? { message: text } : {}), skipped: false, reported: true };
  }
  const kept = findEntry(documentOf(done)?.activities, activity, stage, name)?.entry;
  log('warn', 'Plugin outcome not recorded: the entry already holds a final state', { state, stored: kept?.state });
  const stays = kept ? entryOutcome(kept) : { state, ...(text !== undefined ? { message: text } : {}) };
  return { ...stays, skipped: false, reported: false };
}

/** The table the plugin reports to: its configuration, the environment addPlugin sets, or a shortened message's reference. */
function statusTable(config: ResolvedConfig, message: ReceivedMessage): string {
  const fromRef = typeof message.statusRef?.tableName === 'string' && message.statusRef.tableName !== '' ? message.statusRef.tableName : undefined;
  const name = config.statusTableName ?? process.env[PLUGIN_STATUS_TABLE_ENV] ?? fromRef;
  if (!name) {
    throw new ConfigurationError(`Plugin ${config.pluginName}: environment variable ${PLUGIN_STATUS_TABLE_ENV} is not set; add the plugin with `
      + 'activity.addPlugin(fn, { ..., reportsStatus: true }) (or set it to the orchestrator\'s status table name and grant GetItem/UpdateItem '
      + 'with orchestrator.grantPluginStatus(fn))');
  }
  return name;
}

function documentOf(outcome: WriteOutcome): StatusDocument | undefined {
  return outcome.applied ? outcome.item : outcome.current;
}

/** The plugin's entry (either kind) in one stage of a document or a message. */
function findEntry(activities: Record<string, ActivityView> | undefined, activity: string, stage: PluginMessageFields['stage'], name: string): FoundEntry | undefined {
  const stageView = isObject(activities) ? (activities[activity] as ActivityView | undefined)?.[stage] : undefined;
  if (!isObject(stageView)) return undefined;
  for (const kind of PLUGIN_KINDS) {
    const entries = stageView[kind];
    const entry = isObject(entries) && Object.hasOwn(entries, name) ? entries[name] : undefined;
    if (isObject(entry) && typeof entry.state === 'string') return { kind, entry: entry as StoredEntry };
  }
  return undefined;
}

/**
 * The message the work gets: rebuilt from the stored document (as the orchestrator builds it, so it
 * is never shortened), with the `now` the stage sent.
 */
function messageFrom(doc: StatusDocument, received: ReceivedMessage): PluginMessageFields {
  const built = buildPluginMessage(doc, { activity: received.activity, stage: received.stage, now: received.now ?? new Date().toISOString() });
  // Built from a stored document, so every activity is complete (only shortened messages are not).
  return { ...built, activities: publicView(built.activities as StatusDocument['activities']) };
}

/** The stored activities as the public type (this assignment is the compile-time check that they fit it). */
function publicView(activities: StatusDocument['activities']): Record<string, ActivityView> {
  return activities;
}

function entryOutcome(entry: StoredEntry): { state: PluginState; message?: string } {
  return { state: entry.state, ...(entry.message !== undefined ? { message: entry.message } : {}) };
}

function skipped(entry: StoredEntry): PluginOutcome {
  return { ...entryOutcome(entry), skipped: true, reported: false };
}

/** The run has no entry for this plugin: nothing runs (`PluginNotInRun`, failed like a crash). */
function missing(why: string): never {
  throw new PluginNotInRun(why);
}

// ---------------------------------------------------------------------------------------------
// Events


function isInitialize(event: unknown): boolean {
  return isObject(event) && event.initialize === true;
}

interface SnsRecordLike { readonly Sns: { readonly Message: string } }
interface SqsRecordLike { readonly messageId: string; readonly body: string; readonly eventSourceARN?: string }

function isSnsEvent(event: unknown): event is { Records: SnsRecordLike[] } {
  return isObject(event) && Array.isArray(event.Records) && event.Records.length > 0
    && event.Records.every((r) => isObject(r) && r.EventSource === 'aws:sns' && isObject(r.Sns) && typeof r.Sns.Message === 'string');
}

function isSqsEvent(event: unknown): event is { Records: SqsRecordLike[] } {
  return isObject(event) && Array.isArray(event.Records) && event.Records.length > 0
    && event.Records.every((r) => isObject(r) && r.eventSource === 'aws:sqs' && typeof r.messageId === 'string' && typeof r.body === 'string');
}

function parseBody(text: string): unknown {
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new InvalidPluginEvent(`The message is not JSON: ${describe(text)}`);
  }
  // A queue subscribed to a topic without raw message delivery wraps the message in an SNS notification.
  if (isObject(body) && body.Type === 'Notification' && typeof body.Message === 'string') return parseBody(body.Message);
  return body;
}

function parseMessage(pluginName: string, body: unknown): ReceivedMessage {
  const problems: string[] = [];
  const fields = isObject(body) ? body : {};
  for (const field of ['uid', 'workflow', 'activity'] as const) {
    if (typeof fields[field] !== 'string' || fields[field] === '') problems.push(`${field} must be a non-empty string`);
  }
  if (!isStageKey(fields.stage)) problems.push('stage must be "pre", "async" or "post"');
  if (!isObject(body) || problems.length > 0) {
    throw new InvalidPluginEvent(`Plugin ${pluginName}: not a plugin message (${isObject(body) ? problems.join('; ') : `got ${describe(body)}`})`);
  }
  return body as ReceivedMessage;
}

function isResult(value: unknown): value is PluginResult {
  return isObject(value) && typeof value.state === 'string';
}

/**
 * An SQS batch (queue bridge): each record is one plugin message. Records that fail (a crash) are
 * returned as `batchItemFailures` and delivered again; the others are deleted. In a FIFO queue the
 * records after a failed one are returned too, so a message group keeps its order.
 */
async function processBatch(
  records: readonly SqsRecordLike[],
  runOne: (body: unknown, source: PluginMessageSource, lambdaContext?: LambdaContextLike) => Promise<PluginOutcome>,
  lambdaContext?: LambdaContextLike,
): Promise<SqsBatchResponse> {
  const one = async (record: SqsRecordLike): Promise<boolean> => {
    try {
      const body = parseBody(record.body);
      if (!isInitialize(body)) await runOne(body, 'sqs', lambdaContext);
      return true;
    } catch (error) {
      writeLog('error', 'Queue message failed; it will be delivered again', {
        messageId: record.messageId, error: errorText(error),
      });
      return false;
    }
  };
  const fifo = records.some((record) => record.eventSourceARN?.endsWith('.fifo'));
  const failed: string[] = [];
  if (fifo) {
    for (const record of records) {
      if (failed.length > 0 || !(await one(record))) failed.push(record.messageId);
    }
  } else {
    const results = await Promise.all(records.map(one));
    records.forEach((record, i) => { if (!results[i]) failed.push(record.messageId); });
  }
  return { batchItemFailures: failed.map((itemIdentifier) => ({ itemIdentifier })) };
}

// ---------------------------------------------------------------------------------------------

/** `name: message` of an error, as plugin-outcome records a crash. */
function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name || 'Error'}: ${error.message}` : describe(error);
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? value : JSON.stringify(value) ?? String(value);
  return text.length > 120 ? `${text.slice(0, 119)}…` : text;
}

/** One JSON log line (CloudWatch Logs parses it); the SDK carries no logging library. */
function writeLog(level: 'info' | 'warn' | 'error', message: string, fields: Fields): void {
  const line = JSON.stringify({ level: level.toUpperCase(), message, service: 'cdk-orchestrator-plugin', ...fields });
  if (level === 'error') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.info(line);
}
