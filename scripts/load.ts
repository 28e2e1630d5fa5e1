/**
 * Load benchmark (`npx projen load`; a script, not a test): N concurrent workflow runs (default
 * 1,000) on ONE local engine, then every status item read back and compared with what that run must
 * end in — so a lost or stale status is found, not averaged away.
 *
 * The app: one Workflow over two activities, each with a pre plugin, two mandatory parallel plugins
 * and a post plugin (zero-SDK inline functions). Every 10th run carries `metadata.fail = true`, which
 * makes the first activity's parallel plugin `check` return `{ state: 'Error' }`: that run must end
 * FAILED (`PluginFailed`), its first activity and the run `Error`, the second activity untouched.
 *
 * Before the baseline and before the load, a warm-up (not measured; its runs are checked too) starts
 * the sandboxes each needs, so both measure warm runs; the cold starts are printed with the warm-up.
 *
 * Printed: runs/s, p50/p95/max run latency (execution start to stop), cold starts, where each run's
 * CPU went (the engine's main thread, the function code in its sandboxes, the engine's other threads,
 * DynamoDB Local with the engine's stream reads) and the most runs/s that allows on this machine's
 * cores, the function code's share by orchestrator handler (invocations per run x CPU each, the
 * plugins together), the issue's load goals at the sizes they are set at (10 and 1,000 at once;
 * printed, not enforced: the smoke run's p50 goal line says MISSED on 2 cores), orchestrator invocations and
 * DynamoDB requests per run (the handlers' requests through the engine's endpoint; the engine's own
 * stream reads are not counted), SNS publishes per run — for the load and for a baseline measured in
 * the same process first (a few runs at a time), and the ratio load/baseline.
 *
 *   npx ts-node --transpile-only -O '{"module":"commonjs","moduleResolution":"node","ignoreDeprecations":"6.0"}' scripts/load.ts
 *   options: --runs N (concurrent runs, default 1000), --baseline N (runs in the baseline, default 10),
 *            --small (the build's smoke run: 10 runs, one failing on purpose, a baseline of 2; it proves the script still runs and loses nothing)
 *   environment: LOAD_WORKERS (sandboxes per function, default 8), LOAD_LOGS=1 (function logs to stderr)
 * Exit code 1 when any run ended otherwise than expected or a status item differs.
 */
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { LocalEngine } from '../local/src';
import type { EngineCounters, ExecutionResult } from '../local/src';
import { startDynamoDbLocal } from '../local/src/dynamodb-local';
import { ActivityStage, Orchestrator, Workflow } from '../src';
import { cpuPerRun, cpuSample, engineProcessMs, goalLine, OTHER_THREADS, otherThreadsParts, RunCpu } from './bench-speed';

const WORKFLOW = 'load';
const ACTIVITIES = ['Intake', 'Settle'];
const PLUGINS = { pre: ['vet'], async: ['check', 'enrich'], post: ['notify'] } as const;
/** The first activity's `check` fails (business failure) for runs with `metadata.fail`. */
const FAILING = { activity: 'Intake', plugin: 'check' };
const INSTANT = 'exports.handler = async () => ({});';
const CHECK = [
  'exports.handler = async (event) => {',
  '  const message = JSON.parse(event.Records[0].Sns.Message);',
  `  if (message.fail === true && message.activity === ${JSON.stringify(FAILING.activity)}) return { state: "Error", message: "check refused" };`,
  '  return {};',
  '};',
].join('\n');

function buildApp(): { stack: Stack; orchestrator: Orchestrator } {
  const app = new App();
  const stack = new Stack(app, 'Load');
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'load', activities: ACTIVITIES });
  new Workflow(stack, 'Flow', { orchestrator, activities: ACTIVITIES, workflowName: WORKFLOW });
  const plugins = new Stack(app, 'LoadPlugins');
  const fn = (id: string, code: string) => new lambda.Function(plugins, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline(code),
    memorySize: 128,
    timeout: Duration.seconds(30),
  });
  for (const activityName of ACTIVITIES) {
    const activity = orchestrator.activity(activityName);
    const add = (stage: ActivityStage, name: string, code = INSTANT) => activity.addPlugin(fn(`${activityName}-${name}`, code), { stage, pluginName: name });
    PLUGINS.pre.forEach((name) => add(ActivityStage.PRE, name));
    PLUGINS.async.forEach((name) => add(ActivityStage.PARALLEL, name, name === FAILING.plugin ? CHECK : INSTANT));
    PLUGINS.post.forEach((name) => add(ActivityStage.POST, name));
  }
  return { stack, orchestrator };
}

