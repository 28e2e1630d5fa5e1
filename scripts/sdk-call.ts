/**
 * What one AWS SDK call from a Node.js sandbox costs, and where (`npx projen bench:call`; a script,
 * not a test): the per-hop figures issue 16 asks for, measured the same way each time.
 *
 * One function (the runtime's AWS SDK v3, a DynamoDB client that caches its resolved middleware and
 * values marshalled by util-dynamodb, as the orchestrator's handlers use it: lambda/shared/documents.ts;
 * with `--client document`, lib-dynamodb's document client, which resolves the middleware on every
 * call) sends DynamoDB `UpdateItem` calls one at a time; the same request is also sent without the engine.
 * Three ways, in rounds (their order turns each round; a first round warms every path, unmeasured):
 * - stub: a request handler inside the sandbox answers at once, as DynamoDB would (`{}`): the SDK's
 *   own work, in the sandbox and in the process's shared V8 threads (GC, compilers);
 * - engine: through the engine, as every handler's call goes;
 * - bare: a bare Node.js HTTP client in this process straight to DynamoDB Local: what the database
 *   and an HTTP client cost without the engine (this process's main thread is then the client).
 * Printed per call, the median over the rounds: CPU by thread (Linux /proc figures), and what the
 * engine adds to the process beyond the SDK's own work ("the engine's hops"), in all and beyond what
 * a bare HTTP client costs. Each round checks that its calls took their route (engine counters).
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/sdk-call.ts
 *   options: --calls N (per round, default 2000), --rounds N (default 3), --small (the build's smoke run: 100 calls, 3 rounds),
 *            --client handlers|document (the SDK client the function calls with, default handlers)
 */
import { parseArgs } from 'node:util';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { bareDynamoDbClient, cpuPerRun, cpuSample, engineProcessMs, median, positiveInteger, RunCpu } from './bench-speed';
import { LocalEngine } from '../local/src';
import type { EngineCounters } from '../local/src';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';

/**
 * The probe: `{ mode: 'table' }` writes its item and answers its table's name; `{ mode: 'stub' | 'engine', calls, client }`
 * sends the calls with the client `client` names (CLIENTS).
 */
const PROBE = `
const { DynamoDBClient, PutItemCommand, UpdateItemCommand } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, UpdateCommand } = require('@aws-sdk/lib-dynamodb');
const { marshall } = require('@aws-sdk/util-dynamodb');
const config = { cacheMiddleware: true };
const throughEngine = new DynamoDBClient(config);
// Answers as DynamoDB answers an UpdateItem without ReturnValues, with the headers the engine sends.
const stubHandler = {
  handle: async () => ({ response: { statusCode: 200, body: Buffer.from('{}'), headers: {
    'content-type': 'application/x-amz-json-1.0', 'content-length': '2', 'date': new Date().toUTCString(), 'x-amzn-requestid': 'stub',
  } } }),
  updateHttpClientConfig() {},
  httpHandlerConfigs() { return {}; },
};
const stubbed = new DynamoDBClient({ ...config, requestHandler: stubHandler });
const values = (document) => marshall(document, { removeUndefinedValues: true });
const documentOptions = { marshallOptions: { removeUndefinedValues: true } };
const documentClients = {
  engine: DynamoDBDocumentClient.from(new DynamoDBClient({}), documentOptions),
  stub: DynamoDBDocumentClient.from(new DynamoDBClient({ requestHandler: stubHandler }), documentOptions),
};
exports.handler = async (event) => {
  const TableName = process.env.TABLE;
  if (event.mode === 'table') {
    await throughEngine.send(new PutItemCommand({ TableName, Item: values({ uid: 'probe', n: 0 }) }));
    return { table: TableName };
  }
  if (event.client === 'document') {
    for (let i = 0; i < event.calls; i++) {
      await documentClients[event.mode].send(new UpdateCommand({
        TableName, Key: { uid: 'probe' }, UpdateExpression: 'SET n = n + :one',
        ConditionExpression: 'attribute_exists(uid)', ExpressionAttributeValues: { ':one': 1 },
      }));
    }
    return {};
  }
  const client = event.mode === 'stub' ? stubbed : throughEngine;
  for (let i = 0; i < event.calls; i++) {
    await client.send(new UpdateItemCommand({
      TableName, Key: values({ uid: 'probe' }), UpdateExpression: 'SET n = n + :one',
      ConditionExpression: 'attribute_exists(uid)', ExpressionAttributeValues: values({ ':one': 1 }),
    }));
  }
  return {};
};`;

