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
 * Deferred, the library loads in about 10 ms. The first use of a deferred module loads it, so the
 * library behaves as before. What differs from a plain `require`: the library is not in Node's (or
 * Jest's) module cache, so `jest.mock('aws-local-stepfunctions')` does not reach the engine; its own
 * imports are still required through the caller's loader, mocks included.
 *
 * Only the build this was written for is loaded this way: one that requires the three modules in
 * the forms below. Any other build, or a process that forbids code from strings, gets a plain
 * `require`. The upstream fix would be lazy imports in aws-local-stepfunctions itself.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';

const LIBRARY = 'aws-local-stepfunctions';

/**
 * How the build requires each deferred module (esbuild's output), `%` standing for the `require`
 * call of that module: a stand-in serves each form.
 */
const DEFERRED_FORMS: Record<string, string> = {
  '@aws-sdk/client-lambda': 'var import_client_lambda = %;',
  '@aws-sdk/credential-providers': 'var import_credential_providers = %;',
  'asl-validator': 'var import_asl_validator = __toESM(%, 1);',
};

/** Whether the build requires every deferred module in the form above. */
function requiresInKnownForms(source: string): boolean {
  return Object.entries(DEFERRED_FORMS).every(([name, form]) => source.includes(form.replace('%', `require(${JSON.stringify(name)})`)));
}

// aws-local-stepfunctions 3.x uses Promise.withResolvers (Node >= 22); Node 20 needs this polyfill.
if (!(Promise as any).withResolvers) {
  (Promise as any).withResolvers = function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
    return { promise, resolve, reject };
  };
}

export interface StepFunctionsLibrary {
  readonly StateMachine: new (definition: unknown, options?: unknown) => any;
}

let loaded: StepFunctionsLibrary | undefined;

/** The library's exports, loaded once per module registry (each Jest test file has its own). */
export function stepFunctionsLibrary(): StepFunctionsLibrary {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loaded ??= loadDeferring() ?? require(LIBRARY);
  return loaded!;
}

/** The library with the deferred imports, or undefined when this build or process does not allow it. */
function loadDeferring(): StepFunctionsLibrary | undefined {
  const file = require.resolve(LIBRARY);
  const source = readFileSync(file, 'utf8');
  if (!requiresInKnownForms(source)) return undefined;
  let evaluate: (...args: unknown[]) => void;
  try {
    // Indirect eval, not `vm`: the code runs in the caller's realm (Jest's test context is not Node's
    // main one), so its objects and errors are the caller's. The wrapper shares the source's first
    // line, so stack traces give the file's own line numbers.
    // eslint-disable-next-line no-eval
    evaluate = (0, eval)(`(function (exports, require, module, __filename, __dirname) {${source}\n})\n//# sourceURL=${file}`);
  } catch (e) {
    if (e instanceof EvalError) return undefined; // --disallow-code-generation-from-strings
    throw e;
  }
  const requireFromLibrary = createRequire(file);
  const requireDeferring = Object.assign(
    (id: string) => (id in DEFERRED_FORMS ? deferred(() => requireFromLibrary(id)) : requireFromLibrary(id)),
    { resolve: requireFromLibrary.resolve, cache: requireFromLibrary.cache },
  );
  const libraryModule = { exports: {} as StepFunctionsLibrary };
  evaluate.call(libraryModule.exports, libraryModule.exports, requireDeferring, libraryModule, file, dirname(file));
  return libraryModule.exports;
}

/**
 * Stands in for a module until it is used: calling it (asl-validator exports a function) or reading
 * or testing any property (`LambdaClient`) loads the module. It has no own keys but `length` and
 * `name`, so esbuild's `__toESM` copies nothing at load, and it cannot be constructed: the build does
 * neither with these modules. The target is an arrow function because a `function` has a
 * non-configurable `prototype`, which a `has` trap may not deny.
 */
function deferred(loadModule: () => any): unknown {
  let exports: any;
  const real = () => (exports ??= loadModule());
  return new Proxy((...args: unknown[]) => real()(...args), {
    get: (_target, key) => real()[key],
    has: (_target, key) => key in real(),
  });
}
