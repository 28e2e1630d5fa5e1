// WorkflowProps checked and defaulted before anything is built (one function per construct). Not
// part of the public API.
import { Construct } from 'constructs';
import { LIMITS } from '../defaults';
import type { WorkflowProps } from '../workflow';
import { describe, requireKnownActivity, validateActivityList, validateName } from './validation';

export interface ResolvedWorkflowProps {
  /** `Workflow '<path>'`: the prefix of every error message. */
  readonly where: string;
  readonly workflowName: string;
}

export function resolveWorkflowProps(scope: Construct, id: string, props: WorkflowProps): ResolvedWorkflowProps {
  const where = describe('Workflow', scope);
  const { orchestrator } = props;
  const workflowName = props.workflowName ?? id;
  validateName(where, 'workflowName', workflowName, LIMITS.nameMaxLength, 'the runs of this workflow (the status item key `workflow`)');
  validateActivityList(where, 'activities', props.activities, orchestrator.activityNames);
  props.activities.forEach((name) => requireKnownActivity(where, name, orchestrator.activityNames));
  // Two workflows of one orchestrator with the same name would share status items.
  orchestrator._claimWorkflowName(where, workflowName, scope.node.path);
  return { where, workflowName };
}
