/**
 * Authorization on the local engine: with one grant the library makes removed from the synthesized
 * template, a run fails where it would fail on AWS, with AWS's message naming the principal, the
 * action and the resource. (With every grant in place runs complete: the other end-to-end tests run
 * with authorization enforced.)
 */
import { rmSync } from 'node:fs';
import { DeleteItemCommand, DynamoDBClient, PutItemCommand } from '@aws-sdk/client-dynamodb';
import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { LocalEngine } from '../src';
import {
  ACCOUNT, denial, editedApp, startEngine, STACK, synthesizeOrchestratorApp, withoutIdentityGrant, withoutResource,
  withoutResourcePolicyAllows, withTags,
} from './support/grants';

const REGION = 'us-east-1';
/** A function's role session, as Lambda names it: `assumed-role/<role>/<function name>`. */
const functionSession = (role: string, fn: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${STACK}-${role}*/${STACK}-${fn}*`;
const stateMachineSession = (role: string, machine: string) => `arn:aws:sts::${ACCOUNT}:assumed-role/${STACK}-${role}*/${machine}`;
const functionArn = (fn: string) => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${STACK}-${fn}*`;
const statusTable = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/*${STACK}-OrchStatusTable*`;
const pluginTable = `arn:aws:dynamodb:${REGION}:${ACCOUNT}:table/*${STACK}-OrchPluginTable*`;

let app: string;
const engines: LocalEngine[] = [];
const copies: string[] = [];

beforeAll(() => {
  app = synthesizeOrchestratorApp();
}, 120_000);

afterAll(async () => {
  // Deliveries and retries still in flight settle before their engine stops.
  await Promise.all(engines.map((e) => e.idle(15_000).catch(() => undefined).then(() => e.stop())));
  for (const dir of copies) rmSync(dir, { recursive: true, force: true });
});

async function engineWithout(...edits: Parameters<typeof editedApp>[1][]): Promise<LocalEngine> {
  const dir = editedApp(app, (template) => edits.forEach((edit) => edit(template)));
  copies.push(dir);
  const engine = await startEngine(dir);
  engines.push(engine);
  return engine;
}

/** Waits for a denial whose message matches `pattern`. */
async function denied(engine: LocalEngine, pattern: RegExp, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = engine.denials.find((d) => pattern.test(d.message));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no denial matches ${pattern}; denials: ${engine.denials.map((d) => d.message).join('\n') || '(none)'}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('function roles (identity policies)', () => {
  test('start-run without dynamodb:PutItem on the status table: the run fails with DynamoDB\'s AccessDeniedException, shown in the timeline and counted', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OrchHandlersStartRunRoleDefaultPolicy', 'dynamodb:PutItem'));
    const result = await engine.runWorkflow('onboard', { uid: 'no-put' }).result();
    const expected = denial(functionSession('OrchHandlersStartRunRole', 'OrchHandlersStartRun'), 'dynamodb:PutItem', statusTable);
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('AccessDeniedException');
    expect(JSON.parse(result.cause!).errorMessage).toMatch(expected);
    expect(engine.events.find((e) => e.kind === 'denied')?.message).toMatch(expected);
    expect(engine.counters().authorization?.denials).toBe(1);
  });

  test('status-summary without states:SendTask*: its callback is refused on the issuing state machine', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OrchHandlersStatusSummaryRoleDefaultPolicy', 'states:SendTaskSuccess'));
    engine.runWorkflow('onboard', { uid: 'no-send-task' });
    const found = await denied(engine, denial(functionSession('OrchHandlersStatusSummaryRole', 'OrchHandlersStatusSummary'),
      'states:SendTask*', `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:auth-Step1`));
    expect(found.service).toBe('states');
  });

  test('a plugin without lambda:InvokeFunction on plugin-outcome (its destination): the outcome is dropped', async () => {
    const engine = await engineWithout(withoutIdentityGrant('EnrichServiceRoleDefaultPolicy', 'lambda:InvokeFunction'));
    engine.runWorkflow('onboard', { uid: 'no-destination' });
    await denied(engine, denial(functionSession('EnrichServiceRole', 'Enrich'), 'lambda:InvokeFunction', functionArn('OrchHandlersPluginOutcome')));
    await engine.idle();
    const outcome = engine.assembly.functions.find((f) => f.logicalId.startsWith('OrchHandlersPluginOutcome'))!;
    expect(engine.counters().functions[outcome.name]?.invocations ?? 0).toBe(0);
  });

  test('sequential-stage invokes a pre plugin with its invoke permission, or by its orchestrator tag (aws:ResourceTag), and is refused with neither', async () => {
    const withoutPermission = withoutResource('AWS::Lambda::Permission', 'PreCheckOrchestratorInvokePermission');
    const tagged = await engineWithout(withoutPermission, withTags('AWS::Lambda::Function', 'PreCheck', { 'cdk-orchestrator:auth': 'plugin' }));
    expect((await tagged.runWorkflow('onboard', { uid: 'tagged' }).result()).status).toBe('SUCCEEDED');
    expect(tagged.denials).toEqual([]);
    const neither = await engineWithout(withoutPermission);
    const result = await neither.runWorkflow('onboard', { uid: 'untagged' }).result();
    const expected = denial(functionSession('OrchHandlersSequentialStageRole', 'OrchHandlersSequentialStage'), 'lambda:InvokeFunction', functionArn('PreCheck'));
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('PluginFailed');
    expect(neither.denials[0]).toMatchObject({ service: 'lambda', message: expect.stringMatching(expected) });
  });
});

