/**
 * The status document and every rule about it: states, summaries, plugin-state transitions,
 * re-run reset and the plugin message. Pure (no AWS SDK, no I/O) so the handlers, the plugin SDK
 * and the local engine share one implementation and it can be unit-tested alone.
 */
import type { SNSEvent, SNSMessageAttributes } from 'aws-lambda';

// ---------------------------------------------------------------------------------------------
// States and stages

export const State = {
  NOT_STARTED: 'Not Started',
  IN_PROGRESS: 'In Progress',
  MANDATORY_COMPLETED: 'Mandatory Completed',
  COMPLETE: 'Complete',
  ERROR: 'Error',
  OPTIONAL_TASK_ERROR: 'Optional Task Error',
  DO_NOT_RUN: 'Do Not Run',
} as const;
export type State = typeof State[keyof typeof State];

/** The states a plugin entry can hold (the stage-level summaries are never stored on a plugin). */
export type PluginState = typeof State.NOT_STARTED | typeof State.IN_PROGRESS | typeof State.COMPLETE
| typeof State.ERROR | typeof State.DO_NOT_RUN;

export const ALL_STATES: readonly State[] = Object.values(State);
export const PLUGIN_STATES: readonly PluginState[] = [
  State.NOT_STARTED, State.IN_PROGRESS, State.COMPLETE, State.ERROR, State.DO_NOT_RUN,
];

/** Stage keys in the order an activity runs them. */
export const STAGES = ['pre', 'async', 'post'] as const;
export type StageKey = typeof STAGES[number];
export type SequentialStageKey = 'pre' | 'post';

export const PLUGIN_KINDS = ['mandatory', 'optional'] as const;
export type PluginKind = typeof PLUGIN_KINDS[number];

/** Longest message stored anywhere in the status document. */
export const MESSAGE_MAX_LENGTH = 180;

/** A stage or activity in one of these states needs no more work in this run. */
const DONE_STATES: ReadonlySet<State> = new Set<State>([
  State.COMPLETE, State.MANDATORY_COMPLETED, State.OPTIONAL_TASK_ERROR, State.DO_NOT_RUN,
]);
const PENDING_PLUGIN_STATES: ReadonlySet<State> = new Set<State>([State.NOT_STARTED, State.IN_PROGRESS]);
const FINAL_PLUGIN_STATES: ReadonlySet<State> = new Set<State>([State.COMPLETE, State.ERROR, State.DO_NOT_RUN]);
/** Stage states start-run turns back into `Not Started` so failed work runs again. */
const RESET_STATES: ReadonlySet<State> = new Set<State>([State.ERROR, State.OPTIONAL_TASK_ERROR]);

export function isState(value: unknown): value is State {
  return typeof value === 'string' && (ALL_STATES as readonly string[]).includes(value);
}

export function isPluginState(value: unknown): value is PluginState {
  return typeof value === 'string' && (PLUGIN_STATES as readonly string[]).includes(value);
}

export function isStageKey(value: unknown): value is StageKey {
  return typeof value === 'string' && (STAGES as readonly string[]).includes(value);
}

/** `Complete`, `Mandatory Completed`, `Optional Task Error` or `Do Not Run`. */
export function isStageDone(state: State | undefined): boolean {
  return state !== undefined && DONE_STATES.has(state);
}

/** `Not Started` or `In Progress`: the plugin has not reported an outcome yet. */
export function isPluginPending(state: State | undefined): boolean {
  return state === undefined || PENDING_PLUGIN_STATES.has(state);
}

/** `Complete`, `Error` or `Do Not Run`: nothing may change the entry until a re-run resets it. */
export function isPluginFinal(state: State | undefined): boolean {
  return state !== undefined && FINAL_PLUGIN_STATES.has(state);
}

/** A plugin that needs no work (the plugin SDK's skip): already `Complete` or told not to run. */
export function isPluginSkippable(state: State | undefined): boolean {
  return state === State.COMPLETE || state === State.DO_NOT_RUN;
}

/**
 * Whether a stage may invoke a plugin whose entry is in `state`: only while it is pending (`Not
 * Started`, or `In Progress` after a failed attempt). `Complete` and `Do Not Run` need nothing more;
 * `Error` (a business error, a call that exceeded its `timeout`, or retries used up) is final for the
 * run: invoking it again would repeat its side effects. Only a re-run's reset makes it pending again.
 */
