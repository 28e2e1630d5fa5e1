/**
 * plugin-registrar, the bundled handler, against DynamoDB Local, fed CloudTrail-shaped EventBridge
 * events (test/support/cloudtrail.ts). The plugins it invokes for the `initialize` handshake are
 * scripted functions (test/support/scripted-aws.ts), not the local engine: each test scripts the answer
 * it needs (a configuration, a throw, garbage, a hang) in one line, without synthesizing an app per
 * case; the end-to-end path through the local engine is test/local/runtime-registration.test.ts.
 */
import { join } from 'node:path';
import { DeleteCommand, GetCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { subscribeEvent, unsubscribeEvent, updateFunctionCodeEvent } from '../support/cloudtrail';
import { Harness, rejectionOf } from '../support/harness';

const WORKFLOW = 'Quotes';
const ORCHESTRATOR = 'orchestrator'; // Harness.topicArn names topics `orchestrator-<name>`

type Result = {
  outcome: string;
  reason?: string;
  activity?: string;
  stage?: string;
  pluginName?: string;
  registrationError?: string;
  released?: number;
  refreshed?: number;
};
let h: Harness;
let registrar: (event: unknown) => Promise<Result>;

beforeAll(async () => {
  h = await Harness.create('registrar');
  process.env.ORCHESTRATOR_NAME = ORCHESTRATOR;
  process.env.PLUGIN_TAG = `cdk-orchestrator:${ORCHESTRATOR}=plugin`;
  process.env.HANDSHAKE_TIMEOUT_SECONDS = '1';
  registrar = jest.requireActual(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-registrar', 'index.js')).handler;
});
afterAll(async () => h.close());
beforeEach(() => h.fake.clearCalls());

let counter = 0;
/** A fresh activity and function per test: the tables are shared by the file. */
function fixture(stageSuffix: 'pre' | 'parallel' | 'post' = 'parallel') {
  const n = ++counter;
  const activity = `Reg${n}`;
  const functionName = `rate-plugin-${n}`;
  const topicArn = h.topicArn(`${activity}-${stageSuffix}`);
  const subscriptionArn = `${topicArn}:0f3c5e2a-7d1b-4c8e-9a6f-00000000000${n % 10}`;
  const stage = stageSuffix === 'parallel' ? 'async' : stageSuffix;
  return { activity, stage, functionName, functionArn: h.functionArn(functionName), topicArn, subscriptionArn, orchestratorId: `${activity}|${stage}` };
}

async function registryItem(orchestratorId: string, subscriptionArn: string) {
  return (await h.db.send(new GetCommand({ TableName: h.pluginTable, Key: { orchestratorId, subscriptionArn }, ConsistentRead: true }))).Item;
}

async function registryCount(): Promise<number> {
  return (await h.db.send(new ScanCommand({ TableName: h.pluginTable, Select: 'COUNT', ConsistentRead: true }))).Count ?? 0;
}

const handshakes = (functionName: string) => h.fake.invocations(functionName);

describe('Subscribe', () => {
  test('the initialize handshake registers the plugin with its configuration (source runtime, the SNS subscription ARN)', async () => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, (event) => (event.initialize ? { pluginName: 'Rating', mandatory: true, order: 10, description: 'Rates the quote', idempotent: false } : {}));

    const result = await registrar(subscribeEvent({ ...f, filterPolicy: { region: ['EU'] } }));

    expect(result).toMatchObject({ outcome: 'registered', activity: f.activity, stage: 'async', pluginName: 'Rating' });
    expect(handshakes(f.functionName).map((c) => c.input.event)).toEqual([{ initialize: true }]);
    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toEqual({
      orchestratorId: f.orchestratorId,
      subscriptionArn: f.subscriptionArn,
      functionName: f.functionName,
      functionArn: f.functionArn,
      topicArn: f.topicArn,
      activity: f.activity,
      stage: 'async',
      source: 'runtime',
      pluginName: 'Rating',
      mandatory: true,
      order: 10,
      description: 'Rates the quote',
      idempotent: false,
      filterPolicy: JSON.stringify({ region: ['EU'] }),
      registeredAt: expect.any(String),
      updatedAt: expect.any(String),
    });
  });

  test('the registered plugin takes part in the next parallel stage: its entry is created and waited for', async () => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => ({ pluginName: 'Fraud' }));
    await registrar(subscribeEvent(f));
    const uid = `quote-${counter}`;
    await h.handlers.startRun({ input: { uid, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: [f.activity] });

    await expect(h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity: f.activity, stage: 'async', topicArn: f.topicArn, token: `t-${counter}` }))
      .resolves.toMatchObject({ state: 'In Progress', waiting: true, published: true });
    expect((await h.item(uid, WORKFLOW))!.activities[f.activity].async.mandatory).toEqual({ Fraud: { state: 'Not Started', updatedAt: expect.any(String) } });
  });

  test('defaults: no pluginName -> the function name, mandatory, order 90; per-activity overrides win', async () => {
    const f = fixture('pre');
    h.fake.onInvoke(f.functionName, () => ({ overrides: { [f.activity]: { mandatory: false, order: 5 }, Elsewhere: { order: 1 } } }));

    await expect(registrar(subscribeEvent(f))).resolves.toMatchObject({ outcome: 'registered', stage: 'pre', pluginName: f.functionName });
    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toMatchObject({ pluginName: f.functionName, mandatory: false, order: 5 });

    const g = fixture('post');
    h.fake.onInvoke(g.functionName, () => ({}));
    await registrar(subscribeEvent(g));
    expect(await registryItem(g.orchestratorId, g.subscriptionArn)).toMatchObject({ pluginName: g.functionName, mandatory: true, order: 90, stage: 'post' });
  });

  test.each([
    ['throws', () => { throw new TypeError('Cannot read properties of undefined (reading \'Records\')'); },
      'initialize failed: TypeError: Cannot read properties of undefined (reading \'Records\')'],
    ['answers with something that is not an object', () => 'ok', 'invalid initialize answer: the answer must be a JSON object'],
    ['answers nothing (a zero-SDK plugin that ignores the handshake)', () => undefined, 'invalid initialize answer: the answer must be a JSON object'],
    ['answers fields of the wrong type', () => ({ pluginName: 'has spaces', mandatory: 'yes', order: -1 }),
      'invalid initialize answer: pluginName must be 1-64 characters from A-Z a-z 0-9 _ -, got "has spaces"; mandatory must be true or false, got "yes"; order must be a whole number from 0 to 1000000, got -1'],
    ['does not answer in time', () => new Promise((resolve) => setTimeout(() => resolve({ pluginName: 'Late' }), 2500)),
      'initialize timed out: no answer within 1 s'],
  ])('a handshake that %s is reported: a registry item with registrationError that no stage waits for', async (_, behaviour, error) => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, behaviour);

    const result = await registrar(subscribeEvent(f));

    expect(result).toMatchObject({ outcome: 'registrationFailed', activity: f.activity, stage: 'async' });
    expect(result.registrationError).toContain(error);
    const item = (await registryItem(f.orchestratorId, f.subscriptionArn))!;
    expect(item).toMatchObject({ source: 'runtime', functionName: f.functionName, functionArn: f.functionArn, registrationError: expect.stringContaining(error) });
    expect(item.pluginName).toBeUndefined();

    // Not a registered plugin: the stage neither creates an entry for it nor waits for it.
    const uid = `quote-${counter}`;
    await h.handlers.startRun({ input: { uid, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: [f.activity] });
    await expect(h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity: f.activity, stage: 'async', topicArn: f.topicArn, token: `t-${counter}` }))
      .resolves.toMatchObject({ state: 'Complete', waiting: false, published: false });
  });

  test('a CDK-registered subscription is never touched: no handshake, the item stays as deployed', async () => {
    const f = fixture();
    const cdkItem = {
      orchestratorId: f.orchestratorId,
      subscriptionArn: f.subscriptionArn,
      functionName: f.functionName,
      functionArn: f.functionArn,
      pluginName: 'Deployed',
      mandatory: true,
      order: 90,
      source: 'cdk',
    };
    await h.db.send(new PutCommand({ TableName: h.pluginTable, Item: cdkItem }));
    h.fake.onInvoke(f.functionName, () => ({ pluginName: 'Hijack', mandatory: false }));

    await expect(registrar(subscribeEvent(f))).resolves.toMatchObject({ outcome: 'ignored', reason: 'the subscription is registered by CDK (addPlugin)' });
    await expect(registrar(updateFunctionCodeEvent(f.functionArn))).resolves.toMatchObject({ outcome: 'ignored' });
    await expect(registrar(unsubscribeEvent(f.subscriptionArn))).resolves.toMatchObject({ outcome: 'ignored', reason: 'the subscription is registered by CDK (addPlugin)' });

    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toEqual(cdkItem);
    expect(handshakes(f.functionName)).toHaveLength(0);
  });

  test.each([
    ['another orchestrator\'s topic', (f: ReturnType<typeof fixture>) => ({ ...f, topicArn: 'arn:aws:sns:us-east-1:123456789012:other-Step1-parallel', subscriptionArn: 'arn:aws:sns:us-east-1:123456789012:other-Step1-parallel:abc' })],
    ['a topic of this orchestrator that is not a stage topic', (f: ReturnType<typeof fixture>) => ({ ...f, topicArn: h.topicArn('alarms'), subscriptionArn: `${h.topicArn('alarms')}:abc` })],
    ['a topic whose name only begins like an activity topic', (f: ReturnType<typeof fixture>) => ({ ...f, topicArn: h.topicArn('Step1-parallel-dlq'), subscriptionArn: `${h.topicArn('Step1-parallel-dlq')}:abc` })],
    ['an SQS subscription', (f: ReturnType<typeof fixture>) => ({ ...f, protocol: 'sqs', functionArn: 'arn:aws:sqs:us-east-1:123456789012:queue' })],
  ])('a Subscribe to %s is ignored: no handshake, nothing written', async (_, change) => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => ({ pluginName: 'Nope' }));
    const before = await registryCount();

    await expect(registrar(subscribeEvent(change(f)))).resolves.toMatchObject({ outcome: 'ignored' });

    expect(await registryCount()).toBe(before);
    expect(handshakes(f.functionName)).toHaveLength(0);
  });

  test('a failed Subscribe call (errorCode) is ignored', async () => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => ({}));
    await expect(registrar(subscribeEvent(f, { errorCode: 'AuthorizationError' }))).resolves.toMatchObject({ outcome: 'ignored', reason: 'the Subscribe call failed (AuthorizationError)' });
    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toBeUndefined();
    expect(handshakes(f.functionName)).toHaveLength(0);
  });
});

