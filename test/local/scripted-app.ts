/**
 * Apps whose plugins do what a script file says, for the retry and re-run tests (regression cases
 * and property-based runs): a declarative spec becomes an Orchestrator with Workflows and plugin
 * functions (inline code, no asset directory); every plugin reads its behaviour for the run it is
 * called for from `script.json` and logs each call of its work (start and end) to `calls.log`.
 *
 * PRE/POST plugins are zero-SDK (the sequential stage invokes them and reads their result);
 * PARALLEL plugins use the plugin SDK (lib/sdk), the documented way for a plugin that SNS may
 * deliver to again (a re-run) to skip work that is already `Complete`.
 */
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { inlineFunction, newStack } from './support';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

export const SDK = join(__dirname, '..', '..', 'lib', 'sdk', 'index.js');
export const BUNDLED = existsSync(SDK) && existsSync(join(__dirname, '..', '..', 'assets', 'handlers', 'start-run', 'index.js'));

export type StageName = 'pre' | 'async' | 'post';
export const STAGE_NAMES: readonly StageName[] = ['pre', 'async', 'post'];

/** What a plugin does when called: the behaviours the generator asks for. */
export type Behaviour = 'succeed' | 'businessError' | 'throws' | 'failFirst' | 'slow' | 'exceedTimeout';

export interface PluginSpec {
  readonly name: string;
  readonly stage: StageName;
  readonly mandatory: boolean;
  readonly order?: number;
  /** PRE/POST only: the plugin's `timeout` in seconds. */
  readonly timeoutSeconds?: number;
  /** Receives the run only when metadata `region` is one of these (an SNS filter policy). */
  readonly regions?: readonly string[];
}

export interface ActivitySpec {
  readonly name: string;
  readonly pluginRetries: number;
  readonly plugins: readonly PluginSpec[];
}

export interface WorkflowSpec {
  readonly name: string;
  readonly activities: readonly string[];
}

export interface AppSpec {
  readonly activities: readonly ActivitySpec[];
  readonly workflows: readonly WorkflowSpec[];
}

/** How long `slow` takes; `exceedTimeout` takes the plugin's timeout plus this. */
export const SLOW_MS = 500;

/** The plugin's id in the script and the log: `<activity>.<stage>.<plugin>`. */
export function pluginId(activity: string, plugin: Pick<PluginSpec, 'stage' | 'name'>): string {
  return `${activity}.${plugin.stage}.${plugin.name}`;
}

/** The run a behaviour is for: `<uid>|<workflow>`. */
export function runKey(uid: string, workflow: string): string {
  return `${uid}|${workflow}`;
}

/** The work every plugin does, shared by the zero-SDK and the SDK wrappers (plain JavaScript). */
const WORK = `
const fs = require('fs');
const path = require('path');
const DIR = process.env.SCRIPT_DIR;
const ID = process.env.PLUGIN_ID;
const TIMEOUT_MS = Number(process.env.TIMEOUT_MS || '0');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (entry) => fs.appendFileSync(path.join(DIR, 'calls.log'), JSON.stringify(entry) + '\\n');
function attemptsSoFar(key, phase) {
  const file = path.join(DIR, 'calls.log');
  if (!fs.existsSync(file)) return 0;
  return fs.readFileSync(file, 'utf8').split('\\n').filter(Boolean).map((l) => JSON.parse(l))
    .filter((e) => e.ev === 'start' && e.id === ID && e.key === key && e.phase === phase).length;
}
async function work(message, businessError) {
  const script = JSON.parse(fs.readFileSync(path.join(DIR, 'script.json'), 'utf8'));
  const key = message.uid + '|' + message.workflow;
  const phase = script.phase;
  const behaviour = ((script.behaviours[key] || {})[ID] || [])[phase - 1] || 'succeed';
  const attempt = attemptsSoFar(key, phase) + 1;
  log({ ev: 'start', id: ID, key, phase, attempt, t: Date.now() });
  const end = () => log({ ev: 'end', id: ID, key, phase, attempt, t: Date.now() });
  switch (behaviour) {
    case 'slow': await sleep(${SLOW_MS}); end(); return { ok: true };
    case 'exceedTimeout': await sleep(TIMEOUT_MS + ${SLOW_MS}); end(); return { ok: true };
    case 'businessError': end(); return businessError('declined by ' + ID);
    case 'throws': end(); throw new Error('backend unavailable');
    case 'failFirst': end(); if (attempt === 1) throw new Error('first attempt fails'); return { ok: true };
    default: end(); return { ok: true };
  }
}
`;