export function isPluginInvocable(state: State | undefined): boolean {
  return isPluginPending(state);
}

// ---------------------------------------------------------------------------------------------
// The status document

export interface PluginEntry {
  state: PluginState;
  message?: string;
  /** Failed invocations so far (sequential stages). */
  attempts?: number;
  updatedAt?: string;
}

export interface StageStatus {
  state: State;
  message?: string;
  startTime?: string;
  /** Step Functions task token of the waiting parallel stage. */
  token?: string;
}

export interface StageDocument {
  status: StageStatus;
  mandatory: Record<string, PluginEntry>;
  optional: Record<string, PluginEntry>;
}

export interface ActivityStatus {
  state: State;
  message?: string;
}

export interface ActivityDocument {
  status: ActivityStatus;
  pre: StageDocument;
  async: StageDocument;
  post: StageDocument;
}

export type Metadata = Record<string, unknown> & { workflow: string };

export interface StatusDocument {
  uid: string;
  workflow: string;
  metadata: Metadata;
  status: { state: State };
  activities: Record<string, ActivityDocument>;
  /** Activities whose parallel stage is not settled; absent when none (DynamoDB has no empty sets). */
  awaiting?: Set<string>;
  createdAt: string;
  updatedAt: string;
  /** Epoch seconds; the table's TTL attribute. */
  expiresAt?: number;
}

export interface NewStatusDocumentProps {
  readonly uid: string;
  readonly workflow: string;
  /** Caller fields; `workflow` is always set from `workflow`. */
  readonly metadata?: Record<string, unknown>;
  readonly activities: readonly string[];
  readonly now: string;
  readonly expiresAt?: number;
}

export function newStageDocument(): StageDocument {
  return { status: { state: State.NOT_STARTED }, mandatory: {}, optional: {} };
}

export function newActivityDocument(): ActivityDocument {
  return {
    status: { state: State.NOT_STARTED },
    pre: newStageDocument(),
    async: newStageDocument(),
    post: newStageDocument(),
  };
}

export function newStatusDocument(props: NewStatusDocumentProps): StatusDocument {
  // fromEntries defines own fields: `activities[name] = ...` would set the prototype for `__proto__`.
  const activities: Record<string, ActivityDocument> = Object.fromEntries(props.activities.map((name) => [name, newActivityDocument()]));
  return {
    uid: props.uid,
    workflow: props.workflow,
    metadata: { ...props.metadata, workflow: props.workflow },
    status: { state: State.NOT_STARTED },
    activities,
    createdAt: props.now,
    updatedAt: props.now,
    ...(props.expiresAt !== undefined ? { expiresAt: props.expiresAt } : {}),
  };
}

/**
 * `map[key]` only when `key` is the map's own field, so a name such as `constructor` or `toString`
 * never finds an Object.prototype member instead of a missing activity or plugin entry.
 */
export function ownField<T>(map: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return map !== undefined && map !== null && Object.hasOwn(map, key) ? map[key] : undefined;
}

/** The run's activity of that name, if the run has it. */
export function activityOf(doc: Pick<StatusDocument, 'activities'>, name: string): ActivityDocument | undefined {
  return ownField(doc.activities, name);
}

/** A plugin's entry in one stage of a run, under its kind (own fields only, as `ownField`). */
export function pluginEntryOf(
  doc: Pick<StatusDocument, 'activities'>, activity: string, stage: StageKey, kind: PluginKind, plugin: string,
): PluginEntry | undefined {
  return ownField(activityOf(doc, activity)?.[stage]?.[kind], plugin);
}

/**
 * Plugin entries as stored, each one an entry: a value that is not an object with a plugin state
 * (`null`, a string, an entry written by hand) reads as `Not Started`, so it waits like a new entry.
 */
function asPluginEntries(raw: unknown): Record<string, PluginEntry> {
  if (!isPlainObject(raw)) return {};
  return Object.fromEntries(Object.entries(raw).map(([name, entry]) => [name,
    isPlainObject(entry) && isPluginState(entry.state)
      ? entry as unknown as PluginEntry
      : { ...(isPlainObject(entry) ? entry : {}), state: State.NOT_STARTED } as PluginEntry]));
}

