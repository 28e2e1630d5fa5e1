import { Duration } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import { aslErrors, newStack, Synth } from './util';
import { Orchestrator, OrchestratorProps, Workflow } from '../../src';

function synth(props: Partial<OrchestratorProps> = {}): Synth {
  const stack = newStack();
  new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2'], orchestratorName: 'orders', ...props });
  return new Synth(stack);
}

const LAMBDA_SERVICE_RETRY = {
  ErrorEquals: ['Lambda.ClientExecutionTimeoutException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException'],
  IntervalSeconds: 2,
  MaxAttempts: 6,
  BackoffRate: 2,
};
/** A DynamoDB request still throttled after the SDK's retries: the task is retried (handlers are idempotent). */
const THROTTLE_RETRY = {
  ErrorEquals: ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'],
  IntervalSeconds: 1,
  MaxAttempts: 5,
  BackoffRate: 2,
};
const CATCH_ALL = [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'RecordFailure' }];

describe('activity state machine (DESIGN.md "Activity <name>")', () => {
  const s = synth();
  const def = s.definition('Orch/Activities/Step1/StateMachine');

  test('Pre -> Parallel -> Post, each caught into RecordFailure -> Failed; nothing else', () => {
    expect(def.StartAt).toBe('Pre');
    expect(Object.keys(def.States)).toEqual(['Pre', 'Parallel', 'Post', 'RecordFailure', 'Failed']);
    expect(def.States.Pre.Next).toBe('Parallel');
    expect(def.States.Parallel.Next).toBe('Post');
    expect(def.States.Post.End).toBe(true);
    expect(def.States.RecordFailure.Next).toBe('Failed');
    // JSONPath only: the local engine runs the definitions unchanged.
    expect(JSON.stringify(def)).not.toMatch(/QueryLanguage|JSONata|Assign|\{%/);
  });

  test('Pre: sequential-stage with the stage payload, result discarded, plugin retries with backoff, catch-all', () => {
    expect(def.States.Pre).toEqual({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::lambda:invoke',
      Parameters: {
        FunctionName: '${Orch/Handlers/SequentialStage.Arn}',
        Payload: {
          'uid.$': '$.uid',
          'workflow.$': '$.workflow',
          'activity': 'Step1',
          'stage': 'pre',
          'topicArn': '${Orch/Activities/Step1/PreTopic}',
          'maxAttempts': 3,
        },
      },
      ResultPath: null,
      Retry: [LAMBDA_SERVICE_RETRY, { ErrorEquals: ['PluginInvocationFailed'], IntervalSeconds: 1, MaxAttempts: 200, BackoffRate: 2, MaxDelaySeconds: 30 }, THROTTLE_RETRY],
      Catch: CATCH_ALL,
      Next: 'Parallel',
    });
  });

  test('Parallel: parallel-stage waits for the task token, 1 h timeout, 15 min heartbeat, catch-all', () => {
    expect(def.States.Parallel).toEqual({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::lambda:invoke.waitForTaskToken',
      Parameters: {
        FunctionName: '${Orch/Handlers/ParallelStage.Arn}',
        Payload: {
          'uid.$': '$.uid',
          'workflow.$': '$.workflow',
          'activity': 'Step1',
          'stage': 'async',
          'topicArn': '${Orch/Activities/Step1/ParallelTopic}',
          'token.$': '$$.Task.Token',
        },
      },
      TimeoutSeconds: 3600,
      HeartbeatSeconds: 900,
      ResultPath: null,
      Retry: [LAMBDA_SERVICE_RETRY, THROTTLE_RETRY],
      Catch: CATCH_ALL,
      Next: 'Post',
    });
  });

  test('Post: like Pre with stage post, End', () => {
    expect(def.States.Post).toMatchObject({
      Parameters: { Payload: { stage: 'post', topicArn: '${Orch/Activities/Step1/PostTopic}', maxAttempts: 3 } },
      Retry: def.States.Pre.Retry,
      Catch: CATCH_ALL,
      End: true,
    });
  });

  test('RecordFailure: stage-failure with the caught error; Failed keeps the original error and cause', () => {
    expect(def.States.RecordFailure).toEqual({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::lambda:invoke',
      Parameters: {
        FunctionName: '${Orch/Handlers/StageFailure.Arn}',
        Payload: { 'uid.$': '$.uid', 'workflow.$': '$.workflow', 'activity': 'Step1', 'error.$': '$.error' },
      },
      ResultPath: null,
      Retry: [LAMBDA_SERVICE_RETRY, THROTTLE_RETRY],
      Next: 'Failed',
    });
    expect(def.States.Failed).toEqual({ Type: 'Fail', ErrorPath: '$.error.Error', CausePath: '$.error.Cause' });
  });

  test('every activity has its own state machine with its own name and topics, on the shared role and log group', () => {
    const step2 = s.definition('Orch/Activities/Step2/StateMachine');
    expect(step2.States.Pre.Parameters.Payload).toMatchObject({ activity: 'Step2', topicArn: '${Orch/Activities/Step2/PreTopic}' });
    expect(step2.States.Parallel.Parameters.Payload.topicArn).toBe('${Orch/Activities/Step2/ParallelTopic}');
    for (const a of ['Step1', 'Step2']) {
      expect(s.flat(s.resource(`Orch/Activities/${a}/StateMachine`).Properties)).toMatchObject({
        StateMachineName: `orders-${a}`,
        StateMachineType: 'STANDARD',
        RoleArn: '${Orch/StateMachineRole.Arn}',
        LoggingConfiguration: {
          Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: '${Orch/StateMachineLogs.Arn}' } }],
          IncludeExecutionData: true,
          Level: 'ALL',
        },
        TracingConfiguration: { Enabled: true },
      });
    }
  });

  test('topics are SSL-only and unencrypted without a key', () => {
    for (const topic of s.pathsOf('AWS::SNS::Topic')) {
      expect(s.resource(topic).Properties.KmsMasterKeyId).toBeUndefined();
      expect(s.resourceStatements(`${topic}/Policy`)[0]).toMatchObject({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    }
  });
});

