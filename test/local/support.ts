/** Small helpers for the local engine's tests: an App per test file and inline Node.js handlers. */
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { EngineClock, LocalEngine, LocalEngineOptions } from '../../local/src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

export function newStack(id: string): Stack {
  return new Stack(new App(), id);
}

/** A Node.js function whose code is inline (`Code.ZipFile`), so tests need no asset directory. */
export function inlineFunction(scope: Construct, id: string, code: string, props: Partial<lambda.FunctionProps> = {}): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_20_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline(code),
    timeout: Duration.seconds(10),
    ...props,
  });
}

/**
 * Sets a variable in this process's environment (the engine's, never a function's) for the whole
 * test file, from before the hooks declared after this call.
 */
export function setForTestFile(name: string, value = 'yes') {
  beforeAll(() => {
    process.env[name] = value;
  });
  afterAll(() => {
    delete process.env[name];
  });
}

/** Invokes a function and returns its answer, parsed; a function error fails the test with it. */
export async function invokeForAnswer<T>(engine: LocalEngine, fn: string, event: unknown = {}): Promise<T> {
  const result = await engine.invoke(fn, event);
  if (!result.ok) throw new Error(JSON.stringify(result.error));
  return JSON.parse(result.payload) as T;
}

/** Waits until `check` returns a truthy value (polling), or fails after `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 15_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * The engine clock for tests: EventBridge schedules (the stuck-run sweep, a user's rate rules) fire
 * only when the test advances it, so counters and budgets never include a sweep nobody asked for.
 */
export function testClock(): EngineClock {
  return new EngineClock({ realTimeTimers: false });
}

/**
 * A started LocalEngine for an end-to-end test: the jest run's DynamoDB Local, Lambda's asynchronous
 * retries a moment apart instead of minutes, function logs only with LOCAL_ENGINE_LOGS=1, schedules
 * that fire only when the test advances the clock.
 */
export async function startTestEngine(app: Stack, options: Partial<LocalEngineOptions> = {}): Promise<LocalEngine> {
  const engine = new LocalEngine({
    app,
    dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
    asyncRetryDelaysMs: [100, 200],
    logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    clock: testClock(),
    ...options,
  });
  await engine.start();
  return engine;
}

/**
 * SDK client settings for a caller outside the app (an operator's CLI, another team's pipeline): an
 * administrator of the account, unless a principal is named (`engine.awsClientConfig`).
 */
export function outsideCallerConfig(engine: LocalEngine, principal?: string) {
  return engine.awsClientConfig(principal);
}

/** A function's structured log records (Powertools JSON lines) with this message, oldest first. */
export function loggedRecords(engine: LocalEngine, fn: string, message: string): Record<string, any>[] {
  return engine.logs(fn).flatMap((line) => {
    try {
      const record = JSON.parse(line);
      return record?.message === message ? [record] : [];
    } catch {
      return []; // not a structured line
    }
  });
}
