/**
 * Cost benchmark (`npx projen bench`): runs ONE activity on the local engine in four plugin
 * configurations, reads the engine's counters and prices one million activity runs at AWS on-demand
 * prices, next to the original (seed) system priced the same way; then synth time and memory of
 * 1, 10, 50 and 200 activities. The last line is `cost ratio vs original: X` for configuration A.
 * For A it also measures the engine's speed (bench-speed.ts): main-thread CPU per run, activity runs
 * per second with many runs at once against the bound DynamoDB Local sets for the same requests
 * (`engine throughput vs DynamoDB Local bound: R`), and engine start from cdk.out (first in a fresh
 * process, later).
 *
 *   A      P1 pre plugin, A3 parallel plugins (mandatory), Q1 post plugin
 *   C      A + one OPTIONAL parallel plugin that reports 5 s after the message (the seed's 5 s
 *          registration window, which it slept through in a 3008 MB Lambda)
 *   A=10   P1, 10 parallel plugins, Q1
 *   A=100  P1, 100 parallel plugins, Q1
 *
 * What is counted: one activity run = the activity's state machine execution and everything it
 * causes (stage handlers, plugin-outcome, status-summary, DynamoDB requests, SNS). The run's start
 * (start-run, the workflow's own states) is measured separately. "Orchestrator" figures count the
 * orchestrator's handler functions only, never the plugins (the bench's plugins are zero-SDK
 * functions, so every DynamoDB request and SNS publish comes from the orchestrator). Runs are warm
 * (one warm-up run first) and sequential; figures are per run, averaged.
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/bench.ts
 *   options: --runs N (measured runs per configuration, default 3), --only A,C,... , --no-synth, --no-engine,
 *            --concurrent N (A's concurrent runs for the throughput, default 400: a load that lasts about ten seconds, so the
 *            figure is the engine's sustained throughput; 16 runs settled in under a second, mostly ramp: code still
 *            compiling, the last runs finishing on a half-idle machine, R 0.25 against 0.40-0.44 for 400-1,000;
 *            the DynamoDB Local bound replays as many runs at once, 4 rounds),
 *            --no-speed (no throughput, bound, engine start),
 *            --small (the build's smoke run: configuration A, 1 run, synth of 1 activity; it proves the bench still runs),
 *            --authorization enforce|off (the engine's option; default: enforce when the evaluator is installed),
 *            --authorization compare (each configuration measured with authorization off and enforced, alternately,
 *            three times each, in this process: prints the engine CPU per activity run of both, their ratio and the time spent deciding)
 *   environment: BENCH_WORKERS (sandboxes per function, default 2), BENCH_LOGS=1 (function logs to stderr)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { App, Duration, NestedStack, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import {
  DynamoDbBound, dynamoDbBound, EngineStart, engineProcessMs, goalLine, mainThreadCpuMs, measureEngineStart, measureThroughput,
  measureWarmSequential, median, OTHER_THREADS, otherThreadsParts, RecordedRequest, recordRun, Throughput,
} from './bench-speed';
import { LocalEngine } from '../local/src';
import type { EngineCounters } from '../local/src';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';
import { ActivityStage, Orchestrator, Workflow } from '../src';
import { SCALE } from '../src/private/scale';

// ---------------------------------------------------------------------------------------------
// Prices: AWS on-demand, US East (N. Virginia), read 2026-11 from the pages cited.

const REGION = 'us-east-1 (US East, N. Virginia)';
const PRICES = {
  /** https://aws.amazon.com/step-functions/pricing/ — Standard workflows, $0.025 per 1,000 state transitions. */
  stateTransition: 0.025 / 1000,
  /** https://aws.amazon.com/lambda/pricing/ — $0.20 per 1M requests (both architectures). */
  lambdaRequest: 0.20 / 1e6,
  /** Same page, first tier: x86 $0.0000166667 per GB-s (the original's functions). */
  lambdaGbSecondX86: 0.0000166667,
  /** Same page, first tier: Arm $0.0000133334 per GB-s (our handlers are arm64). */
  lambdaGbSecondArm: 0.0000133334,
  /**
   * https://aws.amazon.com/dynamodb/pricing/on-demand/ — on-demand (since the November 2024 price
   * cut): $0.625 per million write request units, $0.125 per million read request units. Priced
   * here as one unit per request (items up to 1 KB written, 4 KB read), the same for both systems.
   */
  writeRequestUnit: 0.625 / 1e6,
  readRequestUnit: 0.125 / 1e6,
  /** https://aws.amazon.com/sns/pricing/ — standard topics: $0.50 per 1M publishes; deliveries to Lambda are free. */
  snsPublish: 0.50 / 1e6,
};

/** The original (seed) system per activity run, as measured on AWS (x86 functions). */
const ORIGINAL = {
  A: { invocations: 64, gbSeconds: 0.45, idleGbSeconds: Number.NaN, reads: 17 + 14, writes: 38 + 1, publishes: 1, transitions: 5 },
  // Config C: the 5 s registration window made it 15.2 GB-s; the other figures as in A.
  C: { invocations: 64, gbSeconds: 15.2, idleGbSeconds: 15.2 - 0.45, reads: 31, writes: 39, publishes: 1, transitions: 5 },
};

// ---------------------------------------------------------------------------------------------
// Configurations

interface Config {
  readonly key: string;
  readonly label: string;
  readonly parallel: number;
  /** One optional parallel plugin that reports this many ms after the message. */
  readonly lateOptionalMs?: number;
  readonly original?: keyof typeof ORIGINAL;
}

