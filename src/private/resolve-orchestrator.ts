// OrchestratorProps checked and defaulted before anything is built (the aws-solutions-constructs
// idiom: one function per construct, named synth errors that name the prop). Not part of the public API.
import { Annotations, Duration, Names, RemovalPolicy } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { ActivityOptions } from '../activity';
import { ACTIVITY_DEFAULTS, DEFAULT_LOG_RETENTION, DEFAULT_REMOVAL_POLICY, LIMITS } from '../defaults';
import type { OrchestratorProps } from '../orchestrator';
import { validateNetwork } from './compliance';
import { validateParameterPrefix, defaultParameterPrefix } from './coordinates';
import { activityStateMachineName } from './naming';
import { activityGroupOf, MAX_ACTIVITIES_PER_GROUP, SCALE } from './scale';
import { OPEN_RUNS_INDEX, STUCK_RUN_DEFAULTS, validateStuckAfter } from './stuck-run-detection';
import {
  describe, quote, validateActivityList, validateActivityName, validateDuration, validateInteger, validateName,
} from './validation';

/** What the Orchestrator builds from, every prop checked and defaulted. */
export interface ResolvedOrchestratorProps {
  /** `Orchestrator '<path>'`: the prefix of every error message. */
  readonly where: string;
  readonly orchestratorName: string;
  readonly activityNames: string[];
  readonly activityOptions: Record<string, Required<ActivityOptions>>;
  readonly removalPolicy: RemovalPolicy;
  readonly logRetention: logs.RetentionDays;
  /** undefined: stuck-run detection is off. */
  readonly stuckAfter?: Duration;
  readonly runtimeRegistration: boolean;
  /** undefined: the coordinates are not published. */
  readonly parameterPrefix?: string;
  readonly alarms: boolean;
  readonly dashboard: boolean;
  /**
   * The nested-stack group of each activity (DESIGN.md "Scale"), every group checked to fit one
   * template; undefined when every activity lives in the orchestrator's stack.
   */
  readonly activityGroups?: ReadonlyMap<string, number>;
}

export function resolveOrchestratorProps(scope: Construct, props: OrchestratorProps): ResolvedOrchestratorProps {
  const where = describe('Orchestrator', scope);
  validateActivityList(where, 'activities', props.activities);
  props.activities.forEach((name) => validateActivityName(where, name));
  validateNetwork(where, props);
  const orchestratorName = props.orchestratorName ?? Names.uniqueResourceName(scope, { maxLength: LIMITS.defaultOrchestratorNameMaxLength });
  validateName(where, 'orchestratorName', orchestratorName, LIMITS.nameMaxLength, 'the activity state machines and topics');
  for (const name of props.activities) {
    const smName = activityStateMachineName(orchestratorName, name);
    if (smName.length > LIMITS.stateMachineNameMaxLength) {
      throw new Error(`${where}: the state machine name ${quote(smName)} of activity ${quote(name)} has ${smName.length} characters; `
        + `AWS allows ${LIMITS.stateMachineNameMaxLength}: shorten orchestratorName ${quote(orchestratorName)} or the activity name`);
    }
  }
  const activityOptions = resolveActivityOptions(where, props);

  if (props.statusTable && props.statusTableProps) {
    throw new Error(`${where}: pass either statusTable (bring your own table) or statusTableProps (configure the table this construct creates), not both`);
  }
  if (props.statusTable && !props.statusTable.tableStreamArn) {
    throw new Error(`${where}: statusTable ${props.statusTable.node.path} has no stream; the status-summary handler needs the table's stream `
      + '(NEW_AND_OLD_IMAGES): enable it, or import the table with Table.fromTableAttributes({ tableArn, tableStreamArn })');
  }
  validateStatusRetention(where, props.statusRetention);
  if (props.statusTable && props.statusRetention) {
    Annotations.of(scope).addWarningV2('cdk-orchestrator:statusTableTtl',
      'statusRetention makes start-run set "expiresAt" on status items; enable TTL on the attribute "expiresAt" of your statusTable for it to take effect');
  }
  const stuckAfter = resolveStuckAfter(scope, where, props);

  const publishParameters = props.publishParameters ?? true;
  if (props.parameterPrefix !== undefined && !publishParameters) {
    throw new Error(`${where}: parameterPrefix ${quote(props.parameterPrefix)} is set but publishParameters is false: drop one of them`);
  }
  const parameterPrefix = publishParameters ? props.parameterPrefix ?? defaultParameterPrefix(orchestratorName) : undefined;
  if (parameterPrefix !== undefined) validateParameterPrefix(where, parameterPrefix);
  if (props.alarmTopic && props.alarms === false) {
    throw new Error(`${where}: alarmTopic is set but alarms is false; the topic is notified by the default alarms, so turn them on or drop the topic`);
  }
  return {
    where,
    orchestratorName,
    activityNames: [...props.activities],
    activityOptions,
    removalPolicy: props.removalPolicy ?? DEFAULT_REMOVAL_POLICY,
    logRetention: props.logRetention ?? DEFAULT_LOG_RETENTION,
    stuckAfter,
    runtimeRegistration: props.runtimeRegistration ?? true,
    parameterPrefix,
    alarms: props.alarms ?? true,
    dashboard: props.dashboard ?? true,
    // A published activity parameter lives next to its activity: one more resource per grouped activity.
    activityGroups: activityGroups(where, props.activities, SCALE.resourcesPerGroupedActivity + (publishParameters ? 1 : 0)),
  };
}

/**
 * DESIGN.md "Scale": up to 25 activities live in the orchestrator's stack; beyond, each goes into one
 * of 8 nested stacks chosen by its name alone (so adding or removing an activity never moves another).
 */