function asStageDocument(raw: unknown): StageDocument {
  const stage = isPlainObject(raw) ? raw : {};
  const status = isPlainObject(stage.status) && isState(stage.status.state) ? stage.status as unknown as StageStatus : { state: State.NOT_STARTED };
  return {
    ...stage,
    status,
    mandatory: asPluginEntries(stage.mandatory),
    optional: asPluginEntries(stage.optional),
  };
}

/**
 * A stored item (already unmarshalled) as a status document, with missing parts filled in as
 * `Not Started`, so the summaries never trip over an item written by an older version or by hand.
 */
export function asStatusDocument(item: Record<string, unknown>): StatusDocument {
  const stored = Object.entries(isPlainObject(item.activities) ? item.activities : {});
  // fromEntries: every name stays an own field (see newStatusDocument).
  const activities: Record<string, ActivityDocument> = Object.fromEntries(stored.map(([name, raw]) => {
    const activity = isPlainObject(raw) ? raw : {};
    return [name, {
      ...activity,
      status: isPlainObject(activity.status) && isState(activity.status.state)
        ? activity.status as unknown as ActivityStatus
        : { state: State.NOT_STARTED },
      pre: asStageDocument(activity.pre),
      async: asStageDocument(activity.async),
      post: asStageDocument(activity.post),
    }];
  }));
  const status = isPlainObject(item.status) && isState(item.status.state) ? { state: item.status.state } : { state: State.NOT_STARTED };
  const awaiting = item.awaiting instanceof Set ? item.awaiting as Set<string> : undefined;
  const { awaiting: _awaiting, ...rest } = item;
  return {
    ...rest,
    metadata: (isPlainObject(item.metadata) ? item.metadata : { workflow: item.workflow }) as Metadata,
    status,
    activities,
    ...(awaiting && awaiting.size > 0 ? { awaiting } : {}),
  } as StatusDocument;
}

// ---------------------------------------------------------------------------------------------
// Summaries

/** Whether the stage handler has marked the stage started in this run. */
function hasStarted(status: StageStatus | undefined): boolean {
  return status !== undefined && (status.state !== State.NOT_STARTED || status.startTime !== undefined);
}

function entryStates(entries: Record<string, PluginEntry> | undefined): State[] {
  // An entry that is not an object (written by hand or by another tool) reads as `Not Started`.
  return Object.values(entries ?? {}).map((entry) => (isPluginState(entry?.state) ? entry.state : State.NOT_STARTED));
}

/**
 * The state of a stage from its plugin entries.
 * Mandatory `Error` -> `Error`; mandatory pending -> `In Progress` (or, before the stage started,
 * `Not Started` unless some plugin already moved); all mandatory done -> optional pending ->
 * `Mandatory Completed`, optional `Error` -> `Optional Task Error`, else `Complete`.
 * A stage that has not started and whose plugins have not moved is `Not Started`.
 */
export function summarizeStage(stage: StageDocument): State {
  const mandatory = entryStates(stage.mandatory);
  const optional = entryStates(stage.optional);
  const started = hasStarted(stage.status);
  const anyPluginMoved = [...mandatory, ...optional].some((state) => state !== State.NOT_STARTED);

  if (mandatory.includes(State.ERROR)) return State.ERROR;
  if (mandatory.some(isPluginPending)) {
    return started || anyPluginMoved ? State.IN_PROGRESS : State.NOT_STARTED;
  }
  if (!started && !anyPluginMoved) return State.NOT_STARTED;
  if (optional.some(isPluginPending)) return State.MANDATORY_COMPLETED;
  if (optional.includes(State.ERROR)) return State.OPTIONAL_TASK_ERROR;
  return State.COMPLETE;
}

/**
 * One level up (stages -> activity, activities -> run): any `Error` -> `Error`; all done ->
 * `Complete`; any `In Progress`, or a mix of done and not started -> `In Progress`; else `Not Started`.
 * An optional failure (`Optional Task Error`) counts as done: optional means optional.
 */
export function summarizeStates(states: readonly State[]): State {
  if (states.includes(State.ERROR)) return State.ERROR;
  if (states.every(isStageDone)) return State.COMPLETE;
  if (states.includes(State.IN_PROGRESS) || states.some(isStageDone)) return State.IN_PROGRESS;
  return State.NOT_STARTED;
}

