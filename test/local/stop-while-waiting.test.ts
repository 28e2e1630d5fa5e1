/**
 * Stopping the engine while an invocation waits for a sandbox (its function's sandboxes all busy, at
 * their cap): the waiting invocation ends with an error at once, and no sandbox starts after the stop.
 */
import { eventually, inlineFunction, newStack, startTestEngine } from './support';

test('an invocation waiting for a sandbox when the engine stops fails with "engine stopped", and starts no sandbox', async () => {
  const stack = newStack('StopWhileWaiting');
  inlineFunction(stack, 'Slow', 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 1500)); return "done"; };');
  const engine = await startTestEngine(stack, { maxWorkersPerFunction: 1 });
  const coldStarts = () => Object.values(engine.counters().functions).reduce((t, f) => t + f.coldStarts, 0);
  const running = engine.invoke('StopWhileWaiting/Slow', {});
  await eventually(() => coldStarts() === 1, 10_000, 'the first invocation to start');
  const waiting = engine.invoke('StopWhileWaiting/Slow', {});
  const waitingOutcome = waiting.then((r) => ({ answered: r }), (e: Error) => ({ failed: e.message }));
  await new Promise((r) => setTimeout(r, 150)); // past the scale-out wait: it waits for the one sandbox
  const stoppedAt = Date.now();
  await engine.stop();
  expect(await waitingOutcome).toEqual({ failed: expect.stringMatching(/engine stopped/) });
  expect(Date.now() - stoppedAt).toBeLessThan(1000);
  const first = await running;
  expect(first.ok).toBe(false); // its sandbox was stopped under it
  expect(coldStarts()).toBe(1);
}, 30_000);
