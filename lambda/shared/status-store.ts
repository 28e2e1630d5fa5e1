/**
 * DynamoDB request builders for the status table. Pure: they return request inputs
 * (lib-dynamodb shapes) and never send them, so the handlers, the plugin SDK and the local engine
 * share the same conditions. Every attribute name goes through ExpressionAttributeNames because
 * activity and plugin names are arbitrary (and `status`, `state`, `token` are reserved words).
 */
import type { PutInput, UpdateInput } from './documents';
import { isRunFinished, OPEN_SHARD_ATTRIBUTE, OPENED_AT_ATTRIBUTE, STUCK_REPORTED_AT_ATTRIBUTE, unfinishedRunStates } from './open-runs';
import {
  allowedPredecessors, PluginKind, PluginState, StageKey, State, StatusDocument, trimMessage,
} from './status';

export interface StatusKey {
  readonly uid: string;
  readonly workflow: string;
}

/** Which item of which table a request is about. */
export interface StatusTarget {
  readonly tableName: string;
  readonly key: StatusKey;
}

const DONE_STATES: readonly State[] = [State.COMPLETE, State.MANDATORY_COMPLETED, State.OPTIONAL_TASK_ERROR, State.DO_NOT_RUN];

/** Collects one update expression, giving every attribute name and value a placeholder. */
export class UpdateExpressionBuilder {
  private readonly namePlaceholders = new Map<string, string>();
  private readonly values: Record<string, unknown> = {};
  private valueCount = 0;
  private readonly setClauses: string[] = [];
  private readonly removeClauses: string[] = [];
  private readonly addClauses: string[] = [];
  private readonly deleteClauses: string[] = [];
  private readonly conditions: string[] = [];

  /** `#n3` for an attribute name (one placeholder per distinct name). */
  public name(attribute: string): string {
    let placeholder = this.namePlaceholders.get(attribute);
    if (!placeholder) {
      placeholder = `#n${this.namePlaceholders.size}`;
      this.namePlaceholders.set(attribute, placeholder);
    }
    return placeholder;
  }

  /** `#n0.#n1.#n2` for a document path. */
  public path(segments: readonly string[]): string {
    return segments.map((segment) => this.name(segment)).join('.');
  }

  /** `:v4` for a value. */
  public value(value: unknown): string {
    const placeholder = `:v${this.valueCount++}`;
    this.values[placeholder] = value;
    return placeholder;
  }

  public set(segments: readonly string[], value: unknown): this {
    this.setClauses.push(`${this.path(segments)} = ${this.value(value)}`);
    return this;
  }

  public setIfNotExists(segments: readonly string[], value: unknown): this {
    const path = this.path(segments);
    this.setClauses.push(`${path} = if_not_exists(${path}, ${this.value(value)})`);
    return this;
  }

  /** Sets `message` when given, removes a stale one otherwise. */
  public setOrRemove(segments: readonly string[], value: unknown): this {
    return value === undefined ? this.remove(segments) : this.set(segments, value);
  }

  public remove(segments: readonly string[]): this {
    this.removeClauses.push(this.path(segments));
    return this;
  }

  public add(segments: readonly string[], value: unknown): this {
    this.addClauses.push(`${this.path(segments)} ${this.value(value)}`);
    return this;
  }

  public delete(segments: readonly string[], value: unknown): this {
    this.deleteClauses.push(`${this.path(segments)} ${this.value(value)}`);
    return this;
  }

  /** Adds a condition; all conditions must hold (AND). */
  public condition(expression: string): this {
    this.conditions.push(`(${expression})`);
    return this;
  }

  /** `path IN (:a, :b)` (DynamoDB has no empty IN list: callers pass at least one state). */
  public isOneOf(segments: readonly string[], states: readonly string[]): string {
    return `${this.path(segments)} IN (${states.map((state) => this.value(state)).join(', ')})`;
  }

  public build(target: StatusTarget, options: Pick<UpdateInput, 'ReturnValues' | 'ReturnValuesOnConditionCheckFailure'> = {}): UpdateInput {
    const clauses = [
      this.setClauses.length ? `SET ${this.setClauses.join(', ')}` : '',
      this.removeClauses.length ? `REMOVE ${this.removeClauses.join(', ')}` : '',
      this.addClauses.length ? `ADD ${this.addClauses.join(', ')}` : '',
      this.deleteClauses.length ? `DELETE ${this.deleteClauses.join(', ')}` : '',
    ].filter(Boolean);
    return {
      TableName: target.tableName,
      Key: { uid: target.key.uid, workflow: target.key.workflow },
      UpdateExpression: clauses.join(' '),
      ...(this.conditions.length ? { ConditionExpression: this.conditions.join(' AND ') } : {}),
      ExpressionAttributeNames: Object.fromEntries([...this.namePlaceholders].map(([name, placeholder]) => [placeholder, name])),
      ...(Object.keys(this.values).length ? { ExpressionAttributeValues: { ...this.values } } : {}),
      ...options,
    };
  }
}

