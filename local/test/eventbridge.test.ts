/**
 * EventBridge on the local engine: schedule expressions (AWS's rate and six-field cron), and an app's
 * rules end to end — PutEvents through the SDK on the default and a custom bus, event patterns,
 * input transformers and constant inputs, Lambda and SQS targets, a target's retries and its
 * dead-letter queue, and schedules that fire when the engine's clock is advanced.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { Duration } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack, startTestEngine } from '../../test/local/support';
import { EngineClock, LocalEngine, parseSchedule } from '../src';
import { targetInput } from '../src/engine/events';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number) => new Date(ms).toISOString();

describe('schedule expressions', () => {
  test('rate schedules count from the rule\'s creation', () => {
    const created = at('2026-12-06T05:00:30Z');
    const schedule = parseSchedule('rate(5 minutes)', created);
    expect(iso(schedule.next(created))).toBe('2026-12-06T05:05:30.000Z');
    expect(iso(schedule.next(at('2026-12-06T05:05:30Z')))).toBe('2026-12-06T05:10:30.000Z');
    expect(iso(parseSchedule('rate(1 day)', created).next(created))).toBe('2026-12-07T05:00:30.000Z');
  });

  // The examples of AWS's "Schedule expressions for rules" page, from Sunday 2026-12-06 05:07 UTC.
  test.each([
    ['cron(0 10 * * ? *)', 'every day at 10:00', '2026-12-06T10:00:00.000Z'],
    ['cron(15 12 * * ? *)', 'every day at 12:15', '2026-12-06T12:15:00.000Z'],
    ['cron(0 18 ? * MON-FRI *)', 'weekdays at 18:00', '2026-12-07T18:00:00.000Z'],
    ['cron(0 8 1 * ? *)', 'the first day of every month at 8:00', '2027-01-01T08:00:00.000Z'],
    ['cron(0/15 * * * ? *)', 'every 15 minutes', '2026-12-06T05:15:00.000Z'],
    ['cron(0/10 * ? * MON-FRI *)', 'every 10 minutes on weekdays', '2026-12-07T00:00:00.000Z'],
    ['cron(0/5 8-17 ? * MON-FRI *)', 'every 5 minutes, 8:00-17:55, weekdays', '2026-12-07T08:00:00.000Z'],
    ['cron(0 9 ? * 2#1 *)', 'the first Monday of the month at 9:00 (Dec 1 is a Tuesday)', '2026-12-07T09:00:00.000Z'],
    ['cron(0 9 ? * 3#1 *)', 'the first Tuesday of the month at 9:00', '2027-01-05T09:00:00.000Z'],
    ['cron(0 12 L * ? *)', 'the last day of the month at noon', '2026-12-31T12:00:00.000Z'],
    ['cron(0 12 * * ? 2027)', 'noon every day of 2027', '2027-01-01T12:00:00.000Z'],
  ])('%s (%s)', (expression, _, expected) => {
    expect(iso(parseSchedule(expression, 0).next(at('2026-12-06T05:07:00Z')))).toBe(expected);
  });

  test.each([
    ['rate(0 minutes)', /positive/],
    ['rate(1 minutes)', /use "1 minute"/],
    ['rate(5 minute)', /use "5 minutes"/],
    ['cron(0 12 * * *)', /6 fields/],
    ['cron(0 12 * * * *)', /exactly one of day-of-month and day-of-week/],
    ['cron(0 25 * * ? *)', /out of range 0-23/],
    ['cron(0 12 15W * ? *)', /W \(nearest weekday\) is not supported/],
    ['every 5 minutes', /expected rate/],
  ])('%s is a ScheduleExpressionError', (expression, message) => {
    expect(() => parseSchedule(expression, 0)).toThrow(expect.objectContaining({ name: 'ScheduleExpressionError', message: expect.stringMatching(message) }));
  });
});

describe('engine clock', () => {
  test('advance fires the timers that came due, in time order, and moves now() forward', async () => {
    const clock = new EngineClock({ realTimeTimers: false });
    const start = clock.now();
    const fired: string[] = [];
    clock.at(start + 2 * 60_000, () => { fired.push('second'); });
    clock.at(start + 60_000, () => { fired.push('first'); });
    clock.at(start + 10 * 60_000, () => { fired.push('later'); });
    await clock.advance(5 * 60_000);
    expect(fired).toEqual(['first', 'second']);
    expect(clock.now() - start).toBeGreaterThanOrEqual(5 * 60_000);
    expect(clock.sharedOffset[0]).toBe(5 * 60_000);
    await expect(clock.advance(-1)).rejects.toThrow(RangeError);
    clock.stop();
  });

  test('a real-time clock also fires its timers as real time passes', async () => {
    const clock = new EngineClock();
    const fired = new Promise<number>((resolve) => clock.at(clock.now() + 50, () => resolve(clock.now())));
    expect(await fired).toBeGreaterThanOrEqual(clock.now() - 1000);
    clock.stop();
  });
});

describe('target input', () => {
  const event = {
    'version': '0' as const,
    'id': 'e-1',
    'detail-type': 'Order Placed',
    'source': 'shop',
    'account': '123456789012',
    'time': '2026-12-06T05:07:00Z',
    'region': 'us-east-1',
    'resources': [],
    'detail': { id: 'o-1', total: 150, items: ['a', 'b'] },
  };
  const rule = { name: 'orders-rule', arn: 'arn:aws:events:us-east-1:123456789012:rule/orders-rule' };

  test('input transformer: values inside quotes as text, outside as JSON, plus the rule\'s own variables', () => {
    const input = targetInput({
      inputTransformer: {
        inputPathsMap: { id: '$.detail.id', total: '$.detail.total', items: '$.detail.items', missing: '$.detail.nothing' },
        inputTemplate: '{"order": "Order <id> of <total>", "total": <total>, "items": <items>, "rule": "<aws.events.rule-name>", "none": <missing>}',
      },
    }, event, rule);
    expect(input).toEqual({ order: 'Order o-1 of 150', total: 150, items: ['a', 'b'], rule: 'orders-rule', none: null });
  });

  test('a plain-text template stays text; InputPath picks a part; Input is a constant', () => {
    expect(targetInput({ inputTransformer: { inputPathsMap: { id: '$.detail.id' }, inputTemplate: '"Order <id> placed"' } }, event, rule)).toBe('Order o-1 placed');
    expect(targetInput({ inputPath: '$.detail.items[1]' }, event, rule)).toBe('b');
    expect(targetInput({ input: '{"fixed":true}' }, event, rule)).toEqual({ fixed: true });
    expect(targetInput({}, event, rule)).toBe(event);
  });
});

describe('EventBridge rules on the local engine', () => {
  let engine: LocalEngine;
  let client: EventBridgeClient;
  let echoName: string;

  beforeAll(async () => {
    const stack = newStack('Events');
    const bus = new events.EventBus(stack, 'Orders', { eventBusName: 'orders' });
    const big = new sqs.Queue(stack, 'BigOrders');
    new events.Rule(stack, 'BigOrderRule', {
      eventBus: bus,
      eventPattern: { source: ['shop'], detail: { total: events.Match.greaterThanOrEqual(100) } },
      targets: [new targets.SqsQueue(big, {
        message: events.RuleTargetInput.fromObject({ order: events.EventField.fromPath('$.detail.id'), total: events.EventField.fromPath('$.detail.total') }),
      })],
    });
    inlineFunction(stack, 'Now', 'exports.handler = async () => { class Later extends Date {} '
      + 'return { now: Date.now(), constructed: new Date().getTime(), given: new Date(0).getTime(), called: typeof Date(), '
      + 'isDate: new Date() instanceof Date, subclass: new Later() instanceof Date, utc: Date.UTC(2020, 0, 1), name: Date.name }; };');
    const echo = inlineFunction(stack, 'Echo', 'exports.handler = async (event) => { console.log("got " + JSON.stringify(event)); return {}; };');
    new events.Rule(stack, 'PingRule', {
      eventPattern: { source: ['app'], detailType: ['ping'] },
      targets: [new targets.LambdaFunction(echo, { event: events.RuleTargetInput.fromObject({ constant: 'yes' }) })],
    });
    // A target that cannot be reached: retried twice, then its dead-letter queue.
    const dlq = new sqs.Queue(stack, 'UndeliveredPings');
    const gone = lambda.Function.fromFunctionArn(stack, 'Gone', 'arn:aws:lambda:us-east-1:123456789012:function:deleted-meanwhile');
    new events.Rule(stack, 'LostRule', {
      eventPattern: { source: ['app'], detailType: ['lost'] },
      targets: [new targets.LambdaFunction(gone, { retryAttempts: 2, maxEventAge: Duration.hours(1), deadLetterQueue: dlq })],
    });
    const ticks = new sqs.Queue(stack, 'Ticks');
    new events.Rule(stack, 'Every5Minutes', { schedule: events.Schedule.rate(Duration.minutes(5)), targets: [new targets.SqsQueue(ticks)] });
    const noon = new sqs.Queue(stack, 'Noon');
    new events.Rule(stack, 'AtNoon', { schedule: events.Schedule.cron({ minute: '0', hour: '12' }), targets: [new targets.SqsQueue(noon)] });
    engine = await startTestEngine(stack);
    echoName = engine.assembly.functions.find((f) => f.path === 'Events/Echo')!.name;
    client = new EventBridgeClient({ endpoint: engine.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  }, 120_000);

  afterAll(async () => {
    client?.destroy();
    await engine?.stop();
  });

  test('PutEvents on a custom bus: the pattern picks the big order, the transformer shapes the message', async () => {
    const out = await client.send(new PutEventsCommand({
      Entries: [
        { EventBusName: 'orders', Source: 'shop', DetailType: 'Order Placed', Detail: JSON.stringify({ id: 'o-1', total: 150 }) },
        { EventBusName: 'orders', Source: 'shop', DetailType: 'Order Placed', Detail: JSON.stringify({ id: 'o-2', total: 50 }) },
        // Same order on the default bus: no rule of the orders bus sees it.
        { Source: 'shop', DetailType: 'Order Placed', Detail: JSON.stringify({ id: 'o-3', total: 500 }) },
      ],
    }));
    expect(out.FailedEntryCount).toBe(0);
    expect(out.Entries!.every((e) => e.EventId)).toBe(true);
    await engine.idle();
    expect(engine.queueMessages('Events/BigOrders').map((m) => JSON.parse(m.body))).toEqual([{ order: 'o-1', total: 150 }]);
  });

  test('PutEvents reports bad entries one by one, as AWS does', async () => {
    const out = await client.send(new PutEventsCommand({
      Entries: [
        { Source: 'app', DetailType: 'x', Detail: 'not json' },
        { Source: 'aws.sns', DetailType: 'x', Detail: '{}' },
        { EventBusName: 'nope', Source: 'app', DetailType: 'x', Detail: '{}' },
        { Source: 'app', DetailType: 'x', Detail: '{}' },
      ],
    }));
    expect(out.FailedEntryCount).toBe(3);
    expect(out.Entries!.map((e) => e.ErrorCode ?? 'ok')).toEqual(['MalformedDetail', 'NotAuthorizedForSourceException', 'NotFound', 'ok']);
    await expect(client.send(new PutEventsCommand({ Entries: [] }))).rejects.toMatchObject({ name: 'ValidationException' });
  });

  test('a Lambda target is invoked asynchronously with the rule\'s constant input', async () => {
    await client.send(new PutEventsCommand({ Entries: [{ Source: 'app', DetailType: 'ping', Detail: '{}' }] }));
    await engine.idle();
    expect(engine.counters().functions[echoName]?.invocations).toBe(1);
    expect(engine.logs(echoName).join('\n')).toContain('got {"constant":"yes"}');
  });

  test('an unreachable target is retried per its retry policy, then the event goes to its dead-letter queue', async () => {
    const before = engine.counters().events;
    await client.send(new PutEventsCommand({ Entries: [{ Source: 'app', DetailType: 'lost', Detail: '{"n":1}' }] }));
    const message = await eventually(() => engine.queueMessages('Events/UndeliveredPings')[0]);
    expect(JSON.parse(message.body)).toMatchObject({ 'source': 'app', 'detail-type': 'lost', 'detail': { n: 1 } });
    expect(message.attributes.ERROR_CODE.StringValue).toBe('ResourceNotFoundException');
    expect(message.attributes.TARGET_ARN.StringValue).toBe('arn:aws:lambda:us-east-1:123456789012:function:deleted-meanwhile');
    const after = engine.counters().events;
    expect(after.failedAttempts - before.failedAttempts).toBe(3); // the first attempt and 2 retries
    expect(after.deadLettered - before.deadLettered).toBe(1);
  });

  test('schedules fire on the engine clock: rate every 5 minutes, cron at noon UTC', async () => {
    expect(engine.queueMessages('Events/Ticks')).toHaveLength(0);
    await engine.clock.advance(5 * 60_000);
    await engine.idle();
    const [tick] = engine.queueMessages('Events/Ticks').map((m) => JSON.parse(m.body));
    expect(tick).toMatchObject({ 'source': 'aws.events', 'detail-type': 'Scheduled Event', 'detail': {} });
    expect(tick.resources).toEqual([engine.assembly.eventRules.find((r) => r.path === 'Events/Every5Minutes')!.arn]);
    await engine.clock.advance(10 * 60_000);
    await engine.idle();
    expect(engine.queueMessages('Events/Ticks')).toHaveLength(3);

    // The clock is real time plus what the tests advanced, so the 15 minutes above may have crossed
    // a noon already (a run between 11:45 and 12:00 UTC): count only what arrives from here on.
    const earlierNoons = engine.queueMessages('Events/Noon').length;
    const noonsSince = () => engine.queueMessages('Events/Noon').slice(earlierNoons);
    const now = new Date(engine.clock.now());
    const nextNoon = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate(), 12) + (now.getUTCHours() >= 12 ? 86_400_000 : 0);
    await engine.clock.advance(nextNoon - engine.clock.now() - 1000);
    await engine.idle();
    expect(noonsSince()).toHaveLength(0);
    await engine.clock.advance(1000);
    await engine.idle();
    const noon = noonsSince().map((m) => JSON.parse(m.body));
    expect(noon.map((e) => e.time)).toEqual([new Date(nextNoon).toISOString().replace('.000Z', 'Z')]);
  });

  test('function code\'s Date follows the engine clock, and is still a Date', async () => {
    await engine.clock.advance(86_400_000);
    const result = await engine.invoke(engine.assembly.functions.find((f) => f.path === 'Events/Now')!.name, {});
    const expected = engine.clock.now();
    expect(result.ok).toBe(true);
    const seen = JSON.parse((result as { payload: string }).payload);
    expect(Math.abs(seen.now - expected)).toBeLessThan(5000);
    expect(Math.abs(seen.constructed - expected)).toBeLessThan(5000);
    expect(expected - Date.now()).toBeGreaterThan(86_000_000); // the clock is a day ahead of real time
    expect(seen).toMatchObject({ given: 0, called: 'string', isDate: true, subclass: true, utc: Date.UTC(2020, 0, 1), name: 'Date' });
  });
});
