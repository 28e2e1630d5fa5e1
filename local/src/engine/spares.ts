/**
 * Sandboxes started ahead of need, not yet any function's: a Node.js worker thread (function-host.ts)
 * or a `python3` process that has imported botocore (python-host.ts). A cold start takes one and so
 * skips that start (about 40 ms for a worker, a quarter second for Python on 2 cores), which was
 * spent meanwhile, while the run waited on other work. The first cold start of a kind starts its
 * spares, so an engine that invokes no function starts none.
 *
 * A spare knows no function yet: the one it is given sends it its environment and code, and it then
 * does what a sandbox started for that function does. Whether a function may take one (what its
 * runtime reads only when it starts) is its host's decision.
 */

export interface SparesOptions<T, K> {
  /** Spares kept per kind. */
  readonly perKind: number;
  /** Starts a spare of this kind (a heap size, an interpreter). */
  readonly start: (kind: K) => T;
  /** Calls `gone` when the spare exits or fails before it is taken: it is then not handed out. */
  readonly onGone: (spare: T, gone: () => void) => void;
  /** Ends a spare that was not taken. */
  readonly end: (spare: T) => Promise<unknown> | void;
  /** Whether the spare still runs (its exit event may not have come yet): a dead one is not handed out. */
  readonly alive: (spare: T) => boolean;
}

/**
 * Whether an environment differs from a spare's in a variable read when a sandbox starts (named by
 * prefix): a function with such an environment gets a sandbox started with it, not a spare.
 */
export function differsAtStart(
  environment: Record<string, string>, spareEnvironment: Record<string, string>, readAtStart: readonly string[],
): boolean {
  const read = (name: string) => readAtStart.some((prefix) => name.startsWith(prefix));
  const names = new Set([...Object.keys(environment), ...Object.keys(spareEnvironment)].filter(read));
  return [...names].some((name) => environment[name] !== spareEnvironment[name]);
}

export class Spares<T, K = string> {
  private readonly idle = new Map<K, T[]>();
  private stopped = false;

  constructor(private readonly options: SparesOptions<T, K>) {}

  /** A live spare of this kind, if one is ready; it is the caller's from now on. */
  public take(kind: K): T | undefined {
    const spares = this.idle.get(kind) ?? [];
    for (let spare = spares.shift(); spare !== undefined; spare = spares.shift()) {
      if (this.options.alive(spare)) return spare;
    }
    return undefined;
  }

  /** Starts spares of this kind until there are enough (not after stop). */
  public refill(kind: K): void {
    let spares = this.idle.get(kind);
    if (!spares) this.idle.set(kind, spares = []);
    while (!this.stopped && spares.length < this.options.perKind) {
      const spare = this.options.start(kind);
      const list = spares;
      this.options.onGone(spare, () => {
        const at = list.indexOf(spare);
        if (at >= 0) list.splice(at, 1);
      });
      spares.push(spare);
    }
  }

  /** Ends the spares not taken; none are started after this. */
  public async stop(): Promise<void> {
    this.stopped = true;
    const spares = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(spares.map((spare) => this.options.end(spare)));
  }
}