describe('Unsubscribe', () => {
  test('removes the run-time registration; the next stage start no longer waits for the plugin', async () => {
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => ({ pluginName: 'Rating' }));
    await registrar(subscribeEvent(f));

    await expect(registrar(unsubscribeEvent(f.subscriptionArn))).resolves.toMatchObject({ outcome: 'unregistered', pluginName: 'Rating', released: 0 });

    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toBeUndefined();
    // The activity's running executions were looked for (none here: the scripted endpoint has no executions).
    expect(h.fake.callsTo('sfn', 'ListExecutions').map((c) => c.input)).toEqual([
      { stateMachineArn: `arn:aws:states:us-east-1:123456789012:stateMachine:${ORCHESTRATOR}-${f.activity}`, statusFilter: 'RUNNING', maxResults: 1000 },
    ]);
    const uid = `quote-${counter}`;
    await h.handlers.startRun({ input: { uid, metadata: { region: 'EU' } }, workflow: WORKFLOW, activities: [f.activity] });
    await expect(h.handlers.parallelStage({ uid, workflow: WORKFLOW, activity: f.activity, stage: 'async', topicArn: f.topicArn, token: `t-${counter}` }))
      .resolves.toMatchObject({ state: 'Complete', waiting: false });
  });

  test('a failed registration is removed too; an unknown subscription is ignored', async () => {
    const f = fixture('pre');
    h.fake.onInvoke(f.functionName, () => { throw new Error('boom'); });
    await registrar(subscribeEvent(f));
    await expect(registrar(unsubscribeEvent(f.subscriptionArn))).resolves.toMatchObject({ outcome: 'unregistered', released: 0 });
    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toBeUndefined();
    expect(h.fake.callsTo('sfn')).toHaveLength(0); // pre/post stages hold no task waiting for reports

    await expect(registrar(unsubscribeEvent(f.subscriptionArn))).resolves.toMatchObject({ outcome: 'ignored', reason: 'the subscription is not in the registry' });
    await expect(registrar(unsubscribeEvent('arn:aws:sns:us-east-1:123456789012:unrelated-topic:abc'))).resolves.toMatchObject({ outcome: 'ignored' });
  });
});

