/**
 * The `plugins` option: local code for functions, keyed by construct path (or a prefix of it),
 * `<stack>/<logicalId>`, logical id or function name; values are `./module.ts#export` (or `.py`)
 * relative to a base directory. Pure matching, shared by the engine and the CLI's pre-flight.
 */
import type { LocalFunction } from './assembly';

/** Whether a `plugins` key names this function. */
export function pluginKeyMatches(key: string, fn: LocalFunction): boolean {
  return key === fn.name || key === fn.logicalId || key === `${fn.stackName}/${fn.logicalId}`
    || (fn.path !== undefined && (fn.path === key || fn.path.startsWith(`${key}/`)));
}

/** The module a function is mapped to, if any. */
export function pluginModuleFor(plugins: Record<string, string> | undefined, fn: LocalFunction): string | undefined {
  return Object.entries(plugins ?? {}).find(([key]) => pluginKeyMatches(key, fn))?.[1];
}

/** Keys that name no function of the assembly (a typo would otherwise run the synthesized code silently). */
export function unmatchedPluginKeys(plugins: Record<string, string>, functions: readonly LocalFunction[]): string[] {
  return Object.keys(plugins).filter((key) => !functions.some((fn) => pluginKeyMatches(key, fn)));
}

/** The label users see for a function: its construct path, else `<stack>/<logicalId>`. */
export function functionLabel(fn: LocalFunction): string {
  return fn.path ?? `${fn.stackName}/${fn.logicalId}`;
}

/** Runtimes the engine runs itself; others need a `plugins` mapping. */
export function runtimeSupported(fn: LocalFunction): boolean {
  return fn.runtime.startsWith('nodejs') || fn.runtime.startsWith('python');
}

/** Functions the engine cannot run: another runtime or a container image, and no mapping. */
export function unrunnableFunctions(plugins: Record<string, string> | undefined, functions: readonly LocalFunction[]): string[] {
  return functions
    .filter((fn) => !runtimeSupported(fn) && pluginModuleFor(plugins, fn) === undefined)
    .map((fn) => `Function ${functionLabel(fn)} (${fn.name}) runs ${fn.runtime === 'unknown' ? 'a container image or no runtime' : fn.runtime}, `
      + `which the local engine does not run: map it to local code with --plugins, e.g. { "${functionLabel(fn)}": "./plugins/x.ts#handler" }`);
}