const CONFIGS: Config[] = [
  { key: 'A', label: 'A: P1 pre, A3 parallel, Q1 post', parallel: 3, original: 'A' },
  { key: 'C', label: 'C: A + optional plugin, 5 s window', parallel: 3, lateOptionalMs: 5000, original: 'C' },
  { key: 'A=10', label: 'A=10 parallel plugins', parallel: 10 },
  { key: 'A=100', label: 'A=100 parallel plugins', parallel: 100 },
];

const ORCHESTRATOR = 'bench';
const ACTIVITY = 'Activity';
const WORKFLOW = 'bench';
const PLUGINS_PER_STACK = 40;
const INSTANT = 'exports.handler = async () => ({});';
const late = (ms: number) => `exports.handler = async () => { await new Promise((r) => setTimeout(r, ${ms})); return {}; };`;

function plugin(scope: Stack, id: string, code: string, timeoutSeconds = 30): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    architecture: lambda.Architecture.ARM_64,
    handler: 'index.handler',
    code: lambda.Code.fromInline(code),
    memorySize: 128,
    timeout: Duration.seconds(timeoutSeconds),
  });
}

function buildApp(config: Config): { stack: Stack; orchestrator: Orchestrator } {
  const app = new App();
  const stack = new Stack(app, 'Bench');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: ORCHESTRATOR, activities: [ACTIVITY] });
  new Workflow(stack, 'Flow', { orchestrator, activities: [ACTIVITY], workflowName: WORKFLOW });
  const activity = orchestrator.activity(ACTIVITY);
  const stacks: Stack[] = [];
  const pluginStack = (i: number) => {
    const n = Math.floor(i / PLUGINS_PER_STACK);
    stacks[n] ??= new Stack(app, `BenchPlugins${n}`);
    return stacks[n];
  };
  activity.addPlugin(plugin(pluginStack(0), 'P1', INSTANT), { stage: ActivityStage.PRE, pluginName: 'P1' });
  for (let i = 0; i < config.parallel; i++) {
    activity.addPlugin(plugin(pluginStack(i), `A${i + 1}`, INSTANT), { stage: ActivityStage.PARALLEL, pluginName: `A${i + 1}` });
  }
  if (config.lateOptionalMs !== undefined) {
    activity.addPlugin(plugin(pluginStack(0), 'Late', late(config.lateOptionalMs)), { stage: ActivityStage.PARALLEL, pluginName: 'Late', mandatory: false });
  }
  activity.addPlugin(plugin(pluginStack(0), 'Q1', INSTANT), { stage: ActivityStage.POST, pluginName: 'Q1' });
  return { stack, orchestrator };
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface RunFigures {
  invocations: number;
  gbSeconds: number;
  idleGbSeconds: number;
  /** GB-s the orchestrator spent blocked on synchronous pre/post plugin calls (their own duration). */
  blockedGbSeconds: number;
  coldStarts: number;
  reads: number;
  writes: number;
  byOperation: Record<string, number>;
  publishes: number;
  deliveries: number;
  transitions: number;
  pluginInvocations: number;
  pluginGbSeconds: number;
  pluginIdleGbSeconds: number;
  /** Activity execution: start to stop, ms. */
  activityMs: number;
  /** Activity start until every effect (late plugins, outcomes, summaries) settled, ms. */
  settledMs: number;
  /** Main-thread CPU of the engine process (Step Functions interpreter, AWS endpoint, SNS, streams), ms. */
  engineCpuMs: number;
  /** The main thread's event-loop busy time, ms: its CPU plus, on a loaded machine, time waiting for a core. */
  engineBusyMs: number;
  /** Of which deciding authorization (0 when off), ms. */
  authorizationMs: number;
  states: Record<string, number>;
}

interface Measured {
  readonly config: Config;
  readonly perRun: RunFigures;
  readonly runStart: { invocations: number; reads: number; writes: number; gbSeconds: number };
  readonly orchestratorMemoryMb: number;
  /** Configuration A only: concurrent runs, and one run's DynamoDB requests for the bound. */
  readonly throughput?: Throughput;
  /** Configuration A only: main-thread CPU per sequential run once the engine's code is warm (after the concurrent runs), ms. */
  readonly warmCpuMs?: number;
  readonly recorded?: { requests: RecordedRequest[]; activityFrom: number; uid: string };
  /** Decisions the authorizer took (evaluated) and answered from its cache, over all runs; absent when off. */
  readonly decisions?: { evaluated: number; cached: number };
}

function isOrchestratorFunction(engine: LocalEngine, orchestrator: Orchestrator): (name: string) => boolean {
  const prefix = `${orchestrator.node.path}/Handlers/`;
  // As many as the construct made (features add handlers): the engine must have found each of them.
  const expected = orchestrator.handlers.node.findAll().filter((c) => c instanceof lambda.Function).length;
  const names = new Set(engine.assembly.functions.filter((f) => f.path?.startsWith(prefix)).map((f) => f.name));
  if (expected === 0 || names.size !== expected) {
    throw new Error(`expected the orchestrator's ${expected} handler functions under ${prefix}, found ${names.size}`);
  }
  return (name) => names.has(name);
}

