/**
 * Whether the machine has CPU to spare: how many cores idled between two moments, from the kernel's
 * per-core counters (`os.cpus()`, every platform Node.js runs on). The sandbox hosts ask it before
 * more sandboxes of a function whose invocations keep going run at once: another one makes them
 * faster only where a core would otherwise idle.
 */
import { cpus } from 'node:os';

/** All cores' idle time (ms) at one moment (`performance.now()`). */
export interface CpuTimes { readonly idle: number; readonly at: number }

/** All cores' idle time now. */
export function cpuTimes(): CpuTimes {
  let idle = 0;
  for (const { times } of cpus()) idle += times.idle;
  return { idle, at: performance.now() };
}

/** How many cores idled, on average, between two readings (0 when no time passed between them). */
export function idleCores(before: CpuTimes, after: CpuTimes): number {
  const elapsedMs = after.at - before.at;
  return elapsedMs > 0 ? (after.idle - before.idle) / elapsedMs : 0;
}
