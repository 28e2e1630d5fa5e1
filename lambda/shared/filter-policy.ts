/**
 * Content-based filtering, pure (no AWS SDK): SNS subscription filter policies and Lambda
 * event-source filter patterns, which share the EventBridge pattern language.
 *
 * - `matchesPattern(pattern, event)` — EventBridge-style matching of a pattern against a JSON
 *   document (Lambda event filtering on stream/queue records, SNS `MessageBody` scope).
 * - `matchesFilterPolicy(policy, message, scope)` — SNS semantics on top of it: the
 *   `MessageAttributes` scope turns typed attributes (`String`, `Number`, `String.Array`) into values.
 *
 * The parallel stage reuses this to tell which plugins a message cannot reach; the local engine uses
 * it to route SNS deliveries and to filter stream records, so both agree by construction.
 */
import { isObject } from './json';

/** One leaf value a pattern condition is compared with. */
type Leaf = string | number | boolean | null;

/** How `anything-but` treats an array value: SNS attribute arrays need every element to pass. */
type ArrayMode = 'any' | 'none';

interface MatchOptions {
  /** `anything-but` on an array: 'any' element passing is enough (EventBridge), or 'none' of them may be excluded (SNS String.Array). */
  readonly anythingButOnArrays: ArrayMode;
}

const OPERATORS = new Set([
  'prefix', 'suffix', 'anything-but', 'numeric', 'exists', 'equals-ignore-case', 'wildcard', 'cidr',
]);

const EVENTBRIDGE: MatchOptions = { anythingButOnArrays: 'any' };

/**
 * EventBridge pattern matching: every key of the pattern must match (AND); the array under a key
 * lists alternatives (OR); a nested object descends into the document; `$or` holds alternative
 * sub-patterns. Array values in the document match when any element matches.
 */
export function matchesPattern(pattern: Record<string, unknown>, event: unknown): boolean {
  return matchObject(pattern, event, EVENTBRIDGE);
}

export type FilterPolicyScope = 'MessageAttributes' | 'MessageBody';

/** A message attribute as published (`DataType`/`StringValue`) or as delivered (`Type`/`Value`). */
export interface FilterableAttribute {
  readonly DataType?: string;
  readonly StringValue?: string;
  readonly Type?: string;
  readonly Value?: string;
  readonly BinaryValue?: unknown;
}

export interface FilterableMessage {
  /** The message body (a JSON string when the MessageBody scope is used). */
  readonly body?: string;
  readonly attributes?: Record<string, FilterableAttribute>;
}

/**
 * Whether an SNS subscription with this filter policy receives the message.
 * No policy (undefined or `{}`) accepts everything, as in SNS.
 */
export function matchesFilterPolicy(
  policy: Record<string, unknown> | string | undefined,
  message: FilterableMessage,
  scope: FilterPolicyScope = 'MessageAttributes',
): boolean {
  const parsed = typeof policy === 'string' ? JSON.parse(policy) as Record<string, unknown> : policy;
  if (!parsed || Object.keys(parsed).length === 0) return true;
  if (scope === 'MessageBody') {
    let body: unknown;
    try {
      body = JSON.parse(message.body ?? '');
    } catch {
      return false; // a non-JSON body never matches a body-scoped policy
    }
    if (!isObject(body)) return false;
    return matchObject(parsed, body, EVENTBRIDGE);
  }
  const attributes = attributeValues(message.attributes ?? {});
  // SNS: `exists: false` only matches when the message has at least one attribute.
  if (Object.keys(attributes).length === 0) return false;
  return matchObject(parsed, attributes, { anythingButOnArrays: 'none' });
}

/** Converts typed SNS message attributes into the values a policy is compared with. */
function attributeValues(attributes: Record<string, FilterableAttribute>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, attribute] of Object.entries(attributes)) {
    const type = attribute.DataType ?? attribute.Type ?? 'String';
    const raw = attribute.StringValue ?? attribute.Value;
    if (raw === undefined || type.startsWith('Binary')) continue; // binary attributes are not filterable
    if (type.startsWith('Number')) {
      const n = Number(raw);
      if (!Number.isNaN(n)) out[name] = n;
    } else if (type.startsWith('String.Array') || type.startsWith('Number.Array')) {
      try {
        const values = JSON.parse(raw) as unknown;
        out[name] = Array.isArray(values) ? values.filter((v) => !isObject(v) && !Array.isArray(v)) : raw;
      } catch {
        out[name] = raw;
      }
    } else {
      out[name] = raw;
    }
  }
  return out;
}

function matchObject(pattern: Record<string, unknown>, value: unknown, options: MatchOptions): boolean {
  for (const [key, rule] of Object.entries(pattern)) {
    if (key === '$or' && isOrOperator(rule)) {
      if (!rule.some((alternative) => matchObject(alternative, value, options))) return false;
      continue;
    }
    const field = isObject(value) ? value[key] : undefined;
    if (Array.isArray(rule)) {
      if (!matchField(rule, field, options)) return false;
    } else if (isObject(rule)) {
      // Nested pattern: descend. A missing or non-object field cannot satisfy it.
      if (Array.isArray(field)) {
        if (!field.some((element) => matchObject(rule, element, options))) return false;
      } else if (!matchObject(rule, field, options)) {
        return false;
      }
    } else {
      throw new Error(`Invalid filter pattern: the value of "${key}" must be an array or an object`);
    }
  }
  return true;
}

