import * as kms from 'aws-cdk-lib/aws-kms';
import { AwsSolutionsChecks } from 'cdk-nag';
import { newStack } from './util';
import { Orchestrator, Workflow } from '../../src';

// cdk-nag's AwsSolutions pack over a full orchestrator: every finding is listed here with the reason
// it stays, so a new one fails this test.
test('cdk-nag AwsSolutions: only the findings we justify', () => {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2'], orchestratorName: 'orders', encryptionKey: new kms.Key(stack, 'Key', { enableKeyRotation: true }) });
  new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1', 'Step2'] });
  const report = new AwsSolutionsChecks().validateScope(stack.node.scope!);
  const findings: Record<string, string[]> = {};
  for (const v of report.violations) {
    findings[v.ruleName] = v.violatingResources.map((r: any) => String(r.constructPath).replace('TestStack/', '').replace(/\/Resource$/, '')).sort();
  }
  const handlerPolicies = ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome'].map((h) => `Orch/Handlers/${h}Role/DefaultPolicy`);
  expect(findings).toEqual({
    // X-Ray, CloudWatch Logs delivery (state machines) and dynamodb:ListStreams support no resource-level permissions.
    'AwsSolutions-IAM5[Resource::*]': [...handlerPolicies, 'Orch/StateMachineRole/DefaultPolicy', 'WF/Role/DefaultPolicy'].sort(),
    // KMS action patterns on the one key (aws-cdk-lib's table/queue key grants; SNS publish).
    'AwsSolutions-IAM5[Action::kms:GenerateDataKey*]': handlerPolicies.sort(),
    'AwsSolutions-IAM5[Action::kms:ReEncrypt*]': handlerPolicies.sort(),
    // Task-token calls, scoped to this orchestrator's state machines by name.
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:stateMachine:orders-*]': [
      'Orch/Handlers/ParallelStageRole/DefaultPolicy', 'Orch/Handlers/StatusSummaryRole/DefaultPolicy',
    ],
    // Nested executions (.sync): their ARNs are only known at run time.
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<OrchActivitiesStep1StateMachine60FAB7F2.Name>:*]': ['WF/Role/DefaultPolicy'],
    'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<OrchActivitiesStep2StateMachine98A3B118.Name>:*]': ['WF/Role/DefaultPolicy'],
    // The queue IS the dead-letter destination of the stream mapping (cdk-nag only recognizes redrive DLQs).
    'AwsSolutions-SQS3': ['Orch/Handlers/StatusSummaryDeadLetterQueue'],
  });
});
