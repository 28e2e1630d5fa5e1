/**
 * Event validation for every handler: each parser returns a typed event or throws the handler's
 * named error listing every problem, before anything is read or written.
 */
import type { DynamoDBRecord } from 'aws-lambda';
import {
  InvalidFailureEvent, InvalidRunInput, InvalidStageEvent, InvalidStreamEvent, RunContext,
} from './errors';
import { SequentialStageKey } from './status';

/** DynamoDB allows 2048-byte partition keys; stay well below so composite values fit too. */
const MAX_KEY_LENGTH = 1024;
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

function isObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects problems so one error message names all of them. */
class Problems {
  public readonly list: string[] = [];

  public text(source: Fields, field: string, label = field): string {
    const value = source[field];
    if (typeof value !== 'string' || value.trim() === '') {
      this.list.push(`${label} must be a non-empty string`);
      return '';
    }
    if (value.length > MAX_KEY_LENGTH) this.list.push(`${label} must be at most ${MAX_KEY_LENGTH} characters`);
    return value;
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
  const metadataOverride = input?.metadataOverride;
  problems.check(metadataOverride === undefined || typeof metadataOverride === 'boolean', 'input.metadataOverride must be a boolean when given');
  const activities = event.activities;
  const activityList = Array.isArray(activities) ? activities : [];
  problems.check(Array.isArray(activities) && activities.length > 0, 'activities must be a non-empty list');
  problems.check(activityList.every((name) => typeof name === 'string' && name.trim() !== '' && name.length <= 255),
    'every activity must be a non-empty string of at most 255 characters');
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
