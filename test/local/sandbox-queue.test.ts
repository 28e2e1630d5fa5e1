/**
 * The order in which invocations waiting for a function's sandbox get one (sandbox-host.ts): the
 * oldest run first, a released sandbox handed to the next waiter, and no run more than
 * RUN_PRECEDENCE_MAX_MS ahead of later arrivals.
 *
 * And when invocations that wait start another sandbox, decided every `scaleOutDelayMs`: when the
 * busy ones ended nothing meanwhile, or a whole core's time idled.
 *
 * These are the tests of the queue without real sandboxes: the cap is a minute of the clock, which
 * only a fake clock (Jest's, which includes `performance.now()`) passes in a test, and whether a core
 * idled is the machine's, which a test cannot hold still while other test files run: the host below
 * runs nothing (an invocation ends when the test says) and reads CPU times the test gives it. What
 * real sandboxes do is checked with the engine: the order by run-order.test.ts, scaling out on busy
 * cores by sandbox-scale-out.test.ts.
 */
import type { LocalFunction } from '../../local/src/engine/assembly';
import { BUSY_LIMIT_FLOOR, RUN_PRECEDENCE_MAX_MS, Sandbox, SandboxHost, SandboxRequest } from '../../local/src/engine/sandbox-host';
import type { CpuTimes } from '../../local/src/engine/spare-cpu';

interface Call { readonly name: string; finished: boolean; finish(): void; crash(): void }

/**
 * A host (one sandbox unless told otherwise) whose invocations end when the test calls `finish` on
 * them; `sandboxesStarted` counts its cold starts.
 */
class ManualHost extends SandboxHost<Sandbox> {
  public readonly started: Call[] = [];
  public sandboxesStarted = 0;

  constructor(options: { maxWorkers?: number; scaleOutDelayMs?: number; cpuTimes?: () => CpuTimes } = {}) {
    const fn = { name: 'queue-test', arn: 'arn:aws:lambda:us-east-1:000000000000:function:queue-test', memoryMb: 128, timeoutSeconds: 900 } as LocalFunction;
    super({ fn, entry: { file: 'none', exportName: 'handler' }, environment: {}, maxWorkers: 1, onLog: () => undefined, ...options });
  }