/** The activity's state from its three stages' stored states. */
export function summarizeActivity(activity: ActivityDocument): State {
  return summarizeStates(STAGES.map((stage) => activity[stage].status.state));
}

/** The run's state from its activities' stored states. */
export function summarizeRun(activities: Record<string, ActivityDocument>): State {
  return summarizeStates(Object.values(activities).map((activity) => activity.status.state));
}

/**
 * The activity's state from its stages, and the run's state with that activity summarized: what a
 * write that changes a stage (or finds one done) stores on the activity and the run.
 */
export function rollUp(activities: Record<string, ActivityDocument>, activity: string): { activityState: State; runState: State } {
  const activityState = summarizeActivity(activities[activity]);
  const runState = summarizeRun({ ...activities, [activity]: { ...activities[activity], status: { state: activityState } } });
  return { activityState, runState };
}

// ---------------------------------------------------------------------------------------------
// Plugin-entry transitions

const PREDECESSORS: Record<PluginState, readonly PluginState[]> = {
  [State.NOT_STARTED]: [State.NOT_STARTED],
  [State.IN_PROGRESS]: [State.NOT_STARTED, State.IN_PROGRESS],
  [State.COMPLETE]: [State.NOT_STARTED, State.IN_PROGRESS],
  [State.ERROR]: [State.NOT_STARTED, State.IN_PROGRESS],
  [State.DO_NOT_RUN]: [State.NOT_STARTED, State.IN_PROGRESS],
};

/**
 * The entry states from which a plugin may move to `target`: `Not Started` -> anything;
 * `In Progress` -> `In Progress`, `Complete`, `Error`, `Do Not Run`; `Complete`, `Error` and
 * `Do Not Run` are final for the run (only start-run resets them). DynamoDB condition expressions
 * are built from this list, so a late `In Progress` can never overwrite `Complete`.
 */
export function allowedPredecessors(target: PluginState): readonly PluginState[] {
  return PREDECESSORS[target];
}

/** Whether an entry in state `from` (undefined: no entry yet, i.e. `Not Started`) may become `to`. */
export function canTransition(from: PluginState | undefined, to: PluginState): boolean {
  return allowedPredecessors(to).includes(from ?? State.NOT_STARTED);
}

// ---------------------------------------------------------------------------------------------
// Re-runs

export interface ResetForRerunProps {
  /** The workflow's activities now, in order: missing ones are added, others dropped. */
  readonly activities: readonly string[];
  readonly now: string;
  /** Replaces the stored metadata (`metadataOverride`); `workflow` is kept. */
  readonly metadata?: Record<string, unknown>;
  readonly expiresAt?: number;
}

function resetStage(stage: StageDocument): StageDocument {
  let anyReset = false;
  const resetEntries = (entries: Record<string, PluginEntry>) => Object.fromEntries(
    Object.entries(entries ?? {}).map(([name, entry]) => {
      const updatedAt = entry.updatedAt !== undefined ? { updatedAt: entry.updatedAt } : {};
      if (RESET_STATES.has(entry.state)) {
        anyReset = true;
        return [name, { state: State.NOT_STARTED, ...updatedAt } as PluginEntry];
      }
      // Still pending from the last run (a failed attempt, or a parallel plugin still at work): the
      // state stays, the attempt count and message go, so this run counts its attempts from 1.
      if (isPluginPending(entry.state)) return [name, { state: entry.state, ...updatedAt } as PluginEntry];
      return [name, entry];
    }),
  );
  const mandatory = resetEntries(stage.mandatory);
  const optional = resetEntries(stage.optional);
  // No execution is waiting any more when a run is re-started, so no token survives.
  const { token: _token, ...status } = stage.status;
  // A stage with a plugin that goes back must run again, whatever state it reached (`Mandatory
  // Completed` with an optional `Error` included); so must one that failed or never finished.
  const runsAgain = anyReset || RESET_STATES.has(status.state) || !isStageDone(status.state);
  return {
    status: runsAgain ? { state: State.NOT_STARTED } : status,
    mandatory,
    optional,
  };
}

