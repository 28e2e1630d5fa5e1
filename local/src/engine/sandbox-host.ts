/**
 * What every function host shares, whatever runs the code (a worker thread for Node.js, a process
 * for Python): a pool of warm sandboxes per function, reused between invocations and grown up to a
 * cap for concurrent ones; Lambda's context, timeout (the sandbox is discarded, the next call is a
 * cold start) and error shapes; counters of invocations, errors, cold starts and billed milliseconds
 * (rounded up to 1 ms, as Lambda bills). A host supplies only how to start, talk to and stop one.
 */
import { randomUUID } from 'node:crypto';
import type { LocalFunction } from './assembly';
import type { EndpointRequest, EndpointResponse } from './aws-endpoint';
import type { InvokeMessage, LambdaError, ResultMessage } from './function-worker';
import { CpuTimes, cpuTimes, idleCores } from './spare-cpu';

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
  /**
   * CPU time the invocations used on their sandbox's thread, ms (Node.js functions on Linux, read
   * from the kernel's per-thread figure; 0 where it cannot be read): what the function code costs the
   * machine, apart from the engine.
   */
  cpuMs: number;
  readonly memoryMb: number;
}

/** Where a function's code is: a module file and the export to call. */
export interface HandlerEntry { readonly file: string; readonly exportName: string }

export interface FunctionHostOptions {
  readonly fn: LocalFunction;
  readonly entry: HandlerEntry;
  readonly environment: Record<string, string>;
  readonly maxWorkers: number;
  /**
   * How often, while invocations wait for a sandbox, the host decides whether more of its sandboxes
   * run at once (0: every invocation runs at once, as Lambda scales out). See
   * LocalEngineOptions.scaleOutDelayMs.
   */
  readonly scaleOutDelayMs?: number;
  /**
   * The machine's CPU times, read to tell whether a core idled while an invocation waited for a
   * sandbox (spare-cpu.ts). @default cpuTimes (the kernel's per-core counters)
   */
  readonly cpuTimes?: () => CpuTimes;
  readonly onLog: (functionName: string, line: string) => void;
  /** The engine clock's offset from real time (ms, element 0, shared memory): the code's `Date` follows it. */
  readonly clockOffset?: Float64Array;
  /**
   * The engine's AWS endpoint: Node.js sandboxes hand their SDK calls to it over their message port
   * rather than HTTP (function-worker.ts). Absent: every call goes over HTTP.
   */
  readonly endpoint?: { readonly url: string; answer(request: EndpointRequest): Promise<EndpointResponse> };
}

/** What a sandbox answers for one invocation (the Node.js worker's message shape; the Python bootstrap writes the same). */
export type SandboxAnswer = ResultMessage;

/** One warm sandbox: busy while it runs an invocation, whose answer (or crash) goes to `pending`. */
export interface Sandbox {
  busy: boolean;
  pending?: (answer: SandboxAnswer | Error) => void;
  /**
   * The run start (RunStart) of the invocation it runs or ran last: the calls its code makes carry it
   * on (a call a finished invocation left running gets the next one's).
   */
  runStart?: RunStart;
}

/**
 * When the run that caused a piece of work started, in `performance.now()` milliseconds: an execution's
 * start, handed on to the invocations its tasks make and from those to the invocations their code
 * causes (Lambda Invoke, SNS deliveries, destinations). Work with no known run (a stream batch, a call
 * over HTTP) counts from when it arrived. Where invocations wait for a sandbox, the oldest run's goes
 * first: under load, runs finish in the order they started instead of all together at the end, as
 * they would on AWS, where nothing waits for a sandbox.
 */
export type RunStart = number;

/**
 * An invocation goes ahead only of those that arrived less than this before it: a run that keeps a
 * function busy (a loop, a long poll) cannot hold newer runs' work back for longer.
 */
export const RUN_PRECEDENCE_MAX_MS = 60_000;

/**
 * The fewest sandboxes of a function that may run at once when the cores are all in use: two, so
 * that one computes while the other waits for an answer to a call.
 */
