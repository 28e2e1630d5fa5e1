/**
 * Fuzz: the BUNDLED handlers (assets/handlers: the six of every run, plugin-registrar, stuck-runs and
 * queue-bridge) against malformed and hostile events, with a real run in DynamoDB Local and ScriptedAws for
 * Step Functions, SNS, Lambda and EventBridge (no SQS: a message the bridge sent would fail its event).
 *
 * Every event comes from one seeded generator (Park-Miller, a fixed seed per handler), so a failure reproduces
 * exactly. Per handler:
 * - structural garbage: undefined, null, scalars, arrays, 1 MB strings, 10,000-deep arrays/objects,
 *   `__proto__`/`constructor`/`prototype` objects at the top level;
 * - "one field wrong": a VALID event aimed at the seeded run (or, for start-run, at a new uid), with
 *   1-3 of the fields the contract checks replaced by a wrong value (wrong type, missing, blank,
 *   over-long, 1 MB, deep, prototype-polluting objects), the remaining fields decorated with
 *   unicode/emoji/control characters and extra hostile keys. Accepted, each of these events would
 *   write (start a stage, create a run, record an outcome), so "nothing written" is a real check.
 *
 * Asserted: every rejection is a NAMED error of the handler's documented classes
 * (lambda/shared/errors.ts, DESIGN.md "Handler contracts") — never TypeError, RangeError or a bare
 * Error/SDK error; events the contract rejects are rejected with the handler's validation error
 * before any request; nothing is written to the status or plugin table (full scans before/after);
 * ScriptedAws recorded no Step Functions, SNS or Lambda call; Object/Array/Function prototypes are not
 * polluted; and the seeded run still completes afterwards (the handlers and the process survived).
 * Unhandled rejections: jest fails the running test on any (verified), and every handler promise
 * here is awaited, with a macrotask turn after each event so a stray rejection lands in its test.
 *
 * Content the handlers cannot store or look up (1 MB or 10,000-deep metadata, lone surrogates,
 * activity names that are Object.prototype members, oversized task tokens, ...) is also tested case by
 * case below, each with the limit its error must name (DESIGN.md "Handler contracts", input limits);
 * every one of them was a product bug found by this file (a DynamoDB, Type or Range error, or a
 * corrupt document), and each case says what used to happen.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { DescribeTableCommand, DynamoDBClient, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { invocationOutcome, parseDestinationRecord } from '../../lambda/plugin-outcome';
import { activityTopicOf, parseCloudTrailEvent } from '../../lambda/plugin-registrar';
import { OPEN_RUNS_INDEX, OPEN_SHARD_ATTRIBUTE, OPENED_AT_ATTRIBUTE } from '../../lambda/shared/open-runs';
import { pluginDelivery } from '../../lambda/shared/plugin-delivery';
import { snsEnvelope } from '../../lambda/shared/status';
import {
  parseParallelStageEvent, parseSequentialStageEvent, parseStageFailureEvent, parseStartRunEvent, parseStreamEvent,
} from '../../lambda/shared/validation';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';
import { Harness } from '../support/harness';

// ---------------------------------------------------------------------------------------------
// Deterministic generator

/** Park-Miller "minimal standard" generator: exact in doubles, no bitwise tricks; same seed, same events. */
class Random {
  private state: number;
  constructor(seed: number) { this.state = (seed % 2147483646) + 1; }
  public next(): number {
    this.state = (this.state * 48271) % 2147483647;
    return (this.state - 1) / 2147483646;
  }
  public int(n: number): number { return Math.floor(this.next() * n); }
  public pick<T>(list: readonly T[]): T { return list[this.int(list.length)]; }
  public chance(p: number): boolean { return this.next() < p; }
}

/** A generated event and what was done to it (for failure messages). */
interface FuzzEvent {
  readonly label: string;
  readonly event: unknown;
}

/** A hostile value and its short description; `MISSING` deletes the field. */
interface Hostile {
  readonly label: string;
  readonly make: () => unknown;
}
const MISSING = Symbol('missing');

const MB = 1024 * 1024;
const HUGE = 'x'.repeat(MB);
/** 4-byte UTF-8 characters: 1 MB on the wire, 512 K UTF-16 code units. */
const HUGE_EMOJI = '💥'.repeat(MB / 4);
const DEPTH = 10_000;

function nest(depth: number, wrap: (inner: unknown) => unknown, leaf: unknown = 'leaf'): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = wrap(value);
  return value;
}
const DEEP_ARRAY = nest(DEPTH, (v) => [v]);
const DEEP_OBJECT = nest(DEPTH, (v) => ({ a: v }));
/** The JSON text of a 10,000-deep array (JSON.stringify itself would overflow the stack). */
const DEEP_JSON = `${'['.repeat(DEPTH)}1${']'.repeat(DEPTH)}`;

/** As JSON.parse builds it from a Lambda event: `__proto__` etc. are OWN properties. */
const protoObject = () => JSON.parse('{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"prototype":{"polluted":"yes"}}');

const h = (label: string, make: () => unknown): Hostile => ({ label, make });
const constant = (label: string, value: unknown): Hostile => h(label, () => value);

const WRONG_TYPES: Hostile[] = [
  constant('null', null), constant('true', true), constant('false', false), constant('0', 0), constant('-1', -1),
  constant('3.14', 3.14), constant('1e308', 1e308), constant('[]', []), constant('["x"]', ['x']), constant('{}', {}),
  constant('{S:"x"}', { S: 'x' }), constant('deep array', DEEP_ARRAY), constant('deep object', DEEP_OBJECT),
  h('__proto__ object', protoObject),
];
const BLANK_STRINGS: Hostile[] = [
  constant('""', ''), constant('" "', ' '), constant('"\\t\\n\\r "', '\t\n\r '), constant('"\\u00a0\\ufeff\\u2028"', '\u00a0\ufeff\u2028'),
];
const OVERLONG_STRINGS: Hostile[] = [
  constant('1025 chars', 'k'.repeat(1025)), constant('1 MB', HUGE), constant('1 MB emoji', HUGE_EMOJI),
  constant('2000 NULs', '\u0000'.repeat(2000)), constant('1024 "Ω" (2048 UTF-8 bytes)', 'Ω'.repeat(1024)),
];
/** Not Unicode: DynamoDB would store U+FFFD, so two such keys could name one item. */
const LONE_SURROGATES: Hostile[] = [constant('lone high surrogate', 'a\uD800b'), constant('lone low surrogate', '\uDFFFz')];
const MISSING_VALUE: Hostile = constant('missing', MISSING);
/** Wrong for any required non-empty key string of at most 1024 characters. */
const BAD_KEY: Hostile[] = [...WRONG_TYPES, ...BLANK_STRINGS, ...OVERLONG_STRINGS, ...LONE_SURROGATES, MISSING_VALUE];

/** Valid strings with hostile content: only ever used next to a field that makes the event invalid. */
const NASTY_STRINGS = [
  '💥', '👩‍👩‍👧‍👦', 'a\u0000b', '\u0001\u0002\u001f\u007f', '\u202Eevil', '\ufeffbom', 'line\u2028sep', '__proto__', 'constructor',
  'prototype', 'toString', 'hasOwnProperty', '#n0', ':v0', 'a.b[0]', 'Act|async', "' OR 1=1 --", '${jndi:ldap://x}', '\\u0000',
  'null', '\uD800', '\uDFFF\uD800', 'Ω≈ç√∫', '\u200b',
];
const NASTY_KEYS = ['__proto__', 'constructor', 'prototype', '💥', '\u0000', '', 'toString', 'valueOf', 'hasOwnProperty'];

function withValue(base: Record<string, any>, path: readonly string[], value: unknown): void {
  let target: any = base;
  for (const segment of path.slice(0, -1)) target = target[segment];
  const last = path[path.length - 1];
  if (value === MISSING) delete target[last];
  else Object.defineProperty(target, last, { value, enumerable: true, writable: true, configurable: true });
}

const isObjectLike = (value: unknown) => typeof value === 'object' && value !== null;

function valueAt(base: unknown, path: readonly string[]): unknown {
  let target: any = base;
  for (const segment of path) {
    if (typeof target !== 'object' || target === null) return undefined;
    target = target[segment];
  }
  return target;
}

/** One field the contract checks, with values that are wrong for it. */
interface Field {
  readonly path: readonly string[];
  readonly wrong: readonly Hostile[];
}

interface FuzzSpec {
  readonly seed: number;
  readonly count: number;
  /** A valid event (fresh object each call). */
  readonly base: () => Record<string, any>;
  readonly fields: readonly Field[];
  /** Valid string fields that may carry hostile content next to the wrong ones. */
  readonly decorate?: readonly (readonly string[])[];
}

const TOP_LEVEL_GARBAGE: Hostile[] = [
  constant('undefined', undefined), ...WRONG_TYPES, constant('""', ''), constant('"1 MB"', HUGE), constant('"{}"', '{}'),
  constant('[[],[]]', [[], []]), constant('[{}]', [{}]), h('array of __proto__ objects', () => [protoObject(), protoObject()]),
  constant('1 MB emoji string', HUGE_EMOJI), constant('deep JSON text', DEEP_JSON),
];