const ZERO_SDK_PLUGIN = `${WORK}
exports.handler = async (event) => {
  const record = event && event.Records && event.Records[0];
  const message = record && record.Sns ? JSON.parse(record.Sns.Message) : event;
  return work(message, (text) => ({ state: 'Error', message: text }));
};`;

const sdkPlugin = (pluginName: string) => `${WORK}
const { pluginHandler, PluginBusinessError } = require(${JSON.stringify(SDK)});
exports.handler = pluginHandler({ pluginName: ${JSON.stringify(pluginName)} },
  async (message) => work(message, (text) => { throw new PluginBusinessError(text); }));`;

/** The app a spec describes, its plugins reading `dir`/script.json. */
export function buildScriptedApp(spec: AppSpec, dir: string, stackName = 'Scripted'): Stack {
  const stack = newStack(stackName);
  const orchestrator = new Orchestrator(stack, 'Orch', {
    orchestratorName: stackName.toLowerCase(),
    activities: spec.activities.map((activity) => activity.name),
    activityOptions: Object.fromEntries(spec.activities.map((activity) => [activity.name, { pluginRetries: activity.pluginRetries }])),
    alarms: false,
    dashboard: false,
  });
  for (const workflow of spec.workflows) {
    new Workflow(stack, `Wf-${workflow.name}`, { orchestrator, activities: [...workflow.activities], workflowName: workflow.name });
  }
  const plugins = new Construct(stack, 'Plugins');
  const stageOf: Record<StageName, ActivityStage> = { pre: ActivityStage.PRE, async: ActivityStage.PARALLEL, post: ActivityStage.POST };
  for (const activity of spec.activities) {
    for (const plugin of activity.plugins) {
      const id = pluginId(activity.name, plugin);
      const fn = inlineFunction(plugins, id.replace(/\./g, '-'), plugin.stage === 'async' ? sdkPlugin(plugin.name) : ZERO_SDK_PLUGIN, {
        environment: { SCRIPT_DIR: dir, PLUGIN_ID: id, TIMEOUT_MS: String((plugin.timeoutSeconds ?? 0) * 1000) },
        timeout: Duration.seconds(15),
      });
      orchestrator.activity(activity.name).addPlugin(fn, {
        pluginName: plugin.name,
        stage: stageOf[plugin.stage],
        mandatory: plugin.mandatory,
        order: plugin.order,
        timeout: plugin.timeoutSeconds !== undefined ? Duration.seconds(plugin.timeoutSeconds) : undefined,
        reportsStatus: plugin.stage === 'async' ? true : undefined,
        filterPolicy: plugin.regions ? { region: sns.SubscriptionFilter.stringFilter({ allowlist: [...plugin.regions] }) } : undefined,
      });
    }
  }
  return stack;
}

/** Behaviours of one run: plugin id -> one behaviour per phase (first run, re-run). */
export type RunScript = Record<string, readonly Behaviour[]>;

/** Writes what every plugin does in `phase` (1: the first run, 2: the re-run). */
export function writeScript(dir: string, phase: number, behaviours: Record<string, RunScript>): void {
  writeFileSync(join(dir, 'script.json'), JSON.stringify({ phase, behaviours }));
  if (!existsSync(join(dir, 'calls.log'))) appendFileSync(join(dir, 'calls.log'), '');
}

export interface Call {
  readonly id: string;
  readonly key: string;
  readonly phase: number;
  readonly attempt: number;
  readonly start: number;
  readonly end?: number;
}

/** Every call of a plugin's work, in the order they started. */
export function readCalls(dir: string): Call[] {
  const file = join(dir, 'calls.log');
  if (!existsSync(file)) return [];
  const lines = readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const calls: Call[] = [];
  for (const line of lines) {
    if (line.ev === 'start') {
      calls.push({ id: line.id, key: line.key, phase: line.phase, attempt: line.attempt, start: line.t });
    } else {
      const index = calls.findIndex((c) => c.id === line.id && c.key === line.key && c.phase === line.phase
        && c.attempt === line.attempt && c.end === undefined);
      if (index >= 0) calls[index] = { ...calls[index], end: line.t };
    }
  }
  return calls.sort((a, b) => a.start - b.start);
}
