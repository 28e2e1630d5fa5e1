/**
 * The filter evaluator against the examples of AWS's SNS documentation ("Amazon SNS example filter
 * policies", "String value matching", "Numeric value matching", "Key matching", "AND/OR logic"),
 * restated as tables: each row is a policy, a message, and whether SNS delivers it.
 */
import { FilterableAttribute, FilterPolicyScope, matchesFilterPolicy, matchesPattern } from '../../lambda/shared/filter-policy';

type Attrs = Record<string, FilterableAttribute>;
const str = (Value: string): FilterableAttribute => ({ Type: 'String', Value });
const num = (Value: string): FilterableAttribute => ({ Type: 'Number', Value });
const arr = (values: unknown[]): FilterableAttribute => ({ Type: 'String.Array', Value: JSON.stringify(values) });

/** The transaction message of the "example filter policies" page, as attributes and as a body. */
const exampleAttributes: Attrs = {
  customer_interests: arr(['soccer', 'rugby', 'hockey']),
  store: str('example_corp'),
  event: str('order_placed'),
  price_usd: num('210.75'),
};
const exampleBody = JSON.stringify({ customer_interests: ['soccer', 'rugby', 'hockey'], store: 'example_corp', event: 'order_placed', price_usd: 210.75 });

function both(policy: Record<string, unknown>, attributes: Attrs, body: Record<string, unknown>, expected: boolean) {
  expect(matchesFilterPolicy(policy, { attributes }, 'MessageAttributes')).toBe(expected);
  expect(matchesFilterPolicy(policy, { body: JSON.stringify(body) }, 'MessageBody')).toBe(expected);
}

describe('SNS example filter policies (transaction message)', () => {
  const accepting = {
    store: ['example_corp'],
    event: [{ 'anything-but': 'order_cancelled' }],
    customer_interests: ['rugby', 'football', 'baseball'],
    price_usd: [{ numeric: ['>=', 100] }],
  };
  const rejecting = {
    store: ['example_corp'],
    event: ['order_cancelled'],
    customer_interests: ['rugby', 'football', 'baseball'],
    price_usd: [{ numeric: ['>=', 100] }],
  };
  test.each<[string, Record<string, unknown>, boolean]>([
    ['the accepting policy', accepting, true],
    ['a policy whose event does not match', rejecting, false],
    ['a policy on an attribute the message lacks', { encrypted: [false] }, false],
    ['a price range excluding 210.75', { price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, false],
  ])('%s', (_, policy, expected) => {
    expect(matchesFilterPolicy(policy, { attributes: exampleAttributes }, 'MessageAttributes')).toBe(expected);
    expect(matchesFilterPolicy(policy, { body: exampleBody }, 'MessageBody')).toBe(expected);
  });
});

describe('string value matching', () => {
  test.each<[string, Record<string, unknown>, FilterableAttribute, unknown, boolean]>([
    ['exact: rugby', { customer_interests: ['rugby', 'tennis'] }, str('rugby'), 'rugby', true],
    ['exact: tennis', { customer_interests: ['rugby', 'tennis'] }, str('tennis'), 'tennis', true],
    ['exact: baseball', { customer_interests: ['rugby', 'tennis'] }, str('baseball'), 'baseball', false],
    ['exact: array element', { customer_interests: ['rugby', 'tennis'] }, arr(['rugby', 'tennis']), ['rugby', 'tennis'], true],
    ['exact: array without', { customer_interests: ['rugby', 'tennis'] }, arr(['baseball']), ['baseball'], false],
    ['anything-but: baseball', { customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] }, str('baseball'), 'baseball', true],
    ['anything-but: football', { customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] }, str('football'), 'football', true],
    ['anything-but: rugby', { customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] }, str('rugby'), 'rugby', false],
    ['anything-but single value', { customer_interests: [{ 'anything-but': 'rugby' }] }, str('rugby'), 'rugby', false],
    ['prefix: baseball', { customer_interests: [{ prefix: 'bas' }] }, str('baseball'), 'baseball', true],
    ['prefix: basketball', { customer_interests: [{ prefix: 'bas' }] }, str('basketball'), 'basketball', true],
    ['prefix: rugby', { customer_interests: [{ prefix: 'bas' }] }, str('rugby'), 'rugby', false],
    ['anything-but prefix: rugby', { customer_interests: [{ 'anything-but': { prefix: 'bas' } }] }, str('rugby'), 'rugby', true],
    ['anything-but prefix: baseball', { customer_interests: [{ 'anything-but': { prefix: 'bas' } }] }, str('baseball'), 'baseball', false],
    ['suffix: baseball', { customer_interests: [{ suffix: 'ball' }] }, str('baseball'), 'baseball', true],
    ['suffix: rugby', { customer_interests: [{ suffix: 'ball' }] }, str('rugby'), 'rugby', false],
    ['anything-but suffix: rugby', { customer_interests: [{ 'anything-but': { suffix: 'ball' } }] }, str('rugby'), 'rugby', true],
    ['anything-but suffix: baseball', { customer_interests: [{ 'anything-but': { suffix: 'ball' } }] }, str('baseball'), 'baseball', false],
    ['equals-ignore-case: TENNIS', { customer_interests: [{ 'equals-ignore-case': 'tennis' }] }, str('TENNIS'), 'TENNIS', true],
    ['equals-ignore-case: Tennis', { customer_interests: [{ 'equals-ignore-case': 'tennis' }] }, str('Tennis'), 'Tennis', true],
    ['equals-ignore-case: rugby', { customer_interests: [{ 'equals-ignore-case': 'tennis' }] }, str('rugby'), 'rugby', false],
    ['a string never equals a number', { price_usd: ['210.75'] }, num('210.75'), 210.75, false],
  ])('%s', (_, policy, attribute, bodyValue, expected) => {
    const key = Object.keys(policy)[0];
    both(policy, { [key]: attribute }, { [key]: bodyValue }, expected);
  });

  test('anything-but on a String.Array attribute: no element may be excluded (SNS); a body array needs one passing element (EventBridge)', () => {
    const policy = { customer_interests: [{ 'anything-but': ['rugby', 'tennis'] }] };
    expect(matchesFilterPolicy(policy, { attributes: { customer_interests: arr(['rugby', 'baseball']) } })).toBe(false);
    expect(matchesFilterPolicy(policy, { attributes: { customer_interests: arr(['baseball', 'football']) } })).toBe(true);
    expect(matchesFilterPolicy(policy, { body: JSON.stringify({ customer_interests: ['rugby', 'baseball'] }) }, 'MessageBody')).toBe(true);
    expect(matchesFilterPolicy(policy, { body: JSON.stringify({ customer_interests: ['rugby'] }) }, 'MessageBody')).toBe(false);
  });
});

