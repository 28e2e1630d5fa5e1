/**
 * Runs inside one worker thread: the local equivalent of a warm Lambda container. It loads one
 * function's handler module once (module state persists between invocations, as in Lambda) and
 * runs invocations one at a time. Its `process.env` is the function's own environment.
 *
 * The worker is started with `eval: true` on this file's code (as tsc compiled it in the published
 * package, transpiled by esbuild when the engine runs from source), so it must only import Node
 * built-ins (and types, which both drop).
 */
import { createHash, randomUUID } from 'node:crypto';
import { openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { STATUS_CODES } from 'node:http';
import Module, { isBuiltin } from 'node:module';
import { dirname, isAbsolute, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { constants as vmConstants, Script } from 'node:vm';
import { parentPort, workerData } from 'node:worker_threads';
import type { EndpointHeaders } from './aws-endpoint';

export interface WorkerData {
  /** Absolute path of the module file to load. */
  readonly file: string;
  /** Name of the exported handler. */
  readonly exportName: string;
  /** Extra module directories searched last (the Lambda runtime provides the AWS SDK). */
  readonly fallbackModulePaths: string[];
  /** The engine clock's offset from real time (ms, element 0 of shared memory): see shiftDate. */
  readonly clockOffset?: Float64Array;
  /** The engine's AWS endpoint (`http://127.0.0.1:<port>`): the SDK's calls to it take the message port. */
  readonly endpoint?: string;
  /** The directory of V8 code caches of CommonJS modules (code-cache.ts); none: no cache. */
  readonly codeCacheDir?: string;
  /** The system's temporary directory: modules there are not cached (code-cache.ts). */
  readonly temporaryDir?: string;
  /**
   * What this engine's other sandboxes resolved module names to (see reuseModuleResolutions).
   * Undefined: this sandbox neither uses nor shares resolutions (FunctionHost decides).
   */
  readonly moduleResolutions?: ModuleResolutions;
}

/**
 * `require` resolutions an engine's sandboxes made: by the resolution context they were made in (see
 * resolutionContext), then by the requiring module's directory, then by the request: the file.
 */
export type ModuleResolutions = Record<string, Record<string, Record<string, string>>>;

/** Resolutions a sandbox made that it was not given: sent once its init is done and after each answer. */
export interface ModuleResolutionsMessage {
  readonly moduleResolutions: { readonly context: string; readonly resolved: Record<string, Record<string, string>> };
}

/**
 * A worker's first message: the function it becomes a sandbox of, and that function's environment.
 * A spare (started ahead of need, with an empty environment) is sent one when a cold start takes it;
 * a worker started for a function (with its environment) at once.
 */
export interface AssignMessage {
  readonly assign: { readonly data: WorkerData; readonly environment: Record<string, string> };
}

/** A worker's `workerData`. */
export interface StartData {
  /** Whether it was started as a spare (for tests and diagnostics; the worker does not read it). */
  readonly spare: boolean;
  /** The name this thread gives itself (see nameThisThread). */
  readonly threadName: string;
}

export interface InvokeMessage {
  readonly id: number;
  readonly event: unknown;
  /** The invocation's X-Ray trace header: `_X_AMZN_TRACE_ID` while it runs, as in Lambda. */
  readonly traceHeader?: string;
  readonly context: {
    readonly awsRequestId: string;
    readonly deadlineMs: number;
    readonly functionName: string;
    readonly functionVersion: string;
    readonly invokedFunctionArn: string;
    readonly memoryLimitInMB: string;
    readonly logGroupName: string;
    readonly logStreamName: string;
  };
}

export interface LambdaError { errorType: string; errorMessage: string; trace: string[] }

/**
 * `timerWaitMs`: how long the invocation waited on the clock — timers of at least 10 ms that fired
 * while it ran (sleeps, retry backoffs, registration windows), overlapping waits counted once.
 */
export type ResultMessage =
  | { id: number; ok: true; payload: string; durationMs: number; timerWaitMs?: number; cpuMs?: number; log?: string }
  | { id: number; ok: false; error: LambdaError; durationMs: number; timerWaitMs?: number; cpuMs?: number; log?: string };

/** Output the function wrote (stdout and stderr) outside an answer: at start, or after an invocation ended. */
export interface LogMessage { readonly log: string }

/** An AWS SDK call to the engine's endpoint, sent over the message port (see routeSdkCallsToEndpoint). */
export interface EndpointCallMessage {
  readonly endpointCall: { id: number; method: string; url: string; headers: Record<string, string>; body: string | Uint8Array };
}

/** The endpoint's answer to an EndpointCallMessage. */
export interface EndpointAnswerMessage {
  readonly endpointAnswer: { id: number; status: number; headers: EndpointHeaders; body: string | Uint8Array };
}

const port = parentPort!;
/** The function this worker is a sandbox of: given at its start, or (a spare) in its first message. */
let data: WorkerData;
/** Before instrumentTimers replaces it: the log flush timer is the worker's own, not the function's. */
const engineSetTimeout = globalThis.setTimeout;

/**
 * What the function writes to stdout and stderr reaches the engine with the invocation's answer (one
 * message, not one per write: each message wakes the engine's thread), or LOG_FLUSH_MS after it was
 * written, whichever comes first (long invocations, output outside one, a sandbox about to time out).
 */
let logBuffer = '';
let logTimer: ReturnType<typeof setTimeout> | undefined;
const LOG_FLUSH_MS = 20;

function takeLog(): string | undefined {
  if (logTimer) clearTimeout(logTimer);
  logTimer = undefined;
  const log = logBuffer;
  logBuffer = '';
  return log || undefined;
}

function flushLog() {
  const log = takeLog();
  if (log) port.postMessage({ log } satisfies LogMessage);
}

function captureOutput() {
  for (const stream of [process.stdout, process.stderr]) {
    stream.write = ((chunk: string | Uint8Array, encoding?: unknown, callback?: unknown) => {
      logBuffer += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString(typeof encoding === 'string' ? encoding as BufferEncoding : 'utf8');
      if (!logTimer) {
        logTimer = engineSetTimeout(flushLog, LOG_FLUSH_MS);
        logTimer.unref?.();
      }
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
  }
  process.on('exit', flushLog);
}

function addFallbackModulePaths(paths: string[]) {
  // Module._initPaths reads NODE_PATH; set it only for that call so handlers never see it.
  const previous = process.env.NODE_PATH;
  process.env.NODE_PATH = paths.join(process.platform === 'win32' ? ';' : ':');
  (Module as any)._initPaths();
  if (previous === undefined) delete process.env.NODE_PATH;
  else process.env.NODE_PATH = previous;
}

function toLambdaError(error: unknown): LambdaError {
  if (error instanceof Error) {
    return { errorType: error.name || 'Error', errorMessage: error.message, trace: (error.stack ?? '').split('\n') };
  }
  return { errorType: 'Error', errorMessage: typeof error === 'string' ? error : JSON.stringify(error), trace: [] };
}

/**
 * ES modules ignore NODE_PATH, so an ES module handler's bare `import '@aws-sdk/client-s3'` found
 * nothing in the runtime's module directories, where Lambda's Node.js runtimes let it import the SDK.
 * A resolve hook looks there when ordinary resolution finds nothing. Registered only for ES module
 * handlers: Node.js runs module hooks on a thread of their own.
 */
function resolveBareImportsFromRuntimeModules(paths: string[]) {
  const register = (Module as any).register as ((specifier: string, options: object) => void) | undefined;
  if (typeof register !== 'function' || paths.length === 0) return;
  const hooks = `let parents = [];
export async function initialize(data) { parents = data.parents; }
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context);
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' || /^([./]|[a-z][a-z0-9+.-]*:)/i.test(specifier)) throw error;
    for (const parentURL of parents) {
      try { return await next(specifier, { ...context, parentURL }); } catch {}
    }
    throw error;
  }
}`;
  // A parent inside each directory: bare specifiers resolve from `<dir>/<name>`, as from a file there.
  const parents = paths.map((dir) => pathToFileURL(join(dir, 'runtime-module-parent.js')).href);
  register(`data:text/javascript,${encodeURIComponent(hooks)}`, { data: { parents } });
}

function importEsm(file: string): Promise<any> {
  resolveBareImportsFromRuntimeModules(data.fallbackModulePaths);
  // A real `import()`: the published package runs this file as tsc compiled it to CommonJS, and tsc
  // turns a written `import(x)` into `require(x)`, which cannot load an ES module. (Built here, not at
  // load, so CommonJS handlers run even where code generation from strings is disallowed.)
  // eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
  const importModule = new Function('specifier', 'return import(specifier)') as (specifier: string) => Promise<any>;
  return importModule(pathToFileURL(file).href);
}

async function loadHandler(): Promise<(...args: any[]) => any> {
  const file = isAbsolute(data.file) ? data.file : join(process.cwd(), data.file);
  let mod: any;
  try {
    try {
      // Handlers are CommonJS bundles (or .mjs); require keeps their module cache per worker.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      mod = file.endsWith('.mjs') ? await importEsm(file) : require(file);
    } catch (e) {
      if ((e as any)?.code !== 'ERR_REQUIRE_ESM') throw e;
      mod = await importEsm(file);
    }
  } catch (e) {
    const err = toLambdaError(e);
    throw Object.assign(new Error(`Error: ${err.errorMessage}`), { name: 'Runtime.ImportModuleError' });
  }
  const handler = mod?.[data.exportName] ?? mod?.default?.[data.exportName];
  if (typeof handler !== 'function') {
    throw Object.assign(new Error(`${file} does not export a function named "${data.exportName}"`), { name: 'Runtime.HandlerNotFound' });
  }
  return handler;
}

/** Shorter timers are deferrals (`setTimeout(fn, 0)` and the like), not waiting. */
const MIN_COUNTED_TIMER_MS = 10;
/** Start of the running invocation, and the clock waits seen during it ([from, to] in ms). */
let invocationStart: number | undefined;
let clockWaits: [number, number][] = [];

function countClockWait(setAt: number, delay: unknown) {
  if (invocationStart !== undefined && Number(delay) >= MIN_COUNTED_TIMER_MS) clockWaits.push([Math.max(setAt, invocationStart), performance.now()]);
}

/** Wraps the global setTimeout and `timers/promises` setTimeout so fired timers are counted. */
function instrumentTimers() {
  const original = globalThis.setTimeout;
  const wrapped = function setTimeout(callback: unknown, delay?: number, ...args: unknown[]) {
    const setAt = performance.now();
    if (typeof callback !== 'function') return original(callback as any, delay, ...args);
    return original(function (this: unknown, ...callArgs: unknown[]) {
      countClockWait(setAt, delay);
      return (callback as (...a: unknown[]) => unknown).apply(this, callArgs);
    }, delay, ...args);
  };
  // Keeps `util.promisify(setTimeout)` and other properties working.
  Object.defineProperties(wrapped, Object.getOwnPropertyDescriptors(original));
  globalThis.setTimeout = wrapped as typeof globalThis.setTimeout;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const promises = require('node:timers/promises') as typeof import('node:timers/promises');
  const sleep = promises.setTimeout;
  try {
    (promises as { setTimeout: unknown }).setTimeout = async (delay?: number, ...rest: unknown[]) => {
      const setAt = performance.now();
      const value = await (sleep as (...a: unknown[]) => Promise<unknown>)(delay, ...rest);
      countClockWait(setAt, delay);
      return value;
    };
  } catch {
    // read-only in some Node versions: such sleeps go uncounted
  }
}

/** Total length of the clock waits, overlapping ones counted once. */
function clockWaitMs(): number {
  let total = 0;
  let end = -Infinity;
  for (const [from, to] of [...clockWaits].sort((a, b) => a[0] - b[0])) {
    if (to <= end) continue;
    total += to - Math.max(from, end);
    end = to;
  }
  return total;
}

/**
 * This thread's kernel CPU figure (/proc/thread-self/schedstat: time on a core, not waiting for one),
 * opened once by this thread and re-read in place: a pread costs a tenth of an open, read and close.
 * Undefined where /proc is missing (not Linux). Node closes the descriptor when the worker ends, also
 * when the host terminates it (checked: 20 terminated workers leave the process's descriptors as they were).
 */
const schedstat = (() => {
  try {
    return { fd: openSync('/proc/thread-self/schedstat', 'r'), buffer: Buffer.alloc(128) };
  } catch {
    return undefined;
  }
})();

/**
 * Names this thread (Linux: a thread may write its own /proc comm, 15 characters at most), so that
 * `top -H`, `ps -L` and the bench (the CPU of sandboxes outside their invocations) tell sandboxes from
 * the engine's other threads. Elsewhere the thread keeps the process's name.
 */
function nameThisThread(name: string) {
  try {
    writeFileSync('/proc/thread-self/comm', name);
  } catch {
    // not Linux
  }
}

const startData = workerData as StartData | undefined;
if (startData?.threadName) nameThisThread(startData.threadName);

/** This thread's CPU time in ms, or undefined where /proc is missing. */
function threadCpuMs(): number | undefined {
  if (!schedstat) return undefined;
  try {
    const length = readSync(schedstat.fd, schedstat.buffer, 0, schedstat.buffer.length, 0);
    return Number(schedstat.buffer.toString('latin1', 0, length).split(' ', 1)[0]) / 1e6;
  } catch {
    return undefined;
  }
}

/** Real time, for the invocation's deadline (Lambda's timeout is real time, not the engine clock's). */
const realNow = Date.now.bind(Date);

/**
 * `Date` follows the engine clock (engine.clock.advance moves it for the handler code too): `new Date()`
 * and `Date.now()` add the shared offset, which the engine changes without restarting the worker.
 */
function shiftDate(offset: Float64Array) {
  const RealDate = Date;
  const now = () => RealDate.now() + offset[0];
  // A function rather than a Proxy (every `Date.now` read went through its trap, a measurable share
  // of the handlers' CPU) or a subclass: `Date()` called without `new` keeps working (a string, as in Node).
  function ShiftedDate(this: unknown, ...args: unknown[]): unknown {
    if (!new.target) return new RealDate(now()).toString();
    return Reflect.construct(RealDate, args.length ? args : [now()], new.target);
  }
  Object.setPrototypeOf(ShiftedDate, RealDate); // Date.parse, Date.UTC, ...
  ShiftedDate.prototype = RealDate.prototype; // instanceof Date, and subclasses of it
  ShiftedDate.now = now;
  Object.defineProperty(ShiftedDate, 'name', { value: 'Date' });
  globalThis.Date = ShiftedDate as unknown as DateConstructor;
}

const utf8 = new TextEncoder();
/** SDK calls waiting for the endpoint's answer, by id. */
const endpointCalls = new Map<number, (answer: EndpointAnswerMessage['endpointAnswer']) => void>();
let nextEndpointCallId = 1;

/** The query string as the SDK's HTTP handler builds it (keys sorted, RFC 3986 escaping). */
function queryStringOf(query: Record<string, string | string[] | null | undefined> | undefined): string {
  const escape = (text: string) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  const parts: string[] = [];
  for (const key of Object.keys(query ?? {}).sort()) {
    const value = query![key];
    if (Array.isArray(value)) for (const item of value) parts.push(`${escape(key)}=${escape(item)}`);
    else parts.push(value || typeof value === 'string' ? `${escape(key)}=${escape(value)}` : escape(key));
  }
  return parts.join('&');
}

/** The error an aborted call rejects with, as the SDK's HTTP handler makes it: the signal's reason is its cause. */
function abortError(signal: { reason?: unknown }): Error {
  const reason = signal.reason;
  const error = new Error(reason instanceof Error || reason === undefined ? 'Request aborted' : String(reason));
  error.name = 'AbortError';
  if (reason instanceof Error) (error as Error & { cause?: unknown }).cause = reason;
  return error;
}

/**
 * The timeouts the SDK's HTTP handler applies while it waits for an answer (its connection timeout
 * has nothing to wait for here): `socketTimeoutMs` (the client's, else the service's default) fails the
 * call; `requestTimeoutMs` fails it when `throwOnRequestTimeout` is set and is otherwise logged.
 */
interface CallTimeouts {
  readonly socketTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly throwOnRequestTimeout?: boolean;
  readonly logger?: { warn?: (message: string) => void };
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** Sends one SDK request (a smithy HttpRequest) to the engine's endpoint and returns the SDK's HttpResponse shape. */
function callEndpoint(request: any, signal: any, timeouts: CallTimeouts): Promise<{ response: unknown }> {
  if (signal?.aborted) return Promise.reject(abortError(signal));
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = String(value);
  const query = queryStringOf(request.query);
  const id = nextEndpointCallId++;
  return new Promise((resolve, reject) => {
    const timers: ReturnType<typeof setTimeout>[] = [];
    const settle = () => {
      endpointCalls.delete(id);
      for (const timer of timers) clearTimeout(timer);
      if (typeof signal?.removeEventListener === 'function') signal.removeEventListener('abort', onAbort);
      else if (signal) signal.onabort = null;
    };
    const fail = (error: Error) => {
      settle();
      reject(error);
    };
    const onAbort = () => fail(abortError(signal));
    if (typeof signal?.addEventListener === 'function') signal.addEventListener('abort', onAbort, { once: true });
    else if (signal) signal.onabort = onAbort; // the SDK's own AbortSignal of older releases
    const { socketTimeoutMs, requestTimeoutMs } = timeouts;
    if (socketTimeoutMs && socketTimeoutMs > 0) {
      timers.push(engineSetTimeout(() => fail(timeoutError(`no answer within the ${socketTimeoutMs} ms socket timeout`)), socketTimeoutMs));
    }
    if (requestTimeoutMs && requestTimeoutMs > 0) {
      timers.push(engineSetTimeout(() => {
        const message = `a request has exceeded the configured ${requestTimeoutMs} ms requestTimeout`;
        if (timeouts.throwOnRequestTimeout) fail(timeoutError(message));
        else timeouts.logger?.warn?.(`${message} (throwOnRequestTimeout=true makes this an error)`);
      }, requestTimeoutMs));
    }
    endpointCalls.set(id, (answer) => {
      settle();
      const responseHeaders: Record<string, string> = {};
      for (const [name, value] of Object.entries(answer.headers)) if (value !== undefined) responseHeaders[name] = Array.isArray(value) ? value.join(',') : value;
      // Bytes of their own, as the SDK's HTTP handler gives them (a small Buffer is a slice of a shared pool).
      const body = typeof answer.body === 'string' ? utf8.encode(answer.body) : answer.body;
      resolve({ response: { statusCode: answer.status, reason: STATUS_CODES[answer.status], headers: responseHeaders, body } });
    });
    // A Buffer is often a slice of a shared pool: send its own bytes, not the pool.
    const body = request.body instanceof Uint8Array ? new Uint8Array(request.body) : request.body ?? '';
    const call: EndpointCallMessage = { endpointCall: { id, method: request.method, url: query ? `${request.path}?${query}` : request.path, headers, body } };
    port.postMessage(call);
  });
}

/**
 * The AWS SDK's calls to the engine's endpoint go over this worker's message port instead of HTTP.
 * Each client still does all of its own work (serializing, signing, retries, parsing the answer,
 * abort signals, timeouts), and the endpoint answers what it answers over HTTP; what is skipped is an
 * HTTP client here and an HTTP server in the engine for each call, about a millisecond of CPU per
 * call on each side. It patches every copy of `@smithy/node-http-handler` that is `require`d (the
 * runtime's SDK, also when an ES module imports it); code that bundles its own HTTP handler, and calls
 * with a streamed body, still use HTTP.
 */
function routeSdkCallsToEndpoint(endpoint: string) {
  const { hostname, port: endpointPort, protocol } = new URL(endpoint);
  const patched = new WeakSet<object>();
  const patch = (handlerClass: any) => {
    const prototype = handlerClass?.prototype;
    if (!prototype || typeof prototype.handle !== 'function' || patched.has(prototype)) return;
    patched.add(prototype);
    const handleOverHttp = prototype.handle;
    prototype.handle = async function handle(this: any, request: any, options?: { abortSignal?: unknown; requestTimeout?: number }) {
      const body = request?.body;
      const sendable = body === undefined || body === null || typeof body === 'string' || body instanceof Uint8Array;
      if (!sendable || request.protocol !== protocol || request.hostname !== hostname || String(request.port ?? '') !== endpointPort) {
        return handleOverHttp.call(this, request, options);
      }
      // The handler's resolved options, as its own handle reads them.
      if (!this.config) this.config = await this.configProvider;
      const config = this.config ?? {};
      return callEndpoint(request, options?.abortSignal, {
        socketTimeoutMs: config.socketTimeout ?? config.defaultSocketTimeout,
        requestTimeoutMs: options?.requestTimeout ?? config.requestTimeout,
        throwOnRequestTimeout: config.throwOnRequestTimeout,
        logger: config.logger,
      });
    };
  };
  const load = (Module as any)._load;
  (Module as any)._load = function _load(this: unknown, request: unknown, ...rest: unknown[]) {
    const exports = load.call(this, request, ...rest);
    if (typeof request === 'string' && request.includes('node-http-handler')) patch(exports?.NodeHttpHandler);
    return exports;
  };
}

/** Modules compiled here without a usable code cache, by their cache file: written after the invocation that ran them. */
const compiledWithoutCache = new Map<string, Script>();

/**
 * A module compiled from a code cache loses its dynamic `import()` (Node.js 20 then throws
 * ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING), so a module that may use one is compiled by Node.js (a
 * comment between `import` and its parenthesis counts too). The AWS SDK's and Powertools' CommonJS
 * modules have none.
 */
const DYNAMIC_IMPORT = /\bimport\s*(\(|\/[*/])/;

/** Resolutions this sandbox made that it was not given, by directory, until they are sent (sendNewResolutions). */
const newResolutions = new Map<string, Record<string, string>>();
/** The context the resolutions were made in; undefined: none are shared (resolutionContext). */
let resolutionContext: string | undefined;

/**
 * Every sandbox resolves the same `require`s of the AWS SDK and the handlers' other modules (about
 * 150-180 per orchestrator handler, each a series of file lookups and package.json reads). Node.js
 * resolves a request from the requiring module's directory and lookup paths, the module search path,
 * the registered extensions and its options (conditions, symbolic links). The engine keeps what its
 * sandboxes resolved, by that context and directory, and gives each new sandbox those of the
 * directories its modules can come from (FunctionHost); each sandbox sends back what it resolved.
 * Node.js's own resolution answers, and nothing is kept, whenever any of that is not as the sandbox
 * started: a module whose lookup paths were changed (`module.paths`), a search path set again
 * (`Module._initPaths`), an extension registered, one of Node.js's lookup steps replaced (a module
 * alias tool), a module without a file name. A sandbox given none (its NODE_OPTIONS load code first)
 * neither uses nor shares any. A resolution that fails is not kept. Files are taken not to move while
 * an engine runs.
 */
function reuseModuleResolutions(given: ModuleResolutions | undefined) {
  if (!given) return;
  const loader = Module as unknown as Record<string, any> & { globalPaths: string[]; _extensions: object };
  const nodeOptions = process.env.NODE_OPTIONS ?? '';
  const steps = ['_findPath', '_nodeModulePaths', '_resolveLookupPaths', '_initPaths'].map((name) => [name, loader[name]] as const);
  const searchPath = loader.globalPaths;
  const extensions = Object.keys(loader._extensions).join('\0');
  resolutionContext = JSON.stringify([searchPath, extensions, process.execArgv, nodeOptions]);
  const known = given[resolutionContext] ?? {};
  const defaultLookupPaths = new Map<string, string[]>();
  /** Whether Node.js would resolve this request the way the sandbox's other modules' are. */
  const asAtStart = (request: string, parent: NodeModule): boolean => {
    if (request === '__proto__' || isBuiltin(request) || !parent.filename || parent.path !== dirname(parent.filename)) return false;
    if (loader.globalPaths !== searchPath || Object.keys(loader._extensions).join('\0') !== extensions) return false;
    if (steps.some(([name, step]) => loader[name] !== step)) return false;
    if (request.startsWith('./') || request.startsWith('../') || request.startsWith('/')) return true;
    let lookupPaths = defaultLookupPaths.get(parent.path);
    if (!lookupPaths) defaultLookupPaths.set(parent.path, lookupPaths = loader._nodeModulePaths(parent.path) as string[]);
    return parent.paths.length === lookupPaths.length && parent.paths.every((path, i) => path === lookupPaths![i]);
  };
  const resolveByNode = loader._resolveFilename;
  loader._resolveFilename = function _resolveFilename(
    this: unknown, request: unknown, parent: NodeModule | undefined, isMain: boolean, options: unknown,
  ) {
    if (isMain || options !== undefined || typeof request !== 'string' || !parent || !asAtStart(request, parent)) {
      return resolveByNode.call(this, request, parent, isMain, options);
    }
    const inDirectory = known[parent.path];
    if (inDirectory && Object.hasOwn(inDirectory, request)) return inDirectory[request];
    const file = resolveByNode.call(this, request, parent, isMain, options) as string;
    (known[parent.path] ??= {})[request] = file;
    let made = newResolutions.get(parent.path);
    if (!made) newResolutions.set(parent.path, made = {});
    made[request] = file;
    return file;
  };
}

/** Sends the engine the resolutions this sandbox made since the last time. */
function sendNewResolutions() {
  if (!newResolutions.size || resolutionContext === undefined) return;
  const message: ModuleResolutionsMessage = { moduleResolutions: { context: resolutionContext, resolved: Object.fromEntries(newResolutions) } };
  newResolutions.clear();
  port.postMessage(message);
}

/**
 * Compiles the sandbox's CommonJS modules with the code caches in `dir` (code-cache.ts), and notes
 * those it compiled without one. Node.js's own `_compile` cannot take a cache, so this one does what
 * it does for a CommonJS module: the same wrapper, `this` and `require`, the wrapper opening on a
 * line of its own so that stack traces keep the file's lines and columns. Node's own compile still
 * takes what this does not handle: ES module syntax (its detection and errors), a syntax error (its
 * message), a hashbang line, a module with a dynamic `import()`, modules in the system's temporary
 * directory (code written for one engine: inline code, bundled plugins, an app synthesized there),
 * and every module while source maps or coverage are on (Node maps the stacks of, and covers, the
 * modules it compiled itself).
 */
function compileWithCodeCache(dir: string, temporaryDir: string) {
  // Node.js turns coverage on when a worker starts (from its environment then), not later.
  if (process.env.NODE_V8_COVERAGE) return;
  const prototype = Module.prototype as unknown as { _compile: (content: unknown, filename: string, format?: string) => unknown };
  const compileByNode = prototype._compile;
  prototype._compile = function _compile(this: NodeModule, content: unknown, filename: string, format?: string) {
    const byNode = () => compileByNode.call(this, content, filename, format);
    // Source maps can be turned on at run time (process.setSourceMapsEnabled): checked per module.
    if (typeof content !== 'string' || format === 'module' || content.startsWith('#!') || DYNAMIC_IMPORT.test(content)
      || filename.startsWith(temporaryDir) || (process as { sourceMapsEnabled?: boolean }).sourceMapsEnabled) {
      return byNode();
    }
    // By file and source: V8 itself only checks that the source has the same length, and a script
    // compiled from a cache keeps the file name of the script that made it (in its stack traces).
    const file = join(dir, createHash('sha1').update(filename).update('\0').update(content).digest('hex'));
    const cachedData = readIfPresent(file);
    let script: Script;
    try {
      script = new Script(`(function (exports, require, module, __filename, __dirname) {\n${content}\n})`, {
        filename, lineOffset: -1, cachedData, importModuleDynamically: vmConstants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
      });
    } catch {
      return byNode();
    }
    // A cache V8 refuses is replaced.
    if (!cachedData || script.cachedDataRejected) compiledWithoutCache.set(file, script);
    const wrapper = script.runInThisContext();
    return wrapper.call(this.exports, this.exports, makeRequire(this), this, filename, dirname(filename));
  };
}

function readIfPresent(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

/** The `require` Node.js gives a CommonJS module. */
function makeRequire(module: NodeModule) {
  const loader = Module as unknown as Record<string, any>;
  const require: any = (id: string) => module.require(id);
  // Looked up at each call, as Node.js does: a module alias tool registered after this module was compiled applies.
  const resolve: any = (request: string, options?: unknown) => loader._resolveFilename(request, module, false, options);
  resolve.paths = (request: string) => loader._resolveLookupPaths(request, module);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = loader._extensions;
  require.cache = loader._cache;
  return require as NodeJS.Require;
}

/**
 * Writes the code caches of the modules compiled without one, once they have run (so the functions
 * that ran are in them). Whole files only, readable and writable by this user alone: written aside
 * under a name of their own, then renamed (sandboxes of other processes may write the same one). A
 * write that fails is given up: the next sandbox compiles that module, as without a cache.
 */
function writeCodeCaches() {
  const scripts = [...compiledWithoutCache];
  compiledWithoutCache.clear();
  for (const [file, script] of scripts) {
    const temporary = `${file}.${randomUUID()}.tmp`;
    try {
      writeFileSync(temporary, script.createCachedData(), { mode: 0o600, flag: 'wx' });
      renameSync(temporary, file);
    } catch {
      try {
        rmSync(temporary, { force: true });
      } catch {
        // left for code-cache.ts to remove
      }
    }
  }
}

let handlerPromise: Promise<(...args: any[]) => any>;

/** Becomes the function's sandbox: its clock, SDK route and module paths, then its handler module (its init). */
function becomeSandbox(given: WorkerData) {
  data = given;
  if (data.clockOffset) shiftDate(data.clockOffset);
  if (data.endpoint) routeSdkCallsToEndpoint(data.endpoint);
  addFallbackModulePaths(data.fallbackModulePaths);
  reuseModuleResolutions(data.moduleResolutions);
  if (data.codeCacheDir && data.temporaryDir) compileWithCodeCache(data.codeCacheDir, data.temporaryDir);
  captureOutput();
  instrumentTimers();
  handlerPromise = loadHandler();
  // An init failure is reported on every invocation, like Lambda's init errors; keep it from crashing the worker.
  handlerPromise.catch(() => undefined).finally(sendNewResolutions);
  port.on('message', onMessage);
}

port.once('message', ({ assign }: AssignMessage) => {
  // A spare started with an empty environment: the function's is then all it sees.
  Object.assign(process.env, assign.environment);
  becomeSandbox(assign.data);
});

async function onMessage(message: InvokeMessage | EndpointAnswerMessage) {
  if ('endpointAnswer' in message) {
    const answer = endpointCalls.get(message.endpointAnswer.id);
    endpointCalls.delete(message.endpointAnswer.id);
    answer?.(message.endpointAnswer);
    return;
  }
  const started = performance.now();
  const cpuAtStart = threadCpuMs();
  invocationStart = started;
  clockWaits = [];
  const finish = () => {
    const timerWaitMs = clockWaitMs();
    invocationStart = undefined;
    const cpuAtEnd = threadCpuMs();
    return { timerWaitMs, cpuMs: cpuAtStart === undefined || cpuAtEnd === undefined ? undefined : cpuAtEnd - cpuAtStart };
  };
  const { context } = message;
  const lambdaContext = {
    ...context,
    callbackWaitsForEmptyEventLoop: true,
    getRemainingTimeInMillis: () => Math.max(0, context.deadlineMs - realNow()),
  };
  if (message.traceHeader) process.env._X_AMZN_TRACE_ID = message.traceHeader;
  else delete process.env._X_AMZN_TRACE_ID;
  try {
    const handler = await handlerPromise;
    const result = await new Promise((resolve, reject) => {
      // Callback-style handlers (event, context, callback) are still supported by the Node.js runtime.
      const callback = (err: unknown, value: unknown) => (err ? reject(err) : resolve(value));
      const returned = handler(message.event, lambdaContext, callback);
      if (returned && typeof returned.then === 'function') returned.then(resolve, reject);
      else if (handler.length < 3) resolve(returned);
    });
    const payload = result === undefined ? 'null' : JSON.stringify(result);
    const durationMs = performance.now() - started;
    postAnswer({ id: message.id, ok: true, payload, durationMs, ...finish(), log: takeLog() }, context.deadlineMs);
  } catch (error) {
    const durationMs = performance.now() - started;
    postAnswer({ id: message.id, ok: false, error: toLambdaError(error), durationMs, ...finish(), log: takeLog() }, context.deadlineMs);
  }
}

/**
 * Posts an invocation's answer. The code caches of modules that ran for the first time are written
 * first (once per module, not on warm invocations): outside the invocation's measured duration, and
 * before the engine may stop this sandbox (it terminates it without waiting). Not when the
 * invocation is within CODE_CACHE_WRITE_MARGIN_MS of its timeout: the engine's timer runs until the
 * answer arrives, so they wait for a later answer.
 */
function postAnswer(result: ResultMessage, deadlineMs: number) {
  if (compiledWithoutCache.size && deadlineMs - realNow() > CODE_CACHE_WRITE_MARGIN_MS) writeCodeCaches();
  port.postMessage(result);
  sendNewResolutions();
}

const CODE_CACHE_WRITE_MARGIN_MS = 1000;
