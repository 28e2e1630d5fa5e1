/**
 * Event validation for every handler: each parser returns a typed event or throws the handler's
 * named error listing every problem, before anything is read or written.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import {
  InvalidFailureEvent, InvalidRunInput, InvalidStageEvent, InvalidStreamEvent, RunContext,
} from './errors';
import { isObject } from './json';
import { SequentialStageKey } from './status';

/**
 * uid, workflow, activity, topicArn: DynamoDB allows 2,048-byte partition keys and 1,024-byte sort keys
 * (`workflow`); every key field gets the smaller bound, in UTF-8 bytes as DynamoDB counts.
 */
export const MAX_KEY_BYTES = 1024;
/** Activity names in start-run (synth time allows 64 characters). */
const MAX_ACTIVITY_NAME_LENGTH = 255;
/**
 * Step Functions task tokens: SendTaskSuccess/Failure/Heartbeat take at most 2,048 characters
 * (API reference, taskToken "Maximum length of 2048"). A longer one is not a token.
 */
export const MAX_TASK_TOKEN_LENGTH = 2048;
/**
 * Caller metadata as UTF-8 JSON. DynamoDB counts a value at most about 1.5 times its JSON size (worst:
 * a list of one-digit numbers, 3 bytes per element against JSON's 2), so 64 KB of metadata stays under
 * 100 KB of the 400 KB item and leaves the rest to activities and plugin entries.
 */
export const MAX_METADATA_BYTES = 64 * 1024;
/**
 * DynamoDB stores at most 32 nested levels, counting the item as the first: `metadata` is level 2, so
 * 30 levels of objects and lists fit inside it (measured on DynamoDB Local, which refuses level 33).
 */
export const MAX_METADATA_DEPTH = 32;
/**
 * The smallest non-zero magnitude DynamoDB stores. The largest metadata number is
 * Number.MAX_SAFE_INTEGER: util-dynamodb (documents.ts) refuses to marshall a larger JavaScript number.
 */
const MIN_NUMBER_MAGNITUDE = 1e-130;

/**
 * Names of Object.prototype members (and `prototype`). As keys of plain objects they reach the
 * prototype instead of data (`__proto__` even replaces it), so they cannot name an activity or a
 * plugin, which the handlers look up by name. Refused at synth time too (src/private/validation.ts).
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([...Object.getOwnPropertyNames(Object.prototype), 'prototype']);
const RESERVED_LIST = [...RESERVED_NAMES].sort().join(', ');

/** A UTF-16 surrogate not in a pair: not valid Unicode; DynamoDB would store U+FFFD instead. */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Well-formed Unicode (`String.prototype.isWellFormed`, without the ES2024 typings). */
export function isWellFormed(text: string): boolean {
  return !LONE_SURROGATE.test(text);
}

