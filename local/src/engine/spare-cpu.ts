/**
 * Whether the machine has CPU to spare: the share of all cores' time spent idle between two
 * moments, from the kernel's per-core counters (`os.cpus()`, every platform Node.js runs on). The
 * sandbox hosts ask it before they start one more sandbox of a function whose invocations keep
 * going: another sandbox makes them faster only where a core would otherwise idle.
 */
import { cpus } from 'node:os';

/** All cores' idle and total time at one moment, ms. */
export interface CpuTimes { readonly idle: number; readonly total: number }

/** A reading is reused this long: many waiting invocations ask at about the same moment. */
const READING_REUSED_MS = 20;

let last: { at: number; times: CpuTimes } | undefined;

/** All cores' idle and total time now (a reading at most READING_REUSED_MS old). */
export function cpuTimes(): CpuTimes {
  const now = performance.now();
  if (last && now - last.at < READING_REUSED_MS) return last.times;
  let idle = 0;
  let total = 0;
  for (const { times } of cpus()) {
    idle += times.idle;
    total += times.user + times.nice + times.sys + times.idle + times.irq;
  }
  last = { at: now, times: { idle, total } };
  return last.times;
}

/** The share of the cores' time spent idle between two readings (0 to 1; 1 when no time passed between them). */
export function idleShare(before: CpuTimes, after: CpuTimes): number {
  const total = after.total - before.total;
  return total > 0 ? (after.idle - before.idle) / total : 1;
}
