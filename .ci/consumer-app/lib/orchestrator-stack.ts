import { Stack, StackProps } from 'aws-cdk-lib/core';
import { Construct } from 'constructs';
import { Orchestrator, Workflow } from 'cdk-orchestrator';

/** The orchestrator: two activities and one workflow running them in order. */
export class OrchestratorStack extends Stack {
  public readonly orchestrator: Orchestrator;

  constructor(scope: Construct, id: string, props?: StackProps) {
    super(scope, id, props);
    this.orchestrator = new Orchestrator(this, 'Orchestrator', { activities: ['Check', 'Rate'] });
    new Workflow(this, 'Onboarding', { orchestrator: this.orchestrator, activities: ['Check', 'Rate'], workflowName: 'Onboarding' });
  }
}
