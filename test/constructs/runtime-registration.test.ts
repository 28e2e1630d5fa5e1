// Run-time plugin registration (src/private/runtime-registration.ts): the plugin-registrar function,
// its least-privilege role, and the EventBridge rules on CloudTrail events. The rules' patterns are
// checked against the same CloudTrail-shaped events the handler tests use, with the EventBridge
// matcher of lambda/shared/filter-policy.ts (AWS's matching rules, 63 table tests of their own).
import { newStack, Synth } from './util';
import { matchesPattern } from '../../lambda/shared/filter-policy';
import { Orchestrator } from '../../src';
import { subscribeEvent, unsubscribeEvent, updateFunctionCodeEvent } from '../support/cloudtrail';

type Json = any;
const TOPIC = (name: string) => `arn:aws:sns:us-east-1:123456789012:${name}`;
const FN = 'arn:aws:lambda:us-east-1:123456789012:function:rate';

function synth(props: Partial<ConstructorParameters<typeof Orchestrator>[2]> = {}) {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2'], orchestratorName: 'orders', ...props });
  return { orch, s: new Synth(stack) };
}

/** The pattern as EventBridge sees it in us-east-1 of account 123456789012. */
function concrete(value: Json): Json {
  return JSON.parse(JSON.stringify(value)
    .replace(/\$\{AWS::Partition\}/g, 'aws').replace(/\$\{AWS::Region\}/g, 'us-east-1').replace(/\$\{AWS::AccountId\}/g, '123456789012'));
}