// Document paths -------------------------------------------------------------------------------

export const paths = {
  runState: (): string[] => ['status', 'state'],
  activity: (activity: string): string[] => ['activities', activity],
  activityStatus: (activity: string): string[] => ['activities', activity, 'status'],
  stage: (activity: string, stage: StageKey): string[] => ['activities', activity, stage],
  stageStatus: (activity: string, stage: StageKey): string[] => ['activities', activity, stage, 'status'],
  entry: (activity: string, stage: StageKey, kind: PluginKind, plugin: string): string[] => ['activities', activity, stage, kind, plugin],
};

export interface PluginRef {
  readonly name: string;
  readonly kind: PluginKind;
}

// Plugin state ---------------------------------------------------------------------------------

export interface PluginStateChange {
  readonly activity: string;
  readonly stage: StageKey;
  readonly kind: PluginKind;
  readonly plugin: string;
  readonly state: PluginState;
  /** Stored trimmed to 180 characters; omitted -> a previous message is removed. */
  readonly message?: string;
  /**
   * Instead of `message`: stored (trimmed) only when the entry holds no message, so a message the
   * plugin wrote itself (e.g. its last error) is kept.
   */
  readonly messageUnlessSet?: string;
  readonly now: string;
}

/**
 * A plugin reports its state (the plugin SDK's and the queue bridge's write). Conditioned on
 * `allowedPredecessors(state)`: a late `In Progress` never overwrites `Complete`/`Error`, and an
 * entry the stage handler has not created yet is not invented. ConditionalCheckFailed = not applied.
 */
export function pluginStateUpdate(target: StatusTarget, change: PluginStateChange): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  applyEntryChange(builder, change.activity, change.stage, { ...change, keepMessage: change.messageUnlessSet !== undefined });
  if (change.message === undefined && change.messageUnlessSet !== undefined) {
    builder.setIfNotExists([...paths.entry(change.activity, change.stage, change.kind, change.plugin), 'message'], trimMessage(change.messageUnlessSet));
  }
  builder.set(['updatedAt'], change.now);
  builder.condition('attribute_exists(uid)');
  return builder.build(target);
}

// Stage start ----------------------------------------------------------------------------------

export interface StageStart {
  readonly activity: string;
  readonly stage: StageKey;
  /** Registered plugins: each gets a `Not Started` entry unless it has one. */
  readonly plugins: readonly PluginRef[];
  /** The stage's state once started (`In Progress`, or final when nothing needs to run). */
  readonly stageState: State;
  readonly now: string;
  /** Task token of a parallel stage that waits for mandatory plugins. */
  readonly token?: string;
  /** Adds the activity to `awaiting` (status-summary settles the stage). */
  readonly awaiting?: boolean;
  /** Plugins that will not get the message (their filter policy rejects it): `Do Not Run`. */
  readonly doNotRun?: readonly PluginRef[];
  readonly doNotRunMessage?: string;
}

/**
 * Plugin entries one stage-start write creates at most: each costs about 65 characters of
 * UpdateExpression, and DynamoDB allows 4 KB per expression (about 55 entries with the stage fields).
 */
export const STAGE_START_ENTRIES_PER_WRITE = 40;

/**
 * The writes that start a stage. Normally one: run, activity and stage state, stage `startTime`
 * (first start only), plugin entries (kept if present), token and `awaiting`. Conditioned on the
 * item and the activity existing and neither the activity nor the stage being done, so a re-run
 * skips finished stages. Returns the new document (ALL_NEW), or the old one when the condition fails
 * (ALL_OLD).
 *
 * A stage with more than `STAGE_START_ENTRIES_PER_WRITE` plugins to create entries for gets its
 * extra entries in writes BEFORE that one (same conditions, entries only): the last write, which
 * stores the token and adds `awaiting`, is the one that starts the stage, so status-summary never
 * sees a waiting stage with entries missing, and the message goes out only after every entry exists.
 */
