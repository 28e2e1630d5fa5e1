/**
 * DynamoDB JSON (`{ S: 'x' }`, `{ M: {...} }`, ...) to plain values, for stream images and for the
 * `Item` a ConditionalCheckFailedException carries (lib-dynamodb does not unmarshall that one).
 * Same mapping as lib-dynamodb: numbers -> number, sets -> Set, binary -> Uint8Array.
 */

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

export function fromAttributeValue(value: RawAttributeValue): unknown {
  if (value.S !== undefined) return value.S;
  if (value.N !== undefined) return Number(value.N);
  if (value.BOOL !== undefined) return value.BOOL;
  if (value.NULL !== undefined) return null;
  if (value.M !== undefined) return fromAttributeMap(value.M);
  if (value.L !== undefined) return value.L.map(fromAttributeValue);
  if (value.SS !== undefined) return new Set(value.SS);
  if (value.NS !== undefined) return new Set(value.NS.map(Number));
  if (value.B !== undefined) return value.B;
  if (value.BS !== undefined) return new Set(value.BS);
  // The Streams API client hands an empty map over as `{}`; our documents hold no empty lists.
  return {};
}

export function fromAttributeMap(image: Record<string, RawAttributeValue>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(image)) result[name] = fromAttributeValue(value);
  return result;
}