/**
 * The document a re-run starts from: completed work is kept (so it is not run again); every
 * `Error` and `Optional Task Error` (stages and plugins) goes back to `Not Started` with its message
 * and attempt count cleared; activities the workflow no longer lists are dropped and new ones added;
 * activity and run states are summarized again.
 */
export function resetForRerun(doc: StatusDocument, props: ResetForRerunProps): StatusDocument {
  const activities: Record<string, ActivityDocument> = {};
  for (const name of props.activities) {
    const existing = ownField(doc.activities, name);
    if (!existing) {
      activities[name] = newActivityDocument();
      continue;
    }
    const activity: ActivityDocument = {
      status: { state: State.NOT_STARTED },
      pre: resetStage(existing.pre ?? newStageDocument()),
      async: resetStage(existing.async ?? newStageDocument()),
      post: resetStage(existing.post ?? newStageDocument()),
    };
    const state = summarizeActivity(activity);
    activity.status = state === existing.status?.state && existing.status.message !== undefined
      ? { state, message: existing.status.message }
      : { state };
    activities[name] = activity;
  }
  // Keep waiting only for parallel stages still settling optional plugins from the last run.
  const awaiting = [...doc.awaiting ?? []].filter((name) => ownField(activities, name)?.async.status.state === State.MANDATORY_COMPLETED);
  const { awaiting: _awaiting, expiresAt: _expiresAt, ...rest } = doc;
  const expiresAt = props.expiresAt ?? doc.expiresAt;
  return {
    ...rest,
    metadata: props.metadata ? { ...props.metadata, workflow: doc.workflow } : doc.metadata,
    status: { state: summarizeRun(activities) },
    activities,
    updatedAt: props.now,
    ...(awaiting.length > 0 ? { awaiting: new Set(awaiting) } : {}),
    ...(expiresAt !== undefined ? { expiresAt } : {}),
  };
}

/** Deep equality of JSON-like values (and sets); object key order does not matter, array order does. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => deepEqual(item, b[i]));
  }
  if (a instanceof Set || b instanceof Set) {
    return a instanceof Set && b instanceof Set && a.size === b.size && [...a].every((item) => b.has(item));
  }
  if (isPlainObject(a) && isPlainObject(b)) {
    const keysA = Object.keys(a).filter((key) => a[key] !== undefined);
    const keysB = Object.keys(b).filter((key) => b[key] !== undefined);
    return keysA.length === keysB.length && keysA.every((key) => deepEqual(a[key], b[key]));
  }
  return false;
}

/** Whether a re-run's metadata is the stored metadata: key order does not matter, array order does. */
export function metadataEqual(stored: Record<string, unknown>, given: Record<string, unknown>): boolean {
  return deepEqual(stored, given);
}

/** Top-level metadata keys whose values differ (for a readable `MetadataMismatch`). */
export function metadataDifferences(stored: Record<string, unknown>, given: Record<string, unknown>): string[] {
  const keys = new Set([...Object.keys(stored), ...Object.keys(given)]);
  return [...keys].filter((key) => !deepEqual(stored[key], given[key])).sort();
}

// ---------------------------------------------------------------------------------------------
// Messages and failures

/** Any error or value as a message of at most 180 characters (an ellipsis marks the cut). */
export function trimMessage(message: unknown, maxLength = MESSAGE_MAX_LENGTH): string {
  const text = (typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message) ?? String(message))
    .replace(/\s+/g, ' ').trim();
  return text.length <= maxLength ? text : `${text.slice(0, maxLength - 1)}…`;
}

export interface StageFailure {
  readonly plugin: string;
  readonly message: string;
}

/** The first failing mandatory plugin (by name, so the answer is stable) and its message. */
export function stageFailure(stage: StageDocument): StageFailure | undefined {
  const failed = Object.keys(stage.mandatory ?? {}).sort().find((name) => stage.mandatory[name].state === State.ERROR);
  if (failed === undefined) return undefined;
  return { plugin: failed, message: stage.mandatory[failed].message ?? 'failed' };
}

/** `<plugin>: <message>`, trimmed: the text stored on a failed stage and sent with SendTaskFailure. */
export function describeFailure(failure: StageFailure): string {
  return trimMessage(`${failure.plugin}: ${failure.message}`);
}