export function stageStartUpdates(target: StatusTarget, start: StageStart): UpdateInput[] {
  const skipped = new Set((start.doNotRun ?? []).map((plugin) => `${plugin.kind}/${plugin.name}`));
  const entries = start.plugins.filter((plugin) => !skipped.has(`${plugin.kind}/${plugin.name}`));
  const first = entries.slice(0, STAGE_START_ENTRIES_PER_WRITE);
  const extra: UpdateInput[] = [];
  for (let i = STAGE_START_ENTRIES_PER_WRITE; i < entries.length; i += STAGE_START_ENTRIES_PER_WRITE) {
    const builder = new UpdateExpressionBuilder();
    for (const plugin of entries.slice(i, i + STAGE_START_ENTRIES_PER_WRITE)) {
      builder.setIfNotExists(paths.entry(start.activity, start.stage, plugin.kind, plugin.name), { state: State.NOT_STARTED, updatedAt: start.now });
    }
    extra.push(stageStartConditions(builder, start).build(target));
  }
  return [...extra, stageStartUpdate(target, { ...start, plugins: first })];
}

/**
 * The single write that starts a stage (see `stageStartUpdates`, which every caller should use:
 * this one creates an entry for every plugin in `start.plugins`).
 */
export function stageStartUpdate(target: StatusTarget, start: StageStart): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  const stageStatus = paths.stageStatus(start.activity, start.stage);
  builder
    .set(paths.runState(), State.IN_PROGRESS)
    .set([...paths.activityStatus(start.activity), 'state'], State.IN_PROGRESS)
    .set([...stageStatus, 'state'], start.stageState)
    .setIfNotExists([...stageStatus, 'startTime'], start.now)
    .set(['updatedAt'], start.now);
  if (start.token !== undefined) builder.set([...stageStatus, 'token'], start.token);
  const skipped = new Set((start.doNotRun ?? []).map((plugin) => `${plugin.kind}/${plugin.name}`));
  for (const plugin of start.plugins) {
    if (skipped.has(`${plugin.kind}/${plugin.name}`)) continue;
    builder.setIfNotExists(paths.entry(start.activity, start.stage, plugin.kind, plugin.name), { state: State.NOT_STARTED, updatedAt: start.now });
  }
  for (const plugin of start.doNotRun ?? []) {
    const entry = paths.entry(start.activity, start.stage, plugin.kind, plugin.name);
    const message = start.doNotRunMessage ? { message: trimMessage(start.doNotRunMessage) } : {};
    builder.set(entry, { state: State.DO_NOT_RUN, updatedAt: start.now, ...message });
    builder.condition(`attribute_not_exists(${builder.path(entry)}) OR ${builder.isOneOf([...entry, 'state'], allowedPredecessors(State.DO_NOT_RUN))}`);
  }
  if (start.awaiting) builder.add(['awaiting'], new Set([start.activity]));
  return stageStartConditions(builder, start).build(target, { ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
}

/** The item and the activity exist; neither the activity nor the stage is done. */
function stageStartConditions(builder: UpdateExpressionBuilder, start: StageStart): UpdateExpressionBuilder {
  return builder
    .condition('attribute_exists(uid)')
    .condition(`attribute_exists(${builder.path(paths.stage(start.activity, start.stage))})`)
    .condition(`NOT ${builder.isOneOf([...paths.activityStatus(start.activity), 'state'], DONE_STATES)}`)
    .condition(`NOT ${builder.isOneOf([...paths.stageStatus(start.activity, start.stage), 'state'], DONE_STATES)}`);
}

// Status changes -------------------------------------------------------------------------------

export interface EntryChange {
  readonly kind: PluginKind;
  readonly plugin: string;
  /** New state; omitted -> only `message`/`attempts` change and the entry must still be pending. */
  readonly state?: PluginState;
  readonly message?: string;
  readonly attempts?: number;
  /** Also accept an entry already in `state` (the plugin reported it itself). */
  readonly allowSameState?: boolean;
  /** Leave the entry's message alone when no `message` is given (the caller sets it another way). */
  readonly keepMessage?: boolean;
}

export interface StatusChange {
  readonly activity: string;
  readonly stage?: StageKey;
  readonly now: string;
  readonly entries?: readonly EntryChange[];
  /** Entries of plugins no longer registered, dropped so they cannot hold the stage. */
  readonly removeEntries?: readonly PluginRef[];
  /** Omitted message -> a previous one is removed. */
  readonly stageStatus?: { readonly state: State; readonly message?: string };
  readonly activityStatus?: { readonly state: State; readonly message?: string };
  readonly runState?: State;
  readonly removeToken?: boolean;
  /**
   * Puts back a token whose answer could not be sent (and the activity into `awaiting`), so the
   * stream wakes status-summary again to answer it.
   */
  readonly restoreToken?: string;
  /** Removes the activity from `awaiting`. */
  readonly stopAwaiting?: boolean;
  /** Preconditions besides each entry's transition rule. */
  readonly expect?: {
    readonly stageState?: State;
    /** The stage still holds exactly this token. */
    readonly token?: string;
    /** The stage holds no token and the activity is still in `awaiting`. */
    readonly noTokenAndAwaiting?: boolean;
  };
}

function applyEntryChange(builder: UpdateExpressionBuilder, activity: string, stage: StageKey, change: EntryChange & { now?: string }): void {
  const entry = paths.entry(activity, stage, change.kind, change.plugin);
  if (change.state !== undefined) {
    builder.set([...entry, 'state'], change.state);
    if (change.message !== undefined || !change.keepMessage) {
      builder.setOrRemove([...entry, 'message'], change.message === undefined ? undefined : trimMessage(change.message));
    }
    const accepted = change.allowSameState
      ? [...allowedPredecessors(change.state), change.state]
      : allowedPredecessors(change.state);
    builder.condition(builder.isOneOf([...entry, 'state'], accepted));
  } else {
    if (change.message !== undefined) builder.set([...entry, 'message'], trimMessage(change.message));
    builder.condition(builder.isOneOf([...entry, 'state'], [State.NOT_STARTED, State.IN_PROGRESS]));
  }
  if (change.attempts !== undefined) builder.set([...entry, 'attempts'], change.attempts);
  if (change.now !== undefined) builder.set([...entry, 'updatedAt'], change.now);
}

/**
 * A stage that failed for good: the stage, its activity and the run become `Error` in one write,
 * with the failure as the stage's message and `<stage>: <failure>` as the activity's. Every handler
 * that fails a stage (sequential-stage, status-summary, stage-failure) uses this, so the three
 * records read the same. `extra` adds what only that handler knows (entries, token, conditions).
 */
export function stageFailedChange(
  failed: { readonly activity: string; readonly stage: StageKey; readonly now: string; readonly message: string },
  extra: Partial<Omit<StatusChange, 'activity' | 'stage' | 'now' | 'stageStatus' | 'activityStatus' | 'runState'>> = {},
): StatusChange {
  return {
    ...extra,
    activity: failed.activity,
    stage: failed.stage,
    now: failed.now,
    stageStatus: { state: State.ERROR, message: failed.message },
    activityStatus: { state: State.ERROR, message: `${failed.stage}: ${failed.message}` },
    runState: State.ERROR,
  };
}

/**
 * Any combination of plugin-entry, stage, activity and run changes in one conditional write
 * (ALL_NEW on success, ALL_OLD when a condition fails).
 */
export function statusChangeUpdate(target: StatusTarget, change: StatusChange): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  const needsStage = (change.entries?.length ?? 0) > 0 || (change.removeEntries?.length ?? 0) > 0
    || change.stageStatus !== undefined || change.removeToken === true || change.restoreToken !== undefined
    || change.expect !== undefined;
  if (needsStage && change.stage === undefined) throw new Error('statusChangeUpdate: stage changes need a stage');
  const stage = change.stage as StageKey;

  for (const entry of change.entries ?? []) applyEntryChange(builder, change.activity, stage, { ...entry, now: change.now });
  for (const plugin of change.removeEntries ?? []) builder.remove(paths.entry(change.activity, stage, plugin.kind, plugin.name));
  if (change.stageStatus) {
    const stageStatus = paths.stageStatus(change.activity, stage);
    builder.set([...stageStatus, 'state'], change.stageStatus.state);
    builder.setOrRemove([...stageStatus, 'message'], change.stageStatus.message === undefined ? undefined : trimMessage(change.stageStatus.message));
  }
  if (change.removeToken) builder.remove([...paths.stageStatus(change.activity, stage), 'token']);
  if (change.restoreToken !== undefined) {
    const token = [...paths.stageStatus(change.activity, stage), 'token'];
    builder.set(token, change.restoreToken);
    builder.add(['awaiting'], new Set([change.activity]));
    builder.condition(`attribute_not_exists(${builder.path(token)})`);
  }
  if (change.activityStatus) {
    const activityStatus = paths.activityStatus(change.activity);
    builder.set([...activityStatus, 'state'], change.activityStatus.state);
    builder.setOrRemove([...activityStatus, 'message'],
      change.activityStatus.message === undefined ? undefined : trimMessage(change.activityStatus.message));
  }
  if (change.runState) builder.set(paths.runState(), change.runState);
  // A finished run leaves the open-run index in the write that finishes it (open-runs.ts).
  if (change.runState && isRunFinished(change.runState)) builder.remove([OPEN_SHARD_ATTRIBUTE]);
  if (change.stopAwaiting) builder.delete(['awaiting'], new Set([change.activity]));
  builder.set(['updatedAt'], change.now);

  builder.condition('attribute_exists(uid)');
  if (change.expect?.stageState !== undefined) {
    builder.condition(`${builder.path([...paths.stageStatus(change.activity, stage), 'state'])} = ${builder.value(change.expect.stageState)}`);
  }
  if (change.expect?.token !== undefined) {
    builder.condition(`${builder.path([...paths.stageStatus(change.activity, stage), 'token'])} = ${builder.value(change.expect.token)}`);
  }
  if (change.expect?.noTokenAndAwaiting) {
    builder.condition(`attribute_not_exists(${builder.path([...paths.stageStatus(change.activity, stage), 'token'])})`);
    builder.condition(`contains(${builder.path(['awaiting'])}, ${builder.value(change.activity)})`);
  }
  return builder.build(target, { ReturnValues: 'ALL_NEW', ReturnValuesOnConditionCheckFailure: 'ALL_OLD' });
}

