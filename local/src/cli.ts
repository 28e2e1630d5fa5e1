#!/usr/bin/env node
/**
 * Runs one workflow of a synthesized app on the local engine and prints a live timeline, then the
 * final status document and the counters.
 *
 *   npx ts-node --transpile-only local/cli.ts --app cdk.out --workflow onboard \
 *     --input '{"uid":"policy-1","metadata":{"workflow":"onboard"}}' [--plugins plugins.json] [--logs]
 *
 * `--plugins` is a JSON file mapping construct paths (or logical ids / function names) to local
 * modules, relative to the file: `{ "PluginStack/RateFn": "./plugins/rate.ts#handler" }`.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { formatEvent, LocalEngine } from './engine';

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      app: { type: 'string', default: 'cdk.out' },
      workflow: { type: 'string' },
      input: { type: 'string', default: '{}' },
      plugins: { type: 'string' },
      logs: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || !values.workflow) {
    process.stderr.write('usage: cli --app cdk.out --workflow NAME --input JSON [--plugins FILE] [--logs]\n');
    return values.help ? 0 : 2;
  }
  const input = JSON.parse(values.input!);
  const plugins = values.plugins ? JSON.parse(readFileSync(values.plugins, 'utf8')) as Record<string, string> : undefined;
  const engine = new LocalEngine({
    app: resolve(values.app!),
    plugins,
    pluginsBaseDir: values.plugins ? dirname(resolve(values.plugins)) : process.cwd(),
    logs: values.logs ? 'inherit' : 'silent',
  });
  let origin = new Date();
  engine.on('timeline', (e) => process.stdout.write(`${formatEvent(e, origin)}\n`));
  engine.on('state', (e) => {
    if (e.type === 'StateFailed' || e.type === 'ExecutionFailed') {
      process.stdout.write(`  ! ${e.stateMachineName} ${e.state ?? ''} ${e.error ?? ''}: ${(e.cause ?? '').slice(0, 200)}\n`);
    }
  });
  process.stdout.write(`starting the local engine for ${values.app} ...\n`);
  await engine.start();
  try {
    const shape = engine.shape();
    process.stdout.write(`workflows: ${Object.keys(shape.workflows).join(', ') || '(none)'}; activities: ${Object.keys(shape.activities).join(', ') || '(none)'}\n`);
    const started = Date.now();
    origin = new Date(started);
    const result = await engine.runWorkflow(values.workflow!, input).result();
    await engine.idle();
    process.stdout.write(`\nexecution ${result.status} in ${Date.now() - started} ms${result.error ? `: ${result.error} ${result.cause ?? ''}` : ''}\n`);
    const workflow = String((input.metadata?.workflow as string | undefined) ?? values.workflow);
    if (input.uid) {
      const doc = await engine.statusDocument(String(input.uid), workflow);
      process.stdout.write(`\nstatus document:\n${JSON.stringify(doc, null, 2)}\n`);
    }
    const counters = engine.counters();
    process.stdout.write(`\ncounters: ${counters.totals.invocations} invocations, ${counters.totals.billedMs} billed ms, `
      + `${counters.totals.gbSeconds.toFixed(4)} GB-s; DynamoDB ${counters.dynamodb.reads} reads / ${counters.dynamodb.writes} writes; `
      + `SNS ${counters.sns.publishes} publishes / ${counters.sns.deliveries} deliveries; ${counters.stepFunctions.stateTransitions} state transitions\n`);
    return result.status === 'SUCCEEDED' ? 0 : 1;
  } finally {
    await engine.stop();
  }
}

main(process.argv.slice(2)).then((code) => process.exit(code), (e) => {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exit(1);
});
