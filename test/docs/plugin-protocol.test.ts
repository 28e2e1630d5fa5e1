/**
 * docs/PLUGIN-PROTOCOL.md cannot drift from the code: this file reads the blocks marked
 * `<!-- protocol-test: <name> -->` from the document itself and
 * - sends its two UpdateItem requests, as written (only the table name and the uid replaced), to the
 *   status table of a run on the local engine (DynamoDB Local of the jest global setup), acting as the
 *   PARALLEL plugin `Rate`: they must be accepted, finish or fail the run as the document says, and
 *   be refused once the entry is final;
 * - checks that they are the request `pluginStateUpdate` builds (what the SDK and the orchestrator send);
 * - compares the SNS event, SQS event, plugin message, status document and entry examples with what
 *   the orchestrator really delivered and stored in those runs (no field of the real ones undocumented;
 *   no documented entry or message field that never appears);
 * - checks the handshake answer with the registrar's validation and the queue settings against the
 *   synthesized template.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient, UpdateItemCommand, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { parseHandshakeAnswer } from '../../lambda/shared/handshake';
import { PluginState } from '../../lambda/shared/status';
import { pluginStateUpdate } from '../../lambda/shared/status-store';
import type { ExecutionResult } from '../../local/src';
import { LocalEngine, formatEvent } from '../../local/src';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { inlineFunction, eventually } from '../local/support';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const DOC = join(__dirname, '..', '..', 'docs', 'PLUGIN-PROTOCOL.md');

/** Every `<!-- protocol-test: name -->` block of the document, parsed. */
function blocks(): Record<string, any> {
  const text = readFileSync(DOC, 'utf8');
  const out: Record<string, any> = {};
  for (const match of text.matchAll(/<!-- protocol-test: ([\w-]+) -->\s*```json\n([\s\S]*?)```/g)) {
    try {
      out[match[1]] = JSON.parse(match[2]);
    } catch (error) {
      throw new Error(`block ${match[1]} of PLUGIN-PROTOCOL.md is not JSON: ${(error as Error).message}`);
    }
  }
  return out;
}
const doc = blocks();

// Shapes ------------------------------------------------------------------------------------------

/** The attribute paths of a value with their types; activity, plugin and metadata names as wildcards. */
function shape(value: unknown, prefix = '', out = new Set<string>()): Set<string> {
  if (Array.isArray(value) || value instanceof Set) {
    out.add(`${prefix}:list`);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, child] of Object.entries(value)) {
      const name = prefix === 'activities' || prefix.endsWith('.activities') ? '<activity>'
        : /(^|\.)(mandatory|optional)$/.test(prefix) ? '<plugin>'
          // The three stages have one shape (the document's example shows a stage not started yet).
          : prefix.endsWith('.<activity>') && ['pre', 'async', 'post'].includes(key) ? '<stage>' : key;
      shape(child, prefix ? `${prefix}.${name}` : name, out);
    }
  } else {
    out.add(`${prefix}:${value === null ? 'null' : typeof value}`);
  }
  return out;
}
const missingFrom = (documented: Set<string>, real: Set<string>) => [...real].filter((path) => !documented.has(path)).sort();

// Requests ----------------------------------------------------------------------------------------

/** An update request with every placeholder replaced by its name or value, clauses and conditions sorted. */
interface UpdateRequest {
  readonly UpdateExpression?: string;
  readonly ConditionExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, unknown>;
}

