/**
 * How a Node.js function's AWS SDK calls reach the engine: through its sandbox's message port, not
 * HTTP (function-worker.ts). The SDK client still serializes, signs and parses; the answers must be
 * the ones HTTP gives: the same payload bytes, query strings, named errors, and the SDK's abort
 * signals and timeouts. Code that bundles its own SDK keeps using HTTP, with the same answers.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { buildSync } from 'esbuild';
import { inlineFunction, newStack, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';

/** Echoes its event; sleeps first when asked to. */
const ECHO = 'exports.handler = async (event) => { if (event.sleepMs) await new Promise((r) => setTimeout(r, event.sleepMs)); return event; };';

/** The same calls, written once: inline with the runtime's SDK, and bundled with its own copy of it. */
const CALLER = `
const { LambdaClient, InvokeCommand, TagResourceCommand, UntagResourceCommand, ListTagsCommand } = require('@aws-sdk/client-lambda');
const { DynamoDBClient, PutItemCommand, GetItemCommand } = require('@aws-sdk/client-dynamodb');
const lambdaClient = new LambdaClient({});
const ddb = new DynamoDBClient({});
const nameOf = (e) => e && e.name;
exports.handler = async (event) => {
  const out = {};
  const text = 'héllo ✓ ' + '<&>'.repeat(3);
  const echoed = await lambdaClient.send(new InvokeCommand({ FunctionName: event.echo, Qualifier: '$LATEST', Payload: JSON.stringify({ text }) }));
  // Read as code often reads it: the payload's own bytes, from its ArrayBuffer.
  out.echo = { status: echoed.StatusCode, version: echoed.ExecutedVersion, same: JSON.parse(new TextDecoder().decode(echoed.Payload.buffer)).text === text };
  // Query strings: UntagResource names its keys in the query (tagKeys=a&tagKeys=b%20c).
  await lambdaClient.send(new TagResourceCommand({ Resource: event.echoArn, Tags: { a: '1', 'b c': '2', d: '3' } }));
  await lambdaClient.send(new UntagResourceCommand({ Resource: event.echoArn, TagKeys: ['a', 'b c'] }));
  out.tagsLeft = Object.keys((await lambdaClient.send(new ListTagsCommand({ Resource: event.echoArn }))).Tags);
  await ddb.send(new PutItemCommand({ TableName: event.table, Item: { pk: { S: 'k' }, text: { S: text } } }));
  const item = await ddb.send(new GetItemCommand({ TableName: event.table, Key: { pk: { S: 'k' } }, ConsistentRead: true }));
  out.item = item.Item && item.Item.text.S === text;
  out.conditionFailed = await ddb.send(new PutItemCommand({ TableName: event.table, Item: { pk: { S: 'k' } }, ConditionExpression: 'attribute_not_exists(pk)' }))
    .then(() => 'answered', nameOf);
  out.denied = await ddb.send(new GetItemCommand({ TableName: 'not-granted', Key: { pk: { S: 'k' } } })).then(() => 'answered', nameOf);
  const controller = new AbortController();
  setTimeout(() => controller.abort(), 100);
  const started = Date.now();
  out.aborted = await lambdaClient.send(new InvokeCommand({ FunctionName: event.echo, Payload: JSON.stringify({ sleepMs: 2000 }) }), { abortSignal: controller.signal })
    .then(() => 'answered', nameOf);
  out.abortedWithinMs = Date.now() - started;
  // The SDK's own timeouts (one attempt each: a TimeoutError is retried otherwise).
  const slow = { FunctionName: event.echo, Payload: JSON.stringify({ sleepMs: 1500 }) };
  const timing = (requestHandler) => new LambdaClient({ maxAttempts: 1, requestHandler });
  out.requestTimeout = await timing({ requestTimeout: 100, throwOnRequestTimeout: true }).send(new InvokeCommand(slow)).then(() => 'answered', nameOf);
  out.socketTimeout = await timing({ socketTimeout: 100 }).send(new InvokeCommand(slow)).then(() => 'answered', nameOf);
  return out;
};`;

/**
 * An ES module handler importing the runtime's SDK, as Lambda's Node.js runtimes allow (the console's
 * own `index.mjs` does): the import resolves, and the SDK it gets is patched too.
 */
const ESM_CALLER = `import { LambdaClient, InvokeCommand } from '@aws-sdk/client-lambda';
const client = new LambdaClient({});
export const handler = async (event) => {
  const out = await client.send(new InvokeCommand({ FunctionName: event.echo, Payload: JSON.stringify({ text: 'from esm' }) }));
  return JSON.parse(new TextDecoder().decode(out.Payload));
};`;

