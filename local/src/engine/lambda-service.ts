/**
 * The Lambda service: synchronous and asynchronous invocation of the hosted functions, with
 * Lambda's semantics where they matter to the orchestrator — the error shape of a failed
 * invocation, asynchronous retries (EventInvokeConfig `MaximumRetryAttempts`, default 2) and
 * on-success / on-failure destinations.
 */
import { randomUUID } from 'node:crypto';
import type { LocalEventInvokeConfig, LocalFunction } from './assembly';
import { AwsError, LambdaInvokeRequest, LambdaInvokeResponse } from './aws-endpoint';
import { codeCacheDirectory, realTemporaryDirectory } from './code-cache';
import { FunctionHost, FunctionHostOptions, FunctionStats, HandlerEntry, InvokeResult, SharedModuleResolutions, spareWorkers } from './function-host';
import { functionNameOf } from './intrinsics';
import { isPythonEntry, PythonFunctionHost, SparePythonProcesses, sparePythonProcesses } from './python-host';
import { endsAtStop, HostStoppedError, RunStart } from './sandbox-host';

export interface LambdaServiceOptions {
  readonly functions: LocalFunction[];
  readonly invokeConfigs: LocalEventInvokeConfig[];
  /** The code to run for a function, or a message saying why it has none locally. */
  readonly entryFor: (fn: LocalFunction) => HandlerEntry | string;
  readonly environmentFor: (fn: LocalFunction) => Record<string, string>;
  readonly maxWorkersPerFunction: number;
  /** How often a function's waiting invocations get a decision on more sandboxes at once (LocalEngineOptions.scaleOutDelayMs). */
  readonly scaleOutDelayMs: number;
  /** Delays between asynchronous retries (AWS waits about 1 and 2 minutes; locally shorter). */
  readonly asyncRetryDelaysMs: number[];
  readonly onLog: (functionName: string, line: string) => void;
  /** Sends a destination record to an SQS queue, SNS topic or Lambda function ARN. */
  /** `runStart`: the run of the invocation whose record it is (sandbox-host.ts RunStart; default: arrival). */
  readonly deliverToDestination: (arn: string, record: unknown, runStart?: RunStart) => Promise<void>;
  readonly track: <T>(work: Promise<T>) => Promise<T>;
  /** Where runtimes write their own files (the Python bootstrap). */
  readonly tempRoot: string;
  /** The engine clock's offset (shared memory), which function code's `Date` follows. */
  readonly clockOffset?: Float64Array;
  /** See FunctionHostOptions.endpoint. */
  readonly endpoint?: FunctionHostOptions['endpoint'];
}

/** What the service needs of a function's host, whatever its runtime. */
type Host = Pick<FunctionHost, 'name' | 'stats' | 'invoke' | 'retire' | 'stop'>;

/** Synchronous `Invoke` API calls (RequestResponse) made by function code, e.g. sequential-stage calling a plugin. */
export interface LambdaApiCounters {
  syncInvocations: number;
  /** Wall time those calls took: how long the calling functions were blocked on the called ones. */
  syncWaitMs: number;
}

export class LambdaService {
  public readonly apiCounters: LambdaApiCounters = { syncInvocations: 0, syncWaitMs: 0 };
  private readonly hosts = new Map<string, Host>();
  private readonly byName = new Map<string, LocalFunction>();
  private readonly missing = new Map<string, string>();
  private stopped = false;
  /**
   * Hosts of replaced functions: their invocations may still be running (stopped with the engine),
   * and their counters stay in stats() (kept after the stop too).
   */
  private readonly retired = new Set<Host>();
  /** Sandboxes started ahead of cold starts, for every function of the engine (spares.ts). */
  private readonly spares = spareWorkers();
  private readonly pythonSpares: SparePythonProcesses;
  /** Where Node.js sandboxes keep code caches, and what they do not cache (looked up once per engine). */
  private readonly codeCacheDir = codeCacheDirectory();
  private readonly temporaryDir = realTemporaryDirectory();
  /** The `require` resolutions the engine's Node.js sandboxes made, for the next ones. */
  private readonly moduleResolutions = new SharedModuleResolutions();

