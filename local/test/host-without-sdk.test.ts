/**
 * The engine's own DynamoDB calls (its tables, deploy-time plugin registrations, status documents,
 * Step Functions' DynamoDB tasks) are made without the AWS SDK's DynamoDB client: in the user's
 * process it cost about 75 ms of CPU per process (per test file under Jest) and printed the SDK's
 * Node.js end-of-support notice into their test output.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { LocalEngine } from '../src';
import { synthPluginApp } from './support/plugin-app';
import { runTypeScriptChild } from './support/processes';

const ROOT = join(__dirname, '..', '..');

/** What a user's script sees: the engine started, a run, its status document; then which DynamoDB SDK modules the process loaded. */
const USER_SCRIPT = `
const { LocalEngine } = require(process.argv[2]);
(async () => {
  const engine = new LocalEngine({ app: process.argv[3] });
  await engine.start();
  try {
    const result = await engine.runWorkflow('flow', { uid: 'u-1', metadata: {} }).result();
    await engine.idle();
    const doc = await engine.statusDocument('u-1', 'flow');
    // The DynamoDB client, and the Lambda client with its credential providers (step-functions-library.ts).
    const loaded = Object.keys(require.cache).filter((file) => /[\\\\/]@aws-sdk[\\\\/](client-dynamodb|lib-dynamodb|client-lambda|credential-providers)[\\\\/]/.test(file));
    process.stdout.write(JSON.stringify({ status: result.status, plugin: doc.activities.Step1.pre.mandatory.Plugin.state, loaded }) + '\\n');
  } finally {
    await engine.stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('the engine makes its own DynamoDB calls without the AWS SDK', () => {
  test('a user\'s process that starts an engine, runs a workflow and reads its status loads no DynamoDB SDK client, and prints no SDK notice', async () => {
    // One plugin registered at deploy time (a `Custom::AWS` DynamoDB putItem).
    const app = synthPluginApp('exports.handler = async () => ({});');
    const script = join(mkdtempSync(join(tmpdir(), 'no-sdk-script-')), 'user.js');
    writeFileSync(script, USER_SCRIPT);
    // The engine's TypeScript sources, as this repository's tests load them; Node.js's warnings on; a hung child is killed.
    const { code, stdout, stderr } = await runTypeScriptChild([script, join(ROOT, 'local', 'src', 'index.ts'), app], { NODE_NO_WARNINGS: '0' }, 100_000);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    // The plugin ran: its registration (the Custom::AWS putItem) reached the registry through the engine's endpoint.
    expect(JSON.parse(stdout.trim().split('\n').pop()!)).toEqual({ status: 'SUCCEEDED', plugin: 'Complete', loaded: [] });
    // The notice is printed on Node.js 20 only (by SDK releases of late 2026): the check above is the one that holds everywhere.
    expect(stderr).not.toMatch(/NodeVersionSupportWarning/);
  }, 120_000);

  /** A table, the state machine `name` built on it, and an engine running them for `check` (stopped after). */
  async function withMachine(
    name: string, build: (stack: Stack, table: dynamodb.Table) => sfn.IChainable, check: (engine: LocalEngine) => Promise<void>,
  ) {
    const stack = new Stack(new App(), name);
    const table = new dynamodb.Table(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    new sfn.StateMachine(stack, 'Machine', { stateMachineName: name, definitionBody: sfn.DefinitionBody.fromChainable(build(stack, table)) });
    const engine = new LocalEngine({ app: stack });
    await engine.start();
    try {
      await check(engine);
    } finally {
      await engine.stop();
    }
  }

  test('Step Functions\' DynamoDB tasks answer in DynamoDB\'s own shape, and fail with DynamoDB\'s error', async () => {
    await withMachine('PutThenGet', (stack, table) => new tasks.DynamoPutItem(stack, 'Put', {
      table,
      item: {
        pk: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.pk')),
        count: tasks.DynamoAttributeValue.fromNumber(3),
        // Binary is base64 in a state's JSON, on the way in and out.
        data: tasks.DynamoAttributeValue.fromBinary('aGk='),
      },
      // Fails when the item is there already.
      conditionExpression: 'attribute_not_exists(pk)',
      resultPath: sfn.JsonPath.DISCARD,
    }).next(new tasks.DynamoGetItem(stack, 'Get', {
      table,
      key: { pk: tasks.DynamoAttributeValue.fromString(sfn.JsonPath.stringAt('$.pk')) },
      consistentRead: true,
    })), async (engine) => {
      const first = await engine.startExecution('PutThenGet', { pk: 'a' }).result();
      expect(first.status).toBe('SUCCEEDED');
      // GetItem's answer as DynamoDB sends it (a number as a string, binary as base64), which is what Step Functions returns.
      expect(first.output).toEqual({ Item: { pk: { S: 'a' }, count: { N: '3' }, data: { B: 'aGk=' } } });
      const again = await engine.startExecution('PutThenGet', { pk: 'a' }).result();
      // The optimized integration's prefix is DynamoDB. (the AWS SDK integration's is DynamoDb.), as Step Functions documents.
      expect(again).toMatchObject({ status: 'FAILED', error: 'DynamoDB.ConditionalCheckFailedException', cause: expect.stringMatching(/conditional request failed/i) });
    });
  }, 120_000);

  test('an AWS SDK integration\'s DynamoDB error is prefixed DynamoDb., as Step Functions documents', async () => {
    await withMachine('SdkPut', (stack, table) => new tasks.CallAwsService(stack, 'Put', {
      service: 'dynamodb',
      action: 'putItem',
      parameters: { TableName: table.tableName, Item: { pk: { S: 'a' } }, ConditionExpression: 'attribute_not_exists(pk)' },
      iamResources: [table.tableArn],
    }), async (engine) => {
      expect((await engine.startExecution('SdkPut', {}).result()).status).toBe('SUCCEEDED');
      expect(await engine.startExecution('SdkPut', {}).result()).toMatchObject({ status: 'FAILED', error: 'DynamoDb.ConditionalCheckFailedException' });
    });
  }, 120_000);

  test('an attribute value of the wrong type is refused, as the SDK\'s client and AWS refuse it (DynamoDB Local takes some)', async () => {
    await withMachine('PutNumber', (stack, table) => new tasks.DynamoPutItem(stack, 'Put', {
      table,
      // A number taken from the input as it is: DynamoDB wants it as a string.
      item: { pk: tasks.DynamoAttributeValue.fromString('a'), count: tasks.DynamoAttributeValue.numberFromString(sfn.JsonPath.stringAt('$.count')) },
    }), async (engine) => {
      const result = await engine.startExecution('PutNumber', { count: 3 }).result();
      expect(result).toMatchObject({ status: 'FAILED', error: 'DynamoDB.ValidationException', cause: 'Item.count.N must be a string, not number' });
    });
  }, 120_000);

  /** A table and a Custom::AWS putItem of `item` into it (by default with binary given as text, as AwsCustomResource's handler reads it). */
  function seededApp(id = 'Seeded', item: Record<string, unknown> = { pk: { S: 'seeded' }, data: { B: 'hello' } }): Stack {
    const stack = new Stack(new App(), id);
    const table = new dynamodb.Table(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    new AwsCustomResource(stack, 'Seed', {
      onCreate: {
        service: 'DynamoDB',
        // aws-cdk-lib also takes the SDK v3 command's name.
        action: 'PutItemCommand',
        physicalResourceId: PhysicalResourceId.of('seed'),
        parameters: { TableName: table.tableName, Item: item },
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: [table.tableArn] }),
    });
    return stack;
  }

  test('a deploy-time registration is retried on throttling, as the SDK\'s client in AwsCustomResource\'s handler retries it; its binary is text', async () => {
    const engine = new LocalEngine({ app: seededApp() });
    const fault = engine.injectDynamoDbFault({ error: 'ProvisionedThroughputExceededException', times: 3, operation: 'PutItem' });
    // Three throttled attempts, then the fourth wrote the item (a failed custom resource fails the start).
    await engine.start();
    try {
      // What went to DynamoDB: the text's UTF-8 bytes, base64-encoded on the wire.
      const sent = { pk: { S: 'seeded' }, data: { B: Buffer.from('hello').toString('base64') } };
      expect(fault.failedRequests.map((r) => r.body.Item)).toEqual([sent, sent, sent]);
    } finally {
      await engine.stop();
    }
  }, 120_000);

  test('a registration throttled 4 times fails the start: the SDK\'s 4 attempts are used up', async () => {
    const engine = new LocalEngine({ app: seededApp() });
    const fault = engine.injectDynamoDbFault({ error: 'ProvisionedThroughputExceededException', times: 5, operation: 'PutItem' });
    await expect(engine.start()).rejects.toThrow(/^Custom resource Seeded\/Seed\w* \(DynamoDB\.PutItemCommand\) failed: The level of configured provisioned throughput .*\(injected by the local engine\)$/);
    expect(fault.failedRequests).toHaveLength(4);
  }, 120_000);

  test('a registration DynamoDB refuses fails the start at once: a client error is not retried', async () => {
    // A key attribute cannot be an empty string.
    const stack = seededApp('Refused', { pk: { S: '' } });
    const engine = new LocalEngine({ app: stack });
    // Counts the PutItem requests without failing any.
    let sent = 0;
    engine.injectDynamoDbFault({ error: 'ThrottlingException', times: 1, operation: 'PutItem', match: () => { sent++; return false; } });
    await expect(engine.start()).rejects.toThrow(/^Custom resource Refused\/Seed\w* \(DynamoDB\.PutItemCommand\) failed: .*empty string/);
    expect(sent).toBe(1);
  }, 120_000);
});