function utf8Bytes(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/**
 * Why `value` cannot be a key (uid, workflow, activity, a subscription ARN), or undefined when it can:
 * a non-blank string of well-formed Unicode, at most `maxBytes` in UTF-8.
 */
export function keyProblem(value: unknown, maxBytes = MAX_KEY_BYTES): string | undefined {
  if (typeof value !== 'string' || value.trim() === '') return 'must be a non-empty string';
  if (!isWellFormed(value)) return 'must be well-formed Unicode (it holds a lone surrogate, which DynamoDB would store as U+FFFD)';
  const bytes = utf8Bytes(value);
  if (bytes > maxBytes) return `must be at most ${maxBytes} bytes in UTF-8 (got ${bytes})`;
  return undefined;
}

/** A sanity bound for Step Functions' retries of a sequential stage. */
const MAX_ATTEMPTS_LIMIT = 20;
const MAX_RETENTION_DAYS = 3650;

export interface StartRunEvent {
  readonly input: {
    readonly uid: string;
    readonly metadata?: Record<string, unknown>;
    readonly metadataOverride: boolean;
  };
  readonly workflow: string;
  readonly activities: readonly string[];
  /** Sets the item's TTL (`expiresAt`) this many days ahead. */
  readonly retentionDays?: number;
}

export interface SequentialStageEvent {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: SequentialStageKey;
  readonly topicArn: string;
  readonly maxAttempts: number;
}

export interface ParallelStageEvent {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  readonly stage: 'async';
  readonly topicArn: string;
  readonly token: string;
}

export interface StageFailureEvent {
  readonly uid: string;
  readonly workflow: string;
  readonly activity: string;
  /** The Step Functions error caught by `Catch` (`$.error`). */
  readonly error: { readonly Error: string; readonly Cause?: string };
}

export interface StatusStreamEvent {
  readonly Records: readonly DynamoDBRecord[];
}

type Fields = Record<string, unknown>;


/** Collects problems so one error message names all of them. */
class Problems {
  public readonly list: string[] = [];

  public text(source: Fields, field: string, label = field): string {
    const value = source[field];
    const problem = keyProblem(value);
    if (problem !== undefined) this.list.push(`${label} ${problem}`);
    return typeof value === 'string' && value.trim() !== '' ? value : '';
  }

  public check(ok: boolean, problem: string): void {
    if (!ok) this.list.push(problem);
  }

  public throwIfAny(makeError: (message: string) => Error, what: string): void {
    if (this.list.length > 0) throw makeError(`Invalid ${what}: ${this.list.join('; ')}`);
  }
}

function stringOrUndefined(source: Fields, field: string): string | undefined {
  return typeof source[field] === 'string' ? source[field] : undefined;
}

function contextOf(source: Fields): RunContext {
  return { uid: stringOrUndefined(source, 'uid'), workflow: stringOrUndefined(source, 'workflow'), activity: stringOrUndefined(source, 'activity') };
}

export function parseStartRunEvent(event: unknown): StartRunEvent {
  if (!isObject(event)) throw new InvalidRunInput('Invalid start-run event: expected an object { input, workflow, activities }');
  const problems = new Problems();
  const workflow = problems.text(event, 'workflow');
  const input = isObject(event.input) ? event.input : undefined;
  problems.check(input !== undefined, 'input must be an object { uid, metadata?, metadataOverride? }');
  const uid = input ? problems.text(input, 'uid', 'input.uid') : '';
  const metadata = input?.metadata;
  problems.check(metadata === undefined || isObject(metadata), 'input.metadata must be an object when given');
  if (isObject(metadata) && metadata.workflow !== undefined) {
    problems.check(metadata.workflow === workflow, `input.metadata.workflow must be "${workflow}" (this workflow) when given`);
  }
  if (isObject(metadata)) problems.list.push(...metadataProblems(metadata));
  const metadataOverride = input?.metadataOverride;
  problems.check(metadataOverride === undefined || typeof metadataOverride === 'boolean', 'input.metadataOverride must be a boolean when given');
  const activities = event.activities;
  const activityList = Array.isArray(activities) ? activities : [];
  problems.check(Array.isArray(activities) && activities.length > 0, 'activities must be a non-empty list');
  problems.check(activityList.every((name) => typeof name === 'string' && name.trim() !== '' && name.length <= MAX_ACTIVITY_NAME_LENGTH && isWellFormed(name)),
    `every activity must be a non-empty string of well-formed Unicode, at most ${MAX_ACTIVITY_NAME_LENGTH} characters`);
  const reserved = activityList.filter((name) => typeof name === 'string' && RESERVED_NAMES.has(name));
  problems.check(reserved.length === 0, `activity ${reserved.map((name) => JSON.stringify(name)).join(', ')} is reserved: `
    + `names of Object.prototype members (${RESERVED_LIST}) cannot name an activity; use 1-64 characters [A-Za-z0-9_-] other than these`);
  problems.check(new Set(activityList).size === activityList.length, 'activities must not repeat');
  const retentionDays = event.retentionDays;
  const validRetention = Number.isInteger(retentionDays) && (retentionDays as number) > 0 && (retentionDays as number) <= MAX_RETENTION_DAYS;
  problems.check(retentionDays === undefined || validRetention,
    `retentionDays must be a whole number of days from 1 to ${MAX_RETENTION_DAYS} when given`);
  problems.throwIfAny((message) => new InvalidRunInput(message, { uid: uid || undefined, workflow: workflow || undefined }), 'start-run event');
  return {
    input: { uid, metadata: metadata as Record<string, unknown> | undefined, metadataOverride: metadataOverride === true },
    workflow,
    activities: activityList as string[],
    retentionDays: retentionDays as number | undefined,
  };
}

/** A field name inside metadata, for messages: `.name` or `["odd name"]`, cut to 40 characters. */
function fieldPath(parent: string, name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]{0,39}$/.test(name) ? `${parent}.${name}` : `${parent}[${JSON.stringify(name.slice(0, 40))}]`;
}

