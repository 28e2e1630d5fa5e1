/**
 * Hosts Python Lambda functions locally (runtime `python3.x`): each warm "container" is one
 * `python3` process running a small bootstrap (below) that imports the handler module once and runs
 * invocations one at a time, as Lambda's Python runtime does. Same pool, limits and counters as the
 * Node.js host (function-host.ts): more concurrent invocations use more processes, up to a cap; a
 * timed-out invocation kills its process (the next one is a cold start).
 *
 * The interpreter is `/usr/bin/python3` when it exists (Debian's, which sees Debian's `python3-boto3`;
 * a `python3` first on PATH may be a build without it), else `python3`; `CDK_ORCHESTRATOR_LOCAL_PYTHON`
 * overrides it. boto3 is the function's own business (Lambda's Python runtimes include it): the
 * engine only points it at the local endpoint. botocore 1.31 and later read the engine's
 * `AWS_ENDPOINT_URL_<SERVICE>` variables themselves; older ones (Debian 12 ships 1.29) ignore them,
 * so the bootstrap gives every client created without an `endpoint_url` the one those variables name.
 */
import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve as resolvePath } from 'node:path';
import { Readable } from 'node:stream';
import { hasExited, killAndWait } from '../child-processes';
import type { LocalFunction } from './assembly';
import {
  FunctionHostOptions, forEachLine, HandlerEntry, runtimeBaseEnvironment, Sandbox, SandboxAnswer, SandboxHost, SandboxRequest,
} from './sandbox-host';
import { differsAtStart, Spares } from './spares';

/** The bootstrap every Python "container" runs: `python3 bootstrap.py <module file> <handler name>`. */
const BOOTSTRAP = String.raw`
import importlib.util, json, os, sys, time, traceback

def point_old_botocore_at_local_endpoint():
    try:
        import botocore, botocore.session
    except ImportError:
        return
    version = tuple(int(p) for p in botocore.__version__.split('.')[:2] if p.isdigit())
    if version >= (1, 31):
        return
    original = botocore.session.Session.create_client
    def create_client(self, service_name, *args, **kwargs):
        if len(args) < 5 and kwargs.get('endpoint_url') is None:
            key = 'AWS_ENDPOINT_URL_' + service_name.upper().replace('-', '_')
            url = os.environ.get(key) or os.environ.get('AWS_ENDPOINT_URL')
            if url:
                kwargs['endpoint_url'] = url
        return original(self, service_name, *args, **kwargs)
    botocore.session.Session.create_client = create_client

class Context:
    def __init__(self, c):
        self.aws_request_id = c['awsRequestId']
        self.function_name = c['functionName']
        self.function_version = c['functionVersion']
        self.invoked_function_arn = c['invokedFunctionArn']
        self.memory_limit_in_mb = c['memoryLimitInMB']
        self.log_group_name = c['logGroupName']
        self.log_stream_name = c['logStreamName']
        self._deadline_ms = c['deadlineMs']
    def get_remaining_time_in_millis(self):
        return max(0, int(self._deadline_ms - time.time() * 1000))

def error_of(e, error_type=None):
    return {'errorType': error_type or type(e).__name__, 'errorMessage': str(e),
            'trace': traceback.format_exception(type(e), e, e.__traceback__)}

results = os.fdopen(3, 'w')
def answer(message):
    results.write(json.dumps(message) + '\n')
    results.flush()

point_old_botocore_at_local_endpoint()
started_as_spare = sys.argv[1] == '--spare'  # the bootstrap's mode (the engine's tests read it too); the function sees the same argv either way
if started_as_spare:
    # Started ahead of need (botocore imported above): the first line names the function and its environment.
    assign = json.loads(sys.stdin.readline())['assign']
    # Python's start may have set LC_CTYPE (locale coercion, PEP 538), as in a process started for the function.
    coerced_locale = os.environ.get('LC_CTYPE')
    os.environ.clear()
    os.environ.update(assign['environment'])
    if coerced_locale is not None and 'LC_CTYPE' not in os.environ:
        os.environ['LC_CTYPE'] = coerced_locale
    time.tzset()
    module_file, handler_name = assign['file'], assign['exportName']
    sys.argv[1:] = [module_file, handler_name]
    try:
        os.chdir(os.path.dirname(module_file))
    except OSError:
        pass  # the module's import then reports it
else:
    module_file, handler_name = sys.argv[1], sys.argv[2]
handler, load_error = None, None
try:
    sys.path.insert(0, os.path.dirname(module_file))
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(module_file))[0], module_file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    handler = getattr(module, handler_name, None)
    if handler is None:
        load_error = {'errorType': 'Runtime.HandlerNotFound', 'errorMessage': 'Handler %r missing on module %r' % (handler_name, spec.name), 'trace': []}
except Exception as e:
    load_error = error_of(e, 'Runtime.ImportModuleError')

for line in sys.stdin:
    request = json.loads(line)
    started = time.time()
    if load_error is not None:
        answer({'id': request['id'], 'ok': False, 'error': load_error, 'durationMs': 0})
        continue
    try:
        result = handler(request['event'], Context(request['context']))
        payload = json.dumps(result)
        answer({'id': request['id'], 'ok': True, 'payload': payload, 'durationMs': (time.time() - started) * 1000})
    except Exception as e:
        answer({'id': request['id'], 'ok': False, 'error': error_of(e), 'durationMs': (time.time() - started) * 1000})
    sys.stdout.flush()
    sys.stderr.flush()
`;

