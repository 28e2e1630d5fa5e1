/**
 * DynamoDB Local's launch: the JVM options it runs with (tuned for short test sessions by default,
 * replaced by the option or the environment variable), telemetry off, and a database that answers;
 * an engine that launches its own stops it, when it stops and when its start fails.
 * The command line is read from /proc (Linux, where CI runs).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsCustomResource, AwsCustomResourcePolicy, PhysicalResourceId } from 'aws-cdk-lib/custom-resources';
import { LocalEngine, SHARED_DYNAMODB_ENDPOINT_ENV } from '../src';
import { DYNAMODB_LOCAL_JVM_OPTIONS, JVM_OPTIONS_ENV, startDynamoDbLocal } from '../src/dynamodb-local';
import { CLASS_ARCHIVE_ENV } from '../src/dynamodb-local-classes';
import { commandLine, listTables, setEnvironment, withEnvironment } from './support/dynamodb-local';
import { javaChildren } from './support/processes';

const onLinux = existsSync('/proc/self/cmdline') ? describe : describe.skip;

/** Runs `work` with the JVM options variable set to `value` (unset when undefined), then restores it. */
const withJvmOptionsEnv = (value: string | undefined, work: () => Promise<void>) => withEnvironment({ [JVM_OPTIONS_ENV]: value }, work);

// These tests are about the launch itself: no class archive (dynamodb-local-classes.test.ts has its
// own), and none of the project's cache touched.
let restore: () => void;
beforeAll(() => { restore = setEnvironment({ [CLASS_ARCHIVE_ENV]: 'off' }); });
afterAll(() => restore());

onLinux('startDynamoDbLocal', () => {
  // The defaults, whatever the developer's own environment sets.
  test('runs the client compiler, the serial collector and Log4j\'s simple logger without re-verifying AWS\'s jars, before -jar, with telemetry off; the database answers', () => withJvmOptionsEnv(undefined, async () => {
    const db = await startDynamoDbLocal();
    try {
      const args = commandLine(db.pid);
      const jar = args.indexOf('-jar');
      expect(jar).toBeGreaterThan(0);
      expect(args.slice(0, jar)).toEqual(expect.arrayContaining([...DYNAMODB_LOCAL_JVM_OPTIONS]));
      expect(args.slice(jar)).toEqual(expect.arrayContaining(['-inMemory', '-sharedDb', '-port', String(db.port), '-disableTelemetry']));
      const answer = await listTables(db.endpoint);
      expect(answer).toMatchObject({ status: 200, body: { TableNames: expect.any(Array) } });
    } finally {
      await db.stop();
    }
  }), 120_000);

  test(`${JVM_OPTIONS_ENV} replaces the default JVM options`, () => withJvmOptionsEnv(' -Xmx384m   -XX:+UseSerialGC ', async () => {
    const db = await startDynamoDbLocal();
    try {
      const args = commandLine(db.pid);
      expect(args.slice(0, args.indexOf('-jar'))).toEqual(expect.arrayContaining(['-Xmx384m', '-XX:+UseSerialGC']));
      expect(args).not.toContain('-XX:TieredStopAtLevel=1');
      expect((await listTables(db.endpoint)).status).toBe(200);
    } finally {
      await db.stop();
    }
  }), 120_000);

  // With the default JVM options (Log4j's simple logger among them), a failed start still says why.
  test('a port already taken fails the start with DynamoDB Local\'s own error', () => withJvmOptionsEnv(undefined, async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    try {
      await expect(startDynamoDbLocal({ port })).rejects.toThrow(new RegExp(`did not start on port ${port}: [\\s\\S]*BindException: Address already in use`));
    } finally {
      taken.close();
    }
  }), 120_000);

  test('an engine without a shared database launches its own before it loads the app, uses it, and stops it when the engine stops', async () => {
    const stack = new Stack(new App(), 'OwnDatabase');
    new dynamodb.Table(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    // In band, jest's own shared DynamoDB Local is a child of this process too.
    const others = javaChildren(process.pid);
    // Runs while the engine synthesizes the stack (loading the app): Java must be booting by then.
    let duringLoad: number[] = [];
    stack.node.addValidation({ validate: () => { duringLoad = javaChildren(process.pid).filter((pid) => !others.includes(pid)); return []; } });
    const engine = withoutSharedDatabase(() => new LocalEngine({ app: stack }));
    await engine.start();
    try {
      expect(duringLoad).toHaveLength(1);
      const launched = javaChildren(process.pid).filter((pid) => !others.includes(pid));
      expect(launched).toEqual(duringLoad);
      expect(commandLine(launched[0])).toEqual(expect.arrayContaining(['-jar', '-inMemory']));
      await engine.stop();
      expect(javaChildren(process.pid)).toEqual(others);
    } finally {
      await engine.stop();
    }
  }, 120_000);

  // The engine launches DynamoDB Local first and loads the app while it boots; a start that fails
  // meanwhile must not leave the Java process running until this process exits.
  test('an engine whose start fails after it launched DynamoDB Local stops it', async () => {
    const stack = new Stack(new App(), 'Unrunnable');
    const code = mkdtempSync(join(tmpdir(), 'ruby-'));
    writeFileSync(join(code, 'index.rb'), 'def handler(event:, context:) end');
    new lambda.Function(stack, 'RubyPlugin', { runtime: lambda.Runtime.RUBY_3_3, handler: 'index.handler', code: lambda.Code.fromAsset(code) });
    const others = javaChildren(process.pid);
    const engine = withoutSharedDatabase(() => new LocalEngine({ app: stack }));
    await expect(engine.start()).rejects.toThrow(/runs ruby3\.3, which the local engine does not run/);
    expect(javaChildren(process.pid)).toEqual(others);
  }, 120_000);

  test('an engine whose start fails once its database is up (a custom resource fails) stops everything it started', async () => {
    const stack = new Stack(new App(), 'FailingResource');
    new dynamodb.Table(stack, 'Table', { partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING } });
    new AwsCustomResource(stack, 'SeedMissingTable', {
      onCreate: {
        service: 'DynamoDB',
        action: 'putItem',
        physicalResourceId: PhysicalResourceId.of('seed'),
        parameters: { TableName: 'no-such-table', Item: { pk: { S: 'x' } } },
      },
      policy: AwsCustomResourcePolicy.fromSdkCalls({ resources: AwsCustomResourcePolicy.ANY_RESOURCE }),
    });
    const others = javaChildren(process.pid);
    const engine = withoutSharedDatabase(() => new LocalEngine({ app: stack }));
    await expect(engine.start()).rejects.toThrow(/Custom resource .*SeedMissingTable.* failed/);
    // Its own DynamoDB Local is stopped, and so is its endpoint.
    expect(javaChildren(process.pid)).toEqual(others);
    expect(() => engine.endpointUrl).toThrow('AWS endpoint not started');
    // Stopped: stop() has nothing left to do.
    await engine.stop();
  }, 120_000);
});

/** Runs `create` without the jest run's shared DynamoDB Local, so an engine made there launches its own. */
function withoutSharedDatabase<T>(create: () => T): T {
  const shared = process.env[SHARED_DYNAMODB_ENDPOINT_ENV];
  delete process.env[SHARED_DYNAMODB_ENDPOINT_ENV];
  try {
    return create();
  } finally {
    if (shared !== undefined) process.env[SHARED_DYNAMODB_ENDPOINT_ENV] = shared;
  }
}
