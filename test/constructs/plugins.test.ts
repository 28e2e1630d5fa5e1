// activity.addPlugin: deploy-time registration (Custom::AWS PutItem), PARALLEL subscriptions with
// Lambda-destination outcome reporting, PRE/POST resource-side invoke permissions, validation,
// plugins in other stacks and on imported activities.
import { App, Duration, Stack, Token } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { asArray, Synth } from './util';
import { matchesFilterPolicy } from '../../lambda/shared/filter-policy';
import { messageAttributesFromMetadata } from '../../lambda/shared/status';
import { Activity, ActivityAttributes, ActivityPlugin, ActivityStage, Orchestrator, OrchestratorAttributes } from '../../src';

const SINGLETON = 'AWS679f53fac002430cb0da5b7982bd2287';

function plainFunction(scope: Stack, id: string): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({});'),
  });
}

/** One stack: orchestrator and plugins together (template references stay readable). */
function oneStack(props: { encryptionKey?: boolean } = {}) {
  const app = new App();
  const stack = new Stack(app, 'TestStack');
  const orch = new Orchestrator(stack, 'Orch', {
    activities: ['Step1', 'Step2'],
    orchestratorName: 'orders',
    encryptionKey: props.encryptionKey ? new kms.Key(stack, 'Key', { enableKeyRotation: true }) : undefined,
  });
  return { app, stack, orch };
}

/** The SDK call of a Custom::AWS resource (`Create`, `Update` or `Delete`), references made readable. */
function sdkCall(s: Synth, path: string, which: 'Create' | 'Update' | 'Delete'): any {
  return JSON.parse(s.flat(s.resource(path).Properties[which]));
}

const ORCH_ATTRS: OrchestratorAttributes = {
  orchestratorName: 'orders',
  activities: ['Step1', 'Step2'],
  statusTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-status',
  pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
  sequentialStageRoleArn: 'arn:aws:iam::111122223333:role/orders-sequential-stage',
  pluginOutcomeFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-plugin-outcome',
};
const ACTIVITY_ATTRS: ActivityAttributes = {
  activityName: 'Step1',
  stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:orders-Step1',
  preTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-pre',
  parallelTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-parallel',
  postTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-post',
  pluginTableArn: ORCH_ATTRS.pluginTableArn,
  sequentialStageRoleArn: ORCH_ATTRS.sequentialStageRoleArn,
  pluginOutcomeFunctionArn: ORCH_ATTRS.pluginOutcomeFunctionArn,
};

