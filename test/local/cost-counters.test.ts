/**
 * The engine counters the cost benchmark (scripts/bench.ts) reads besides invocations and billed
 * time: how long a function waited on the clock (`timerWaitMs`: sleeps, backoffs, registration
 * windows), how long function code was blocked on synchronous Lambda `Invoke` calls (`lambdaApi`),
 * and the CPU its sandbox thread spent in each invocation (`cpuMs`, the kernel's per-thread figure).
 */
import { inlineFunction, newStack } from './support';
import { LocalEngine } from '../../local/src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../support/dynamodb-endpoint';

const SLEEPS = 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 300)); return {}; };';
const SLEEPS_WITH_PROMISES = 'const { setTimeout: sleep } = require("node:timers/promises");\n'
  + 'exports.handler = async () => { await Promise.all([sleep(200), sleep(150)]); return {}; };';
const WORKS = 'exports.handler = async () => { setTimeout(() => {}, 0); let x = 0; for (let i = 0; i < 1e5; i++) x += i; return { x }; };';
// A fixed amount of work (not a wall-clock spin: on a busy machine a thread waits for a core at times,
// and that is not its CPU). It reports its own thread's CPU for the loop, as the kernel counts it.
const SPINS = 'const { readFileSync } = require("node:fs");\n'
  + 'const cpu = () => Number(readFileSync("/proc/thread-self/schedstat", "latin1").split(" ")[0]) / 1e6;\n'
  + 'exports.handler = async () => { const c0 = cpu(); let n = 0; for (let i = 0; i < 5e7; i++) n += i % 7; return { n, loopCpuMs: cpu() - c0 }; };';
const CALLS = 'const { LambdaClient, InvokeCommand } = require("@aws-sdk/client-lambda");\n'
  + 'exports.handler = async (event) => { const out = await new LambdaClient({}).send(new InvokeCommand({ FunctionName: event.target, Payload: "{}" }));'
  + ' return { status: out.StatusCode }; };';

describe('clock waits and synchronous invocations', () => {
  let engine: LocalEngine;
  const names: Record<string, string> = {};

  beforeAll(async () => {
    const stack = newStack('Counters');
    const fns = {
      sleeps: inlineFunction(stack, 'Sleeps', SLEEPS),
      promises: inlineFunction(stack, 'Promises', SLEEPS_WITH_PROMISES),
      works: inlineFunction(stack, 'Works', WORKS),
      calls: inlineFunction(stack, 'Calls', CALLS),
      spins: inlineFunction(stack, 'Spins', SPINS),
    };
    // Calls invokes whichever function the event names: it needs the right to, as on AWS.
    fns.sleeps.grantInvoke(fns.calls);
    engine = new LocalEngine({ app: stack, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT] });
    await engine.start();
    for (const [key, fn] of Object.entries(fns)) names[key] = engine.assembly.functions.find((f) => f.path === `Counters/${fn.node.id}`)!.name;
  }, 60_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('a sleep is a clock wait; overlapping sleeps count once; work and 0 ms deferrals are not', async () => {
    for (const key of ['sleeps', 'promises', 'works']) expect((await engine.invoke(names[key], {})).ok).toBe(true);
    const { functions } = engine.counters();
    expect(functions[names.sleeps].timerWaitMs).toBeGreaterThanOrEqual(290);
    expect(functions[names.sleeps].timerWaitMs).toBeLessThanOrEqual(functions[names.sleeps].billedMs);
    expect(functions[names.promises].timerWaitMs).toBeGreaterThanOrEqual(190);
    expect(functions[names.promises].timerWaitMs).toBeLessThan(340);
    expect(functions[names.works].timerWaitMs).toBe(0);
  });

  test('CPU per invocation: a computing invocation counts its thread\'s CPU, a 300 ms sleep next to nothing', async () => {
    const cpuOf = (key: string) => engine.counters().functions[names[key]]?.cpuMs ?? 0;
    const before = { spins: cpuOf('spins'), sleeps: cpuOf('sleeps') };
    const totalBefore = engine.counters().totals.cpuMs;
    const spun = await engine.invoke(names.spins, {});
    expect(spun.ok).toBe(true);
    expect((await engine.invoke(names.sleeps, {})).ok).toBe(true);
    const { loopCpuMs } = JSON.parse(spun.ok ? spun.payload : '{}') as { loopCpuMs: number };
    const spent = { spins: cpuOf('spins') - before.spins, sleeps: cpuOf('sleeps') - before.sleeps };
    expect(loopCpuMs).toBeGreaterThan(10);
    // The invocation's CPU is the loop's and a little more (the handler's call and its answer).
    expect(spent.spins).toBeGreaterThanOrEqual(loopCpuMs);
    expect(spent.spins).toBeLessThan(loopCpuMs + 50);
    expect(spent.sleeps).toBeLessThan(Math.min(50, loopCpuMs));
    // The totals add every function's CPU up.
    expect(engine.counters().totals.cpuMs - totalBefore).toBeCloseTo(spent.spins + spent.sleeps, 6);
  });

  test('a synchronous Invoke from function code counts, with the time its caller waited', async () => {
    const before = engine.counters().lambdaApi;
    const result = await engine.invoke(names.calls, { target: names.sleeps });
    expect(result.ok && JSON.parse(result.payload)).toEqual({ status: 200 });
    const after = engine.counters().lambdaApi;
    expect(after.syncInvocations - before.syncInvocations).toBe(1);
    expect(after.syncWaitMs - before.syncWaitMs).toBeGreaterThanOrEqual(290);
    // The caller was blocked, not sleeping: its own clock wait is 0.
    expect(engine.counters().functions[names.calls].timerWaitMs).toBe(0);
  });
});
