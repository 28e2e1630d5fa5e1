/**
 * How the engine scales a function's sandboxes out: an invocation that finds every warm sandbox busy
 * waits up to `scaleOutDelayMs` for one to free up (a cold start costs far more CPU locally than a
 * short wait), then starts another, so invocations that take long still run concurrently; unless its
 * function kept ending invocations meanwhile on cores that were all in use, where it waits on. With
 * `scaleOutDelayMs: 0` it starts one at once, as Lambda does.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { ArnFormat, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import { inlineFunction, newStack, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';

const QUICK = 'exports.handler = async () => ({ at: Date.now() });';
const SLOW = 'exports.handler = async () => { const started = Date.now(); await new Promise((r) => setTimeout(r, 800)); return { started, ended: Date.now() }; };';

async function engineWith(options: { scaleOutDelayMs?: number }): Promise<{ engine: LocalEngine; quick: string; slow: string }> {
  const stack = newStack('ScaleOut');
  inlineFunction(stack, 'Quick', QUICK);
  inlineFunction(stack, 'Slow', SLOW);
  const engine = await startTestEngine(stack, options);
  const name = (id: string) => engine.assembly.functions.find((f) => f.path === `ScaleOut/${id}`)!.name;
  return { engine, quick: name('Quick'), slow: name('Slow') };
}

const coldStarts = (engine: LocalEngine, fn: string) => engine.counters().functions[fn].coldStarts;

/** 20 ms of CPU per invocation. */
const SPIN = 'exports.handler = async () => { const end = Date.now() + 20; while (Date.now() < end); return {}; };';

/** Invokes itself (synchronously, by its own name) `depth` levels deep. */
const SELF_INVOKING = `
const { LambdaClient, InvokeCommand } = require('@aws-sdk/client-lambda');
const client = new LambdaClient({});
exports.handler = async (event, context) => {
  if (!event.depth) return { leaf: true };
  const answer = await client.send(new InvokeCommand({ FunctionName: context.functionName, Payload: JSON.stringify({ depth: event.depth - 1 }) }));
  return JSON.parse(Buffer.from(answer.Payload).toString());
};`;

/**
 * Runs `work` while threads keep every core of this machine busy, as a load does: one more than it
 * has cores, so that a core idles only when the kernel leaves one so.
 */
async function whileCoresBusy<T>(work: () => Promise<T>): Promise<T> {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const spin = 'const flag = require("node:worker_threads").workerData; while (Atomics.load(flag, 0) === 0);';
  const threads = Array.from({ length: availableParallelism() + 1 }, () => new Worker(spin, { eval: true, workerData: flag }));
  try {
    return await work();
  } finally {
    Atomics.store(flag, 0, 1);
    await Promise.all(threads.map((t) => new Promise((resolve) => t.once('exit', resolve))));
  }
}

describe('scaling sandboxes out', () => {
  test('by default, quick concurrent invocations share the warm sandbox instead of starting new ones', async () => {
    const { engine, quick } = await engineWith({});
    try {
      expect((await engine.invoke(quick, {})).ok).toBe(true);
      const results = await Promise.all(Array.from({ length: 5 }, () => engine.invoke(quick, {})));
      expect(results.every((r) => r.ok)).toBe(true);
      // Each waited at most 100 ms for a sandbox that frees up in a few: one warm one serves them all
      // (two, should a slow machine stretch one invocation past the wait).
      expect(coldStarts(engine, quick)).toBeLessThanOrEqual(2);
    } finally {
      await engine.stop();
    }
  }, 60_000);

  test('by default, a long invocation gets company after the wait: both run at once', async () => {
    const { engine, slow } = await engineWith({});
    try {
      expect((await engine.invoke(slow, {})).ok).toBe(true);
      const [a, b] = (await Promise.all([engine.invoke(slow, {}), engine.invoke(slow, {})]))
        .map((r) => JSON.parse((r as { payload: string }).payload) as { started: number; ended: number });
      expect(coldStarts(engine, slow)).toBe(2);
      // The second started while the first still ran (it did not queue behind it).
      const [first, second] = [a, b].sort((x, y) => x.started - y.started);
      expect(second.started).toBeLessThan(first.ended);
    } finally {
      await engine.stop();
    }
  }, 60_000);

  test('scaleOutDelayMs: 0 starts a sandbox for every concurrent invocation at once, as Lambda does', async () => {
    const { engine, quick } = await engineWith({ scaleOutDelayMs: 0 });
    try {
      expect((await engine.invoke(quick, {})).ok).toBe(true);
      await Promise.all(Array.from({ length: 5 }, () => engine.invoke(quick, {})));
      expect(coldStarts(engine, quick)).toBe(5);
    } finally {
      await engine.stop();
    }
  }, 60_000);

  test('while every core is busy, invocations that keep ending wait for the warm sandbox instead of each starting one', async () => {
    const stack = newStack('ScaleOutBusy');
    inlineFunction(stack, 'Spin', SPIN);
    const engine = await startTestEngine(stack);
    const spin = engine.assembly.functions.find((f) => f.path === 'ScaleOutBusy/Spin')!.name;
    try {
      expect((await engine.invoke(spin, {})).ok).toBe(true);
      // Twelve at once: most wait longer than scaleOutDelayMs, while one ends every 20-40 ms.
      const results = await whileCoresBusy(() => Promise.all(Array.from({ length: 12 }, () => engine.invoke(spin, {}))));
      expect(results.every((r) => r.ok)).toBe(true);
      // Before, each of them started a sandbox once it had waited 100 ms: eight (maxWorkersPerFunction).
      expect(coldStarts(engine, spin)).toBeLessThanOrEqual(2);
    } finally {
      await engine.stop();
    }
  }, 60_000);

  test('while every core is busy, a long invocation still gets company: both run at once', async () => {
    const { engine, slow } = await engineWith({});
    try {
      expect((await engine.invoke(slow, {})).ok).toBe(true);
      const runs = (await whileCoresBusy(() => Promise.all([engine.invoke(slow, {}), engine.invoke(slow, {})])))
        .map((r) => JSON.parse((r as { payload: string }).payload) as { started: number; ended: number });
      expect(coldStarts(engine, slow)).toBe(2);
      const [first, second] = runs.sort((x, y) => x.started - y.started);
      expect(second.started).toBeLessThan(first.ended);
    } finally {
      await engine.stop();
    }
  }, 60_000);

  test('while every core is busy, a function that waits on its own invocations gets the sandboxes they need', async () => {
    const stack = newStack('ScaleOutSelf');
    const name = 'scale-out-self-invoking';
    const fn = inlineFunction(stack, 'SelfInvoking', SELF_INVOKING, { functionName: name });
    // By its name, not its ARN: a function's own ARN in its role's policy is a circular reference.
    fn.addToRolePolicy(new iam.PolicyStatement({
      actions: ['lambda:InvokeFunction'],
      resources: [Stack.of(stack).formatArn({ service: 'lambda', resource: 'function', resourceName: name, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
    }));
    const engine = await startTestEngine(stack);
    try {
      expect((await engine.invoke(name, { depth: 0 })).ok).toBe(true);
      // Four at once, each waiting on another invocation of the same function: every busy sandbox
      // waits, and nothing ends until one more starts.
      const results = await whileCoresBusy(() => Promise.all(Array.from({ length: 4 }, () => engine.invoke(name, { depth: 1 }))));
      expect(results.map((r) => r.ok && JSON.parse(r.payload))).toEqual(Array(4).fill({ leaf: true }));
    } finally {
      await engine.stop();
    }
  }, 60_000);
});