/** DynamoDB's range, and what util-dynamodb marshalls without losing precision. */
function isStorableNumber(value: number): boolean {
  const magnitude = Math.abs(value);
  return Number.isFinite(value) && magnitude <= Number.MAX_SAFE_INTEGER && (magnitude === 0 || magnitude >= MIN_NUMBER_MAGNITUDE);
}

/**
 * What DynamoDB (or util-dynamodb's marshalling) would refuse in the metadata, found before anything
 * is written: nesting beyond DynamoDB's 32 levels, empty or `__proto__` field names, lone surrogates, numbers it
 * cannot store, and more than 64 KB of JSON. Iterative, so 10,000 levels cannot overflow the stack;
 * at most one problem of each kind.
 */
function metadataProblems(metadata: Fields): string[] {
  const found = new Map<string, string>();
  const note = (kind: string, problem: string) => {
    if (!found.has(kind)) found.set(kind, problem);
  };
  const pending: { value: unknown; path: string; depth: number }[] = [{ value: metadata, path: 'input.metadata', depth: 2 }];
  while (pending.length > 0) {
    const { value, path, depth } = pending.pop()!;
    if (typeof value === 'string') {
      if (!isWellFormed(value)) note('surrogate', `${path} must be well-formed Unicode (it holds a lone surrogate, which DynamoDB would store as U+FFFD)`);
    } else if (typeof value === 'number') {
      if (!isStorableNumber(value)) {
        note('number', `${path} is ${value}: metadata numbers must be 0 or of magnitude ${MIN_NUMBER_MAGNITUDE} to ${Number.MAX_SAFE_INTEGER} (DynamoDB and exact JavaScript integers); send larger ones as strings`);
      }
    } else if (typeof value === 'object' && value !== null) {
      if (depth > MAX_METADATA_DEPTH) {
        note('depth', `${path} is nested deeper than ${MAX_METADATA_DEPTH} levels: DynamoDB stores at most ${MAX_METADATA_DEPTH}, `
          + 'counting the status item as level 1 and input.metadata as level 2 (objects and lists are levels)');
        continue;
      }
      const children: [string, unknown][] = Array.isArray(value)
        ? value.map((item, index) => [`${path}[${index}]`, item])
        : Object.entries(value).map(([name, item]) => {
          if (name === '') note('empty', `${path} has a field with an empty name: DynamoDB refuses empty attribute names`);
          else if (name === '__proto__') note('proto', `${path} has a field named "__proto__": JavaScript would take it for the object's prototype; rename it`);
          else if (!isWellFormed(name)) note('surrogate-name', `${fieldPath(path, name)}: field names must be well-formed Unicode (no lone surrogates)`);
          return [fieldPath(path, name), item];
        });
      for (const [childPath, item] of children) pending.push({ value: item, path: childPath, depth: depth + 1 });
    }
  }
  if (!found.has('depth')) {
    const bytes = utf8Bytes(JSON.stringify(metadata));
    if (bytes > MAX_METADATA_BYTES) {
      note('size', `input.metadata is ${bytes} bytes as JSON; at most ${MAX_METADATA_BYTES} (64 KB) fit beside the run's status in one DynamoDB item: `
        + 'pass large data by reference (e.g. an S3 key)');
    }
  }
  return [...found.values()];
}

