// addPlugin's options checked and defaulted before anything is built (the aws-solutions-constructs
// idiom: one function per construct). Not part of the public API.
import { Token } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { ActivityStage, ActivityStageKey } from '../activity-stage';
import { PLUGIN_DEFAULTS, PLUGIN_LIMITS, QUEUE_BRIDGE } from '../defaults';
import type { PluginOptions } from '../plugin';
import { PluginTarget, PluginWiring } from './plugin-wiring';
import { quote, validateDuration, validateName } from './validation';

/** The orchestrator resources a plugin of this kind needs, all present. */
export type ResolvedWiring = Required<Pick<PluginWiring, 'pluginTable'>> & PluginWiring;

/** What `resolvePluginOptions` checked and defaulted. */
export interface ResolvedPluginOptions {
  readonly stage: ActivityStage;
  readonly stageKey: string;
  readonly pluginName: string;
  readonly mandatory: boolean;
  readonly order: number;
  readonly timeoutSeconds?: number;
  readonly filterPolicy?: { [attribute: string]: sns.SubscriptionFilter };
  readonly queue: boolean;
  readonly fifoKey?: string;
  readonly reportsStatus: boolean;
}

/**
 * The options checked (named synth errors), defaulted, checked against the activity's other plugins
 * and the wiring its stage needs: nothing is built before this returns.
 */
export function resolvePluginOptions(target: PluginTarget, handler: lambda.IFunction, options: PluginOptions)
  : { readonly options: ResolvedPluginOptions; readonly wiring: ResolvedWiring } {
  const resolved = resolveOptions(target, handler, options);
  target.book.check(target.where, resolved.stageKey, resolved.pluginName, handler);
  return { options: resolved, wiring: requireWiring(target, resolved) };
}

function resolveOptions(target: PluginTarget, handler: lambda.IFunction, options: PluginOptions): ResolvedPluginOptions {
  const name = typeof options.pluginName === 'string' && !Token.isUnresolved(options.pluginName) ? options.pluginName : '?';
  const where = `${target.where}: addPlugin ${quote(name)}`;
  validateName(where, 'pluginName', options.pluginName, PLUGIN_LIMITS.pluginNameMaxLength,
    'the plugin\'s entry in the status document and its registry item');
  const stage = options.stage;
  if (!ActivityStageKey.STAGES.includes(stage)) {
    throw new Error(`${where}: stage ${quote(stage)} is not an ActivityStage; use ActivityStage.PRE, ActivityStage.PARALLEL or ActivityStage.POST`);
  }
  const stageKey = ActivityStageKey.of(stage);
  const parallel = stage === ActivityStage.PARALLEL;
  if (!handler || typeof handler.functionArn !== 'string') {
    throw new Error(`${where}: the plugin handler must be a Lambda function (lambda.IFunction), got ${quote(String(handler))}`);
  }
  const queue = options.queue === true;
  if (queue && !parallel) {
    throw new Error(`${where}: queue is only for PARALLEL plugins; ${stage} plugins are invoked synchronously by their stage, one at a time, `
      + 'and their result is the outcome: remove queue, or add the plugin to ActivityStage.PARALLEL');
  }
  if (queue && options.timeout !== undefined) {
    throw new Error(`${where}: timeout is not available with queue: a queued message waits until the plugin takes it, and each attempt is `
      + 'bounded by the function\'s own timeout (3 attempts, then Error); bound the stage with the activity\'s parallelTimeout and remove timeout');
  }
  if (options.fifoKey !== undefined) {
    if (!queue) {
      throw new Error(`${where}: fifoKey ${quote(options.fifoKey)} is only for queue plugins (it makes their queue FIFO): set queue: true or remove fifoKey`);
    }
    if (typeof options.fifoKey !== 'string' || Token.isUnresolved(options.fifoKey) || options.fifoKey.length < 1
      || options.fifoKey.length > QUEUE_BRIDGE.fifoKeyMaxLength) {
      throw new Error(`${where}: fifoKey is ${quote(options.fifoKey)}; it must be the name of a metadata field, `
        + `1-${QUEUE_BRIDGE.fifoKeyMaxLength} characters known at synth time`);
    }
  }
  if (options.order !== undefined) {
    if (parallel) {
      throw new Error(`${where}: order ${quote(options.order)} is only for PRE and POST plugins (they run one at a time, in order); `
        + 'PARALLEL plugins all receive the message at once: remove order');
    }
    if (Token.isUnresolved(options.order) || !Number.isInteger(options.order)
      || options.order < PLUGIN_LIMITS.minOrder || options.order > PLUGIN_LIMITS.maxOrder) {
      throw new Error(`${where}: order is ${quote(options.order)}; it must be a whole number from ${PLUGIN_LIMITS.minOrder} to ${PLUGIN_LIMITS.maxOrder.toLocaleString('en-US')}`);
    }
  }
  if (options.filterPolicy !== undefined && !parallel) {
    throw new Error(`${where}: filterPolicy is only for PARALLEL plugins (an SNS subscription filter); ${stage} plugins are invoked directly `
      + `for every run: remove filterPolicy ${quote(Object.keys(options.filterPolicy))}`);
  }
  const filterPolicy = options.filterPolicy && Object.keys(options.filterPolicy).length > 0 ? options.filterPolicy : undefined;
  let timeoutSeconds: number | undefined;
  if (options.timeout !== undefined) {
    if (options.timeout.isUnresolved()) {
      throw new Error(`${where}: timeout must be known at synth time (it is stored in the plugin registry), got a token`);
    }
    const [min, max] = parallel
      ? [PLUGIN_LIMITS.minParallelTimeout, PLUGIN_LIMITS.maxParallelTimeout]
      : [PLUGIN_LIMITS.minSequentialTimeout, PLUGIN_LIMITS.maxSequentialTimeout];
    timeoutSeconds = validateDuration(where, `timeout of a ${stage} plugin`, options.timeout, min, max);
  }
  return {
    stage,
    stageKey,
    pluginName: options.pluginName,
    mandatory: options.mandatory ?? PLUGIN_DEFAULTS.mandatory,
    order: options.order ?? PLUGIN_DEFAULTS.order,
    timeoutSeconds,
    filterPolicy,
    queue,
    fifoKey: options.fifoKey,
    reportsStatus: options.reportsStatus ?? queue,
  };
}

/** What the stage needs from the orchestrator; an import that lacks it is told which attributes to pass. */
function requireWiring(target: PluginTarget, options: ResolvedPluginOptions): ResolvedWiring {
  const { wiring } = target;
  const missing: string[] = [];
  if (!wiring.pluginTable) missing.push('pluginTableArn');
  if (options.stage === ActivityStage.PARALLEL && !wiring.pluginOutcomeFunctionArn) missing.push('pluginOutcomeFunctionArn');
  if (options.stage !== ActivityStage.PARALLEL && !wiring.sequentialStageRoleArn) missing.push('sequentialStageRoleArn');
  if ((options.queue || options.reportsStatus) && !wiring.statusTable) missing.push('statusTableArn');
  if (missing.length > 0) {
    throw new Error(`${target.where}: addPlugin ${quote(options.pluginName)}: this imported activity has no ${missing.join(', ')}; `
      + `a ${options.queue ? 'queue' : options.stage} plugin needs ${missing.length > 1 ? 'them' : 'it'}: pass ${missing.length > 1 ? 'them' : 'it'} to `
      + 'Activity.fromActivityAttributes (or Orchestrator.fromOrchestratorAttributes)');
  }
  return wiring as ResolvedWiring;
}

