/**
 * The local engine's speed, for the bench (issue 16): its main-thread CPU, its throughput of
 * concurrent activity runs, the bound DynamoDB Local sets on this machine for the same requests,
 * and how long an engine takes to start from a `cdk.out` directory.
 *
 * The bound: one activity run's DynamoDB requests (and the start-run write before it) are recorded
 * as the handlers send them, then replayed straight to DynamoDB Local — as many runs at once as the
 * engine ran, each run's requests one after the other, same bodies (item sizes, conditions) — by a
 * bare HTTP client. Requests per second / requests per activity run = activity runs per second no
 * engine could exceed on this DynamoDB Local. The engine's own stream reads are not in the mix (they
 * are the engine's cost).
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { EngineCounters, LocalEngine } from '../local/src';
import { SANDBOX_THREAD_NAME } from '../local/src/engine/function-host';

/**
 * CPU time of this process's main thread in ms: the kernel's per-thread figure on Linux (time on a
 * core, not time waiting for one); elsewhere the event loop's busy time, which also counts waiting
 * for a core on a loaded machine.
 */
export function mainThreadCpuMs(): number {
  try {
    return threadCpuMs(process.pid);
  } catch {
    return performance.eventLoopUtilization().active;
  }
}

/** A thread of this process's CPU time in ms (Linux: time on a core, not waiting for one); throws where /proc is missing. */
function threadCpuMs(tid: number | string): number {
  return Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
}

/** CPU time of a process (all its threads) in ms, from /proc (Linux); NaN elsewhere or when it is gone. */
export function processCpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ: 100 on every Linux the bench runs on. */
const CLOCK_TICKS_PER_SECOND = 100;

/** One recorded DynamoDB request. */
export interface RecordedRequest { readonly operation: string; readonly body: string }

/** What the engine process's other threads do, as the reports name it. */
export const OTHER_THREADS = 'V8\'s compilers and GC helpers, libuv, sandbox starts, sandboxes between invocations';

/**
 * The two parts of the other threads' CPU, `format`ted: the sandboxes' own threads outside their
 * invocations, and the rest (V8's compiler and GC helper threads, libuv); empty where not measured.
 */
export function otherThreadsParts(cpu: RunCpu, format: (ms: number) => string): string {
  if (Number.isNaN(cpu.sandboxesOutsideInvocations)) return '';
  return `; of which sandbox threads outside their invocations ${format(cpu.sandboxesOutsideInvocations)} (starts, messages, garbage collection),`
    + ` V8's compiler and GC helper threads and libuv ${format(cpu.otherThreads - cpu.sandboxesOutsideInvocations)}`;
}

/** Where the CPU of some runs went, per run, ms. */
export interface RunCpu {
  /** The engine's main thread: Step Functions interpreter, AWS endpoint, SNS routing, stream reads. */
  readonly mainThread: number;
  /** The function code in its sandboxes' threads (orchestrator handlers and plugins; Python functions report none). */
  readonly functionCode: number;
  /** The engine process's other threads: V8's compilers and GC helpers, libuv, sandbox starts, sandboxes between invocations. */
  readonly otherThreads: number;
  /**
   * Of `otherThreads`, the sandboxes' own threads outside their invocations: sandbox starts, the
   * messages around each invocation, their garbage collection between invocations (NaN where /proc
   * is missing or a sandbox thread ended meanwhile). The rest is V8's compiler and GC helper threads,
   * libuv, Node.js's own.
   */
  readonly sandboxesOutsideInvocations: number;
  /** DynamoDB Local's Java process, the engine's stream reads included (NaN where /proc cannot be read). */
  readonly dynamodbLocal: number;
  /** The engine's GetRecords calls per run, over every table's stream. */
  readonly getRecords: number;
}

/** The CPU counters `cpuPerRun` subtracts, read at one moment. */
export interface CpuSample {
  readonly mainThreadMs: number;
  readonly process: NodeJS.CpuUsage;
  readonly functionCodeMs: number;
  /** CPU ms of each sandbox thread, by thread (undefined where /proc is missing). */
  readonly sandboxThreadsMs?: ReadonlyMap<string, number>;
  readonly dynamodbMs: number;
  readonly getRecords: number;
  readonly dynamodbPid?: number;
}

/** The function code's CPU and the stream reads, from a reading of the engine's counters. */
function engineFigures(counters: EngineCounters): { functionCodeMs: number; getRecords: number } {
  return {
    functionCodeMs: counters.totals.cpuMs,
    getRecords: Object.values(counters.streamReads).reduce((t, s) => t + s.getRecords, 0),
  };
}

/** The name as /proc shows it (the kernel keeps 15 characters). */
const SANDBOX_COMM = SANDBOX_THREAD_NAME.slice(0, 15);

