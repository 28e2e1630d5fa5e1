/**
 * Loads aws-local-stepfunctions with three of its imports deferred until something uses them.
 *
 * Its CommonJS build requires them as it loads:
 * - asl-validator (about 85 ms of CPU). The engine validates a definition only when it has not
 *   passed before (validated-definitions.ts), so most starts never call it.
 * - the AWS SDK's Lambda client and credential providers (about 40 ms). They serve Lambda tasks the
 *   library runs itself, and the engine runs every Lambda task itself.
 *
 * Under Jest every test file loads the library again, so each paid that on every engine start.
 * Deferred, the library loads in under 10 ms. The first use of a deferred module loads it, so
 * nothing behaves differently. Everything else is required as usual, from the library's own
 * directory. The upstream fix would be lazy imports in aws-local-stepfunctions itself.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const LIBRARY = 'aws-local-stepfunctions';
const DEFERRED = new Set(['asl-validator', '@aws-sdk/client-lambda', '@aws-sdk/credential-providers']);

export interface StepFunctionsLibrary {
  readonly StateMachine: new (definition: unknown, options?: unknown) => any;
}

let loaded: StepFunctionsLibrary | undefined;

/** The library's exports, loaded once per module registry (each Jest test file has its own). */
export function stepFunctionsLibrary(): StepFunctionsLibrary {
  loaded ??= load();
  return loaded;
}

function load(): StepFunctionsLibrary {
  const file = require.resolve(LIBRARY);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  if (!file.endsWith('.cjs')) return require(LIBRARY); // not the build this was written for: load it as it is
  const requireFromLibrary = createRequire(file);
  const requireDeferring = (id: string) => (DEFERRED.has(id) ? deferred(() => requireFromLibrary(id)) : requireFromLibrary(id));
  const libraryModule = { exports: {} as StepFunctionsLibrary };
  // `new Function`, not `vm`: the code must run in the caller's realm (Jest's test context is not
  // Node's main one), so its objects and errors are the caller's. The source URL names it in stacks.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval, no-new-func
  const evaluate = new Function('exports', 'require', 'module', '__filename', '__dirname', `${readFileSync(file, 'utf8')}\n//# sourceURL=${file}`);
  evaluate(libraryModule.exports, requireDeferring, libraryModule, file, dirname(file));
  return libraryModule.exports;
}

/**
 * Stands in for a module until it is used: calling it (asl-validator exports a function) or reading
 * any of its properties (`LambdaClient`) loads the module. An arrow function as the target has no
 * `prototype` of its own, so the proxy may answer every property from the module.
 */
function deferred(loadModule: () => any): unknown {
  let exports: any;
  const real = () => (exports ??= loadModule());
  return new Proxy((...args: unknown[]) => real()(...args), {
    get: (_target, key) => real()[key],
    has: (_target, key) => key in real(),
  });
}