export const BUSY_LIMIT_FLOOR = 2;

/**
 * An invocation waiting for a sandbox: the queue is ordered by `rank` (its run start, at most
 * RUN_PRECEDENCE_MAX_MS before its arrival), then by arrival. `wake` hands it a released sandbox,
 * lets it start or take one (SCALE_OUT), or ends its wait (the host stopped).
 */
interface Waiter<S> { readonly rank: number; readonly wake: (slot: S | typeof SCALE_OUT | undefined) => void }

/** What wakes a waiting invocation that may start or take a sandbox beside the busy ones (decideScaleOut, discard). */
const SCALE_OUT = 'scale-out';

/** One invocation as a sandbox receives it: the event and Lambda's context. */
export type SandboxRequest = Omit<InvokeMessage, 'traceHeader'>;

/** What every function's environment starts from, as in Lambda's runtimes (then its own variables and the engine's). */
export function runtimeBaseEnvironment(): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'en_US.UTF-8' };
}

/**
 * A host that was stopped (the engine stopped, or the function was replaced: LambdaService.putFunction)
 * takes no invocation, also none that was waiting for one of its sandboxes. Only the engine's stop
 * lets it reach a caller: LambdaService sends those of a replaced function to the new host.
 */
export class HostStoppedError extends Error {
  constructor(functionName: string) {
    super(`function ${functionName}: engine stopped`);
    this.name = 'HostStoppedError';
  }
}

/** For work the engine's stop may cut short (an asynchronous invocation, a queue batch): it ends there. */
export function endsAtStop(error: unknown): void {
  if (!(error instanceof HostStoppedError)) throw error;
}

export abstract class SandboxHost<S extends Sandbox> {
  public readonly stats: FunctionStats;
  private readonly sandboxes: S[] = [];
  /** Invocations waiting for a sandbox, oldest run first (Waiter). */
  private readonly queue: Waiter<S>[] = [];
  private nextId = 1;
  private stopped = false;
  /** Invocations that ended (answered, failed, timed out): whether the busy sandboxes get anywhere. */
  private endedInvocations = 0;
  /**
   * How many sandboxes may run invocations at once (with `scaleOutDelayMs` > 0): it rises with what
   * runs, and falls after waits that showed every core in use while the function kept going.
   */
  private busyLimit: number;
  /** Set while invocations wait (adaptive scaling): the next decision (armScaleOutTick). */
  private scaleOutTimer?: NodeJS.Timeout;

  constructor(protected readonly options: FunctionHostOptions) {
    this.busyLimit = this.limitFloor;
    this.stats = { invocations: 0, errors: 0, billedMs: 0, coldStarts: 0, timerWaitMs: 0, cpuMs: 0, memoryMb: options.fn.memoryMb };
  }

  private get cpuTimes(): () => CpuTimes {
    return this.options.cpuTimes ?? cpuTimes;
  }

  public get name(): string {
    return this.options.fn.name;
  }

