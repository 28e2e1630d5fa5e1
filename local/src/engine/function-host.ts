/**
 * Hosts Lambda functions locally. Each function gets its own pool of worker threads, each with the
 * function's own environment and module state (a warm "container"), reused between invocations;
 * concurrent invocations of one function use more workers, up to a cap. Counts invocations and
 * billed milliseconds (rounded up to 1 ms, as Lambda bills) per function.
 */
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, stat, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { LocalFunction } from './assembly';
import type {
  AssignMessage, EndpointAnswerMessage, EndpointCallMessage, InvokeMessage, LogMessage, ModuleResolutions, ModuleResolutionsMessage,
  ResultMessage, StartData, WorkerData,
} from './function-worker';
import { FunctionHostOptions, forEachLine, HandlerEntry, RunStart, Sandbox, SandboxHost, SandboxRequest } from './sandbox-host';
import { differsAtStart, Spares } from './spares';

export type { FunctionHostOptions, FunctionStats, HandlerEntry, InvokeResult } from './sandbox-host';

interface PoolWorker extends Sandbox { worker: Worker }

let workerSource: string | undefined;

/**
 * The worker script, read once per process (kept in TypeScript so it is linted and typed): as tsc
 * compiled it in the published package, transpiled with esbuild when the engine runs from source.
 */
function workerScript(): string {
  if (!workerSource) {
    const file = join(__dirname, 'function-worker.ts');
    if (existsSync(file)) {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const esbuild = require('esbuild') as typeof import('esbuild');
      workerSource = esbuild.transformSync(readFileSync(file, 'utf8'), { loader: 'ts', format: 'cjs', target: 'node20' }).code;
    } else {
      workerSource = readFileSync(join(__dirname, 'function-worker.js'), 'utf8');
    }
  }
  return workerSource;
}

/**
 * Module directories the Lambda runtime would provide, found from this package: the AWS SDK v3
 * (the runtime's) and Powertools for AWS Lambda (TypeScript) (the layer the orchestrator's handlers
 * use, of the version they were bundled with). The engine does not fetch layers.
 */
function runtimeModulePaths(): string[] {
  // Where this package's dependencies are installed does not change while it runs: found once.
  return foundRuntimeModulePaths ??= findRuntimeModulePaths();
}
let foundRuntimeModulePaths: string[] | undefined;

function findRuntimeModulePaths(): string[] {
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
  // randomUUID draws from a cached pool (randomBytes makes a system call each time).
  const hex = () => randomUUID().replace(/-/g, '');
  return `Root=1-${epochHex}-${hex().slice(0, 24)};Parent=${hex().slice(0, 16)};Sampled=0`;
}

/**
 * What a Node.js sandbox's thread is named on Linux (`top -H`, `ps -L`, /proc/<pid>/task/<tid>/comm;
 * at most 15 characters: the kernel cuts longer names without an error).
 */
export const SANDBOX_THREAD_NAME = 'lambda-sandbox';

let threadPoolStarted = false;

/**
 * Starts libuv's thread pool from this thread, once: a thread takes the name of the thread that
 * starts it, and libuv starts its pool on first use. Started by a sandbox (its first asynchronous file,
 * DNS or crypto call), the pool's threads would carry the sandbox's name.
 */
function startThreadPoolHere() {
  if (threadPoolStarted) return;
  threadPoolStarted = true;
  stat(__filename, () => undefined);
}

/**
 * A worker thread running the worker script, its heap limited to `heapMb`. It becomes a function's
 * sandbox when it is sent an AssignMessage: a spare (spares.ts) starts with an empty
 * environment; a worker started for a function, with the function's (Node.js reads some NODE_*
 * variables only when a worker starts).
 */
