/**
 * How the engine scales a function's sandboxes out: an invocation that finds every warm sandbox busy
 * waits up to `scaleOutDelayMs` for one to free up (a cold start costs far more CPU locally than a
 * short wait), then starts another, so invocations that take long still run concurrently. With
 * `scaleOutDelayMs: 0` it starts one at once, as Lambda does.
 */
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
});
