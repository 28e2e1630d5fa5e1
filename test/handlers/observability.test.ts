/**
 * Logs and metrics of the bundled handlers (lambda/shared/observability.ts, Powertools): JSON log
 * lines keyed by the run, keys cleared between invocations, and CloudWatch embedded-metric-format
 * records on stdout. The other handler tests run with the logs silenced and the metrics disabled;
 * here fresh copies of the bundles run with both on and their output is captured.
 */
import { join } from 'node:path';
import type { Context } from 'aws-lambda';
import { Harness, rejectionOf } from '../support/harness';
import { pumpStream } from '../support/status-stream';

type Handler = (event: unknown, context?: Context) => Promise<any>;
type Line = Record<string, any>;

const WORKFLOW = 'Observed';

let h: Harness;
let handlers: Record<'startRun' | 'sequentialStage' | 'parallelStage' | 'statusSummary' | 'stageFailure' | 'pluginOutcome', Handler>;
beforeAll(async () => {
  h = await Harness.create('observability');
  Object.assign(process.env, { POWERTOOLS_LOG_LEVEL: 'INFO', POWERTOOLS_METRICS_DISABLED: 'false', POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator' });
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
afterAll(async () => h.close());

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

test('start-run: a JSON log line keyed by uid and workflow, with the Lambda context; RunStarted in EMF', async () => {
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
    _aws: { Timestamp: expect.any(Number), CloudWatchMetrics: [{ Namespace: 'CdkOrchestrator', Dimensions: [['service']], Metrics: [{ Name: 'RunStarted', Unit: 'Count' }] }] },
    service: 'cdk-orchestrator',
    uid,
    workflow: WORKFLOW,
    RunStarted: 1,
  })]);
});

test('sequential-stage: stage and plugin metrics by activity; a retry does not count the start twice', async () => {
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

  const dimensions = [['service', 'activity']];
  expect(emf(first)).toEqual([expect.objectContaining({
    _aws: expect.objectContaining({ CloudWatchMetrics: [expect.objectContaining({ Namespace: 'CdkOrchestrator', Dimensions: dimensions })] }),
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

  expect(emf(lines)).toEqual([expect.objectContaining({ activity: 'Fail1', stage: 'pre', error: 'PluginFailed', StageFailed: 1 })]);
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
  expect(duration._aws.CloudWatchMetrics[0]).toEqual({ Namespace: 'CdkOrchestrator', Dimensions: [['service', 'activity']], Metrics: [{ Name: 'ParallelStageDuration', Unit: 'Seconds' }] });
  expect(duration.ParallelStageDuration).toBeGreaterThanOrEqual(0);
});