describe('UpdateFunctionCode', () => {
  test('refreshes every run-time registration of the function with a new handshake', async () => {
    const pre = fixture('pre');
    const functionName = pre.functionName;
    const post = { ...fixture('post'), functionName, functionArn: pre.functionArn };
    let answer: unknown = { pluginName: 'Audit', order: 20 };
    h.fake.onInvoke(functionName, () => answer);
    await registrar(subscribeEvent(pre));
    await registrar(subscribeEvent(post));
    const registeredAt = [
      (await registryItem(pre.orchestratorId, pre.subscriptionArn))!.registeredAt,
      (await registryItem(post.orchestratorId, post.subscriptionArn))!.registeredAt,
    ];
    h.fake.clearCalls();

    answer = { pluginName: 'Audit2', order: 30, mandatory: false };
    await expect(registrar(updateFunctionCodeEvent(pre.functionArn))).resolves.toMatchObject({ outcome: 'refreshed', refreshed: 2, pluginName: 'Audit2' });

    expect(handshakes(functionName)).toHaveLength(1); // one handshake per function, not per registration
    for (const [i, f] of [pre, post].entries()) {
      // Refreshed in place: same key, first registration time kept.
      expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toMatchObject({ pluginName: 'Audit2', order: 30, mandatory: false, source: 'runtime', registeredAt: registeredAt[i] });
    }

    // New code that breaks the handshake is reported; fixed code clears the error.
    answer = 'garbage';
    await expect(registrar(updateFunctionCodeEvent(pre.functionArn))).resolves.toMatchObject({
      outcome: 'refreshed', refreshed: 2, registrationError: expect.stringContaining('the answer must be a JSON object'),
    });
    expect((await registryItem(pre.orchestratorId, pre.subscriptionArn))!.registrationError).toContain('the answer must be a JSON object');
    answer = { pluginName: 'Audit3' };
    // The request may name the function by ARN; the response's functionName is what is looked up.
    await registrar(updateFunctionCodeEvent(pre.functionArn, { requestName: pre.functionArn }));
    const fixed = (await registryItem(pre.orchestratorId, pre.subscriptionArn))!;
    expect(fixed).toMatchObject({ pluginName: 'Audit3', mandatory: true, order: 90 });
    expect(fixed.registrationError).toBeUndefined();
  });

  test('a function without run-time registrations is ignored; an item removed meanwhile is not brought back', async () => {
    await expect(registrar(updateFunctionCodeEvent(h.functionArn('never-registered')))).resolves.toMatchObject({
      outcome: 'ignored', reason: 'function never-registered has no run-time registration',
    });
    const f = fixture();
    h.fake.onInvoke(f.functionName, async () => {
      // The Unsubscribe lands while the refresh handshakes.
      await h.db.send(new DeleteCommand({ TableName: h.pluginTable, Key: { orchestratorId: f.orchestratorId, subscriptionArn: f.subscriptionArn } }));
      return { pluginName: 'Ghost' };
    });
    await h.db.send(new PutCommand({
      TableName: h.pluginTable,
      Item: { orchestratorId: f.orchestratorId, subscriptionArn: f.subscriptionArn, functionName: f.functionName, functionArn: f.functionArn, pluginName: 'Ghost', source: 'runtime' },
    }));
    await expect(registrar(updateFunctionCodeEvent(f.functionArn))).resolves.toMatchObject({ outcome: 'refreshed', refreshed: 0 });
    expect(await registryItem(f.orchestratorId, f.subscriptionArn)).toBeUndefined();
  });
});

