/**
 * The project's cache directory for what the engine keeps between runs (code caches of modules,
 * DynamoDB Local's class archive), as build tools keep theirs: `node_modules/.cache/cdk-orchestrator-local/<name>`
 * in the node_modules this package is installed in. What is kept there is code that is run, so a
 * directory is used only when this user owns it and nobody else may write to it: not on Windows,
 * which has no such bits to check.
 */
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, sep } from 'node:path';

/**
 * `node_modules/.cache/cdk-orchestrator-local/<name>` of the project this package is installed in
 * (`packageDir`: the first node_modules on its path, also with pnpm's node_modules/.pnpm/...; run
 * from source, the repository's), or undefined when there is none.
 */
export function projectCacheDirectory(name: string, packageDir = __dirname): string | undefined {
  const marker = `${sep}node_modules${sep}`;
  const at = packageDir.indexOf(marker);
  const nodeModules = at >= 0 ? packageDir.slice(0, at + marker.length - 1) : nearestNodeModules(packageDir);
  return nodeModules && join(nodeModules, '.cache', 'cdk-orchestrator-local', name);
}

function nearestNodeModules(from: string): string | undefined {
  for (let dir = from; ; dir = join(dir, '..')) {
    const candidate = join(dir, 'node_modules');
    try {
      if (statSync(candidate).isDirectory()) return candidate;
    } catch {
      // not here
    }
    if (join(dir, '..') === dir) return undefined;
  }
}

/**
 * Removes the entries of a cache directory that `pick` chooses (given each one's name and path). An
 * entry another process renamed or removed meanwhile, or that `pick` could not look at, is left; the
 * others are still checked. Nothing happens when the directory itself is gone.
 */
export function removeEntries(dir: string, pick: (name: string, path: string) => boolean): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const path = join(dir, name);
    try {
      if (pick(name, path)) rmSync(path, { recursive: true, force: true });
    } catch {
      // renamed or removed meanwhile by another process
    }
  }
}

/** The directory, created if need be, when this user owns it and nobody else may write to it. */
export function usableDirectory(dir: string | undefined): string | undefined {
  if (!dir) return undefined;
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const stat = statSync(dir);
    // eslint-disable-next-line no-bitwise -- permission bits: group and others may not write
    return stat.uid === process.getuid?.() && (stat.mode & 0o022) === 0 ? dir : undefined;
  } catch {
    return undefined; // read-only installation: work as without a cache
  }
}
