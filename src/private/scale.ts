// How a large orchestrator stays within CloudFormation's and IAM's quotas (DESIGN.md "Scale").
// Not part of the public API: the layout is invisible to users (`orchestrator.activity(name)` works
// the same), but it is part of what a deployed orchestrator looks like, so these values must not
// change between releases (a changed group would move an activity between stacks, and CloudFormation
// cannot create a resource under a name its old stack still holds).
import { createHash } from 'crypto';

export const SCALE = {
  /**
   * Up to this many activities live in the orchestrator's own stack, 7 resources each (state
   * machine, 3 topics, 3 topic policies), leaving room for the orchestrator's 32 and the app's own.
   */
  maxActivitiesInStack: 25,
  /**
   * Above it, every activity goes into one of this many nested stacks, chosen by its name alone
   * (`activityGroupOf`), so adding, removing or reordering activities never moves another one.
   */
  activityGroups: 8,
  /**
   * Resources of an activity in a nested stack: state machine, 3 topics, and the parallel topic's
   * policy (SSL-only + parallel-stage publish). The pre and post topics carry no messages (pre/post
   * plugins are invoked directly), so they go without a policy there.
   */
  resourcesPerGroupedActivity: 5,
  /** CloudFormation's limit of resources per template. */
  maxResourcesPerTemplate: 500,
  /**
   * A Workflow names each activity's state machine (and its executions) in its role's policy up to
   * this many activities; beyond, it uses the orchestrator's name patterns (`<orchestratorName>-*`),
   * so the role's inline policy stays far below IAM's 10,240 characters (20 activities with the
   * longest names and ARNs: about 5,800 characters).
   */
  maxWorkflowActivityArns: 20,
};

/** Most activities one nested stack can hold (every resource in it belongs to an activity). */
export const MAX_ACTIVITIES_PER_GROUP = Math.floor(SCALE.maxResourcesPerTemplate / SCALE.resourcesPerGroupedActivity) - 1;

/**
 * The nested stack (0-7) of an activity: the first 32 bits of the SHA-256 of its name, modulo the
 * number of groups. Depends on the name only, never on the other activities.
 */
export function activityGroupOf(activityName: string): number {
  return createHash('sha256').update(activityName, 'utf8').digest().readUInt32BE(0) % SCALE.activityGroups;
}