describe('PARALLEL plugin', () => {
  const { stack, orch } = oneStack();
  const rate = plainFunction(stack, 'Rate');
  const plugin = orch.activity('Step1').addPlugin(rate, {
    stage: ActivityStage.PARALLEL,
    pluginName: 'Rate',
    filterPolicy: {
      region: sns.SubscriptionFilter.stringFilter({ allowlist: ['EU', 'US'] }),
      premium: sns.SubscriptionFilter.numericFilter({ greaterThan: 100 }),
    },
    timeout: Duration.minutes(10),
  });
  const s = new Synth(stack);
  const base = 'Rate/Plugin-Step1-async';

  test('the function is subscribed to the activity\'s parallel topic with the filter policy', () => {
    expect(s.flat(s.resource(`${base}/Subscription`).Properties)).toEqual({
      Protocol: 'lambda',
      Endpoint: '${Rate.Arn}',
      TopicArn: '${Orch/Activities/Step1/ParallelTopic}',
      FilterPolicy: { region: ['EU', 'US'], premium: [{ numeric: ['>', 100] }] },
    });
    expect(plugin.subscription).toBe(plugin.node.findChild('Subscription'));
  });

  test('SNS may invoke the function, from this topic only; the subscription waits for that permission', () => {
    expect(s.flat(s.resource(`${base}/SnsInvokePermission`).Properties)).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: '${Rate.Arn}',
      Principal: 'sns.amazonaws.com',
      SourceArn: '${Orch/Activities/Step1/ParallelTopic}',
    });
    expect(s.resource(`${base}/Subscription`).DependsOn).toEqual([s.id(`${base}/SnsInvokePermission`)]);
  });

  test('outcomes reach plugin-outcome through Lambda destinations: 2 retries, maximum event age = timeout', () => {
    expect(s.flat(s.resource('Rate/EventInvokeConfig').Properties)).toEqual({
      FunctionName: '${Rate}',
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 600,
      DestinationConfig: {
        OnSuccess: { Destination: '${Orch/Handlers/PluginOutcome.Arn}' },
        OnFailure: { Destination: '${Orch/Handlers/PluginOutcome.Arn}' },
      },
    });
    // Lambda invokes destinations with the plugin's role: it may invoke plugin-outcome, nothing else.
    expect(s.roleStatements('Rate/ServiceRole')).toEqual([
      { Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: '${Orch/Handlers/PluginOutcome.Arn}' },
    ]);
    // ...and Lambda checks that permission when the config is created.
    expect(s.resource('Rate/EventInvokeConfig').DependsOn).toEqual([s.id('Rate/ServiceRole/DefaultPolicy')]);
  });

  test('the registry item, written at deploy time: keyed by the subscription ARN, with the filter policy SNS evaluates', () => {
    const create = sdkCall(s, `${base}/Registration/Resource/Default`, 'Create');
    expect(create).toEqual({
      service: 'DynamoDB',
      action: 'putItem',
      parameters: {
        TableName: '${Orch/PluginTable}',
        Item: {
          orchestratorId: { S: 'Step1|async' },
          subscriptionArn: { S: `\${${base}/Subscription}` },
          functionName: { S: '${Rate}' },
          functionArn: { S: '${Rate.Arn}' },
          pluginName: { S: 'Rate' },
          mandatory: { BOOL: true },
          order: { N: '90' },
          source: { S: 'cdk' },
          timeoutSeconds: { N: '600' },
          filterPolicy: { S: JSON.stringify({ region: ['EU', 'US'], premium: [{ numeric: ['>', 100] }] }) },
        },
      },
      physicalResourceId: { id: `Step1|async|\${${base}/Subscription}` },
    });
    expect(sdkCall(s, `${base}/Registration/Resource/Default`, 'Update')).toEqual(create);
    expect(sdkCall(s, `${base}/Registration/Resource/Default`, 'Delete')).toEqual({
      service: 'DynamoDB',
      action: 'deleteItem',
      parameters: { TableName: '${Orch/PluginTable}', Key: { orchestratorId: { S: 'Step1|async' }, subscriptionArn: { S: `\${${base}/Subscription}` } } },
      ignoreErrorCodesMatching: 'ResourceNotFoundException',
    });
    expect(s.resource(`${base}/Registration/Resource/Default`)).toMatchObject({ Type: 'Custom::AWS', Properties: { InstallLatestAwsSdk: false } });
  });

  test('the stored filter policy is the one parallel-stage evaluates to skip runs the plugin cannot receive', () => {
    const stored = sdkCall(s, `${base}/Registration/Resource/Default`, 'Create').parameters.Item.filterPolicy.S;
    const receives = (metadata: Record<string, unknown>) => matchesFilterPolicy(stored, { attributes: messageAttributesFromMetadata(metadata) });
    expect(receives({ workflow: 'Quotes', region: 'EU', premium: 150 })).toBe(true);
    expect(receives({ workflow: 'Quotes', region: 'EU', premium: 50 })).toBe(false);
    expect(receives({ workflow: 'Quotes', region: 'APAC', premium: 150 })).toBe(false);
    expect(receives({ workflow: 'Quotes' })).toBe(false);
  });

  test('registered only once SNS may invoke it and its outcomes are reported', () => {
    expect(s.resource(`${base}/Registration/Resource/Default`).DependsOn).toEqual(expect.arrayContaining([
      s.id(`${base}/SnsInvokePermission`), s.id('Rate/EventInvokeConfig'),
    ]));
  });

  test('the registration may write and delete items of the plugin table, nothing else', () => {
    const policy = s.resource(`${base}/Registration/CustomResourcePolicy`).Properties;
    expect(s.flat(policy.PolicyDocument.Statement)).toEqual([
      { Action: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], Effect: 'Allow', Resource: '${Orch/PluginTable.Arn}' },
    ]);
    // The stack's provider runs with the library's role (no managed policy), which writes to its own log group only.
    expect(s.flat(policy.Roles)).toEqual(['${CdkOrchestratorRegistrationProvider/Role}']);
    expect(s.flat(s.resource(SINGLETON).Properties)).toMatchObject({
      Role: '${CdkOrchestratorRegistrationProvider/Role.Arn}',
      LoggingConfig: { LogGroup: '${CdkOrchestratorRegistrationProvider/Logs}' },
    });
    expect(s.resource('CdkOrchestratorRegistrationProvider/Role').Properties.ManagedPolicyArns).toBeUndefined();
    expect(s.flat(s.resource('CdkOrchestratorRegistrationProvider/Role/DefaultPolicy').Properties.PolicyDocument.Statement)).toEqual([
      { Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: '${CdkOrchestratorRegistrationProvider/Logs.Arn}' },
    ]);
  });

  test('the ActivityPlugin describes the plugin', () => {
    expect(plugin).toBeInstanceOf(ActivityPlugin);
    expect(plugin).toMatchObject({ activityName: 'Step1', stage: ActivityStage.PARALLEL, pluginName: 'Rate', mandatory: true, order: 90 });
    expect(plugin.node.path).toBe(`TestStack/${base}`);
  });

  test('nothing is added to the orchestrator: its shared roles do not grow with plugins', () => {
    const { stack: bare, orch: bareOrch } = oneStack();
    const without = new Synth(bare);
    for (const role of ['SequentialStage', 'ParallelStage', 'PluginOutcome', 'StatusSummary']) {
      expect(s.roleStatements(`Orch/Handlers/${role}Role`)).toEqual(without.roleStatements(`Orch/Handlers/${role}Role`));
    }
    expect(s.resourceStatements('Orch/Activities/Step1/ParallelTopic/Policy')).toEqual(without.resourceStatements('Orch/Activities/Step1/ParallelTopic/Policy'));
    expect(bareOrch.activityNames).toEqual(orch.activityNames);
  });
});

