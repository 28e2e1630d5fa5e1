import { Duration, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import { newStack, Synth } from './util';
import { Orchestrator, Workflow, WorkflowProps } from '../../src';

function setup(orchestratorProps: { statusRetention?: Duration } = {}): { stack: Stack; orch: Orchestrator } {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2', 'Step3'], orchestratorName: 'orders', ...orchestratorProps });
  return { stack, orch };
}

const LAMBDA_SERVICE_RETRY = {
  ErrorEquals: ['Lambda.ClientExecutionTimeoutException', 'Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException'],
  IntervalSeconds: 2,
  MaxAttempts: 6,
  BackoffRate: 2,
};

const activityTask = (activity: string, next: string) => ({
  Type: 'Task',
  Resource: 'arn:${AWS::Partition}:states:::states:startExecution.sync:2',
  Parameters: {
    StateMachineArn: `\${Orch/Activities/${activity}/StateMachine}`,
    Input: { 'uid.$': '$.uid', 'workflow.$': '$.workflow', 'AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$': '$$.Execution.Id' },
  },
  ResultPath: null,
  Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'ActivityFailed' }],
  Next: next,
});

describe('workflow state machine (DESIGN.md "Workflow <name>")', () => {
  const { stack, orch } = setup();
  const workflow = new Workflow(stack, 'Billing', { orchestrator: orch, activities: ['Step3', 'Step1'] });
  const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
  const grant = workflow.grantStartWorkflow(caller);
  const s = new Synth(stack);
  const def = s.definition('Billing/StateMachine');

  test('StartRun, then each listed activity in order, then Succeeded; failures go through ActivityFailed to Failed', () => {
    expect(def.StartAt).toBe('StartRun');
    expect(Object.keys(def.States)).toEqual(['StartRun', 'Step3', 'Step1', 'Succeeded', 'ActivityFailed', 'Failed']);
    expect(JSON.stringify(def)).not.toMatch(/QueryLanguage|JSONata|Assign|\{%/);
  });

  test('StartRun invokes start-run with the input, the workflow name and its activities, and keeps { uid, workflow }', () => {
    expect(def.States.StartRun).toEqual({
      Type: 'Task',
      Resource: 'arn:${AWS::Partition}:states:::lambda:invoke',
      Parameters: {
        FunctionName: '${Orch/Handlers/StartRun.Arn}',
        Payload: { 'input.$': '$', 'workflow': 'Billing', 'activities': ['Step3', 'Step1'] },
      },
      ResultSelector: { 'uid.$': '$.Payload.uid', 'workflow.$': '$.Payload.workflow' },
      Retry: [LAMBDA_SERVICE_RETRY, {
        ErrorEquals: ['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded'], IntervalSeconds: 1, MaxAttempts: 5, BackoffRate: 2,
      }],
      Next: 'Step3',
    });
  });

  test('each activity runs as a nested execution (.sync:2) linked to the workflow execution', () => {
    expect(def.States.Step3).toEqual(activityTask('Step3', 'Step1'));
    expect(def.States.Step1).toEqual(activityTask('Step1', 'Succeeded'));
    expect(def.States.Succeeded).toEqual({ Type: 'Succeed' });
  });

  test('a failed activity fails the workflow with the activity execution\'s own error and cause', () => {
    expect(def.States.ActivityFailed).toEqual({
      Type: 'Pass',
      Parameters: { 'failure.$': 'States.StringToJson($.error.Cause)' },
      Next: 'Failed',
    });
    expect(def.States.Failed).toEqual({ Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' });
  });

  test('logs (ALL) to the orchestrator\'s state machine log group, X-Ray on, its own role', () => {
    expect(s.flat(s.resource('Billing/StateMachine').Properties)).toMatchObject({
      StateMachineType: 'STANDARD',
      RoleArn: '${Billing/Role.Arn}',
      LoggingConfiguration: { Destinations: [{ CloudWatchLogsLogGroup: { LogGroupArn: '${Orch/StateMachineLogs.Arn}' } }], IncludeExecutionData: true, Level: 'ALL' },
      TracingConfiguration: { Enabled: true },
    });
    expect(s.resource('Billing/StateMachine').DependsOn).toEqual(expect.arrayContaining([s.id('Billing/Role/DefaultPolicy')]));
  });

  test('workflow role: invoke start-run, start and follow exactly the listed activities', () => {
    expect(s.resource('Billing/Role').Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'states.amazonaws.com' } },
    ]);
    const execution = (a: string) => `arn:\${AWS::Partition}:states:\${AWS::Region}:\${AWS::AccountId}:execution:\${Orch/Activities/${a}/StateMachine.Name}:*`;
    expect(s.roleStatements('Billing/Role')).toEqual([
      { Sid: 'InvokeStartRun', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: '${Orch/Handlers/StartRun.Arn}' },
      { Sid: 'StartActivities', Action: 'states:StartExecution', Effect: 'Allow', Resource: ['${Orch/Activities/Step3/StateMachine}', '${Orch/Activities/Step1/StateMachine}'] },
      { Sid: 'FollowActivities', Action: ['states:DescribeExecution', 'states:StopExecution'], Effect: 'Allow', Resource: [execution('Step3'), execution('Step1')] },
      {
        Sid: 'SyncExecutionEvents',
        Action: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
        Effect: 'Allow',
        Resource: 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule',
      },
      {
        Sid: 'LogDelivery',
        Action: ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'],
        Effect: 'Allow',
        Resource: '*',
      },
      { Sid: 'XRay', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'], Effect: 'Allow', Resource: '*' },
    ]);
  });

  test('a workflow adds exactly its state machine, role, policy, failure alarm and coordinates parameter', () => {
    const before = new Synth(setup().stack).counts();
    const { stack: other, orch: o } = setup();
    new Workflow(other, 'W', { orchestrator: o, activities: ['Step1'] });
    const after = new Synth(other).counts();
    const delta: Record<string, number> = {};
    for (const [type, n] of Object.entries(after)) if (n !== (before[type] ?? 0)) delta[type] = n - (before[type] ?? 0);
    // ... its default alarm (failed runs; DESIGN.md "Operations") and its coordinates parameter
    // (`<prefix>/workflows/<name>`, coordinates.test.ts).
    expect(delta).toEqual({
      'AWS::StepFunctions::StateMachine': 1, 'AWS::IAM::Role': 1, 'AWS::IAM::Policy': 1, 'AWS::CloudWatch::Alarm': 1, 'AWS::SSM::Parameter': 1,
    });
  });

  test('grantStartWorkflow: StartExecution on the workflow state machine only', () => {
    expect(grant.success).toBe(true);
    expect(s.roleStatements('Caller')).toEqual([
      { Action: 'states:StartExecution', Effect: 'Allow', Resource: '${Billing/StateMachine}' },
    ]);
    expect(workflow.workflowName).toBe('Billing');
    expect(workflow.activities.map((a) => a.activityName)).toEqual(['Step3', 'Step1']);
  });
});

test('activities are shared: two workflows may run the same activity state machine', () => {
  const { stack, orch } = setup();
  new Workflow(stack, 'A', { orchestrator: orch, activities: ['Step1', 'Step2'] });
  new Workflow(stack, 'B', { orchestrator: orch, activities: ['Step2', 'Step3'], workflowName: 'second' });
  const s = new Synth(stack);
  expect(s.definition('A/StateMachine').States.Step2.Parameters.StateMachineArn).toBe('${Orch/Activities/Step2/StateMachine}');
  expect(s.definition('B/StateMachine').States.Step2.Parameters.StateMachineArn).toBe('${Orch/Activities/Step2/StateMachine}');
  expect(s.definition('B/StateMachine').States.StartRun.Parameters.Payload.workflow).toBe('second');
  expect(s.pathsOf('AWS::StepFunctions::StateMachine')).toHaveLength(5);
});

test('statusRetention reaches start-run as retentionDays', () => {
  const { stack, orch } = setup({ statusRetention: Duration.days(30) });
  new Workflow(stack, 'W', { orchestrator: orch, activities: ['Step1'] });
  expect(new Synth(stack).definition('W/StateMachine').States.StartRun.Parameters.Payload).toEqual({
    'input.$': '$', 'workflow': 'W', 'activities': ['Step1'], 'retentionDays': 30,
  });
});

test('timeout and log group can be set', () => {
  const { stack, orch } = setup();
  const logGroup = new logs.LogGroup(stack, 'Mine');
  new Workflow(stack, 'W', { orchestrator: orch, activities: ['Step1'], timeout: Duration.hours(6), logGroup });
  const s = new Synth(stack);
  expect(s.definition('W/StateMachine').TimeoutSeconds).toBe(21600);
  expect(s.flat(s.resource('W/StateMachine').Properties.LoggingConfiguration.Destinations)).toEqual([{ CloudWatchLogsLogGroup: { LogGroupArn: '${Mine.Arn}' } }]);
});

describe('validation', () => {
  const where = "Workflow 'TestStack/W'";
  const make = (props: Partial<WorkflowProps>) => () => {
    const { stack, orch } = setup();
    new Workflow(stack, 'W', { orchestrator: orch, activities: ['Step1'], ...props });
  };

  test('unknown activity: names it and the known activities', () => {
    expect(make({ activities: ['Step1', 'Nope'] })).toThrow(`${where}: unknown activity "Nope"; known activities: Step1, Step2, Step3`);
  });

  test('empty activity list', () => {
    expect(make({ activities: [] })).toThrow(`${where}: activities must list at least one activity name, got []; known activities: Step1, Step2, Step3`);
  });

  test('an activity listed twice', () => {
    expect(make({ activities: ['Step1', 'Step2', 'Step1'] }))
      .toThrow(`${where}: activity "Step1" is listed more than once in activities ["Step1","Step2","Step1"]; each activity may appear once`);
  });

  test('invalid workflowName (or construct id used as the name)', () => {
    expect(make({ workflowName: 'bad name' })).toThrow(`${where}: workflowName "bad name" is invalid: use 1-64 characters`);
    const { stack, orch } = setup();
    expect(() => new Workflow(stack, 'My Flow', { orchestrator: orch, activities: ['Step1'] }))
      .toThrow("Workflow 'TestStack/My Flow': workflowName \"My Flow\" is invalid");
  });

  test('two workflows of one orchestrator with the same name', () => {
    const { stack, orch } = setup();
    new Workflow(stack, 'A', { orchestrator: orch, activities: ['Step1'], workflowName: 'billing' });
    expect(() => new Workflow(stack, 'B', { orchestrator: orch, activities: ['Step2'], workflowName: 'billing' })).toThrow(
      "Workflow 'TestStack/B': workflowName \"billing\" is already used by workflow 'TestStack/A' of the same orchestrator; "
      + 'runs are keyed by uid and workflow name, so each workflow needs its own name');
  });
});
