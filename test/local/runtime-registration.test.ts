/**
 * Run-time registration end to end on the local engine: plugins deployed without `addPlugin` (as
 * SAM, Serverless Framework or Terraform would deploy them) are subscribed through the engine's SNS
 * API, and the orchestrator's own plugin-registrar function (the bundled handler) registers them
 * from the CloudTrail event of that call, with the initialize handshake through the engine's Lambda
 * service. The engine does not emulate CloudTrail or EventBridge rules, so the test delivers the
 * CloudTrail-shaped event to the registrar itself, as the rule would (the rule's pattern is checked
 * against the same events in test/constructs/runtime-registration.test.ts).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';
import { Orchestrator, Workflow } from '../../src';
import { subscribeEvent, unsubscribeEvent } from '../support/cloudtrail';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const ORCHESTRATOR = 'rt';
const topicArn = (stage: string) => `arn:aws:sns:${REGION}:${ACCOUNT}:${ORCHESTRATOR}-Quote-${stage}`;
const functionArn = (name: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;

/** A zero-SDK plugin: answers the handshake, otherwise succeeds (its return value is its outcome). */
const zeroSdk = (answer: object) => `exports.handler = async (event) => event.initialize === true ? ${JSON.stringify(answer)} : {};`;

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

maybe('run-time registration on the local engine', () => {
  let engine: LocalEngine;
  let sns: SNSClient;
  const registrar = () => engine.assembly.functions.find((f) => f.path === 'Runtime/Orch/Handlers/PluginRegistrar')!.name;
  const invocations = (name: string) => engine.counters().functions[name]?.invocations ?? 0;
  const orchestratorInvocations = () => engine.assembly.functions.filter((f) => f.path?.startsWith('Runtime/Orch/Handlers/'))
    .reduce((sum, f) => sum + invocations(f.name), 0);

  /** What an operator does with the CLI, and what EventBridge then delivers to the registrar. */
  async function subscribe(stage: string, fn: string): Promise<{ subscriptionArn: string; result: any }> {
    const { SubscriptionArn } = await sns.send(new SubscribeCommand({ TopicArn: topicArn(stage), Protocol: 'lambda', Endpoint: functionArn(fn) }));
    const event = subscribeEvent({ topicArn: topicArn(stage), functionArn: functionArn(fn), subscriptionArn: SubscriptionArn! });
    const answer = await engine.invoke(registrar(), event);
    if (!answer.ok) throw new Error(`registrar failed: ${JSON.stringify(answer.error)}`);
    return { subscriptionArn: SubscriptionArn!, result: JSON.parse(answer.payload) };
  }

  beforeAll(async () => {
    const { stack } = buildApp();
    engine = new LocalEngine({
      app: stack,
      dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
      asyncRetryDelaysMs: [100, 200],
      logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
      plugins: { 'rt-rate': `${join(__dirname, 'fixtures', 'self-reporting-plugin.ts')}#handler` },
    });
    await engine.start();
    sns = new SNSClient({ endpoint: engine.endpointUrl, region: REGION, credentials: { accessKeyId: 'local', secretAccessKey: 'local' } });
  }, 120_000);

  afterAll(async () => {
    sns?.destroy();
    await engine?.stop();
  });

  let scoreSubscription: string;

  test('plugins subscribed outside CDK are registered by the handshake and take part in the next run (PRE and PARALLEL)', async () => {
    const before = { orchestrator: orchestratorInvocations(), registrar: invocations(registrar()), ddb: engine.counters().dynamodb };
    const rate = await subscribe('parallel', 'rt-rate');
    const score = await subscribe('parallel', 'rt-score');
    const audit = await subscribe('pre', 'rt-audit');
    scoreSubscription = score.subscriptionArn;
    expect([rate.result, score.result, audit.result]).toEqual([
      expect.objectContaining({ outcome: 'registered', stage: 'async', pluginName: 'rate' }),
      expect.objectContaining({ outcome: 'registered', stage: 'async', pluginName: 'score' }),
      expect.objectContaining({ outcome: 'registered', stage: 'pre', pluginName: 'audit' }),
    ]);
    // Cost of a registration: one registrar invocation, one handshake invocation of the plugin,
    // one GetItem (is it CDK's?) and one PutItem.
    const after = engine.counters();
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
    const answer = await engine.invoke(registrar(), unsubscribeEvent(scoreSubscription));
    expect(JSON.parse((answer as { payload: string }).payload)).toMatchObject({ outcome: 'unregistered', pluginName: 'score', released: 0 });

    const result = await engine.runWorkflow('quote', { uid: 'rt-2', metadata: { region: 'EU' } }).result();
    await engine.idle();
    expect(result.status).toBe('SUCCEEDED');
    const async = (await engine.statusDocument('rt-2', 'quote'))!.activities.Quote.async;
    expect(Object.keys(async.mandatory).sort()).toEqual(['rate']);
    expect(invocations('rt-score')).toBe(2);
  });
});