describe('PRE and POST plugins', () => {
  const { stack, orch } = oneStack();
  const check = plainFunction(stack, 'Check');
  const pre = orch.activity('Step1').addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'Check', order: 10, timeout: Duration.seconds(45) });
  orch.activity('Step2').addPlugin(check, { stage: ActivityStage.POST, pluginName: 'Check', mandatory: false });
  const s = new Synth(stack);

  test('the sequential-stage role may invoke the function: one statement in the function\'s resource policy, however many stages it serves', () => {
    // Only on the plugin function (the orchestrator's own 3 are EventBridge's, on its StuckRuns and PluginRegistrar handlers).
    expect(s.pathsOf('AWS::Lambda::Permission').filter((p) => s.flat(s.resource(p).Properties.FunctionName) === '${Check.Arn}'))
      .toEqual(['Check/OrchestratorInvokePermission']);
    expect(s.flat(s.resource('Check/OrchestratorInvokePermission').Properties)).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: '${Check.Arn}',
      Principal: '${Orch/Handlers/SequentialStageRole.Arn}',
    });
    // The orchestrator's shared role is untouched: no statement for the plugin grows there. Its only
    // lambda:InvokeFunction is run-time registration's, for functions tagged as plugins (runtime-registration.test.ts).
    const invokes = (s.roleStatements('Orch/Handlers/SequentialStageRole') as any[]).filter((st) => JSON.stringify(st.Action).includes('lambda:InvokeFunction'));
    expect(invokes).toEqual([{
      Sid: 'InvokeTaggedPlugins',
      Action: 'lambda:InvokeFunction',
      Condition: { StringEquals: { 'aws:ResourceTag/cdk-orchestrator:orders': 'plugin' } },
      Effect: 'Allow',
      Resource: 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*',
    }]);
  });

  test('no subscription and no destinations: sequential-stage invokes the function synchronously and records the result', () => {
    expect(s.pathsOf('AWS::SNS::Subscription')).toEqual([]);
    expect(s.pathsOf('AWS::Lambda::EventInvokeConfig')).toEqual([]);
    expect(s.resource('Check/ServiceRole').Properties.Policies).toBeUndefined();
    expect(() => s.roleStatements('Check/ServiceRole')).toThrow('found 0');
  });

  test('registry items keyed lambda:<functionArn>, with order, mandatory and timeoutSeconds', () => {
    expect(sdkCall(s, 'Check/Plugin-Step1-pre/Registration/Resource/Default', 'Create').parameters.Item).toEqual({
      orchestratorId: { S: 'Step1|pre' },
      subscriptionArn: { S: 'lambda:${Check.Arn}' },
      functionName: { S: '${Check}' },
      functionArn: { S: '${Check.Arn}' },
      pluginName: { S: 'Check' },
      mandatory: { BOOL: true },
      order: { N: '10' },
      source: { S: 'cdk' },
      timeoutSeconds: { N: '45' },
    });
    expect(sdkCall(s, 'Check/Plugin-Step2-post/Registration/Resource/Default', 'Create').parameters.Item).toMatchObject({
      orchestratorId: { S: 'Step2|post' },
      mandatory: { BOOL: false },
      order: { N: '90' },
    });
    expect(sdkCall(s, 'Check/Plugin-Step2-post/Registration/Resource/Default', 'Create').parameters.Item).not.toHaveProperty('timeoutSeconds');
    expect(s.resource('Check/Plugin-Step1-pre/Registration/Resource/Default').DependsOn).toContain(s.id('Check/OrchestratorInvokePermission'));
    expect(pre).toMatchObject({ stage: ActivityStage.PRE, order: 10, subscription: undefined });
  });

  test('the registrations of one stack share the provider function; each has its own policy on the plugin table', () => {
    expect(s.pathsOf('Custom::AWS').sort()).toEqual(['Check/Plugin-Step1-pre/Registration/Resource/Default', 'Check/Plugin-Step2-post/Registration/Resource/Default']);
    expect(s.pathsOf('AWS::Lambda::Function').filter((p) => p.startsWith(SINGLETON))).toEqual([SINGLETON]);
  });
});

