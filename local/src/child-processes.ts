/** Ending child processes: DynamoDB Local's JVM and Python sandboxes are killed, not asked to stop. */
import type { ChildProcess } from 'node:child_process';

/** Whether the process has exited (its `exit` event may still be on its way). */
export function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** Kills a process (SIGKILL) and resolves once it has exited, so what it held can be removed after. */
export function killAndWait(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (hasExited(child)) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}