// ---------------------------------------------------------------------------------------------
// What each run must end in

interface Expected {
  readonly execution: ExecutionResult['status'];
  readonly error?: string;
  readonly run: string;
  readonly activities: Record<string, { state: string; stages: Record<string, string>; plugins: Record<string, string> }>;
}

function expectedFor(fails: boolean): Expected {
  const complete = (): Expected['activities'][string] => ({
    state: 'Complete',
    stages: { pre: 'Complete', async: 'Complete', post: 'Complete' },
    plugins: Object.fromEntries(Object.entries(PLUGINS).flatMap(([stage, names]) => names.map((n) => [`${stage}.${n}`, 'Complete']))),
  });
  if (!fails) return { execution: 'SUCCEEDED', run: 'Complete', activities: Object.fromEntries(ACTIVITIES.map((a) => [a, complete()])) };
  return {
    execution: 'FAILED',
    error: 'PluginFailed',
    run: 'Error',
    activities: {
      // The other parallel plugin may or may not have finished when the stage failed: not compared.
      [FAILING.activity]: { state: 'Error', stages: { pre: 'Complete', async: 'Error', post: 'Not Started' }, plugins: { 'pre.vet': 'Complete', [`async.${FAILING.plugin}`]: 'Error' } },
      [ACTIVITIES[1]]: { state: 'Not Started', stages: { pre: 'Not Started', async: 'Not Started', post: 'Not Started' }, plugins: {} },
    },
  };
}