describe('a plugin in another stack of the same app', () => {
  function twoStacks() {
    const bare = new Stack(new App(), 'Platform');
    new Orchestrator(bare, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const before = new Synth(bare).resources;
    const app = new App();
    const platform = new Stack(app, 'Platform');
    const orch = new Orchestrator(platform, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const plugins = new Stack(app, 'Plugins');
    const rate = plainFunction(plugins, 'Rate');
    const check = plainFunction(plugins, 'Check');
    orch.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    orch.activity('Step1').addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'Check' });
    return { app, platform, plugins, before };
  }

  test('every plugin resource is in the plugin\'s stack; it refers to the orchestrator stack, never the reverse', () => {
    const { app, platform, plugins, before } = twoStacks();
    expect(() => app.synth()).not.toThrow();
    expect(plugins.dependencies).toEqual([platform]);
    expect(platform.dependencies).toEqual([]);
    // The orchestrator stack only gains exports; its resources are exactly what they were.
    expect(new Synth(platform).resources).toEqual(before);
    const s = new Synth(plugins);
    expect(s.counts()).toEqual({
      'AWS::IAM::Role': 3, // two plugin functions and the registration provider
      'AWS::IAM::Policy': 4, // Rate's role (invoke plugin-outcome), the provider's (its logs) and one per registration
      'AWS::Logs::LogGroup': 1, // the registration provider's
      'AWS::Lambda::Function': 3,
      'AWS::Lambda::Permission': 2,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::SNS::Subscription': 1,
      'Custom::AWS': 2,
    });
    const template = JSON.stringify(s.template.toJSON());
    for (const exported of ['PluginTable', 'ParallelTopic', 'SequentialStageRole', 'PluginOutcome']) {
      expect(template).toMatch(new RegExp(`"Fn::ImportValue":"Platform:ExportsOutput[A-Za-z0-9]*${exported}`));
    }
  });
});

