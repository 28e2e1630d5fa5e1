// Synth-time validation shared by the constructs. Every message names the construct, the prop,
// the offending value (JSON-quoted, so spaces and odd characters show) and what is allowed.
import { Duration, Token } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { LIMITS, NAME_PATTERN, WORKFLOW_STATE_NAMES } from '../defaults';

const ALLOWED = 'letters A-Z a-z, digits 0-9, hyphen (-) and underscore (_)';

/**
 * Names of Object.prototype members (and `prototype`), e.g. `__proto__`, `constructor`, `toString`.
 * Activity and plugin names are keys of the status document and of the handlers' objects, where
 * these would reach the prototype instead of data; the handlers refuse them as well.
 */
export const RESERVED_NAMES: readonly string[] = [...Object.getOwnPropertyNames(Object.prototype), 'prototype'].sort();

/** `Orchestrator 'Stack/Orch'` — the prefix of every error raised for a construct. */
export function describe(kind: string, scope: IConstruct): string {
  return `${kind} '${scope.node.path}'`;
}

export function quote(value: unknown): string {
  return JSON.stringify(value);
}

/**
 * A name used in physical resource names: literal, [A-Za-z0-9_-], 1..maxLength characters, and not
 * one of `RESERVED_NAMES` (every name check goes through here: activities, plugins, workflows, orchestrators).
 */
export function validateName(where: string, what: string, value: string, maxLength: number, usedFor: string): void {
  if (typeof value !== 'string') {
    throw new Error(`${where}: ${what} must be a string, got ${quote(value)}`);
  }
  if (Token.isUnresolved(value)) {
    throw new Error(`${where}: ${what} must be a literal string known at synth time, not a token (${value}); it names ${usedFor}`);
  }
  if (value.length < 1 || value.length > maxLength || !NAME_PATTERN.test(value)) {
    throw new Error(
      `${where}: ${what} ${quote(value)} is invalid: use 1-${maxLength} characters from ${ALLOWED} (it names ${usedFor})`,
    );
  }
  if (RESERVED_NAMES.includes(value)) {
    throw new Error(
      `${where}: ${what} ${quote(value)} is reserved: names of JavaScript Object.prototype members (${RESERVED_NAMES.join(', ')}) `
      + `would be taken for the prototype where the handlers look names up; use another name of 1-${maxLength} characters from ${ALLOWED}`,
    );
  }
}

/** The activity list of an Orchestrator or a Workflow: non-empty, unique. */
export function validateActivityList(where: string, prop: string, names: string[], knownNames?: string[]): void {
  if (!Array.isArray(names) || names.length === 0) {
    const known = knownNames ? `; known activities: ${knownNames.join(', ')}` : '';
    throw new Error(`${where}: ${prop} must list at least one activity name, got ${quote(names)}${known}`);
  }
  const seen = new Set<string>();
  for (const name of names) {
    if (seen.has(name)) {
      throw new Error(`${where}: activity ${quote(name)} is listed more than once in ${prop} ${quote(names)}; each activity may appear once`);
    }
    seen.add(name);
  }
}

/** An activity name: a valid name that does not collide with a workflow state name. */
export function validateActivityName(where: string, name: string): void {
  validateName(where, 'activity name', name, LIMITS.activityNameMaxLength, 'the activity\'s SNS topics and state machine');
  const reserved = Object.values(WORKFLOW_STATE_NAMES);
  if (reserved.includes(name)) {
    throw new Error(
      `${where}: activity name ${quote(name)} is reserved: a workflow state machine uses the state names ${reserved.join(', ')}`,
    );
  }
}

/** Throws when `name` is not one of `known`, listing the known names. */
export function requireKnownActivity(where: string, name: string, known: string[]): void {
  if (!known.includes(name)) {
    throw new Error(`${where}: unknown activity ${quote(name)}; known activities: ${known.join(', ')}`);
  }
}

/** A duration in whole seconds between min and max (skipped when it is a token). */
export function validateDuration(where: string, what: string, value: Duration, min: Duration, max: Duration): number | undefined {
  if (value.isUnresolved()) {
    return undefined;
  }
  const seconds = value.toMilliseconds() / 1000;
  if (!Number.isInteger(seconds) || seconds < min.toSeconds() || seconds > max.toSeconds()) {
    throw new Error(
      `${where}: ${what} is ${value.toHumanString()}; it must be a whole number of seconds between ${min.toHumanString()} and ${max.toHumanString()}`,
    );
  }
  return seconds;
}

/** A whole number between min and max. */
export function validateInteger(where: string, what: string, value: number, min: number, max: number): void {
  if (Token.isUnresolved(value)) {
    return;
  }
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new Error(`${where}: ${what} is ${quote(value)}; it must be a whole number from ${min} to ${max}`);
  }
}
