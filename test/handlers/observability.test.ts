/**
 * Logs, metrics and traces of the bundled handlers (lambda/shared/observability.ts, Powertools): JSON
 * log lines keyed by the run, keys cleared between invocations, CloudWatch embedded-metric-format
 * records on stdout, and X-Ray subsegments (at the end of this file). The other handler tests run with the logs silenced and the metrics disabled;
 * here fresh copies of the bundles run with both on and their output is captured.
 */
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetCommand } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { FunctionHost } from '../../local/src/engine/function-host';
import { Harness, rejectionOf } from '../support/harness';
import { pumpStream } from '../support/status-stream';

type Handler = (event: unknown, context?: Context) => Promise<any>;
type Line = Record<string, any>;

const WORKFLOW = 'Observed';
/** The handlers' ORCHESTRATOR_NAME: every metric carries it as the `orchestrator` dimension. */
const ORCHESTRATOR = 'ObservedOrch';

let h: Harness;
let handlers: Record<'startRun' | 'sequentialStage' | 'parallelStage' | 'statusSummary' | 'stageFailure' | 'pluginOutcome', Handler>;
beforeAll(async () => {
  h = await Harness.create('observability');
  Object.assign(process.env, {
    POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator', ORCHESTRATOR_NAME: ORCHESTRATOR,
  });
  // Fresh module instances: Powertools reads its environment when the bundle loads.
  jest.isolateModules(() => {
    const load = (name: string) => jest.requireActual<{ handler: Handler }>(join(__dirname, '..', '..', 'assets', 'handlers', name, 'index.js')).handler;
    handlers = {
      startRun: load('start-run'),
      sequentialStage: load('sequential-stage'),
      parallelStage: load('parallel-stage'),
      statusSummary: load('status-summary'),
      stageFailure: load('stage-failure'),
      pluginOutcome: load('plugin-outcome'),
    };
  });
});
afterAll(async () => {
  delete process.env.ORCHESTRATOR_NAME;
  await h.close();
});

/** Runs `work` and returns the JSON lines it wrote to stdout and stderr. */
async function captured(work: () => Promise<unknown>): Promise<Line[]> {
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
    await work().catch(() => undefined);
  } finally {
    streams.forEach((stream, i) => { stream.write = originals[i]; });
  }
  return lines.map((line) => JSON.parse(line) as Line);
}

const logs = (lines: Line[]) => lines.filter((line) => !line._aws);
const emf = (lines: Line[]) => lines.filter((line) => line._aws);
const lambdaContext = (requestId: string) => ({
  functionName: 'start-run',
  functionVersion: '$LATEST',
  invokedFunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:start-run',
  memoryLimitInMB: '256',
  awsRequestId: requestId,
  logGroupName: '/aws/lambda/start-run',
  logStreamName: 'stream',
  callbackWaitsForEmptyEventLoop: true,
  getRemainingTimeInMillis: () => 30_000,
} as unknown as Context);

let counter = 0;
const newUid = () => `obs-${++counter}-${Date.now()}`;

test('start-run: a JSON log line keyed by uid and workflow, with the Lambda context; RunStarted in EMF by orchestrator', async () => {
  const uid = newUid();
  const lines = await captured(() => handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['A'] }, lambdaContext('req-1')));

  expect(logs(lines)).toEqual([expect.objectContaining({
    level: 'INFO',
    message: 'Run created',
    service: 'cdk-orchestrator',
    uid,
    workflow: WORKFLOW,
    activities: ['A'],
    function_request_id: 'req-1',
    function_name: 'start-run',
    cold_start: expect.any(Boolean),
    timestamp: expect.any(String),
  })]);
  expect(emf(lines)).toEqual([expect.objectContaining({
    _aws: { Timestamp: expect.any(Number), CloudWatchMetrics: [{ Namespace: 'CdkOrchestrator', Dimensions: [['service', 'orchestrator']], Metrics: [{ Name: 'RunStarted', Unit: 'Count' }] }] },
    service: 'cdk-orchestrator',
    orchestrator: ORCHESTRATOR,
    uid,
    workflow: WORKFLOW,
    RunStarted: 1,
  })]);
});