function normalized(request: UpdateRequest) {
  const plain = (value: unknown) => (value !== null && typeof value === 'object' && 'S' in value ? (value as { S: string }).S : value);
  const fill = (expression: string) => expression
    .replace(/#\w+/g, (name) => request.ExpressionAttributeNames![name] ?? `?${name}`)
    .replace(/:\w+/g, (value) => JSON.stringify(plain(request.ExpressionAttributeValues![value])));
  const update = fill(request.UpdateExpression!);
  const clauses: Record<string, string[]> = {};
  for (const part of update.split(/\b(?=SET |REMOVE )/)) {
    const [verb, ...rest] = part.trim().split(' ');
    clauses[verb] = rest.join(' ').split(',').map((clause) => clause.trim()).sort();
  }
  const condition = fill(request.ConditionExpression!).split(' AND ').map((c) => c.replace(/^\(+|\)+$/g, '').replace(/\s+/g, ' ').trim()).sort();
  return { clauses, condition };
}

test('the document has every tested block, each valid JSON', () => {
  expect(Object.keys(doc).sort()).toEqual(['entry', 'handshake-answer', 'plugin-message', 'queue-settings', 'report-with-message',
    'report-without-message', 'sns-event', 'sqs-event', 'status-document'].sort());
});

test('the documented update is the one pluginStateUpdate builds (the SDK, plugin-outcome, sequential-stage, the queue bridge)', () => {
  for (const [name, message] of [['report-without-message', undefined], ['report-with-message', 'amount must not be negative, got -5']] as const) {
    const request = doc[name];
    const values = request.ExpressionAttributeValues;
    const built = pluginStateUpdate({ tableName: request.TableName, key: { uid: 'policy-1234', workflow: 'onboarding' } }, {
      activity: 'Quote', stage: 'async', kind: 'mandatory', plugin: 'Rate', state: values[':state'].S as PluginState, message, now: values[':now'].S,
    });
    expect(normalized(request)).toEqual(normalized(built as never));
    // Every name and value is used (DynamoDB refuses unused ones).
    const expressions = `${request.UpdateExpression} ${request.ConditionExpression}`;
    for (const placeholder of [...Object.keys(request.ExpressionAttributeNames), ...Object.keys(values)]) expect(expressions).toContain(placeholder);
  }
});

test('the documented handshake answer passes the registrar\'s validation', () => {
  expect(parseHandshakeAnswer(doc['handshake-answer'])).toEqual({ ok: true, config: doc['handshake-answer'] });
});

// The app ------------------------------------------------------------------------------------------

function buildApp() {
  const app = new App();
  const stack = new Stack(app, 'Protocol');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities: ['Quote'] });
  new Workflow(stack, 'Onboarding', { orchestrator, activities: ['Quote'], workflowName: 'onboarding' });
  const quote = orchestrator.activity('Quote');
  // PRE: fails the first call of each run once (so its entry shows `attempts`).
  quote.addPlugin(inlineFunction(stack, 'Audit', `const seen = new Set();
    exports.handler = async (event) => { const m = JSON.parse(event.Records[0].Sns.Message);
      if (!seen.has(m.uid)) { seen.add(m.uid); throw new Error('audit service unavailable'); } return {}; };`), { stage: ActivityStage.PRE, pluginName: 'Audit' });
  // PARALLEL, mandatory: hands off ("In Progress"); the test then reports for it with the document's requests.
  quote.addPlugin(inlineFunction(stack, 'Rate', 'exports.handler = async (event) => { console.log("EVENT " + JSON.stringify(event)); return { state: "In Progress" }; };'),
    { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
  quote.addPlugin(inlineFunction(stack, 'Notify', 'exports.handler = async () => ({});'), { stage: ActivityStage.PARALLEL, pluginName: 'Notify', mandatory: false });
  // A queue plugin that only records its SQS event (optional, never reports: the stage ends Mandatory Completed).
  quote.addPlugin(inlineFunction(stack, 'Archive', 'exports.handler = async (event) => { console.log("EVENT " + JSON.stringify(event)); return { batchItemFailures: [] }; };',
    { timeout: Duration.seconds(30) }), { stage: ActivityStage.PARALLEL, pluginName: 'Archive', queue: true, mandatory: false });
  return { app, stack };
}

test('the documented queue settings are the synthesized ones', () => {
  const { app } = buildApp();
  const template = app.synth().getStackByName('Protocol').template as { Resources: Record<string, { Type: string; Properties: any }> };
  const resources = Object.values(template.Resources);
  const settings = doc['queue-settings'];
  const fn = resources.find((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Code?.ZipFile?.includes('batchItemFailures'))!;
  const mapping = resources.find((r) => r.Type === 'AWS::Lambda::EventSourceMapping' && JSON.stringify(r.Properties.FunctionName).includes('Archive'))!;
  expect(mapping.Properties.BatchSize).toBe(settings.batchSize);
  expect(mapping.Properties.FunctionResponseTypes).toEqual(settings.functionResponseTypes);
  const queue = resources.find((r) => r.Type === 'AWS::SQS::Queue' && r.Properties.RedrivePolicy)!;
  expect(queue.Properties.RedrivePolicy.maxReceiveCount).toBe(settings.maxReceiveCount);
  expect(queue.Properties.VisibilityTimeout).toBe(settings.visibilityTimeoutPerFunctionTimeout * fn.Properties.Timeout);
  expect(queue.Properties.VisibilityTimeout).toBe(180);
  const deadLetterQueues = resources.filter((r) => r.Type === 'AWS::SQS::Queue' && !r.Properties.RedrivePolicy);
  expect(deadLetterQueues.map((q) => q.Properties.MessageRetentionPeriod)).toContain(settings.deadLetterQueueRetentionDays * 86_400);
});

describe('the documented requests and examples against runs on the local engine', () => {
  let engine: LocalEngine;
  let ddb: DynamoDBClient;
  let statusTable: string;
  const metadata = { amount: 42, customer: 'ACME', vip: true };
  const seenDocuments: Record<string, any>[] = [];

  const timeline = (uid: string) => engine.events.filter((e) => e.uid === uid).map((e) => formatEvent(e)).join('\n');
  function expectStatus(result: ExecutionResult, status: ExecutionResult['status'], uid: string) {
    if (result.status !== status) throw new Error(`expected ${status}, got ${result.status} (${result.error}: ${result.cause})\n${timeline(uid)}`);
  }
  const events = (fn: string) => engine.logs(fn).filter((line) => line.includes('EVENT {')).map((line) => JSON.parse(line.slice(line.indexOf('EVENT ') + 6)));
  const item = async (uid: string) => {
    const found = (await engine.statusDocument(uid, 'onboarding'))!;
    seenDocuments.push(found);
    return found;
  };
  /** The document's request for this run: its table, its uid, the given state / message / time. */
  function request(name: 'report-with-message' | 'report-without-message', uid: string, changes: { state?: string; message?: string } = {}): UpdateItemCommandInput {
    const copy = JSON.parse(JSON.stringify(doc[name]));
    copy.TableName = statusTable;
    copy.Key.uid.S = uid;
    copy.ExpressionAttributeValues[':now'].S = new Date().toISOString();
    if (changes.state) copy.ExpressionAttributeValues[':state'].S = changes.state;
    if (changes.message) copy.ExpressionAttributeValues[':message'].S = changes.message;
    return copy;
  }
  /** Starts a run and waits until Rate (and the queue plugin) got their messages. */
  async function started(uid: string) {
    const rateBefore = events('Protocol/Rate').length;
    const handle = engine.runWorkflow('onboarding', { uid, metadata });
    await eventually(() => events('Protocol/Rate').length > rateBefore, 20_000, `Rate to get the message of ${uid}`);
    await eventually(async () => (await item(uid)).activities.Quote.async.optional.Archive?.state === 'In Progress', 20_000, 'the queue bridge');
    return handle;
  }

  beforeAll(async () => {
    engine = new LocalEngine({
      app: buildApp().stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      asyncRetryDelaysMs: [100, 200],
      retryIntervalMs: 50,
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    });
    await engine.start();
    statusTable = engine.assembly.functions.find((f) => f.environment.STATUS_TABLE_NAME)!.environment.STATUS_TABLE_NAME;
    ddb = new DynamoDBClient({ endpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], region: 'us-east-1', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  }, 120_000);

  afterAll(async () => {
    ddb?.destroy();
    await engine?.stop();
  });

  test('In Progress, then Complete, as written: the run succeeds; a second final report is refused (ConditionalCheckFailedException)', async () => {
    const handle = await started('policy-1234');
    const waiting = await item('policy-1234');
    expect(waiting.activities.Quote.async.status.token).toEqual(expect.any(String));

    await ddb.send(new UpdateItemCommand(request('report-without-message', 'policy-1234')));
    expect((await item('policy-1234')).activities.Quote.async.mandatory.Rate).toEqual({ state: 'In Progress', updatedAt: expect.any(String) });
    await ddb.send(new UpdateItemCommand(request('report-without-message', 'policy-1234', { state: 'Complete' })));
    const result = await handle.result();
    await engine.idle();
    expectStatus(result, 'SUCCEEDED', 'policy-1234');
    const done = await item('policy-1234');
    expect(done.activities.Quote.async.mandatory.Rate.state).toBe('Complete');
    // The optional queue plugin never reported: the stage is Mandatory Completed, the run Complete.
    expect([done.activities.Quote.async.status.state, done.status.state]).toEqual(['Mandatory Completed', 'Complete']);
    const again = ddb.send(new UpdateItemCommand(request('report-with-message', 'policy-1234')));
    await expect(again).rejects.toMatchObject({ name: 'ConditionalCheckFailedException' });
  }, 60_000);

  test('Error with its message, as written: entry, stage, activity and run as the failure table says; the execution fails PluginFailed', async () => {
    const handle = await started('policy-1235');
    const sent = doc['report-with-message'].ExpressionAttributeValues[':message'].S;
    await ddb.send(new UpdateItemCommand(request('report-with-message', 'policy-1235')));
    const result = await handle.result();
    await engine.idle();
    expectStatus(result, 'FAILED', 'policy-1235');
    expect(result.error).toBe('PluginFailed');
    const failed = await item('policy-1235');
    expect(failed.activities.Quote.async.mandatory.Rate).toEqual({ state: 'Error', message: sent, updatedAt: expect.any(String) });
    expect(failed.activities.Quote.async.status).toEqual(expect.objectContaining({ state: 'Error', message: `Rate: ${sent}` }));
    expect(failed.activities.Quote.status).toEqual({ state: 'Error', message: `async: Rate: ${sent}` });
    expect(failed.status.state).toBe('Error');
  }, 60_000);

  test('limits: a plugin\'s own 300-character message is stored whole; the orchestrator\'s copies are trimmed to 180', async () => {
    const handle = await started('policy-1236');
    const long = `${'x'.repeat(290)} the end.`;
    await ddb.send(new UpdateItemCommand(request('report-with-message', 'policy-1236', { message: long })));
    expectStatus(await handle.result(), 'FAILED', 'policy-1236');
    await engine.idle();
    const failed = await item('policy-1236');
    expect(failed.activities.Quote.async.mandatory.Rate.message).toBe(long);
    expect(failed.activities.Quote.async.status.message).toHaveLength(180);
    expect(failed.activities.Quote.status.message).toHaveLength(180);
  }, 60_000);

  test('the SNS event, the SQS event and the plugin message are what the document shows', () => {
    const [sns] = events('Protocol/Rate');
    expect(missingFrom(shape(doc['sns-event']), shape(sns))).toEqual([]);
    const message = JSON.parse(sns.Records[0].Sns.Message);
    // Both ways: nothing undocumented, nothing documented that is not sent (e.g. a plugin name).
    expect(missingFrom(shape(doc['plugin-message']), shape(message))).toEqual([]);
    expect(missingFrom(shape(message), shape(doc['plugin-message']))).toEqual([]);
    expect(sns.Records[0].Sns.MessageAttributes).toEqual(doc['sns-event'].Records[0].Sns.MessageAttributes);

    const [sqs] = events('Protocol/Archive');
    expect(sqs.Records).toHaveLength(1);
    expect(missingFrom(shape(doc['sqs-event']), shape(sqs))).toEqual([]);
    expect(sqs.Records[0].messageAttributes).toEqual(doc['sqs-event'].Records[0].messageAttributes);
    expect(JSON.parse(sqs.Records[0].body)).toEqual(expect.objectContaining({ uid: message.uid, activity: 'Quote', stage: 'async', vip: true }));
  });

  test('every field of every status document seen is documented; the documented entry fields all occur', () => {
    const documented = shape(doc['status-document']);
    for (const seen of seenDocuments) expect(missingFrom(documented, shape(seen))).toEqual([]);
    const entries = seenDocuments.flatMap((d) => Object.values(d.activities as Record<string, any>).flatMap((activity) =>
      ['pre', 'async', 'post'].flatMap((stage) => ['mandatory', 'optional'].flatMap((kind) => Object.values(activity[stage][kind] ?? {}) as Record<string, unknown>[]))));
    const seenKeys = new Set(entries.flatMap((entry) => Object.keys(entry)));
    expect([...seenKeys].sort()).toEqual(Object.keys(doc.entry).sort());
  });
});