/** Names of the plugins of one kind still `Not Started` or `In Progress`, sorted. */
export function pendingPlugins(stage: StageDocument, kind: PluginKind = 'mandatory'): string[] {
  return Object.keys(stage[kind] ?? {}).filter((name) => isPluginPending(stage[kind][name].state)).sort();
}

/** A plugin as the registry knows it for one stage: its name and whether the stage waits for it. */
export interface RegisteredRef {
  readonly name: string;
  readonly kind: PluginKind;
}

function isRegistered(registered: readonly RegisteredRef[], kind: PluginKind, name: string): boolean {
  return registered.some((ref) => ref.kind === kind && ref.name === name);
}

/**
 * The stage as the registry sees it now: entries of plugins no longer registered (or registered
 * with the other kind) are left out, so a removed plugin never holds a stage up.
 */
export function registeredView(stage: StageDocument, registered: readonly RegisteredRef[]): StageDocument {
  const keep = (kind: PluginKind) => Object.fromEntries(Object.entries(stage[kind] ?? {}).filter(([name]) => isRegistered(registered, kind, name)));
  return { ...stage, mandatory: keep('mandatory'), optional: keep('optional') };
}

/** Pending entries (`Not Started`/`In Progress`) of plugins no longer registered with that kind. */
export function unregisteredPendingEntries(stage: StageDocument, registered: readonly RegisteredRef[]): RegisteredRef[] {
  return PLUGIN_KINDS.flatMap((kind) => Object.entries(stage[kind] ?? {})
    .filter(([name, entry]) => isPluginPending(entry.state) && !isRegistered(registered, kind, name))
    .map(([name]) => ({ name, kind })));
}

// ---------------------------------------------------------------------------------------------
// The plugin message

/** SNS refuses larger messages (body and attributes together). */
export const SNS_MESSAGE_MAX_BYTES = 262_144;
/** SNS carries at most 10 message attributes. */
export const MAX_MESSAGE_ATTRIBUTES = 10;

export interface PluginMessageContext {
  readonly activity: string;
  readonly stage: StageKey;
  readonly now: string;
}

export interface PluginMessage extends Record<string, unknown> {
  uid: string;
  workflow: string;
  activity: string;
  stage: StageKey;
  status: { state: State };
  activities: Record<string, ActivityDocument | { status: ActivityStatus }>;
  now: string;
  /** Present when the message was shortened to fit SNS: read the status item for the rest. */
  truncated?: true;
  /** Where the full document is, in every shortened message (DESIGN.md "Plugin message"). */
  statusRef?: StatusRef;
}

/**
 * The status item a shortened plugin message stands for: GetItem on `tableName` with `key` (what
 * `grantPluginStatus` allows) returns the whole document the message was built from.
 */
export interface StatusRef {
  readonly tableName: string;
  readonly key: { readonly uid: string; readonly workflow: string };
}

function withoutToken(activity: ActivityDocument): ActivityDocument {
  const { token: _token, ...asyncStatus } = activity.async?.status ?? { state: State.NOT_STARTED };
  return { ...activity, async: { ...activity.async, status: asyncStatus } };
}

/**
 * `{ uid, workflow, activity, stage, status, activities, now, ...metadata }`. Task tokens are left
 * out (they are credentials for the waiting execution). Our fields win over metadata fields of the same name.
 */
export function buildPluginMessage(doc: StatusDocument, context: PluginMessageContext): PluginMessage {
  const activities = Object.fromEntries(Object.entries(doc.activities).map(([name, activity]) => [name, withoutToken(activity)]));
  return {
    ...doc.metadata,
    uid: doc.uid,
    workflow: doc.workflow,
    activity: context.activity,
    stage: context.stage,
    status: { state: doc.status.state },
    activities,
    now: context.now,
  };
}

function byteLength(text: string): number {
  return new TextEncoder().encode(text).length;
}

function withoutPluginMaps(activity: ActivityDocument | { status: ActivityStatus }): { status: ActivityStatus } {
  const slim: Record<string, unknown> = { status: activity.status };
  for (const stage of STAGES) {
    const stageDoc = (activity as Partial<ActivityDocument>)[stage];
    if (stageDoc) slim[stage] = { status: stageDoc.status };
  }
  return slim as { status: ActivityStatus };
}

