/**
 * A small model of the run-time contract (docs/DESIGN.md, README "Retries and re-runs"), written
 * for the property tests and on purpose independent of lambda/shared/status.ts: given an app, a
 * run's metadata and what each plugin does, it says how the run ends — execution status, every
 * run, activity, stage and plugin state — and which plugin's work is called how often, in which
 * order. A re-run starts from the model's own previous document.
 */
import { ActivitySpec, AppSpec, Behaviour, PluginSpec, pluginId, StageName, STAGE_NAMES } from './scripted-app';

export type ModelState = 'Not Started' | 'In Progress' | 'Complete' | 'Error' | 'Optional Task Error' | 'Do Not Run' | 'Mandatory Completed';

export interface ModelStage {
  state: ModelState;
  /** Plugin name -> entry state; only plugins whose stage started have entries. */
  mandatory: Record<string, ModelState>;
  optional: Record<string, ModelState>;
}

export interface ModelActivity {
  state: ModelState;
  pre: ModelStage;
  async: ModelStage;
  post: ModelStage;
}

export interface ModelDocument {
  state: ModelState;
  activities: Record<string, ModelActivity>;
}

export interface ModelRun {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly doc: ModelDocument;
  /** Plugin id -> calls of its work in this run. */
  readonly calls: Record<string, number>;
  /** `<activity>.<stage>` -> plugin names of a sequential stage in call order, a retry repeating the name. */
  readonly sequence: Record<string, string[]>;
}

/** Parallel plugins get Lambda's asynchronous retries: 2 (3 calls in all). */
export const PARALLEL_ATTEMPTS = 3;

const DONE: readonly ModelState[] = ['Complete', 'Mandatory Completed', 'Optional Task Error', 'Do Not Run'];
const isPending = (state: ModelState) => state === 'Not Started' || state === 'In Progress';

function newStage(): ModelStage {
  return { state: 'Not Started', mandatory: {}, optional: {} };
}

