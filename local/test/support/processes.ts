import { execFileSync } from 'node:child_process';

/** Java processes that `pid` started (its direct children), by pid. */
export function javaChildren(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out.split('\n').filter((line) => /java/.test(line)).map((line) => Number(line.trim().split(/\s+/)[0]));
}

/** Whether a process with this pid exists (signal 0 checks without sending one). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
