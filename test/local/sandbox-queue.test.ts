/**
 * The order in which invocations waiting for a function's sandbox get one (sandbox-host.ts): the
 * oldest run first, a released sandbox handed to the next waiter, and no run more than
 * RUN_PRECEDENCE_MAX_MS ahead of later arrivals.
 *
 * This is the one test of the queue without real sandboxes: the cap is a minute of the clock, which
 * only a fake clock (Jest's, which includes `performance.now()`) passes in a test. The host below
 * runs nothing; an invocation ends when the test says. What real sandboxes do with the order is
 * checked by run-order.test.ts with the engine.
 */
import type { LocalFunction } from '../../local/src/engine/assembly';
import { RUN_PRECEDENCE_MAX_MS, Sandbox, SandboxHost, SandboxRequest } from '../../local/src/engine/sandbox-host';

interface Call { readonly name: string; finished: boolean; finish(): void }

/** A host of one sandbox whose invocations end when the test calls `finish` on them. */
class ManualHost extends SandboxHost<Sandbox> {
  public readonly started: Call[] = [];

  constructor() {
    const fn = { name: 'queue-test', arn: 'arn:aws:lambda:us-east-1:000000000000:function:queue-test', memoryMb: 128, timeoutSeconds: 900 } as LocalFunction;
    super({ fn, entry: { file: 'none', exportName: 'handler' }, environment: {}, maxWorkers: 1, onLog: () => undefined });
  }

  protected start(): Sandbox {
    return { busy: false };
  }

  protected send(slot: Sandbox, request: SandboxRequest): void {
    const call: Call = {
      name: String((request.event as { name: string }).name),
      finished: false,
      finish: () => {
        call.finished = true;
        slot.pending?.({ id: request.id, ok: true, payload: '{}', durationMs: 1 });
      },
    };
    this.started.push(call);
  }

  protected async terminate(): Promise<void> {}

  protected logStreamOf(): string {
    return 'manual';
  }

  /** Ends the invocation running now and lets the next one start. */
  public async finishCurrent(): Promise<void> {
    const current = this.started[this.started.length - 1];
    if (!current || current.finished) throw new Error('no invocation is running');
    current.finish();
    await flush();
  }

  public names(): string[] {
    return this.started.map((c) => c.name);
  }
}

/** Lets every pending promise continuation run (fake timers do not stop microtasks). */
async function flush() {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

describe('invocations waiting for a sandbox', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  test('go oldest run first, then in arrival order', async () => {
    const host = new ManualHost();
    const now = performance.now();
    const done = [
      host.invoke({ name: 'running' }, now),
      host.invoke({ name: 'new run' }, now + 300),
      host.invoke({ name: 'old run' }, now + 100),
      host.invoke({ name: 'old run, later call' }, now + 100),
    ];
    await flush();
    expect(host.names()).toEqual(['running']);
    await host.finishCurrent();
    expect(host.names()).toEqual(['running', 'old run']);
    done.push(host.invoke({ name: 'oldest run, arriving last' }, now - 1000));
    for (let i = 0; i < 3; i++) await host.finishCurrent();
    expect(host.names()).toEqual(['running', 'old run', 'oldest run, arriving last', 'old run, later call', 'new run']);
    await host.finishCurrent();
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test('a released sandbox goes to the next waiter, not to an invocation arriving before that waiter resumes', async () => {
    const host = new ManualHost();
    const now = performance.now();
    const done = [host.invoke({ name: 'running' }, now), host.invoke({ name: 'waiting' }, now)];
    await flush();
    host.started[0].finish();
    // One turn: the host has released the sandbox (its invocation went on), the waiter has not resumed yet.
    await Promise.resolve();
    done.push(host.invoke({ name: 'newcomer' }, now));
    await flush();
    expect(host.names()).toEqual(['running', 'waiting']);
    await host.finishCurrent();
    await host.finishCurrent();
    expect(host.names()).toEqual(['running', 'waiting', 'newcomer']);
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test(`a run goes ahead only of invocations that arrived less than ${RUN_PRECEDENCE_MAX_MS / 1000} s before`, async () => {
    const host = new ManualHost();
    const t0 = performance.now();
    const done = [host.invoke({ name: 'running' }, t0), host.invoke({ name: 'waiting since t0' }, t0)];
    await flush();
    // An older run's call arriving within the minute goes first ...
    jest.advanceTimersByTime(RUN_PRECEDENCE_MAX_MS - 1000);
    done.push(host.invoke({ name: 'older run, within the minute' }, t0 - 5000));
    // ... one arriving after it does not, however old its run.
    jest.advanceTimersByTime(2000);
    done.push(host.invoke({ name: 'older run, after the minute' }, t0 - 5000));
    await flush();
    for (let i = 0; i < 3; i++) await host.finishCurrent();
    expect(host.names()).toEqual(['running', 'older run, within the minute', 'waiting since t0', 'older run, after the minute']);
    await host.finishCurrent();
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });
});