describe('runtimeRegistration (default on)', () => {
  const { orch, s } = synth();
  const rules = s.pathsOf('AWS::Events::Rule').filter((p) => p.startsWith('Orch/RuntimeRegistration/'));
  const pattern = (name: string) => concrete(s.flat(s.resource(`Orch/RuntimeRegistration/${name}`).Properties.EventPattern));

  test('creates the plugin-registrar function with its environment and two rules that target it', () => {
    expect(orch.handlers.pluginRegistrar).toBe(orch.handlers.node.findChild('PluginRegistrar'));
    const fn = s.resource('Orch/Handlers/PluginRegistrar').Properties;
    expect(s.flat(fn.Environment.Variables)).toMatchObject({
      PLUGIN_TABLE_NAME: '${Orch/PluginTable}',
      STATUS_TABLE_NAME: '${Orch/StatusTable}',
      ORCHESTRATOR_NAME: 'orders',
      PLUGIN_TAG: 'cdk-orchestrator:orders=plugin',
    });
    expect(fn.Timeout).toBe(120);
    expect(rules.sort()).toEqual(['Orch/RuntimeRegistration/CodeUpdateRule', 'Orch/RuntimeRegistration/SubscriptionRule']);
    for (const rule of rules) {
      const { Targets, State } = s.resource(rule).Properties;
      expect(State).toBe('ENABLED');
      expect(s.flat(Targets)).toEqual([expect.objectContaining({ Arn: '${Orch/Handlers/PluginRegistrar.Arn}', RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 2 } })]);
    }
    // EventBridge may invoke the registrar, from these two rules only.
    const permissions = s.pathsOf('AWS::Lambda::Permission').map((p) => s.flat(s.resource(p).Properties))
      .filter((p) => p.FunctionName === '${Orch/Handlers/PluginRegistrar.Arn}');
    expect(permissions.map((p) => [p.Principal, p.SourceArn]).sort()).toEqual([
      ['events.amazonaws.com', '${Orch/RuntimeRegistration/CodeUpdateRule.Arn}'],
      ['events.amazonaws.com', '${Orch/RuntimeRegistration/SubscriptionRule.Arn}'],
    ]);
  });

  test('the subscription rule: Subscribe (protocol lambda) to this orchestrator\'s topics and their Unsubscribe, succeeded calls only', () => {
    expect(pattern('SubscriptionRule')).toEqual({
      'source': ['aws.sns'],
      'detail-type': ['AWS API Call via CloudTrail'],
      'detail': {
        eventSource: ['sns.amazonaws.com'],
        $or: [
          { eventName: ['Subscribe'], requestParameters: { topicArn: [{ prefix: TOPIC('orders-') }], protocol: ['lambda'] }, errorCode: [{ exists: false }] },
          { eventName: ['Unsubscribe'], requestParameters: { subscriptionArn: [{ prefix: TOPIC('orders-') }] }, errorCode: [{ exists: false }] },
        ],
      },
    });
  });

  test('the rules match the events the registrar acts on, and not others', () => {
    const subscription = pattern('SubscriptionRule');
    const codeUpdate = pattern('CodeUpdateRule');
    const sub = { topicArn: TOPIC('orders-Step1-parallel'), functionArn: FN, subscriptionArn: `${TOPIC('orders-Step1-parallel')}:1a2b` };
    const matches = (event: Json) => [matchesPattern(subscription, event), matchesPattern(codeUpdate, event)];

    expect(matches(subscribeEvent(sub))).toEqual([true, false]);
    expect(matches(unsubscribeEvent(sub.subscriptionArn))).toEqual([true, false]);
    expect(matches(updateFunctionCodeEvent(FN))).toEqual([false, true]);
    // Not ours, not Lambda, or failed: EventBridge does not even invoke the registrar.
    expect(matches(subscribeEvent({ ...sub, topicArn: TOPIC('billing-Step1-parallel') }))).toEqual([false, false]);
    expect(matches(subscribeEvent({ ...sub, protocol: 'sqs' }))).toEqual([false, false]);
    expect(matches(subscribeEvent(sub, { errorCode: 'AuthorizationError' }))).toEqual([false, false]);
    const elsewhere = 'arn:aws:sns:eu-west-1:123456789012:orders-Step1-parallel'; // same name, another region's topic
    expect(matches(subscribeEvent({ ...sub, topicArn: elsewhere, subscriptionArn: `${elsewhere}:1a2b` }))).toEqual([false, false]);
    expect(matches(unsubscribeEvent(`${TOPIC('billing-Step1-parallel')}:1a2b`))).toEqual([false, false]);
    expect(matches(updateFunctionCodeEvent(FN, { errorCode: 'ResourceConflictException' }))).toEqual([false, false]);
  });

  test('the registrar\'s role: registry items and the functionName index, plugin entries, running executions, tagged functions', () => {
    expect(s.roleStatements('Orch/Handlers/PluginRegistrarRole')).toEqual(expect.arrayContaining([
      { Effect: 'Allow', Action: ['dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:DeleteItem'], Resource: '${Orch/PluginTable.Arn}' },
      { Effect: 'Allow', Action: 'dynamodb:Query', Resource: '${Orch/PluginTable.Arn}/index/functionName' },
      { Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: '${Orch/StatusTable.Arn}' },
      {
        Sid: 'RunningExecutions',
        Effect: 'Allow',
        Action: ['states:ListExecutions', 'states:DescribeExecution'],
        Resource: [
          'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:orders-*',
          'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:orders-*:*',
        ],
      },
      {
        Sid: 'InvokeTaggedPlugins',
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*',
        Condition: { StringEquals: { 'aws:ResourceTag/cdk-orchestrator:orders': 'plugin' } },
      },
    ]));
    // Nothing else of consequence: logs to its own log group, X-Ray.
    const actions = s.roleStatements('Orch/Handlers/PluginRegistrarRole').flatMap((st: Json) => [].concat(st.Action));
    expect(actions.filter((a: string) => !/^(logs|xray):/.test(a)).sort()).toEqual([
      'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:Query', 'dynamodb:UpdateItem',
      'lambda:InvokeFunction', 'sqs:SendMessage', 'states:DescribeExecution', 'states:ListExecutions',
    ]);
    // SendMessage: only its dead-letter queue (failed asynchronous invocations).
    const send = s.roleStatements('Orch/Handlers/PluginRegistrarRole').filter((st: Json) => [].concat(st.Action).includes('sqs:SendMessage' as never));
    expect(send).toHaveLength(1);
    expect(send[0].Resource).toBe('${Orch/FailedEventsQueue.Arn}');
  });

  test('sequential-stage may invoke tagged functions too (pre/post plugins subscribed at run time)', () => {
    expect(s.roleStatements('Orch/Handlers/SequentialStageRole')).toContainEqual({
      Sid: 'InvokeTaggedPlugins',
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*',
      Condition: { StringEquals: { 'aws:ResourceTag/cdk-orchestrator:orders': 'plugin' } },
    });
  });
});

test('runtimeRegistration: false creates no registrar, no rules and no tag-based invoke', () => {
  const { orch, s } = synth({ runtimeRegistration: false });
  expect(orch.handlers.pluginRegistrar).toBeUndefined();
  expect(s.pathsOf('AWS::Events::Rule').filter((p) => p.includes('RuntimeRegistration'))).toEqual([]);
  expect(JSON.stringify(s.roleStatements('Orch/Handlers/SequentialStageRole'))).not.toContain('InvokeTaggedPlugins');
  expect(s.pathsOf('AWS::Lambda::Function').filter((p) => p.includes('PluginRegistrar'))).toEqual([]);
});