function diff(before: EngineCounters, after: EngineCounters, orchestratorFn: (name: string) => boolean) {
  const fns = Object.entries(after.functions).map(([name, f]) => {
    const b = before.functions[name];
    return {
      name,
      orchestrator: orchestratorFn(name),
      invocations: f.invocations - (b?.invocations ?? 0),
      gbSeconds: f.gbSeconds - (b?.gbSeconds ?? 0),
      idleGbSeconds: ((f.timerWaitMs - (b?.timerWaitMs ?? 0)) / 1000) * (f.memoryMb / 1024),
      coldStarts: f.coldStarts - (b?.coldStarts ?? 0),
      memoryMb: f.memoryMb,
    };
  });
  const sum = (list: typeof fns, key: 'invocations' | 'gbSeconds' | 'idleGbSeconds' | 'coldStarts') => list.reduce((t, f) => t + f[key], 0);
  const mine = fns.filter((f) => f.orchestrator);
  const plugins = fns.filter((f) => !f.orchestrator);
  const byOperation: Record<string, number> = {};
  for (const [op, n] of Object.entries(after.dynamodb.byOperation)) {
    const d = n - (before.dynamodb.byOperation[op] ?? 0);
    if (d) byOperation[op] = d;
  }
  const sequentialMemoryGb = (mine.find((f) => f.name.includes('SequentialStage'))?.memoryMb ?? 256) / 1024;
  return {
    invocations: sum(mine, 'invocations'),
    gbSeconds: sum(mine, 'gbSeconds'),
    idleGbSeconds: sum(mine, 'idleGbSeconds'),
    blockedGbSeconds: ((after.lambdaApi.syncWaitMs - before.lambdaApi.syncWaitMs) / 1000) * sequentialMemoryGb,
    coldStarts: sum(mine, 'coldStarts'),
    reads: after.dynamodb.reads - before.dynamodb.reads,
    writes: after.dynamodb.writes - before.dynamodb.writes,
    byOperation,
    publishes: after.sns.publishes - before.sns.publishes,
    deliveries: after.sns.deliveries - before.sns.deliveries,
    transitions: after.stepFunctions.stateTransitions - before.stepFunctions.stateTransitions,
    pluginInvocations: sum(plugins, 'invocations'),
    pluginGbSeconds: sum(plugins, 'gbSeconds'),
    pluginIdleGbSeconds: sum(plugins, 'idleGbSeconds'),
  };
}

async function measure(config: Config, runs: number, dynamodb: { endpoint: string; pid?: number }, concurrentRuns?: number, authorization?: 'enforce' | 'off'): Promise<Measured> {
  const { stack, orchestrator } = buildApp(config);
  const engine = new LocalEngine({
    app: stack,
    dynamodbEndpoint: dynamodb.endpoint,
    authorization,
    logs: process.env.BENCH_LOGS ? 'inherit' : 'silent',
    // Few concurrent sandboxes on a 2-core machine: billed durations stay an invocation's own time.
    maxWorkersPerFunction: Number(process.env.BENCH_WORKERS ?? 2),
  });
  await engine.start();
  try {
    const orchestratorFn = isOrchestratorFunction(engine, orchestrator);
    const startRun = engine.assembly.functions.find((f) => f.path === `${orchestrator.node.path}/Handlers/StartRun`)!.name;
    const activityMachine = `${ORCHESTRATOR}-${ACTIVITY}`;
    const stateTimes = new Map<string, { entered: number; total: number }>();
    engine.on('state', (e) => {
      if (e.stateMachineName !== activityMachine || !e.state) return;
      const entry = stateTimes.get(e.state) ?? { entered: 0, total: 0 };
      if (e.type === 'StateEntered') entry.entered = e.time.getTime();
      if (e.type === 'StateExited') entry.total += e.time.getTime() - entry.entered;
      stateTimes.set(e.state, entry);
    });

    const oneRun = async (uid: string) => {
      const beforeStart = engine.counters();
      const started = await engine.invoke(startRun, { input: { uid }, workflow: WORKFLOW, activities: [ACTIVITY] });
      if (!started.ok) throw new Error(`start-run failed: ${JSON.stringify(started.error)}`);
      await engine.idle();
      const before = engine.counters();
      const elu = performance.eventLoopUtilization();
      const cpu = mainThreadCpuMs();
      const t0 = performance.now();
      const result = await engine.startExecution(activityMachine, { uid, workflow: WORKFLOW }).result();
      if (result.status !== 'SUCCEEDED') throw new Error(`${config.key}: activity ${result.status}: ${result.error} ${result.cause ?? ''}`);
      await engine.idle(60_000);
      const settledMs = performance.now() - t0;
      const engineCpuMs = mainThreadCpuMs() - cpu;
      const engineBusyMs = performance.eventLoopUtilization(elu).active;
      const after = engine.counters();
      const doc = await engine.statusDocument(uid, WORKFLOW);
      if (doc?.activities?.[ACTIVITY]?.status?.state !== 'Complete' || doc.awaiting) {
        throw new Error(`${config.key}: the run did not settle: ${JSON.stringify(doc?.activities?.[ACTIVITY]?.status)} awaiting=${JSON.stringify(doc?.awaiting)}`);
      }
      const start = diff(beforeStart, before, orchestratorFn);
      return {
        figures: {
          ...diff(before, after, orchestratorFn),
          activityMs: result.stopDate!.getTime() - result.startDate.getTime(),
          settledMs,
          engineCpuMs,
          engineBusyMs,
          authorizationMs: (after.authorization?.ms ?? 0) - (before.authorization?.ms ?? 0),
          states: {},
        } satisfies RunFigures,
        runStart: { invocations: start.invocations, reads: start.reads, writes: start.writes, gbSeconds: start.gbSeconds },
      };
    };

    await oneRun(`${config.key}-warmup`);
    stateTimes.clear();
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await oneRun(`${config.key}-${i}`));
    const perRun = average(results.map((r) => r.figures));
    perRun.states = Object.fromEntries([...stateTimes].map(([state, t]) => [state, t.total / runs]));
    const memory = engine.assembly.functions.find((f) => f.name === startRun)!.memoryMb;
    let throughput: Throughput | undefined;
    let warmCpuMs: number | undefined;
    let recorded: Measured['recorded'];
    if (concurrentRuns) {
      const run = { startRun, activityMachine, workflow: WORKFLOW, activity: ACTIVITY };
      throughput = await measureThroughput(engine, { ...run, runs: concurrentRuns, prefix: `${config.key}-concurrent`, dynamodbPid: dynamodb.pid });
      warmCpuMs = await measureWarmSequential(engine, { ...run, runs: Math.max(runs, 3), prefix: `${config.key}-warm-sequential` });
      const uid = `${config.key}-recorded`;
      recorded = { ...await recordRun(engine, { ...run, uid }), uid };
    }
    const decisions = engine.counters().authorization;
    if (decisions?.denials) throw new Error(`${config.key}: ${decisions.denials} calls denied: ${engine.denials.map((d) => d.message).join('\n')}`);
    const runStart = averageFlat(results.map((r) => r.runStart));
    return { config, perRun, runStart, orchestratorMemoryMb: memory, throughput, warmCpuMs, recorded, decisions };
  } finally {
    await engine.stop();
  }
}

