import { Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { newStack, Synth } from './util';
import { Activity, ActivityStage, Orchestrator, OrchestratorAttributes, Workflow } from '../../src';

const ACCOUNT_REGION = 'eu-west-1:111122223333';
const ATTRS: OrchestratorAttributes = {
  orchestratorName: 'orders',
  activities: ['Step1', 'Step2'],
  statusTableArn: `arn:aws:dynamodb:${'eu-west-1'}:111122223333:table/orders-status`,
  statusTableStreamArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-status/stream/2024-01-01T00:00:00.000',
  pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
};

describe('Activity.fromActivityAttributes', () => {
  test('an activity from another stack: state machine and topics by ARN, no resources', () => {
    const stack = newStack();
    const activity = Activity.fromActivityAttributes(stack, 'Step1', {
      activityName: 'Step1',
      stateMachineArn: `arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step1`,
      preTopicArn: `arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-pre`,
      parallelTopicArn: `arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-parallel`,
      postTopicArn: `arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-post`,
    });
    expect(activity.activityName).toBe('Step1');
    expect(activity.stateMachine.stateMachineArn).toBe(`arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step1`);
    expect(activity.topic(ActivityStage.PRE).topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-pre`);
    expect(activity.topic(ActivityStage.PARALLEL).topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-parallel`);
    expect(activity.topic(ActivityStage.POST).topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step1-post`);
    expect(new Synth(stack).counts()).toEqual({});
  });

  test('an invalid activity name is rejected', () => {
    expect(() => Activity.fromActivityAttributes(newStack(), 'X', {
      activityName: 'no spaces', stateMachineArn: 'a', preTopicArn: 'b', parallelTopicArn: 'c', postTopicArn: 'd',
    })).toThrow("Activity 'TestStack/X': activity name \"no spaces\" is invalid: use 1-64 characters");
  });
});

describe('Orchestrator.fromOrchestratorAttributes', () => {
  test('activities are found by their derived names in the status table\'s account and region', () => {
    const stack = newStack();
    const orch = Orchestrator.fromOrchestratorAttributes(stack, 'Orders', ATTRS);
    expect(orch.orchestratorName).toBe('orders');
    expect(orch.activityNames).toEqual(['Step1', 'Step2']);
    const step2 = orch.findActivity('Step2');
    expect(step2.stateMachine.stateMachineArn).toBe(`arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step2`);
    expect(step2.preTopic.topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step2-pre`);
    expect(step2.parallelTopic.topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step2-parallel`);
    expect(step2.postTopic.topicArn).toBe(`arn:aws:sns:${ACCOUNT_REGION}:orders-Step2-post`);
    expect(orch.statusTable.tableArn).toBe(ATTRS.statusTableArn);
    expect(orch.statusTable.tableStreamArn).toBe(ATTRS.statusTableStreamArn);
    expect(orch.pluginTable.tableArn).toBe(ATTRS.pluginTableArn);
    expect(() => orch.findActivity('Step3')).toThrow("Orchestrator 'TestStack/Orders': unknown activity \"Step3\"; known activities: Step1, Step2");
    expect(new Synth(stack).counts()).toEqual({});
  });

  test('grantPluginStatus on an import: the status table and its key', () => {
    const stack = newStack();
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    const orch = Orchestrator.fromOrchestratorAttributes(stack, 'Orders', { ...ATTRS, encryptionKey: key });
    const plugin = new iam.Role(stack, 'Plugin', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    orch.grantPluginStatus(plugin);
    expect(new Synth(stack).roleStatements('Plugin')).toEqual([
      { Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Effect: 'Allow', Resource: ATTRS.statusTableArn },
      {
        Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'],
        Effect: 'Allow',
        Resource: 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      },
    ]);
  });

  test('a Workflow on an imported orchestrator (with its start-run function)', () => {
    const stack = newStack();
    const orch = Orchestrator.fromOrchestratorAttributes(stack, 'Orders', {
      ...ATTRS,
      startRunFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-start-run',
      statusRetention: Duration.days(7),
    });
    new Workflow(stack, 'Flow', { orchestrator: orch, activities: ['Step2', 'Step1'] });
    const s = new Synth(stack);
    const def = s.definition('Flow/StateMachine');
    expect(def.States.StartRun.Parameters).toEqual({
      FunctionName: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-start-run',
      Payload: { 'input.$': '$', 'workflow': 'Flow', 'activities': ['Step2', 'Step1'], 'retentionDays': 7 },
    });
    expect(def.States.Step2.Parameters.StateMachineArn).toBe(`arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step2`);
    expect(s.roleStatements('Flow/Role').slice(0, 3)).toEqual([
      { Sid: 'InvokeStartRun', Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-start-run' },
      {
        Sid: 'StartActivities',
        Action: 'states:StartExecution',
        Effect: 'Allow',
        Resource: [`arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step2`, `arn:aws:states:${ACCOUNT_REGION}:stateMachine:orders-Step1`],
      },
      {
        Sid: 'FollowActivities',
        Action: ['states:DescribeExecution', 'states:StopExecution'],
        Effect: 'Allow',
        Resource: [
          `arn:aws:states:${ACCOUNT_REGION}:execution:orders-Step2:*`,
          `arn:aws:states:${ACCOUNT_REGION}:execution:orders-Step1:*`,
        ],
      },
    ]);
    // Its own vended-logs log group: the imported orchestrator's is not known.
    expect(s.pathsOf('AWS::Logs::LogGroup')).toEqual(['Flow/Logs']);
    expect(s.flat(s.resource('Flow/StateMachine').Properties.LoggingConfiguration.Destinations))
      .toEqual([{ CloudWatchLogsLogGroup: { LogGroupArn: '${Flow/Logs.Arn}' } }]);
    expect(s.flat(s.resource('Flow/Logs').Properties.LogGroupName)).toBe('/aws/vendedlogs/states/orders-Flow-${Select(2,"Split(/,${AWS::StackId})")}');
  });

  test('a Workflow needs the start-run function of the import', () => {
    const stack = newStack();
    const orch = Orchestrator.fromOrchestratorAttributes(stack, 'Orders', ATTRS);
    expect(() => new Workflow(stack, 'Flow', { orchestrator: orch, activities: ['Step1'] })).toThrow(
      "Orchestrator 'TestStack/Orders': this import has no start-run function; pass startRunFunctionArn to "
      + 'Orchestrator.fromOrchestratorAttributes to define a Workflow on it');
  });

  test('imports are validated like the construct', () => {
    expect(() => Orchestrator.fromOrchestratorAttributes(newStack(), 'O', { ...ATTRS, activities: [] }))
      .toThrow("Orchestrator 'TestStack/O': activities must list at least one activity name, got []");
    expect(() => Orchestrator.fromOrchestratorAttributes(newStack(), 'O', { ...ATTRS, activities: ['A', 'A'] }))
      .toThrow('activity "A" is listed more than once');
    expect(() => Orchestrator.fromOrchestratorAttributes(newStack(), 'O', { ...ATTRS, orchestratorName: 'a/b' }))
      .toThrow('orchestratorName "a/b" is invalid');
  });

  test('a plugin stack imports what the orchestrator stack exports (cross-stack tokens)', () => {
    const app = newStack('Platform');
    const orch = new Orchestrator(app, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const pluginStack = new (app.constructor as any)(app.node.scope, 'Plugins');
    const imported = Orchestrator.fromOrchestratorAttributes(pluginStack, 'Orders', {
      orchestratorName: orch.orchestratorName,
      activities: orch.activityNames,
      statusTableArn: orch.statusTable.tableArn,
      pluginTableArn: orch.pluginTable.tableArn,
    });
    const role = new iam.Role(pluginStack, 'Plugin', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    imported.grantPluginStatus(role);
    const s = new Synth(pluginStack);
    expect(JSON.stringify(s.roleStatements('Plugin'))).toContain('Fn::ImportValue');
    expect(imported.findActivity('Step1').parallelTopic.topicArn).toContain('orders-Step1-parallel');
  });
});
