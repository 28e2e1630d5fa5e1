#!/usr/bin/env node
/**
 * cdk-orchestrator-local: runs one workflow of a synthesized app on the local engine.
 *
 *   cdk-orchestrator-local run --app cdk.out --workflow NAME --input JSON|@file.json
 *                              [--plugins map.json] [--ssm-parameter NAME=VALUE ...] [--report run.html] [--json] [--logs]
 *                              [--authorization enforce|off]
 *   cdk-orchestrator-local check [--app cdk.out] [--workflow NAME] [--input ...] [--plugins map.json] [--ssm-parameter NAME=VALUE ...]
 *
 * Exit codes: 0 the run succeeded (or check found nothing), 1 the run failed, 2 usage or
 * environment error (every problem is listed with its fix before anything starts).
 * Nothing is left running on any exit: the engine stops on SIGINT/SIGTERM, and DynamoDB Local has
 * a guard process that kills it if this process dies.
 */
import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { LocalEngine } from './engine/engine';
import type { ExecutionResult } from './engine/engine';
import { orchestratorShape } from './engine/shape';
import { formatEvent } from './engine/timeline';
import { preflight, Problem } from './preflight';
import { renderReport } from './report/report';

export const EXIT_SUCCEEDED = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface CliIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const USAGE = `usage:
  cdk-orchestrator-local run --app cdk.out --workflow NAME --input JSON|@file.json [--plugins map.json]
                             [--ssm-parameter NAME=VALUE ...] [--report run.html] [--json] [--logs] [--authorization enforce|off]
  cdk-orchestrator-local check [--app cdk.out] [--workflow NAME] [--input JSON|@file.json] [--plugins map.json]
                               [--ssm-parameter NAME=VALUE ...]

  --plugins  JSON file mapping functions (construct path, logical id or name) to local modules,
             relative to the file: { "PluginStack/RateFn": "./plugins/rate.ts#handler" }
  --ssm-parameter  the value of a Parameter Store parameter the app reads (a template parameter of
             type AWS::SSM::Parameter::Value<...>, or GetParameter at run time); repeat per parameter
  --report   write a self-contained HTML page of the run (timeline, status document, counters)
  --json     print one JSON document (result, status document, counters) instead of the timeline
  --authorization  enforce: every call is authorized from the templates' policies, as AWS would (needs the
             optional @cloud-copilot/iam-simulate); off: unlimited rights (default: enforce when installed)
Exit codes: 0 succeeded, 1 the run failed, 2 usage or environment error.
`;

const OPTIONS = {
  'app': { type: 'string', default: 'cdk.out' },
  'workflow': { type: 'string' },
  'input': { type: 'string' },
  'plugins': { type: 'string' },
  'ssm-parameter': { type: 'string', multiple: true },
  'report': { type: 'string' },
  'json': { type: 'boolean', default: false },
  'logs': { type: 'boolean', default: false },
  'authorization': { type: 'string' },
  'help': { type: 'boolean', short: 'h', default: false },
} as const;