function average(list: RunFigures[]): RunFigures {
  const out = averageFlat(list.map(({ byOperation, states, ...numbers }) => numbers)) as unknown as RunFigures;
  const ops = new Set(list.flatMap((f) => Object.keys(f.byOperation)));
  out.byOperation = Object.fromEntries([...ops].sort().map((op) => [op, list.reduce((t, f) => t + (f.byOperation[op] ?? 0), 0) / list.length]));
  out.states = {};
  return out;
}

function averageFlat<T extends Record<string, number>>(list: T[]): T {
  const out: Record<string, number> = {};
  for (const key of Object.keys(list[0])) out[key] = list.reduce((t, f) => t + f[key], 0) / list.length;
  return out as T;
}

// ---------------------------------------------------------------------------------------------
// Pricing

interface Priced { lambda: number; dynamodb: number; sns: number; stepFunctions: number; total: number }

interface Usage { invocations: number; gbSeconds: number; reads: number; writes: number; publishes: number; transitions: number }

function price(f: Usage, gbSecondPrice: number): Priced {
  const million = 1e6;
  const lambdaCost = (f.invocations * PRICES.lambdaRequest + f.gbSeconds * gbSecondPrice) * million;
  const dynamodb = (f.writes * PRICES.writeRequestUnit + f.reads * PRICES.readRequestUnit) * million;
  const sns = f.publishes * PRICES.snsPublish * million;
  const stepFunctions = f.transitions * PRICES.stateTransition * million;
  return { lambda: lambdaCost, dynamodb, sns, stepFunctions, total: lambdaCost + dynamodb + sns + stepFunctions };
}

// ---------------------------------------------------------------------------------------------
// Synth time and memory (each size in a fresh process)

interface SynthFigures {
  activities: number;
  seconds: number;
  peakRssMb: number;
  heapMb: number;
  templates: number;
  maxResources: number;
  maxTemplateKb: number;
  nestedStacks: number;
}

function synthChild(activities: number): void {
  const started = performance.now();
  const app = new App();
  const stack = new Stack(app, 'Synth');
  const names = Array.from({ length: activities }, (_, i) => `Step${i}`);
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'synth', activities: names });
  new Workflow(stack, 'All', { orchestrator, activities: names });
  const assembly = app.synth();
  const seconds = (performance.now() - started) / 1000;
  const nested = stack.node.findAll().filter(NestedStack.isNestedStack);
  const files = [stack.templateFile, ...nested.map((n) => n.templateFile)].map((f) => readFileSync(join(assembly.directory, f), 'utf8'));
  const figures: SynthFigures = {
    activities,
    seconds,
    peakRssMb: process.resourceUsage().maxRSS / 1024,
    heapMb: process.memoryUsage().heapUsed / 1e6,
    templates: files.length,
    maxResources: Math.max(...files.map((t) => Object.keys(JSON.parse(t).Resources ?? {}).length)),
    maxTemplateKb: Math.max(...files.map((t) => Buffer.byteLength(t) / 1024)),
    nestedStacks: nested.length,
  };
  process.stdout.write(`${JSON.stringify(figures)}\n`);
}