export function startWorker(heapMb: number, environment?: Record<string, string>): Worker {
  const options = {
    eval: true,
    workerData: { spare: environment === undefined, threadName: SANDBOX_THREAD_NAME } satisfies StartData,
    env: environment ?? {},
    stdout: true,
    stderr: true,
    resourceLimits: { maxOldGenerationSizeMb: heapMb },
  };
  startThreadPoolHere();
  sandboxOptions ??= { execArgv: withoutCodeLoadingOptions(process.execArgv) };
  const start = (execArgv?: string[]) => new Worker(workerScript(), { ...options, execArgv });
  try {
    return start(sandboxOptions.execArgv);
  } catch (e) {
    const accepted = sandboxOptions.execArgv && withoutRejectedOptions(sandboxOptions.execArgv, e);
    if (!accepted) throw e;
    const worker = start(accepted);
    sandboxOptions = { execArgv: accepted };
    return worker;
  }
}

/** The host's Node.js options for sandboxes, decided at the first start: `execArgv` undefined inherits them all. */
let sandboxOptions: { readonly execArgv?: string[] } | undefined;

/**
 * Node.js options that load code into every thread the process starts. A Lambda sandbox runs its
 * function's code with its function's NODE_OPTIONS only: the host's `node -r dotenv/config`, or the
 * TypeScript hooks of `tsx` or `node -r ts-node/register`, are not Lambda's. They would also cost each
 * cold start what loading them costs (ts-node: about 130 ms of CPU against a worker's 22 ms).
 */
const CODE_LOADING_OPTIONS = new Set(['-r', '--require', '--import', '--loader', '--experimental-loader']);

/**
 * The host's Node.js options without the ones that load code (`CODE_LOADING_OPTIONS` and their
 * values), or undefined when it has none: a worker then inherits the host's options, as by default.
 */
export function withoutCodeLoadingOptions(execArgv: readonly string[]): string[] | undefined {
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const [name, inlineValue] = execArgv[i].split(/=(.*)/s);
    if (!CODE_LOADING_OPTIONS.has(name)) kept.push(execArgv[i]);
    else if (inlineValue === undefined) i++; // its value is the next argument
  }
  return kept.length === execArgv.length ? undefined : kept;
}

/**
 * `execArgv` without the options a worker rejects when they are given to it (V8's and the
 * process's own, such as --max-old-space-size or --title: they apply to the whole process, workers
 * included, anyway), as `error` (ERR_WORKER_INVALID_EXEC_ARGV) names them, with a value given as
 * the next argument. Undefined for any other error, also one about the function's own NODE_OPTIONS
 * (same code, another message), and when it names none of them.
 */
export function withoutRejectedOptions(execArgv: readonly string[], error: unknown): string[] | undefined {
  if ((error as NodeJS.ErrnoException)?.code !== 'ERR_WORKER_INVALID_EXEC_ARGV') return undefined;
  const message = String((error as Error).message);
  const named = 'invalid execArgv flags: ';
  const at = message.indexOf(named);
  if (at < 0) return undefined;
  const rejected = new Set(message.slice(at + named.length).split(', '));
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    if (!rejected.has(execArgv[i])) kept.push(execArgv[i]);
    else if (!execArgv[i].includes('=') && execArgv[i + 1] !== undefined && !execArgv[i + 1].startsWith('-')) i++;
  }
  return kept.length < execArgv.length ? kept : undefined;
}

/** Worker threads started ahead of need, by heap size (`resourceLimits` is fixed when a worker starts). */
export type SpareWorkers = Spares<Worker, number>;

/** Spare workers: two per heap size (cold starts of a moment rarely come more than two at a time on 2 cores). */
export function spareWorkers(): SpareWorkers {
  return new Spares<Worker, number>({
    perKind: 2,
    start: (heapMb) => {
      const worker = startWorker(heapMb);
      worker.unref();
      return worker;
    },
    // Its error has no one else to go to.
    onGone: (worker, gone) => worker.once('exit', gone).on('error', () => undefined),
    end: (worker) => worker.terminate(),
    // A worker that has exited has no thread any more.
    alive: (worker) => worker.threadId >= 0,
  });
}

/**
 * The `require` resolutions an engine's Node.js sandboxes made, for its next ones (function-worker.ts,
 * reuseModuleResolutions): kept as long as the engine runs, as Node.js keeps its own per process.
 */
