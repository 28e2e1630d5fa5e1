/**
 * Hosts Lambda functions locally. Each function gets its own pool of worker threads, each with the
 * function's own environment and module state (a warm "container"), reused between invocations;
 * concurrent invocations of one function use more workers, up to a cap. Counts invocations and
 * billed milliseconds (rounded up to 1 ms, as Lambda bills) per function.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LocalFunction } from './assembly';
import type { InvokeMessage, LambdaError, ResultMessage, WorkerData } from './function-worker';

export type InvokeResult =
  | { ok: true; payload: string; requestId: string; durationMs: number }
  | { ok: false; error: LambdaError; requestId: string; durationMs: number };

export interface FunctionStats {
  invocations: number;
  errors: number;
  billedMs: number;
  coldStarts: number;
  /**
   * Milliseconds of the invocations spent waiting on the clock (timers of 10 ms or more that fired
   * while they ran: sleeps, backoffs, registration windows): billed time that does no work.
   */
  timerWaitMs: number;
  readonly memoryMb: number;
}

/** Where a function's code is: a module file and the export to call. */
export interface HandlerEntry { readonly file: string; readonly exportName: string }

export interface FunctionHostOptions {
  readonly fn: LocalFunction;
  readonly entry: HandlerEntry;
  readonly environment: Record<string, string>;
  readonly maxWorkers: number;
  readonly onLog: (functionName: string, line: string) => void;
}

interface PoolWorker { worker: Worker; busy: boolean; pending?: (r: ResultMessage | Error) => void }

let workerSource: string | undefined;

/** The worker script, transpiled once per process (kept in TypeScript so it is linted and typed). */
function workerScript(): string {
  if (!workerSource) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const esbuild = require('esbuild') as typeof import('esbuild');
    const file = join(__dirname, 'function-worker.ts');
    const source = existsSync(file) ? readFileSync(file, 'utf8') : readFileSync(join(__dirname, 'function-worker.js'), 'utf8');
    workerSource = esbuild.transformSync(source, { loader: 'ts', format: 'cjs', target: 'node20' }).code;
  }
  return workerSource;
}

/**
 * Module directories the Lambda runtime would provide, found from this package: the AWS SDK v3
 * (the runtime's) and Powertools for AWS Lambda (TypeScript) (the layer the orchestrator's handlers
 * use, of the version they were bundled with). The engine does not fetch layers.
 */
function runtimeModulePaths(): string[] {
  const paths: string[] = [];
  try {
    const sdk = require.resolve('@aws-sdk/client-dynamodb/package.json');
    paths.push(resolvePath(dirname(sdk), '..', '..'));
  } catch {
    // no SDK installed next to the engine: handlers must bundle theirs
  }
  const powertools = nodeModulesOf('@aws-lambda-powertools/logger');
  if (powertools && !paths.includes(powertools)) paths.push(powertools);
  return paths;
}

