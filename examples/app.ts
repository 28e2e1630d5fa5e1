// A one-file CDK app: an orchestrator with three activities and one workflow over them.
//   cd examples && npx cdk synth
import { App, CfnOutput, Duration, Stack } from 'aws-cdk-lib';
import { ActivityStage, Orchestrator, Workflow } from '../src';

const app = new App();
const stack = new Stack(app, 'OrchestratorExample', {
  description: 'cdk-orchestrator example: three activities (Step1-Step3) and the Onboarding workflow',
});

const orchestrator = new Orchestrator(stack, 'Orchestrator', {
  orchestratorName: 'example',
  activities: ['Step1', 'Step2', 'Step3'],
  // Defaults for every activity...
  parallelTimeout: Duration.hours(2),
  // ...and per-activity overrides.
  activityOptions: {
    Step2: { parallelTimeout: Duration.minutes(30), parallelHeartbeat: Duration.minutes(5), pluginRetries: 3 },
  },
  statusRetention: Duration.days(90),
});

const onboarding = new Workflow(stack, 'Onboarding', {
  orchestrator,
  activities: ['Step1', 'Step2', 'Step3'],
});

new CfnOutput(stack, 'WorkflowStateMachineArn', { value: onboarding.stateMachine.stateMachineArn });
new CfnOutput(stack, 'StatusTableName', { value: orchestrator.statusTable.tableName });
new CfnOutput(stack, 'PluginTableName', { value: orchestrator.pluginTable.tableName });
new CfnOutput(stack, 'Step2ParallelTopicArn', { value: orchestrator.activity('Step2').topic(ActivityStage.PARALLEL).topicArn });

app.synth();