describe('imported activities (another app or repository)', () => {
  test('Activity.fromActivityAttributes: PRE and PARALLEL plugins use the ARNs of the attributes', () => {
    const stack = new Stack(new App(), 'Plugins');
    const step1 = Activity.fromActivityAttributes(stack, 'Step1', ACTIVITY_ATTRS);
    const rate = plainFunction(stack, 'Rate');
    const check = plainFunction(stack, 'Check');
    step1.addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', mandatory: false });
    step1.addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'Check' });
    const s = new Synth(stack);
    expect(s.flat(s.resource('Rate/Plugin-Step1-async/Subscription').Properties.TopicArn)).toBe(ACTIVITY_ATTRS.parallelTopicArn);
    expect(s.flat(s.resource('Rate/EventInvokeConfig').Properties.DestinationConfig.OnSuccess.Destination)).toBe(ORCH_ATTRS.pluginOutcomeFunctionArn);
    expect(s.roleStatements('Rate/ServiceRole')).toEqual([{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: ORCH_ATTRS.pluginOutcomeFunctionArn }]);
    expect(s.resource('Check/OrchestratorInvokePermission').Properties.Principal).toBe(ORCH_ATTRS.sequentialStageRoleArn);
    const create = sdkCall(s, 'Rate/Plugin-Step1-async/Registration/Resource/Default', 'Create');
    expect(create.parameters.TableName).toBe('orders-plugins');
    expect(create.parameters.Item.mandatory).toEqual({ BOOL: false });
    expect(s.flat(s.resource('Check/Plugin-Step1-pre/Registration/CustomResourcePolicy').Properties.PolicyDocument.Statement)).toEqual([
      { Action: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], Effect: 'Allow', Resource: ORCH_ATTRS.pluginTableArn },
    ]);
  });

  test('Orchestrator.fromOrchestratorAttributes passes the plugin attributes to its activities', () => {
    const stack = new Stack(new App(), 'Plugins');
    const orch = Orchestrator.fromOrchestratorAttributes(stack, 'Orders', ORCH_ATTRS);
    orch.findActivity('Step2').addPlugin(plainFunction(stack, 'Rate'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    orch.findActivity('Step2').addPlugin(plainFunction(stack, 'Notify'), { stage: ActivityStage.POST, pluginName: 'Notify' });
    const s = new Synth(stack);
    expect(s.flat(s.resource('Rate/Plugin-Step2-async/Subscription').Properties.TopicArn)).toBe('arn:aws:sns:eu-west-1:111122223333:orders-Step2-parallel');
    expect(sdkCall(s, 'Notify/Plugin-Step2-post/Registration/Resource/Default', 'Create').parameters.Item.orchestratorId).toEqual({ S: 'Step2|post' });
  });

  test('with a customer managed key, the registration may use the key (on the key only)', () => {
    const stack = new Stack(new App(), 'Plugins');
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab');
    const step1 = Activity.fromActivityAttributes(stack, 'Step1', { ...ACTIVITY_ATTRS, encryptionKey: key });
    step1.addPlugin(plainFunction(stack, 'Check'), { stage: ActivityStage.POST, pluginName: 'Check' });
    const s = new Synth(stack);
    expect(s.flat(s.resource('Check/Plugin-Step1-post/Registration/CustomResourcePolicy').Properties.PolicyDocument.Statement)).toEqual([
      { Action: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], Effect: 'Allow', Resource: ORCH_ATTRS.pluginTableArn },
      { Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'], Effect: 'Allow', Resource: key.keyArn },
    ]);
  });

  test('an import without the plugin attributes says which ones a stage needs', () => {
    const stack = new Stack(new App(), 'Plugins');
    const { pluginTableArn: _t, sequentialStageRoleArn: _r, pluginOutcomeFunctionArn: _o, ...bare } = ACTIVITY_ATTRS;
    const step1 = Activity.fromActivityAttributes(stack, 'Step1', bare);
    expect(() => step1.addPlugin(plainFunction(stack, 'Pre'), { stage: ActivityStage.PRE, pluginName: 'Pre' })).toThrow(
      "Activity 'Plugins/Step1': addPlugin \"Pre\": this imported activity has no pluginTableArn, sequentialStageRoleArn; a PRE plugin needs them: "
      + 'pass them to Activity.fromActivityAttributes (or Orchestrator.fromOrchestratorAttributes)');
    const onlyTable = Activity.fromActivityAttributes(stack, 'Step1b', { ...bare, pluginTableArn: ORCH_ATTRS.pluginTableArn });
    expect(() => onlyTable.addPlugin(plainFunction(stack, 'Par'), { stage: ActivityStage.PARALLEL, pluginName: 'Par' })).toThrow(
      'this imported activity has no pluginOutcomeFunctionArn; a PARALLEL plugin needs it: pass it to Activity.fromActivityAttributes');
  });

  test('an imported function: its role (when known) may invoke plugin-outcome; otherwise a warning says what to grant', () => {
    const stack = new Stack(new App(), 'Plugins');
    const step1 = Activity.fromActivityAttributes(stack, 'Step1', ACTIVITY_ATTRS);
    const role = iam.Role.fromRoleArn(stack, 'LegacyRole', 'arn:aws:iam::111122223333:role/legacy');
    const withRole = lambda.Function.fromFunctionAttributes(stack, 'Legacy', {
      functionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:legacy', role, sameEnvironment: true,
    });
    const withoutRole = lambda.Function.fromFunctionArn(stack, 'Anonymous', 'arn:aws:lambda:eu-west-1:111122223333:function:anonymous');
    step1.addPlugin(withRole, { stage: ActivityStage.PARALLEL, pluginName: 'Legacy' });
    step1.addPlugin(withoutRole, { stage: ActivityStage.PARALLEL, pluginName: 'Anonymous' });
    const s = new Synth(stack);
    const policies = Object.values(s.template.findResources('AWS::IAM::Policy')).filter((p: any) => p.Properties.Roles.includes('legacy'));
    expect(policies.map((p: any) => p.Properties.PolicyDocument.Statement)).toEqual([
      [{ Action: 'lambda:InvokeFunction', Effect: 'Allow', Resource: ORCH_ATTRS.pluginOutcomeFunctionArn }],
    ]);
    expect(s.flat(s.resource('Anonymous/EventInvokeConfig').Properties.FunctionName)).toBe('anonymous');
    Annotations.fromStack(stack).hasWarning('/Plugins/Anonymous', Match.stringLikeRegexp('allow it lambda:InvokeFunction on the orchestrator\'s plugin-outcome'));
  });
});