function synthFigures(activities: number): SynthFigures {
  const child = spawnSync(process.execPath, ['-r', 'ts-node/register', __filename, '--synth-child', String(activities)], {
    env: {
      ...process.env,
      TS_NODE_TRANSPILE_ONLY: 'true',
      TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs', moduleResolution: 'node', ignoreDeprecations: '6.0' }),
      NODE_NO_WARNINGS: '1',
    },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`synth of ${activities} activities failed:\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!);
}

// ---------------------------------------------------------------------------------------------
// Output

const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : 'n/a');
const usd = (n: number) => `$${n.toFixed(2)}`;

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ')).join('\n');
}

function report(measured: Measured[]): number | undefined {
  const out: string[] = [];
  out.push('', `Prices: AWS on-demand, ${REGION}: Step Functions Standard $0.025 per 1,000 state transitions; Lambda $0.20 per 1M requests,`,
    '$0.0000166667 per GB-s x86 (the original) / $0.0000133334 arm64 (ours); DynamoDB on-demand $0.625 per million write request units,',
    '$0.125 per million read request units (one unit per request for both); SNS $0.50 per 1M publishes (deliveries to Lambda free).',
    'Sources: aws.amazon.com/step-functions/pricing, /lambda/pricing, /dynamodb/pricing/on-demand, /sns/pricing. Free tiers ignored.', '');

  const header = ['per activity run', ...measured.flatMap((m) => (m.config.original ? [`${m.config.key} ours`, `${m.config.key} orig.`] : [`${m.config.key} ours`]))];
  const rows: string[][] = [header];
  const cells = (ours: (m: Measured) => string, original: (o: (typeof ORIGINAL)['A']) => string) =>
    measured.flatMap((m) => (m.config.original ? [ours(m), original(ORIGINAL[m.config.original])] : [ours(m)]));
  const pricedOurs = (m: Measured) => price(m.perRun, PRICES.lambdaGbSecondArm);
  const pricedOriginal = (o: (typeof ORIGINAL)['A']) => price(o, PRICES.lambdaGbSecondX86);
  rows.push(['orchestrator Lambda invocations', ...cells((m) => fmt(m.perRun.invocations, 1), (o) => fmt(o.invocations))]);
  rows.push(['orchestrator GB-s', ...cells((m) => fmt(m.perRun.gbSeconds, 4), (o) => fmt(o.gbSeconds, 2))]);
  rows.push(['idle (waiting) GB-s', ...cells((m) => fmt(m.perRun.idleGbSeconds, 4), (o) => fmt(o.idleGbSeconds, 2))]);
  rows.push(['  blocked on pre/post plugin calls GB-s', ...cells((m) => fmt(m.perRun.blockedGbSeconds, 4), () => '-')]);
  rows.push(['DynamoDB reads', ...cells((m) => fmt(m.perRun.reads, 1), (o) => fmt(o.reads))]);
  rows.push(['DynamoDB writes', ...cells((m) => fmt(m.perRun.writes, 1), (o) => fmt(o.writes))]);
  rows.push(['DynamoDB requests', ...cells((m) => fmt(m.perRun.reads + m.perRun.writes, 1), (o) => fmt(o.reads + o.writes))]);
  rows.push(['SNS publishes', ...cells((m) => fmt(m.perRun.publishes, 1), (o) => fmt(o.publishes))]);
  rows.push(['SNS deliveries', ...cells((m) => fmt(m.perRun.deliveries, 1), () => '-')]);
  rows.push(['state transitions', ...cells((m) => fmt(m.perRun.transitions, 1), (o) => fmt(o.transitions))]);
  rows.push(['$ / 1M runs: Lambda', ...cells((m) => usd(pricedOurs(m).lambda), (o) => usd(pricedOriginal(o).lambda))]);
  rows.push(['$ / 1M runs: DynamoDB', ...cells((m) => usd(pricedOurs(m).dynamodb), (o) => usd(pricedOriginal(o).dynamodb))]);
  rows.push(['$ / 1M runs: SNS', ...cells((m) => usd(pricedOurs(m).sns), (o) => usd(pricedOriginal(o).sns))]);
  rows.push(['$ / 1M runs: Step Functions', ...cells((m) => usd(pricedOurs(m).stepFunctions), (o) => usd(pricedOriginal(o).stepFunctions))]);
  rows.push(['$ / 1M activity runs', ...cells((m) => usd(pricedOurs(m).total), (o) => usd(pricedOriginal(o).total))]);
  rows.push(['cost ratio vs original', ...cells((m) => (m.config.original ? fmt(pricedOurs(m).total / pricedOriginal(ORIGINAL[m.config.original]).total, 3) : '-'), () => '')]);
  rows.push(['(plugins, not counted) invocations', ...cells((m) => fmt(m.perRun.pluginInvocations, 1), () => '-')]);
  rows.push(['(plugins, not counted) GB-s', ...cells((m) => fmt(m.perRun.pluginGbSeconds, 4), () => '-')]);
  rows.push(['(plugins, not counted) idle GB-s', ...cells((m) => fmt(m.perRun.pluginIdleGbSeconds, 4), () => '-')]);
  rows.push(['local: activity execution ms', ...cells((m) => fmt(m.perRun.activityMs), () => '-')]);
  rows.push(['local: until everything settled ms', ...cells((m) => fmt(m.perRun.settledMs), () => '-')]);
  rows.push(['local: engine main-thread CPU ms', ...cells((m) => fmt(m.perRun.engineCpuMs), () => '-')]);
  rows.push(['local: engine main-thread busy ms', ...cells((m) => fmt(m.perRun.engineBusyMs), () => '-')]);
  out.push(table(rows));
  out.push('(n/a: not measured for the original.) Local sandboxes: at most BENCH_WORKERS (default 2, the cores here) per function,',
    'so a billed duration is one invocation\'s own time, as on AWS; how stream records batch into status-summary calls depends',
    'on timing (AWS: one batch at a time per shard), so its count varies between runs, most with many parallel plugins.');

  out.push('', 'DynamoDB requests by operation (ours, per run):');
  for (const m of measured) out.push(`  ${m.config.key.padEnd(6)} ${Object.entries(m.perRun.byOperation).map(([op, n]) => `${op} ${fmt(n, 1)}`).join(', ')}`);
  const a = measured.find((m) => m.config.key === 'A');
  const c = measured.find((m) => m.config.key === 'C');
  if (a) {
    const rs = a.runStart;
    const runStartPriced = price({ ...rs, publishes: 0, transitions: 0 }, PRICES.lambdaGbSecondArm);
    out.push('', 'Not in the figures above (they are per activity): in a Workflow, each activity also costs its task state (1 state',
      `transition, ${usd(PRICES.stateTransition * 1e6)} per 1M), and each run costs start-run (${fmt(rs.invocations)} invocation, ${fmt(rs.writes)} PutItem: ${usd(runStartPriced.total)} per 1M)`,
      `plus the workflow's StartRun and Succeed states (2 transitions, ${usd(2 * PRICES.stateTransition * 1e6)} per 1M). With the task state counted, A costs`,
      `${usd(price({ ...a.perRun, transitions: a.perRun.transitions + 1 }, PRICES.lambdaGbSecondArm).total)} per 1M activity runs `
      + `(ratio ${fmt(price({ ...a.perRun, transitions: a.perRun.transitions + 1 }, PRICES.lambdaGbSecondArm).total / pricedOriginal(ORIGINAL.A).total, 3)}).`);
    out.push('', 'Idle (waiting) GB-s: billed orchestrator time spent waiting on the clock (sleeps, backoffs, registration windows),',
      'measured in each function sandbox. The parallel stage waits in Step Functions (a task token), never in a Lambda.',
      '"Blocked on pre/post plugin calls": sequential-stage waits for each pre/post plugin\'s reply (the stage is synchronous by',
      'contract); it is the plugin\'s own duration, here ~0 because the bench\'s plugins return at once.');
  }
  if (a && c) {
    out.push('', `C vs A: the optional plugin reports ${fmt((c.config.lateOptionalMs ?? 0) / 1000)} s late; the activity execution took ${fmt(c.perRun.activityMs)} ms `
      + `(A: ${fmt(a.perRun.activityMs)} ms) — the stage does not wait for it — and the orchestrator's GB-s grew by `
      + `${fmt(c.perRun.gbSeconds - a.perRun.gbSeconds, 4)} (recording its outcome: ${fmt(c.perRun.invocations - a.perRun.invocations, 1)} more invocations), `
      + `not by the 5 s window (the original: +${fmt(ORIGINAL.C.gbSeconds - ORIGINAL.A.gbSeconds, 2)} GB-s).`);
  }
  if (a) {
    out.push('', 'Critical path of one activity run (configuration A), sequential service hops:');
    const hops = [
      'Step Functions  Pre (lambda:invoke)',
      'Lambda          sequential-stage',
      'DynamoDB        Query (plugin registry, <activity>|pre)',
      'DynamoDB        UpdateItem (run, activity, stage In Progress; plugin entries)',
      'Lambda          P1 (RequestResponse)',
      'DynamoDB        UpdateItem (P1 Complete, stage Complete)',
      'Step Functions  Parallel (lambda:invoke.waitForTaskToken)',
      'Lambda          parallel-stage',
      'DynamoDB        Query (plugin registry, <activity>|async)',
      'DynamoDB        UpdateItem (stage In Progress, token, awaiting)',
      'SNS             Publish (one message, 3 deliveries in parallel)',
      'Lambda          A1..A3 (async; the last to finish)',
      'Lambda          plugin-outcome (Lambda destination)',
      'DynamoDB        GetItem (registry item of the subscription; none when a warm container read it in the last minute)',
      'DynamoDB        UpdateItem (plugin Complete)',
      'DynamoDB Stream record -> Lambda status-summary (event filter: awaiting)',
      'DynamoDB        UpdateItem (stage Complete, token removed, awaiting deleted)',
      'Step Functions  SendTaskSuccess',
      'Step Functions  Post (lambda:invoke)',
      'Lambda          sequential-stage',
      'DynamoDB        Query (plugin registry, <activity>|post)',
      'DynamoDB        UpdateItem (stage In Progress)',
      'Lambda          Q1 (RequestResponse)',
      'DynamoDB        UpdateItem (Q1 Complete, stage, activity and run Complete)',
    ];
    hops.forEach((hop, i) => out.push(`  ${String(i + 1).padStart(2)}. ${hop}`));
    const states = Object.entries(a.perRun.states).map(([s, ms]) => `${s} ${fmt(ms)} ms`).join(', ');
    out.push(`  ${hops.length} hops; locally per state: ${states}.`);
    out.push(`Local engine's own overhead per activity run (A): ${fmt(a.perRun.engineCpuMs)} ms of the engine's main-thread CPU (Step Functions`,
      `interpreter, AWS endpoint, SNS routing, stream reads), against ${fmt(a.perRun.settledMs)} ms until settled. "Busy" is the main thread's`,
      'event-loop busy time, which on a loaded machine also counts waiting for a core. A write through the endpoint wakes the stream',
      'readers at once. Local durations are not AWS durations: the GB-s above are measured here, on warm functions.');
  }
  process.stdout.write(`${out.join('\n')}\n`);
  if (!a) return undefined;
  return pricedOurs(a).total / pricedOriginal(ORIGINAL.A).total;
}

