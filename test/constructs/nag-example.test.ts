// cdk-nag's AwsSolutions pack over the example app (examples/app.ts: the orchestrator's stack and a
// plugins stack): a user of the library has nothing to acknowledge. Every finding on what the
// library creates is fixed or acknowledged inside the library, where the resource is made (listed
// below, so a new acknowledgement is a visible change); the example's own plugin functions are
// compliant as written (their own role and log group), with no acknowledgement at all.
import { acknowledgements, newNagApp, synthWithAwsSolutions } from './nag-util';
import { buildExampleApp } from '../../examples/app';

const app = newNagApp();
buildExampleApp(app);
const result = synthWithAwsSolutions(app);

test('no error and no warning: the pack passes', () => {
  expect(result.violations).toEqual([]);
  expect(result.success).toBe(true);
  expect(result.failedPlugins).toEqual([]);
  // Nor any CDK warning or error on either stack.
  for (const stack of result.assembly.stacks) {
    expect(stack.messages.filter((message) => message.level !== 'info').map((message) => `${message.id}: ${message.entry.data}`)).toEqual([]);
  }
});

test('every acknowledgement is the library\'s, on a resource the library creates', () => {
  const handlerPolicies = ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome', 'StuckRuns']
    .map((handler) => `OrchestratorExample/Orchestrator/Handlers/${handler}Role/DefaultPolicy`);
  const taskTokens = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:example-*]';
  const taggedPlugins = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:*]';
  expect(acknowledgements(app)).toEqual({
    // X-Ray active tracing (and, status-summary, dynamodb:ListStreams) support no resource-level permissions.
    ...Object.fromEntries(handlerPolicies.map((policy) => [policy, ['AwsSolutions-IAM5[Resource::*]']])),
    // Task-token callbacks, on the orchestrator's own state machines by name.
    'OrchestratorExample/Orchestrator/Handlers/ParallelStageRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]', taskTokens],
    'OrchestratorExample/Orchestrator/Handlers/StatusSummaryRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]', taskTokens],
    // Run-time registration: plugin functions tagged for this orchestrator (ABAC), its running executions by name.
    'OrchestratorExample/Orchestrator/Handlers/SequentialStageRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]', taggedPlugins],
    'OrchestratorExample/Orchestrator/Handlers/PluginRegistrarRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]', taggedPlugins,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:example-*:*]', taskTokens],
    // The queue is the stream mapping's on-failure destination (cdk-nag only knows redrive targets).
    'OrchestratorExample/Orchestrator/Handlers/StatusSummaryDeadLetterQueue': ['AwsSolutions-SQS3'],
    // The dead-letter queue of the asynchronously invoked handlers and of the EventBridge targets (docs/COMPLIANCE.md).
    'OrchestratorExample/Orchestrator/FailedEventsQueue': ['AwsSolutions-SQS3'],
    // Log delivery and X-Ray of the state machines; a workflow follows its nested activity executions.
    'OrchestratorExample/Orchestrator/StateMachineRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]'],
    'OrchestratorExample/Onboarding/Role/DefaultPolicy': [
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<ref>:*]',
    ],
    // aws-cdk-lib's AwsCustomResource provider (plugin registration): its runtime is aws-cdk-lib's choice.
    'OrchestratorExamplePlugins/AWS679f53fac002430cb0da5b7982bd2287': ['AwsSolutions-L1'],
    // The queue bridge of the example's queue plugin (Ledger): X-Ray, as the handlers.
    'OrchestratorExamplePlugins/CdkOrchestratorQueueBridge/Role/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]'],
  });
});

test('the plugin registrations run with the library\'s provider role (no managed policy) and log group', () => {
  const template = result.assembly.getStackByName('OrchestratorExamplePlugins').template;
  const roles = Object.values<any>(template.Resources).filter((resource) => resource.Type === 'AWS::IAM::Role');
  expect(roles.filter((role) => role.Properties.ManagedPolicyArns)).toEqual([]);
  const providers = Object.entries<any>(template.Resources).filter(([id]) => id.startsWith('AWS679f53fac002430cb0da5b7982bd2287'));
  const provider = providers.find(([, resource]) => resource.Type === 'AWS::Lambda::Function')![1];
  expect(provider.Properties.Role['Fn::GetAtt'][0]).toMatch(/^CdkOrchestratorRegistrationProviderRole/);
  expect(provider.Properties.LoggingConfig.LogGroup.Ref).toMatch(/^CdkOrchestratorRegistrationProviderLogs/);
});
