// activity.addPlugin(fn, { stage: PARALLEL, queue: true, fifoKey? }): the queue bridge
// (DESIGN.md "Queue bridge"): parallel topic -> the stack's bridge function -> the plugin's SQS queue
// (SSL-only, encrypted, with a dead-letter queue) -> the plugin; every resource in the plugin's stack.
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { asArray, Synth } from './util';
import { Activity, ActivityAttributes, ActivityStage, Orchestrator, OrchestratorAttributes } from '../../src';

function plainFunction(scope: Stack, id: string, timeout?: Duration): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({});'),
    timeout,
  });
}

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

function sdkCall(s: Synth, path: string): any {
  return JSON.parse(s.flat(s.resource(path).Properties.Create));
}

const BASE = 'Slow/Plugin-Step1-async';
const BRIDGE = 'CdkOrchestratorQueueBridge';

describe('a queue plugin (standard queue, no customer managed key)', () => {
  const { stack, orch } = oneStack();
  const slow = plainFunction(stack, 'Slow', Duration.seconds(20));
  const plugin = orch.activity('Step1').addPlugin(slow, {
    stage: ActivityStage.PARALLEL,
    pluginName: 'Slow',
    queue: true,
    filterPolicy: { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['EU'] }) },
  });
  const s = new Synth(stack);

  test('the queue: SQS-managed encryption, SSL-only, visibility 6 x the function timeout, 3 receives then the dead-letter queue', () => {
    const queue = s.resource(`${BASE}/Queue`).Properties;
    expect(queue.SqsManagedSseEnabled).toBe(true);
    expect(queue.KmsMasterKeyId).toBeUndefined();
    expect(queue.FifoQueue).toBeUndefined();
    expect(queue.VisibilityTimeout).toBe(120);
    expect(s.flat(queue.RedrivePolicy)).toEqual({ deadLetterTargetArn: `\${${BASE}/DeadLetterQueue.Arn}`, maxReceiveCount: 3 });
    const dlq = s.resource(`${BASE}/DeadLetterQueue`).Properties;
    expect(dlq.SqsManagedSseEnabled).toBe(true);
    expect(dlq.MessageRetentionPeriod).toBe(14 * 24 * 3600);
    for (const path of [`${BASE}/Queue/Policy`, `${BASE}/DeadLetterQueue/Policy`]) {
      expect(s.resourceStatements(path)).toContainEqual(expect.objectContaining({
        Effect: 'Deny', Action: 'sqs:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      }));
    }
  });

  test('the plugin consumes its queue: one message per invocation, partial batch failures; the bridge consumes the dead-letter queue', () => {
    expect(s.flat(s.resource(`${BASE}/QueueEventSource`).Properties)).toEqual({
      FunctionName: '${Slow}',
      EventSourceArn: `\${${BASE}/Queue.Arn}`,
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(s.flat(s.resource(`${BASE}/DeadLetterEventSource`).Properties)).toEqual({
      FunctionName: `\${${BRIDGE}/Function}`,
      EventSourceArn: `\${${BASE}/DeadLetterQueue.Arn}`,
      BatchSize: 10,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  test('the bridge, not the plugin, is subscribed to the parallel topic (with the filter policy); SNS may invoke it from that topic only', () => {
    const subscription = s.flat(s.resource(`${BASE}/Subscription`).Properties);
    expect(subscription).toEqual({
      Protocol: 'lambda',
      TopicArn: '${Orch/Activities/Step1/ParallelTopic}',
      Endpoint: `\${${BRIDGE}/Function.Arn}`,
      FilterPolicy: { region: ['EU'] },
    });
    expect(s.flat(s.resource(`${BASE}/SnsInvokePermission`).Properties)).toEqual({
      Action: 'lambda:InvokeFunction',
      FunctionName: `\${${BRIDGE}/Function.Arn}`,
      Principal: 'sns.amazonaws.com',
      SourceArn: '${Orch/Activities/Step1/ParallelTopic}',
    });
    // The plugin itself is not invoked by SNS: no asynchronous invocation config, no destinations.
    expect(s.pathsOf('AWS::Lambda::EventInvokeConfig')).toEqual([`${BRIDGE}/EventInvokeConfig`]);
    expect(plugin.subscription).toBe(plugin.node.findChild('Subscription'));
    expect(plugin.queue).toBe(plugin.node.findChild('Queue'));
    expect(plugin.deadLetterQueue).toBe(plugin.node.findChild('DeadLetterQueue'));
  });

  test('the registry item: keyed by the bridge\'s subscription, naming the plugin function and its queues', () => {
    const item = sdkCall(s, `${BASE}/Registration/Resource/Default`).parameters.Item;
    expect(item).toEqual({
      orchestratorId: { S: 'Step1|async' },
      subscriptionArn: { S: `\${${BASE}/Subscription}` },
      functionName: { S: '${Slow}' },
      functionArn: { S: '${Slow.Arn}' },
      pluginName: { S: 'Slow' },
      mandatory: { BOOL: true },
      order: { N: '90' },
      source: { S: 'cdk' },
      filterPolicy: { S: '{"region":["EU"]}' },
      queueUrl: { S: `\${${BASE}/Queue}` },
      deadLetterQueueArn: { S: `\${${BASE}/DeadLetterQueue.Arn}` },
      maxReceiveCount: { N: '3' },
    });
  });

  test('registered only once the bridge can run and report and the plugin can consume its queue', () => {
    const dependsOn: string[] = s.resource(`${BASE}/Registration/Resource/Default`).DependsOn;
    for (const path of [`${BASE}/SnsInvokePermission`, `${BASE}/QueueEventSource`, `${BASE}/DeadLetterEventSource`,
      `${BRIDGE}/EventInvokeConfig`, `${BRIDGE}/Role/DefaultPolicy`]) {
      expect(dependsOn).toContain(s.id(path));
    }
    // Lambda checks the role's access to the queue when it creates the mapping.
    expect(s.resource(`${BASE}/QueueEventSource`).DependsOn).toContain(s.id(`${BASE}/Queue/Policy`));
    expect(s.resource(`${BASE}/DeadLetterEventSource`).DependsOn).toContain(s.id(`${BASE}/DeadLetterQueue/Policy`));
  });

  test('the bridge: the library\'s handler bundle, its own role and log group, plugin-outcome as on-failure destination only', () => {
    const fn = s.resource(`${BRIDGE}/Function`).Properties;
    expect(fn.Handler).toBe('index.handler');
    expect(fn.TracingConfig).toEqual({ Mode: 'Active' });
    expect(s.flat(fn.Environment.Variables)).toEqual(expect.objectContaining({
      STATUS_TABLE_NAME: '${Orch/StatusTable}',
      PLUGIN_TABLE_NAME: '${Orch/PluginTable}',
      POWERTOOLS_SERVICE_NAME: 'cdk-orchestrator',
      ORCHESTRATOR_NAME: 'orders', // the orchestrator dimension of its PluginErrors
    }));
    expect(s.flat(fn.LoggingConfig)).toEqual(expect.objectContaining({ LogGroup: `\${${BRIDGE}/Logs}` }));
    expect(s.resource(`${BRIDGE}/Role`).Properties.ManagedPolicyArns).toBeUndefined();
    expect(s.flat(s.resource(`${BRIDGE}/EventInvokeConfig`).Properties)).toEqual({
      FunctionName: `\${${BRIDGE}/Function}`,
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      DestinationConfig: { OnFailure: { Destination: '${Orch/Handlers/PluginOutcome.Arn}' } },
    });
  });

  test('least privilege: the bridge role reaches the two tables and plugin-outcome; queue access is on the queues\' policies', () => {
    const statements = s.roleStatements(`${BRIDGE}/Role`);
    const byAction = Object.fromEntries(statements.map((st: any) => [asArray(st.Action).join(','), asArray(st.Resource)]));
    expect(byAction).toEqual({
      'logs:CreateLogStream,logs:PutLogEvents': [`\${${BRIDGE}/Logs.Arn}`],
      'dynamodb:UpdateItem': ['${Orch/StatusTable.Arn}'],
      'dynamodb:GetItem,dynamodb:Query': ['${Orch/PluginTable.Arn}'],
      'lambda:InvokeFunction': ['${Orch/Handlers/PluginOutcome.Arn}'],
      'xray:PutTraceSegments,xray:PutTelemetryRecords': ['*'],
    });
    const allows = (path: string) => s.resourceStatements(path).filter((st: any) => st.Effect === 'Allow')
      .map((st: any) => ({ principal: st.Principal.AWS, actions: asArray(st.Action), resources: asArray(st.Resource) }));
    expect(allows(`${BASE}/Queue/Policy`)).toEqual([
      { principal: `\${${BRIDGE}/Role.Arn}`, actions: ['sqs:SendMessage'], resources: [`\${${BASE}/Queue.Arn}`] },
      { principal: '${Slow/ServiceRole.Arn}', actions: expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']), resources: [`\${${BASE}/Queue.Arn}`] },
    ]);
    expect(allows(`${BASE}/DeadLetterQueue/Policy`)).toEqual([
      { principal: `\${${BRIDGE}/Role.Arn}`, actions: expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage']), resources: [`\${${BASE}/DeadLetterQueue.Arn}`] },
    ]);
    // Nobody may send to the dead-letter queue but SQS's redrive; the plugin role gets no sqs:SendMessage.
    expect(JSON.stringify(s.allStatements().filter((x) => x.where.includes('Slow/ServiceRole')))).not.toContain('sqs:');
  });

  test('nothing is added to the orchestrator\'s roles', () => {
    const bare = oneStack();
    expect(s.roleStatements('Orch/Handlers/PluginOutcomeRole')).toEqual(new Synth(bare.stack).roleStatements('Orch/Handlers/PluginOutcomeRole'));
  });
});

describe('fifoKey: a FIFO queue', () => {
  const { stack, orch } = oneStack();
  const ordered = plainFunction(stack, 'Ordered');
  orch.activity('Step1').addPlugin(ordered, { stage: ActivityStage.PARALLEL, pluginName: 'Ordered', queue: true, fifoKey: 'customer' });
  const s = new Synth(stack);
  const base = 'Ordered/Plugin-Step1-async';

  test('queue and dead-letter queue are FIFO; the registry names the field that groups the messages', () => {
    expect(s.resource(`${base}/Queue`).Properties.FifoQueue).toBe(true);
    expect(s.resource(`${base}/DeadLetterQueue`).Properties.FifoQueue).toBe(true);
    // The bridge gives each message a deduplication id: no content-based deduplication.
    expect(s.resource(`${base}/Queue`).Properties.ContentBasedDeduplication).toBeUndefined();
    // Lambda's default timeout (3 s): the 30 s minimum visibility timeout.
    expect(s.resource(`${base}/Queue`).Properties.VisibilityTimeout).toBe(30);
    expect(sdkCall(s, `${base}/Registration/Resource/Default`).parameters.Item.fifoKey).toEqual({ S: 'customer' });
  });
});

describe('a customer managed key', () => {
  const { stack, orch } = oneStack({ encryptionKey: true });
  const slow = plainFunction(stack, 'Slow');
  orch.activity('Step1').addPlugin(slow, { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true });
  const s = new Synth(stack);

  test('both queues are encrypted with the orchestrator\'s key; the bridge may use it to send and read, the plugin to read', () => {
    for (const queue of ['Queue', 'DeadLetterQueue']) {
      expect(s.flat(s.resource(`${BASE}/${queue}`).Properties.KmsMasterKeyId)).toBe('${Key.Arn}');
    }
    const kmsOf = (role: string) => s.roleStatements(role).filter((st: any) => asArray(st.Action).some((a: string) => a.startsWith('kms:')))
      .map((st: any) => ({ actions: asArray(st.Action), resources: asArray(st.Resource) }));
    expect(kmsOf(`${BRIDGE}/Role`)).toContainEqual({ actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: ['${Key.Arn}'] });
    expect(kmsOf('Slow/ServiceRole')).toContainEqual({ actions: ['kms:Decrypt'], resources: ['${Key.Arn}'] });
  });
});

describe('one bridge per stack', () => {
  test('queue plugins of different activities share the stack\'s bridge; two of one activity need two (one subscription per topic and endpoint)', () => {
    const build = (third: boolean) => {
      const { stack, orch } = oneStack();
      orch.activity('Step1').addPlugin(plainFunction(stack, 'A'), { stage: ActivityStage.PARALLEL, pluginName: 'A', queue: true });
      orch.activity('Step2').addPlugin(plainFunction(stack, 'B'), { stage: ActivityStage.PARALLEL, pluginName: 'B', queue: true });
      if (third) orch.activity('Step1').addPlugin(plainFunction(stack, 'C'), { stage: ActivityStage.PARALLEL, pluginName: 'C', queue: true });
      return new Synth(stack);
    };
    const s1 = build(false);
    expect(s1.pathsOf('AWS::Lambda::Function').filter((p) => p.includes('QueueBridge'))).toEqual([`${BRIDGE}/Function`]);
    const s2 = build(true);
    expect(s2.pathsOf('AWS::Lambda::Function').filter((p) => p.includes('QueueBridge')).sort())
      .toEqual([`${BRIDGE}/Function`, `${BRIDGE}2/Function`]);
    const endpointOf = (plugin: string, activity: string) => s2.flat(s2.resource(`${plugin}/Plugin-${activity}-async/Subscription`).Properties.Endpoint);
    expect([endpointOf('A', 'Step1'), endpointOf('B', 'Step2'), endpointOf('C', 'Step1')])
      .toEqual([`\${${BRIDGE}/Function.Arn}`, `\${${BRIDGE}/Function.Arn}`, `\${${BRIDGE}2/Function.Arn}`]);
  });
});

describe('a queue plugin in another stack of the same app', () => {
  test('every resource is in the plugin\'s stack; it refers to the orchestrator stack, never the reverse', () => {
    const bare = new Stack(new App(), 'Platform');
    new Orchestrator(bare, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const before = new Synth(bare).resources;
    const app = new App();
    const platform = new Stack(app, 'Platform');
    const orch = new Orchestrator(platform, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const plugins = new Stack(app, 'Plugins');
    orch.activity('Step1').addPlugin(plainFunction(plugins, 'Slow'), { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true, fifoKey: 'customer' });
    expect(() => app.synth()).not.toThrow();
    expect(plugins.dependencies).toEqual([platform]);
    expect(platform.dependencies).toEqual([]);
    expect(new Synth(platform).resources).toEqual(before);
    const s = new Synth(plugins);
    expect(s.counts()).toEqual({
      'AWS::IAM::Role': 3, // the plugin's, the bridge's, the registration provider's
      // the plugin's (it reports its own state: the status table), the bridge's, the provider's (its logs), the registration's
      'AWS::IAM::Policy': 4,
      'AWS::Logs::LogGroup': 2, // the bridge's and the provider's
      'AWS::Lambda::Function': 3, // the plugin, the bridge, the provider
      'AWS::Lambda::Permission': 1,
      'AWS::Lambda::EventInvokeConfig': 1,
      'AWS::Lambda::EventSourceMapping': 2,
      'AWS::SNS::Subscription': 1,
      'AWS::SQS::Queue': 2,
      'AWS::SQS::QueuePolicy': 2,
      'Custom::AWS': 1,
    });
    const template = JSON.stringify(s.template.toJSON());
    for (const exported of ['PluginTable', 'StatusTable', 'ParallelTopic', 'PluginOutcome']) {
      expect(template).toMatch(new RegExp(`"Fn::ImportValue":"Platform:ExportsOutput[A-Za-z0-9]*${exported}`));
    }
    // The Powertools layer is read from AWS's public parameter in the plugin stack, not imported.
    expect(template).not.toMatch(/ImportValue[^}]*Powertools/);
  });
});

describe('imported activities', () => {
  const ORCH_ATTRS: OrchestratorAttributes = {
    orchestratorName: 'orders',
    activities: ['Step1'],
    statusTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-status',
    pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
    pluginOutcomeFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-plugin-outcome',
  };
  const ACTIVITY_ATTRS: ActivityAttributes = {
    activityName: 'Step1',
    stateMachineArn: 'arn:aws:states:eu-west-1:111122223333:stateMachine:orders-Step1',
    preTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-pre',
    parallelTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-parallel',
    postTopicArn: 'arn:aws:sns:eu-west-1:111122223333:orders-Step1-post',
    pluginTableArn: ORCH_ATTRS.pluginTableArn,
    pluginOutcomeFunctionArn: ORCH_ATTRS.pluginOutcomeFunctionArn,
  };
  const env = { account: '111122223333', region: 'eu-west-1' };

  test('Orchestrator.fromOrchestratorAttributes: the bridge uses the ARNs of the attributes', () => {
    const stack = new Stack(new App(), 'Other', { env });
    const step1 = Orchestrator.fromOrchestratorAttributes(stack, 'Orch', ORCH_ATTRS).findActivity('Step1');
    step1.addPlugin(plainFunction(stack, 'Slow'), { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true });
    const s = new Synth(stack);
    expect(s.flat(s.resource(`${BASE}/Subscription`).Properties.TopicArn)).toBe(ACTIVITY_ATTRS.parallelTopicArn);
    const statements = s.roleStatements(`${BRIDGE}/Role`);
    expect(statements).toContainEqual(expect.objectContaining({ Action: 'dynamodb:UpdateItem', Resource: ORCH_ATTRS.statusTableArn }));
    expect(statements).toContainEqual(expect.objectContaining({ Action: ['dynamodb:GetItem', 'dynamodb:Query'], Resource: ORCH_ATTRS.pluginTableArn }));
    expect(s.resource(`${BRIDGE}/Function`).Properties.Environment.Variables).toEqual(expect.objectContaining({
      STATUS_TABLE_NAME: 'orders-status', PLUGIN_TABLE_NAME: 'orders-plugins', ORCHESTRATOR_NAME: 'orders',
    }));
  });

  test('Activity.fromActivityAttributes without statusTableArn: a queue plugin is refused, naming the attribute', () => {
    const stack = new Stack(new App(), 'Other', { env });
    const step1 = Activity.fromActivityAttributes(stack, 'Step1', ACTIVITY_ATTRS);
    expect(() => step1.addPlugin(plainFunction(stack, 'Slow'), { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true }))
      .toThrow('addPlugin "Slow": this imported activity has no statusTableArn; a queue plugin needs it: pass it to Activity.fromActivityAttributes');
    // With it, it works.
    const withStatus = Activity.fromActivityAttributes(stack, 'Step1b', { ...ACTIVITY_ATTRS, statusTableArn: ORCH_ATTRS.statusTableArn });
    withStatus.addPlugin(plainFunction(stack, 'Slow2'), { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true });
  });

  test('an imported function: its queue cannot name a role, so a warning says what to grant', () => {
    const stack = new Stack(new App(), 'Other', { env });
    const step1 = Orchestrator.fromOrchestratorAttributes(stack, 'Orch', ORCH_ATTRS).findActivity('Step1');
    const imported = lambda.Function.fromFunctionArn(stack, 'Imported', 'arn:aws:lambda:eu-west-1:111122223333:function:slow');
    step1.addPlugin(imported, { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true });
    Annotations.fromStack(stack).hasWarning('/Other/Imported', Match.stringLikeRegexp('execution role of this queue plugin is not known'));
    // Lambda's maximum timeout sets the visibility timeout of a function whose timeout is unknown.
    expect(new Synth(stack).resource('Imported/Plugin-Step1-async/Queue').Properties.VisibilityTimeout).toBe(5400);
  });
});

describe('validation', () => {
  const setup = () => {
    const { stack, orch } = oneStack();
    return { step1: orch.activity('Step1'), fn: plainFunction(stack, 'Fn') };
  };
  const where = 'Activity \'TestStack/Orch/Activities/Step1\': addPlugin "Q"';

  test.each([ActivityStage.PRE, ActivityStage.POST])('queue on a %s plugin: sequential plugins are invoked synchronously', (stage) => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage, pluginName: 'Q', queue: true })).toThrow(
      `${where}: queue is only for PARALLEL plugins; ${stage} plugins are invoked synchronously by their stage`);
  });

  test('timeout with queue', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Q', queue: true, timeout: Duration.minutes(5) }))
      .toThrow(`${where}: timeout is not available with queue`);
  });

  test('fifoKey without queue', () => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Q', fifoKey: 'customer' }))
      .toThrow(`${where}: fifoKey "customer" is only for queue plugins (it makes their queue FIFO): set queue: true or remove fifoKey`);
  });

  // One limit with the handshake and docs/PLUGIN-PROTOCOL.md: 128 characters.
  test.each(['', 'x'.repeat(129)])('fifoKey %j', (fifoKey) => {
    const { step1, fn } = setup();
    expect(() => step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Q', queue: true, fifoKey }))
      .toThrow(`${where}: fifoKey is "${fifoKey}"; it must be the name of a metadata field, 1-128 characters known at synth time`);
  });

  test('fifoKey of 128 characters, the limit', () => {
    const { step1, fn } = setup();
    const plugin = step1.addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Q', queue: true, fifoKey: 'x'.repeat(128) });
    expect(plugin.queue?.fifo).toBe(true);
  });
});