// Whole documents (start-run) ------------------------------------------------------------------

/** A new run: only when no item exists (two racing starts: one wins). ALL_OLD on failure. */
export function newRunPut(tableName: string, doc: StatusDocument): PutInput {
  return {
    TableName: tableName,
    Item: doc,
    ConditionExpression: 'attribute_not_exists(uid)',
    ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
  };
}

/**
 * A re-run's reset document, only if the item is still what start-run read (same run state and
 * `updatedAt`): of two racing re-runs one wins, and no concurrent write is lost.
 */
export function rerunPut(tableName: string, doc: StatusDocument, read: Pick<StatusDocument, 'status' | 'updatedAt'>): PutInput {
  const sameUpdatedAt = read.updatedAt === undefined ? 'attribute_not_exists(updatedAt)' : 'updatedAt = :updatedAt';
  return {
    TableName: tableName,
    Item: doc,
    ConditionExpression: `#status.#state = :state AND ${sameUpdatedAt}`,
    ExpressionAttributeNames: { '#status': 'status', '#state': 'state' },
    ExpressionAttributeValues: { ':state': read.status.state, ...(read.updatedAt === undefined ? {} : { ':updatedAt': read.updatedAt }) },
  };
}

// Stuck runs (stuck-runs) ----------------------------------------------------------------------

