/**
 * Step Functions on the local engine: Lambda tasks with Lambda's error shape, callback tokens
 * (success, failure, timeout, heartbeat timeout, used and unknown tokens) and nested `.sync:2`
 * executions whose failure surfaces like AWS's (States.TaskFailed + DescribeExecution cause).
 */
import { SendTaskSuccessCommand, SFNClient } from '@aws-sdk/client-sfn';
import { Duration } from 'aws-cdk-lib';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';

const WORKER = `
const { SFNClient, SendTaskSuccessCommand, SendTaskFailureCommand, SendTaskHeartbeatCommand } = require('@aws-sdk/client-sfn');
const sfn = new SFNClient({});
class Boom extends Error { constructor(m) { super(m); this.name = 'Boom'; } }
exports.handler = async (event) => {
  switch (event.mode) {
    case 'ok': return { echo: event.value };
    case 'fail': throw new Boom('it broke: ' + event.value);
    case 'callback-success':
      setTimeout(() => sfn.send(new SendTaskSuccessCommand({ taskToken: event.token, output: JSON.stringify({ token: event.token, done: true }) })), 50);
      return 'sent later';
    case 'callback-failure':
      await sfn.send(new SendTaskFailureCommand({ taskToken: event.token, error: 'PluginFailed', cause: 'rate: no quote' }));
      return 'failed';
    case 'heartbeat-then-success':
      for (let i = 0; i < 4; i++) {
        await new Promise((r) => setTimeout(r, 400));
        await sfn.send(new SendTaskHeartbeatCommand({ taskToken: event.token }));
      }
      await sfn.send(new SendTaskSuccessCommand({ taskToken: event.token, output: '{"beat":4}' }));
      return 'ok';
    default: return 'ignored';
  }
};`;