describe('per-activity options', () => {
  const s = synth({
    parallelTimeout: Duration.hours(2),
    pluginRetries: 4,
    activityOptions: { Step2: { parallelTimeout: Duration.minutes(30), parallelHeartbeat: Duration.minutes(5), pluginRetries: 0 } },
  });

  test('orchestrator-wide options apply to every activity', () => {
    const def = s.definition('Orch/Activities/Step1/StateMachine');
    expect(def.States.Parallel).toMatchObject({ TimeoutSeconds: 7200, HeartbeatSeconds: 900 });
    expect(def.States.Pre.Parameters.Payload.maxAttempts).toBe(5);
    expect(def.States.Pre.Retry[1]).toEqual({ ErrorEquals: ['PluginInvocationFailed'], IntervalSeconds: 1, MaxAttempts: 400, BackoffRate: 2, MaxDelaySeconds: 30 });
  });

  test('activityOptions override them for one activity', () => {
    const def = s.definition('Orch/Activities/Step2/StateMachine');
    expect(def.States.Parallel).toMatchObject({ TimeoutSeconds: 1800, HeartbeatSeconds: 300 });
    expect(def.States.Post.Parameters.Payload.maxAttempts).toBe(1);
    expect(def.States.Post.Retry[1]).toEqual({ ErrorEquals: ['PluginInvocationFailed'], IntervalSeconds: 1, MaxAttempts: 0, BackoffRate: 2, MaxDelaySeconds: 30 });
  });
});

test('every synthesized state machine definition is valid ASL (asl-validator)', () => {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', {
    activities: ['Step1', 'Step2', 'Step3'],
    encryptionKey: new kms.Key(stack, 'Key'),
    statusRetention: Duration.days(30),
    activityOptions: { Step3: { pluginRetries: 0 } },
  });
  new Workflow(stack, 'All', { orchestrator: orch, activities: ['Step1', 'Step2', 'Step3'] });
  new Workflow(stack, 'Short', { orchestrator: orch, activities: ['Step2'] });
  const definitions = new Synth(stack).definitions();
  expect(Object.keys(definitions)).toHaveLength(5);
  for (const [path, definition] of Object.entries(definitions)) {
    expect({ path, errors: aslErrors(definition) }).toEqual({ path, errors: '' });
  }
});

test('the ASL check catches a broken definition (so the test above means something)', () => {
  expect(aslErrors({ StartAt: 'Pre', States: { Pre: { Type: 'Pass', Next: 'Missing' } } })).not.toBe('');
});