/**
 * CPU ms of this process's sandbox threads (the engine names them SANDBOX_THREAD_NAME), by thread:
 * its id and start time (ids are used again); undefined where /proc is missing.
 */
function sandboxThreadsCpuMs(): Map<string, number> | undefined {
  const byThread = new Map<string, number>();
  let threads: string[];
  try {
    threads = readdirSync('/proc/self/task');
  } catch {
    return undefined;
  }
  for (const tid of threads) {
    try {
      if (readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== SANDBOX_COMM) continue;
      // Field 22 (starttime), counted after the parenthesized name.
      const started = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')[19];
      byThread.set(`${tid}@${started}`, threadCpuMs(tid));
    } catch {
      // the thread ended meanwhile
    }
  }
  return byThread;
}

/**
 * Reads the CPU counters of the engine's process and DynamoDB Local (by `dynamodbPid`), with the
 * function code's from `counters` (the caller's reading of `engine.counters()`, taken just before).
 */
export function cpuSample(counters: EngineCounters, dynamodbPid?: number): CpuSample {
  return {
    mainThreadMs: mainThreadCpuMs(),
    process: process.cpuUsage(),
    ...engineFigures(counters),
    sandboxThreadsMs: sandboxThreadsCpuMs(),
    dynamodbMs: processCpuMs(dynamodbPid),
    dynamodbPid,
  };
}

/**
 * The sandbox threads' CPU since `before` outside the invocations (`functionCodeMs` of them), ms; NaN
 * where /proc is missing or a sandbox thread ended meanwhile (its CPU can no longer be read, though its
 * invocations are in `functionCodeMs`).
 */
function sandboxesOutsideInvocationsMs(before: ReadonlyMap<string, number> | undefined, functionCodeMs: number): number {
  const now = sandboxThreadsCpuMs();
  if (!before || !now || [...before.keys()].some((thread) => !now.has(thread))) return Number.NaN;
  let used = 0;
  for (const [thread, ms] of now) used += ms - (before.get(thread) ?? 0);
  return used - functionCodeMs;
}

/** The CPU used since `since`, per run, split by where it went (`counters`: the engine's counters now). */
export function cpuPerRun(counters: EngineCounters, since: CpuSample, runs: number): RunCpu {
  const mainThread = mainThreadCpuMs() - since.mainThreadMs;
  const { user, system } = process.cpuUsage(since.process);
  const now = engineFigures(counters);
  const functionCode = now.functionCodeMs - since.functionCodeMs;
  return {
    mainThread: mainThread / runs,
    functionCode: functionCode / runs,
    otherThreads: ((user + system) / 1000 - mainThread - functionCode) / runs,
    sandboxesOutsideInvocations: sandboxesOutsideInvocationsMs(since.sandboxThreadsMs, functionCode) / runs,
    dynamodbLocal: (processCpuMs(since.dynamodbPid) - since.dynamodbMs) / runs,
    getRecords: (now.getRecords - since.getRecords) / runs,
  };
}

/** The engine process's CPU (main thread, function code, other threads) of a split, ms. */
export function engineProcessMs(cpu: RunCpu): number {
  return cpu.mainThread + cpu.functionCode + cpu.otherThreads;
}

/** A goal's line in a report: `[met]` or `[MISSED]`, then `goal` (the goal and what was measured). */
export function goalLine(met: boolean, goal: string): string {
  return `  [${met ? 'met' : 'MISSED'}] ${goal}`;
}

export interface Throughput {
  readonly runs: number;
  readonly seconds: number;
  readonly runsPerSecond: number;
  readonly cpu: RunCpu;
}

/** Invokes start-run for `uid` (the run's status item, before its activity runs) and fails loudly if it failed. */
async function startRunFor(engine: LocalEngine, opts: { startRun: string; workflow: string; activity: string }, uid: string): Promise<void> {
  const started = await engine.invoke(opts.startRun, { input: { uid }, workflow: opts.workflow, activities: [opts.activity] });
  if (!started.ok) throw new Error(`start-run failed: ${JSON.stringify(started.error)}`);
}

/**
 * `runs` activity runs at once (each after its start-run, which is not timed): activity runs per
 * second from the first start until every effect settled, and the CPU per run. A first round, not
 * measured, warms as many sandboxes as the load needs (their cold starts are not throughput).
 */
export async function measureThroughput(engine: LocalEngine, opts: {
  startRun: string; activityMachine: string; workflow: string; activity: string; runs: number; prefix: string; dynamodbPid?: number;
}): Promise<Throughput> {
  await concurrentRuns(engine, { ...opts, prefix: `${opts.prefix}-warm` });
  return concurrentRuns(engine, opts);
}

