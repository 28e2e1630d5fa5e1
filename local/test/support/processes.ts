import { execFileSync } from 'node:child_process';

/** Java processes that `pid` started (its direct children), by pid. */
export function javaChildren(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,comm=', '--ppid', String(pid)], { encoding: 'utf8' }).trim();
  return out.split('\n').filter((line) => /java/.test(line)).map((line) => Number(line.trim().split(/\s+/)[0]));
}
