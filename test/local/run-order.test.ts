/**
 * Under load, runs finish in the order they started: where invocations wait for a function's
 * sandbox, the invocation of the oldest run goes first (sandbox-host.ts RunStart). A run starts with
 * its Step Functions execution; the invocations its tasks make, and those their code causes (a Lambda
 * Invoke, an SNS delivery), belong to it. Before, the queue was first come, first served: a run's
 * second step queued behind the first steps of every run started after it, and under load all runs
 * finished together at the end.
 *
 * Each case: `Work` has one sandbox (reserved concurrency 1) and takes 600 ms. The "old" run asks for
 * Work twice, one after the other; three "new" runs, started once old's first call runs, ask for
 * Work once each and queue while it runs. Old's second call comes while they wait (or just after the
 * first of them took the sandbox): it must run before the second and third new runs. First come,
 * first served ran it last.
 */
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { eventually, inlineFunction, loggedRecords, newStack, startTestEngine } from './support';
import type { LocalEngine } from '../../local/src';

/** Logs which call it runs, then takes 600 ms (a record as Powertools would write it). */
const WORK = [
  'exports.handler = async (event) => {',
  '  const call = event.Records ? JSON.parse(event.Records[0].Sns.Message) : event;',
  '  console.log(JSON.stringify({ message: "work", run: call.run, step: call.step }));',
  '  await new Promise((r) => setTimeout(r, 600));',
  '  return {};',
  '};',
].join('\n');

/** Asks for Work `event.steps` times, one after the other: by Lambda Invoke, or by publishing to the topic and waiting 300 ms. */
const CALLER = [
  'const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");',
  'const { SNSClient, PublishCommand } = require("@aws-sdk/client-sns");',
  'const lambda = new LambdaClient({});',
  'const sns = new SNSClient({});',
  'exports.handler = async (event) => {',
  '  for (let step = 1; step <= event.steps; step++) {',
  '    const call = JSON.stringify({ run: event.run, step });',
  '    if (process.env.TOPIC_ARN) {',
  '      await sns.send(new PublishCommand({ TopicArn: process.env.TOPIC_ARN, Message: call }));',
  '      await new Promise((r) => setTimeout(r, 300));',
  '    } else {',
  '      const answer = await lambda.send(new InvokeCommand({ FunctionName: process.env.WORK, Payload: call }));',
  '      if (answer.FunctionError) throw new Error(Buffer.from(answer.Payload).toString());',
  '    }',
  '  }',
  '  return {};',
  '};',
].join('\n');

type Path = 'task' | 'invoke' | 'sns';

interface OrderApp { engine: LocalEngine; stateMachine: string; work: string }

/**
 * A state machine per path that leads to Work: its own tasks (`task`: a Map over the steps, one at a
 * time), a function that invokes Work (`invoke`), or one that publishes to Work's topic (`sns`).
 */
async function startApp(path: Path): Promise<OrderApp> {
  const stack = newStack(`RunOrder${path}`);
  const work = inlineFunction(stack, 'Work', WORK, { reservedConcurrentExecutions: 1 });
  let definition: sfn.IChainable;
  if (path === 'task') {
    const steps = new sfn.Map(stack, 'Steps', { itemsPath: '$.steps', maxConcurrency: 1 });
    steps.itemProcessor(new tasks.LambdaInvoke(stack, 'CallWork', { lambdaFunction: work, payloadResponseOnly: true }));
    definition = steps;
  } else {
    const caller = inlineFunction(stack, 'Caller', CALLER, { environment: { WORK: work.functionName } });
    if (path === 'invoke') {
      work.grantInvoke(caller);
    } else {
      const topic = new sns.Topic(stack, 'Topic');
      topic.addSubscription(new subscriptions.LambdaSubscription(work));
      topic.grantPublish(caller);
      caller.addEnvironment('TOPIC_ARN', topic.topicArn);
    }
    definition = new tasks.LambdaInvoke(stack, 'CallCaller', { lambdaFunction: caller, payloadResponseOnly: true });
  }
  new sfn.StateMachine(stack, 'Machine', { definitionBody: sfn.DefinitionBody.fromChainable(definition) });
  // No wait before a second Caller sandbox starts: the new runs' calls must reach Work's queue at once.
  const engine = await startTestEngine(stack, { scaleOutDelayMs: 0 });
  const name = (id: string) => engine.assembly.functions.find((f) => f.path === `RunOrder${path}/${id}`)!.name;
  return { engine, stateMachine: engine.assembly.stateMachines[0].arn, work: name('Work') };
}

function input(path: Path, run: string, steps: number) {
  return path === 'task'
    ? { steps: Array.from({ length: steps }, (_, i) => ({ run, step: i + 1 })) }
    : { run, steps };
}

/** The calls Work ran, in the order it started them: `old-1`, `new1-1`, ... */
async function workOrder(path: Path): Promise<string[]> {
  const { engine, stateMachine, work } = await startApp(path);
  try {
    // Warm Work's sandbox and four of Caller's, so that no cold start changes the timing.
    const warm = ['w1', 'w2', 'w3', 'w4'].map((run) => engine.startExecution(stateMachine, input(path, `warm-${run}`, 1)));
    await Promise.all(warm.map((execution) => execution.result()));
    await engine.idle();
    const old = engine.startExecution(stateMachine, input(path, 'old', 2));
    // The new runs start once old's first call runs, however slow the machine.
    await eventually(() => loggedRecords(engine, work, 'work').some((r) => r.run === 'old'), 15_000, "old's first call");
    const runs = ['new1', 'new2', 'new3'].map((run) => engine.startExecution(stateMachine, input(path, run, 1)));
    const results = await Promise.all([old, ...runs].map((execution) => execution.result()));
    expect(results.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    await engine.idle(); // SNS deliveries run after the executions end
    return loggedRecords(engine, work, 'work').map((r) => `${r.run}-${r.step}`).filter((call) => !call.startsWith('warm'));
  } finally {
    await engine.stop();
  }
}

describe('under load, the oldest run goes first where invocations wait for a sandbox', () => {
  test.each<[Path, string]>([
    ['task', "the execution's own Lambda tasks"],
    ['invoke', 'a Lambda Invoke made by function code'],
    ['sns', 'an SNS delivery of a message function code published'],
  ])('%s: %s', async (path) => {
    const order = await workOrder(path);
    expect(order).toHaveLength(5);
    expect(order[0]).toBe('old-1');
    expect(order.filter((call) => call.startsWith('new'))).toEqual(['new1-1', 'new2-1', 'new3-1']);
    // First come, first served: [old-1, new1-1, new2-1, new3-1, old-2].
    expect(order.indexOf('old-2')).toBeLessThan(order.indexOf('new2-1'));
  }, 60_000);
});