describe('AWS SDK calls from a Node.js sandbox', () => {
  let engine: LocalEngine;
  let names: { echo: string; echoArn: string; inline: string; bundled: string; esm: string; table: string };

  beforeAll(async () => {
    // The bundled caller carries its own AWS SDK, HTTP handler included, as `esbuild --bundle` makes it.
    const bundleDir = mkdtempSync(join(tmpdir(), 'bundled-sdk-'));
    buildSync({ stdin: { contents: CALLER, resolveDir: process.cwd() }, bundle: true, platform: 'node', target: 'node20', outfile: join(bundleDir, 'index.js'), logLevel: 'error' });
    const stack = newStack('Transport');
    const table = new dynamodb.Table(stack, 'Items', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    const echo = inlineFunction(stack, 'Echo', ECHO);
    const inline = inlineFunction(stack, 'Inline', CALLER);
    const bundled = new lambda.Function(stack, 'Bundled', {
      runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromAsset(bundleDir), timeout: Duration.seconds(10),
    });
    const esmDir = mkdtempSync(join(tmpdir(), 'esm-caller-'));
    writeFileSync(join(esmDir, 'index.mjs'), ESM_CALLER);
    const esm = new lambda.Function(stack, 'Esm', {
      runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromAsset(esmDir), timeout: Duration.seconds(10),
    });
    echo.grantInvoke(esm);
    for (const caller of [inline, bundled]) {
      echo.grantInvoke(caller);
      table.grantReadWriteData(caller);
      caller.addToRolePolicy(new iam.PolicyStatement({ actions: ['lambda:TagResource', 'lambda:UntagResource', 'lambda:ListTags'], resources: [echo.functionArn] }));
    }
    engine = await startTestEngine(stack);
    const nameOf = (id: string) => engine.assembly.functions.find((f) => f.path === `Transport/${id}`)!.name;
    const echoFunction = engine.assembly.functions.find((f) => f.path === 'Transport/Echo')!;
    names = { echo: echoFunction.name, echoArn: echoFunction.arn, inline: nameOf('Inline'), bundled: nameOf('Bundled'), esm: nameOf('Esm'), table: engine.assembly.tables[0].name };
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  const expected = {
    echo: { status: 200, version: '$LATEST', same: true },
    item: true,
    // DynamoDB Local's own error, and the engine's authorization denying a table the role was not granted.
    conditionFailed: 'ConditionalCheckFailedException',
    denied: 'AccessDeniedException',
    tagsLeft: ['d'],
    aborted: 'AbortError',
    requestTimeout: 'TimeoutError',
    socketTimeout: 'TimeoutError',
  };

  /** Invokes a function; its answer (or error), and the endpoint calls made meanwhile, by way. */
  async function invokeCounting(fn: string, event: Record<string, unknown>) {
    const before = engine.counters().endpointCalls;
    const result = await engine.invoke(fn, event);
    const after = engine.counters().endpointCalls;
    return {
      answer: result.ok ? JSON.parse(result.payload) : result.error,
      calls: { http: after.http - before.http, messagePort: after.messagePort - before.messagePort },
    };
  }

  test('the runtime\'s SDK calls the endpoint over the message port: payload bytes, query strings, named errors, aborts and timeouts as over HTTP', async () => {
    const { answer, calls } = await invokeCounting(names.inline, { echo: names.echo, echoArn: names.echoArn, table: names.table });
    expect(answer).toMatchObject(expected);
    expect(answer.abortedWithinMs).toBeLessThan(1500);
    // Eleven calls (four Invokes, three of them cut short; two PutItems; two GetItems; three tag calls), none over HTTP.
    expect(calls).toEqual({ messagePort: 11, http: 0 });
  }, 30_000);

  test('code that bundles its own SDK calls over HTTP and gets the same answers', async () => {
    const { answer, calls } = await invokeCounting(names.bundled, { echo: names.echo, echoArn: names.echoArn, table: names.table });
    expect(answer).toMatchObject(expected);
    expect(calls).toEqual({ messagePort: 0, http: 11 });
  }, 30_000);

  test('an ES module handler imports the runtime\'s SDK, and its calls take the message port too', async () => {
    const { answer, calls } = await invokeCounting(names.esm, { echo: names.echo });
    expect(answer).toEqual({ text: 'from esm' });
    expect(calls).toEqual({ messagePort: 1, http: 0 });
  }, 30_000);
});