test('sequential-stage: stage and plugin metrics by orchestrator and activity; a retry does not count the start twice', async () => {
  const uid = newUid();
  await captured(() => handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Pre1'] })); // set-up, output not checked
  await h.registerPlugin({ activity: 'Pre1', stage: 'pre', name: 'Flaky' });
  let calls = 0;
  h.fake.onInvoke('Flaky', () => {
    if (++calls === 1) throw Object.assign(new Error('try again'), { name: 'ServiceError' });
    return {};
  });
  const event = { uid, workflow: WORKFLOW, activity: 'Pre1', stage: 'pre', topicArn: h.topicArn('Pre1-pre'), maxAttempts: 3 };

  const first = await captured(() => handlers.sequentialStage(event));
  const second = await captured(() => handlers.sequentialStage(event));

  const dimensions = [['service', 'orchestrator', 'activity']];
  expect(emf(first)).toEqual([expect.objectContaining({
    _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: 'CdkOrchestrator', Dimensions: dimensions })] }),
    orchestrator: ORCHESTRATOR,
    activity: 'Pre1',
    uid,
    workflow: WORKFLOW,
    stage: 'pre',
    StageStarted: 1,
    PluginErrors: 1,
  })]);
  const [retry] = emf(second);
  expect(retry).toMatchObject({ activity: 'Pre1', StageCompleted: 1 });
  expect(retry.StageStarted).toBeUndefined();
  expect(retry._aws.CloudWatchMetrics[0].Dimensions).toEqual(dimensions);
  expect(logs(second).map((line) => [line.message, line.uid, line.activity, line.stage])).toEqual([['Plugin invoked', uid, 'Pre1', 'pre']]);
});