describe('one function, several stages', () => {
  test('PARALLEL in two activities: two subscriptions and registrations, one asynchronous invocation config and one grant', () => {
    const { stack, orch } = oneStack();
    const rate = plainFunction(stack, 'Rate');
    orch.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', timeout: Duration.hours(1) });
    orch.activity('Step2').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', timeout: Duration.hours(1) });
    const s = new Synth(stack);
    expect(s.pathsOf('AWS::SNS::Subscription').sort()).toEqual(['Rate/Plugin-Step1-async/Subscription', 'Rate/Plugin-Step2-async/Subscription']);
    expect(s.pathsOf('AWS::Lambda::EventInvokeConfig')).toEqual(['Rate/EventInvokeConfig']);
    expect(s.roleStatements('Rate/ServiceRole')).toHaveLength(1);
  });

  test('PARALLEL in two activities with different timeouts is refused (one maximum event age per function)', () => {
    const { stack, orch } = oneStack();
    const rate = plainFunction(stack, 'Rate');
    orch.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', timeout: Duration.hours(1) });
    expect(() => orch.activity('Step2').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' })).toThrow(
      "Activity 'TestStack/Orch/Activities/Step2': function TestStack/Rate is a PARALLEL plugin of several activities with different timeouts "
      + '(1 hour and none); the timeout is the function\'s maximum event age: use one timeout');
  });

  test('PARALLEL plugins of two orchestrators: refused (outcomes go to one orchestrator)', () => {
    const { stack, orch } = oneStack();
    const other = new Orchestrator(stack, 'Other', { activities: ['Step1'], orchestratorName: 'others' });
    const rate = plainFunction(stack, 'Rate');
    orch.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    expect(() => other.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' }))
      .toThrow('function TestStack/Rate is already a PARALLEL plugin of another orchestrator');
  });

  test('PRE plugin of same-named activities of two orchestrators: distinct constructs, one permission per orchestrator role', () => {
    const { stack, orch } = oneStack();
    const other = new Orchestrator(stack, 'Other', { activities: ['Step1'], orchestratorName: 'others' });
    const check = plainFunction(stack, 'Check');
    orch.activity('Step1').addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'Check' });
    other.activity('Step1').addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'Check' });
    const s = new Synth(stack);
    expect(s.pathsOf('Custom::AWS').sort()).toEqual(['Check/Plugin-Step1-pre-2/Registration/Resource/Default', 'Check/Plugin-Step1-pre/Registration/Resource/Default']);
    // The plugin function's permissions (each orchestrator also has 3 of its own for EventBridge: stuck runs, registration).
    const onCheck = s.pathsOf('AWS::Lambda::Permission').filter((p) => s.flat(s.resource(p).Properties.FunctionName) === '${Check.Arn}');
    expect(onCheck.map((p) => s.flat(s.resource(p).Properties.Principal)).sort()).toEqual([
      '${Orch/Handlers/SequentialStageRole.Arn}', '${Other/Handlers/SequentialStageRole.Arn}',
    ]);
  });

  test('a function that already configured its asynchronous invocation cannot report outcomes: a clear error', () => {
    const { stack, orch } = oneStack();
    const rate = plainFunction(stack, 'Rate');
    rate.configureAsyncInvoke({ retryAttempts: 0 });
    expect(() => orch.activity('Step1').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' })).toThrow(
      'function TestStack/Rate already has an asynchronous invocation config (configureAsyncInvoke); a PARALLEL plugin reports its outcome '
      + 'through Lambda destinations that addPlugin configures: remove the configureAsyncInvoke call');
  });
});

