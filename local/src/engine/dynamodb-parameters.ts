/**
 * The attribute values in a DynamoDB request that a `Custom::AWS` resource or a Step Functions task
 * sends through the engine's own JSON client (aws-sdk-call.ts): where they are, whether each has the
 * shape DynamoDB takes, and binary given as text the way aws-cdk-lib's AwsCustomResource handler
 * takes it. The SDK's client did both (its types, its blob serializer); DynamoDB Local does neither
 * (it stores `{ "N": 3 }`).
 */
import { isObject } from '../../../lambda/shared/json';

type AttributeMap = Record<string, unknown>;

/** One place in a request that holds attribute values: a map of name -> value, or a list of values (PartiQL's `Parameters`). */
interface Site {
  readonly path: string;
  readonly values: AttributeMap | unknown[];
}

/** Members of a request, and of `TransactItems[]`' Put/Update/Delete/ConditionCheck/Get, that are maps of attribute values. */
const MAPS = ['Item', 'Key', 'ExclusiveStartKey', 'ExpressionAttributeValues'];
const TRANSACT_ACTIONS = ['Put', 'Update', 'Delete', 'ConditionCheck', 'Get'];

/**
 * The places of a request's attribute values, by the shapes of DynamoDB's operations: top-level
 * maps (PutItem, UpdateItem, Query, ...), `RequestItems` (BatchGetItem's `Keys`, BatchWriteItem's
 * put and delete requests), `TransactItems`, and PartiQL's `Parameters`. The legacy parameters
 * (`Expected`, `AttributeUpdates`, `KeyConditions`, `QueryFilter`, `ScanFilter`) are not looked into.
 */
function sites(request: AttributeMap): Site[] {
  const found: Site[] = [];
  const mapsOf = (owner: unknown, path: string) => {
    if (!isObject(owner)) return;
    for (const name of MAPS) if (isObject(owner[name])) found.push({ path: `${path}${name}`, values: owner[name] as AttributeMap });
  };
  const parametersOf = (owner: unknown, path: string) => {
    if (isObject(owner) && Array.isArray(owner.Parameters)) found.push({ path: `${path}Parameters`, values: owner.Parameters });
  };
  mapsOf(request, '');
  parametersOf(request, '');
  for (const [list, name] of [[request.Statements, 'Statements'], [request.TransactStatements, 'TransactStatements']] as const) {
    if (Array.isArray(list)) list.forEach((statement, i) => parametersOf(statement, `${name}[${i}].`));
  }
  if (isObject(request.RequestItems)) {
    for (const [table, items] of Object.entries(request.RequestItems)) {
      const at = `RequestItems.${table}`;
      if (Array.isArray(items)) {
        items.forEach((item, i) => {
          if (!isObject(item)) return;
          if (isObject(item.PutRequest) && isObject(item.PutRequest.Item)) found.push({ path: `${at}[${i}].PutRequest.Item`, values: item.PutRequest.Item });
          if (isObject(item.DeleteRequest) && isObject(item.DeleteRequest.Key)) found.push({ path: `${at}[${i}].DeleteRequest.Key`, values: item.DeleteRequest.Key });
        });
      } else if (isObject(items) && Array.isArray(items.Keys)) {
        items.Keys.forEach((key, i) => {
          if (isObject(key)) found.push({ path: `${at}.Keys[${i}]`, values: key });
        });
      }
    }
  }
  if (Array.isArray(request.TransactItems)) {
    request.TransactItems.forEach((item, i) => {
      if (!isObject(item)) return;
      for (const action of TRANSACT_ACTIONS) mapsOf(item[action], `TransactItems[${i}].${action}.`);
    });
  }
  return found;
}

/** Where the request holds an attribute value of the wrong shape, as a message (undefined: none). */
export function wrongAttributeValue(request: AttributeMap): string | undefined {
  for (const { path, values } of sites(request)) {
    const wrong = firstProblem(values, path);
    if (wrong) return wrong;
  }
  return undefined;
}

/** The first problem among the attribute values of a map (`path.name`) or a list (`path[i]`). */
function firstProblem(values: AttributeMap | unknown[], path: string): string | undefined {
  const members = Array.isArray(values) ? values.map((v, i) => [`${path}[${i}]`, v] as const) : Object.entries(values).map(([k, v]) => [`${path}.${k}`, v] as const);
  for (const [at, value] of members) {
    const wrong = attributeValueProblem(value, at);
    if (wrong) return wrong;
  }
  return undefined;
}

const TYPES = 'S, N, B, SS, NS, BS, M, L, BOOL or NULL';
const STRING_TYPES = new Set(['S', 'N', 'B']);
const SET_TYPES = new Set(['SS', 'NS', 'BS']);

function attributeValueProblem(value: unknown, path: string): string | undefined {
  const types = isObject(value) ? Object.keys(value) : [];
  if (types.length !== 1) return `${path} must be an attribute value with exactly one type (${TYPES})`;
  const [type] = types;
  const member = (value as AttributeMap)[type];
  const shape = Array.isArray(member) ? 'a list' : member === null ? 'null' : typeof member;
  if (STRING_TYPES.has(type)) return typeof member === 'string' ? undefined : `${path}.${type} must be a string, not ${shape}`;
  if (SET_TYPES.has(type)) return Array.isArray(member) && member.every((m) => typeof m === 'string') ? undefined : `${path}.${type} must be a list of strings`;
  if (type === 'BOOL') return typeof member === 'boolean' ? undefined : `${path}.BOOL must be true or false, not ${shape}`;
  if (type === 'NULL') return member === true ? undefined : `${path}.NULL must be true`;
  if (type === 'M') return isObject(member) ? firstProblem(member, `${path}.M`) : `${path}.M must be a map of attribute values, not ${shape}`;
  if (type === 'L') return Array.isArray(member) ? firstProblem(member, `${path}.L`) : `${path}.L must be a list of attribute values, not ${shape}`;
  return `${path} has an unknown type ${type} (${TYPES})`;
}

/**
 * The request with each binary value (`B`, `BS`, in maps and lists too) given as text, as
 * aws-cdk-lib's AwsCustomResource handler reads it: a string or number is that text's UTF-8 bytes,
 * base64-encoded for the wire. (Step Functions' JSON carries binary as base64 already.)
 */
export function binaryAsText(request: AttributeMap): AttributeMap {
  const copy = structuredClone(request);
  const text = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? Buffer.from(String(v), 'utf8').toString('base64') : v);
  const visit = (value: unknown) => {
    if (!isObject(value)) return;
    if ('B' in value) value.B = text(value.B);
    if (Array.isArray(value.BS)) value.BS = value.BS.map(text);
    if (isObject(value.M)) Object.values(value.M).forEach(visit);
    if (Array.isArray(value.L)) value.L.forEach(visit);
  };
  for (const { values } of sites(copy)) (Array.isArray(values) ? values : Object.values(values)).forEach(visit);
  return copy;
}