/** Registry order: `order` (none: 90), then name. */
export function ordered(plugins: readonly PluginSpec[]): PluginSpec[] {
  return [...plugins].sort((a, b) => (a.order ?? 90) - (b.order ?? 90) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** What one plugin's calls come to: how many times its work runs and the entry it leaves. */
function outcome(behaviour: Behaviour, attemptsAllowed: number): { calls: number; state: ModelState } {
  switch (behaviour) {
    case 'businessError':
    case 'exceedTimeout':
      return { calls: 1, state: 'Error' };
    case 'throws':
      return { calls: attemptsAllowed, state: 'Error' };
    case 'failFirst':
      return attemptsAllowed > 1 ? { calls: 2, state: 'Complete' } : { calls: 1, state: 'Error' };
    default:
      return { calls: 1, state: 'Complete' };
  }
}

/** The document a re-run starts from: `Error` entries back to `Not Started`; a stage with any of them, or not done, too. */
function reset(previous: ModelDocument, activities: readonly string[]): ModelDocument {
  const doc: ModelDocument = { state: 'In Progress', activities: {} };
  for (const name of activities) {
    const before = previous.activities[name];
    if (!before) {
      doc.activities[name] = { state: 'Not Started', pre: newStage(), async: newStage(), post: newStage() };
      continue;
    }
    const activity = structuredClone(before);
    for (const stage of STAGE_NAMES) {
      const s = activity[stage];
      let anyReset = false;
      for (const kind of ['mandatory', 'optional'] as const) {
        for (const plugin of Object.keys(s[kind])) {
          if (s[kind][plugin] === 'Error') {
            s[kind][plugin] = 'Not Started';
            anyReset = true;
          }
        }
      }
      if (anyReset || s.state === 'Error' || s.state === 'Optional Task Error' || !DONE.includes(s.state)) s.state = 'Not Started';
    }
    doc.activities[name] = activity;
  }
  return doc;
}

export interface ModelInput {
  readonly app: AppSpec;
  readonly workflow: string;
  readonly metadata: Record<string, unknown>;
  /** Plugin id -> what its work does in this run. */
  readonly behaviours: Record<string, Behaviour>;
  /** The model's document after the previous run of this uid and workflow (a re-run). */
  readonly previous?: ModelDocument;
}

export function modelRun(input: ModelInput): ModelRun {
  const workflow = input.app.workflows.find((w) => w.name === input.workflow)!;
  const doc = input.previous
    ? reset(input.previous, workflow.activities)
    : { state: 'In Progress' as ModelState, activities: Object.fromEntries(workflow.activities.map((a) => [a, { state: 'Not Started' as ModelState, pre: newStage(), async: newStage(), post: newStage() }])) };
  const calls: Record<string, number> = {};
  const sequence: Record<string, string[]> = {};
  let failed = false;

  for (const activityName of workflow.activities) {
    const spec: ActivitySpec = input.app.activities.find((a) => a.name === activityName)!;
    const activity = doc.activities[activityName];
    for (const stageName of STAGE_NAMES) {
      const stage = activity[stageName];
      if (DONE.includes(stage.state)) continue;
      const plugins = ordered(spec.plugins.filter((p) => p.stage === stageName));
      for (const plugin of plugins) {
        const kind = plugin.mandatory ? 'mandatory' : 'optional';
        if (stage[kind][plugin.name] === undefined) stage[kind][plugin.name] = 'Not Started';
      }
      const failedHere = stageName === 'async'
        ? runParallel(input, activityName, stage, plugins, calls)
        : runSequential(input, activityName, stageName, spec.pluginRetries + 1, stage, plugins, calls, sequence);
      if (failedHere) {
        stage.state = 'Error';
        activity.state = 'Error';
        failed = true;
        break;
      }
      stage.state = [...Object.values(stage.optional)].includes('Error') ? 'Optional Task Error' : 'Complete';
    }
    if (failed) break;
    activity.state = 'Complete';
  }
  doc.state = failed ? 'Error' : 'Complete';
  return { status: failed ? 'FAILED' : 'SUCCEEDED', doc, calls, sequence };
}

/** Pre/post: pending plugins one at a time in order; true when a mandatory one failed. */
function runSequential(input: ModelInput, activity: string, stageName: StageName, attemptsAllowed: number, stage: ModelStage,
  plugins: readonly PluginSpec[], calls: Record<string, number>, sequence: Record<string, string[]>): boolean {
  const key = `${activity}.${stageName}`;
  for (const plugin of plugins) {
    const kind = plugin.mandatory ? 'mandatory' : 'optional';
    if (!isPending(stage[kind][plugin.name])) continue;
    const id = pluginId(activity, plugin);
    const result = outcome(input.behaviours[id] ?? 'succeed', attemptsAllowed);
    calls[id] = (calls[id] ?? 0) + result.calls;
    sequence[key] = [...sequence[key] ?? [], ...Array<string>(result.calls).fill(plugin.name)];
    stage[kind][plugin.name] = result.state;
    if (result.state === 'Error' && plugin.mandatory) return true;
  }
  return false;
}

/** Whether SNS delivers the run's message to the plugin (its filter policy on metadata `region`). */
export function receives(plugin: PluginSpec, metadata: Record<string, unknown>): boolean {
  return plugin.regions === undefined || (typeof metadata.region === 'string' && plugin.regions.includes(metadata.region));
}

/** Parallel: every pending plugin that receives the message works at once; true when a mandatory one failed. */
function runParallel(input: ModelInput, activity: string, stage: ModelStage, plugins: readonly PluginSpec[], calls: Record<string, number>): boolean {
  let mandatoryFailed = false;
  for (const plugin of plugins) {
    const kind = plugin.mandatory ? 'mandatory' : 'optional';
    if (!isPending(stage[kind][plugin.name])) continue;
    if (!receives(plugin, input.metadata)) {
      stage[kind][plugin.name] = 'Do Not Run';
      continue;
    }
    const id = pluginId(activity, plugin);
    const result = outcome(input.behaviours[id] ?? 'succeed', PARALLEL_ATTEMPTS);
    calls[id] = (calls[id] ?? 0) + result.calls;
    stage[kind][plugin.name] = result.state;
    if (result.state === 'Error' && plugin.mandatory) mandatoryFailed = true;
  }
  return mandatoryFailed;
}