/** Top-level garbage, then valid events with 1-3 wrong fields. */
function generate(spec: FuzzSpec): FuzzEvent[] {
  const random = new Random(spec.seed);
  const events: FuzzEvent[] = TOP_LEVEL_GARBAGE.map((value) => ({ label: `top level ${value.label}`, event: value.make() }));
  while (events.length < spec.count) {
    const event = spec.base();
    const changes: string[] = [];
    const wrongCount = 1 + random.int(3);
    const chosen: Field[] = [];
    for (let i = 0; i < wrongCount * 4 && chosen.length < wrongCount; i++) {
      const field = random.pick(spec.fields);
      // Never a field inside another chosen one (the parent may no longer be an object).
      const related = chosen.some((c) => c.path.join('.').startsWith(field.path.join('.')) || field.path.join('.').startsWith(c.path.join('.')));
      if (!related) chosen.push(field);
    }
    // Parents first, so a child is only changed while its parent is still the base object.
    chosen.sort((a, b) => a.path.length - b.path.length);
    for (const field of chosen) {
      if (!isObjectLike(valueAt(event, field.path.slice(0, -1)))) continue;
      const wrong = random.pick(field.wrong);
      withValue(event, field.path, wrong.make());
      changes.push(`${field.path.join('.')}=${wrong.label}`);
    }
    for (const path of spec.decorate ?? []) {
      const changed = chosen.some((c) => c.path.join('.') === path.join('.'));
      if (changed || !random.chance(0.3) || !isObjectLike(valueAt(event, path.slice(0, -1)))) continue;
      const nasty = random.pick(NASTY_STRINGS);
      withValue(event, path, nasty);
      changes.push(`${path.join('.')}=${JSON.stringify(nasty)}`);
    }
    if (random.chance(0.3)) {
      const key = random.pick(NASTY_KEYS);
      withValue(event, [key], random.chance(0.5) ? protoObject() : random.pick(NASTY_STRINGS));
      changes.push(`extra key ${JSON.stringify(key)}`);
    }
    if (changes.length === 0 || !chosen.length) throw new Error('generator: no wrong field applied');
    events.push({ label: `#${events.length} ${changes.join(', ')}`, event });
  }
  return events;
}

// ---------------------------------------------------------------------------------------------
// The run every event aims at

const WORKFLOW = 'Fuzz';
const SEEDED_UID = 'fuzz-seeded-run';
/** Act: pre done, parallel waiting for AsyncP (token held), post not started. Other: nothing started. */
const ACTIVITIES = ['Act', 'Other'];
const SEED_TOKEN = 'seed-token';

type AnyHandler = (event: unknown) => Promise<any>;
interface OutcomeResult { recorded: boolean; reason?: string }

let harness: Harness;
let pluginOutcome: AnyHandler;
let asyncSubscription: string;
/** The SNS event parallel-stage published for the seeded run, as AsyncP received it. */
let asyncDelivery: Record<string, any>;