function activityGroups(where: string, activityNames: string[], resourcesPerActivity: number): ReadonlyMap<string, number> | undefined {
  if (activityNames.length <= SCALE.maxActivitiesInStack) return undefined;
  const members = new Map<number, string[]>();
  for (const name of activityNames) {
    const group = activityGroupOf(name);
    members.set(group, [...(members.get(group) ?? []), name]);
  }
  const maxPerGroup = Math.min(MAX_ACTIVITIES_PER_GROUP, Math.floor(SCALE.maxResourcesPerTemplate / resourcesPerActivity) - 1);
  for (const [group, names] of [...members].sort(([a], [b]) => a - b)) {
    if (names.length > maxPerGroup) {
      throw new Error(`${where}: ${names.length} of the ${activityNames.length} activities fall into nested stack Group${group} `
        + `(the group is chosen by the activity name), which holds at most ${maxPerGroup} (CloudFormation allows `
        + `${SCALE.maxResourcesPerTemplate} resources per template, ${resourcesPerActivity} per activity): `
        + 'split the activities over two orchestrators');
    }
  }
  return new Map(activityNames.map((name) => [name, activityGroupOf(name)]));
}

function resolveActivityOptions(where: string, props: OrchestratorProps): Record<string, Required<ActivityOptions>> {
  const overrides = props.activityOptions ?? {};
  for (const name of Object.keys(overrides)) {
    if (!props.activities.includes(name)) {
      throw new Error(`${where}: activityOptions names unknown activity ${quote(name)}; known activities: ${props.activities.join(', ')}`);
    }
  }
  const result: Record<string, Required<ActivityOptions>> = {};
  for (const name of props.activities) {
    const o = overrides[name] ?? {};
    const resolved = {
      parallelTimeout: o.parallelTimeout ?? props.parallelTimeout ?? ACTIVITY_DEFAULTS.parallelTimeout,
      parallelHeartbeat: o.parallelHeartbeat ?? props.parallelHeartbeat ?? ACTIVITY_DEFAULTS.parallelHeartbeat,
      pluginRetries: o.pluginRetries ?? props.pluginRetries ?? ACTIVITY_DEFAULTS.pluginRetries,
    };
    const what = (prop: string) => (overrides[name] ? `${prop} of activity ${quote(name)}` : prop);
    const timeout = validateDuration(where, what('parallelTimeout'), resolved.parallelTimeout, Duration.seconds(1), LIMITS.maxTimeout);
    const heartbeat = validateDuration(where, what('parallelHeartbeat'), resolved.parallelHeartbeat, Duration.seconds(1), LIMITS.maxTimeout);
    if (timeout !== undefined && heartbeat !== undefined && heartbeat >= timeout) {
      throw new Error(`${where}: ${what('parallelHeartbeat')} (${resolved.parallelHeartbeat.toHumanString()}) must be shorter than `
        + `parallelTimeout (${resolved.parallelTimeout.toHumanString()})`);
    }
    validateInteger(where, what('pluginRetries'), resolved.pluginRetries, 0, LIMITS.maxPluginRetries);
    result[name] = resolved;
  }
  return result;
}


/**
 * stuckAfter, or undefined when stuck-run detection is off. With a statusTable of the user's own it is
 * on only when stuckAfter is given (the table must then have the open-run index), else off with a warning.
 */
function resolveStuckAfter(scope: Construct, where: string, props: OrchestratorProps): Duration | undefined {
  if (props.stuckRunDetection === false) {
    if (props.stuckAfter) {
      throw new Error(`${where}: stuckAfter is set (${props.stuckAfter.toHumanString()}) but stuckRunDetection is false; drop one of them`);
    }
    return undefined;
  }
  if (props.stuckAfter) validateStuckAfter(where, props.stuckAfter);
  if (props.statusTable && !props.stuckAfter) {
    if (props.stuckRunDetection === true) {
      throw new Error(`${where}: stuckRunDetection on a statusTable of your own needs stuckAfter, and the table needs the global secondary index `
        + `"${OPEN_RUNS_INDEX.indexName}" (partition key "${OPEN_RUNS_INDEX.partitionKey.name}" S, sort key "${OPEN_RUNS_INDEX.sortKey.name}" S, keys only)`);
    }
    Annotations.of(scope).addWarningV2('cdk-orchestrator:stuckRunDetection',
      `Stuck-run detection is off for your own statusTable: add the global secondary index "${OPEN_RUNS_INDEX.indexName}" `
      + `(partition key "${OPEN_RUNS_INDEX.partitionKey.name}" S, sort key "${OPEN_RUNS_INDEX.sortKey.name}" S, projection KEYS_ONLY) `
      + 'and set stuckAfter to turn it on, or set stuckRunDetection: false to silence this warning');
    return undefined;
  }
  return props.stuckAfter ?? STUCK_RUN_DEFAULTS.stuckAfter;
}

/** start-run sets the TTL in whole days (1 to 3650). */
export function validateStatusRetention(where: string, retention: Duration | undefined): void {
  if (retention === undefined || retention.isUnresolved()) {
    return;
  }
  const days = retention.toMilliseconds() / 86_400_000;
  if (!Number.isInteger(days) || days < LIMITS.minStatusRetentionDays || days > LIMITS.maxStatusRetentionDays) {
    throw new Error(`${where}: statusRetention is ${retention.toHumanString()}; it must be a whole number of days from `
      + `${LIMITS.minStatusRetentionDays} to ${LIMITS.maxStatusRetentionDays}`);
  }
}