/** Differences between a status item and what its run must end in (empty: correct). */
function compare(uid: string, doc: Record<string, any> | undefined, expected: Expected): string[] {
  if (!doc) return [`${uid}: no status item`];
  const problems: string[] = [];
  const check = (what: string, actual: unknown, wanted: unknown) => {
    if (actual !== wanted) problems.push(`${uid}: ${what} is ${JSON.stringify(actual)}, expected ${JSON.stringify(wanted)}`);
  };
  check('run state', doc.status?.state, expected.run);
  check('awaiting', doc.awaiting, undefined);
  for (const [name, activity] of Object.entries(expected.activities)) {
    const actual = doc.activities?.[name];
    check(`${name} state`, actual?.status?.state, activity.state);
    for (const [stage, state] of Object.entries(activity.stages)) check(`${name}.${stage} state`, actual?.[stage]?.status?.state, state);
    check(`${name}.async token`, actual?.async?.status?.token, undefined);
    for (const [key, state] of Object.entries(activity.plugins)) {
      const [stage, plugin] = key.split('.');
      check(`${name}.${stage}.${plugin}`, actual?.[stage]?.mandatory?.[plugin]?.state, state);
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Measuring

interface Figures {
  readonly runs: number;
  readonly seconds: number;
  readonly runsPerSecond: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
  readonly maxMs: number;
  readonly invocationsPerRun: number;
  readonly dynamodbPerRun: number;
  readonly publishesPerRun: number;
  /** Sandboxes started during the measurement (each a cold start: the handler's modules loaded). */
  readonly coldStarts: number;
  /** CPU per run, ms, from the first start until every effect settled (the status read-back excluded). */
  readonly cpu: RunCpu;
  /** The function code's CPU per run by orchestrator handler (the plugins together), biggest first. */
  readonly codeByHandler: readonly HandlerCpu[];
  readonly problems: string[];
}

interface HandlerCpu { readonly handler: string; readonly invocationsPerRun: number; readonly msPerRun: number }

/**
 * Function code CPU per run by orchestrator handler, from the engine's counters: which handler's
 * invocations the function code's share goes to. `handlers`: function name -> handler name; every
 * other function counts as a plugin.
 */
function codeByHandler(before: EngineCounters, after: EngineCounters, handlers: ReadonlyMap<string, string>, runs: number): HandlerCpu[] {
  const sums = new Map<string, { invocations: number; cpuMs: number }>();
  for (const [name, now] of Object.entries(after.functions)) {
    const handler = handlers.get(name) ?? 'plugins'; // the load's app has no other functions
    const sum = sums.get(handler) ?? { invocations: 0, cpuMs: 0 };
    sum.invocations += now.invocations - (before.functions[name]?.invocations ?? 0);
    sum.cpuMs += now.cpuMs - (before.functions[name]?.cpuMs ?? 0);
    sums.set(handler, sum);
  }
  return [...sums].filter(([, sum]) => sum.invocations > 0)
    .map(([handler, sum]) => ({ handler, invocationsPerRun: sum.invocations / runs, msPerRun: sum.cpuMs / runs }))
    .sort((a, b) => b.msPerRun - a.msPerRun);
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

async function measure(
  engine: LocalEngine, orchestratorFns: ReadonlyMap<string, string>, label: string, count: number, dynamodbPid?: number,
): Promise<Figures> {
  const invocations = (c: EngineCounters) => Object.entries(c.functions)
    .reduce((t, [name, f]) => t + (orchestratorFns.has(name) ? f.invocations : 0), 0);
  const dynamodb = (c: EngineCounters) => c.dynamodb.reads + c.dynamodb.writes + c.dynamodb.other;
  const coldStarts = (c: EngineCounters) => Object.values(c.functions).reduce((t, f) => t + f.coldStarts, 0);
  const before = engine.counters();
  const uids = Array.from({ length: count }, (_, i) => `${label}-${i}`);
  const fails = (i: number) => i % 10 === 9;
  const cpuBefore = cpuSample(before, dynamodbPid);
  const started = performance.now();
  const results = await Promise.all(uids.map((uid, i) => engine
    .runWorkflow(WORKFLOW, { uid, metadata: { workflow: WORKFLOW, fail: fails(i) } })
    .result()));
  // Every effect settled too (late outcomes, stream records): only then is the status final.
  await engine.idle(300_000);
  const seconds = (performance.now() - started) / 1000;
  const after = engine.counters();
  const cpu = cpuPerRun(after, cpuBefore, count);

  const problems: string[] = [];
  const latencies: number[] = [];
  for (const [i, result] of results.entries()) {
    const expected = expectedFor(fails(i));
    if (result.status !== expected.execution || result.error !== expected.error) {
      problems.push(`${uids[i]}: execution ${result.status} ${result.error ?? ''}, expected ${expected.execution} ${expected.error ?? ''}`);
    }
    latencies.push(result.stopDate!.getTime() - result.startDate.getTime());
  }
  // Every status item read back (consistent reads), a few at a time.
  for (let i = 0; i < uids.length; i += 50) {
    const docs = await Promise.all(uids.slice(i, i + 50).map((uid) => engine.statusDocument(uid, WORKFLOW)));
    docs.forEach((doc, j) => problems.push(...compare(uids[i + j], doc, expectedFor(fails(i + j)))));
  }
  latencies.sort((a, b) => a - b);
  return {
    runs: count,
    seconds,
    runsPerSecond: count / seconds,
    p50Ms: percentile(latencies, 50),
    p95Ms: percentile(latencies, 95),
    maxMs: latencies[latencies.length - 1],
    invocationsPerRun: (invocations(after) - invocations(before)) / count,
    dynamodbPerRun: (dynamodb(after) - dynamodb(before)) / count,
    publishesPerRun: (after.sns.publishes - before.sns.publishes) / count,
    coldStarts: coldStarts(after) - coldStarts(before),
    cpu,
    codeByHandler: codeByHandler(before, after, orchestratorFns, count),
    problems,
  };
}

function row(label: string, f: Figures): string {
  return `${label.padEnd(10)} ${String(f.runs).padStart(5)} runs ${f.seconds.toFixed(1).padStart(7)} s ${f.runsPerSecond.toFixed(2).padStart(7)} runs/s  `
    + `p50 ${String(f.p50Ms).padStart(6)} ms  p95 ${String(f.p95Ms).padStart(6)} ms  max ${String(f.maxMs).padStart(6)} ms  `
    + `${f.invocationsPerRun.toFixed(1)} invocations/run  ${f.dynamodbPerRun.toFixed(1)} DynamoDB requests/run  ${f.publishesPerRun.toFixed(1)} publishes/run  `
    + `${f.coldStarts} cold starts`;
}

async function main() {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '1000' }, baseline: { type: 'string', default: '10' }, small: { type: 'boolean', default: false } },
  });
  const runs = values.small ? 10 : Number(values.runs);
  const baselineRuns = values.small ? 2 : Number(values.baseline);
  const { stack, orchestrator } = buildApp();
  const workers = Number(process.env.LOAD_WORKERS ?? 8);
  // The script starts DynamoDB Local itself (with the engine's defaults) to read its process's CPU.
  const launchedAt = performance.now();
  const dynamoDb = await startDynamoDbLocal();
  const dynamoDbBootS = (performance.now() - launchedAt) / 1000;
  const engine = new LocalEngine({
    app: stack,
    dynamodbEndpoint: dynamoDb.endpoint,
    logs: process.env.LOAD_LOGS ? 'inherit' : 'silent',
    maxWorkersPerFunction: workers,
    asyncRetryDelaysMs: [1000, 2000],
  });
  const startedAt = performance.now();
  try {
    await engine.start();
    const prefix = `${orchestrator.node.path}/Handlers/`;
    // Orchestrator function name -> its handler's name (`SequentialStage`): the rest are plugins.
    const orchestratorFns = new Map(engine.assembly.functions
      .filter((f) => f.path?.startsWith(prefix)).map((f) => [f.name, f.path!.slice(prefix.length)]));
    console.log(`DynamoDB Local answered after ${dynamoDbBootS.toFixed(1)} s; the engine started in ${((performance.now() - startedAt) / 1000).toFixed(1)} s more; workflow ${WORKFLOW}: ${ACTIVITIES.join(' -> ')}, `
      + `each with pre ${PLUGINS.pre.length} + parallel ${PLUGINS.async.length} + post ${PLUGINS.post.length} plugins; every 10th run fails on purpose`);

    // Warm as many sandboxes as the baseline runs at once need, so its latency is that of warm runs
    // (cold starts are a Lambda cost too, but a once-per-sandbox one; the load pays its own).
    const firstWarmup = await measure(engine, orchestratorFns, 'warmup', baselineRuns, dynamoDb.pid);
    const baseline = await measure(engine, orchestratorFns, 'baseline', baselineRuns, dynamoDb.pid);
    console.log(row('baseline', baseline));
    // The load's own sandboxes warmed too (up to LOAD_WORKERS per function; as many runs at once as
    // fill them, at most the load's): its figures are those of warm runs. Their cold starts are
    // printed with the warm-up, about a quarter second of CPU each for an orchestrator handler.
    const warmupRuns = Math.min(runs, 2 * workers);
    const loadWarmup = await measure(engine, orchestratorFns, 'warmup-load', warmupRuns, dynamoDb.pid);
    console.log(row('warm-up', loadWarmup));
    const rssBefore = process.memoryUsage().rss;
    const load = await measure(engine, orchestratorFns, 'load', runs, dynamoDb.pid);
    console.log(row('load', load));
    console.log(`ratio load/baseline: throughput ${(load.runsPerSecond / baseline.runsPerSecond).toFixed(2)}x, `
      + `p50 latency ${(load.p50Ms / baseline.p50Ms).toFixed(1)}x, p95 latency ${(load.p95Ms / baseline.p95Ms).toFixed(1)}x, `
      + `invocations/run ${(load.invocationsPerRun / baseline.invocationsPerRun).toFixed(2)}x, DynamoDB/run ${(load.dynamodbPerRun / baseline.dynamodbPerRun).toFixed(2)}x`);
    console.log(cpuReport(load.cpu, runs, load.seconds));
    console.log(`function code per run by handler: ${load.codeByHandler
      .map((h) => `${h.handler} ${h.msPerRun.toFixed(1)} ms (${h.invocationsPerRun.toFixed(2)} x ${(h.msPerRun / h.invocationsPerRun).toFixed(2)} ms)`).join(', ')}`);
    console.log(`engine process RSS: ${(rssBefore / 2 ** 20).toFixed(0)} MB before the load, ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB after`);
    const phases = [firstWarmup, baseline, loadWarmup, load];
    const problems = phases.flatMap((phase) => phase.problems);
    console.log(`status items read back: ${phases.reduce((t, phase) => t + phase.runs, 0)}; wrong or lost: ${problems.length}`);
    for (const problem of problems.slice(0, 20)) console.log(`  ${problem}`);
    console.log(goalsReport(load, problems.length));
    console.log(`runs per second (${runs} concurrent): ${load.runsPerSecond.toFixed(2)}`);
    process.exitCode = problems.length ? 1 : 0;
  } finally {
    try {
      await engine.stop();
    } finally {
      await dynamoDb.stop();
    }
  }
}