describe('numeric value matching', () => {
  test.each<[string, Record<string, unknown>, string, boolean]>([
    ['= 301.5 vs 301.5', { price_usd: [{ numeric: ['=', 301.5] }] }, '301.5', true],
    ['= 301.5 vs 3.015e2', { price_usd: [{ numeric: ['=', 301.5] }] }, '3.015e2', true],
    ['anything-but [100, 500] vs 101', { price_usd: [{ 'anything-but': [100, 500] }] }, '101', true],
    ['anything-but [100, 500] vs 100.1', { price_usd: [{ 'anything-but': [100, 500] }] }, '100.1', true],
    ['anything-but [100, 500] vs 100', { price_usd: [{ 'anything-but': [100, 500] }] }, '100', false],
    ['range (0, 150] vs 100', { price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, '100', true],
    ['range (0, 150] vs 150', { price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, '150', true],
    ['range (0, 150] vs 0', { price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, '0', false],
    ['range (0, 150] vs 151', { price_usd: [{ numeric: ['>', 0, '<=', 150] }] }, '151', false],
    ['< 0 vs -1', { price_usd: [{ numeric: ['<', 0] }] }, '-1', true],
  ])('%s', (_, policy, value, expected) => {
    both(policy, { price_usd: num(value) }, { price_usd: Number(value) }, expected);
  });

  test('a numeric condition never matches a String attribute', () => {
    expect(matchesFilterPolicy({ price_usd: [{ numeric: ['>', 0] }] }, { attributes: { price_usd: str('10') } })).toBe(false);
  });
});

describe('key matching (exists)', () => {
  const withStore: Attrs = { store: str('fans'), customer_interests: arr(['baseball', 'basketball']) };
  const withoutStore: Attrs = { customer_interests: arr(['baseball', 'basketball']) };
  test.each<[string, Record<string, unknown>, Attrs, boolean]>([
    ['exists true, present', { store: [{ exists: true }] }, withStore, true],
    ['exists true, absent', { store: [{ exists: true }] }, withoutStore, false],
    ['exists false, present', { store: [{ exists: false }] }, withStore, false],
    ['exists false, absent', { store: [{ exists: false }] }, withoutStore, true],
    ['exists false needs at least one attribute', { store: [{ exists: false }] }, {}, false],
  ])('%s', (_, policy, attributes, expected) => {
    expect(matchesFilterPolicy(policy, { attributes })).toBe(expected);
  });

  test('the same in the message body scope', () => {
    const body = (o: object) => ({ body: JSON.stringify(o) });
    expect(matchesFilterPolicy({ store: [{ exists: true }] }, body({ store: 'fans', customer_interests: ['baseball'] }), 'MessageBody')).toBe(true);
    expect(matchesFilterPolicy({ store: [{ exists: true }] }, body({ customer_interests: ['baseball'] }), 'MessageBody')).toBe(false);
    expect(matchesFilterPolicy({ store: [{ exists: false }] }, body({ customer_interests: ['baseball'] }), 'MessageBody')).toBe(true);
  });

  test('exists does not match intermediate nodes', () => {
    expect(matchesPattern({ store: [{ exists: true }] }, { store: { name: 'fans' } })).toBe(false);
  });
});

describe('AND / OR logic', () => {
  const andPolicy = { customer_interests: ['rugby'], price_usd: [{ numeric: ['>', 100] }] };
  test.each<[string, Attrs, boolean]>([
    ['both hold', { customer_interests: str('rugby'), price_usd: num('101') }, true],
    ['price too low', { customer_interests: str('rugby'), price_usd: num('100') }, false],
    ['interest differs', { customer_interests: str('tennis'), price_usd: num('500') }, false],
  ])('AND: %s', (_, attributes, expected) => {
    expect(matchesFilterPolicy(andPolicy, { attributes })).toBe(expected);
  });

  const orPolicy = { source: ['aws.cloudwatch'], $or: [{ metricName: ['CPUUtilization'] }, { namespace: ['AWS/EC2'] }] };
  test.each<[string, Record<string, string>, boolean]>([
    ['source and metricName', { source: 'aws.cloudwatch', metricName: 'CPUUtilization' }, true],
    ['source and namespace', { source: 'aws.cloudwatch', namespace: 'AWS/EC2' }, true],
    ['source only', { source: 'aws.cloudwatch' }, false],
    ['metricName without source', { metricName: 'CPUUtilization', namespace: 'AWS/EC2' }, false],
  ])('$or: %s', (_, fields, expected) => {
    const attributes = Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, str(v)]));
    both(orPolicy, attributes, fields, expected);
  });

  test('"$or" with reserved keywords is an ordinary attribute name', () => {
    const policy = { $or: [{ numeric: 123 }, { prefix: 'abc' }] };
    expect(matchesFilterPolicy(policy, { attributes: { other: str('x') } })).toBe(false);
  });
});