/** `$or` is an operator only with ≥ 2 plain sub-patterns; otherwise it is an ordinary key (SNS docs). */
function isOrOperator(rule: unknown): rule is Record<string, unknown>[] {
  return Array.isArray(rule) && rule.length >= 2
    && rule.every((r) => isObject(r) && Object.keys(r).every((k) => !OPERATORS.has(k)));
}

/** A field matches when any condition matches; `exists` looks at presence, the rest at leaf values. */
function matchField(conditions: unknown[], field: unknown, options: MatchOptions): boolean {
  const leaves = leafValues(field);
  return conditions.some((condition) => {
    if (isObject(condition) && 'exists' in condition) {
      const present = leaves.length > 0 && leaves.some((v) => v !== null && v !== '');
      return condition.exists === present;
    }
    if (leaves.length === 0) return false;
    if (isObject(condition) && 'anything-but' in condition) {
      const excluded = (v: Leaf) => matchAnythingButOperand(condition['anything-but'], v);
      return options.anythingButOnArrays === 'none' && Array.isArray(field)
        ? leaves.every((v) => !excluded(v))
        : leaves.some((v) => !excluded(v));
    }
    return leaves.some((v) => matchCondition(condition, v));
  });
}

/** The leaf values of a document field: itself, or the scalar elements of an array. */
function leafValues(field: unknown): Leaf[] {
  if (field === undefined) return [];
  if (Array.isArray(field)) return field.filter((v) => !isObject(v) && !Array.isArray(v)) as Leaf[];
  if (isObject(field)) return []; // an intermediate node is not a leaf
  return [field as Leaf];
}

function matchCondition(condition: unknown, value: Leaf): boolean {
  if (condition === null || typeof condition !== 'object') return equalLeaf(condition as Leaf, value);
  const c = condition as Record<string, unknown>;
  if ('prefix' in c) return matchAffix(c.prefix, value, (s, p) => s.startsWith(p));
  if ('suffix' in c) return matchAffix(c.suffix, value, (s, p) => s.endsWith(p));
  if ('equals-ignore-case' in c) {
    return typeof value === 'string' && typeof c['equals-ignore-case'] === 'string'
      && value.toLowerCase() === c['equals-ignore-case'].toLowerCase();
  }
  if ('wildcard' in c) return typeof value === 'string' && typeof c.wildcard === 'string' && wildcard(c.wildcard, value);
  if ('numeric' in c) return typeof value === 'number' && matchNumeric(c.numeric, value);
  throw new Error(`Unsupported filter condition: ${JSON.stringify(condition)}`);
}

/** `prefix`/`suffix` take a string or `{ "equals-ignore-case": string }`. */
function matchAffix(operand: unknown, value: Leaf, test: (s: string, affix: string) => boolean): boolean {
  if (typeof value !== 'string') return false;
  if (typeof operand === 'string') return test(value, operand);
  if (isObject(operand) && typeof operand['equals-ignore-case'] === 'string') {
    return test(value.toLowerCase(), operand['equals-ignore-case'].toLowerCase());
  }
  throw new Error(`Invalid prefix/suffix operand: ${JSON.stringify(operand)}`);
}

/** Whether `value` is one of the values an `anything-but` excludes. */
function matchAnythingButOperand(operand: unknown, value: Leaf): boolean {
  if (Array.isArray(operand)) return operand.some((o) => equalLeaf(o as Leaf, value));
  if (isObject(operand)) return matchCondition(operand, value);
  return equalLeaf(operand as Leaf, value);
}

/** Exact matching: strings case-sensitively, numbers by numeric value (3.015e2 equals 301.5). */
function equalLeaf(expected: Leaf, value: Leaf): boolean {
  if (typeof expected === 'number' && typeof value === 'number') return expected === value;
  return expected === value;
}

/** `numeric: [op, n]` or `[op, n, op, n]` (a range), all comparisons must hold. */
function matchNumeric(spec: unknown, value: number): boolean {
  if (!Array.isArray(spec) || spec.length === 0 || spec.length % 2 !== 0) {
    throw new Error(`Invalid numeric condition: ${JSON.stringify(spec)}`);
  }
  for (let i = 0; i < spec.length; i += 2) {
    const op = spec[i];
    const bound = Number(spec[i + 1]);
    const ok = op === '=' ? value === bound
      : op === '<' ? value < bound
        : op === '<=' ? value <= bound
          : op === '>' ? value > bound
            : op === '>=' ? value >= bound
              : undefined;
    if (ok === undefined) throw new Error(`Invalid numeric operator: ${String(op)}`);
    if (!ok) return false;
  }
  return true;
}

/** EventBridge wildcard: `*` matches any run of characters, `\*` a literal star. */
function wildcard(pattern: string, value: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const ch = pattern[i];
    if (ch === '\\' && pattern[i + 1] === '*') {
      re += '\\*';
      i++;
    } else if (ch === '*') {
      re += '.*';
    } else {
      re += ch.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
    }
  }
  return new RegExp(`^${re}$`, 's').test(value);
}