async function concurrentRuns(engine: LocalEngine, opts: {
  startRun: string; activityMachine: string; workflow: string; activity: string; runs: number; prefix: string; dynamodbPid?: number;
}): Promise<Throughput> {
  const uids = Array.from({ length: opts.runs }, (_, i) => `${opts.prefix}-${i}`);
  await Promise.all(uids.map((uid) => startRunFor(engine, opts, uid)));
  await engine.idle(120_000);
  const before = cpuSample(engine.counters(), opts.dynamodbPid);
  const t0 = performance.now();
  const results = await Promise.all(uids.map((uid) => engine.startExecution(opts.activityMachine, { uid, workflow: opts.workflow }).result()));
  await engine.idle(300_000);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuPerRun(engine.counters(), before, opts.runs);
  const failed = results.filter((r) => r.status !== 'SUCCEEDED');
  if (failed.length) throw new Error(`throughput: ${failed.length} of ${opts.runs} activity runs ${failed[0].status}: ${failed[0].error} ${failed[0].cause ?? ''}`);
  return { runs: opts.runs, seconds, runsPerSecond: opts.runs / seconds, cpu };
}

/**
 * Main-thread CPU per activity run, one run at a time, once the engine's own code is warm (after the
 * concurrent runs): the V8 JIT has optimized it by then, which it has not over the bench's first few
 * sequential runs (those cost about twice as much).
 */
export async function measureWarmSequential(engine: LocalEngine, opts: {
  startRun: string; activityMachine: string; workflow: string; activity: string; runs: number; prefix: string;
}): Promise<number> {
  let total = 0;
  for (let i = 0; i < opts.runs; i++) {
    const uid = `${opts.prefix}-${i}`;
    await startRunFor(engine, opts, uid);
    await engine.idle();
    const cpu = mainThreadCpuMs();
    const result = await engine.startExecution(opts.activityMachine, { uid, workflow: opts.workflow }).result();
    await engine.idle(60_000);
    total += mainThreadCpuMs() - cpu;
    if (result.status !== 'SUCCEEDED') throw new Error(`warm sequential run ${result.status}: ${result.error}`);
  }
  return total / opts.runs;
}

/**
 * Records the DynamoDB requests of one start-run + activity run; `activityFrom` is the index of the
 * activity run's first request (the ones before it are start-run's).
 */
export async function recordRun(engine: LocalEngine, opts: {
  startRun: string; activityMachine: string; workflow: string; activity: string; uid: string;
}): Promise<{ requests: RecordedRequest[]; activityFrom: number }> {
  const requests: RecordedRequest[] = [];
  const stop = engine.observeDynamoDb((operation, body) => { requests.push({ operation, body: JSON.stringify(body) }); });
  try {
    await startRunFor(engine, opts, opts.uid);
    await engine.idle();
    const activityFrom = requests.length;
    const result = await engine.startExecution(opts.activityMachine, { uid: opts.uid, workflow: opts.workflow }).result();
    if (result.status !== 'SUCCEEDED') throw new Error(`recorded run ${result.status}: ${result.error}`);
    await engine.idle(60_000);
    return { requests: [...requests], activityFrom };
  } finally {
    stop();
  }
}

export interface DynamoDbBound {
  readonly requestsPerSecond: number;
  /** Activity runs per second DynamoDB Local allows: requests/s over requests per activity run. */
  readonly activityRunsPerSecond: number;
  readonly requestsPerActivityRun: number;
  /** Replayed requests DynamoDB Local answered with an error (a condition that no longer held, ...). */
  readonly errors: number;
  /** DynamoDB Local's CPU for one activity run's requests, replayed, ms (NaN without its pid). */
  readonly cpuMsPerActivityRun: number;
}

/**
 * A bare HTTP client for DynamoDB Local (keep-alive, at most `maxSockets` connections): `send` posts
 * one request of the DynamoDB JSON protocol and resolves with the HTTP status. DynamoDB Local
 * (-sharedDb) reads but does not verify the signature: a well-formed one will do.
 */
