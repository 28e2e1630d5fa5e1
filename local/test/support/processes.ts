import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';

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

/** What a child process printed, and how it ended. */
export interface ChildOutcome { readonly code: number | null; readonly stdout: string; readonly stderr: string }

/**
 * Runs `args` (a script and its arguments, or `-e <code> ...`) in a fresh Node.js process that can
 * load this repository's TypeScript sources, as a user's process loads the package: its own module
 * cache, its own warnings. A child still running after `timeoutMs` is killed.
 */
export async function runTypeScriptChild(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 60_000): Promise<ChildOutcome> {
  const child = spawn(process.execPath, ['-r', require.resolve('ts-node/register/transpile-only'), ...args], {
    cwd: join(__dirname, '..', '..', '..'),
    env: {
      ...process.env,
      TS_NODE_COMPILER_OPTIONS: JSON.stringify({ module: 'commonjs', moduleResolution: 'node', ignoreDeprecations: '6.0' }),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: timeoutMs,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, stdout, stderr };
}
