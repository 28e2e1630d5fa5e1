/**
 * Where Node.js sandboxes keep V8 code caches of the CommonJS modules they load, one file per module
 * file and source. Every sandbox, of every function, engine and process, loads the AWS SDK and the
 * handlers' other modules into an isolate of its own, and used to compile each of them again: a
 * sandbox that finds a module's cache skips most of that (function-worker.ts, compileWithCodeCache).
 * The first sandbox that runs a module without one writes it after its first invocation, so it holds
 * the functions that ran, not only the module's top level.
 *
 * The directory is the project's own cache directory (cache-directory.ts):
 * `node_modules/.cache/cdk-orchestrator-local/code-cache/<arch>-<V8 tag>`. `CDK_ORCHESTRATOR_LOCAL_CODE_CACHE`
 * names another directory, or turns the cache off with `off`. A cache is code: not on Windows, and only
 * from a directory this user owns and nobody else may write to.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { cachedDataVersionTag } from 'node:v8';
import { projectCacheDirectory, removeEntries, usableDirectory } from '../cache-directory';

/** Names the cache's directory, or `off`. */
export const CODE_CACHE_ENV = 'CDK_ORCHESTRATOR_LOCAL_CODE_CACHE';

/**
 * Caches kept at most: a module whose source changes gets a new one (edited plugins, inline code of
 * tests), so the directory is emptied when it holds more; it fills again with what is in use.
 */
const MAX_FILES = 4096;
/** Directories checked against MAX_FILES by this process (once each). */
const checkedForSize = new Set<string>();

/** The code cache directory (created if need be), or undefined when there is none. */
export function codeCacheDirectory(): string | undefined {
  const dir = usableDirectory(chosenDirectory());
  if (dir && !checkedForSize.has(dir)) {
    checkedForSize.add(dir);
    emptyIfFull(dir);
  }
  return dir;
}

/** Empties the directory when it holds more than MAX_FILES; removes what a stopped sandbox left half-written. */
function emptyIfFull(dir: string) {
  let full: boolean;
  try {
    full = readdirSync(dir).length > MAX_FILES;
  } catch {
    return; // gone meanwhile: nothing to empty
  }
  const staleBefore = Date.now() - 60_000;
  removeEntries(dir, (name, path) => full || (name.endsWith('.tmp') && statSync(path).mtimeMs < staleBefore));
}

/**
 * The system's temporary directory as module file names show it (symbolic links resolved), with a
 * trailing separator. Modules there are code written for one engine or test (inline code, bundled
 * plugins, an app synthesized there): a cache of theirs would not be used again.
 */
export function realTemporaryDirectory(): string {
  try {
    return realpathSync(tmpdir()) + sep;
  } catch {
    return tmpdir() + sep;
  }
}

/**
 * The directory caches would go in, for this package installed in `packageDir` (exported for tests):
 * the one named by CODE_CACHE_ENV, else the project's node_modules/.cache; undefined when off.
 */
export function chosenDirectory(
  packageDir = __dirname, environment: NodeJS.ProcessEnv = process.env, platform = process.platform,
): string | undefined {
  const named = environment[CODE_CACHE_ENV];
  // Windows has no owner and mode bits to check the directory by (usableDirectory).
  if (named === 'off' || platform === 'win32') return undefined;
  // V8's tag of its version, its flags and the CPU's features: a cache made under another is refused.
  const version = `${process.arch}-${cachedDataVersionTag()}`;
  if (named) return join(named, version);
  const projectDir = projectCacheDirectory('code-cache', packageDir);
  return projectDir && join(projectDir, version);
}
