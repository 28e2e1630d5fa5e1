/**
 * What an assembly holds of cdk-orchestrator: workflows and activities, recognised from the
 * state-machine shapes in DESIGN.md (a workflow's first task carries `{ workflow, activities }`, an
 * activity's pre stage `{ activity, stage: 'pre' }`). Pure: used by the engine and the CLI's pre-flight.
 */
import type { LocalAssembly, LocalStateMachine } from './assembly';

/** What the engine recognised in the app (DESIGN.md state-machine shapes). */
export interface OrchestratorShape {
  readonly workflows: Record<string, { stateMachine: LocalStateMachine; activities: string[] }>;
  readonly activities: Record<string, LocalStateMachine>;
}

export function orchestratorShape(assembly: Pick<LocalAssembly, 'stateMachines'>): OrchestratorShape {
  const workflows: OrchestratorShape['workflows'] = {};
  const activities: OrchestratorShape['activities'] = {};
  for (const sm of assembly.stateMachines) {
    const start = sm.definition.States?.[sm.definition.StartAt];
    const payload = start?.Parameters?.Payload;
    if (typeof payload?.workflow === 'string' && Array.isArray(payload?.activities)) {
      workflows[payload.workflow] = { stateMachine: sm, activities: payload.activities };
    } else if (typeof payload?.activity === 'string' && payload?.stage === 'pre') {
      activities[payload.activity] = sm;
    }
  }
  return { workflows, activities };
}