interface PythonProcess extends Sandbox { child: ChildProcess }

/** The interpreter Python functions run on. */
export function pythonExecutable(): string {
  return process.env.CDK_ORCHESTRATOR_LOCAL_PYTHON ?? (existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3');
}

/** Whether a function runs on a Python runtime. */
export function isPythonFunction(fn: LocalFunction): boolean {
  return fn.runtime.startsWith('python');
}

/** Whether an entry is a Python module (so it runs on this host). */
export function isPythonEntry(entry: HandlerEntry): boolean {
  return entry.file.endsWith('.py');
}

/**
 * The module file of a Python function's `Handler` (`dir/module.function` or `package.module.function`):
 * in its code directory, or its inline code (`Code.ZipFile`, written to `index.py` as Lambda does).
 */
export function pythonHandlerEntry(fn: LocalFunction, tempRoot: string): HandlerEntry | undefined {
  const dot = fn.handler.lastIndexOf('.');
  if (dot <= 0) return undefined;
  const modulePath = fn.handler.slice(0, dot);
  const exportName = fn.handler.slice(dot + 1);
  if (fn.inlineCode !== undefined) {
    const dir = join(tempRoot, fn.name);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'index.py');
    writeFileSync(file, fn.inlineCode);
    return { file, exportName };
  }
  if (!fn.codeDir) return undefined;
  for (const candidate of [`${modulePath}.py`, `${modulePath.split('.').join('/')}.py`]) {
    const file = join(fn.codeDir, candidate);
    if (existsSync(file)) return { file, exportName };
  }
  return undefined;
}

/** A mapped local module `./plugins/rate.py#handler` (the plugins option). */
export function pythonModuleEntry(spec: string, baseDir: string): HandlerEntry {
  const [modulePath, exportName = 'handler'] = spec.split('#');
  const file = resolvePath(baseDir, modulePath);
  if (!existsSync(file)) throw new Error(`plugin module not found: ${file}`);
  return { file, exportName };
}

let bootstrapFile: string | undefined;

function bootstrap(tempRoot: string): string {
  if (!bootstrapFile || !existsSync(bootstrapFile)) {
    bootstrapFile = join(tempRoot, 'python-runtime', 'bootstrap.py');
    mkdirSync(dirname(bootstrapFile), { recursive: true });
    writeFileSync(bootstrapFile, BOOTSTRAP);
  }
  return bootstrapFile;
}

export interface PythonHostOptions extends FunctionHostOptions {
  /** Where the bootstrap is written. */
  readonly tempRoot: string;
  /** Processes started ahead of need: a cold start takes one when the function's environment allows. */
  readonly spares?: SparePythonProcesses;
}

/** What Python reads from its environment only when it starts, in a spare as in a process started for the function. */
const PYTHON_START_ENVIRONMENT = { PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } as const;

/**
 * What is read when a process starts or while the spare imports botocore, before it knows its
 * function: Python's own variables (PYTHONPATH, ...) and the locale, the dynamic loader's and glibc's,
 * OpenSSL's (`ssl` is imported with botocore), HOME (user site-packages, botocore's cache paths), PATH
 * (which `python3`), and botocore's import-time switches. By prefix.
 */
