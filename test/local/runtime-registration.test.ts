/**
 * Run-time registration end to end on the local engine, with no hand-made event: plugins deployed
 * without `addPlugin` (as SAM, Serverless Framework or Terraform would deploy them) are subscribed
 * through the engine's SNS API; the engine's CloudTrail records the call, the orchestrator's own
 * EventBridge rule (RuntimeRegistration's SubscriptionRule / CodeUpdateRule, from the template)
 * matches it and invokes the plugin-registrar function (the bundled handler), which registers the
 * plugin after its initialize handshake through the engine's Lambda service. Another team's plugin
 * app deployed into the running engine (`engine.deploy`) is registered the same way, from the
 * CloudTrail records of CloudFormation's calls.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { LambdaClient, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { App, Stack, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import * as snsApi from 'aws-cdk-lib/aws-sns';
import { LambdaSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { eventually, inlineFunction, loggedRecords, newStack, outsideCallerConfig, testClock } from './support';
import { LocalEngine } from '../../local/src';
import { Orchestrator, Workflow } from '../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';
import { zipPackage } from '../support/zip';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ORCHESTRATOR = 'rt';
const topicArn = (stage: string) => `arn:aws:sns:${REGION}:${ACCOUNT}:${ORCHESTRATOR}-Quote-${stage}`;
const functionArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;

/** A zero-SDK plugin: answers the handshake, otherwise succeeds (its return value is its outcome). */
const zeroSdk = (answer: object) => `exports.handler = async (event) => event.initialize === true ? ${JSON.stringify(answer)} : {};`;

/** The tag that lets the orchestrator invoke a function it did not deploy (docs/PLUGIN-PROTOCOL.md). */
function tagAsPlugin(fn: Construct) {
  Tags.of(fn).add(`cdk-orchestrator:${ORCHESTRATOR}`, 'plugin');
}

const bundled = existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'plugin-registrar', 'index.js'));
const maybe = bundled ? describe : describe.skip;

function buildApp() {
  const stack = newStack('Runtime');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: ORCHESTRATOR, activities: ['Quote'] });
  new Workflow(stack, 'Wf', { orchestrator, activities: ['Quote'], workflowName: 'quote' });
  // Deployed "elsewhere": plain functions, no addPlugin. Their code reaches the orchestrator only
  // through what docs/PLUGIN-PROTOCOL.md documents.
  const rate = inlineFunction(stack, 'Rate', 'exports.handler = async () => ({});', {
    functionName: 'rt-rate',
    environment: { COORDINATES: `/cdk-orchestrator/${ORCHESTRATOR}/config`, PLUGIN_NAME: 'rate', HANDSHAKE: JSON.stringify({ pluginName: 'rate' }) },
  });
  orchestrator.grantPluginStatus(rate);
  // The fixture reads the orchestrator's coordinates (docs/PLUGIN-PROTOCOL.md "Coordinates") from SSM.
  rate.addToRolePolicy(new iam.PolicyStatement({
    actions: ['ssm:GetParameter'],
    resources: [stack.formatArn({ service: 'ssm', resource: 'parameter', resourceName: `cdk-orchestrator/${ORCHESTRATOR}/config` })],
  }));
  const audit = inlineFunction(stack, 'Audit', zeroSdk({ pluginName: 'audit', order: 10 }), { functionName: 'rt-audit' });
  const score = inlineFunction(stack, 'Score', zeroSdk({ pluginName: 'score' }), { functionName: 'rt-score' });
  for (const fn of [rate, audit, score]) tagAsPlugin(fn);
  // A zero-SDK PARALLEL plugin reports through Lambda destinations to plugin-outcome (its ARN is in SSM).
  score.configureAsyncInvoke({
    onSuccess: new destinations.LambdaDestination(orchestrator.handlers.pluginOutcome),
    onFailure: new destinations.LambdaDestination(orchestrator.handlers.pluginOutcome),
    retryAttempts: 2,
  });
  // What docs/PLUGIN-PROTOCOL.md asks of a plugin joining at run time: the orchestrator's tag (it may
  // invoke only tagged functions) and the SNS-to-Lambda permission for the activity's topics.
  for (const fn of [rate, audit, score]) {
    Tags.of(fn).add(`cdk-orchestrator:${ORCHESTRATOR}`, 'plugin');
    fn.addPermission('SnsInvoke', { principal: new iam.ServicePrincipal('sns.amazonaws.com'), sourceArn: topicArn('*') });
  }
  return { stack, orchestrator };
}