export function bareDynamoDbClient(endpoint: string, maxSockets?: number): {
  send(operation: string, body: string): Promise<number>;
  /** Sends `body` as JSON and throws unless DynamoDB Local answered 200. */
  ok(operation: string, body: object): Promise<void>;
  close(): void;
} {
  const url = new URL(endpoint);
  const agent = new Agent({ keepAlive: true, maxSockets });
  const authorization = 'AWS4-HMAC-SHA256 Credential=local/20260101/us-east-1/dynamodb/aws4_request, SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000';
  const send = (operation: string, body: string) => new Promise<number>((resolve, reject) => {
    const req = request({
      host: url.hostname,
      port: url.port,
      method: 'POST',
      path: '/',
      agent,
      headers: {
        'content-type': 'application/x-amz-json-1.0',
        'x-amz-target': `DynamoDB_20120810.${operation}`,
        'x-amz-date': '20260101T000000Z',
        'authorization': authorization,
        'content-length': Buffer.byteLength(body),
      },
    }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
  const ok = async (operation: string, body: object) => {
    const status = await send(operation, JSON.stringify(body));
    if (status !== 200) throw new Error(`${operation} answered ${status}`);
  };
  return { send, ok, close: () => agent.destroy() };
}

/** A script option's value as a positive integer; throws with the option's name otherwise. */
export function positiveInteger(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${JSON.stringify(value)}`);
  return n;
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/**
 * Replays `recorded` (with its uid replaced) as `concurrency` runs at once, `rounds` times each,
 * straight to DynamoDB Local over keep-alive HTTP.
 */
export async function dynamoDbBound(endpoint: string, recorded: { requests: RecordedRequest[]; activityFrom: number }, uid: string,
  opts: { concurrency: number; rounds: number; prefix: string; pid?: number }): Promise<DynamoDbBound> {
  const client = bareDynamoDbClient(endpoint, opts.concurrency);
  let errors = 0;
  const send = async (operation: string, body: string) => {
    if (await client.send(operation, body) !== 200) errors++;
  };
  const uidJson = JSON.stringify(uid).slice(1, -1);
  const runOf = (newUid: string) => recorded.requests.map((r) => ({ operation: r.operation, body: r.body.split(uidJson).join(newUid) }));
  let sent = 0;
  const cpuBefore = processCpuMs(opts.pid);
  const t0 = performance.now();
  await Promise.all(Array.from({ length: opts.concurrency }, async (_, lane) => {
    for (let round = 0; round < opts.rounds; round++) {
      for (const r of runOf(`${opts.prefix}-${lane}-${round}`)) {
        await send(r.operation, r.body);
        sent++;
      }
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  const cpuMsPerRequest = (processCpuMs(opts.pid) - cpuBefore) / sent;
  client.close();
  const requestsPerActivityRun = recorded.requests.length - recorded.activityFrom;
  const requestsPerSecond = sent / seconds;
  return {
    requestsPerSecond,
    activityRunsPerSecond: requestsPerSecond / requestsPerActivityRun,
    requestsPerActivityRun,
    errors,
    cpuMsPerActivityRun: cpuMsPerRequest * requestsPerActivityRun,
  };
}

export interface EngineStart {
  /** Loading the package and starting the first engine of a fresh process, ms. */
  readonly firstMs: number;
  /** Of which loading the package (require), ms. */
  readonly requireMs: number;
  /** A second engine started in the same process, ms. */
  readonly laterMs: number;
}

const START_CHILD = `
const t0 = performance.now();
const { LocalEngine } = require(process.argv[1]);
const loaded = performance.now();
(async () => {
  const first = new LocalEngine({ app: process.argv[2], dynamodbEndpoint: process.argv[3] });
  await first.start();
  const t1 = performance.now();
  const later = new LocalEngine({ app: process.argv[2], dynamodbEndpoint: process.argv[3] });
  await later.start();
  const t2 = performance.now();
  await first.stop();
  await later.stop();
  process.stdout.write(JSON.stringify({ firstMs: t1 - t0, requireMs: loaded - t0, laterMs: t2 - t1 }) + '\\n');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
`;

/** Newest modification time under a directory (ms). */
function newest(dir: string): number {
  let t = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    t = Math.max(t, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return t;
}

/**
 * Engine start from a `cdk.out` directory with DynamoDB Local running, in fresh processes of the
 * compiled package (local/lib, as users load it; compiled first when older than local/src), the
 * median of `times` processes.
 */
export function measureEngineStart(root: string, cdkOut: string, dynamodbEndpoint: string, times = 3): EngineStart {
  const lib = join(root, 'local', 'lib', 'local', 'src', 'index.js');
  if (!existsSync(lib) || statSync(lib).mtimeMs < newest(join(root, 'local', 'src'))) {
    const tsc = spawnSync('npx', ['tsc', '-p', join(root, 'local', 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
    if (tsc.status !== 0) throw new Error(`compiling local/ failed:\n${tsc.stdout}${tsc.stderr}`);
  }
  const samples: EngineStart[] = [];
  for (let i = 0; i < times; i++) {
    const child = spawnSync(process.execPath, ['-e', START_CHILD, lib, cdkOut, dynamodbEndpoint], {
      encoding: 'utf8', env: { ...process.env, NODE_NO_WARNINGS: '1' },
    });
    if (child.status !== 0) throw new Error(`engine start failed:\n${child.stderr}`);
    samples.push(JSON.parse(child.stdout.trim().split('\n').pop()!));
  }
  const middle = (key: keyof EngineStart) => median(samples.map((s) => s[key]));
  return { firstMs: middle('firstMs'), requireMs: middle('requireMs'), laterMs: middle('laterMs') };
}