function buildApp(): Stack {
  const stack = new Stack(new App(), 'SdkCall');
  const table = new dynamodb.Table(stack, 'Table', { partitionKey: { name: 'uid', type: dynamodb.AttributeType.STRING } });
  const probe = new lambda.Function(stack, 'Probe', {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline(PROBE),
    memorySize: 1024,
    timeout: Duration.minutes(5),
    environment: { TABLE: table.tableName },
  });
  table.grantReadWriteData(probe);
  return stack;
}

type Way = 'stub' | 'engine' | 'bare';

/** The SDK clients the probe can call with, as `--client` names them. */
const CLIENTS = {
  handlers: 'the handlers\' client: middleware cached, util-dynamodb values',
  document: 'lib-dynamodb\'s document client: middleware resolved per call',
} as const;
type ClientName = keyof typeof CLIENTS;

interface Context {
  readonly engine: LocalEngine;
  readonly probe: string;
  readonly table: string;
  readonly endpoint: string;
  readonly dynamodbPid?: number;
  readonly client: ClientName;
}

/** `calls` calls one way, per call; throws when a call did not take its way. */
async function round(ctx: Context, way: Way, calls: number): Promise<RunCpu> {
  const { engine } = ctx;
  const counted = (c: EngineCounters) => ({ messagePort: c.endpointCalls.messagePort, http: c.endpointCalls.http, writes: c.dynamodb.writes });
  const countersBefore = engine.counters();
  const before = counted(countersBefore);
  const cpuBefore = cpuSample(countersBefore, ctx.dynamodbPid);
  if (way === 'bare') {
    const client = bareDynamoDbClient(ctx.endpoint, 1);
    const body = JSON.stringify({
      TableName: ctx.table,
      Key: { uid: { S: 'probe' } },
      UpdateExpression: 'SET n = n + :one',
      ConditionExpression: 'attribute_exists(uid)',
      ExpressionAttributeValues: { ':one': { N: '1' } },
    });
    try {
      for (let i = 0; i < calls; i++) {
        const status = await client.send('UpdateItem', body);
        if (status !== 200) throw new Error(`DynamoDB Local answered the bare UpdateItem with ${status}`);
      }
    } finally {
      client.close();
    }
  } else {
    const result = await engine.invoke(ctx.probe, { mode: way, calls, client: ctx.client });
    if (!result.ok) throw new Error(`the probe failed (${way}): ${JSON.stringify(result.error)}`);
  }
  const countersAfter = engine.counters();
  const cpu = cpuPerRun(countersAfter, cpuBefore, calls);
  const after = counted(countersAfter);
  const expected = way === 'engine' ? { messagePort: calls, http: 0, writes: calls } : { messagePort: 0, http: 0, writes: 0 };
  const seen = { messagePort: after.messagePort - before.messagePort, http: after.http - before.http, writes: after.writes - before.writes };
  if (JSON.stringify(seen) !== JSON.stringify(expected) || (way === 'bare' && cpu.functionCode !== 0)) {
    throw new Error(`the ${way} calls did not take their way: engine counters ${JSON.stringify(seen)}, expected ${JSON.stringify(expected)}`);
  }
  return cpu;
}

/** What one round's three ways give, µs per call. */
interface RoundFigures {
  readonly sdk: number;
  readonly sdkShared: number;
  readonly sandbox: number;
  readonly main: number;
  readonly other: number;
  readonly dynamodb: number;
  readonly bareClient: number;
  readonly bareDynamodb: number;
  /** What the engine adds to the process beyond the SDK's own work. */
  readonly hops: number;
}

