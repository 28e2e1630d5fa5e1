/**
 * aws-local-stepfunctions validates a definition (asl-validator) each time a StateMachine is built:
 * about 100-300 ms a state machine, most of an engine's start. A definition that passed once passes
 * again, so passes are remembered by the definition's hash and the package's version — in memory
 * and in a file under the OS temp directory, so the next process (the next test file, the next CLI
 * run) starts without validating again. A definition that fails is never remembered.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

const passed = new Set<string>();

function cacheDir(): string {
  let user = 'user';
  try {
    user = userInfo().username;
  } catch {
    // no user name (some containers): one shared cache directory
  }
  return join(tmpdir(), `cdk-orchestrator-local-${user}`, 'validated-definitions');
}

function key(definition: unknown, validatorVersion: string): string {
  return createHash('sha256').update(validatorVersion).update('\0').update(JSON.stringify(definition)).digest('hex');
}

/** Whether this definition passed validation before (this process or an earlier one). */
export function wasValidated(definition: unknown, validatorVersion: string): boolean {
  const k = key(definition, validatorVersion);
  if (passed.has(k)) return true;
  if (existsSync(join(cacheDir(), k))) {
    passed.add(k);
    return true;
  }
  return false;
}

/** Remembers that this definition passed validation. */
export function rememberValidated(definition: unknown, validatorVersion: string): void {
  const k = key(definition, validatorVersion);
  passed.add(k);
  try {
    mkdirSync(cacheDir(), { recursive: true });
    writeFileSync(join(cacheDir(), k), '');
  } catch {
    // a read-only temp directory only costs the next process a validation
  }
}

/** The installed version of a package (part of the cache key: a new validator validates again). */
export function packageVersion(name: string): string {
  try {
    let dir = require.resolve(name);
    for (let i = 0; i < 6; i++) {
      dir = join(dir, '..');
      const file = join(dir, 'package.json');
      if (existsSync(file)) {
        const manifest = JSON.parse(readFileSync(file, 'utf8'));
        if (manifest.name === name) return String(manifest.version);
      }
    }
  } catch {
    // not resolvable: validate every time
  }
  return `unknown-${Date.now()}`;
}