describe('state machine roles (tasks)', () => {
  test('the activity state machine without lambda:InvokeFunction on its stage handlers: the task fails with Lambda.AWSLambdaException', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OrchStateMachineRoleDefaultPolicy', 'lambda:InvokeFunction'));
    const result = await engine.runWorkflow('onboard', { uid: 'no-invoke' }).result();
    expect(result.status).toBe('FAILED');
    expect(result.error).toBe('Lambda.AWSLambdaException');
    expect(result.cause).toMatch(denial(stateMachineSession('OrchStateMachineRole', 'auth-Step1'), 'lambda:InvokeFunction', functionArn('OrchHandlers')));
  });

  test('the workflow without states:StartExecution on its activity: the run fails', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OnboardRoleDefaultPolicy', 'states:StartExecution'));
    const result = await engine.runWorkflow('onboard', { uid: 'no-start' }).result();
    expect(result.status).toBe('FAILED');
    await denied(engine, denial(stateMachineSession('OnboardRole', `${STACK}-OnboardStateMachine*`), 'states:StartExecution',
      `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:auth-Step1`));
  });

  test('the workflow without events:PutTargets/PutRule/DescribeRule on Step Functions\' managed rule: .sync fails', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OnboardRoleDefaultPolicy', 'events:PutRule'));
    const result = await engine.runWorkflow('onboard', { uid: 'no-rule' }).result();
    expect(result.status).toBe('FAILED');
    await denied(engine, denial(stateMachineSession('OnboardRole', `${STACK}-OnboardStateMachine*`), 'events:PutTargets',
      `arn:aws:events:${REGION}:${ACCOUNT}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule`));
  });

});

describe('resource policies and service deliveries', () => {
  test('without the SNS invoke permission of a parallel plugin, SNS drops the delivery: the plugin never runs', async () => {
    const engine = await engineWithout(withoutResource('AWS::Lambda::Permission', 'EnrichPluginStep1asyncSnsInvokePermission'));
    engine.runWorkflow('onboard', { uid: 'no-sns-permission' });
    const found = await denied(engine, denial('sns.amazonaws.com', 'lambda:InvokeFunction', functionArn('Enrich'), 'resource'));
    expect(found.service).toBe('delivery');
    const enrich = engine.assembly.functions.find((f) => f.logicalId.startsWith('Enrich'))!;
    expect(engine.counters().functions[enrich.name]?.invocations ?? 0).toBe(0);
  });

  test('without the parallel topic\'s policy, parallel-stage cannot publish: SNS AuthorizationError', async () => {
    const engine = await engineWithout(withoutResourcePolicyAllows('AWS::SNS::TopicPolicy', 'OrchActivitiesStep1ParallelTopicPolicy'));
    engine.runWorkflow('onboard', { uid: 'no-topic-policy' });
    const found = await denied(engine, denial(functionSession('OrchHandlersParallelStageRole', 'OrchHandlersParallelStage'), 'SNS:Publish',
      `arn:aws:sns:${REGION}:${ACCOUNT}:auth-Step1-parallel`));
    expect(found.service).toBe('sns');
  });

  test('status-summary without read rights on the status table\'s stream: its event source mapping delivers nothing', async () => {
    const engine = await engineWithout(withoutIdentityGrant('OrchHandlersStatusSummaryRoleDefaultPolicy', 'dynamodb:GetRecords'));
    engine.runWorkflow('onboard', { uid: 'no-stream' });
    await denied(engine, denial(functionSession('OrchHandlersStatusSummaryRole', 'OrchHandlersStatusSummary'), 'dynamodb:GetRecords', `${statusTable}/stream/*`));
  });

  test('a registration custom resource whose provider role cannot write the plugin table fails at deployment', async () => {
    await expect(engineWithout(withoutIdentityGrant(/RegistrationCustomResourcePolicy/, 'dynamodb:PutItem'))).rejects.toThrow(
      denial('arn:aws:sts::*:assumed-role/*RegistrationProviderRole*/*', 'dynamodb:PutItem', pluginTable));
  });
});

