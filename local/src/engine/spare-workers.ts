/**
 * Worker threads started ahead of need, not yet any function's sandbox. A Node.js cold start takes one
 * (function-host.ts) and so skips the start of a worker thread: about 40 ms on 2 cores, spent
 * meanwhile, while the run waits on other work. The first cold start of a heap size starts its spares,
 * so an engine that invokes no function starts none.
 *
 * A spare has an empty environment and has loaded nothing but the worker script: the function it is
 * given then sees its own environment and loads its own modules, as in a worker started for it.
 */
import type { Worker } from 'node:worker_threads';

/** Spares kept per heap size: cold starts of a moment (a fan-out) rarely come more than two at a time on 2 cores. */
const SPARES_PER_HEAP_SIZE = 2;

export class SpareWorkers {
  private readonly idle = new Map<number, Worker[]>();
  private stopped = false;

  /** `spawn` starts a spare worker whose heap is limited to `heapMb`. */
  constructor(private readonly spawn: (heapMb: number) => Worker) {}

  /** A spare worker of this heap size, if one is ready; it is the caller's from now on. */
  public take(heapMb: number): Worker | undefined {
    return this.idle.get(heapMb)?.shift();
  }

  /** Starts spares of this heap size until there are enough (not after stop). */
  public refill(heapMb: number): void {
    if (this.stopped) return;
    let spares = this.idle.get(heapMb);
    if (!spares) this.idle.set(heapMb, spares = []);
    while (spares.length < SPARES_PER_HEAP_SIZE) {
      const worker = this.spawn(heapMb);
      const list = spares;
      // A spare that exits before it is taken is not handed out; its error has no one else to go to.
      worker.once('exit', () => {
        const at = list.indexOf(worker);
        if (at >= 0) list.splice(at, 1);
      });
      worker.on('error', () => undefined);
      worker.unref();
      spares.push(worker);
    }
  }

  /** Stops the spares not taken; none are started after this. */
  public async stop(): Promise<void> {
    this.stopped = true;
    const spares = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(spares.map((worker) => worker.terminate()));
  }
}