function goals(measured: Measured[]) {
  const a = measured.find((m) => m.config.key === 'A');
  const c = measured.find((m) => m.config.key === 'C');
  const lines: string[] = ['', 'Goals:'];
  const check = (ok: boolean, text: string) => lines.push(goalLine(ok, text));
  if (a) {
    const ratio = price(a.perRun, PRICES.lambdaGbSecondArm).total / price(ORIGINAL.A, PRICES.lambdaGbSecondX86).total;
    check(a.perRun.invocations <= 12, `A: orchestrator Lambda invocations <= 12 (${fmt(a.perRun.invocations, 1)})`);
    check(a.perRun.reads + a.perRun.writes <= 20, `A: DynamoDB requests <= 20 (${fmt(a.perRun.reads + a.perRun.writes, 1)})`);
    check(a.perRun.transitions <= 3, `A: state transitions per activity <= 3 (${fmt(a.perRun.transitions, 1)})`);
    check(ratio <= 0.55, `A: cost ratio <= 0.55 (${fmt(ratio, 3)})`);
  }
  for (const m of measured) check(m.perRun.idleGbSeconds < 0.00005, `${m.config.key}: 0 idle GB-s (${fmt(m.perRun.idleGbSeconds, 5)})`);
  if (c) {
    const ratio = price(c.perRun, PRICES.lambdaGbSecondArm).total / price(ORIGINAL.C, PRICES.lambdaGbSecondX86).total;
    check(ratio <= 0.25, `C: cost ratio <= 0.25 (${fmt(ratio, 3)})`);
  }
  process.stdout.write(`${lines.join('\n')}\n`);
}