test('an encrypted orchestrator: the registration gets the table key actions on the key only', () => {
  const { stack, orch } = oneStack({ encryptionKey: true });
  orch.activity('Step1').addPlugin(plainFunction(stack, 'Check'), { stage: ActivityStage.PRE, pluginName: 'Check' });
  const s = new Synth(stack);
  expect(s.flat(s.resource('Check/Plugin-Step1-pre/Registration/CustomResourcePolicy').Properties.PolicyDocument.Statement)).toEqual([
    { Action: ['dynamodb:PutItem', 'dynamodb:DeleteItem'], Effect: 'Allow', Resource: '${Orch/PluginTable.Arn}' },
    { Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'], Effect: 'Allow', Resource: '${Key.Arn}' },
  ]);
});

test('every IAM statement a plugin adds is scoped: no "*" resource, resource-side grants name their principal and source', () => {
  const app = new App();
  const platform = new Stack(app, 'Platform');
  const orch = new Orchestrator(platform, 'Orch', { activities: ['Step1'], orchestratorName: 'orders', encryptionKey: new kms.Key(platform, 'Key') });
  const plugins = new Stack(app, 'Plugins');
  orch.activity('Step1').addPlugin(plainFunction(plugins, 'Pre'), { stage: ActivityStage.PRE, pluginName: 'Pre' });
  orch.activity('Step1').addPlugin(plainFunction(plugins, 'Par'), {
    stage: ActivityStage.PARALLEL, pluginName: 'Par', filterPolicy: { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['EU'] }) },
  });
  orch.activity('Step1').addPlugin(plainFunction(plugins, 'Post'), { stage: ActivityStage.POST, pluginName: 'Post', mandatory: false });
  const s = new Synth(plugins);
  const statements = s.allStatements();
  expect(statements.length).toBeGreaterThan(0);
  for (const { where, statement } of statements) {
    for (const resource of asArray(statement.Resource)) {
      expect({ where, resource }).toEqual({ where, resource: expect.not.stringContaining('*') });
    }
  }
  const permissions = s.pathsOf('AWS::Lambda::Permission').map((path) => s.resource(path).Properties);
  expect(permissions).toHaveLength(3);
  // SNS may invoke a plugin from its activity's parallel topic only; everything else is the sequential-stage role.
  const bySns = permissions.filter((props) => props.Principal === 'sns.amazonaws.com');
  const others = permissions.filter((props) => props.Principal !== 'sns.amazonaws.com');
  // Par is a PARALLEL plugin; Pre and Post are PRE/POST plugins (one statement per function).
  expect(bySns).toHaveLength(1);
  expect(JSON.stringify(bySns[0].SourceArn)).toMatch(/ParallelTopic/);
  expect(others).toHaveLength(2);
  for (const props of others) expect(JSON.stringify(props.Principal)).toContain('SequentialStageRole');
});