export class SharedModuleResolutions {
  private readonly byContext = new Map<string, Map<string, Record<string, string>>>();

  /** What a new sandbox is given: the resolutions made in the directories under `roots` (moduleDirectoriesOf). */
  public under(roots: readonly string[]): ModuleResolutions {
    const inside = (dir: string) => roots.some((root) => dir === root || dir.startsWith(root.endsWith(sep) ? root : root + sep));
    const given: ModuleResolutions = {};
    for (const [context, byDirectory] of this.byContext) {
      given[context] = Object.fromEntries([...byDirectory].filter(([dir]) => inside(dir)));
    }
    return given;
  }

  /** What a sandbox sent. */
  public add({ context, resolved }: ModuleResolutionsMessage['moduleResolutions']): void {
    let byDirectory = this.byContext.get(context);
    if (!byDirectory) this.byContext.set(context, byDirectory = new Map());
    for (const [dir, files] of Object.entries(resolved)) byDirectory.set(dir, { ...byDirectory.get(dir), ...files });
  }
}

/** The directory of a function's code: its asset directory, or the handler file's directory (inline, bundled or updated code). */
function codeRoot(fn: LocalFunction, entry: HandlerEntry): string {
  return fn.codeDir && entry.file.startsWith(fn.codeDir + sep) ? fn.codeDir : dirname(entry.file);
}

/**
 * Where a function's modules can come from: its code's directory, the `node_modules` of every
 * directory above it (an asset in a project's cdk.out finds the project's), and the runtime's.
 */
function moduleDirectoriesOf(codeDir: string): string[] {
  const directories = [codeDir, ...runtimeModulePaths()];
  for (let dir = codeDir; ; dir = dirname(dir)) {
    directories.push(join(dir, 'node_modules'));
    if (dirname(dir) === dir) return directories;
  }
}

export interface NodeFunctionHostOptions extends FunctionHostOptions {
  /** Workers started ahead of need: a cold start takes one when one is ready. */
  readonly spares?: SpareWorkers;
  /** The engine's module resolutions, shared by its sandboxes. */
  readonly moduleResolutions?: SharedModuleResolutions;
  /** Where sandboxes keep code caches (code-cache.ts), and what they do not cache: without both, no cache. */
  readonly codeCacheDir?: string;
  readonly temporaryDir?: string;
}

/**
 * Node.js reads some NODE_* variables (NODE_OPTIONS, NODE_DEBUG) when a worker starts, not later: a
 * function that sets any gets a worker started with its environment, not a spare (which has none).
 */
const NODE_READ_AT_START = ['NODE_'];

/** Node.js functions: each warm sandbox is a worker thread with the function's environment and module state. */
export class FunctionHost extends SandboxHost<PoolWorker> {
  /** Whether a cold start may take a spare (decided once: the environment is the host's). */
  private readonly takesSpare: boolean;

  /**
   * Where this function's modules can come from, for the engine's shared resolutions; undefined when
   * its sandboxes do not share them: its NODE_OPTIONS load code first (a preload may resolve modules
   * its own way), or there is no engine to share with.
   */
  private readonly moduleDirectories?: string[];

  constructor(protected readonly options: NodeFunctionHostOptions) {
    super(options);
    this.takesSpare = !differsAtStart(options.environment, {}, NODE_READ_AT_START);
    const nodeOptions = (options.environment.NODE_OPTIONS ?? '').split(/\s+/).filter(Boolean);
    const loadsCodeFirst = withoutCodeLoadingOptions(nodeOptions) !== undefined;
    if (options.moduleResolutions && !loadsCodeFirst) {
      this.moduleDirectories = moduleDirectoriesOf(codeRoot(options.fn, options.entry));
    }
  }