function buildApp() {
  const stack = newStack('SfnTest');
  const worker = inlineFunction(stack, 'Worker', WORKER);

  const callback = new tasks.LambdaInvoke(stack, 'Wait', {
    lambdaFunction: worker,
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject({ 'mode.$': '$.mode', 'token': sfn.JsonPath.taskToken }),
    taskTimeout: sfn.Timeout.duration(Duration.seconds(3)),
    heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(1)),
  });
  const callbackMachine = new sfn.StateMachine(stack, 'Callback', { stateMachineName: 'Callback', definitionBody: sfn.DefinitionBody.fromChainable(callback) });
  // The worker answers the callback: it needs states:SendTask* on the machine, as on AWS.
  callbackMachine.grantTaskResponse(worker);

  const child = new tasks.LambdaInvoke(stack, 'Work', {
    lambdaFunction: worker,
    payload: sfn.TaskInput.fromObject({ 'mode.$': '$.mode', 'value.$': '$.value' }),
    payloadResponseOnly: true,
    retryOnServiceExceptions: false,
  });
  const childMachine = new sfn.StateMachine(stack, 'Child', { stateMachineName: 'Child', definitionBody: sfn.DefinitionBody.fromChainable(child) });

  // The Workflow shape of DESIGN.md: a failed nested execution fails the parent with the child's own error.
  const failed = new sfn.Fail(stack, 'Failed', { errorPath: '$.failure.Error', causePath: '$.failure.Cause' });
  const unwrap = new sfn.Pass(stack, 'ActivityFailed', { parameters: { 'failure.$': 'States.StringToJson($.error.Cause)' } }).next(failed);
  const start = new tasks.StepFunctionsStartExecution(stack, 'RunChild', {
    stateMachine: childMachine,
    integrationPattern: sfn.IntegrationPattern.RUN_JOB,
    input: sfn.TaskInput.fromObject({ 'mode.$': '$.mode', 'value.$': '$.value', 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id' }),
    resultSelector: { 'childOutput.$': '$.Output' },
  }).addCatch(unwrap, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
  new sfn.StateMachine(stack, 'Parent', { stateMachineName: 'Parent', definitionBody: sfn.DefinitionBody.fromChainable(start) });
  return stack;
}

let engine: LocalEngine;
beforeAll(async () => {
  engine = new LocalEngine({ app: buildApp() });
  await engine.start();
}, 60_000);
afterAll(async () => {
  await engine?.stop();
});

test('a Lambda error fails the task with Error = errorType and Cause = the Lambda error JSON', async () => {
  const result = await engine.startExecution('Child', { mode: 'fail', value: 7 }).result();
  expect(result.status).toBe('FAILED');
  expect(result.error).toBe('Boom');
  const cause = JSON.parse(result.cause!);
  expect(cause).toMatchObject({ errorType: 'Boom', errorMessage: 'it broke: 7' });
  expect(Array.isArray(cause.trace)).toBe(true);
});

test('a callback task completes with the SendTaskSuccess output; the used token then answers TaskTimedOut', async () => {
  const result = await engine.startExecution('Callback', { mode: 'callback-success' }).result();
  expect(result.status).toBe('SUCCEEDED');
  const output = result.output as { token: string; done: boolean };
  expect(output.done).toBe(true);

  const client = new SFNClient({ endpoint: engine.endpointUrl, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  await expect(client.send(new SendTaskSuccessCommand({ taskToken: output.token, output: '{}' }))).rejects.toMatchObject({ name: 'TaskTimedOut' });
  await expect(client.send(new SendTaskSuccessCommand({ taskToken: 'not-a-token', output: '{}' }))).rejects.toMatchObject({ name: 'InvalidToken' });
  client.destroy();
});

test('SendTaskFailure fails the task with its error and cause', async () => {
  const result = await engine.startExecution('Callback', { mode: 'callback-failure' }).result();
  expect(result).toMatchObject({ status: 'FAILED', error: 'PluginFailed', cause: 'rate: no quote' });
});

test('no heartbeat within HeartbeatSeconds fails with States.HeartbeatTimeout', async () => {
  const started = Date.now();
  const result = await engine.startExecution('Callback', { mode: 'silent' }).result();
  expect(result).toMatchObject({ status: 'FAILED', error: 'States.HeartbeatTimeout' });
  expect(Date.now() - started).toBeLessThan(2500);
});

test('heartbeats keep a callback alive past HeartbeatSeconds', async () => {
  const result = await engine.startExecution('Callback', { mode: 'heartbeat-then-success' }).result();
  expect(result).toMatchObject({ status: 'SUCCEEDED', output: { beat: 4 } });
});

test('TimeoutSeconds is enforced even while heartbeats arrive (States.Timeout)', async () => {
  const stack = newStack('TimeoutTest');
  const worker = inlineFunction(stack, 'Beater', `
    const { SFNClient, SendTaskHeartbeatCommand } = require('@aws-sdk/client-sfn');
    const sfn = new SFNClient({});
    exports.handler = async (event) => {
      const beat = setInterval(() => sfn.send(new SendTaskHeartbeatCommand({ taskToken: event.token })).catch(() => clearInterval(beat)), 200);
      return 'beating';
    };`);
  const wait = new tasks.LambdaInvoke(stack, 'Wait', {
    lambdaFunction: worker,
    integrationPattern: sfn.IntegrationPattern.WAIT_FOR_TASK_TOKEN,
    payload: sfn.TaskInput.fromObject({ token: sfn.JsonPath.taskToken }),
    // Margins wide enough for a cold worker on a loaded 2-core CI machine: the first heartbeat must
    // arrive within the heartbeat window, yet the task timeout must still end the wait.
    taskTimeout: sfn.Timeout.duration(Duration.seconds(6)),
    heartbeatTimeout: sfn.Timeout.duration(Duration.seconds(3)),
  });
  const machine = new sfn.StateMachine(stack, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(wait) });
  machine.grantTaskResponse(worker);
  const local = new LocalEngine({ app: stack, dynamodbEndpoint: (engine as any).dynamodbUrl });
  await local.start();
  try {
    const result = await local.startExecution('TimeoutTest/Machine', {}).result();
    expect(result).toMatchObject({ status: 'FAILED', error: 'States.Timeout' });
  } finally {
    await local.stop();
  }
});

test('startExecution.sync:2 runs the nested execution and returns its output as JSON', async () => {
  const result = await engine.startExecution('Parent', { mode: 'ok', value: 42 }).result();
  expect(result).toMatchObject({ status: 'SUCCEEDED', output: { childOutput: { echo: 42 } } });
});

test('a failed nested execution is States.TaskFailed with a DescribeExecution-like cause; the parent can rethrow the child error', async () => {
  const before = engine.counters().stepFunctions.stateTransitions;
  const handle = engine.startExecution('Parent', { mode: 'fail', value: 1 });
  const result = await handle.result();
  expect(result.status).toBe('FAILED');
  // ActivityFailed/Failed unwrap the cause, so the parent fails with the child's own error.
  expect(result.error).toBe('Boom');
  expect(JSON.parse(result.cause!)).toMatchObject({ errorType: 'Boom', errorMessage: 'it broke: 1' });
  // Child:Work, Parent:RunChild, Parent:ActivityFailed (the Fail state ends the execution).
  expect(engine.counters().stepFunctions.stateTransitions - before).toBe(3);
});