describe('validation: clear synth-time errors naming the bad value', () => {
  const setup = () => {
    const { stack, orch } = oneStack();
    return { stack, step1: orch.activity('Step1'), fn: plainFunction(stack, 'Fn') };
  };
  const where = "Activity 'TestStack/Orch/Activities/Step1'";

  test('an unknown stage (e.g. a status-document key instead of an ActivityStage)', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: 'async' as ActivityStage, pluginName: 'Rate' })).toThrow(
      `${where}: addPlugin "Rate": stage "async" is not an ActivityStage; use ActivityStage.PRE, ActivityStage.PARALLEL or ActivityStage.POST`);
  });

  test.each([
    ['rate v2', '"rate v2"'],
    ['a/b', '"a/b"'],
    ['', '""'],
    ['x'.repeat(65), `"${'x'.repeat(65)}"`],
    ['Rate.v2', '"Rate.v2"'],
  ])('an invalid pluginName %j', (name, quoted) => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PRE, pluginName: name })).toThrow(
      `pluginName ${quoted} is invalid: use 1-64 characters from letters A-Z a-z, digits 0-9, hyphen (-) and underscore (_)`);
  });

  test('a pluginName that is a token', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PRE, pluginName: Token.asString({ Ref: 'Name' }) }))
      .toThrow('pluginName must be a literal string known at synth time, not a token');
  });

  test('a pluginName used twice in one activity and stage', () => {
    const { stack, step1, fn } = setup();
    step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    expect(() => step1.addPlugin(plainFunction(stack, 'Other'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate' })).toThrow(
      `${where}: addPlugin "Rate": stage "async" already has a plugin named "Rate" (function TestStack/Fn); plugin names are unique per activity and stage`);
    // ...the same name in another stage or activity is fine.
    step1.addPlugin(plainFunction(stack, 'Pre'), { stage: ActivityStage.PRE, pluginName: 'Rate' });
  });

  test('one function twice in one activity and stage', () => {
    const { step1, fn } = setup();
    step1.addPlugin(fn, { stage: ActivityStage.POST, pluginName: 'First' });
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.POST, pluginName: 'Second' })).toThrow(
      `${where}: addPlugin "Second": function TestStack/Fn is already plugin "First" of stage "post"; a function serves a stage of an activity once`);
  });

  test('order on a PARALLEL plugin', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', order: 10 })).toThrow(
      `${where}: addPlugin "Rate": order 10 is only for PRE and POST plugins (they run one at a time, in order); PARALLEL plugins all receive the message at once: remove order`);
  });

  test.each([1.5, -1, 1_000_001])('order %p', (order) => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PRE, pluginName: 'Check', order })).toThrow(
      `${where}: addPlugin "Check": order is ${order}; it must be a whole number from 0 to 1,000,000`);
  });

  test('filterPolicy on a PRE or POST plugin', () => {
    const { step1, fn } = setup();
    const filterPolicy = { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['EU'] }) };
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.POST, pluginName: 'Notify', filterPolicy })).toThrow(
      `${where}: addPlugin "Notify": filterPolicy is only for PARALLEL plugins (an SNS subscription filter); POST plugins are invoked directly for every run: remove filterPolicy ["region"]`);
  });

  test.each<[ActivityStage, Duration, string]>([
    [ActivityStage.PRE, Duration.minutes(5), 'timeout of a PRE plugin is 5 minutes; it must be a whole number of seconds between 1 second and 4 minutes 30 seconds'],
    [ActivityStage.POST, Duration.millis(1500), 'timeout of a POST plugin is 1 second 500 millis; it must be a whole number of seconds between 1 second and 4 minutes 30 seconds'],
    [ActivityStage.PARALLEL, Duration.seconds(30), 'timeout of a PARALLEL plugin is 30 seconds; it must be a whole number of seconds between 1 minute and 6 hours'],
    [ActivityStage.PARALLEL, Duration.hours(7), 'timeout of a PARALLEL plugin is 7 hours; it must be a whole number of seconds between 1 minute and 6 hours'],
  ])('%s timeout %s', (stage, timeout, message) => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage, pluginName: 'P', timeout })).toThrow(`${where}: addPlugin "P": ${message}`);
  });

  test('queue: PARALLEL only (test/constructs/queue-plugins.test.ts covers the queue bridge)', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PRE, pluginName: 'Slow', queue: true })).toThrow(
      `${where}: addPlugin "Slow": queue is only for PARALLEL plugins`);
    // queue: false is the default and accepted.
    step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: false });
  });

  test('a rejected plugin leaves nothing behind', () => {
    const { stack, step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', order: 1 })).toThrow();
    expect(fn.node.children.map((c) => c.node.id)).not.toContain('Plugin-Step1-async');
    expect(new Synth(stack).pathsOf('Custom::AWS')).toEqual([]);
  });
});