function synthReport(sizes: number[]) {
  const rows: string[][] = [['activities', 'synth s', 'peak RSS MB', 'heap MB', 'templates', 'nested stacks', 'max resources/template', 'max template KB']];
  for (const n of sizes) {
    const f = synthFigures(n);
    rows.push([String(n), fmt(f.seconds, 1), fmt(f.peakRssMb), fmt(f.heapMb), String(f.templates), String(f.nestedStacks),
      String(f.maxResources), fmt(f.maxTemplateKb)]);
  }
  process.stdout.write(`\nSynth time and memory (an Orchestrator with N activities and one Workflow over all of them; fresh process each, constructs + synth):\n${table(rows)}\n`);
  process.stdout.write(`Resources per activity: 7 in the orchestrator's stack (up to ${SCALE.maxActivitiesInStack} activities), ${SCALE.resourcesPerGroupedActivity} in a nested stack (more), plus one\n`
    + `AWS::CloudFormation::Stack per group (at most ${SCALE.activityGroups}) in the parent.\n`);
}

interface Speed { throughput: Throughput; bound: DynamoDbBound; start: EngineStart; cpuMs: number; warmCpuMs: number }

function speedReport({ throughput: t, bound: b, start, cpuMs, warmCpuMs }: Speed) {
  const r = t.runsPerSecond / b.activityRunsPerSecond;
  // What no engine could beat on this machine with these handlers: every core busy with nothing but
  // the function code and DynamoDB Local answering the run's requests (no engine thread, no stream read).
  const cores = availableParallelism();
  const ceiling = (cores * 1000) / (t.cpu.functionCode + b.cpuMsPerActivityRun) / b.activityRunsPerSecond;
  const engineProcess = engineProcessMs(t.cpu);
  const lines = ['', `Engine speed (configuration A, ${t.runs} activity runs at once, each after its start-run; same DynamoDB Local):`,
    `  engine: ${fmt(t.runsPerSecond, 2)} activity runs/s (${fmt(t.seconds, 2)} s until every effect settled), CPU per run: main thread ${fmt(t.cpu.mainThread, 1)} ms,`
      + ` whole engine process (with function workers) ${fmt(engineProcess)} ms, DynamoDB Local ${fmt(t.cpu.dynamodbLocal)} ms;`
      + ` stream reads (GetRecords) per run: ${fmt(t.cpu.getRecords, 1)}`,
    `  of the engine process's CPU per run: function code in its sandboxes ${fmt(t.cpu.functionCode)} ms (orchestrator handlers and plugins),`
      + ` main thread ${fmt(t.cpu.mainThread)} ms, other threads (${OTHER_THREADS}) ${fmt(t.cpu.otherThreads)} ms`
      + otherThreadsParts(t.cpu, (ms) => `${fmt(ms)} ms`),
    `  R if the engine cost nothing: ${cores} cores / (function code ${fmt(t.cpu.functionCode)} ms + DynamoDB Local's requests ${fmt(b.cpuMsPerActivityRun)} ms per run, as replayed)`
      + ` = ${fmt((cores * 1000) / (t.cpu.functionCode + b.cpuMsPerActivityRun), 1)} activity runs/s, ${fmt(ceiling, 2)} of the bound`,
    `  DynamoDB Local bound: ${fmt(b.requestsPerSecond)} requests/s replaying one run's ${fmt(b.requestsPerActivityRun)} requests (and start-run's write) `
      + `${t.runs} runs at once over bare HTTP${b.errors ? ` (${b.errors} answered with an error)` : ''} = ${fmt(b.activityRunsPerSecond, 2)} activity runs/s`,
    `  engine start from cdk.out with DynamoDB Local running, fresh process (median): first ${fmt(start.firstMs)} ms (of which loading the package ${fmt(start.requireMs)} ms), later ${fmt(start.laterMs)} ms`,
    '', 'Speed goals:',
    goalLine(r >= 0.5, `engine throughput vs DynamoDB Local bound >= 0.5 (${fmt(r, 2)})`),
    goalLine(cpuMs <= 20, `A: engine main-thread CPU per activity run <= 20 ms (${fmt(cpuMs, 1)} ms sequential, first runs;`
      + ` ${fmt(warmCpuMs, 1)} ms sequential once warm; ${fmt(t.cpu.mainThread, 1)} ms concurrent)`),
    goalLine(start.firstMs <= 1000, `engine start (first in process) <= 1 s (${fmt(start.firstMs)} ms)`),
    `engine start (first in process): ${fmt(start.firstMs)} ms`,
    `engine start (later): ${fmt(start.laterMs)} ms`,
    `engine main-thread CPU per activity run (A): ${fmt(cpuMs, 1)} ms`,
    `engine main-thread CPU per activity run (A), warm: ${fmt(warmCpuMs, 1)} ms`,
    `engine throughput vs DynamoDB Local bound: ${fmt(r, 2)}`];
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function main() {
  const { values } = parseArgs({
    options: {
      'runs': { type: 'string', default: '3' },
      'only': { type: 'string' },
      'no-synth': { type: 'boolean', default: false },
      'no-engine': { type: 'boolean', default: false },
      'synth-child': { type: 'string' },
      'small': { type: 'boolean', default: false },
      'concurrent': { type: 'string', default: '400' },
      'no-speed': { type: 'boolean', default: false },
      'authorization': { type: 'string' },
    },
  });
  if (values.authorization && !['enforce', 'off', 'compare'].includes(values.authorization)) {
    throw new Error(`--authorization must be enforce, off or compare, not "${values.authorization}"`);
  }
  const small = values.small;
  if (values['synth-child']) {
    synthChild(Number(values['synth-child']));
    return;
  }
  const root = join(__dirname, '..');
  if (!existsSync(join(root, 'assets', 'handlers', 'start-run', 'index.js'))) {
    throw new Error('assets/handlers is missing: run `npx projen bundle` (the bench task does) first');
  }
  const runs = small ? 1 : Number(values.runs);
  const only = small ? new Set(['A']) : values.only ? new Set(values.only.split(',')) : undefined;
  const concurrentRuns = small ? 4 : Number(values.concurrent);
  let ratio: number | undefined;
  if (values.authorization === 'compare') {
    await compareAuthorization(CONFIGS.filter((c) => (only ?? new Set(['A'])).has(c.key)), runs);
    return;
  }
  const authorization = values.authorization as 'enforce' | 'off' | undefined;
  if (!values['no-engine']) {
    process.stdout.write(`cdk-orchestrator cost benchmark: one activity on the local engine, ${runs} measured runs per configuration (after a warm-up run)\n`);
    const dynamoDb = await startDynamoDbLocal();
    const measured: Measured[] = [];
    let speed: Speed | undefined;
    try {
      for (const config of CONFIGS.filter((c) => !only || only.has(c.key))) {
        const started = performance.now();
        const withSpeed = config.key === 'A' && !values['no-speed'];
        measured.push(await measure(config, runs, dynamoDb, withSpeed ? concurrentRuns : undefined, authorization));
        process.stdout.write(`  ${config.label}: measured in ${fmt((performance.now() - started) / 1000, 1)} s\n`);
      }
      const a = measured.find((m) => m.config.key === 'A');
      if (a?.throughput && a.recorded) {
        const bound = await dynamoDbBound(dynamoDb.endpoint, a.recorded, a.recorded.uid, {
          concurrency: concurrentRuns, rounds: small ? 1 : 4, prefix: 'bound', pid: dynamoDb.pid,
        });
        const cdkOut = (buildApp(a.config).stack.node.root as App).synth().directory;
        const start = measureEngineStart(join(__dirname, '..'), cdkOut, dynamoDb.endpoint, small ? 1 : 3);
        speed = { throughput: a.throughput, bound, start, cpuMs: a.perRun.engineCpuMs, warmCpuMs: a.warmCpuMs ?? Number.NaN };
      }
    } finally {
      await dynamoDb.stop();
    }
    ratio = report(measured);
    goals(measured);
    if (speed) speedReport(speed);
  }
  if (!values['no-synth']) synthReport(small ? [1] : [1, 10, 50, 200]);
  if (ratio !== undefined) process.stdout.write(`cost ratio vs original: ${ratio.toFixed(3)}\n`);
}

/** Engines per mode in `--authorization compare`. */
const ROUNDS = 3;

/**
 * The engine's main-thread CPU per activity run with authorization off and enforced, measured
 * alternately (off, enforce, off, enforce, ...) in this process so both see the same machine load,
 * and the part of it spent deciding (the authorizer's own clock; decisions of the warm-up run, which
 * fill the cache, are not in the measured runs).
 */
async function compareAuthorization(configs: Config[], runs: number) {
  process.stdout.write(`Authorization cost: engine main-thread CPU per activity run, off vs enforced (${runs} runs each, alternated ${ROUNDS} times; medians)\n`);
  const dynamoDb = await startDynamoDbLocal();
  try {
    const rows: string[][] = [[
      'config', 'off: engine CPU ms/run', 'enforce: engine CPU ms/run', 'ratio', 'of which deciding ms/run', 'share', 'decisions evaluated', 'answered from cache',
    ]];
    for (const config of configs) {
      const cpu = { off: [] as number[], enforce: [] as number[] };
      const deciding: number[] = [];
      let decisions = { evaluated: 0, cached: 0 };
      for (let round = 0; round < ROUNDS; round++) {
        for (const mode of ['off', 'enforce'] as const) {
          const m = await measure(config, runs, dynamoDb, undefined, mode);
          cpu[mode].push(m.perRun.engineCpuMs);
          if (mode === 'enforce') deciding.push(m.perRun.authorizationMs);
          if (m.decisions) decisions = { evaluated: decisions.evaluated + m.decisions.evaluated, cached: decisions.cached + m.decisions.cached };
        }
      }
      // Medians: a shared machine's load comes in bursts that a mean would carry into one mode only.
      const ratio = median(cpu.enforce) / median(cpu.off);
      rows.push([
        config.key, fmt(median(cpu.off), 1), fmt(median(cpu.enforce), 1), ratio.toFixed(3), fmt(median(deciding), 2),
        `${((median(deciding) / median(cpu.enforce)) * 100).toFixed(1)}%`, String(decisions.evaluated), String(decisions.cached),
      ]);
    }
    process.stdout.write(`${table(rows)}\n`);
  } finally {
    await dynamoDb.stop();
  }
}

main().then(() => process.exit(0), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
