/**
 * `addPlugin(fn, { ..., reportsStatus: true })`: what a plugin that reports its own state (the
 * plugin SDK) gets, and nothing more: GetItem and UpdateItem on the status table, the table's name in
 * CDK_ORCHESTRATOR_STATUS_TABLE (the variable the SDK reads), and, PARALLEL, a Lambda destination on
 * failure only.
 */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { PLUGIN_STATUS_TABLE_ENV } from '../../lambda/shared/environment';
import { Activity, ActivityStage, Orchestrator } from '../../src';
import { Synth } from '../constructs/util';

function app() {
  const root = new App();
  const stack = new Stack(root, 'Orchestrator');
  const orch = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities: ['Step1', 'Step2'] });
  const plugins = new Stack(root, 'Plugins');
  const fn = (id: string) => new lambda.Function(plugins, id, {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => {}'), timeout: Duration.seconds(10),
  });
  return { root, stack, orch, plugins, fn };
}

describe('reportsStatus', () => {
  const { orch, plugins, fn } = app();
  orch.activity('Step1').addPlugin(fn('Rate'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true });
  orch.activity('Step1').addPlugin(fn('Check'), { stage: ActivityStage.PRE, pluginName: 'Check', reportsStatus: true });
  orch.activity('Step1').addPlugin(fn('Plain'), { stage: ActivityStage.PARALLEL, pluginName: 'Plain' });
  const s = new Synth(plugins);

  test('the function gets the status table\'s name in the variable the SDK reads', () => {
    expect(PLUGIN_STATUS_TABLE_ENV).toBe('CDK_ORCHESTRATOR_STATUS_TABLE');
    for (const id of ['Rate', 'Check']) {
      const variables = s.resource(id).Properties.Environment.Variables;
      expect(Object.keys(variables)).toEqual([PLUGIN_STATUS_TABLE_ENV]);
      // An import of the orchestrator stack's table name (the plugin stack refers to it, never the reverse).
      expect(JSON.stringify(variables[PLUGIN_STATUS_TABLE_ENV])).toContain('Fn::ImportValue');
    }
    expect(s.resource('Plain').Properties.Environment).toBeUndefined();
  });

  test('its role may GetItem and UpdateItem the status table, nothing else of it', () => {
    for (const id of ['Rate', 'Check']) {
      const statements = s.roleStatements(`${id}/ServiceRole`).filter((st: any) => JSON.stringify(st.Action).includes('dynamodb'));
      expect(statements).toHaveLength(1);
      expect(statements[0].Action).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
      expect(JSON.stringify(statements[0].Resource)).toContain('Fn::ImportValue');
      // The table only: not its indexes, not `*`.
      expect([statements[0].Resource].flat()).toHaveLength(1);
      expect(JSON.stringify(statements[0].Resource)).not.toContain('index');
    }
    const plain = s.roleStatements('Plain/ServiceRole');
    expect(JSON.stringify(plain)).not.toContain('dynamodb');
  });

  test('PARALLEL: failures still reach plugin-outcome; successes are not reported twice', () => {
    const configs = s.pathsOf('AWS::Lambda::EventInvokeConfig').map((path) => ({ path, config: s.resource(path).Properties.DestinationConfig }));
    // The orchestrator's plugin-outcome function, imported from its stack.
    const pluginOutcome = { Destination: { 'Fn::ImportValue': expect.stringMatching(/^Orchestrator:ExportsOutputFnGetAttOrchHandlersPluginOutcome[0-9A-F]+Arn/) } };
    const rate = configs.find((c) => c.path.startsWith('Rate/'))!.config;
    expect(rate).toEqual({ OnFailure: pluginOutcome });
    const plain = configs.find((c) => c.path.startsWith('Plain/'))!.config;
    expect(plain).toEqual({ OnSuccess: pluginOutcome, OnFailure: pluginOutcome });
  });
});

test('a function in two PARALLEL stages reports one way: mixed reportsStatus is a synth error', () => {
  const { orch, fn } = app();
  const shared = fn('Shared');
  orch.activity('Step1').addPlugin(shared, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true });
  expect(() => orch.activity('Step2').addPlugin(shared, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' }))
    .toThrow(/with reportsStatus true and false; one function reports its outcome one way/);
});

test('an imported activity without statusTableArn: reportsStatus is a synth error naming it', () => {
  const { plugins, fn } = app();
  const step1 = Activity.fromActivityAttributes(plugins, 'Step1', {
    activityName: 'Step1',
    stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:orders-Step1',
    preTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-pre',
    parallelTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-parallel',
    postTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-post',
    pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
    pluginOutcomeFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-outcome',
  });
  expect(() => step1.addPlugin(fn('Rate'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true }))
    .toThrow(/this imported activity has no statusTableArn/);
  const withTable = Activity.fromActivityAttributes(plugins, 'Step1b', {
    activityName: 'Step1',
    stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:orders-Step1',
    preTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-pre',
    parallelTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-parallel',
    postTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-post',
    pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
    pluginOutcomeFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-outcome',
    statusTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-status',
  });
  const rate = fn('Rate2');
  withTable.addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true });
  const s = new Synth(Stack.of(rate));
  expect(s.resource('Rate2').Properties.Environment.Variables).toEqual({ [PLUGIN_STATUS_TABLE_ENV]: 'orders-status' });
});
