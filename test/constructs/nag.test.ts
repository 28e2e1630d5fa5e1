import { Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { acknowledgements, newNagApp, synthWithAwsSolutions } from './nag-util';
import { Orchestrator, Workflow } from '../../src';

// cdk-nag's AwsSolutions pack over a full orchestrator with a customer managed key: nothing is left
// for the user. Each finding is acknowledged where the library creates the resource
// (src/private/nag.ts has the reasons); the list below makes a new acknowledgement a visible change.
// Test/examples: test/constructs/nag-example.test.ts runs the pack over examples/app.ts.
function orchestratorApp(customize?: (orch: Orchestrator) => void) {
  const app = newNagApp();
  const stack = new Stack(app, 'TestStack');
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2'], orchestratorName: 'orders', encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });
  new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1', 'Step2'] });
  customize?.(orch);
  return { app, result: synthWithAwsSolutions(app) };
}

test('cdk-nag AwsSolutions: no finding left, each acknowledged inside the library', () => {
  const { app, result } = orchestratorApp();
  expect(result.violations).toEqual([]);

  const handlerPolicies = ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome', 'StuckRuns']
    .map((h) => `TestStack/Orch/Handlers/${h}Role/DefaultPolicy`);
  // X-Ray active tracing (status-summary: also dynamodb:ListStreams); KMS action patterns on the one key.
  const handler = ['AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]', 'AwsSolutions-IAM5[Resource::*]'];
  // Task-token calls, scoped to this orchestrator's state machines by name.
  const taskTokens = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:orders-*]';
  const taggedPlugins = 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:*]';
  expect(acknowledgements(app)).toEqual({
    ...Object.fromEntries(handlerPolicies.map((policy) => [policy, handler])),
    'TestStack/Orch/Handlers/ParallelStageRole/DefaultPolicy': [...handler, taskTokens],
    'TestStack/Orch/Handlers/StatusSummaryRole/DefaultPolicy': [...handler, taskTokens],
    // Run-time registration: invoking plugin functions tagged for this orchestrator (ABAC condition), and
    // the running executions of its own state machines by name (src/private/runtime-registration.ts).
    'TestStack/Orch/Handlers/SequentialStageRole/DefaultPolicy': [...handler, taggedPlugins],
    'TestStack/Orch/Handlers/PluginRegistrarRole/DefaultPolicy': [...handler, taggedPlugins,
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:orders-*:*]', taskTokens],
    // The queue IS the dead-letter destination of the stream mapping (cdk-nag only recognizes redrive DLQs).
    'TestStack/Orch/Handlers/StatusSummaryDeadLetterQueue': ['AwsSolutions-SQS3'],
    // The dead-letter queue of the asynchronously invoked handlers and of the EventBridge targets (docs/COMPLIANCE.md).
    'TestStack/Orch/FailedEventsQueue': ['AwsSolutions-SQS3'],
    // Log delivery and X-Ray support no resource-level permissions; nested executions (.sync) are known at run time only.
    'TestStack/Orch/StateMachineRole/DefaultPolicy': ['AwsSolutions-IAM5[Resource::*]'],
    'TestStack/WF/Role/DefaultPolicy': [
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<ref>:*]',
    ],
  });
});

test('a wildcard the library does not justify is still reported, even where a justified one has the same finding', () => {
  const { result } = orchestratorApp((orch) => {
    orch.handlers.startRun.role!.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['s3:GetObject'], resources: ['*'] }));
  });
  expect(result.violations).toEqual(['AwsSolutions-IAM5[Resource::*] at TestStack/Orch/Handlers/StartRunRole/DefaultPolicy/Resource']);
});
