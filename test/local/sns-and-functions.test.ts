/**
 * SNS fan-out with filter policies, Lambda's asynchronous retries and destinations, SQS
 * subscriptions, and function isolation (own environment and module state per function, warm
 * between invocations) on the local engine.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';

// Each function counts its invocations in module state and reports through its own queue.
const RECORDER = `
const { SQSClient, SendMessageCommand } = require('@aws-sdk/client-sqs');
const sqs = new SQSClient({});
let calls = 0;
exports.handler = async (event) => {
  calls++;
  const message = event.Records ? event.Records[0].Sns.Message : JSON.stringify(event);
  await sqs.send(new SendMessageCommand({ QueueUrl: process.env.OUT, MessageBody: JSON.stringify({ who: process.env.WHO, calls, message }) }));
  if (process.env.FAIL_UNTIL && calls <= Number(process.env.FAIL_UNTIL)) throw new Error('not yet (' + calls + ')');
  return { who: process.env.WHO, calls };
};`;

function buildApp() {
  const stack = newStack('SnsTest');
  const topic = new sns.Topic(stack, 'Topic');
  const out = new sqs.Queue(stack, 'Out');
  const env = (who: string, extra: Record<string, string> = {}) => ({ environment: { WHO: who, OUT: out.queueUrl, ...extra } });

  const all = inlineFunction(stack, 'All', RECORDER, env('all'));
  const gold = inlineFunction(stack, 'Gold', RECORDER, env('gold'));
  const body = inlineFunction(stack, 'Body', RECORDER, env('body'));
  const success = new sqs.Queue(stack, 'Successes');
  const failure = new sqs.Queue(stack, 'Failures');
  const flaky = inlineFunction(stack, 'Flaky', RECORDER, {
    ...env('flaky', { FAIL_UNTIL: '2' }),
    onSuccess: new destinations.SqsDestination(success),
  });
  const broken = inlineFunction(stack, 'Broken', RECORDER, {
    ...env('broken', { FAIL_UNTIL: '100' }),
    retryAttempts: 1,
    onFailure: new destinations.SqsDestination(failure),
  });
  const copy = new sqs.Queue(stack, 'Copy');
  // Each function reports through the Out queue: it needs the right to, as on AWS.
  for (const fn of [all, gold, body, flaky, broken]) out.grantSendMessages(fn);

  topic.addSubscription(new subscriptions.LambdaSubscription(all));
  topic.addSubscription(new subscriptions.LambdaSubscription(gold, {
    filterPolicy: { tier: sns.SubscriptionFilter.stringFilter({ allowlist: ['gold'] }), amount: sns.SubscriptionFilter.numericFilter({ greaterThan: 100 }) },
  }));
  topic.addSubscription(new subscriptions.LambdaSubscription(body, {
    filterPolicyWithMessageBody: { kind: sns.FilterOrPolicy.filter(sns.SubscriptionFilter.stringFilter({ matchPrefixes: ['order-'] })) },
  }));
  topic.addSubscription(new subscriptions.SqsSubscription(copy, { rawMessageDelivery: true }));
  const flakyTopic = new sns.Topic(stack, 'FlakyTopic');
  flakyTopic.addSubscription(new subscriptions.LambdaSubscription(flaky));
  flakyTopic.addSubscription(new subscriptions.LambdaSubscription(broken));
  return stack;
}

let engine: LocalEngine;
beforeAll(async () => {
  engine = new LocalEngine({ app: buildApp(), asyncRetryDelaysMs: [50, 100] });
  await engine.start();
}, 60_000);
afterAll(async () => {
  await engine?.stop();
});

const received = () => engine.queueMessages('SnsTest/Out').map((m) => JSON.parse(m.body) as { who: string; calls: number; message: string });

test('a publish reaches every subscription its filter policy accepts (attributes and body scopes)', async () => {
  const topic = engine.assembly.topics.find((t) => t.path === 'SnsTest/Topic')!.arn;
  engine.publish(topic, JSON.stringify({ kind: 'order-1' }), { tier: { DataType: 'String', StringValue: 'gold' }, amount: { DataType: 'Number', StringValue: '150' } });
  engine.publish(topic, JSON.stringify({ kind: 'refund' }), { tier: { DataType: 'String', StringValue: 'gold' }, amount: { DataType: 'Number', StringValue: '50' } });
  await engine.idle();
  const byWho = (who: string) => received().filter((r) => r.who === who).map((r) => JSON.parse(r.message).kind);
  expect(byWho('all').sort()).toEqual(['order-1', 'refund']);
  expect(byWho('gold')).toEqual(['order-1']);
  expect(byWho('body')).toEqual(['order-1']);
  expect(engine.queueMessages('SnsTest/Copy').map((m) => JSON.parse(m.body).kind).sort()).toEqual(['order-1', 'refund']);
  expect(engine.queueMessages('SnsTest/Copy')[0].attributes.tier).toEqual({ DataType: 'String', StringValue: 'gold' });
  expect(engine.counters().sns).toMatchObject({ publishes: 2, deliveries: 6, filteredOut: 2 });
});

test('functions are isolated: own environment and module state, kept warm between invocations', async () => {
  const counters = engine.counters().functions;
  const all = engine.assembly.functions.find((f) => f.path === 'SnsTest/All')!;
  const gold = engine.assembly.functions.find((f) => f.path === 'SnsTest/Gold')!;
  expect(counters[all.name].invocations).toBe(2);
  expect(counters[gold.name].invocations).toBe(1);
  const first = await engine.invoke('SnsTest/Gold', { direct: true });
  expect(first.ok && JSON.parse(first.payload)).toEqual({ who: 'gold', calls: 2 }); // module state survived
  // Two concurrent deliveries may have used two containers (as Lambda scales out); either is warm now.
  const other = await engine.invoke('SnsTest/All', {});
  expect(other.ok && JSON.parse(other.payload).who).toBe('all');
  expect(other.ok && JSON.parse(other.payload).calls).toBeGreaterThanOrEqual(2);
  expect(engine.counters().functions[all.name].coldStarts).toBeLessThanOrEqual(2);
  expect(engine.counters().functions[gold.name]).toMatchObject({ coldStarts: 1, memoryMb: 128 });
  expect(engine.counters().functions[gold.name].billedMs).toBeGreaterThanOrEqual(2);
});

test('asynchronous invocations are retried twice, then sent to their destinations', async () => {
  const topic = engine.assembly.topics.find((t) => t.path === 'SnsTest/FlakyTopic')!.arn;
  engine.publish(topic, 'hello');
  await eventually(() => engine.queueMessages('SnsTest/Successes').length === 1 && engine.queueMessages('SnsTest/Failures').length === 1, 10_000, 'destinations');
  const attempts = (who: string) => received().filter((r) => r.who === who).length;
  expect(attempts('flaky')).toBe(3); // fails twice, succeeds on the second retry
  expect(attempts('broken')).toBe(2); // retryAttempts: 1
  const success = JSON.parse(engine.queueMessages('SnsTest/Successes')[0].body);
  expect(success).toMatchObject({ requestContext: { condition: 'Success', approximateInvokeCount: 3 }, responsePayload: { who: 'flaky', calls: 3 } });
  const failure = JSON.parse(engine.queueMessages('SnsTest/Failures')[0].body);
  expect(failure).toMatchObject({ requestContext: { condition: 'RetriesExhausted', approximateInvokeCount: 2 }, responsePayload: { errorType: 'Error' } });
  expect(failure.requestPayload.Records[0].Sns.Message).toBe('hello');
});

test('a function the engine cannot run (no local code for its runtime) fails at start with a message naming it and the fix', async () => {
  const stack = newStack('Unmapped');
  // Node.js and Python run locally; Ruby does not.
  const dir = mkdtempSync(join(tmpdir(), 'ruby-'));
  writeFileSync(join(dir, 'index.rb'), 'def handler(event:, context:) end');
  new lambda.Function(stack, 'RbPlugin', { runtime: lambda.Runtime.RUBY_3_3, handler: 'index.handler', code: lambda.Code.fromAsset(dir) });
  const local = new LocalEngine({ app: stack, dynamodbEndpoint: (engine as any).dynamodbUrl });
  try {
    await expect(local.start()).rejects.toThrow(/Function Unmapped\/RbPlugin .* runs ruby3\.3, which the local engine does not run: map it to local code with --plugins/);
  } finally {
    await local.stop();
  }
});