  protected start(): PoolWorker {
    const { endpoint, spares } = this.options;
    const data: WorkerData = {
      ...this.options.entry,
      fallbackModulePaths: runtimeModulePaths(),
      clockOffset: this.options.clockOffset,
      endpoint: endpoint?.url,
      codeCacheDir: this.options.codeCacheDir,
      temporaryDir: this.options.temporaryDir,
      moduleResolutions: this.moduleDirectories && this.options.moduleResolutions?.under(this.moduleDirectories),
    };
    const { environment } = this.options;
    // The function's memory size bounds the worker's heap, like the Lambda sandbox (at least 256 MB).
    const heapMb = Math.max(256, this.options.fn.memoryMb);
    const spare = this.takesSpare ? spares?.take(heapMb) : undefined;
    const worker = spare ?? startWorker(heapMb, environment);
    worker.postMessage({ assign: { data, environment } } satisfies AssignMessage);
    spares?.refill(heapMb);
    const slot: PoolWorker = { worker, busy: false };
    let partialLine = '';
    worker.on('message', (m: ResultMessage | LogMessage | EndpointCallMessage | ModuleResolutionsMessage) => {
      if ('endpointCall' in m) {
        if (endpoint) void answerEndpointCall(worker, endpoint, m.endpointCall, slot.runStart);
        return;
      }
      if ('moduleResolutions' in m) {
        this.options.moduleResolutions?.add(m.moduleResolutions);
        return;
      }
      if (m.log) {
        const lines = (partialLine + m.log).split('\n');
        partialLine = lines.pop() ?? '';
        for (const line of lines) this.options.onLog(this.name, line);
      }
      if ('id' in m) slot.pending?.(m);
    });
    worker.on('error', (e) => slot.pending?.(e));
    worker.on('exit', (code) => {
      slot.pending?.(new Error(`worker exited with code ${code}`));
      this.forget(slot);
    });
    // What the worker's own runtime writes (the function's output comes in its messages, above).
    for (const stream of [worker.stdout, worker.stderr]) forEachLine(stream, (line) => this.options.onLog(this.name, line));
    worker.unref();
    return slot;
  }

  protected send(slot: PoolWorker, request: SandboxRequest): void {
    const message: InvokeMessage = { ...request, traceHeader: unsampledTraceHeader() };
    slot.worker.postMessage(message);
  }

  protected async terminate(slot: PoolWorker): Promise<void> {
    await slot.worker.terminate();
  }

  protected logStreamOf(slot: PoolWorker): string {
    return String(slot.worker.threadId);
  }
}

/**
 * Runs a sandbox's SDK call through the endpoint and posts the answer back to it, with the headers
 * Node.js's HTTP server adds (`date` in real time: the SDK corrects its clock skew from it).
 */
async function answerEndpointCall(
  worker: Worker, endpoint: NonNullable<FunctionHostOptions['endpoint']>, call: EndpointCallMessage['endpointCall'], runStart: RunStart | undefined,
) {
  try {
    const body = typeof call.body === 'string' ? Buffer.from(call.body) : Buffer.from(call.body.buffer, call.body.byteOffset, call.body.byteLength);
    const answer = await endpoint.answer({ method: call.method, url: call.url, headers: call.headers, body, runStart });
    // A Buffer is often a slice of a shared pool: send its own bytes, not the pool.
    const answerBody = typeof answer.body === 'string' ? answer.body : new Uint8Array(answer.body);
    const headers = { 'date': new Date().toUTCString(), 'content-length': String(Buffer.byteLength(answer.body)), ...answer.headers };
    worker.postMessage({ endpointAnswer: { id: call.id, status: answer.status, headers, body: answerBody } } satisfies EndpointAnswerMessage);
  } catch (e) {
    // The endpoint answers every request, errors included; this is for a bug of its own, never a silent hang.
    const error = { __type: 'com.amazonaws.local#InternalFailure', message: String((e as Error)?.stack ?? e) };
    const headers = { 'content-type': 'application/x-amz-json-1.0' };
    worker.postMessage({ endpointAnswer: { id: call.id, status: 500, headers, body: JSON.stringify(error) } } satisfies EndpointAnswerMessage);
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