export async function main(argv: string[], io: CliIo = processIo()): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (e) {
    io.err(`${(e as Error).message}\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const { values, positionals } = parsed;
  const command = positionals[0];
  if (values.help) {
    io.out(USAGE);
    return EXIT_SUCCEEDED;
  }
  if (command !== 'run' && command !== 'check') {
    io.err(`${command === undefined ? 'No command given' : `Unknown command "${command}"`}: use run or check\n\n${USAGE}`);
    return EXIT_USAGE;
  }
  const usage: Problem[] = [];
  if (command === 'run') {
    if (values.workflow === undefined) usage.push({ problem: '--workflow is missing', fix: 'Pass the workflow to run: --workflow NAME (`cdk-orchestrator-local check` lists them)' });
    if (values.authorization !== undefined && values.authorization !== 'enforce' && values.authorization !== 'off') {
      usage.push({ problem: `--authorization ${values.authorization} is not a mode`, fix: 'Pass --authorization enforce or --authorization off' });
    }
    if (values.input === undefined) usage.push({ problem: '--input is missing', fix: 'Pass the workflow input: --input \'{"uid":"app-1","metadata":{}}\' or --input @input.json' });
  }
  const checked = preflight({ app: values.app!, workflow: values.workflow, input: values.input, plugins: values.plugins, ssmParameters: values['ssm-parameter'] });
  const problems = [...usage, ...checked.problems];
  if (problems.length > 0) {
    io.err(`cdk-orchestrator-local ${command}: ${problems.length} problem${problems.length > 1 ? 's' : ''}, nothing was started\n`);
    for (const p of problems) io.err(`  ✗ ${p.problem}\n    fix: ${p.fix}\n`);
    return EXIT_USAGE;
  }
  if (command === 'check') {
    const shape = orchestratorShape(checked.assembly!);
    io.out(`ok: ${checked.assembly!.stacks.length} stacks, ${checked.assembly!.functions.length} functions; `
      + `workflows: ${Object.keys(shape.workflows).join(', ')}; activities: ${Object.keys(shape.activities).join(', ') || '(none)'}\n`);
    return EXIT_SUCCEEDED;
  }
  return run({
    app: resolve(values.app!),
    workflow: values.workflow!,
    input: checked.input!,
    plugins: checked.plugins,
    pluginsBaseDir: checked.pluginsBaseDir,
    ssmParameters: checked.ssmParameters,
    report: values.report,
    json: values.json!,
    logs: values.logs!,
    authorization: values.authorization as 'enforce' | 'off' | undefined,
  }, io);
}

interface RunOptions {
  readonly app: string;
  readonly workflow: string;
  readonly input: Record<string, unknown>;
  readonly plugins?: Record<string, string>;
  readonly pluginsBaseDir?: string;
  readonly ssmParameters?: Record<string, string>;
  readonly report?: string;
  readonly json: boolean;
  readonly logs: boolean;
  readonly authorization?: 'enforce' | 'off';
}

async function run(options: RunOptions, io: CliIo): Promise<number> {
  const engine = new LocalEngine({
    app: options.app,
    plugins: options.plugins,
    pluginsBaseDir: options.pluginsBaseDir ?? process.cwd(),
    ssmParameters: options.ssmParameters,
    logs: options.logs ? 'inherit' : 'silent',
    authorization: options.authorization,
  });
  const say = (text: string) => { if (!options.json) io.out(text); };
  let origin = new Date();
  engine.on('timeline', (e) => say(`${formatEvent(e, origin)}\n`));
  engine.on('state', (e) => {
    if (e.type === 'StateFailed' || e.type === 'ExecutionFailed') {
      say(`  ! ${e.stateMachineName} ${e.state ?? ''} ${e.error ?? ''}: ${(e.cause ?? '').slice(0, 200)}\n`);
    }
  });
  // Ctrl-C or a kill: stop everything the engine started, then exit (130 / 143 as shells do).
  const onSignal = (signal: NodeJS.Signals) => {
    io.err(`\n${signal}: stopping the local engine\n`);
    void engine.stop().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const startedAt = Date.now();
    say(`starting the local engine for ${options.app} ...\n`);
    try {
      await engine.start();
    } catch (e) {
      io.err(`The local engine could not start: ${(e as Error).message}\n`);
      return EXIT_USAGE;
    }
    say(`engine started in ${Date.now() - startedAt} ms\n`);
    const started = Date.now();
    origin = new Date(started);
    const result: ExecutionResult = await engine.runWorkflow(options.workflow, options.input).result();
    await engine.idle();
    const metadata = options.input.metadata as Record<string, unknown> | undefined;
    const workflowName = String(metadata?.workflow ?? options.workflow);
    const statusDocument = options.input.uid === undefined ? undefined : await engine.statusDocument(String(options.input.uid), workflowName);
    const counters = engine.counters();
    if (options.report) {
      const page = renderReport({ workflow: options.workflow, input: options.input, result, events: engine.events, statusDocument, counters });
      writeFileSync(options.report, page);
      say(`report: ${resolve(options.report)}\n`);
    }
    if (options.json) {
      io.out(`${JSON.stringify({ workflow: options.workflow, status: result.status, error: result.error, cause: result.cause, output: result.output, statusDocument, counters }, null, 2)}\n`);
    } else {
      say(`\nexecution ${result.status} in ${Date.now() - started} ms${result.error ? `: ${result.error} ${result.cause ?? ''}` : ''}\n`);
      if (statusDocument) say(`\nstatus document:\n${JSON.stringify(statusDocument, null, 2)}\n`);
      say(`\ncounters: ${counters.totals.invocations} invocations, ${counters.totals.billedMs} billed ms, `
        + `${counters.totals.gbSeconds.toFixed(4)} GB-s; DynamoDB ${counters.dynamodb.reads} reads / ${counters.dynamodb.writes} writes; `
        + `SNS ${counters.sns.publishes} publishes / ${counters.sns.deliveries} deliveries; ${counters.stepFunctions.stateTransitions} state transitions\n`);
    }
    return result.status === 'SUCCEEDED' ? EXIT_SUCCEEDED : EXIT_FAILED;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await engine.stop();
  }
}

function processIo(): CliIo {
  return { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };
}

if (require.main === module) {
  // The AWS SDK this tool uses itself (tables, custom resources) warns on Node.js 20 that its releases
  // from 2027 need Node.js 22: a note about this tool's dependency, printed in the middle of a run's
  // output. A function's sandbox has its function's environment only, and warns as it would on Lambda.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exit(EXIT_FAILED);
  });
}
