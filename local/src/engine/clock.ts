/**
 * The engine's clock: real time plus an offset that tests move forward with `advance(ms)`.
 * EventBridge schedules fire on it, and function code sees it (the workers' `Date` is shifted by the
 * same offset, see function-worker.ts), so a test can make a run "an hour old" without waiting an hour.
 * Time never goes back: there is no way to lower the offset.
 */

export interface EngineClockOptions {
  /**
   * Whether timers also fire as real time passes. Off, schedules fire only when a test advances the
   * clock, so a long test never sees a sweep it did not ask for. @default true
   */
  readonly realTimeTimers?: boolean;
}

export interface ClockTimer {
  readonly at: number;
  readonly fire: () => Promise<void> | void;
}

export class EngineClock {
  /** The offset in shared memory, read by the function workers' `Date` (function-worker.ts). */
  public readonly sharedOffset = new Float64Array(new SharedArrayBuffer(8));
  private offset = 0;
  private readonly timers = new Set<ClockTimer>();
  private realTimer?: NodeJS.Timeout;
  private firing: Promise<void> = Promise.resolve();

  constructor(private readonly options: EngineClockOptions = {}) {}

  /** Milliseconds since the epoch, on the engine's clock. */
  public now(): number {
    return Date.now() + this.offset;
  }

  /** How far the clock is ahead of real time (ms). */
  public get offsetMs(): number {
    return this.offset;
  }

  /**
   * Moves the clock forward by `ms` and fires, in time order, every timer that came due; resolves
   * when their callbacks have run (what they started, e.g. an asynchronous invocation, may still run:
   * `engine.idle()` waits for that).
   */
  public async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`EngineClock.advance: ms must be a finite number ≥ 0, got ${ms}`);
    this.offset += ms;
    this.sharedOffset[0] = this.offset;
    await this.fireDue();
  }

  /** Calls `fire` once the clock reaches `at` (ms since the epoch, engine time). */
  public at(at: number, fire: () => Promise<void> | void): ClockTimer {
    const timer = { at, fire };
    this.timers.add(timer);
    this.arm();
    return timer;
  }

  public cancel(timer: ClockTimer): void {
    this.timers.delete(timer);
    this.arm();
  }

  /** Drops every timer (the engine stops). */
  public stop(): void {
    this.timers.clear();
    if (this.realTimer) clearTimeout(this.realTimer);
    this.realTimer = undefined;
  }

  /** One real timer, for the earliest clock timer: real time moves the clock too. */
  private arm() {
    if (this.realTimer) clearTimeout(this.realTimer);
    this.realTimer = undefined;
    let next: number | undefined;
    for (const t of this.timers) next = next === undefined ? t.at : Math.min(next, t.at);
    if (next === undefined || this.options.realTimeTimers === false) return;
    // setTimeout takes at most 2^31-1 ms; a later timer re-arms when this one fires.
    const delay = Math.min(Math.max(0, next - this.now()), 2 ** 31 - 1);
    this.realTimer = setTimeout(() => void this.fireDue(), delay);
    this.realTimer.unref();
  }

  /** Fires due timers one at a time, earliest first; concurrent calls queue behind each other. */
  private fireDue(): Promise<void> {
    this.firing = this.firing.then(async () => {
      for (;;) {
        const due = [...this.timers].filter((t) => t.at <= this.now()).sort((a, b) => a.at - b.at)[0];
        if (!due) break;
        this.timers.delete(due);
        // A failing callback must not stop the timers after it (callers log their own failures).
        await Promise.resolve().then(due.fire).catch(() => undefined);
      }
      this.arm();
    });
    return this.firing;
  }
}