  /**
   * One synchronous invocation (RequestResponse); asynchronous semantics are built on top of it.
   * `runStart`: when the run that caused it started (RunStart; none: now, its arrival).
   */
  public async invoke(event: unknown, runStart: RunStart = performance.now()): Promise<InvokeResult> {
    const slot = await this.acquire(runStart);
    if (this.stopped) {
      // Stopped or retired meanwhile: this sandbox is ended, and the invocation is not started here.
      this.discard(slot);
      throw new HostStoppedError(this.name);
    }
    const requestId = randomUUID();
    const { fn } = this.options;
    const timeoutMs = fn.timeoutSeconds * 1000;
    const request: SandboxRequest = {
      id: this.nextId++,
      event,
      context: {
        awsRequestId: requestId,
        deadlineMs: Date.now() + timeoutMs,
        functionName: fn.name,
        functionVersion: '$LATEST',
        invokedFunctionArn: fn.arn,
        memoryLimitInMB: String(fn.memoryMb),
        logGroupName: `/aws/lambda/${fn.name}`,
        logStreamName: `local/${this.logStreamOf(slot)}`,
      },
    };
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    slot.runStart = runStart;
    const outcome = await new Promise<SandboxAnswer | Error | 'timeout'>((resolve) => {
      slot.pending = resolve;
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
      this.send(slot, request);
    });
    clearTimeout(timer);
    slot.pending = undefined;
    this.stats.invocations++;
    this.endedInvocations++;
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
      this.stats.cpuMs += outcome.cpuMs ?? 0;
      result = outcome.ok
        ? { ok: true, payload: outcome.payload, requestId, durationMs: outcome.durationMs }
        : { ok: false, error: outcome.error, requestId, durationMs: outcome.durationMs };
    }
    if (!result.ok) this.stats.errors++;
    this.stats.billedMs += Math.max(1, Math.ceil(result.durationMs));
    return result;
  }

  /**
   * Takes no more invocations (the function was replaced: its new host takes them, waiting ones too),
   * and lets the ones running finish on the old code, as Lambda does after UpdateFunctionCode; each
   * sandbox is stopped when it is idle.
   */
  public retire(): void {
    this.close();
    for (const slot of this.sandboxes.filter((s) => !s.busy)) this.discard(slot);
  }

  public async stop(): Promise<void> {
    this.close();
    await Promise.all(this.sandboxes.splice(0).map((slot) => this.terminate(slot)));
  }

  /**
   * Takes no more invocations. Those waiting for a sandbox end now (acquire throws HostStoppedError)
   * instead of starting one later; LambdaService sends those of a replaced function to its new host.
   */
  private close() {
    this.stopped = true;
    clearTimeout(this.scaleOutTimer);
    for (const waiter of this.queue.splice(0)) waiter.wake(undefined);
  }

  /** Starts one sandbox (a cold start). It must call `forget` when it exits on its own. */
  protected abstract start(): S;
  /** Hands the sandbox one invocation; its answer goes to `slot.pending`. */
  protected abstract send(slot: S, request: SandboxRequest): void;
  /** Stops a sandbox for good. */
  protected abstract terminate(slot: S): Promise<void>;
  /** The sandbox's part of the log stream name. */
  protected abstract logStreamOf(slot: S): string;

  /** Drops a sandbox that exited from the pool. */
  protected forget(slot: S): void {
    const i = this.sandboxes.indexOf(slot);
    if (i >= 0) this.sandboxes.splice(i, 1);
  }

  private async acquire(runStart: RunStart): Promise<S> {
    const rank = Math.max(runStart, performance.now() - RUN_PRECEDENCE_MAX_MS);
    /** `scaleOutDelayMs: 0` scales out at once, as Lambda does: no limit below maxWorkers, no decisions. */
    const adaptive = this.adaptive;
    /** Set when a decision (decideScaleOut) or a discard let this invocation run beside the busy sandboxes. */
    let scaleOut = false;
    for (;;) {
      if (this.stopped) throw new HostStoppedError(this.name);
      const mayRunMore = !adaptive || scaleOut || this.busyCount() < this.busyLimit;
      const idle = mayRunMore ? this.sandboxes.find((s) => !s.busy) : undefined;
      if (idle) return this.take(idle);
      if (this.sandboxes.length < this.options.maxWorkers && (!adaptive || scaleOut || this.sandboxes.length === 0)) {
        const fresh = this.start();
        this.stats.coldStarts++;
        this.sandboxes.push(fresh);
        return this.take(fresh);
      }
      if (adaptive) this.armScaleOutTick();
      const woken = await this.waitForSandbox(rank);
      if (woken === SCALE_OUT) scaleOut = true;
      else if (woken) return woken;
    }
  }

  private get adaptive(): boolean {
    return (this.options.scaleOutDelayMs ?? 0) > 0;
  }

  /** BUSY_LIMIT_FLOOR, or fewer where the function may not have that many (reserved concurrency). */
  private get limitFloor(): number {
    return Math.min(BUSY_LIMIT_FLOOR, this.options.maxWorkers);
  }

  /** While invocations wait: decideScaleOut every `scaleOutDelayMs`, from what happened meanwhile. */
  private armScaleOutTick(): void {
    if (this.scaleOutTimer) return;
    const delayMs = this.options.scaleOutDelayMs ?? 0;
    const endedBefore = this.endedInvocations;
    const cpuBefore = this.cpuTimes();
    const dueAt = performance.now() + delayMs;
    this.scaleOutTimer = setTimeout(() => {
      this.scaleOutTimer = undefined;
      if (this.stopped || this.queue.length === 0) return;
      // A timer that fired late, after the engine's own thread was busy, may come before the results
      // the sandboxes sent meanwhile are read: "nothing ended" is no stall then.
      const onTime = performance.now() - dueAt <= delayMs / 2;
      this.decideScaleOut(onTime && this.endedInvocations === endedBefore, Math.floor(idleCores(cpuBefore, this.cpuTimes())));
      if (this.queue.length > 0) this.armScaleOutTick();
    }, delayMs);
    this.scaleOutTimer.unref();
  }

  /**
   * Whether more of the function's sandboxes run at once. Yes where it helps: the busy ones ended
   * nothing meanwhile (`stalled`: they sleep, or wait on something outside or on this function
   * itself; every waiter that can may go), or whole cores idled (one waiter per idle core). Otherwise
   * the function keeps going on cores that are all in use, and one more busy sandbox would only share
   * them (and, a new one, cost a cold start and compile the same code again): fewer run at once, down
   * to the floor, and the rest wait, the oldest run first (issue 16). Within the limit a waiter that
   * found no idle sandbox goes too (it has waited for a release first). Only as many go as can start
   * or take a sandbox: a waiter woken for nothing would lose its place among waiters of its rank.
   */
  private decideScaleOut(stalled: boolean, coresIdle: number): void {
    if (!stalled && coresIdle === 0 && this.busyLimit > this.limitFloor) this.busyLimit--;
    const busy = this.busyCount();
    const wanted = Math.max(stalled ? this.queue.length : coresIdle, this.busyLimit - busy);
    const possible = this.options.maxWorkers - busy;
    for (const waiter of this.queue.splice(0, Math.min(wanted, possible))) waiter.wake(SCALE_OUT);
  }

  /** Marks a sandbox busy with the invocation that acquired it; the limit follows what runs. */
  private take(slot: S): S {
    slot.busy = true;
    this.busyLimit = Math.max(this.busyLimit, this.busyCount());
    return slot;
  }

  private busyCount(): number {
    let busy = 0;
    for (const slot of this.sandboxes) if (slot.busy) busy++;
    return busy;
  }

  /**
   * Resolves with the sandbox released to this invocation (busy already), with SCALE_OUT when it may
   * start or take one beside the busy ones (decideScaleOut, or a sandbox was discarded: room for a new
   * one), or with none when the host stopped.
   */
  private waitForSandbox(rank: number): Promise<S | typeof SCALE_OUT | undefined> {
    return new Promise((resolve) => {
      // After every waiter of the same rank or a lower one: a sorted insert.
      let at = this.queue.length;
      while (at > 0 && this.queue[at - 1].rank > rank) at--;
      this.queue.splice(at, 0, { rank, wake: resolve });
    });
  }

  private release(slot: S) {
    if (this.stopped) {
      slot.busy = false;
      return this.discard(slot); // retired: no invocation comes for it any more
    }
    // Handed over still busy, so that no invocation arriving before the waiter resumes takes it; not
    // while more are busy than the limit allows (the next decision lets waiters go, decideScaleOut).
    const handOver = this.queue.length > 0 && (!this.adaptive || this.busyCount() <= this.busyLimit);
    if (handOver) this.queue.shift()!.wake(slot);
    else slot.busy = false;
  }

  private discard(slot: S) {
    this.forget(slot);
    void this.terminate(slot);
    this.queue.shift()?.wake(SCALE_OUT);
  }
}

/** Calls `onLine` with every complete line of a text stream. */
export function forEachLine(stream: NodeJS.ReadableStream, onLine: (line: string) => void): void {
  let buffered = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
}