const READ_AT_START = ['PYTHON', 'LANG', 'LC_', 'LD_', 'GLIBC_', 'MALLOC_', 'OPENSSL_', 'SSL_CERT_', 'HOME', 'PATH', 'BOTO_', 'AWS_NEW_'];

/** `python3` processes started ahead of need, by interpreter: the bootstrap in spare mode has imported botocore. */
export type SparePythonProcesses = Spares<ChildProcess>;

/**
 * Spare Python processes: one per interpreter (Python plugins are few in a run, and each spare holds an
 * interpreter's memory). `tempRoot`: where the bootstrap is written.
 */
export function sparePythonProcesses(tempRoot: string): SparePythonProcesses {
  return new Spares<ChildProcess>({
    perKind: 1,
    start: (python) => spawnBootstrap(python, ['--spare'], tempRoot, spareEnvironment()),
    onGone: (child, gone) => child.once('exit', gone).on('error', gone),
    end: killAndWait,
    // Not one that has died (its exit event may still be on its way).
    alive: (child) => !hasExited(child),
  });
}

/** The environment a spare starts with: the runtime's base one and what every Python process gets. */
function spareEnvironment(): Record<string, string> {
  return { ...runtimeBaseEnvironment(), ...PYTHON_START_ENVIRONMENT };
}

function spawnBootstrap(python: string, args: string[], tempRoot: string, env: Record<string, string>, cwd?: string): ChildProcess {
  const child = spawn(python, ['-u', bootstrap(tempRoot), ...args], { cwd, env, stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
  // A write to a process that has just died fails (EPIPE); its exit reports it to the invocation.
  child.stdin?.on('error', () => undefined);
  child.unref();
  for (const stream of [child.stdin, child.stdout, child.stderr, child.stdio[3]]) (stream as { unref?: () => void } | null)?.unref?.();
  return child;
}

/** Python functions: each warm sandbox is one `python3` process running the bootstrap above. */
export class PythonFunctionHost extends SandboxHost<PythonProcess> {
  /** Every sandbox's environment, and whether a cold start may take a spare (both fixed for the host). */
  private readonly environment: Record<string, string>;
  private readonly takesSpare: boolean;

  constructor(protected readonly options: PythonHostOptions) {
    super(options);
    this.environment = {
      ...options.environment,
      LAMBDA_TASK_ROOT: options.environment.LAMBDA_TASK_ROOT || dirname(options.entry.file),
      // Unbuffered output; and the code directory may be the user's source directory: leave no __pycache__ there.
      ...PYTHON_START_ENVIRONMENT,
    };
    this.takesSpare = !differsAtStart(this.environment, spareEnvironment(), READ_AT_START);
  }

  protected start(): PythonProcess {
    const { entry, spares } = this.options;
    const environment = this.environment;
    const python = pythonExecutable();
    const spare = this.takesSpare ? spares?.take(python) : undefined;
    const child = spare ?? spawnBootstrap(python, [entry.file, entry.exportName], this.options.tempRoot, environment, dirname(entry.file));
    if (spare) child.stdin!.write(`${JSON.stringify({ assign: { environment, file: entry.file, exportName: entry.exportName } })}\n`);
    spares?.refill(python);
    const slot: PythonProcess = { child, busy: false };
    forEachLine(child.stdio[3] as Readable, (line) => {
      if (line === '') return;
      try {
        slot.pending?.(JSON.parse(line) as SandboxAnswer);
      } catch (e) {
        slot.pending?.(e as Error);
      }
    });
    for (const stream of [child.stdout!, child.stderr!]) forEachLine(stream, (line) => line !== '' && this.options.onLog(this.name, line));
    child.on('error', (e) => slot.pending?.(e));
    child.on('exit', (code, signal) => {
      slot.pending?.(new Error(`python exited with ${signal ?? `code ${code}`}`));
      this.forget(slot);
    });
    return slot;
  }

  protected send(slot: PythonProcess, request: SandboxRequest): void {
    slot.child.stdin!.write(`${JSON.stringify(request)}\n`);
  }

  protected terminate(slot: PythonProcess): Promise<void> {
    return killAndWait(slot.child);
  }

  protected logStreamOf(slot: PythonProcess): string {
    return `python-${slot.child.pid}`;
  }
}

