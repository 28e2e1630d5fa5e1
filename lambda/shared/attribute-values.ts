/**
 * DynamoDB JSON (`{ S: 'x' }`, `{ M: {...} }`, ...) to plain values, for the stream images
 * status-summary reads: an event a handler is given, checked like any other input. (Answers to the
 * handlers' own requests are converted by documents.ts, with util-dynamodb.) Numbers -> number, sets
 * -> Set, binary -> Uint8Array, as util-dynamodb's unmarshall maps them, except that a number is
 * always a JavaScript number (run input is validated to at most 2^53 - 1, validation.ts).
 *
 * Anything DynamoDB never sends (a value that is not an object, a payload of the wrong type, nesting
 * beyond `MAX_DEPTH`) throws `InvalidAttributeValue` naming the attribute, rather than a TypeError or
 * a stack overflow. Map keys stay data: a key `__proto__` becomes an own field, never a prototype.
 */
import { InvalidAttributeValue } from './errors';
import { isObject } from './json';

/** Structural type that fits both the SDK's and `aws-lambda`'s AttributeValue. */
export interface RawAttributeValue {
  readonly S?: string;
  readonly N?: string;
  readonly B?: unknown;
  readonly BOOL?: boolean;
  readonly NULL?: boolean;
  readonly M?: Record<string, RawAttributeValue>;
  readonly L?: readonly RawAttributeValue[];
  readonly SS?: readonly string[];
  readonly NS?: readonly string[];
  readonly BS?: readonly unknown[];
}

/**
 * DynamoDB nests at most 32 levels. Twice that leaves every real item far inside the bound; it only
 * stops a forged image from recursing until the stack overflows.
 */
const MAX_DEPTH = 64;


function invalid(path: string, problem: string): InvalidAttributeValue {
  return new InvalidAttributeValue(`${path.slice(0, 200)}: ${problem}`);
}

function stringsAt(path: string, list: unknown, type: string): readonly string[] {
  if (!Array.isArray(list) || !list.every((item) => typeof item === 'string')) throw invalid(path, `${type} must be a list of strings`);
  return list;
}

function convert(value: unknown, path: string, depth: number): unknown {
  if (!isObject(value)) throw invalid(path, `${value === null ? 'null' : Array.isArray(value) ? 'a list' : typeof value} is not a DynamoDB AttributeValue`);
  if (depth > MAX_DEPTH) throw invalid(path, `nested deeper than ${MAX_DEPTH} levels (DynamoDB stores at most 32)`);
  if (value.S !== undefined) {
    if (typeof value.S !== 'string') throw invalid(path, 'S must be a string');
    return value.S;
  }
  if (value.N !== undefined) {
    if (typeof value.N !== 'string') throw invalid(path, 'N must be a string');
    return Number(value.N);
  }
  if (value.BOOL !== undefined) {
    if (typeof value.BOOL !== 'boolean') throw invalid(path, 'BOOL must be a boolean');
    return value.BOOL;
  }
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return convertMap(value.M, path, depth + 1);
  if (value.L !== undefined) {
    if (!Array.isArray(value.L)) throw invalid(path, 'L must be a list');
    return value.L.map((item, index) => convert(item, `${path}[${index}]`, depth + 1));
  }
  if (value.SS !== undefined) return new Set(stringsAt(path, value.SS, 'SS'));
  if (value.NS !== undefined) return new Set(stringsAt(path, value.NS, 'NS').map(Number));
  if (value.B !== undefined) return value.B;
  if (value.BS !== undefined) {
    if (!Array.isArray(value.BS)) throw invalid(path, 'BS must be a list');
    return new Set(value.BS);
  }
  // The Streams API client hands an empty map over as `{}`; our documents hold no empty lists.
  return {};
}

function convertMap(map: unknown, path: string, depth: number): Record<string, unknown> {
  if (!isObject(map)) throw invalid(path, 'M must be a map of attribute values');
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(map)) {
    // defineProperty: `result[name] = ...` would set the prototype for a key named `__proto__`.
    Object.defineProperty(result, name, { value: convert(value, `${path}.${name}`, depth), enumerable: true, writable: true, configurable: true });
  }
  return result;
}

export function fromAttributeValue(value: RawAttributeValue): unknown {
  return convert(value, 'value', 1);
}

/** An item or stream image (its top-level attributes are level 1). */
export function fromAttributeMap(image: Record<string, RawAttributeValue>): Record<string, unknown> {
  return convertMap(image, 'item', 1);
}