  constructor(private readonly options: LambdaServiceOptions) {
    this.pythonSpares = sparePythonProcesses(options.tempRoot);
    for (const fn of options.functions) this.byName.set(fn.name, fn);
  }

  /**
   * Adds a function, or replaces one's definition (new code, configuration): its host is retired, so
   * the next invocation (and any waiting for a sandbox) loads the new code, while those running finish
   * on the old one, as after Lambda's UpdateFunctionCode.
   */
  public async putFunction(fn: LocalFunction): Promise<void> {
    const host = this.hosts.get(fn.name);
    this.hosts.delete(fn.name);
    this.missing.delete(fn.name);
    this.byName.set(fn.name, fn);
    host?.retire();
    if (host) this.retired.add(host);
  }

  public functionFor(nameOrArn: string): LocalFunction | undefined {
    return this.byName.get(functionNameOf(nameOrArn));
  }

  /**
   * Invokes synchronously (RequestResponse). Unknown functions are a `ResourceNotFoundException`.
   * `runStart`: when the run that caused it started (sandbox-host.ts RunStart; none: its arrival).
   */
  public async invoke(nameOrArn: string, event: unknown, runStart?: RunStart): Promise<InvokeResult> {
    const fn = this.functionFor(nameOrArn);
    if (!fn) throw new AwsError('ResourceNotFoundException', `Function not found: ${nameOrArn}`, 404);
    if (this.stopped) throw new HostStoppedError(fn.name); // no new host after the stop
    const host = this.host(fn);
    if (!host) {
      return { ok: false, requestId: randomUUID(), durationMs: 0, error: { errorType: 'LocalEngine.NoLocalHandler', errorMessage: this.missing.get(fn.name)!, trace: [] } };
    }
    try {
      return await host.invoke(event, runStart);
    } catch (e) {
      // Its host was replaced (new code or configuration) while it waited: the new one runs it.
      if (e instanceof HostStoppedError && !this.stopped && this.hosts.get(fn.name) !== host) return this.invoke(nameOrArn, event, runStart);
      throw e;
    }
  }

  /** Queues an asynchronous (Event) invocation: retried on error, then sent to its destinations. */
  public invokeAsync(nameOrArn: string, event: unknown, runStart?: RunStart): void {
    const fn = this.functionFor(nameOrArn);
    if (!fn) throw new AwsError('ResourceNotFoundException', `Function not found: ${nameOrArn}`, 404);
    void this.options.track(this.runAsync(fn, event, runStart).catch(endsAtStop));
  }

  /** The Lambda `Invoke` API as the AWS endpoint receives it. */
  public async handleApi(request: LambdaInvokeRequest): Promise<LambdaInvokeResponse> {
    const event = request.payload.length ? JSON.parse(request.payload) : {};
    if (request.invocationType === 'Event') {
      this.invokeAsync(request.functionName, event, request.runStart);
      return { status: 202, payload: '' };
    }
    if (request.invocationType === 'DryRun') {
      if (!this.functionFor(request.functionName)) throw new AwsError('ResourceNotFoundException', `Function not found: ${request.functionName}`, 404);
      return { status: 204, payload: '' };
    }
    const started = performance.now();
    const result = await this.invoke(request.functionName, event, request.runStart);
    this.apiCounters.syncInvocations++;
    this.apiCounters.syncWaitMs += performance.now() - started;
    return result.ok
      ? { status: 200, payload: result.payload, executedVersion: '$LATEST' }
      : { status: 200, payload: JSON.stringify(result.error), functionError: 'Unhandled', executedVersion: '$LATEST' };
  }