/**
 * The message as JSON, at most `maxBytes` long. Never fails: when too large it drops the plugin maps
 * of the other activities, then all plugin maps, then everything but the routing fields, and marks
 * the message `truncated` with a `statusRef` (when `tableName` is given) so a plugin reads the full
 * document from the status item.
 */
export function serializePluginMessage(message: PluginMessage, maxBytes = SNS_MESSAGE_MAX_BYTES, tableName?: string): string {
  const full = JSON.stringify(message);
  if (byteLength(full) <= maxBytes) return full;
  const shortened = { truncated: true as const, ...(tableName ? { statusRef: statusRefOf(message, tableName) } : {}) };
  const slimOthers = Object.fromEntries(Object.entries(message.activities).map(([name, activity]) => [
    name, name === message.activity ? activity : withoutPluginMaps(activity),
  ]));
  const attempts: PluginMessage[] = [
    { ...message, activities: slimOthers, ...shortened },
    { ...message, activities: Object.fromEntries(Object.entries(message.activities).map(([n, a]) => [n, withoutPluginMaps(a)])), ...shortened },
  ];
  for (const attempt of attempts) {
    const text = JSON.stringify(attempt);
    if (byteLength(text) <= maxBytes) return text;
  }
  const { uid, workflow, activity, stage, status, now } = message;
  return JSON.stringify({ uid, workflow, activity, stage, status, now, activities: {}, ...shortened });
}

/** The reference a shortened message carries: the status item's table and key. */
export function statusRefOf(message: Pick<PluginMessage, 'uid' | 'workflow'>, tableName: string): StatusRef {
  return { tableName, key: { uid: message.uid, workflow: message.workflow } };
}

export interface MessageAttribute {
  DataType: 'String' | 'Number';
  StringValue: string;
}

/** SNS attribute names: letters, digits, `-_.`; no leading/trailing or double dot; no AWS/Amazon prefix. */
function isValidAttributeName(name: string): boolean {
  return /^[A-Za-z0-9_\-.]{1,256}$/.test(name) && !/^\.|\.$|\.\./.test(name) && !/^(aws\.|amazon\.)/i.test(name);
}

/**
 * The first 10 scalar metadata fields as SNS message attributes, so subscribers can use filter
 * policies (strings -> `String`, finite numbers -> `Number`, booleans -> `String` "true"/"false").
 */
export function messageAttributesFromMetadata(metadata: Record<string, unknown>): Record<string, MessageAttribute> {
  const attributes: Record<string, MessageAttribute> = {};
  for (const [name, value] of Object.entries(metadata)) {
    if (Object.keys(attributes).length >= MAX_MESSAGE_ATTRIBUTES) break;
    if (!isValidAttributeName(name)) continue;
    if (typeof value === 'string' && value.length > 0) attributes[name] = { DataType: 'String', StringValue: value };
    else if (typeof value === 'number' && Number.isFinite(value)) attributes[name] = { DataType: 'Number', StringValue: String(value) };
    else if (typeof value === 'boolean') attributes[name] = { DataType: 'String', StringValue: String(value) };
  }
  return attributes;
}

export interface SnsEnvelopeProps {
  readonly body: string;
  readonly topicArn: string;
  readonly subscriptionArn: string;
  readonly attributes: Record<string, MessageAttribute>;
  readonly messageId: string;
  readonly now: string;
}

/** The SNS event a subscribed Lambda receives, so one plugin handler serves every stage. */
export function snsEnvelope(props: SnsEnvelopeProps): SNSEvent {
  const messageAttributes: SNSMessageAttributes = {};
  for (const [name, attribute] of Object.entries(props.attributes)) {
    messageAttributes[name] = { Type: attribute.DataType, Value: attribute.StringValue };
  }
  return {
    Records: [{
      EventSource: 'aws:sns',
      EventVersion: '1.0',
      EventSubscriptionArn: props.subscriptionArn,
      Sns: {
        Type: 'Notification',
        MessageId: props.messageId,
        TopicArn: props.topicArn,
        Subject: '',
        Message: props.body,
        Timestamp: props.now,
        SignatureVersion: '1',
        Signature: '',
        SigningCertUrl: '',
        UnsubscribeUrl: '',
        MessageAttributes: messageAttributes,
      },
    }],
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Set);
}
