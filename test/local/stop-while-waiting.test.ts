/**
 * Stopping the engine while an invocation waits for a sandbox (its function's sandboxes all busy, at
 * their cap): the waiting invocation ends with an error at once, and no sandbox starts after the stop.
 * Replacing the function's code meanwhile (UpdateFunctionCode) sends it to the new code instead, and
 * lets the invocation running finish on the old.
 */
import { LambdaClient, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { eventually, inlineFunction, newStack, outsideCallerConfig, startTestEngine } from './support';
import { zipPackage } from '../support/zip';

test('an invocation waiting for a sandbox when the engine stops fails with "engine stopped", and starts no sandbox', async () => {
  const stack = newStack('StopWhileWaiting');
  inlineFunction(stack, 'Slow', 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 1500)); return "done"; };');
  const engine = await startTestEngine(stack, { maxWorkersPerFunction: 1 });
  const coldStarts = () => Object.values(engine.counters().functions).reduce((t, f) => t + f.coldStarts, 0);
  const running = engine.invoke('StopWhileWaiting/Slow', {});
  await eventually(() => coldStarts() === 1, 10_000, 'the first invocation to start');
  const waiting = engine.invoke('StopWhileWaiting/Slow', {});
  const waitingOutcome = waiting.then((r) => ({ answered: r }), (e: Error) => ({ failed: e.message }));
  await new Promise((r) => setTimeout(r, 150)); // it waits: the one sandbox allowed is busy
  const stoppedAt = Date.now();
  await engine.stop();
  expect(await waitingOutcome).toEqual({ failed: expect.stringMatching(/engine stopped/) });
  expect(Date.now() - stoppedAt).toBeLessThan(1000);
  const first = await running;
  expect(first.ok).toBe(false); // its sandbox was stopped under it
  expect(coldStarts()).toBe(1);
}, 30_000);

test('when the function\'s code is replaced, the invocation running finishes on the old code, the one waiting runs the new, and the counters keep both', async () => {
  const stack = newStack('ReplacedWhileWaiting');
  inlineFunction(stack, 'Slow', 'exports.handler = async () => { await new Promise((r) => setTimeout(r, 1500)); return "old"; };', { functionName: 'replaced-while-waiting' });
  const engine = await startTestEngine(stack, { maxWorkersPerFunction: 1 });
  try {
    const coldStarts = () => Object.values(engine.counters().functions).reduce((t, f) => t + f.coldStarts, 0);
    const running = engine.invoke('replaced-while-waiting', {});
    await eventually(() => coldStarts() === 1, 10_000, 'the first invocation to start');
    const waiting = engine.invoke('replaced-while-waiting', {});
    await new Promise((r) => setTimeout(r, 150)); // it waits: the one sandbox allowed is busy
    const lambda = new LambdaClient(outsideCallerConfig(engine));
    try {
      await lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'replaced-while-waiting', ZipFile: zipPackage({ 'index.js': 'exports.handler = async () => "new";' }) }));
    } finally {
      lambda.destroy();
    }
    expect(await waiting).toMatchObject({ ok: true, payload: '"new"' });
    expect(await running).toMatchObject({ ok: true, payload: '"old"' }); // as Lambda lets it finish
    // The counters keep what the old code's sandbox did: both invocations, both cold starts.
    expect(engine.counters().functions['replaced-while-waiting']).toMatchObject({ invocations: 2, coldStarts: 2, errors: 0 });
    expect(engine.counters().totals.invocations).toBe(2);
  } finally {
    await engine.stop();
  }
  // And after the engine's stop.
  expect(engine.counters().functions['replaced-while-waiting']).toMatchObject({ invocations: 2, coldStarts: 2 });
}, 30_000);