describe('malformed events', () => {
  const f = { topicArn: 'arn:aws:sns:us-east-1:123456789012:orchestrator-Bad-parallel', functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:bad', subscriptionArn: 'arn:aws:sns:us-east-1:123456789012:orchestrator-Bad-parallel:x' };
  const withDetail = (event: any, change: (detail: any) => void) => {
    const copy = structuredClone(event);
    change(copy.detail);
    return copy;
  };
  test.each([
    ['not an object', 'not json', /expected an EventBridge "AWS API Call via CloudTrail" event/],
    ['another detail type', { 'detail-type': 'Scheduled Event', 'detail': {} }, /expected an EventBridge "AWS API Call via CloudTrail" event/],
    ['no detail', { 'detail-type': 'AWS API Call via CloudTrail' }, /detail.eventSource and detail.eventName must be strings/],
    ['a Subscribe without endpoint', withDetail(subscribeEvent(f), (d) => { delete d.requestParameters.endpoint; }), /Invalid Subscribe event: detail.requestParameters.endpoint must be a non-empty string, got nothing/],
    ['a Subscribe without response', withDetail(subscribeEvent(f), (d) => { d.responseElements = null; }), /detail.responseElements.subscriptionArn must be a non-empty string/],
    ['a lambda Subscribe whose endpoint is no function ARN', subscribeEvent({ ...f, functionArn: 'https://example.com/hook' }), /the endpoint of a lambda subscription must be a function ARN, got "https:\/\/example.com\/hook"/],
    ['a Subscribe whose subscription belongs to another topic', subscribeEvent({ ...f, subscriptionArn: 'arn:aws:sns:us-east-1:123456789012:elsewhere:x' }), /is not a subscription of/],
    ['an Unsubscribe without subscriptionArn', withDetail(unsubscribeEvent('x'), (d) => { d.requestParameters = {}; }), /Invalid Unsubscribe event: detail.requestParameters.subscriptionArn must be a non-empty string/],
    ['an UpdateFunctionCode without function', withDetail(updateFunctionCodeEvent(f.functionArn), (d) => { d.requestParameters = {}; d.responseElements = {}; }), /Invalid UpdateFunctionCode20150331v2 event: detail.requestParameters.functionName must be a non-empty string/],
    ['requestParameters of the wrong type', withDetail(subscribeEvent(f), (d) => { d.requestParameters = 'topic'; }), /detail.requestParameters must be an object/],
  ])('%s -> InvalidRegistrationEvent, nothing invoked or written', async (_, event, message) => {
    const before = await registryCount();
    const error = await rejectionOf(registrar(event));
    expect(error.name).toBe('InvalidRegistrationEvent');
    expect(error.message).toMatch(message);
    expect(await registryCount()).toBe(before);
    expect(h.fake.invocations()).toHaveLength(0);
    expect(h.fake.dynamoDbRequests().filter((r) => r !== 'GetItem')).toEqual([]);
  });
});

describe('observability', () => {
  /** A fresh copy of the bundle with metrics and logs on (Powertools reads its environment when it loads). */
  function loudRegistrar(): (event: unknown) => Promise<Result> {
    const saved = { level: process.env.POWERTOOLS_LOG_LEVEL, metrics: process.env.POWERTOOLS_METRICS_DISABLED };
    Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator' });
    let loaded!: (event: unknown) => Promise<Result>;
    jest.isolateModules(() => {
      loaded = jest.requireActual(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-registrar', 'index.js')).handler;
    });
    Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: saved.level, POWERTOOLS_METRICS_DISABLED: saved.metrics });
    return loaded;
  }

  /** The JSON lines `work` wrote to stdout and stderr. */
  async function captured(work: () => Promise<unknown>): Promise<Record<string, any>[]> {
    const lines: string[] = [];
    const streams = [process.stdout, process.stderr];
    const originals = streams.map((stream) => stream.write);
    for (const stream of streams) {
      stream.write = ((chunk: string | Uint8Array) => {
        lines.push(...String(chunk).split('\n').filter((line) => line.startsWith('{')));
        return true;
      }) as typeof stream.write;
    }
    try {
      await work();
    } finally {
      streams.forEach((stream, i) => { stream.write = originals[i]; });
    }
    return lines.map((line) => JSON.parse(line));
  }

  test('a failed handshake is an ERROR log line naming why and a PluginRegistrationFailed metric of the activity', async () => {
    const loud = loudRegistrar();
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => { throw new RangeError('config file missing'); });

    const lines = await captured(() => loud(subscribeEvent(f)));

    const error = lines.find((line) => line.level === 'ERROR');
    expect(error).toMatchObject({
      message: 'Plugin registration failed: its initialize handshake did not give a valid configuration',
      activity: f.activity,
      stage: 'async',
      functionArn: f.functionArn,
      subscriptionArn: f.subscriptionArn,
      registrationError: 'initialize failed: RangeError: config file missing',
    });
    const emf = lines.find((line) => line._aws);
    expect(emf).toMatchObject({ PluginRegistrationFailed: 1, activity: f.activity, service: 'cdk-orchestrator' });
    expect(emf!._aws.CloudWatchMetrics[0]).toMatchObject({
      Namespace: 'CdkOrchestrator',
      Dimensions: [expect.arrayContaining(['service', 'activity'])],
      Metrics: [{ Name: 'PluginRegistrationFailed', Unit: 'Count' }],
    });
  });

  test('a registration is counted as PluginRegistered', async () => {
    const loud = loudRegistrar();
    const f = fixture();
    h.fake.onInvoke(f.functionName, () => ({ pluginName: 'Counted' }));
    const lines = await captured(() => loud(subscribeEvent(f)));
    expect(lines.find((line) => line._aws)).toMatchObject({ PluginRegistered: 1, activity: f.activity });
    expect(lines.find((line) => line.message === 'Plugin registered')).toMatchObject({ plugin: 'Counted', level: 'INFO' });
  });
});
