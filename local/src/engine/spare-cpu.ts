/**
 * Whether the machine has CPU to spare: how many cores idled between two moments, from the kernel's
 * per-core counters (`os.cpus()`, every platform Node.js runs on). The sandbox hosts ask it before
 * more sandboxes of a function whose invocations keep going run at once: another one makes them
 * faster only where a core would otherwise idle.
 */
import { cpus } from 'node:os';

/** All cores' idle time (ms) at one moment (`performance.now()`). */
export interface CpuTimes { readonly idle: number; readonly at: number }

/** A reading is reused this long: many waiting invocations ask at about the same moment. */
const READING_REUSED_MS = 20;

let last: { at: number; times: CpuTimes } | undefined;

/** All cores' idle and total time now (a reading at most READING_REUSED_MS old). */
export function cpuTimes(): CpuTimes {
  const now = performance.now();
  if (last && now - last.at < READING_REUSED_MS) return last.times;
  let idle = 0;
  for (const { times } of cpus()) idle += times.idle;
  last = { at: now, times: { idle, at: now } };
  return last.times;
}

/** How many cores idled, on average, between two readings (0 when no time passed between them). */
export function idleCores(before: CpuTimes, after: CpuTimes): number {
  const elapsedMs = after.at - before.at;
  return elapsedMs > 0 ? (after.idle - before.idle) / elapsedMs : 0;
}