/**
 * Where a run's CPU went, and the most runs/s that allows on this machine's cores: all of it (the
 * engine as it is), and the function code plus DynamoDB Local alone (the engine's main thread and
 * other threads left out; DynamoDB Local's share still holds the engine's stream reads).
 */
function cpuReport(cpu: RunCpu, runs: number, seconds: number): string {
  const cores = availableParallelism();
  const ms = (value: number) => `${value.toFixed(1)} ms`;
  const parts = `CPU per run: engine main thread ${ms(cpu.mainThread)}, function code in its sandboxes ${ms(cpu.functionCode)}, `
    + `other engine threads ${ms(cpu.otherThreads)} (${OTHER_THREADS}${otherThreadsParts(cpu, ms)})`;
  // Where /proc cannot be read (not Linux), there is no DynamoDB Local figure to divide by.
  if (Number.isNaN(cpu.dynamodbLocal)) return `${parts}; DynamoDB Local: not measured here`;
  const total = engineProcessMs(cpu) + cpu.dynamodbLocal;
  const work = cpu.functionCode + cpu.dynamodbLocal;
  return [
    `${parts}, DynamoDB Local ${ms(cpu.dynamodbLocal)} (with the engine's ${cpu.getRecords.toFixed(1)} stream reads): `
      + `${ms(total)} = at most ${((cores * 1000) / total).toFixed(1)} runs/s on ${cores} cores`,
    `without the engine's main and other threads: function code + DynamoDB Local = ${ms(work)} per run = at most `
      + `${((cores * 1000) / work).toFixed(1)} runs/s; these ${runs} runs would need at least ${((work * runs) / cores / 1000).toFixed(1)} s `
      + `(the load took ${seconds.toFixed(1)} s)`,
  ].join('\n');
}

/** The issue's load goals, for the sizes they are set at (10 and 1,000 runs at once). */
function goalsReport(load: Figures, wrongOrLost: number): string {
  const line = (met: boolean, goal: string, now: string) => goalLine(met, `${goal} (${now})`);
  const lines = ['Load goals:', line(wrongOrLost === 0, '0 statuses lost or wrong', `${wrongOrLost}`)];
  if (load.runs === 10) lines.push(line(load.p50Ms <= 500, 'p50 of one workflow run at 10 at once <= 0.5 s', `${(load.p50Ms / 1000).toFixed(2)} s`));
  if (load.runs === 1000) lines.push(line(load.p95Ms <= 30_000, 'p95 at 1,000 at once <= 30 s', `${(load.p95Ms / 1000).toFixed(1)} s`));
  return lines.join('\n');
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