  protected start(): Sandbox {
    this.sandboxesStarted++;
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
      crash: () => {
        call.finished = true;
        slot.pending?.(new Error('sandbox crashed'));
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

  /** Ends the named invocation's sandbox as a crash would (the host discards it). */
  public async crash(name: string): Promise<void> {
    const call = this.started.find((c) => c.name === name && !c.finished);
    if (!call) throw new Error(`${name} is not running`);
    call.crash();
    await flush();
  }

  /** Ends the named invocation. */
  public async finish(name: string): Promise<void> {
    const call = this.started.find((c) => c.name === name && !c.finished);
    if (!call) throw new Error(`${name} is not running`);
    call.finish();
    await flush();
  }
}

/** The machine's CPU times as a test sets them: `idleCores` idle all along the fake clock. */
function machine(idleCores: number): () => CpuTimes {
  const t0 = performance.now();
  return () => {
    const at = performance.now();
    return { idle: idleCores * (at - t0), at };
  };
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

describe('an invocation that waited for a sandbox', () => {
  beforeEach(() => jest.useFakeTimers());
  afterEach(() => jest.useRealTimers());

  /**
   * Two sandboxes busy (BUSY_LIMIT_FLOOR: the second started at the first decision, 100 ms after it
   * began to wait for the first), then three invocations wait, older runs first. 60 ms later `first`
   * ends and its sandbox goes to `old`; 40 ms after that comes the next decision.
   */
  async function waitersAfterAnEnd(idleCores: number) {
    const host = new ManualHost({ maxWorkers: 4, scaleOutDelayMs: 100, cpuTimes: machine(idleCores) });
    const now = performance.now();
    const done = [host.invoke({ name: 'first' }, now), host.invoke({ name: 'second' }, now)];
    await flush();
    expect(host.sandboxesStarted).toBe(1);
    jest.advanceTimersByTime(100);
    await flush();
    expect(host.names()).toEqual(['first', 'second']);
    done.push(host.invoke({ name: 'old' }, now - 30), host.invoke({ name: 'older' }, now - 20), host.invoke({ name: 'new' }, now));
    await flush();
    jest.advanceTimersByTime(60);
    await host.finish('first');
    expect(host.names()).toEqual(['first', 'second', 'old']);
    jest.advanceTimersByTime(40);
    await flush();
    return { host, done };
  }

  test(`waits on while its function keeps ending invocations and no whole core idles: no more than ${BUSY_LIMIT_FLOOR} sandboxes`, async () => {
    const { host, done } = await waitersAfterAnEnd(0.5);
    expect(host.sandboxesStarted).toBe(2);
    // And so at every decision while they keep ending: the next end hands a sandbox on, oldest run first.
    jest.advanceTimersByTime(50);
    await host.finish('old');
    expect(host.names()).toEqual(['first', 'second', 'old', 'older']);
    jest.advanceTimersByTime(50);
    await flush();
    expect(host.sandboxesStarted).toBe(2);
    await host.finish('second');
    expect(host.names()).toEqual(['first', 'second', 'old', 'older', 'new']);
    for (const name of ['older', 'new']) await host.finish(name);
    expect(host.sandboxesStarted).toBe(2);
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test('starts another sandbox for each core that idled meanwhile', async () => {
    // One core idled: one more sandbox now and, as long as it idles, at every decision.
    const { host, done } = await waitersAfterAnEnd(1);
    expect(host.sandboxesStarted).toBe(3);
    expect(host.names()).toEqual(['first', 'second', 'old', 'older']);
    jest.advanceTimersByTime(100);
    await flush();
    expect(host.sandboxesStarted).toBe(4);
    expect(host.names()).toEqual(['first', 'second', 'old', 'older', 'new']);
    for (const name of ['second', 'old', 'older', 'new']) await host.finish(name);
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test('starts another sandbox when the busy ones ended nothing meanwhile (they sleep, or wait on this function), however busy the cores', async () => {
    const host = new ManualHost({ maxWorkers: 4, scaleOutDelayMs: 100, cpuTimes: machine(0) });
    const now = performance.now();
    const done = [host.invoke({ name: 'sleeping' }, now), host.invoke({ name: 'sleeping too' }, now)];
    await flush();
    jest.advanceTimersByTime(100);
    await flush();
    expect(host.sandboxesStarted).toBe(2);
    done.push(host.invoke({ name: 'waiting' }, now));
    jest.advanceTimersByTime(99);
    await flush();
    expect(host.sandboxesStarted).toBe(2);
    jest.advanceTimersByTime(1);
    await flush();
    expect(host.sandboxesStarted).toBe(3);
    expect(host.names()).toEqual(['sleeping', 'sleeping too', 'waiting']);
    for (const name of ['waiting', 'sleeping', 'sleeping too']) await host.finish(name);
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test('with one sandbox at most (reserved concurrency 1), waiters of one run keep their order at every decision', async () => {
    const host = new ManualHost({ maxWorkers: 1, scaleOutDelayMs: 100, cpuTimes: machine(1) });
    const run = performance.now();
    const names = ['a', 'b', 'c', 'd', 'e'];
    const done = names.map((name) => host.invoke({ name }, run));
    await flush();
    for (const name of names) {
      // A decision between two ends, with a core idle: nothing can start, so nobody is woken.
      jest.advanceTimersByTime(100);
      await flush();
      await host.finish(name);
    }
    expect(host.names()).toEqual(names);
    expect(host.sandboxesStarted).toBe(1);
    expect((await Promise.all(done)).every((r) => r.ok)).toBe(true);
  });

  test('a sandbox discarded (crashed) makes room at once: the next waiter starts one without waiting for a decision', async () => {
    const host = new ManualHost({ maxWorkers: 2, scaleOutDelayMs: 100, cpuTimes: machine(0) });
    const now = performance.now();
    const done = [host.invoke({ name: 'crashing' }, now), host.invoke({ name: 'other' }, now)];
    await flush();
    jest.advanceTimersByTime(100);
    await flush();
    done.push(host.invoke({ name: 'next' }, now));
    await flush();
    expect(host.names()).toEqual(['crashing', 'other']);
    await host.crash('crashing');
    expect(host.names()).toEqual(['crashing', 'other', 'next']);
    expect(host.sandboxesStarted).toBe(3);
    for (const name of ['other', 'next']) await host.finish(name);
    const [crashed, ...rest] = await Promise.all(done);
    expect(crashed.ok).toBe(false);
    expect(rest.every((r) => r.ok)).toBe(true);
  });
});