function parseStageBase(event: unknown, problems: Problems): Fields & { uid: string; workflow: string; activity: string; topicArn: string } {
  if (!isObject(event)) throw new InvalidStageEvent('Invalid stage event: expected an object');
  return {
    ...event,
    uid: problems.text(event, 'uid'),
    workflow: problems.text(event, 'workflow'),
    activity: problems.text(event, 'activity'),
    topicArn: problems.text(event, 'topicArn'),
  };
}

export function parseSequentialStageEvent(event: unknown): SequentialStageEvent {
  const problems = new Problems();
  const base = parseStageBase(event, problems);
  problems.check(base.stage === 'pre' || base.stage === 'post', 'stage must be "pre" or "post"');
  problems.check(Number.isInteger(base.maxAttempts) && (base.maxAttempts as number) >= 1 && (base.maxAttempts as number) <= MAX_ATTEMPTS_LIMIT,
    `maxAttempts must be a whole number from 1 to ${MAX_ATTEMPTS_LIMIT}`);
  problems.throwIfAny((message) => new InvalidStageEvent(message, contextOf(base)), 'sequential-stage event');
  return {
    uid: base.uid,
    workflow: base.workflow,
    activity: base.activity,
    stage: base.stage as SequentialStageKey,
    topicArn: base.topicArn,
    maxAttempts: base.maxAttempts as number,
  };
}

export function parseParallelStageEvent(event: unknown): ParallelStageEvent {
  const problems = new Problems();
  const base = parseStageBase(event, problems);
  problems.check(base.stage === 'async', 'stage must be "async"');
  const token = typeof base.token === 'string' && base.token !== '' ? base.token : '';
  problems.check(token !== '', 'token must be the task token ($$.Task.Token)');
  problems.check(token.length <= MAX_TASK_TOKEN_LENGTH,
    `token must be a Step Functions task token of at most ${MAX_TASK_TOKEN_LENGTH} characters (got ${token.length})`);
  problems.throwIfAny((message) => new InvalidStageEvent(message, contextOf(base)), 'parallel-stage event');
  return { uid: base.uid, workflow: base.workflow, activity: base.activity, stage: 'async', topicArn: base.topicArn, token };
}

export function parseStageFailureEvent(event: unknown): StageFailureEvent {
  if (!isObject(event)) throw new InvalidFailureEvent('Invalid stage-failure event: expected an object');
  const problems = new Problems();
  const uid = problems.text(event, 'uid');
  const workflow = problems.text(event, 'workflow');
  const activity = problems.text(event, 'activity');
  const error = isObject(event.error) ? event.error : undefined;
  problems.check(error !== undefined && typeof error.Error === 'string' && error.Error !== '', 'error must be the caught error { Error, Cause? }');
  problems.check(error === undefined || error.Cause === undefined || error.Cause === null || typeof error.Cause === 'string', 'error.Cause must be a string when given');
  problems.throwIfAny((message) => new InvalidFailureEvent(message, contextOf(event)), 'stage-failure event');
  const cause = typeof error?.Cause === 'string' ? error.Cause : undefined;
  return { uid, workflow, activity, error: { Error: error!.Error as string, ...(cause !== undefined ? { Cause: cause } : {}) } };
}

export function parseStreamEvent(event: unknown): StatusStreamEvent {
  if (!isObject(event) || !Array.isArray(event.Records)) {
    throw new InvalidStreamEvent('Invalid status-summary event: expected a DynamoDB stream batch { Records: [...] }');
  }
  const malformed = event.Records.filter((record) => !isObject(record) || !isObject(record.dynamodb));
  if (malformed.length > 0) throw new InvalidStreamEvent(`Invalid status-summary event: ${malformed.length} record(s) without a dynamodb section`);
  return { Records: event.Records as DynamoDBRecord[] };
}