  /**
   * Each function's figures since the engine started, over every host it had: a function whose code
   * or configuration was replaced keeps what its earlier hosts counted (and counts the invocations
   * still finishing there). `memoryMb` is the function's current definition's.
   */
  public stats(): Record<string, FunctionStats & { gbSeconds: number }> {
    const out: Record<string, FunctionStats & { gbSeconds: number }> = {};
    for (const host of [...this.retired, ...this.hosts.values()]) {
      const stats = host.stats;
      // GB-s at the memory each host ran with; memoryMb as the function is defined now.
      const gbSeconds = (stats.billedMs / 1000) * (stats.memoryMb / 1024);
      const memoryMb = this.byName.get(host.name)?.memoryMb ?? stats.memoryMb;
      const earlier = out[host.name];
      const counted = { ...stats, gbSeconds };
      out[host.name] = { ...(earlier ? sumCounts(earlier, counted) : counted), memoryMb };
    }
    return out;
  }

  public async stop(): Promise<void> {
    this.stopped = true;
    const hosts = [...this.hosts.values(), ...this.retired];
    await Promise.all([...hosts.map((h) => h.stop()), this.spares.stop(), this.pythonSpares.stop()]);
  }

  private host(fn: LocalFunction): Host | undefined {
    const existing = this.hosts.get(fn.name);
    if (existing) return existing;
    if (this.missing.has(fn.name)) return undefined;
    const entry = this.options.entryFor(fn);
    if (typeof entry === 'string') {
      this.missing.set(fn.name, entry);
      return undefined;
    }
    const hostOptions = {
      fn,
      entry,
      environment: this.options.environmentFor(fn),
      maxWorkers: fn.reservedConcurrency ?? this.options.maxWorkersPerFunction,
      scaleOutDelayMs: this.options.scaleOutDelayMs,
      onLog: this.options.onLog,
      clockOffset: this.options.clockOffset,
      endpoint: this.options.endpoint,
    };
    const host = isPythonEntry(entry)
      ? new PythonFunctionHost({ ...hostOptions, tempRoot: this.options.tempRoot, spares: this.pythonSpares })
      : new FunctionHost({
        ...hostOptions,
        spares: this.spares,
        codeCacheDir: this.codeCacheDir,
        temporaryDir: this.temporaryDir,
        moduleResolutions: this.moduleResolutions,
      });
    this.hosts.set(fn.name, host);
    return host;
  }

  private async runAsync(fn: LocalFunction, event: unknown, runStart: RunStart | undefined) {
    const config = this.options.invokeConfigs.find((c) => c.functionName === fn.name);
    const maxRetries = config?.maximumRetryAttempts ?? 2;
    const requestId = randomUUID();
    let result: InvokeResult | undefined;
    let attempt = 0;
    for (; attempt <= maxRetries; attempt++) {
      if (attempt > 0) await sleep(this.options.asyncRetryDelaysMs[Math.min(attempt - 1, this.options.asyncRetryDelaysMs.length - 1)] ?? 0);
      result = await this.invoke(fn.name, event, runStart);
      if (result.ok) break;
    }
    const destination = result?.ok ? config?.onSuccessArn : config?.onFailureArn;
    if (!destination || !result) return;
    // The record shape of Lambda destinations for asynchronous invocations.
    const record = {
      version: '1.0',
      timestamp: new Date().toISOString(),
      requestContext: {
        requestId,
        functionArn: `${fn.arn}:$LATEST`,
        condition: result.ok ? 'Success' : 'RetriesExhausted',
        approximateInvokeCount: Math.min(attempt + 1, maxRetries + 1),
      },
      requestPayload: event,
      responseContext: { statusCode: 200, executedVersion: '$LATEST', ...(result.ok ? {} : { functionError: 'Unhandled' }) },
      responsePayload: result.ok ? JSON.parse(result.payload) : result.error,
    };
    await this.options.deliverToDestination(destination, record, runStart);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Adds two hosts' figures field by field (memoryMb, not a count, is set by the caller). */
function sumCounts<T extends object>(a: T, b: T): T {
  const other = b as Record<string, number>;
  return Object.fromEntries(Object.entries(a as Record<string, number>).map(([key, value]) => [key, value + other[key]])) as T;
}
