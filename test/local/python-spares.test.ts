/**
 * Python cold starts take a `python3` process started ahead of need (a spare: the bootstrap has
 * imported botocore and waits for its function) when the function's environment allows: the process
 * it becomes must be the one a process started for the function would be.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { eventually, invokeForAnswer, newStack, setForTestFile, startTestEngine } from './support';
import { LocalEngine } from '../../local/src';
import { isAlive } from '../../local/test/support/processes';

// \`spare\`: the bootstrap's own state (the engine's, not Lambda's) says whether it started as a spare.
const REPORTER = `
import os, sys, time
calls = 0
def handler(event, context):
    global calls
    calls += 1
    return {'env': dict(os.environ), 'cwd': os.getcwd(), 'path': sys.path, 'spare': sys.modules['__main__'].started_as_spare,
            'argv': sys.argv[1:], 'bootstrap': sys.argv[0], 'flags': repr(sys.flags), 'encoding': sys.stdout.encoding, 'pid': os.getpid(),
            'zone': time.strftime('%Z', time.localtime(0)), 'calls': calls, 'remaining': context.get_remaining_time_in_millis() > 0}
`;

interface Report {
  env: Record<string, string>;
  cwd: string;
  path: string[];
  spare: boolean;
  argv: string[];
  bootstrap: string;
  flags: string;
  encoding: string;
  pid: number;
  zone: string;
  calls: number;
  remaining: boolean;
}

let engine: LocalEngine;
const ENGINE_ONLY = 'CDK_ORCHESTRATOR_PYTHON_SPARE_TEST_ENGINE_ONLY';
// The engine's own process environment is not a function's (set while spares start, too).
setForTestFile(ENGINE_ONLY);

beforeAll(async () => {
  const stack = newStack('PySpares');
  const fn = (id: string, environment: Record<string, string>) => new lambda.Function(stack, id, {
    runtime: lambda.Runtime.PYTHON_3_12, handler: 'index.handler', code: lambda.Code.fromInline(REPORTER), timeout: Duration.seconds(10), environment,
  });
  fn('First', { WHO: 'first' });
  fn('Second', { WHO: 'second', TZ: 'Asia/Tokyo' });
  fn('WithPath', { WHO: 'withpath', PYTHONPATH: '/opt/python-spare-test' });
  engine = await startTestEngine(stack);
}, 60_000);

afterAll(() => engine?.stop());

const invoke = (id: string) => invokeForAnswer<Report>(engine, `PySpares/${id}`);

test('a Python process started as a spare has its function\'s environment, directory, time zone and module state', async () => {
  const first = await invoke('First'); // starts the spare
  const second = await invoke('Second');
  const withPath = await invoke('WithPath');
  expect({ first: first.spare, second: second.spare, withPath: withPath.spare }).toEqual({ first: false, second: true, withPath: false });
  for (const [report, who] of [[first, 'first'], [second, 'second'], [withPath, 'withpath']] as const) {
    expect(report.env.WHO).toBe(who);
    expect(report.env[ENGINE_ONLY]).toBeUndefined();
    expect(report.env.AWS_LAMBDA_FUNCTION_NAME).toBe(engine.assembly.functions.find((f) => f.path === `PySpares/${who === 'withpath' ? 'WithPath' : who[0].toUpperCase() + who.slice(1)}`)!.name);
    // Its code directory is the working directory and first on the module path, as for a process started for it.
    expect(report.path[0]).toBe(report.cwd);
    expect(report.argv).toEqual([join(report.cwd, 'index.py'), 'handler']);
    expect(report.flags).toBe(first.flags);
    expect(report.encoding).toBe(first.encoding);
    expect(report.env.LAMBDA_TASK_ROOT).toBe(report.cwd);
    expect(report.remaining).toBe(true);
  }
  // The same variables as the first function's (its own aside), which started without a spare.
  const names = (r: Report, own: string[]) => Object.keys(r.env).filter((n) => !own.includes(n)).sort();
  expect(names(second, ['TZ'])).toEqual(names(first, []));
  expect(second.path.slice(1)).toEqual(first.path.slice(1));
  expect(second.zone).toBe('JST'); // TZ applied after the spare became the function's process
  expect(first.zone).toBe('UTC');
  // Python reads PYTHONPATH only when it starts: that function got a process of its own, which has it.
  expect(withPath.env.PYTHONPATH).toBe('/opt/python-spare-test');
  // Warm now: module state is each process's own.
  expect((await invoke('Second')).calls).toBe(2);
  expect((await invoke('First')).calls).toBe(2);
}, 60_000);

test('the engine\'s stop ends its Python processes, the spare not taken too', async () => {
  const first = await invoke('First');
  const second = await invoke('Second');
  // This engine's processes run its bootstrap file; the one no function has is the spare.
  const processes = execFileSync('pgrep', ['-f', first.bootstrap], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  expect(processes).toEqual(expect.arrayContaining([first.pid, second.pid]));
  expect(processes.filter((pid) => pid !== first.pid && pid !== second.pid).length).toBeGreaterThanOrEqual(1);
  await engine.stop();
  await eventually(() => processes.every((pid) => !isAlive(pid)), 5_000, 'the processes to end');
}, 30_000);
