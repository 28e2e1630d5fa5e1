/**
 * CloudTrail on the local engine: the management calls a plugin team makes — SNS Subscribe and
 * Unsubscribe, Lambda CreateFunction (a zip), TagResource and UpdateFunctionCode — are recorded in
 * AWS's shape and put on the default bus, where a rule the user wrote catches them. Failed calls are
 * not recorded. The records carry the fields the hand-made events of test/support/cloudtrail.ts
 * (used by the handler tests) carry, so those tests and the engine agree.
 */
import { join } from 'node:path';
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateFunctionCommand, InvokeCommand, LambdaClient, ListTagsCommand, TagResourceCommand, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { SNSClient, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { App, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { inlineFunction, newStack, outsideCallerConfig, startTestEngine } from '../../test/local/support';
import { subscribeEvent } from '../../test/support/cloudtrail';
import { zipPackage } from '../../test/support/zip';
import { DeployNotSupportedError, LocalEngine } from '../src';
import { runTypeScriptChild } from './support/processes';

const REGION = 'us-east-1';
const ACCOUNT = '123456789012';
const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:ct-topic`;
const FUNCTION = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:ct-plugin`;
const answer = (value: string) => `exports.handler = async () => (${JSON.stringify(value)});`;

describe('CloudTrail records of management calls on the local engine', () => {
  let engine: LocalEngine;
  let snsClient: SNSClient;
  let lambdaClient: LambdaClient;
  /** What the user's rule caught, in order. */
  const caught = () => engine.queueMessages('CloudTrail/Trail').map((m) => JSON.parse(m.body));

  beforeAll(async () => {
    const stack = newStack('CloudTrail');
    new sns.Topic(stack, 'Topic', { topicName: 'ct-topic' });
    const trail = new sqs.Queue(stack, 'Trail');
    new events.Rule(stack, 'ManagementCalls', {
      eventPattern: { source: ['aws.sns', 'aws.lambda'], detailType: ['AWS API Call via CloudTrail'] },
      targets: [new targets.SqsQueue(trail)],
    });
    engine = await startTestEngine(stack, { plugins: { 'ct-local': `${join(__dirname, 'fixtures', 'greeting.ts')}#handler` } });
    snsClient = new SNSClient(outsideCallerConfig(engine));
    lambdaClient = new LambdaClient(outsideCallerConfig(engine));
  }, 120_000);

  afterAll(async () => {
    snsClient?.destroy();
    lambdaClient?.destroy();
    await engine?.stop();
  });

  test('Lambda CreateFunction (zip), TagResource and UpdateFunctionCode: recorded with Lambda\'s versioned names; the code runs', async () => {
    const created = await lambdaClient.send(new CreateFunctionCommand({
      FunctionName: 'ct-plugin',
      Runtime: 'nodejs20.x',
      Role: `arn:aws:iam::${ACCOUNT}:role/ct`,
      Handler: 'index.handler',
      Code: { ZipFile: zipPackage({ 'index.js': answer('first') }) },
      Tags: { team: 'pricing' },
    }));
    expect(created.FunctionArn).toBe(FUNCTION);
    const invoke = async () => JSON.parse(Buffer.from((await lambdaClient.send(new InvokeCommand({ FunctionName: 'ct-plugin' }))).Payload!).toString());
    expect(await invoke()).toBe('first');

    await lambdaClient.send(new TagResourceCommand({ Resource: FUNCTION, Tags: { 'cdk-orchestrator:o': 'plugin' } }));
    expect((await lambdaClient.send(new ListTagsCommand({ Resource: FUNCTION }))).Tags).toEqual({ 'team': 'pricing', 'cdk-orchestrator:o': 'plugin' });
    expect(engine.functionTags('ct-plugin')).toEqual({ 'team': 'pricing', 'cdk-orchestrator:o': 'plugin' });

    await lambdaClient.send(new UpdateFunctionCodeCommand({ FunctionName: 'ct-plugin', ZipFile: zipPackage({ 'index.js': answer('second') }) }));
    expect(await invoke()).toBe('second');

    await engine.idle();
    const records = caught().filter((e) => e.source === 'aws.lambda');
    expect(records.map((e) => e.detail.eventName)).toEqual(['CreateFunction20150331', 'TagResource20170331v2', 'UpdateFunctionCode20150331v2']);
    for (const e of records) {
      expect(e).toMatchObject({ 'detail-type': 'AWS API Call via CloudTrail', 'account': ACCOUNT, 'region': REGION });
      expect(e.detail).toMatchObject({ eventSource: 'lambda.amazonaws.com', awsRegion: REGION, eventType: 'AwsApiCall', managementEvent: true, readOnly: false });
    }
    const [create, tag, update] = records.map((e) => e.detail);
    expect(create.requestParameters).toMatchObject({ functionName: 'ct-plugin', runtime: 'nodejs20.x', handler: 'index.handler', tags: { team: 'pricing' } });
    expect(create.responseElements).toMatchObject({ functionName: 'ct-plugin', functionArn: FUNCTION, version: '$LATEST' });
    expect(tag).toMatchObject({ requestParameters: { resource: FUNCTION, tags: { 'cdk-orchestrator:o': 'plugin' } }, responseElements: null });
    expect(update.requestParameters).toEqual({ functionName: 'ct-plugin', publish: false, dryRun: false });
    expect(update.responseElements).toMatchObject({ functionArn: FUNCTION });
  });

  test('SNS Subscribe and Unsubscribe: recorded with the subscription\'s ARN, in the shape the handler tests use', async () => {
    const { SubscriptionArn } = await snsClient.send(new SubscribeCommand({
      TopicArn: TOPIC, Protocol: 'lambda', Endpoint: FUNCTION, Attributes: { FilterPolicy: '{"kind":["quote"]}' },
    }));
    await snsClient.send(new UnsubscribeCommand({ SubscriptionArn }));
    await engine.idle();
    const [subscribe, unsubscribe] = caught().filter((e) => e.source === 'aws.sns');
    expect(subscribe.detail).toMatchObject({
      eventSource: 'sns.amazonaws.com',
      eventName: 'Subscribe',
      requestParameters: { topicArn: TOPIC, protocol: 'lambda', endpoint: FUNCTION, attributes: { FilterPolicy: '{"kind":["quote"]}' } },
      responseElements: { subscriptionArn: SubscriptionArn },
      userIdentity: { accountId: ACCOUNT },
    });
    expect(unsubscribe.detail).toMatchObject({ eventName: 'Unsubscribe', requestParameters: { subscriptionArn: SubscriptionArn }, responseElements: null });
    const handMade = subscribeEvent({ topicArn: TOPIC, functionArn: FUNCTION, subscriptionArn: SubscriptionArn! });
    expect(Object.keys(subscribe).sort()).toEqual(Object.keys(handMade).sort());
    const optional = new Set(['tlsDetails']);
    expect(Object.keys(subscribe.detail).sort()).toEqual(Object.keys(handMade.detail).filter((k) => !optional.has(k)).sort());
  });

  test('the calls leave no async hooks on in the caller\'s process (on Node.js 20 and 22 they would add work to every promise it makes)', async () => {
    // In a process of its own: Jest keeps the hooks on for its own test context. (From Node.js 24 an
    // AsyncLocalStorage no longer turns them on, and this cannot fail there.)
    const { code, stdout, stderr } = await runTypeScriptChild([join(__dirname, 'fixtures', 'async-hooks-probe.ts')], {}, 100_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const probe = JSON.parse(stdout.trim().split('\n').pop() ?? 'null');
    // The records still name their callers: the signer (an administrator here), and CloudFormation for the deployment.
    expect(probe).toEqual({
      before: false,
      after: false,
      records: [
        ['Subscribe', `arn:aws:iam::${ACCOUNT}:role/Admin`],
        ['Unsubscribe', `arn:aws:iam::${ACCOUNT}:role/Admin`],
        ['TagResource20170331v2', `arn:aws:iam::${ACCOUNT}:role/Admin`],
        ['CreateFunction20150331', 'cloudformation.amazonaws.com'],
        ['Subscribe', 'cloudformation.amazonaws.com'],
      ],
    });
  }, 120_000);

  test('failed calls are not recorded; a package that is not a zip is a named API error', async () => {
    const before = engine.cloudTrailEvents().length;
    await expect(snsClient.send(new SubscribeCommand({ TopicArn: `${TOPIC}-missing`, Protocol: 'lambda', Endpoint: FUNCTION }))).rejects.toMatchObject({ name: 'NotFoundException' });
    await expect(lambdaClient.send(new UpdateFunctionCodeCommand({ FunctionName: 'ct-nothing', ZipFile: zipPackage({ 'index.js': '' }) })))
      .rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(lambdaClient.send(new UpdateFunctionCodeCommand({ FunctionName: 'ct-plugin', ZipFile: Buffer.from('not a zip') })))
      .rejects.toMatchObject({ name: 'InvalidParameterValueException', message: expect.stringMatching(/not a zip file/) });
    expect(engine.cloudTrailEvents().length).toBe(before);
  });

  test('CreateFunction without a package runs the local code the plugins option maps to its name', async () => {
    await lambdaClient.send(new CreateFunctionCommand({ FunctionName: 'ct-local', Runtime: 'nodejs20.x', Role: `arn:aws:iam::${ACCOUNT}:role/ct`, Handler: 'index.handler', Code: {} }));
    const out = await lambdaClient.send(new InvokeCommand({ FunctionName: 'ct-local', Payload: JSON.stringify({ name: 'team' }) }));
    expect(JSON.parse(Buffer.from(out.Payload!).toString())).toBe('hello team');
    await expect(lambdaClient.send(new CreateFunctionCommand({ FunctionName: 'ct-unmapped', Runtime: 'nodejs20.x', Role: 'r', Handler: 'index.handler', Code: {} })))
      .rejects.toMatchObject({ name: 'InvalidParameterValueException', message: expect.stringMatching(/plugins option/) });
  });

  test('deploy: another app\'s rules and functions run in the running engine; CloudFormation\'s CreateFunction is recorded', async () => {
    const team = new Stack(new App(), 'Team');
    const fn = inlineFunction(team, 'Listener', 'exports.handler = async (event) => { console.log("heard " + event.detail.what); };', { functionName: 'team-listener' });
    new events.Rule(team, 'Hear', { eventPattern: { source: ['team'] }, targets: [new targets.LambdaFunction(fn)] });
    const before = engine.cloudTrailEvents().length;
    const caughtBefore = caught().length;
    const deployed = await engine.deploy(team);
    expect(deployed.eventRules.map((r) => r.path)).toEqual(['Team/Hear']);
    expect(engine.cloudTrailEvents().slice(before).map((e) => [e.detail.eventName, (e.detail.userIdentity as any).invokedBy]))
      .toEqual([['CreateFunction20150331', 'cloudformation.amazonaws.com']]);
    await engine.idle();
    const client = new EventBridgeClient(outsideCallerConfig(engine));
    await client.send(new PutEventsCommand({ Entries: [{ Source: 'team', DetailType: 'said', Detail: '{"what":"hi"}' }] }));
    client.destroy();
    await engine.idle();
    expect(engine.logs('team-listener').join('\n')).toContain('heard hi');
    expect(caught().length).toBe(caughtBefore + 1); // the user's rule of the first app saw CreateFunction

    const withTable = new Stack(new App(), 'WithTable');
    new dynamodb.Table(withTable, 'Things', { partitionKey: { name: 'id', type: dynamodb.AttributeType.STRING } });
    await expect(engine.deploy(withTable)).rejects.toThrow(DeployNotSupportedError);
    await expect(engine.deploy(team)).rejects.toMatchObject({ name: 'ResourceConflictException' });
  });
});