export interface StuckReport {
  /** The run's `openShard` and `openedAt` as the index returned them. */
  readonly openShard: string;
  readonly openedAt: string;
  /** Where the reported run goes: `stuck#<n>` (out of the open shards the sweep queries). */
  readonly stuckShard: string;
  readonly now: string;
}

/**
 * Marks a run reported as stuck, once: only while it is still the same unfinished run in the same
 * open shard (not finished, not re-run since the index was read). Moves it to its `stuck#<n>` shard, so
 * the next sweep does not find it again. Touches neither `updatedAt` nor the document, so the
 * status-summary stream consumer sees no change of any stage. ALL_NEW: the event tells the run's state.
 */
export function stuckReportUpdate(target: StatusTarget, report: StuckReport): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  builder
    .set([OPEN_SHARD_ATTRIBUTE], report.stuckShard)
    .set([STUCK_REPORTED_AT_ATTRIBUTE], report.now)
    .condition(`${builder.name(OPEN_SHARD_ATTRIBUTE)} = ${builder.value(report.openShard)}`)
    .condition(`${builder.name(OPENED_AT_ATTRIBUTE)} = ${builder.value(report.openedAt)}`)
    .condition(builder.isOneOf(paths.runState(), unfinishedRunStates()));
  return builder.build(target, { ReturnValues: 'ALL_NEW' });
}

/**
 * Undoes `stuckReportUpdate` when its event could not be sent, so the next sweep reports the run again
 * (only if nothing else changed the run's index entry meanwhile).
 */
export function stuckReportRevert(target: StatusTarget, report: StuckReport): UpdateInput {
  const builder = new UpdateExpressionBuilder();
  builder
    .set([OPEN_SHARD_ATTRIBUTE], report.openShard)
    .remove([STUCK_REPORTED_AT_ATTRIBUTE])
    .condition(`${builder.name(OPEN_SHARD_ATTRIBUTE)} = ${builder.value(report.stuckShard)}`)
    .condition(`${builder.name(OPENED_AT_ATTRIBUTE)} = ${builder.value(report.openedAt)}`)
    .condition(`${builder.name(STUCK_REPORTED_AT_ATTRIBUTE)} = ${builder.value(report.now)}`);
  return builder.build(target);
}