describe('message body specifics', () => {
  test('nested properties', () => {
    const policy = { customer: { interests: ['rugby'], address: { country: [{ prefix: 'N' }] } } };
    const body = { customer: { interests: ['soccer', 'rugby'], address: { country: 'NZ' } } };
    expect(matchesFilterPolicy(policy, { body: JSON.stringify(body) }, 'MessageBody')).toBe(true);
    expect(matchesFilterPolicy(policy, { body: JSON.stringify({ customer: { interests: 'rugby', address: { country: 'FR' } } }) }, 'MessageBody')).toBe(false);
  });

  test('a non-JSON body never matches a body policy', () => {
    expect(matchesFilterPolicy({ a: ['b'] }, { body: 'not json' }, 'MessageBody' as FilterPolicyScope)).toBe(false);
  });

  test('no policy accepts everything', () => {
    expect(matchesFilterPolicy(undefined, {})).toBe(true);
    expect(matchesFilterPolicy({}, { body: 'x' }, 'MessageBody')).toBe(true);
    expect(matchesFilterPolicy('{"a":["b"]}', { attributes: { a: str('b') } })).toBe(true);
  });

  test('published attributes (DataType/StringValue) are accepted as well as delivered ones', () => {
    expect(matchesFilterPolicy({ tier: ['gold'] }, { attributes: { tier: { DataType: 'String', StringValue: 'gold' } } })).toBe(true);
  });
});

describe('event-source filter patterns (Lambda, EventBridge semantics)', () => {
  const record = {
    eventName: 'MODIFY',
    dynamodb: { NewImage: { uid: { S: 'u1' }, awaiting: { SS: ['Step1'] } }, OldImage: { uid: { S: 'u1' } } },
  };
  test.each<[string, Record<string, unknown>, boolean]>([
    ['eventName', { eventName: ['INSERT', 'MODIFY'] }, true],
    ['eventName mismatch', { eventName: ['REMOVE'] }, false],
    ['leaf exists under NewImage', { dynamodb: { NewImage: { awaiting: { SS: [{ exists: true }] } } } }, true],
    ['leaf absent under OldImage', { dynamodb: { OldImage: { awaiting: { SS: [{ exists: true }] } } } }, false],
    ['absent leaf with exists false', { dynamodb: { OldImage: { awaiting: { SS: [{ exists: false }] } } } }, true],
    ['wildcard', { dynamodb: { NewImage: { uid: { S: [{ wildcard: 'u*' }] } } } }, true],
  ])('%s', (_, pattern, expected) => {
    expect(matchesPattern(pattern, record)).toBe(expected);
  });
});
