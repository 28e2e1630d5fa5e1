/**
 * What one AWS SDK call from a Node.js sandbox costs, and where (`npx projen bench:call`; a script,
 * not a test): the per-hop figures issue 16 asks for, measured the same way each time.
 *
 * One function (the runtime's AWS SDK v3, a document client, as the orchestrator's handlers use it)
 * sends DynamoDB `UpdateItem` calls one at a time, in three ways, each in rounds:
 * - with a stub request handler inside the sandbox (the answer comes back at once): the SDK's own work;
 * - through the engine, as every handler's call goes: the sandbox, the engine's main thread, its
 *   other threads and DynamoDB Local each pay a share;
 * - the same request from a bare Node.js HTTP client straight to DynamoDB Local: what the database
 *   and an HTTP client cost without the engine.
 * Printed per call, the median of the rounds: CPU by thread (Linux /proc figures), and the engine's
 * hops (the sandbox's CPU beyond the SDK's own work, plus the engine's main and other threads).
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/sdk-call.ts
 *   options: --calls N (per round, default 2000), --rounds N (default 3), --small (the build's smoke run: 100 calls, 2 rounds)
 */
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { cpuPerRun, cpuSample, RunCpu } from './bench-speed';
import { LocalEngine } from '../local/src';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';

/** The probe: `{ mode: 'table' }` answers its table's name; `{ mode: 'stub' | 'engine', calls }` sends the calls. */
const PROBE = `
const { DynamoDBClient } = require('@aws-sdk/client-dynamodb');
const { DynamoDBDocumentClient, PutCommand, UpdateCommand } = require('@aws-sdk/lib-dynamodb');
const { marshall } = require('@aws-sdk/util-dynamodb');
const options = { marshallOptions: { removeUndefinedValues: true } };
const throughEngine = DynamoDBDocumentClient.from(new DynamoDBClient({}), options);
const answer = JSON.stringify({ Attributes: marshall({ uid: 'probe', n: 1 }) });
const stubHandler = {
  handle: async () => ({ response: { statusCode: 200, headers: { 'content-type': 'application/x-amz-json-1.0' }, body: Buffer.from(answer) } }),
  updateHttpClientConfig() {},
  httpHandlerConfigs() { return {}; },
};
const stubbed = DynamoDBDocumentClient.from(new DynamoDBClient({ requestHandler: stubHandler }), options);
exports.handler = async (event) => {
  const TableName = process.env.TABLE;
  if (event.mode === 'table') {
    await throughEngine.send(new PutCommand({ TableName, Item: { uid: 'probe', n: 0 } }));
    return { table: TableName };
  }
  const client = event.mode === 'stub' ? stubbed : throughEngine;
  for (let i = 0; i < event.calls; i++) {
    await client.send(new UpdateCommand({
      TableName, Key: { uid: 'probe' }, UpdateExpression: 'SET n = n + :one',
      ConditionExpression: 'attribute_exists(uid)', ExpressionAttributeValues: { ':one': 1 },
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

type Mode = 'stub' | 'engine';

async function probeCalls(engine: LocalEngine, probe: string, mode: Mode, calls: number, dynamodbPid?: number): Promise<RunCpu> {
  const before = cpuSample(engine, dynamodbPid);
  const result = await engine.invoke(probe, { mode, calls });
  if (!result.ok) throw new Error(`the probe failed (${mode}): ${JSON.stringify(result.error)}`);
  return cpuPerRun(engine, before, calls);
}

/** The same UpdateItem, one at a time, from this process straight to DynamoDB Local over HTTP. */
async function bareCalls(engine: LocalEngine, endpoint: string, table: string, calls: number, dynamodbPid?: number): Promise<RunCpu> {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true });
  const body = JSON.stringify({
    TableName: table,
    Key: { uid: { S: 'probe' } },
    UpdateExpression: 'SET n = n + :one',
    ConditionExpression: 'attribute_exists(uid)',
    ExpressionAttributeValues: { ':one': { N: '1' } },
  });
  const headers = {
    'content-type': 'application/x-amz-json-1.0',
    'content-length': Buffer.byteLength(body),
    'x-amz-target': 'DynamoDB_20120810.UpdateItem',
    // DynamoDB Local reads the key's id from it and checks no signature.
    'authorization': 'AWS4-HMAC-SHA256 Credential=AKIDLOCAL/20200101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0',
    'x-amz-date': '20200101T000000Z',
  };
  const send = () => new Promise<void>((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path: '/', agent, headers }, (res) => {
      res.resume();
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`DynamoDB Local answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
  try {
    const before = cpuSample(engine, dynamodbPid);
    for (let i = 0; i < calls; i++) await send();
    return cpuPerRun(engine, before, calls);
  } finally {
    agent.destroy();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** The median of each figure over the rounds, in µs per call. */
function perCallMicros(rounds: RunCpu[]): { sandbox: number; main: number; other: number; dynamodb: number } {
  const us = (pick: (r: RunCpu) => number) => median(rounds.map(pick)) * 1000;
  return {
    sandbox: us((r) => r.functionCode),
    main: us((r) => r.mainThread),
    other: us((r) => r.otherThreads),
    dynamodb: us((r) => r.dynamodbLocal),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      calls: { type: 'string', default: '2000' },
      rounds: { type: 'string', default: '3' },
      small: { type: 'boolean', default: false },
    },
  });
  const calls = values.small ? 100 : Number(values.calls);
  const rounds = values.small ? 2 : Number(values.rounds);
  const dynamoDb = await startDynamoDbLocal();
  const engine = new LocalEngine({ app: buildApp(), dynamodbEndpoint: dynamoDb.endpoint, logs: 'silent' });
  try {
    await engine.start();
    const probe = engine.assembly.functions.find((f) => f.path?.endsWith('/Probe'))!.name;
    const prepared = await engine.invoke(probe, { mode: 'table' });
    if (!prepared.ok) throw new Error(`the probe could not prepare its item: ${JSON.stringify(prepared.error)}`);
    const table = (JSON.parse(prepared.payload) as { table: string }).table;

    const measured: Record<Mode | 'bare', RunCpu[]> = { stub: [], engine: [], bare: [] };
    // A round of each, interleaved, so that the machine's drift touches all three alike.
    for (let round = 0; round <= rounds; round++) {
      const stub = await probeCalls(engine, probe, 'stub', calls, dynamoDb.pid);
      const through = await probeCalls(engine, probe, 'engine', calls, dynamoDb.pid);
      const bare = await bareCalls(engine, dynamoDb.endpoint, table, calls, dynamoDb.pid);
      if (round === 0) continue; // the first round warms every path's code
      measured.stub.push(stub);
      measured.engine.push(through);
      measured.bare.push(bare);
    }

    const stub = perCallMicros(measured.stub);
    const through = perCallMicros(measured.engine);
    const bare = perCallMicros(measured.bare);
    const us = (value: number) => `${value.toFixed(0)} µs`;
    const throughTotal = through.sandbox + through.main + through.other + through.dynamodb;
    const hops = through.sandbox - stub.sandbox + through.main + through.other;
    console.log(`One DynamoDB UpdateItem at a time from a Node.js sandbox (document client); ${calls} calls per round, median of ${rounds} rounds, CPU per call:`);
    console.log(`  the SDK's own work (a stub transport in the sandbox answers at once): sandbox ${us(stub.sandbox)}`);
    console.log(`  through the engine: sandbox ${us(through.sandbox)}, engine main thread ${us(through.main)}, other engine threads ${us(through.other)}, `
      + `DynamoDB Local ${us(through.dynamodb)} = ${us(throughTotal)}`);
    console.log(`  a bare Node.js HTTP client straight to DynamoDB Local: client ${us(bare.main)}, DynamoDB Local ${us(bare.dynamodb)} = ${us(bare.main + bare.dynamodb)}`);
    console.log(`  the engine's hops (the sandbox beyond the SDK's own work, the engine's main and other threads): ${us(hops)}, `
      + `${((100 * hops) / throughTotal).toFixed(0)}% of the call's CPU through the engine`);
  } finally {
    try {
      await engine.stop();
    } finally {
      await dynamoDb.stop();
    }
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