beforeAll(async () => {
  harness = await Harness.create('fuzz');
  pluginOutcome = jest.requireActual<{ handler: AnyHandler }>(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-outcome', 'index.js')).handler;
  await harness.registerPlugin({ activity: 'Act', stage: 'pre', name: 'PreP' });
  await harness.registerPlugin({ activity: 'Act', stage: 'post', name: 'PostP' });
  asyncSubscription = `${harness.topicArn('Act-parallel')}:${randomUUID()}`;
  await harness.db.send(new PutCommand({
    TableName: harness.pluginTable,
    Item: {
      orchestratorId: 'Act|async',
      subscriptionArn: asyncSubscription,
      functionName: 'AsyncP',
      functionArn: harness.functionArn('AsyncP'),
      pluginName: 'AsyncP',
      mandatory: true,
      order: 90,
      source: 'cdk',
    },
  }));
  harness.fake.onInvoke('PreP', () => ({ ok: true }));
  harness.fake.onInvoke('PostP', () => ({ ok: true }));

  await harness.handlers.startRun({ input: { uid: SEEDED_UID, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: ACTIVITIES });
  await harness.handlers.sequentialStage(sequentialBase('pre'));
  await harness.handlers.parallelStage({ ...parallelBase(), activity: 'Act', token: SEED_TOKEN });
  const [published] = harness.fake.published();
  asyncDelivery = snsEnvelope({
    body: published.message,
    topicArn: published.topicArn,
    subscriptionArn: asyncSubscription,
    attributes: published.attributes as never,
    messageId: randomUUID(),
    now: new Date().toISOString(),
  }) as unknown as Record<string, any>;
  const seeded = await harness.item(SEEDED_UID, WORKFLOW);
  expect(seeded?.activities.Act.async.status).toMatchObject({ state: 'In Progress', token: SEED_TOKEN });
  expect(seeded?.activities.Act.async.mandatory.AsyncP.state).toBe('Not Started');
  // The fuzz starts from a quiet stream and no recorded calls.
  await harness.stream.read();
  harness.fake.clearCalls();
});
afterAll(async () => harness?.close());

const sequentialBase = (stage = 'post') => ({
  uid: SEEDED_UID, workflow: WORKFLOW, activity: 'Act', stage, topicArn: harness.topicArn('Act-post'), maxAttempts: 3,
});
const parallelBase = () => ({
  uid: SEEDED_UID, workflow: WORKFLOW, activity: 'Other', stage: 'async', topicArn: harness.topicArn('Other-parallel'), token: 'fuzz-token',
});
const failureBase = () => ({
  uid: SEEDED_UID, workflow: WORKFLOW, activity: 'Act', error: { Error: 'States.Timeout', Cause: 'the fuzz says so' },
});
/** A destination record that, valid, records AsyncP `Complete` on the seeded run. */
const outcomeBase = () => ({
  version: '1.0',
  timestamp: new Date().toISOString(),
  requestContext: { requestId: randomUUID(), functionArn: `${harness.functionArn('AsyncP')}:$LATEST`, condition: 'Success', approximateInvokeCount: 1 },
  requestPayload: structuredClone(asyncDelivery),
  responseContext: { statusCode: 200, executedVersion: '$LATEST' },
  responsePayload: { ok: true },
});
let ghost = 0;
/** A stream record shaped like DynamoDB's for an item that does not exist (no token: nothing to answer). */
const streamBase = () => {
  const uid = { S: `ghost-${++ghost}` };
  const workflow = { S: WORKFLOW };
  const entry = { M: { AsyncP: { M: { state: { S: 'Complete' } } } } };
  const stage = (state: string) => ({ M: { status: { M: { state: { S: state } } }, mandatory: entry, optional: { M: {} } } });
  return {
    Records: [{
      eventID: randomUUID(),
      eventName: 'MODIFY',
      eventVersion: '1.1',
      eventSource: 'aws:dynamodb',
      awsRegion: 'us-east-1',
      eventSourceARN: 'arn:aws:dynamodb:us-east-1:123456789012:table/fuzz/stream/local',
      dynamodb: {
        Keys: { uid, workflow },
        SequenceNumber: '1',
        SizeBytes: 100,
        StreamViewType: 'NEW_AND_OLD_IMAGES',
        NewImage: {
          uid,
          workflow,
          awaiting: { SS: ['Act'] },
          status: { M: { state: { S: 'In Progress' } } },
          activities: { M: { Act: { M: { status: { M: { state: { S: 'In Progress' } } }, pre: stage('Complete'), async: stage('In Progress'), post: stage('Not Started') } } } },
        },
      },
    }],
  };
};

// ---------------------------------------------------------------------------------------------
// What must hold around every fuzz batch

/** Both tables, every item, in key order, as text (Sets as sorted arrays). */
async function tables(): Promise<string> {
  const scan = async (table: string) => {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await harness.db.send(new ScanCommand({ TableName: table, ConsistentRead: true, ExclusiveStartKey: start }));
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items.map((item) => JSON.stringify(item, (_k, v) => (v instanceof Set ? [...v].sort() : v))).sort();
  };
  return JSON.stringify({ status: await scan(harness.statusTable), plugins: await scan(harness.pluginTable) });
}

const PROTOTYPES = [Object.prototype, Array.prototype, Function.prototype, String.prototype];
const prototypeShape = () => PROTOTYPES.map((proto) => Object.getOwnPropertyNames(proto).sort().join(','));

function expectNoPollution(before: string[]): void {
  expect(prototypeShape()).toEqual(before);
  const probe = {} as Record<string, unknown>;
  expect(probe.polluted).toBeUndefined();
  expect(([] as unknown as Record<string, unknown>).polluted).toBeUndefined();
}

/** Services other than DynamoDB that a handler called. */
const sideCalls = () => harness.fake.calls.filter((call) => call.service !== 'dynamodb').map((call) => `${call.service}:${call.action}`);

interface Verdict {
  /** The error names this handler may reject this event with. */
  readonly allowed: readonly string[];
  /** May the handler resolve (e.g. a record it logs and ignores)? */
  readonly mayResolve?: (result: unknown) => boolean;
  /** May it send DynamoDB requests (reads, or conditional writes that are refused)? */
  readonly mayReachDynamoDb?: boolean;
}

const describeValue = (value: unknown) => {
  try {
    return (JSON.stringify(value) ?? String(value)).slice(0, 200);
  } catch {
    return String(value).slice(0, 200);
  }
};

/** Sends every event; returns the problems (empty: all good). Counts per outcome for the report. */
async function fuzz(name: string, handler: AnyHandler, events: readonly FuzzEvent[], verdict: (event: FuzzEvent) => Verdict) {
  const problems: string[] = [];
  const outcomes: Record<string, number> = {};
  const before = await tables();
  const prototypes = prototypeShape();
  harness.fake.clearCalls();
  for (const fuzzEvent of events) {
    const expected = verdict(fuzzEvent);
    const callsBefore = harness.fake.calls.length;
    let outcome: string;
    try {
      const result = await handler(fuzzEvent.event);
      outcome = 'resolved';
      if (!expected.mayResolve?.(result)) problems.push(`${fuzzEvent.label}: resolved ${describeValue(result)}, expected ${expected.allowed.join('|')}`);
    } catch (error) {
      const named = error as Error;
      outcome = named?.name ?? typeof error;
      if (!(named instanceof Error) || !expected.allowed.includes(named.name)) {
        problems.push(`${fuzzEvent.label}: threw ${outcome}: ${String(named?.message).slice(0, 200)}; expected ${expected.allowed.join('|')}`);
      }
    }
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    if (!expected.mayReachDynamoDb && harness.fake.calls.length > callsBefore) {
      problems.push(`${fuzzEvent.label}: sent ${harness.fake.calls.slice(callsBefore).map((c) => c.action).join(', ')} before rejecting`);
    }
    // A macrotask turn: a rejection nobody awaited surfaces now, inside this test.
    await new Promise((resolve) => setImmediate(resolve));
  }
  counts[name] = (counts[name] ?? 0) + events.length;
  // Several batches of one handler add up.
  for (const [outcome, n] of Object.entries(outcomes)) (results[name] ??= {})[outcome] = (results[name][outcome] ?? 0) + n;
  expect(problems).toEqual([]);
  expect(sideCalls()).toEqual([]);
  expect(await tables()).toBe(before);
  expectNoPollution(prototypes);
  return outcomes;
}

/** Events sent per handler (printed at the end: the report's numbers). */
const counts: Record<string, number> = {};
/** How each handler answered them (error name or `resolved`). */
const results: Record<string, Record<string, number>> = {};
afterAll(() => {
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  // eslint-disable-next-line no-console
  console.log(`fuzz events per handler: ${JSON.stringify(counts)}; total ${total}\noutcomes: ${JSON.stringify(results, null, 1)}`);
});

const EVENTS_PER_HANDLER = 200;
const rejectsWith = (...allowed: string[]): Verdict => ({ allowed });

// ---------------------------------------------------------------------------------------------
// Contract violations: the validation error, before any request, nothing written

test('control: every base event is valid, so each rejection below comes from the fields the generator broke', () => {
  expect(() => parseStartRunEvent({ input: { uid: 'u', metadata: { region: 'EU', workflow: WORKFLOW }, metadataOverride: false }, workflow: WORKFLOW, activities: ['Act', 'Other'], retentionDays: 30 })).not.toThrow();
  expect(() => parseSequentialStageEvent(sequentialBase())).not.toThrow();
  expect(() => parseParallelStageEvent(parallelBase())).not.toThrow();
  expect(() => parseStageFailureEvent(failureBase())).not.toThrow();
  expect(() => parseStreamEvent(streamBase())).not.toThrow();
  const record = parseDestinationRecord(outcomeBase());
  expect(pluginDelivery(record.requestPayload)).toMatchObject({ uid: SEEDED_UID, workflow: WORKFLOW, activity: 'Act', stage: 'async', subscriptionArn: asyncSubscription });
  expect(invocationOutcome(record)).toEqual({ state: 'Complete' });
});

describe('malformed events are rejected with a named error and change nothing', () => {
  test('start-run', async () => {
    let n = 0;
    const events = generate({
      seed: 0x5eed0001,
      count: EVENTS_PER_HANDLER,
      // Valid, this would CREATE a run (a new uid each time).
      base: () => ({ input: { uid: `fuzz-new-${++n}`, metadata: { region: 'EU', workflow: WORKFLOW }, metadataOverride: false }, workflow: WORKFLOW, activities: ['Act', 'Other'], retentionDays: 30 }),
      fields: [
        { path: ['workflow'], wrong: BAD_KEY },
        { path: ['input'], wrong: [...WRONG_TYPES.filter((w) => !['{}', '{S:"x"}', 'deep object', '__proto__ object'].includes(w.label)), MISSING_VALUE, constant('"uid"', 'uid')] },
        { path: ['input', 'uid'], wrong: BAD_KEY },
        {
          path: ['input', 'metadata'],
          wrong: [...WRONG_TYPES.filter((w) => !['{}', '{S:"x"}'].includes(w.label)), constant('"x"', 'x'), constant('1 MB field', { blob: HUGE }),
            constant('33 levels', { deep: nest(31, (v) => ({ a: v })) }), constant('empty field name', { '': 1 }),
            h('nested __proto__ field', () => JSON.parse('{"a":[{"__proto__":{"polluted":"yes"}}]}')), constant('1e308', { n: 1e308 }),
            constant('1e-200', { n: 1e-200 }), constant('lone surrogate value', { s: '\uD800' })],
        },
        { path: ['input', 'metadata', 'workflow'], wrong: [constant('"Other"', 'Other'), constant('""', ''), constant('0', 0), constant('null', null), constant('{}', {}), constant('1 MB', HUGE), constant('"fuzz"', 'fuzz')] },
        { path: ['input', 'metadataOverride'], wrong: [constant('"true"', 'true'), constant('1', 1), constant('null', null), constant('[]', []), constant('{}', {})] },
        {
          path: ['activities'],
          wrong: [
            ...WRONG_TYPES.filter((w) => w.label !== '["x"]' && w.label !== 'deep array'), MISSING_VALUE, constant('[""]', ['']), constant('[" "]', [' ']),
            constant('[1]', [1]), constant('[null]', [null]), constant('duplicates', ['Act', 'Act']), constant('256 chars', ['a'.repeat(256)]),
            constant('[1 MB]', [HUGE]), constant('[deep array]', [DEEP_ARRAY]), constant('[{}]', [{}]), constant('"Act"', 'Act'),
            constant('["__proto__"]', ['Act', '__proto__']), constant('["constructor"]', ['constructor']), constant('["toString"]', ['toString']),
            constant('[lone surrogate]', ['Act\uD800']),
          ],
        },
        {
          path: ['retentionDays'],
          wrong: [constant('0', 0), constant('-1', -1), constant('3651', 3651), constant('1.5', 1.5), constant('"30"', '30'), constant('null', null),
            constant('true', true), constant('[]', []), constant('{}', {}), constant('1e308', 1e308)],
        },
      ],
      decorate: [['input', 'uid'], ['workflow']],
    });
    await fuzz('start-run', harness.handlers.startRun, events, () => rejectsWith('InvalidRunInput'));
  });

  const STAGE_KEYS: Field[] = ['uid', 'workflow', 'activity', 'topicArn'].map((field) => ({ path: [field], wrong: BAD_KEY }));
  const STAGE_DECORATION = [['uid'], ['workflow'], ['activity'], ['topicArn']];

  test('sequential-stage', async () => {
    const events = generate({
      seed: 0x5eed0002,
      count: EVENTS_PER_HANDLER,
      // Valid, this would start Act's post stage and invoke PostP.
      base: sequentialBase,
      fields: [
        ...STAGE_KEYS,
        {
          path: ['stage'],
          wrong: [...WRONG_TYPES, MISSING_VALUE, constant('"PRE"', 'PRE'), constant('"async"', 'async'), constant('" post"', ' post'),
            constant('"post\\u0000"', 'post\u0000'), constant('"__proto__"', '__proto__'), constant('"constructor"', 'constructor'), constant('["post"]', ['post'])],
        },
        {
          path: ['maxAttempts'],
          wrong: [constant('0', 0), constant('-1', -1), constant('21', 21), constant('1.5', 1.5), constant('"3"', '3'), constant('null', null),
            constant('true', true), constant('[]', []), constant('[3]', [3]), constant('{}', {}), constant('1e308', 1e308), constant('-0', -0), MISSING_VALUE],
        },
      ],
      decorate: STAGE_DECORATION,
    });
    await fuzz('sequential-stage', harness.handlers.sequentialStage, events, () => rejectsWith('InvalidStageEvent'));
  });

  test('parallel-stage', async () => {
    const events = generate({
      seed: 0x5eed0003,
      count: EVENTS_PER_HANDLER,
      // Valid, this would start Other's parallel stage and answer the token.
      base: parallelBase,
      fields: [
        ...STAGE_KEYS,
        {
          path: ['stage'],
          wrong: [...WRONG_TYPES, MISSING_VALUE, constant('"ASYNC"', 'ASYNC'), constant('"pre"', 'pre'), constant('"async "', 'async '),
            constant('"parallel"', 'parallel'), constant('"__proto__"', '__proto__'), constant('["async"]', ['async'])],
        },
        {
          path: ['token'],
          wrong: [constant('""', ''), constant('null', null), constant('0', 0), constant('false', false), constant('[]', []), constant('{}', {}),
            constant('deep object', DEEP_OBJECT), h('__proto__ object', protoObject), MISSING_VALUE, constant('2049 chars', 't'.repeat(2049)), constant('1 MB', HUGE)],
        },
      ],
      decorate: [...STAGE_DECORATION, ['token']],
    });
    await fuzz('parallel-stage', harness.handlers.parallelStage, events, () => rejectsWith('InvalidStageEvent'));
  });

  test('stage-failure', async () => {
    const events = generate({
      seed: 0x5eed0004,
      count: EVENTS_PER_HANDLER,
      // Valid, this would record Error on Act's waiting parallel stage, the activity and the run.
      base: failureBase,
      fields: [
        ...['uid', 'workflow', 'activity'].map((field) => ({ path: [field], wrong: BAD_KEY })),
        {
          path: ['error'],
          wrong: [...WRONG_TYPES.filter((w) => w.label !== '{S:"x"}' && w.label !== 'deep object'), MISSING_VALUE, constant('"States.Timeout"', 'States.Timeout'),
            constant('{}', {}), constant('{Cause}', { Cause: 'x' }), constant('{Error:""}', { Error: '' }), constant('{Error:1}', { Error: 1 }),
            constant('{Error:null}', { Error: null }), constant('{Error:[]}', { Error: ['States.Timeout'] }), h('{Error:__proto__}', () => ({ Error: protoObject() }))],
        },
        { path: ['error', 'Error'], wrong: [constant('""', ''), constant('null', null), constant('0', 0), constant('{}', {}), constant('deep array', DEEP_ARRAY), MISSING_VALUE] },
        { path: ['error', 'Cause'], wrong: [constant('0', 0), constant('true', true), constant('{}', {}), constant('[]', []), constant('deep object', DEEP_OBJECT), h('__proto__ object', protoObject)] },
      ],
      decorate: [['uid'], ['workflow'], ['activity'], ['error', 'Cause']],
    });
    await fuzz('stage-failure', harness.handlers.stageFailure, events, () => rejectsWith('InvalidFailureEvent'));
  });

  test('plugin-outcome', async () => {
    const message = (change: (body: Record<string, unknown>) => void, deep = false) => () => {
      const body = JSON.parse(asyncDelivery.Records[0].Sns.Message) as Record<string, unknown>;
      change(body);
      const text = JSON.stringify(body);
      return deep ? text.replace('"__DEEP__"', DEEP_JSON) : text;
    };
    const messageField = (field: string) => [
      h(`${field} missing`, message((b) => { delete b[field]; })), h(`${field} ""`, message((b) => { b[field] = ''; })),
      h(`${field} 0`, message((b) => { b[field] = 0; })), h(`${field} null`, message((b) => { b[field] = null; })),
      h(`${field} []`, message((b) => { b[field] = []; })), h(`${field} deep`, message((b) => { b[field] = '__DEEP__'; }, true)),
      h(`${field} {}`, message((b) => { b[field] = {}; })), h(`${field} 100 KB`, message((b) => { b[field] = 'k'.repeat(100_000); })),
      h(`${field} lone surrogate`, message((b) => { b[field] = 'x\uD800'; })),
    ];
    const events = generate({
      seed: 0x5eed0005,
      count: EVENTS_PER_HANDLER,
      base: outcomeBase,
      fields: [
        { path: ['requestContext'], wrong: [...WRONG_TYPES.filter((w) => w.label !== '__proto__ object'), MISSING_VALUE, constant('"Success"', 'Success')] },
        // Strings Lambda never sends are logged and ignored (resolved, nothing recorded).
        { path: ['requestContext', 'condition'], wrong: [...WRONG_TYPES, MISSING_VALUE, constant('"Bogus"', 'Bogus'), constant('""', ''), constant('"success"', 'success')] },
        { path: ['requestContext', 'functionArn'], wrong: [...WRONG_TYPES, MISSING_VALUE] },
        {
          path: ['requestPayload'],
          wrong: [...WRONG_TYPES, MISSING_VALUE, constant('{Records:"x"}', { Records: 'x' }), constant('{Records:[]}', { Records: [] }),
            constant('{Records:[null]}', { Records: [null] }), constant('{Records:[{}]}', { Records: [{}] }), constant('{Records:[deep]}', { Records: [DEEP_OBJECT] })],
        },
        {
          path: ['requestPayload', 'Records', '0', 'Sns', 'Message'],
          wrong: [...WRONG_TYPES, MISSING_VALUE, constant('"{"', '{'), constant('1 MB', HUGE), constant('1 MB emoji', HUGE_EMOJI), constant('"[]"', '[]'),
            constant('"null"', 'null'), constant('"1"', '1'), constant('"\\"x\\""', '"x"'), constant('deep JSON', DEEP_JSON),
            constant('__proto__ JSON', '{"__proto__":{"polluted":"yes"},"uid":{"__proto__":1}}'),
            ...messageField('uid'), ...messageField('workflow'), ...messageField('activity'),
            h('stage pre', message((b) => { b.stage = 'pre'; })), h('stage post', message((b) => { b.stage = 'post'; })),
            h('stage ASYNC', message((b) => { b.stage = 'ASYNC'; })), h('stage __proto__', message((b) => { b.stage = '__proto__'; })),
            h('stage constructor', message((b) => { b.stage = 'constructor'; })), ...messageField('stage')],
        },
        {
          path: ['requestPayload', 'Records', '0', 'EventSubscriptionArn'],
          wrong: [...WRONG_TYPES, MISSING_VALUE, constant('unknown subscription', `${harness.topicArn('Act-parallel')}:not-registered`),
            constant('__proto__', '__proto__'), constant('💥', '💥'), constant('""', ''), constant('1 MB', HUGE), constant('1025 chars', 'a'.repeat(1025)),
            constant('lone surrogate', 'arn\uD800')],
        },
      ],
      decorate: [['requestContext', 'functionArn'], ['responsePayload']],
    });
    const outcomes = await fuzz('plugin-outcome', pluginOutcome, events, () => ({
      allowed: ['InvalidOutcomeEvent'],
      // A record that is not about a plugin message is logged and ignored: resolved, nothing recorded.
      mayResolve: (result) => (result as OutcomeResult)?.recorded === false,
      mayReachDynamoDb: true,
    }));
    expect(outcomes.InvalidOutcomeEvent).toBeGreaterThan(0);
    expect(outcomes.resolved).toBeGreaterThan(0);
  });

  test('status-summary', async () => {
    const attributeGarbage = [
      constant('"x"', 'x'), constant('1', 1), constant('[]', []), constant('{}', {}), constant('{L:[]}', { L: [] }), constant('{N:"x"}', { N: 'x' }),
      constant('{M:"x"}', { M: 'x' }), constant('{S:1}', { S: 1 }), constant('{SS:[]}', { SS: [] }), constant('{BOOL:"yes"}', { BOOL: 'yes' }),
      constant('{S:1 MB}', { S: HUGE }), h('{M:__proto__}', () => ({ M: JSON.parse('{"__proto__":{"S":"x"},"constructor":{"S":"y"}}') })), MISSING_VALUE,
      constant('null', null), constant('{M:null}', { M: null }), constant('{L:"x"}', { L: 'x' }), constant('{SS:[1]}', { SS: [1] }),
      constant('10,000-deep M', nest(DEPTH, (v) => ({ M: { a: v } }), { S: 'x' })),
    ];
    const events = generate({
      seed: 0x5eed0006,
      count: EVENTS_PER_HANDLER,
      base: streamBase,
      fields: [
        { path: ['Records'], wrong: [...WRONG_TYPES.filter((w) => w.label !== '[]'), MISSING_VALUE, constant('[null]', [null]), constant('[1]', [1]), constant('[[]]', [[]]), constant('[{}]', [{}])] },
        // No MISSING here: a hole in an array cannot come from a JSON event.
        { path: ['Records', '0'], wrong: WRONG_TYPES.filter((w) => w.label !== '{}' && w.label !== '__proto__ object' && w.label !== 'deep object') },
        { path: ['Records', '0', 'dynamodb'], wrong: [...WRONG_TYPES.filter((w) => !['{}', '{S:"x"}', 'deep object', '__proto__ object'].includes(w.label)), MISSING_VALUE] },
        { path: ['Records', '0', 'dynamodb', 'Keys'], wrong: [...WRONG_TYPES.filter((w) => w.label !== 'null'), MISSING_VALUE] },
        { path: ['Records', '0', 'dynamodb', 'Keys', 'uid'], wrong: attributeGarbage },
        { path: ['Records', '0', 'dynamodb', 'NewImage'], wrong: [constant('"x"', 'x'), constant('1', 1), constant('[]', []), constant('{}', {}), MISSING_VALUE] },
        { path: ['Records', '0', 'dynamodb', 'NewImage', 'uid'], wrong: attributeGarbage },
        { path: ['Records', '0', 'dynamodb', 'NewImage', 'awaiting'], wrong: [...attributeGarbage, constant('{SS:[1,2]}', { SS: [1, 2] }), constant('{SS:["Nope"]}', { SS: ['Nope'] }), constant('{SS:["__proto__"]}', { SS: ['__proto__'] })] },
        { path: ['Records', '0', 'dynamodb', 'NewImage', 'activities'], wrong: attributeGarbage },
        { path: ['Records', '0', 'dynamodb', 'NewImage', 'activities', 'M', 'Act'], wrong: attributeGarbage },
        { path: ['Records', '0', 'dynamodb', 'NewImage', 'activities', 'M', 'Act', 'M', 'async'], wrong: attributeGarbage },
        { path: ['Records', '0', 'eventName'], wrong: [constant('null', null), constant('"DROP"', 'DROP'), constant('1 MB', HUGE)] },
      ],
    });
    await fuzz('status-summary', harness.handlers.statusSummary, events, () => ({
      allowed: ['InvalidStreamEvent', 'StatusSummaryFailed'],
      // Records it cannot use are skipped; writes for an item that does not exist are refused.
      mayResolve: () => true,
      mayReachDynamoDb: true,
    }));
  });
});

// ---------------------------------------------------------------------------------------------
// The handlers of run-time registration, stuck-run detection and queue plugins

describe('plugin-registrar, stuck-runs, queue-bridge: malformed events are rejected with a named error (or ignored) and change nothing', () => {
  /** Harness.topicArn names topics `orchestrator-<name>`: the registrar's orchestrator is `orchestrator`. */
  const ORCHESTRATOR = 'orchestrator';
  const load = (name: string) => jest.requireActual<{ handler: AnyHandler }>(join(__dirname, '..', '..', 'assets', 'handlers', name, 'index.js')).handler;
  let registrar: AnyHandler;
  let stuckRuns: AnyHandler;
  let queueBridge: AnyHandler;

  beforeAll(async () => {
    Object.assign(process.env, {
      ORCHESTRATOR_NAME: ORCHESTRATOR,
      PLUGIN_TAG: `cdk-orchestrator:${ORCHESTRATOR}=plugin`,
      HANDSHAKE_TIMEOUT_SECONDS: '1',
      // Nothing in these tables is a day old: a sweep that reported a run would have written.
      STUCK_AFTER_SECONDS: String(24 * 3600),
      AWS_ENDPOINT_URL_EVENTBRIDGE: harness.fake.endpoint,
      // ScriptedAws answers no SQS request: a message sent by the bridge fails its event (and is reported).
      AWS_ENDPOINT_URL_SQS: harness.fake.endpoint,
    });
    // stuck-runs queries the open-run index (as src/private/stuck-run-detection.ts declares it).
    const raw = new DynamoDBClient({
      endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: process.env.AWS_REGION, credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
    });
    await raw.send(new UpdateTableCommand({
      TableName: harness.statusTable,
      AttributeDefinitions: [{ AttributeName: OPEN_SHARD_ATTRIBUTE, AttributeType: 'S' }, { AttributeName: OPENED_AT_ATTRIBUTE, AttributeType: 'S' }],
      GlobalSecondaryIndexUpdates: [{
        Create: {
          IndexName: OPEN_RUNS_INDEX,
          KeySchema: [{ AttributeName: OPEN_SHARD_ATTRIBUTE, KeyType: 'HASH' }, { AttributeName: OPENED_AT_ATTRIBUTE, KeyType: 'RANGE' }],
          Projection: { ProjectionType: 'KEYS_ONLY' },
        },
      }],
    }));
    for (let i = 0; i < 50; i++) {
      const table = await raw.send(new DescribeTableCommand({ TableName: harness.statusTable }));
      if (table.Table?.GlobalSecondaryIndexes?.every((index) => index.IndexStatus === 'ACTIVE')) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    raw.destroy();
    registrar = load('plugin-registrar');
    stuckRuns = load('stuck-runs');
    queueBridge = load('queue-bridge');
  });

  /** An EventBridge "AWS API Call via CloudTrail" event, as the registration rules deliver it. */
  const cloudTrail = (eventSource: string, eventName: string, requestParameters: Record<string, unknown>,
    responseElements: Record<string, unknown> = {},
  ) => ({
    'version': '0',
    'id': randomUUID(),
    'detail-type': 'AWS API Call via CloudTrail',
    'source': `aws.${eventSource.split('.')[0]}`,
    'account': '123456789012',
    'region': 'us-east-1',
    'detail': { eventVersion: '1.08', eventSource, eventName, awsRegion: 'us-east-1', requestParameters, responseElements },
  });
  const ENVELOPE: Field[] = [
    { path: ['detail-type'], wrong: [...WRONG_TYPES, ...BLANK_STRINGS, MISSING_VALUE, constant('"Scheduled Event"', 'Scheduled Event'), constant('"aws api call via cloudtrail"', 'aws api call via cloudtrail')] },
    { path: ['detail'], wrong: [...WRONG_TYPES, MISSING_VALUE, constant('"{}"', '{}')] },
    { path: ['detail', 'eventSource'], wrong: [...BAD_KEY, constant('"lambda.amazonaws.com"', 'lambda.amazonaws.com')] },
    { path: ['detail', 'eventName'], wrong: [...BAD_KEY, constant('"Publish"', 'Publish'), constant('"subscribe"', 'subscribe')] },
    { path: ['detail', 'requestParameters'], wrong: [...WRONG_TYPES.filter((w) => w.label !== 'null'), MISSING_VALUE, constant('"x"', 'x')] },
    // A call that failed registered nothing: ignored.
    { path: ['detail', 'errorCode'], wrong: [constant('"AccessDenied"', 'AccessDenied'), constant('1 MB', HUGE), constant('"\u0000"', '\u0000')] },
  ];
  const NOT_FUNCTION_ARNS: Hostile[] = [
    constant('an https endpoint', 'https://example.com/hook'), constant('a queue ARN', 'arn:aws:sqs:us-east-1:123456789012:queue'),
    constant('a 65-character function name', `arn:aws:lambda:us-east-1:123456789012:function:${'f'.repeat(65)}`),
    constant('a function name with a space', 'arn:aws:lambda:us-east-1:123456789012:function:bad name'),
  ];
  const registrarVerdict = (mayReachDynamoDb: boolean) => (): Verdict => ({
    allowed: ['InvalidRegistrationEvent'],
    mayResolve: (result) => (result as { outcome?: string })?.outcome === 'ignored',
    mayReachDynamoDb,
  });

  test('control: the base events are what each handler reads (so the rejections come from the broken fields)', () => {
    const topicArn = harness.topicArn('Act-parallel');
    const subscribe = cloudTrail('sns.amazonaws.com', 'Subscribe', { topicArn, protocol: 'lambda', endpoint: harness.functionArn('Joiner') }, { subscriptionArn: `${topicArn}:1` });
    expect(parseCloudTrailEvent(subscribe)).toMatchObject({ eventSource: 'sns.amazonaws.com', eventName: 'Subscribe' });
    expect(activityTopicOf(topicArn, ORCHESTRATOR)).toMatchObject({ activity: 'Act', stage: 'async' });
    expect(activityTopicOf(asyncSubscription.slice(0, asyncSubscription.lastIndexOf(':')), ORCHESTRATOR)).toMatchObject({ activity: 'Act', stage: 'async' });
    const message = asyncDelivery.Records[0].Sns.Message as string;
    expect(pluginDelivery(asyncDelivery)).toMatchObject({ uid: SEEDED_UID, activity: 'Act', stage: 'async', subscriptionArn: asyncSubscription });
    expect(pluginDelivery({ Records: [{ EventSubscriptionArn: 'arn:aws:sqs:us-east-1:123456789012:fuzz-dlq', Sns: { Message: message } }] }))
      .toMatchObject({ uid: SEEDED_UID, activity: 'Act', stage: 'async' });
  });

  test('plugin-registrar: Subscribe', async () => {
    const topicArn = harness.topicArn('Act-parallel');
    const events = generate({
      seed: 0x5eed0007,
      count: EVENTS_PER_HANDLER,
      // Valid, this would invoke Joiner's handshake and register it on Act's parallel stage.
      base: () => cloudTrail('sns.amazonaws.com', 'Subscribe',
        { topicArn, protocol: 'lambda', endpoint: harness.functionArn('Joiner'), attributes: { FilterPolicy: '{"region":["EU"]}' } },
        { subscriptionArn: `${topicArn}:${randomUUID()}` }),
      fields: [
        ...ENVELOPE,
        {
          path: ['detail', 'requestParameters', 'topicArn'],
          wrong: [...BAD_KEY, constant('another orchestrator\'s topic', 'arn:aws:sns:us-east-1:123456789012:others-Act-parallel'),
            constant('no stage suffix', harness.topicArn('Act')), constant('an unknown stage', harness.topicArn('Act-async')),
            constant('an activity name that is no name', harness.topicArn('Act.1-parallel')), constant('7 ARN parts', `${topicArn}:x`)],
        },
        { path: ['detail', 'requestParameters', 'protocol'], wrong: [...BAD_KEY, constant('"sqs"', 'sqs'), constant('"LAMBDA"', 'LAMBDA')] },
        { path: ['detail', 'requestParameters', 'endpoint'], wrong: [...BAD_KEY, ...NOT_FUNCTION_ARNS] },
        { path: ['detail', 'responseElements'], wrong: [...WRONG_TYPES, MISSING_VALUE] },
        {
          path: ['detail', 'responseElements', 'subscriptionArn'],
          wrong: [...BAD_KEY, constant('"pending confirmation"', 'pending confirmation'), constant('another topic\'s subscription', `${harness.topicArn('Other-parallel')}:${randomUUID()}`)],
        },
      ],
      decorate: [['detail', 'requestParameters', 'topicArn'], ['detail', 'responseElements', 'subscriptionArn']],
    });
    await fuzz('plugin-registrar', registrar, events, registrarVerdict(false));
  });

  test('plugin-registrar: Unsubscribe and UpdateFunctionCode', async () => {
    const unsubscribe = generate({
      seed: 0x5eed0008,
      count: EVENTS_PER_HANDLER / 2,
      // Valid, this would look up (and find no run-time item for) AsyncP's subscription: ignored.
      base: () => cloudTrail('sns.amazonaws.com', 'Unsubscribe', { subscriptionArn: asyncSubscription }),
      fields: [
        ...ENVELOPE,
        { path: ['detail', 'requestParameters', 'subscriptionArn'], wrong: [...BAD_KEY, constant('a topic ARN', harness.topicArn('Act-parallel')), constant('another orchestrator', 'arn:aws:sns:us-east-1:123456789012:others-Act-parallel:1')] },
      ],
    });
    const updateCode = generate({
      seed: 0x5eed0009,
      count: EVENTS_PER_HANDLER / 2,
      // Valid, this would look up PreP's registrations (deployed ones only: ignored).
      base: () => cloudTrail('lambda.amazonaws.com', 'UpdateFunctionCode20150331v2', { functionName: 'PreP' }),
      fields: [
        ...ENVELOPE,
        { path: ['detail', 'requestParameters', 'functionName'], wrong: [...BAD_KEY, ...NOT_FUNCTION_ARNS, constant('a partial ARN with a bad name', '123456789012:function:a b')] },
        { path: ['detail', 'responseElements', 'functionName'], wrong: [...OVERLONG_STRINGS, ...LONE_SURROGATES, ...NOT_FUNCTION_ARNS, constant('"a b"', 'a b')] },
      ],
    });
    // An Unsubscribe reaches DynamoDB only for a subscription of an activity topic; none of these is one.
    await fuzz('plugin-registrar', registrar, unsubscribe, registrarVerdict(false));
    // A function name that is valid (decorated fields stay valid) is looked up: reads only.
    await fuzz('plugin-registrar', registrar, updateCode, registrarVerdict(true));
  });

  test('stuck-runs: its input is ignored; each event is one sweep that finds nothing stuck', async () => {
    const events = generate({
      seed: 0x5eed000a,
      count: EVENTS_PER_HANDLER,
      // A scheduled event as EventBridge sends it (its content is ignored).
      base: () => ({ 'version': '0', 'id': randomUUID(), 'detail-type': 'Scheduled Event', 'source': 'aws.events', 'detail': {}, 'time': new Date().toISOString() }),
      fields: [
        { path: ['detail-type'], wrong: [...WRONG_TYPES, ...OVERLONG_STRINGS] },
        { path: ['detail'], wrong: [...WRONG_TYPES, constant('{"stuckAfterSeconds":0}', { stuckAfterSeconds: 0 }), constant('1 MB', HUGE)] },
        { path: ['time'], wrong: [...WRONG_TYPES, ...LONE_SURROGATES, constant('"1970-01-01T00:00:00Z"', '1970-01-01T00:00:00Z')] },
      ],
    });
    await fuzz('stuck-runs', stuckRuns, events, () => ({
      allowed: [],
      mayResolve: (result) => JSON.stringify(result) === JSON.stringify({ reported: 0, failed: 0 }),
      mayReachDynamoDb: true,
    }));
    // Each sweep did query the index (every shard), whatever the event.
    expect(harness.fake.calls.filter((call) => call.action === 'Query').length).toBeGreaterThanOrEqual(events.length);
  });

  test('queue-bridge: SNS deliveries and dead letters', async () => {
    const message = () => asyncDelivery.Records[0].Sns.Message as string;
    const deliveries = generate({
      seed: 0x5eed000b,
      count: EVENTS_PER_HANDLER,
      // AsyncP's delivery for the seeded run (AsyncP is no queue plugin: valid, it is looked up and skipped).
      base: () => structuredClone(asyncDelivery),
      fields: [
        { path: ['Records'], wrong: [...WRONG_TYPES, MISSING_VALUE, constant('[null]', [null]), constant('[1]', [1]), constant('[[]]', [[]])] },
        { path: ['Records', '0'], wrong: WRONG_TYPES.filter((w) => w.label !== 'deep object' && w.label !== '__proto__ object') },
        { path: ['Records', '0', 'EventSource'], wrong: [...BAD_KEY, constant('"aws:SNS"', 'aws:SNS')] },
        { path: ['Records', '0', 'EventSubscriptionArn'], wrong: [...BAD_KEY, constant('another subscription', `${harness.topicArn('Act-parallel')}:${randomUUID()}`)] },
        { path: ['Records', '0', 'Sns'], wrong: [...WRONG_TYPES, MISSING_VALUE] },
        {
          path: ['Records', '0', 'Sns', 'Message'],
          wrong: [...BAD_KEY, constant('not JSON', '{"uid":'), constant('deep JSON text', DEEP_JSON), constant('"null"', 'null'), constant('"[]"', '[]'),
            h('a pre-stage message', () => message().replace('"stage":"async"', '"stage":"pre"')),
            h('a uid that cannot be a key', () => JSON.stringify({ ...JSON.parse(message()), uid: HUGE })),
            h('an activity that is __proto__', () => JSON.stringify({ ...JSON.parse(message()), activity: '__proto__' }))],
        },
        { path: ['Records', '0', 'Sns', 'MessageAttributes'], wrong: [...WRONG_TYPES, h('a __proto__ attribute', () => JSON.parse('{"__proto__":{"Type":"String","Value":"x"}}'))] },
      ],
    });
    await fuzz('queue-bridge', queueBridge, deliveries, () => ({
      allowed: ['InvalidBridgeEvent'],
      mayResolve: (result) => {
        const enqueues = (result as { results?: { enqueued?: boolean }[] })?.results;
        return Array.isArray(enqueues) && enqueues.every((one) => one.enqueued === false);
      },
      mayReachDynamoDb: true,
    }));

    let n = 0;
    const deadLetters = generate({
      seed: 0x5eed000c,
      count: EVENTS_PER_HANDLER / 2,
      // A dead letter of AsyncP's message from a queue no plugin has: valid, it is looked up and ignored.
      base: () => ({
        Records: [{
          messageId: `dead-${++n}`,
          receiptHandle: 'r',
          body: message(),
          attributes: { ApproximateReceiveCount: '1' },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: 'arn:aws:sqs:us-east-1:123456789012:fuzz-dlq',
          awsRegion: 'us-east-1',
        }],
      }),
      fields: [
        { path: ['Records', '0', 'eventSource'], wrong: [...BAD_KEY, constant('"aws:SQS"', 'aws:SQS')] },
        { path: ['Records', '0', 'body'], wrong: [...BAD_KEY, constant('not JSON', '{"uid":'), constant('deep JSON text', DEEP_JSON), constant('"[]"', '[]')] },
        { path: ['Records', '0', 'eventSourceARN'], wrong: BAD_KEY },
        { path: ['Records', '0', 'messageId'], wrong: BAD_KEY },
      ],
    });
    await fuzz('queue-bridge', queueBridge, deadLetters, () => ({
      allowed: ['InvalidBridgeEvent'],
      // Nothing to record, and nothing failed (a record that threw would be a batch item failure).
      mayResolve: (result) => JSON.stringify(result) === JSON.stringify({ batchItemFailures: [] }),
      mayReachDynamoDb: true,
    }));
  });
});

// ---------------------------------------------------------------------------------------------
// Hostile content in events the validators accept: one case at a time

/** Runs one event; returns the error (or the result) and checks nothing was written or called. */
async function single(handler: AnyHandler, event: unknown): Promise<{ error?: Error; result?: unknown; written: boolean }> {
  const before = await tables();
  const prototypes = prototypeShape();
  harness.fake.clearCalls();
  let error: Error | undefined;
  let result: unknown;
  try {
    result = await handler(event);
  } catch (caught) {
    error = caught as Error;
  }
  await new Promise((resolve) => setImmediate(resolve));
  expectNoPollution(prototypes);
  expect(sideCalls()).toEqual([]);
  return { error, result, written: (await tables()) !== before };
}

const startEvent = (input: Record<string, unknown>, activities: unknown = ['Act']) => ({ input: { uid: `hostile-${randomUUID()}`, ...input }, workflow: WORKFLOW, activities });

describe('start-run: content DynamoDB cannot store is an InvalidRunInput that says the limit, not a DynamoDB or JS error', () => {
  /** The run must be refused before anything is written, with a message that says what is allowed. */
  async function expectRefused(event: unknown, saying: string) {
    const { error, written } = await single(harness.handlers.startRun, event);
    expect(error?.name).toBe('InvalidRunInput');
    expect(error?.message).toContain(saying);
    expect(written).toBe(false);
  }
  /** Created, and stored exactly as sent. */
  async function expectStored(metadata: Record<string, unknown>) {
    const event = startEvent({ metadata });
    await expect(harness.handlers.startRun(event)).resolves.toMatchObject({ rerun: false });
    expect((await harness.item(event.input.uid, WORKFLOW))?.metadata).toEqual({ ...metadata, workflow: WORKFLOW });
  }
  /** `{ blob: 'xxx…' }` whose JSON is exactly `bytes` long. */
  const metadataOfBytes = (bytes: number) => ({ blob: 'x'.repeat(bytes - JSON.stringify({ blob: '' }).length) });

  // Without the bound, 1 MB reached PutItem: DynamoDB's ValidationException ("Item size has exceeded
  // the maximum allowed size"). 64 KB of JSON leaves the item room for activities and plugin entries.
  test('1 MB of metadata is refused, naming the 64 KB limit', async () => {
    await expectRefused(startEvent({ metadata: { blob: HUGE } }), 'at most 65536 (64 KB)');
  });

  test('metadata of exactly 64 KB (65,536 bytes of JSON) is stored; one byte more is refused', async () => {
    await expectStored(metadataOfBytes(65_536));
    await expectRefused(startEvent({ metadata: metadataOfBytes(65_537) }), 'input.metadata is 65537 bytes as JSON; at most 65536');
  });

  // Without the bound, lib-dynamodb's marshall recursed until RangeError (stack overflow).
  test('metadata nested 10,000 levels deep is refused, naming the 32-level limit', async () => {
    await expectRefused(startEvent({ metadata: { deep: DEEP_OBJECT } }), 'nested deeper than 32 levels');
    await expectRefused(startEvent({ metadata: { deep: DEEP_ARRAY } }), 'nested deeper than 32 levels');
  });

  // DynamoDB: ValidationException "Nesting Levels have exceeded supported limits" beyond 32.
  test('metadata nested 40 levels deep is refused', async () => {
    await expectRefused(startEvent({ metadata: { deep: nest(40, (v) => ({ a: v })) } }), 'DynamoDB stores at most 32');
  });

  // The item is level 1 and metadata level 2: 30 levels of objects and lists fit inside metadata.
  test('32 levels (item, metadata and 30 nested objects or lists) are stored: the limit is DynamoDB\'s own', async () => {
    await expectStored({ deep: nest(29, (v) => ({ a: v }), ['leaf']) });
    await expectRefused(startEvent({ metadata: { deep: nest(30, (v) => ({ a: v }), ['leaf']) } }), 'input.metadata.deep.a.a');
  });

  // DynamoDB: ValidationException "Empty attribute name", at any depth.
  test.each([
    ['top level', { '': 'empty name' }, 'input.metadata has a field with an empty name'],
    ['nested', { outer: [{ '': 1 }] }, 'input.metadata.outer[0] has a field with an empty name'],
  ])('a metadata field with an empty name (%s) is refused', async (_where, metadata, saying) => {
    await expectRefused(startEvent({ metadata }), saying);
  });

  // lib-dynamodb's marshall assigned `map['__proto__'] = ...`, which set a prototype: PutItem failed
  // with "Supplied AttributeValue is empty".
  test.each([
    ['top level', '{"__proto__":{"polluted":"yes"}}'],
    ['nested', '{"a":{"b":[{"__proto__":{"polluted":"yes"}}]}}'],
  ])('a metadata field named __proto__ (%s, as JSON.parse delivers it) is refused', async (_where, json) => {
    const event = JSON.parse(`{"input":{"uid":"hostile-proto-${randomUUID()}","metadata":${json}},"workflow":"${WORKFLOW}","activities":["Act"]}`);
    await expectRefused(event, 'has a field named "__proto__"');
  });

  // lib-dynamodb refuses numbers beyond Number.MAX_SAFE_INTEGER (a bare Error); DynamoDB refuses magnitudes below 1E-130.
  test.each([[1e308], [-1e20], [2 ** 53], [1e-200]])('a metadata number %d is refused, naming the range', async (n) => {
    await expectRefused(startEvent({ metadata: { n } }), `input.metadata.n is ${n}: metadata numbers must be 0 or of magnitude 1e-130 to 9007199254740991`);
  });

  test('metadata numbers at the edges of the range are stored', async () => {
    await expectStored({ big: Number.MAX_SAFE_INTEGER, small: -Number.MAX_SAFE_INTEGER, tiny: 1e-130, zero: 0, pi: 3.14159 });
  });

  // Activity names are keys of `activities`: `activities['__proto__'] = ...` set the prototype and the
  // run was created with a corrupt document; `constructor` etc. found Object.prototype members later.
  test.each(['__proto__', 'constructor', 'toString', 'hasOwnProperty'])('an activity named %j is refused, naming the reserved names', async (name) => {
    await expectRefused(startEvent({}, ['Act', name]), `activity ${JSON.stringify(name)} is reserved: names of Object.prototype members (`);
  });

  // A lone surrogate is not Unicode: DynamoDB stored U+FFFD instead, so different uids ('\uD800x',
  // '\uDBFFx') shared one status item, and the returned uid was not the stored one.
  test('a uid with a lone surrogate is refused', async () => {
    await expectRefused(startEvent({ uid: `lone-\uD800-${randomUUID()}` }), 'input.uid must be well-formed Unicode');
  });

  test('lone surrogates in an activity name, a metadata value or a metadata field name are refused', async () => {
    await expectRefused(startEvent({}, ['Act', 'a\uDC00']), 'every activity must be a non-empty string of well-formed Unicode');
    await expectRefused(startEvent({ metadata: { note: 'x\uD800' } }), 'input.metadata.note must be well-formed Unicode');
    await expectRefused(startEvent({ metadata: { 'x\uD800': 1 } }), 'field names must be well-formed Unicode');
  });

  // workflow is the sort key: DynamoDB allows 1,024 bytes, and 1,024 'Ω' are 2,048.
  test('a workflow of 1,024 characters but 2,048 UTF-8 bytes is refused, in bytes', async () => {
    await expectRefused({ ...startEvent({}), workflow: 'Ω'.repeat(1024) }, 'workflow must be at most 1024 bytes in UTF-8 (got 2048)');
  });

  test('unicode, emoji and control characters in a uid are stored exactly', async () => {
    for (const uid of ['💥👩‍👩‍👧‍👦', 'nul\u0000in-the-middle', '\u0001\u001f\u007f', '\u202Eright-to-left', 'Ω≈ç√∫\u200b', "' OR 1=1 --"]) {
      const key = `${uid}-${randomUUID()}`;
      await expect(harness.handlers.startRun({ input: { uid: key }, workflow: WORKFLOW, activities: ['Act'] })).resolves.toEqual({ uid: key, workflow: WORKFLOW, rerun: false });
      expect((await harness.item(key, WORKFLOW))?.uid).toBe(key);
    }
  });
});

describe('stage handlers: an activity the run does not have is StatusItemMissing, whatever its name', () => {
  const MEMBER_NAMES = ['constructor', 'toString', 'hasOwnProperty', 'valueOf', '__proto__'];

  test('a plain unknown activity (control case)', async () => {
    for (const activity of ['Nope', '💥', 'a\u0000b']) {
      const sequential = await single(harness.handlers.sequentialStage, { ...sequentialBase(), activity });
      expect(sequential.error?.name).toBe('StatusItemMissing');
      expect(sequential.written).toBe(false);
      const parallel = await single(harness.handlers.parallelStage, { ...parallelBase(), activity });
      expect(parallel.error?.name).toBe('StatusItemMissing');
      expect(parallel.written).toBe(false);
      // stage-failure re-raises the caught error: nothing to record for an activity the run lacks.
      const failure = await single(harness.handlers.stageFailure, { ...failureBase(), activity });
      expect(failure.error?.name).toBe('States.Timeout');
      expect(failure.written).toBe(false);
    }
  });

  // Activities are looked up as own fields only (status.ts `activityOf`): plain indexing found
  // Object.prototype members, and the refused stage start read `Object.prototype.constructor.status.state`
  // (TypeError "Cannot read properties of undefined (reading 'state')").
  test.each(MEMBER_NAMES)('sequential-stage, activity %j', async (activity) => {
    const { error, written } = await single(harness.handlers.sequentialStage, { ...sequentialBase(), activity });
    expect(error?.name).toBe('StatusItemMissing');
    expect(error?.message).toContain(`has no activity ${activity}`);
    expect(written).toBe(false);
  });

  test.each(MEMBER_NAMES)('parallel-stage, activity %j', async (activity) => {
    const { error, written } = await single(harness.handlers.parallelStage, { ...parallelBase(), activity });
    expect(error?.name).toBe('StatusItemMissing');
    expect(written).toBe(false);
  });

  // stage-failure's failureRecord read `activity.async.status` of an Object.prototype member (TypeError).
  test.each(MEMBER_NAMES)('stage-failure, activity %j', async (activity) => {
    const { error, written } = await single(harness.handlers.stageFailure, { ...failureBase(), activity });
    expect(error?.name).toBe('States.Timeout');
    expect(written).toBe(false);
  });
});

describe('parallel-stage: task tokens longer than Step Functions\' 2,048 characters', () => {
  // Unbounded, a 1 MB token made the stage-start UpdateItem fail (item too large) or was sent to SendTaskSuccess.
  test.each([['1 MB', HUGE], ['2,049 characters', 't'.repeat(2049)]])('a %s token is an InvalidStageEvent', async (_label, token) => {
    const uid = `token-${randomUUID()}`;
    await harness.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Act'] });
    const { error, written } = await single(harness.handlers.parallelStage, { ...parallelBase(), uid, activity: 'Act', token });
    expect(error?.name).toBe('InvalidStageEvent');
    expect(error?.message).toContain('token must be a Step Functions task token of at most 2048 characters');
    expect(written).toBe(false);
  });

  test('a 2,048-character token is stored for status-summary to answer', async () => {
    const uid = `token-${randomUUID()}`;
    const token = 't'.repeat(2048);
    await harness.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Act'] });
    await expect(harness.handlers.parallelStage({ ...parallelBase(), uid, activity: 'Act', token })).resolves.toMatchObject({ waiting: true });
    expect((await harness.item(uid, WORKFLOW))?.activities.Act.async.status.token).toBe(token);
  });
});

/** A run of its own (uid `outcome-…`) whose parallel stage waits for AsyncP: the SNS event AsyncP received. */
async function waitingRun(): Promise<Record<string, any>> {
  const uid = `outcome-${randomUUID()}`;
  await harness.handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Act'] });
  harness.fake.clearCalls();
  await harness.handlers.parallelStage({ uid, workflow: WORKFLOW, activity: 'Act', stage: 'async', topicArn: harness.topicArn('Act-parallel'), token: `token-${uid}` });
  const [published] = harness.fake.published();
  return snsEnvelope({
    body: published.message,
    topicArn: published.topicArn,
    subscriptionArn: asyncSubscription,
    attributes: published.attributes as never,
    messageId: randomUUID(),
    now: new Date().toISOString(),
  }) as unknown as Record<string, any>;
}

describe('status-summary: stream records that are not DynamoDB-shaped', () => {
  const withImage = (change: (image: Record<string, unknown>) => void) => {
    const event = streamBase();
    change(event.Records[0].dynamodb.NewImage as Record<string, unknown>);
    return event;
  };

  // Images are converted inside the per-item error handling (settleItem), by a converter that checks
  // each attribute value and bounds the depth: the item fails with StatusSummaryFailed, whose cause
  // (InvalidAttributeValue) names the attribute. Before, a null value threw TypeError for the batch.
  test('a null attribute value is StatusSummaryFailed, caused by an InvalidAttributeValue naming it', async () => {
    const { error, written } = await single(harness.handlers.statusSummary, withImage((image) => { image.extra = null; }));
    expect(error?.name).toBe('StatusSummaryFailed');
    expect((error?.cause as Error)?.name).toBe('InvalidAttributeValue');
    expect((error?.cause as Error)?.message).toBe('item.extra: null is not a DynamoDB AttributeValue');
    expect(written).toBe(false);
  });

  // Before: fromAttributeMap recursed until RangeError (stack overflow).
  test('an image nested 10,000 levels deep is StatusSummaryFailed', async () => {
    const { error, written } = await single(harness.handlers.statusSummary, withImage((image) => { image.extra = nest(DEPTH, (v) => ({ M: { a: v } }), { S: 'x' }); }));
    expect(error?.name).toBe('StatusSummaryFailed');
    expect((error?.cause as Error)?.message).toContain('nested deeper than 64 levels');
    expect(written).toBe(false);
  });

  test('a malformed item does not keep the well-formed items of its batch from being settled', async () => {
    // A real run whose only mandatory plugin just reported Complete: its newest stream record settles the stage.
    const delivery = await waitingRun();
    const { uid } = JSON.parse(delivery.Records[0].Sns.Message);
    await expect(pluginOutcome({ ...outcomeBase(), requestPayload: delivery })).resolves.toMatchObject({ recorded: true, state: 'Complete' });
    const record = (await harness.stream.read()).filter((r) => r.dynamodb?.Keys?.uid?.S === uid).pop();
    expect(record?.dynamodb?.NewImage?.awaiting).toBeDefined();
    const malformed = withImage((image) => { image.extra = null; }).Records[0];
    harness.fake.clearCalls();
    await expect(harness.handlers.statusSummary({ Records: [malformed, record] }))
      .rejects.toMatchObject({ name: 'StatusSummaryFailed', message: '1 of 2 status items could not be settled' });
    expect(harness.fake.callsTo('sfn', 'SendTaskSuccess').map((call) => call.input.taskToken)).toEqual([`token-${uid}`]);
    expect((await harness.item(uid, WORKFLOW))?.activities.Act.async.status.state).toBe('Complete');
  });
});

describe('plugin-outcome: records that are not Lambda destination records for a plugin', () => {
  /** Resolved, nothing recorded, nothing written, with the reason given. */
  async function expectIgnored(record: unknown, reason: string) {
    const { error, result, written } = await single(pluginOutcome, record);
    expect(error).toBeUndefined();
    expect(result as OutcomeResult).toEqual({ recorded: false, reason: expect.stringContaining(reason) });
    expect(written).toBe(false);
  }

  test('control case: a real RetriesExhausted record of the same run is recorded', async () => {
    const record = { ...outcomeBase(), requestPayload: await waitingRun() };
    record.requestContext.condition = 'RetriesExhausted';
    await expect(pluginOutcome(record)).resolves.toMatchObject({ recorded: true, state: 'Error' });
  });

  // Any string used to be accepted and everything but 'Success' treated as a failure: a record Lambda
  // never sends recorded the plugin `Error` and failed a mandatory plugin's stage. Now only Success,
  // RetriesExhausted and EventAgeExceeded count; others are logged and ignored before any request.
  test.each(['Bogus', '', 'success', 'RETRIESEXHAUSTED'])('condition %j records nothing', async (condition) => {
    const record = { ...outcomeBase(), requestPayload: await waitingRun() };
    record.requestContext.condition = condition;
    await expectIgnored(record, 'is not one Lambda sends (Success, RetriesExhausted, EventAgeExceeded)');
  });

  // '' (or an ARN over DynamoDB's 1,024-byte sort-key limit) went into the registry GetItem key and
  // failed with DynamoDB's ValidationException.
  test.each([['empty', ''], ['1 MB', HUGE], ['1,024 "Ω" (2,048 bytes)', 'Ω'.repeat(1024)]])('EventSubscriptionArn %s: ignored', async (_label, arn) => {
    const record = outcomeBase();
    record.requestPayload.Records[0].EventSubscriptionArn = arn;
    await expectIgnored(record, 'the EventSubscriptionArn is not a subscription ARN');
  });

  // uid/workflow/activity of the message become DynamoDB keys: the stage handlers' rules apply.
  test.each([['uid', HUGE], ['activity', HUGE], ['workflow', 'x\uD800']])('a plugin message whose %s cannot be a key: ignored', async (field, value) => {
    const record = outcomeBase();
    const body = JSON.parse(record.requestPayload.Records[0].Sns.Message);
    body[field] = value;
    record.requestPayload.Records[0].Sns.Message = JSON.stringify(body);
    await expectIgnored(record, 'the SNS message is not a plugin message');
  });
});

// ---------------------------------------------------------------------------------------------

describe('afterwards', () => {
  test('the seeded run completes: the handlers and the process survived the fuzz', async () => {
    // Exactly as seeded: no fuzz event (nor bug case) touched it.
    const seeded = await harness.item(SEEDED_UID, WORKFLOW);
    expect(seeded?.status.state).toBe('In Progress');
    expect(seeded?.activities.Act.pre.status.state).toBe('Complete');
    expect(seeded?.activities.Act.async.status).toMatchObject({ state: 'In Progress', token: SEED_TOKEN });
    expect(seeded?.activities.Act.async.mandatory).toEqual({ AsyncP: expect.objectContaining({ state: 'Not Started' }) });
    expect(seeded?.activities.Act.post.status.state).toBe('Not Started');
    expect(seeded?.activities.Other).toEqual({
      status: { state: 'Not Started' },
      pre: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
      async: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
      post: { status: { state: 'Not Started' }, mandatory: {}, optional: {} },
    });
    harness.fake.clearCalls();
    await harness.stream.read();
    await expect(pluginOutcome(outcomeBase())).resolves.toMatchObject({ recorded: true, plugin: 'AsyncP', state: 'Complete' });
    await harness.pump();
    expect(harness.fake.callsTo('sfn', 'SendTaskSuccess').map((call) => call.input.taskToken)).toEqual([SEED_TOKEN]);
    await expect(harness.handlers.sequentialStage(sequentialBase('post'))).resolves.toMatchObject({ state: 'Complete', invoked: ['PostP'] });
    await expect(harness.handlers.sequentialStage({ ...sequentialBase('pre'), activity: 'Other' })).resolves.toMatchObject({ state: 'Complete' });
    await expect(harness.handlers.parallelStage({ ...parallelBase(), token: 'other-token' })).resolves.toMatchObject({ state: 'Complete', started: true });
    await expect(harness.handlers.sequentialStage({ ...sequentialBase('post'), activity: 'Other' })).resolves.toMatchObject({ state: 'Complete' });
    const item = await harness.item(SEEDED_UID, WORKFLOW);
    expect(item?.status.state).toBe('Complete');
    expect(item?.activities.Act.async.mandatory.AsyncP.state).toBe('Complete');
    expect(item?.awaiting).toBeUndefined();
  });
});