test('keys are cleared between invocations: a record ignored before parsing its run carries none of the last run', async () => {
  const uid = newUid();
  await captured(() => handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Par1'] })); // set-up, output not checked
  const message = JSON.stringify({ uid, workflow: WORKFLOW, activity: 'Par1', stage: 'async', now: new Date().toISOString() });
  const record = (payload: unknown) => ({
    requestContext: { functionArn: h.functionArn('Plugin'), condition: 'Success', approximateInvokeCount: 1 },
    requestPayload: payload,
    responseContext: {},
    responsePayload: null,
  });
  const delivered = record({ Records: [{ EventSubscriptionArn: `${h.topicArn('Par1-parallel')}:unknown`, Sns: { Message: message } }] });

  const first = await captured(() => handlers.pluginOutcome(delivered));
  const second = await captured(() => handlers.pluginOutcome(record({ not: 'an SNS event' })));

  // The first is about the run (its keys), the second could not tell which run: no keys left over.
  expect(logs(first)).toEqual([expect.objectContaining({ level: 'WARN', message: 'Destination record ignored', uid, workflow: WORKFLOW, activity: 'Par1', stage: 'async' })]);
  expect(logs(second)).toEqual([expect.objectContaining({ level: 'WARN', message: 'Destination record ignored' })]);
  for (const key of ['uid', 'workflow', 'activity', 'stage']) expect(logs(second)[0]).not.toHaveProperty(key);
  expect(emf(second)).toEqual([]); // nothing counted: no record at all
});

test('stage-failure counts StageFailed once per failed activity execution, with the stage and error as metadata', async () => {
  const uid = newUid();
  await captured(() => handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Fail1'] })); // set-up, output not checked
  await h.registerPlugin({ activity: 'Fail1', stage: 'pre', name: 'Broken' });
  h.fake.onInvoke('Broken', () => ({ state: 'Error', message: 'no' }));
  const pre = await captured(() => handlers.sequentialStage({ uid, workflow: WORKFLOW, activity: 'Fail1', stage: 'pre', topicArn: h.topicArn('Fail1-pre'), maxAttempts: 3 }));
  expect(emf(pre)).toEqual([expect.objectContaining({ StageStarted: 1, PluginErrors: 1 })]); // PluginFailed: not completed

  const lines = await captured(() => rejectionOf(handlers.stageFailure({
    uid, workflow: WORKFLOW, activity: 'Fail1', error: { Error: 'PluginFailed', Cause: JSON.stringify({ errorMessage: 'Broken: no' }) },
  })));

  expect(emf(lines)).toEqual([expect.objectContaining({ orchestrator: ORCHESTRATOR, activity: 'Fail1', stage: 'pre', error: 'PluginFailed', StageFailed: 1 })]);
  expect(emf(lines)[0]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service', 'orchestrator', 'activity']]);
});

test('status-summary: when a parallel stage settles, StageCompleted and ParallelStageDuration (seconds) of its activity', async () => {
  const uid = newUid();
  await captured(() => handlers.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['Par2'] })); // set-up, output not checked
  await h.registerPlugin({ activity: 'Par2', stage: 'async', name: 'Worker' });
  const started = await captured(() => handlers.parallelStage({ uid, workflow: WORKFLOW, activity: 'Par2', stage: 'async', topicArn: h.topicArn('Par2-parallel'), token: 'token-par2' }));
  expect(emf(started)).toEqual([expect.objectContaining({ activity: 'Par2', stage: 'async', StageStarted: 1 })]); // waits: not completed yet
  await h.report({ uid, workflow: WORKFLOW, activity: 'Par2', stage: 'async', plugin: 'Worker', state: 'Complete' });

  const lines = await captured(() => pumpStream(h.stream, handlers.statusSummary));

  const records = emf(lines).filter((line) => line.activity === 'Par2');
  expect(records).toEqual(expect.arrayContaining([
    expect.objectContaining({ uid, workflow: WORKFLOW, stage: 'async', StageCompleted: 1 }),
    expect.objectContaining({ uid, workflow: WORKFLOW, stage: 'async', ParallelStageDuration: expect.any(Number) }),
  ]));
  const duration = records.find((line) => 'ParallelStageDuration' in line)!;
  expect(duration._aws.CloudWatchMetrics[0]).toEqual({
    Namespace: 'CdkOrchestrator', Dimensions: [['service', 'orchestrator', 'activity']], Metrics: [{ Name: 'ParallelStageDuration', Unit: 'Seconds' }],
  });
  expect(duration.orchestrator).toBe(ORCHESTRATOR);
  expect(duration.ParallelStageDuration).toBeGreaterThanOrEqual(0);
});

test('without ORCHESTRATOR_NAME the handlers still publish their metrics, without the orchestrator dimension', async () => {
  let startRun: Handler;
  delete process.env.ORCHESTRATOR_NAME;
  try {
    jest.isolateModules(() => {
      startRun = jest.requireActual<{ handler: Handler }>(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js')).handler;
    });
  } finally {
    process.env.ORCHESTRATOR_NAME = ORCHESTRATOR;
  }
  const uid = newUid();

  const lines = await captured(() => startRun({ input: { uid }, workflow: WORKFLOW, activities: ['A'] }));

  expect(logs(lines)).toEqual([expect.objectContaining({ level: 'INFO', message: 'Run created', uid })]);
  const [record] = emf(lines);
  expect(record).toMatchObject({ RunStarted: 1, uid });
  expect(record).not.toHaveProperty('orchestrator');
  expect(record._aws.CloudWatchMetrics[0].Dimensions).toEqual([['service']]);
});

/**
 * Traces (Powertools Tracer, X-Ray SDK): fresh copies of the bundles load as in Lambda with active
 * tracing (AWS_EXECUTION_ENV, LAMBDA_TASK_ROOT, a sampled `_X_AMZN_TRACE_ID` per invocation), and a
 * UDP socket stands in for the X-Ray daemon (no emulator exists; the SDK streams each closed
 * subsegment to it as `{"format":"json","version":1}\n<document>`).
 */
describe('traces', () => {
  type Document = Record<string, any>;
  const received: Document[] = [];
  const daemon = createSocket('udp4');
  const TRACE_ENV = ['AWS_EXECUTION_ENV', 'LAMBDA_TASK_ROOT', '_HANDLER', 'AWS_XRAY_DAEMON_ADDRESS', 'AWS_LAMBDA_INITIALIZATION_TYPE', '_X_AMZN_TRACE_ID'];
  let traced: typeof handlers;

  beforeAll(async () => {
    daemon.on('message', (packet) => received.push(JSON.parse(packet.toString('utf8').split('\n')[1]) as Document));
    await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
    Object.assign(process.env, {
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      LAMBDA_TASK_ROOT: join(__dirname, '..', '..', 'assets', 'handlers'),
      _HANDLER: 'index.handler',
      AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}`,
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    });
    jest.isolateModules(() => {
      const load = (name: string) => jest.requireActual<{ handler: Handler }>(join(__dirname, '..', '..', 'assets', 'handlers', name, 'index.js')).handler;
      traced = {
        startRun: load('start-run'),
        sequentialStage: load('sequential-stage'),
        parallelStage: load('parallel-stage'),
        statusSummary: load('status-summary'),
        stageFailure: load('stage-failure'),
        pluginOutcome: load('plugin-outcome'),
      };
    });
  });
  afterAll(() => {
    for (const key of TRACE_ENV) delete process.env[key];
    daemon.close();
  });

  /** Runs one invocation under a new trace (as Lambda does) and returns the documents it sent. */
  async function invocation(work: () => Promise<unknown>, sampled = true): Promise<{ traceId: string; documents: Document[] }> {
    const traceId = `1-${Math.floor(Date.now() / 1000).toString(16)}-${randomBytes(12).toString('hex')}`;
    process.env._X_AMZN_TRACE_ID = `Root=${traceId};Parent=${randomBytes(8).toString('hex')};Sampled=${sampled ? 1 : 0}`;
    await captured(work);
    const mine = () => received.filter((doc) => doc.trace_id === traceId);
    // UDP on the loopback: the documents arrive within milliseconds of the subsegments closing.
    for (let waited = 0; sampled && waited < 2000 && !mine().some((doc) => doc.name?.startsWith('## ')); waited += 20) await new Promise((r) => setTimeout(r, 20));
    if (!sampled) await new Promise((r) => setTimeout(r, 200));
    return { traceId, documents: mine() };
  }
  const handlerSegment = (documents: Document[]) => documents.filter((doc) => doc.name === '## index.handler');

  test('start-run: one handler subsegment annotated with the run, its DynamoDB call below it; ColdStart only first', async () => {
    const uid = newUid();
    const first = await invocation(() => traced.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['T1'] }, lambdaContext('trace-1')));
    const second = await invocation(() => traced.startRun({ input: { uid: `${uid}-b` }, workflow: WORKFLOW, activities: ['T1'] }, lambdaContext('trace-2')));

    const [subsegment] = handlerSegment(first.documents);
    expect(handlerSegment(first.documents)).toHaveLength(1);
    expect(subsegment.annotations).toEqual({ ColdStart: true, Service: 'cdk-orchestrator', uid, workflow: WORKFLOW });
    expect(subsegment.fault).toBeUndefined();
    expect(first.documents).toContainEqual(expect.objectContaining({
      name: 'DynamoDB', namespace: 'aws', parent_id: subsegment.id, aws: expect.objectContaining({ operation: 'PutItem' }),
    }));
    // The next invocation: its own trace, no cold start, and none of the first run's keys.
    expect(handlerSegment(second.documents)[0].annotations).toEqual({ ColdStart: false, Service: 'cdk-orchestrator', uid: `${uid}-b`, workflow: WORKFLOW });
  });

  test('parallel-stage and sequential-stage: the SNS publish and the plugin invocation are traced, annotated by activity and stage', async () => {
    const uid = newUid();
    await invocation(() => traced.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['T2'] }));
    await h.registerPlugin({ activity: 'T2', stage: 'async', name: 'TracedWorker' });
    await h.registerPlugin({ activity: 'T2', stage: 'pre', name: 'TracedPre' });
    h.fake.onInvoke('TracedPre', () => ({}));

    const pre = await invocation(() => traced.sequentialStage({ uid, workflow: WORKFLOW, activity: 'T2', stage: 'pre', topicArn: h.topicArn('T2-pre'), maxAttempts: 3 }));
    const parallel = await invocation(() => traced.parallelStage({ uid, workflow: WORKFLOW, activity: 'T2', stage: 'async', topicArn: h.topicArn('T2-parallel'), token: 'token-t2' }));

    for (const [run, stage, service, operation] of [[pre, 'pre', 'Lambda', 'Invoke'], [parallel, 'async', 'SNS', 'Publish']] as const) {
      const [subsegment] = handlerSegment(run.documents);
      expect(subsegment.annotations).toMatchObject({ uid, workflow: WORKFLOW, activity: 'T2', stage });
      expect(run.documents).toContainEqual(expect.objectContaining({
        name: service, parent_id: subsegment.id, aws: expect.objectContaining({ operation }),
      }));
      expect(run.documents).toContainEqual(expect.objectContaining({ name: 'DynamoDB', parent_id: subsegment.id }));
    }
  });

  test('a handler that throws: its subsegment is a fault carrying the error', async () => {
    const uid = newUid();
    await invocation(() => traced.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['T3'] }));

    const failed = await invocation(() => traced.stageFailure({ uid, workflow: WORKFLOW, activity: 'T3', error: { Error: 'PluginFailed', Cause: '{}' } }));

    const [subsegment] = handlerSegment(failed.documents);
    expect(subsegment.fault).toBe(true);
    expect(subsegment.cause.exceptions[0]).toMatchObject({ type: 'PluginFailed' });
  });

  test('a container whose first invocations are unsampled: its first sampled one is traced in full, without ColdStart', async () => {
    let startRun!: Handler;
    // A new container: the bundle's module state (clients, tracer, cold start) is fresh.
    jest.isolateModules(() => {
      startRun = jest.requireActual<{ handler: Handler }>(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js')).handler;
    });
    const uids = [newUid(), newUid(), newUid()];

    const unsampled = await invocation(() => startRun({ input: { uid: uids[0] }, workflow: WORKFLOW, activities: ['T5'] }, lambdaContext('t5-1')), false);
    const sampled = await invocation(() => startRun({ input: { uid: uids[1] }, workflow: WORKFLOW, activities: ['T5'] }, lambdaContext('t5-2')));
    const unsampledAgain = await invocation(() => startRun({ input: { uid: uids[2] }, workflow: WORKFLOW, activities: ['T5'] }, lambdaContext('t5-3')), false);

    expect(unsampled.documents).toEqual([]);
    const [subsegment] = handlerSegment(sampled.documents);
    expect(subsegment.annotations).toEqual({ ColdStart: false, Service: 'cdk-orchestrator', uid: uids[1], workflow: WORKFLOW });
    // The DynamoDB client the unsampled invocation made carries no tracing: the sampled one gets a traced client.
    expect(sampled.documents).toContainEqual(expect.objectContaining({
      name: 'DynamoDB', parent_id: subsegment.id, aws: expect.objectContaining({ operation: 'PutItem' }),
    }));
    // ... which an unsampled invocation does not use: it records nothing once the tracer is loaded either.
    expect(unsampledAgain.documents).toEqual([]);
    for (const uid of uids) {
      expect((await h.db.send(new GetCommand({ TableName: h.statusTable, Key: { uid, workflow: WORKFLOW } }))).Item).toMatchObject({ uid });
    }
  });

  test('an unsampled invocation (Sampled=0, as the local engine runs them) sends nothing and works the same', async () => {
    const uid = newUid();
    const run = await invocation(() => traced.startRun({ input: { uid }, workflow: WORKFLOW, activities: ['T4'] }), false);

    expect(run.documents).toEqual([]);
    expect((await h.db.send(new GetCommand({ TableName: h.statusTable, Key: { uid, workflow: WORKFLOW } }))).Item).toMatchObject({ uid });
  });
});

/**
 * The local engine runs the same bundles in worker threads (local/src/engine/function-host.ts) with the
 * environment Lambda gives them; it fetches no layers. Here the start-run bundle is copied outside the
 * repository (as into a cdk.out anywhere), so its `require('@aws-lambda-powertools/...')` resolves only
 * through the engine's runtime module paths.
 */
test('local engine: a bundle outside the repo finds Powertools; each invocation has an unsampled trace id; no X-Ray complaints', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'obs-bundle-'));
  copyFileSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'), join(dir, 'index.js'));
  const lines: string[] = [];
  const host = startRunSandbox(dir, 'index.js', { POWERTOOLS_LOG_LEVEL: 'INFO' }, (_name, line) => lines.push(line));
  try {
    const uids = [newUid(), newUid()];
    for (const uid of uids) {
      const result = await host.invoke({ input: { uid }, workflow: WORKFLOW, activities: ['L1'] });
      expect(result).toMatchObject({ ok: true });
    }

    const entries = lines.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Line);
    expect(entries.map((entry) => entry.message)).toEqual(['Run created', 'Run created']);
    const traceIds = entries.map((entry) => entry.xray_trace_id);
    expect(traceIds.every((id) => /^1-[0-9a-f]{8}-[0-9a-f]{24}$/.test(id))).toBe(true);
    expect(new Set(traceIds).size).toBe(2);
    expect(lines.filter((line) => /segment|x-?ray|trace data/i.test(line) && !line.startsWith('{'))).toEqual([]);
  } finally {
    await host.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * Unsampled invocations do no tracing work: the X-Ray SDK (its async hooks run on every promise) is
 * not even loaded. A probe wraps the real bundle in the engine's sandbox and reports what its thread
 * has loaded; `sampled` makes the probe mark the trace header sampled, as Lambda does for the
 * invocations X-Ray records, to show the probe sees the SDK when it is there.
 */
test('local engine: unsampled invocations never load the X-Ray SDK; a sampled one loads it and sends its trace', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'obs-probe-'));
  copyFileSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'), join(dir, 'index.js'));
  writeFileSync(join(dir, 'probe.js'), [
    "const bundle = require('./index.js');",
    'exports.handler = async ({ sampled, event }, context) => {',
    "  if (sampled) process.env._X_AMZN_TRACE_ID = process.env._X_AMZN_TRACE_ID.replace('Sampled=0', 'Sampled=1');",
    '  const result = await bundle.handler(event, context);',
    "  return { result, xraySdkLoaded: Object.keys(require.cache).some((file) => file.includes('aws-xray-sdk-core')) };",
    '};',
  ].join('\n'));
  const daemon = createSocket('udp4');
  const documents: Line[] = [];
  daemon.on('message', (packet) => documents.push(JSON.parse(packet.toString('utf8').split('\n')[1]) as Line));
  await new Promise<void>((resolve) => daemon.bind(0, '127.0.0.1', resolve));
  const host = startRunSandbox(dir, 'probe.js', { POWERTOOLS_LOG_LEVEL: 'SILENT', AWS_XRAY_DAEMON_ADDRESS: `127.0.0.1:${daemon.address().port}` });
  const invoke = async (sampled: boolean) => {
    const result = await host.invoke({ sampled, event: { input: { uid: newUid() }, workflow: WORKFLOW, activities: ['L2'] } });
    if (!result.ok) throw new Error(`probe failed: ${JSON.stringify(result)}`);
    return JSON.parse(result.payload) as { result: Line; xraySdkLoaded: boolean };
  };
  try {
    for (let i = 0; i < 3; i++) {
      expect(await invoke(false)).toMatchObject({ xraySdkLoaded: false, result: { uid: expect.any(String) } });
    }
    expect(documents).toEqual([]);

    expect(await invoke(true)).toMatchObject({ xraySdkLoaded: true, result: { uid: expect.any(String) } });
    for (let waited = 0; waited < 2000 && !documents.some((doc) => doc.name === '## index.handler'); waited += 20) await new Promise((r) => setTimeout(r, 20));
    expect(documents.map((doc) => doc.name)).toEqual(expect.arrayContaining(['## index.handler', 'DynamoDB']));
  } finally {
    await host.stop();
    daemon.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

/**
 * The start-run bundle (or a `file` wrapping it) in an engine sandbox, with the environment the engine
 * gives every function (engine.ts environmentFor): Lambda's variables, so the tracer would turn on.
 */
function startRunSandbox(
  dir: string, file: string, environment: Record<string, string>, onLog: (name: string, line: string) => void = () => undefined,
): FunctionHost {
  const fn = {
    logicalId: 'StartRun',
    stackName: 'Local',
    name: 'start-run',
    arn: 'arn:aws:lambda:us-east-1:123456789012:function:start-run',
    handler: `${file.replace(/\.js$/, '')}.handler`,
    runtime: 'nodejs24.x',
    codeDir: dir,
    environment: {},
    memoryMb: 256,
    timeoutSeconds: 30,
  };
  return new FunctionHost({
    fn,
    entry: { file: join(dir, file), exportName: 'handler' },
    environment: {
      PATH: process.env.PATH ?? '',
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_ENDPOINT_URL_DYNAMODB: process.env.AWS_ENDPOINT_URL_DYNAMODB!,
      STATUS_TABLE_NAME: h.statusTable,
      POWERTOOLS_METRICS_DISABLED: 'true',
      AWS_EXECUTION_ENV: 'AWS_Lambda_nodejs24.x',
      LAMBDA_TASK_ROOT: dir,
      _HANDLER: 'index.handler',
      ...environment,
    },
    maxWorkers: 1,
    onLog,
  });
}