/** The node_modules directory `packageName` is installed in, seen from here (undefined if it is not). */
function nodeModulesOf(packageName: string): string | undefined {
  try {
    const entry = require.resolve(packageName);
    const at = entry.lastIndexOf(`${sep}node_modules${sep}${packageName.split('/').join(sep)}${sep}`);
    return at >= 0 ? entry.slice(0, at + `${sep}node_modules`.length) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * An X-Ray trace header like the one Lambda gives each invocation (`_X_AMZN_TRACE_ID`), not
 * sampled: there is no X-Ray daemon locally, so tracers record nothing and send nothing, but they
 * (and the log lines' `xray_trace_id`) see a valid trace, as in Lambda.
 */
function unsampledTraceHeader(): string {
  const epochHex = Math.floor(Date.now() / 1000).toString(16).padStart(8, '0');
  return `Root=1-${epochHex}-${randomBytes(12).toString('hex')};Parent=${randomBytes(8).toString('hex')};Sampled=0`;
}

export class FunctionHost {
  public readonly stats: FunctionStats;
  private readonly workers: PoolWorker[] = [];
  private readonly queue: (() => void)[] = [];
  private nextId = 1;
  private stopped = false;

  constructor(private readonly options: FunctionHostOptions) {
    this.stats = { invocations: 0, errors: 0, billedMs: 0, coldStarts: 0, timerWaitMs: 0, memoryMb: options.fn.memoryMb };
  }

  public get name(): string {
    return this.options.fn.name;
  }

  /** One synchronous invocation (RequestResponse); asynchronous semantics are built on top of it. */
  public async invoke(event: unknown): Promise<InvokeResult> {
    if (this.stopped) throw new Error(`function ${this.name}: engine stopped`);
    const slot = await this.acquire();
    const requestId = randomUUID();
    const { fn } = this.options;
    const timeoutMs = fn.timeoutSeconds * 1000;
    const message: InvokeMessage = {
      id: this.nextId++,
      event,
      traceHeader: unsampledTraceHeader(),
      context: {
        awsRequestId: requestId,
        deadlineMs: Date.now() + timeoutMs,
        functionName: fn.name,
        functionVersion: '$LATEST',
        invokedFunctionArn: fn.arn,
        memoryLimitInMB: String(fn.memoryMb),
        logGroupName: `/aws/lambda/${fn.name}`,
        logStreamName: `local/${slot.worker.threadId}`,
      },
    };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await new Promise<ResultMessage | Error | 'timeout'>((resolve) => {
      slot.pending = resolve;
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      slot.worker.postMessage(message);
    });
    clearTimeout(timer);
    slot.pending = undefined;
    this.stats.invocations++;
    let result: InvokeResult;
    if (outcome === 'timeout') {
      // Lambda stops the sandbox on timeout; the next invocation gets a fresh one (cold start).
      this.discard(slot);
      result = {
        ok: false,
        requestId,
        durationMs: timeoutMs,
        error: { errorType: 'Sandbox.Timedout', errorMessage: `RequestId: ${requestId} Error: Task timed out after ${fn.timeoutSeconds.toFixed(2)} seconds`, trace: [] },
      };
    } else if (outcome instanceof Error) {
      this.discard(slot);
      result = { ok: false, requestId, durationMs: performance.now() - started, error: { errorType: 'Runtime.ExitError', errorMessage: outcome.message, trace: [] } };
    } else {
      this.release(slot);
      this.stats.timerWaitMs += outcome.timerWaitMs ?? 0;
      result = outcome.ok
        ? { ok: true, payload: outcome.payload, requestId, durationMs: outcome.durationMs }
        : { ok: false, error: outcome.error, requestId, durationMs: outcome.durationMs };
    }
    if (!result.ok) this.stats.errors++;
    this.stats.billedMs += Math.max(1, Math.ceil(result.durationMs));
    return result;
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.workers.splice(0).map((w) => w.worker.terminate()));
  }

  private async acquire(): Promise<PoolWorker> {
    for (;;) {
      const idle = this.workers.find((w) => !w.busy);
      if (idle) {
        idle.busy = true;
        return idle;
      }
      if (this.workers.length < this.options.maxWorkers) {
        const fresh = this.spawn();
        fresh.busy = true;
        return fresh;
      }
      await new Promise<void>((resolve) => this.queue.push(resolve));
    }
  }

  private release(slot: PoolWorker) {
    slot.busy = false;
    this.queue.shift()?.();
  }

  private discard(slot: PoolWorker) {
    const i = this.workers.indexOf(slot);
    if (i >= 0) this.workers.splice(i, 1);
    void slot.worker.terminate();
    this.queue.shift()?.();
  }

  private spawn(): PoolWorker {
    const data: WorkerData = { ...this.options.entry, fallbackModulePaths: runtimeModulePaths() };
    const worker = new Worker(workerScript(), {
      eval: true,
      workerData: data,
      env: this.options.environment,
      stdout: true,
      stderr: true,
      // The function's memory size bounds the worker's heap, like the Lambda sandbox (at least 128 MB).
      resourceLimits: { maxOldGenerationSizeMb: Math.max(256, this.options.fn.memoryMb) },
    });
    this.stats.coldStarts++;
    const slot: PoolWorker = { worker, busy: false };
    worker.on('message', (m: ResultMessage) => slot.pending?.(m));
    worker.on('error', (e) => slot.pending?.(e));
    worker.on('exit', (code) => {
      if (slot.pending) slot.pending(new Error(`worker exited with code ${code}`));
      const i = this.workers.indexOf(slot);
      if (i >= 0) this.workers.splice(i, 1);
    });
    for (const stream of [worker.stdout, worker.stderr]) {
      let buffered = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        buffered += chunk;
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) this.options.onLog(this.name, line);
      });
    }
    worker.unref();
    this.workers.push(slot);
    return slot;
  }
}

/** Finds the module file for a Lambda `Handler` string (`dir/file.export`) in a code directory. */
export function resolveHandlerEntry(codeDir: string, handler: string): HandlerEntry | undefined {
  const dot = handler.lastIndexOf('.');
  const modulePath = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  for (const ext of ['.js', '.cjs', '.mjs']) {
    const file = join(codeDir, modulePath + ext);
    if (existsSync(file)) return { file, exportName };
  }
  return undefined;
}

/** Writes inline code (`Code.ZipFile`) where a worker can load it. */
export function writeInlineCode(fn: LocalFunction, root: string): HandlerEntry {
  const dir = join(root, fn.name);
  mkdirSync(dir, { recursive: true });
  const dot = fn.handler.lastIndexOf('.');
  const file = join(dir, `${fn.handler.slice(0, dot)}.js`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, fn.inlineCode ?? '');
  return { file, exportName: fn.handler.slice(dot + 1) };
}

/**
 * Bundles a user's plugin module (`./plugins/rate.ts#handler`) with esbuild so TypeScript plugins
 * run without a loader; the AWS SDK stays external, as in Lambda.
 */
export function bundleModule(spec: string, baseDir: string, outRoot: string): HandlerEntry {
  const [modulePath, exportName = 'handler'] = spec.split('#');
  const source = resolvePath(baseDir, modulePath);
  if (!existsSync(source)) throw new Error(`plugin module not found: ${source}`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const outfile = join(mkdtempSync(join(outRoot, 'plugin-')), 'index.js');
  esbuild.buildSync({
    entryPoints: [source],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    external: ['@aws-sdk/*'],
    logLevel: 'error',
    sourcemap: 'inline',
  });
  return { file: outfile, exportName };
}

export function makeTempRoot(): string {
  return mkdtempSync(join(tmpdir(), 'cdk-orchestrator-local-'));
}