function figuresOf(stub: RunCpu, through: RunCpu, bare: RunCpu): RoundFigures {
  const us = (ms: number) => ms * 1000;
  const sdkProcess = engineProcessMs(stub);
  const engineProcess = engineProcessMs(through);
  return {
    sdk: us(stub.functionCode),
    sdkShared: us(stub.mainThread + stub.otherThreads),
    sandbox: us(through.functionCode),
    main: us(through.mainThread),
    other: us(through.otherThreads),
    dynamodb: us(through.dynamodbLocal),
    bareClient: us(bare.mainThread + bare.otherThreads),
    bareDynamodb: us(bare.dynamodbLocal),
    hops: us(engineProcess - sdkProcess),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
      small: { type: 'boolean', default: false },
      client: { type: 'string', default: 'handlers' },
    },
  });
  if (!Object.hasOwn(CLIENTS, values.client!)) throw new Error(`--client must be one of ${Object.keys(CLIENTS).join(', ')}, not ${JSON.stringify(values.client)}`);
  const client = values.client as ClientName;
  if (process.platform !== 'linux') {
    // The smoke run (`npx projen test`) goes on elsewhere, as the bench and the load do without /proc.
    if (values.small) return void console.log('bench:call skipped: it reads each thread\'s CPU from /proc (Linux only)');
    throw new Error('bench:call reads each thread\'s CPU from /proc: it runs on Linux only');
  }
  const calls = values.small ? 100 : positiveInteger('calls', values.calls!);
  const rounds = values.small ? 3 : positiveInteger('rounds', values.rounds!);
  const app = buildApp();
  const dynamoDb = await startDynamoDbLocal();
  let engine: LocalEngine | undefined;
  try {
    engine = new LocalEngine({ app, dynamodbEndpoint: dynamoDb.endpoint, logs: 'silent' });
    await engine.start();
    const probe = engine.assembly.functions.find((f) => f.path?.endsWith('/Probe'))!.name;
    const prepared = await engine.invoke(probe, { mode: 'table' });
    if (!prepared.ok) throw new Error(`the probe could not write its item: ${JSON.stringify(prepared.error)}`);
    const table = (JSON.parse(prepared.payload) as { table: string }).table;
    const ctx: Context = { engine, probe, table, endpoint: dynamoDb.endpoint, dynamodbPid: dynamoDb.pid, client };

    const measured: RoundFigures[] = [];
    const ways: Way[] = ['stub', 'engine', 'bare'];
    for (let r = 0; r <= rounds; r++) {
      const cpu: Partial<Record<Way, RunCpu>> = {};
      // The order turns each round, so that no way always follows the same one.
      for (let i = 0; i < ways.length; i++) {
        const way = ways[(r + i) % ways.length];
        cpu[way] = await round(ctx, way, calls);
      }
      if (r > 0) measured.push(figuresOf(cpu.stub!, cpu.engine!, cpu.bare!)); // round 0 warms every path
    }

    const at = (key: keyof RoundFigures) => median(measured.map((f) => f[key]));
    const us = (key: keyof RoundFigures) => `${at(key).toFixed(0)} µs`;
    const engineTotal = at('sandbox') + at('main') + at('other') + at('dynamodb');
    console.log(`One DynamoDB UpdateItem at a time from a Node.js sandbox (${CLIENTS[client]}), ${calls} calls per round, median of ${rounds} rounds`
      + `${values.small ? ' (smoke size, not representative: DynamoDB Local\'s CPU counts in 10 ms ticks)' : ''}; authorization `
      + `${engine.authorizationEnforced ? 'enforced' : 'off'}; CPU per call:`);
    console.log(`  the SDK's own work (a stub transport in the sandbox answers at once): sandbox ${us('sdk')}, `
      + `the process's other threads (V8's GC and compilers) ${us('sdkShared')}`);
    console.log(`  through the engine: sandbox ${us('sandbox')}, engine main thread ${us('main')}, other threads ${us('other')}, `
      + `DynamoDB Local ${us('dynamodb')} = ${engineTotal.toFixed(0)} µs`);
    console.log(`  a bare Node.js HTTP client straight to DynamoDB Local: client ${us('bareClient')} (all its threads), DynamoDB Local ${us('bareDynamodb')}`);
    console.log(`  the engine's hops (the process's CPU through the engine minus the SDK's own work): ${us('hops')}, `
      + `${((100 * at('hops')) / engineTotal).toFixed(0)}% of the call's CPU; beyond a bare HTTP client's ${us('bareClient')}: `
      + `${(at('hops') - at('bareClient')).toFixed(0)} µs; DynamoDB Local through the engine minus from the bare client: `
      + `${(at('dynamodb') - at('bareDynamodb')).toFixed(0)} µs`);
  } finally {
    try {
      await engine?.stop();
    } finally {
      await dynamoDb.stop();
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