describe('customer managed keys (implied KMS calls)', () => {
  const KMS_STACK = 'AuthKms';
  let encrypted: string;
  beforeAll(() => {
    encrypted = synthesizeOrchestratorApp(KMS_STACK, true);
  }, 120_000);

  test('with every grant a run over encrypted tables and topics completes; without start-run\'s kms:Decrypt its PutItem is refused', async () => {
    const complete = await startEngine(encrypted);
    engines.push(complete);
    expect((await complete.runWorkflow('onboard', { uid: 'kms-ok' }).result()).status).toBe('SUCCEEDED');
    expect(complete.denials).toEqual([]);
    const dir = editedApp(encrypted, withoutIdentityGrant('OrchHandlersStartRunRoleDefaultPolicy', 'kms:Decrypt'), KMS_STACK);
    copies.push(dir);
    const engine = await startEngine(dir);
    engines.push(engine);
    const result = await engine.runWorkflow('onboard', { uid: 'kms-denied' }).result();
    expect(result.status).toBe('FAILED');
    expect(JSON.parse(result.cause!).errorMessage).toMatch(denial(
      `arn:aws:sts::${ACCOUNT}:assumed-role/${KMS_STACK}-OrchHandlersStartRunRole*/${KMS_STACK}-OrchHandlersStartRun*`, 'kms:Decrypt',
      `arn:aws:kms:${REGION}:${ACCOUNT}:key/${KMS_STACK}-Key*`));
  });
});

describe('outside callers: engine.awsClientConfig(principal)', () => {
  let engine: LocalEngine;
  beforeAll(async () => {
    engine = await engineWithout();
  }, 60_000);

  test('as a function: what its role allows succeeds, the rest is AccessDeniedException naming the function\'s session', async () => {
    const startRun = engine.assembly.functions.find((f) => f.logicalId.startsWith('OrchHandlersStartRun'))!;
    const table = engine.assembly.tables.find((t) => t.path?.endsWith('StatusTable'))!.name;
    const client = new DynamoDBClient(engine.awsClientConfig(startRun.path));
    const key = { uid: { S: 'outside' }, workflow: { S: 'onboard' } };
    await client.send(new PutItemCommand({ TableName: table, Item: key }));
    const refused = client.send(new DeleteItemCommand({ TableName: table, Key: key }));
    await expect(refused).rejects.toMatchObject({ name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } });
    await expect(refused).rejects.toThrow(denial(functionSession('OrchHandlersStartRunRole', 'OrchHandlersStartRun'), 'dynamodb:DeleteItem', statusTable));
    client.destroy();
  });

  test('as a role of the app, SQS answers AccessDenied; as the default administrator, the call succeeds', async () => {
    const queue = engine.assembly.queues.find((q) => q.path?.includes('FailedEvents'))!;
    const asStartRun = new SQSClient(engine.awsClientConfig(`arn:aws:iam::${ACCOUNT}:role/${STACK}-OrchHandlersStartRunRoleAF0E7B4E`));
    await expect(asStartRun.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' }))).rejects.toMatchObject({ name: 'AccessDenied' });
    const asAdmin = new SQSClient(engine.awsClientConfig());
    await expect(asAdmin.send(new SendMessageCommand({ QueueUrl: queue.url, MessageBody: 'x' }))).resolves.toHaveProperty('MessageId');
    asStartRun.destroy();
    asAdmin.destroy();
  });

  test('with authorization off, a run without a grant passes (as it would not on AWS) and nothing is denied', async () => {
    const dir = editedApp(app, withoutIdentityGrant('OrchHandlersStartRunRoleDefaultPolicy', 'dynamodb:PutItem'));
    copies.push(dir);
    const off = await startEngine(dir, { authorization: 'off' });
    engines.push(off);
    expect(off.authorizationEnforced).toBe(false);
    expect((await off.runWorkflow('onboard', { uid: 'off' }).result()).status).toBe('SUCCEEDED');
    expect(off.denials).toEqual([]);
  });
});
