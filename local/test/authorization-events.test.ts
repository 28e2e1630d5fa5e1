/**
 * Authorization where EventBridge, CloudTrail and Lambda's control plane meet it (issue 12): a
 * rule's Lambda target without the `lambda:InvokeFunction` permission for `events.amazonaws.com` is
 * not invoked, not retried, and its event reaches the target's dead-letter queue with AWS's
 * `NO_PERMISSIONS`; Lambda's CreateFunction is authorized as its caller (`lambda:CreateFunction`,
 * `iam:PassRole`), with AWS's message when refused; CloudTrail's `userIdentity` is the request's signer.
 * A log group encrypted with a key CloudWatch Logs may not use fails the start, as it fails a deployment.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { CreateFunctionCommand, LambdaClient, TagResourceCommand } from '@aws-sdk/client-lambda';
import * as events from 'aws-cdk-lib/aws-events';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { eventually, inlineFunction, newStack, startTestEngine } from '../../test/local/support';
import { zipPackage } from '../../test/support/zip';
import { LocalEngine } from '../src';

describe('authorization of EventBridge deliveries and Lambda control-plane calls', () => {
  let engine: LocalEngine;

  beforeAll(async () => {
    const stack = newStack('AuthEvents');
    // A raw rule: nothing adds the function permission EventBridge needs (targets.LambdaFunction would).
    const unreachable = inlineFunction(stack, 'NoPermission', 'exports.handler = async () => { console.log("invoked"); return {}; };', { functionName: 'no-permission' });
    const dlq = new sqs.Queue(stack, 'Undelivered');
    const rule = new events.CfnRule(stack, 'Raw', {
      eventPattern: { source: ['app'], detailType: ['raw'] },
      targets: [{ id: 'fn', arn: unreachable.functionArn, deadLetterConfig: { arn: dlq.queueArn }, retryPolicy: { maximumRetryAttempts: 2 } }],
    });
    dlq.addToResourcePolicy(new iam.PolicyStatement({
      principals: [new iam.ServicePrincipal('events.amazonaws.com')],
      actions: ['sqs:SendMessage'],
      resources: [dlq.queueArn],
      conditions: { ArnEquals: { 'aws:SourceArn': rule.attrArn } },
    }));
    // A function whose role grants nothing on Lambda's control plane, and a role that may tag it.
    const pipeline = inlineFunction(stack, 'Pipeline', 'exports.handler = async () => ({});', { functionName: 'team-pipeline' });
    const tagger = new iam.Role(stack, 'Tagger', { roleName: 'tagger', assumedBy: new iam.AccountRootPrincipal() });
    tagger.addToPolicy(new iam.PolicyStatement({ actions: ['lambda:TagResource'], resources: [pipeline.functionArn] }));
    engine = await startTestEngine(stack);
  }, 180_000);

  afterAll(() => engine?.stop());

  test('a Lambda target EventBridge may not invoke: not invoked, not retried, NO_PERMISSIONS in its dead-letter queue', async () => {
    expect(engine.authorizationEnforced).toBe(true);
    const before = engine.counters().events;
    const client = new EventBridgeClient(engine.awsClientConfig());
    await client.send(new PutEventsCommand({ Entries: [{ Source: 'app', DetailType: 'raw', Detail: '{"n":1}' }] }));
    const message = await eventually(() => engine.queueMessages('AuthEvents/Undelivered')[0]);
    await engine.idle();
    expect(message.attributes.ERROR_CODE.StringValue).toBe('NO_PERMISSIONS');
    expect(message.attributes.ERROR_MESSAGE.StringValue).toBe(
      'User: events.amazonaws.com is not authorized to perform: lambda:InvokeFunction '
      + 'on resource: arn:aws:lambda:us-east-1:123456789012:function:no-permission because no resource-based policy allows the lambda:InvokeFunction action',
    );
    expect(engine.logs('no-permission')).toEqual([]);
    const after = engine.counters().events;
    expect(after.failedAttempts - before.failedAttempts).toBe(0);
    expect(after.deadLettered - before.deadLettered).toBe(1);
    expect(engine.denials.map((d) => `${d.principal} ${d.action} ${d.resource}`)).toContain(
      'events.amazonaws.com lambda:InvokeFunction arn:aws:lambda:us-east-1:123456789012:function:no-permission',
    );
  });

  test('CreateFunction is authorized as its caller: refused to a role without lambda:CreateFunction, allowed to an administrator', async () => {
    const command = () => new CreateFunctionCommand({
      FunctionName: 'created-by-api',
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Role: 'arn:aws:iam::123456789012:role/plugin-role',
      Code: { ZipFile: zipPackage({ 'index.js': 'exports.handler = async () => ({});' }) },
    });
    const asPipeline = new LambdaClient(engine.awsClientConfig('team-pipeline'));
    await expect(asPipeline.send(command())).rejects.toMatchObject({
      name: 'AccessDeniedException',
      $metadata: { httpStatusCode: 403 },
      message: expect.stringMatching(/^User: arn:aws:sts::123456789012:assumed-role\/[^/]+\/team-pipeline is not authorized to perform: lambda:CreateFunction on resource: arn:aws:lambda:us-east-1:123456789012:function:created-by-api because no identity-based policy allows the lambda:CreateFunction action$/),
    });
    const asAdmin = new LambdaClient(engine.awsClientConfig());
    await expect(asAdmin.send(command())).resolves.toMatchObject({ FunctionName: 'created-by-api' });
  });

  test('CloudTrail names the signer of a management call: the role session, with its role as session issuer', async () => {
    const fnArn = 'arn:aws:lambda:us-east-1:123456789012:function:team-pipeline';
    const asTagger = new LambdaClient(engine.awsClientConfig('arn:aws:iam::123456789012:role/tagger'));
    await asTagger.send(new TagResourceCommand({ Resource: fnArn, Tags: { team: 'payments' } }));
    expect(engine.functionTags('team-pipeline')).toMatchObject({ team: 'payments' });
    const record = engine.cloudTrailEvents().filter((e) => (e.detail as any).eventName === 'TagResource20170331v2').pop()!;
    expect((record.detail as any).userIdentity).toMatchObject({
      type: 'AssumedRole',
      arn: 'arn:aws:sts::123456789012:assumed-role/tagger/local-test',
      sessionContext: { sessionIssuer: { type: 'Role', arn: 'arn:aws:iam::123456789012:role/tagger', userName: 'tagger' } },
    });
    // Tagging is not what the pipeline's role may do.
    const asPipeline = new LambdaClient(engine.awsClientConfig('team-pipeline'));
    await expect(asPipeline.send(new TagResourceCommand({ Resource: fnArn, Tags: { team: 'x' } }))).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });
});

describe('log groups encrypted with a customer managed key', () => {
  function appWithLogGroup(allowLogs: boolean) {
    const stack = newStack(allowLogs ? 'KeyForLogs' : 'KeyNotForLogs');
    const key = new kms.Key(stack, 'Key');
    const logGroupName = `/team/${stack.stackName}`;
    if (allowLogs) {
      key.addToResourcePolicy(new iam.PolicyStatement({
        principals: [new iam.ServicePrincipal('logs.us-east-1.amazonaws.com')],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': `arn:aws:logs:us-east-1:123456789012:log-group:${logGroupName}` } },
      }));
    }
    new logs.LogGroup(stack, 'Logs', { logGroupName, encryptionKey: key });
    return stack;
  }

  test('a key whose policy leaves CloudWatch Logs out fails the start with AWS\'s message', async () => {
    await expect(startTestEngine(appWithLogGroup(false))).rejects.toMatchObject({
      name: 'AccessDeniedException',
      message: expect.stringMatching(/^The specified KMS key does not exist or is not allowed to be used with Arn 'arn:aws:logs:us-east-1:123456789012:log-group:\/team\/KeyNotForLogs' \(User: logs\.us-east-1\.amazonaws\.com is not authorized to perform: kms:GenerateDataKey on resource: arn:aws:kms:/),
    });
  }, 60_000);

  test('a key policy that lets CloudWatch Logs use the key for that log group starts', async () => {
    const engine = await startTestEngine(appWithLogGroup(true));
    try {
      expect(engine.denials).toEqual([]);
    } finally {
      await engine.stop();
    }
  }, 60_000);
});