/** Another team's plugin app: a tagged function subscribed to the orchestrator's post-stage topic. */
function pluginTeamApp(): Stack {
  const stack = new Stack(new App(), 'PluginTeam');
  const tax = inlineFunction(stack, 'Tax', zeroSdk({ pluginName: 'tax' }), { functionName: 'team-tax' });
  tagAsPlugin(tax);
  snsApi.Topic.fromTopicArn(stack, 'QuotePost', topicArn('post')).addSubscription(new LambdaSubscription(tax));
  return stack;
}

maybe('run-time registration on the local engine', () => {
  let engine: LocalEngine;
  let sns: SNSClient;
  const registrar = () => engine.assembly.functions.find((f) => f.path === 'Runtime/Orch/Handlers/PluginRegistrar')!.name;
  const invocations = (name: string) => engine.counters().functions[name]?.invocations ?? 0;
  const orchestratorInvocations = () => engine.assembly.functions.filter((f) => f.path?.startsWith('Runtime/Orch/Handlers/'))
    .reduce((sum, f) => sum + invocations(f.name), 0);

  const registrarLog = (message: string) => loggedRecords(engine, registrar(), message);

  /** What an operator does with the CLI; the rest (CloudTrail, the rule, the registrar) is the engine's. */
  async function subscribe(stage: string, fn: string): Promise<{ subscriptionArn: string; logged: any }> {
    const { SubscriptionArn } = await sns.send(new SubscribeCommand({ TopicArn: topicArn(stage), Protocol: 'lambda', Endpoint: functionArn(fn) }));
    const logged = await eventually(() => registrarLog('Plugin registered').find((r) => r.subscriptionArn === SubscriptionArn), 30_000, `registration of ${fn}`);
    return { subscriptionArn: SubscriptionArn!, logged };
  }

  beforeAll(async () => {
    const { stack } = buildApp();
    engine = new LocalEngine({
      app: stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      clock: testClock(),
      asyncRetryDelaysMs: [100, 200],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
      plugins: { 'rt-rate': `${join(__dirname, 'fixtures', 'self-reporting-plugin.ts')}#handler` },
    });
    await engine.start();
    sns = new SNSClient(outsideCallerConfig(engine));
  }, 120_000);

  afterAll(async () => {
    sns?.destroy();
    await engine?.stop();
  });

  let scoreSubscription: string;

  test('plugins subscribed outside CDK are registered by the handshake and take part in the next run (PRE and PARALLEL)', async () => {
    const counters = engine.counters();
    const before = { orchestrator: orchestratorInvocations(), registrar: invocations(registrar()), ddb: counters.dynamodb, events: counters.events };
    const rate = await subscribe('parallel', 'rt-rate');
    const score = await subscribe('parallel', 'rt-score');
    const audit = await subscribe('pre', 'rt-audit');
    scoreSubscription = score.subscriptionArn;
    expect([rate.logged, score.logged, audit.logged]).toEqual([
      expect.objectContaining({ plugin: 'rate', functionArn: functionArn('rt-rate') }),
      expect.objectContaining({ plugin: 'score', functionArn: functionArn('rt-score') }),
      expect.objectContaining({ plugin: 'audit', functionArn: functionArn('rt-audit'), order: 10 }),
    ]);
    // The path: each Subscribe is a CloudTrail record on the default bus that the orchestrator's rule matched.
    const subscribes = engine.cloudTrailEvents().filter((e) => e.detail.eventName === 'Subscribe');
    expect(subscribes.map((e) => (e.detail.responseElements as { subscriptionArn: string }).subscriptionArn))
      .toEqual([rate.subscriptionArn, score.subscriptionArn, audit.subscriptionArn]);
    await engine.idle();
    // Cost of a registration: one registrar invocation, one handshake invocation of the plugin,
    // one GetItem (is it CDK's?) and one PutItem.
    const after = engine.counters();
    expect(after.events.matched - before.events.matched).toBe(3);
    expect(orchestratorInvocations() - before.orchestrator).toBe(3);
    expect(invocations(registrar()) - before.registrar).toBe(3);
    expect([invocations('rt-rate'), invocations('rt-score'), invocations('rt-audit')]).toEqual([1, 1, 1]);
    expect(after.dynamodb.reads - before.ddb.reads).toBe(3);
    expect(after.dynamodb.writes - before.ddb.writes).toBe(3);

    const outcome = () => invocations(engine.assembly.functions.find((f) => f.path === 'Runtime/Orch/Handlers/PluginOutcome')!.name);
    const beforeRun = { orchestrator: orchestratorInvocations(), outcome: outcome() };
    const result = await engine.runWorkflow('quote', { uid: 'rt-1', metadata: { region: 'EU' } }).result();
    await engine.idle();
    expect(result.status).toBe('SUCCEEDED');
    // Per run, a run-time plugin costs what a deploy-time one does: plugin-outcome once for the
    // zero-SDK PARALLEL plugin (score), nothing for the self-reporting one (rate) or the PRE one.
    expect(outcome() - beforeRun.outcome).toBe(1);
    console.log(`run rt-1 (1 PRE, 2 PARALLEL plugins registered at run time): ${orchestratorInvocations() - beforeRun.orchestrator} orchestrator invocations`);
    const item = (await engine.statusDocument('rt-1', 'quote'))!;
    const quote = item.activities.Quote;
    expect(quote.pre.mandatory.audit.state).toBe('Complete'); // invoked by sequential-stage
    expect(quote.async.mandatory.rate.state).toBe('Complete'); // its own documented UpdateItem
    expect(quote.async.mandatory.score.state).toBe('Complete'); // plugin-outcome, from its destination
    expect(item.status.state).toBe('Complete');
    expect([invocations('rt-rate'), invocations('rt-score'), invocations('rt-audit')]).toEqual([2, 2, 2]);
  });

  test('after Unsubscribe the plugin is gone from the registry and the next run neither waits for nor invokes it', async () => {
    await sns.send(new UnsubscribeCommand({ SubscriptionArn: scoreSubscription }));
    const logged = await eventually(() => registrarLog('Plugin unregistered').find((r) => r.subscriptionArn === scoreSubscription), 30_000, 'unregistration');
    expect(logged).toMatchObject({ plugin: 'score', released: 0 });

    const result = await engine.runWorkflow('quote', { uid: 'rt-2', metadata: { region: 'EU' } }).result();
    await engine.idle();
    expect(result.status).toBe('SUCCEEDED');
    const async = (await engine.statusDocument('rt-2', 'quote'))!.activities.Quote.async;
    expect(Object.keys(async.mandatory).sort()).toEqual(['rate']);
    expect(invocations('rt-score')).toBe(2);
  });

  test('another team deploys its plugin app into the running engine: CloudFormation\'s calls register the plugin, and runs wait for it', async () => {
    const trailBefore = engine.cloudTrailEvents().length;
    await engine.deploy(pluginTeamApp());
    const calls = engine.cloudTrailEvents().slice(trailBefore).map((e) => e.detail as any);
    expect(calls.map((c) => c.eventName)).toEqual(['CreateFunction20150331', 'Subscribe']);
    for (const call of calls) expect(call.userIdentity.invokedBy).toBe('cloudformation.amazonaws.com');
    expect(calls[0].requestParameters).toMatchObject({ functionName: 'team-tax', tags: { [`cdk-orchestrator:${ORCHESTRATOR}`]: 'plugin' } });
    expect(calls[1].requestParameters).toMatchObject({ topicArn: topicArn('post'), protocol: 'lambda', endpoint: functionArn('team-tax') });
    await eventually(() => registrarLog('Plugin registered').find((r) => r.plugin === 'tax'), 30_000, 'registration of tax');

    const result = await engine.runWorkflow('quote', { uid: 'rt-3', metadata: { region: 'EU' } }).result();
    await engine.idle();
    expect(result.status).toBe('SUCCEEDED');
    const quote = (await engine.statusDocument('rt-3', 'quote'))!.activities.Quote;
    expect(quote.post.mandatory.tax.state).toBe('Complete'); // invoked by sequential-stage
    expect(invocations('team-tax')).toBe(2); // the handshake and the run
  });

  test('UpdateFunctionCode of a registered plugin (a zip, through the Lambda API) refreshes its registration from the new code\'s handshake', async () => {
    const lambda = new LambdaClient(outsideCallerConfig(engine));
    try {
      await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'team-tax', ZipFile: zipPackage({ 'index.js': zeroSdk({ pluginName: 'tax', order: 5 }) }) }));
    } finally {
      lambda.destroy();
    }
    const refreshed = await eventually(() => registrarLog('Plugin registration refreshed').find((r) => r.plugin === 'tax'), 30_000, 'refresh of tax');
    expect(refreshed).toMatchObject({ order: 5 });
  });
});
