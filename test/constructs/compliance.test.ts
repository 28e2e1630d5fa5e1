// docs/COMPLIANCE.md: the five cdk-nag packs and AWS Control Tower's cfn-guard rules over an app with
// two activities, a workflow and a PARALLEL plugin, in the compliant configuration (encryptionKey,
// vpc, alarmTopic, logRetention ONE_YEAR, backupPlan) and the plain one. Findings on the user's own
// resources (the key, VPC, topic, plan and plugin function below) are the user's and left out.
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as backup from 'aws-cdk-lib/aws-backup';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { PACKS, PacksResult, synthWithAllPacks } from './compliance-util';
import { newNagApp } from './nag-util';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

const USER_RESOURCES = /^App\/(Key|Vpc|Alarms|Backups|Plugin)\b|App\.template\.json\/(Key|Vpc|Alarms|Backups|Plugin)/;

function build(compliant: boolean): PacksResult {
  const app = newNagApp();
  const stack = new Stack(app, 'App');
  let key: kms.Key | undefined;
  if (compliant) {
    key = new kms.Key(stack, 'Key', { enableKeyRotation: true });
    key.addToResourcePolicy(new iam.PolicyStatement({
      effect: iam.Effect.DENY,
      principals: [new iam.AnyPrincipal()],
      actions: ['kms:CreateGrant'],
      resources: ['*'],
      conditions: { BoolIfExists: { 'kms:GrantIsForAWSResource': 'false', 'aws:PrincipalIsAWSService': 'false' } },
    }));
  }
  const orchestrator = new Orchestrator(stack, 'Orch', {
    activities: ['Step1', 'Step2'],
    orchestratorName: 'orders',
    ...(compliant ? {
      encryptionKey: key,
      vpc: new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] }),
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      alarmTopic: new sns.Topic(stack, 'Alarms', { masterKey: key, enforceSSL: true }),
      logRetention: logs.RetentionDays.ONE_YEAR,
      backupPlan: backup.BackupPlan.daily35DayRetention(stack, 'Backups'),
    } : {}),
  });
  new Workflow(stack, 'WF', { orchestrator, activities: ['Step1', 'Step2'] });
  const plugin = new lambda.Function(stack, 'Plugin', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('x') });
  orchestrator.activity('Step1').addPlugin(plugin, { stage: ActivityStage.PARALLEL, pluginName: 'Audit' });
  return synthWithAllPacks(app);
}

function libraryFindings(result: PacksResult): Record<string, string[]> {
  return Object.fromEntries(PACKS.map((pack) => [pack, result.violations[pack].filter((v) => !USER_RESOURCES.test(v.split(' at ')[1]))]));
}

const compliant = build(true);
const plain = build(false);

test('compliant configuration: 0 findings of any pack on the library\'s resources', () => {
  expect(compliant.pluginErrors).toEqual([]);
  expect(libraryFindings(compliant)).toEqual(Object.fromEntries(PACKS.map((pack) => [pack, []])));
});

test('plain configuration: AwsSolutions-clean; the other packs report only what the compliance props supply', () => {
  const findings = libraryFindings(plain);
  expect(findings.AwsSolutions).toEqual([]);
  const rules = (pack: typeof PACKS[number]) => [...new Set(findings[pack].map((v) => v.split(' at ')[0]))].sort();
  expect(rules('Serverless')).toEqual([]);
  expect(rules('NIST.800.53.R5')).toEqual(['NIST.800.53.R5-CloudWatchAlarmAction', 'NIST.800.53.R5-CloudWatchLogGroupEncrypted',
    'NIST.800.53.R5-DynamoDBInBackupPlan', 'NIST.800.53.R5-LambdaInsideVPC', 'NIST.800.53.R5-SNSEncryptedKMS']);
  expect(rules('HIPAA.Security')).toEqual(['HIPAA.Security-CloudWatchAlarmAction', 'HIPAA.Security-CloudWatchLogGroupEncrypted',
    'HIPAA.Security-DynamoDBInBackupPlan', 'HIPAA.Security-LambdaInsideVPC', 'HIPAA.Security-SNSEncryptedKMS']);
  expect(rules('PCI.DSS.321')).toEqual(['PCI.DSS.321-CloudWatchLogGroupEncrypted', 'PCI.DSS.321-LambdaInsideVPC', 'PCI.DSS.321-SNSEncryptedKMS']);
  expect(rules('ControlTower')).toEqual(['cloudwatch_alarm_action_check', 'cloudwatch_log_group_encrypted_check',
    'cloudwatch_log_group_retention_period_check', 'lambda_inside_vpc_check']);
  // Per pack: 11 alarms, 10 log groups, 2 tables, 9 functions (8 handlers and the provider), 6 topics.
  expect(Object.fromEntries(PACKS.map((pack) => [pack, findings[pack].length]))).toEqual({
    'AwsSolutions': 0, 'Serverless': 0, 'NIST.800.53.R5': 38, 'HIPAA.Security': 38, 'PCI.DSS.321': 25, 'ControlTower': 40,
  });
});

const template = compliant.assembly.getStackByName('App').template;
const resources = (type: string) => Object.entries<any>(template.Resources).filter(([, r]) => r.Type === type);

test('every function the library creates runs in the VPC; the asynchronously invoked ones have a dead-letter queue', () => {
  const functions = resources('AWS::Lambda::Function').filter(([id]) => !id.startsWith('Plugin'));
  expect(functions).toHaveLength(9);
  for (const [, fn] of functions) expect(fn.Properties.VpcConfig.SubnetIds).toHaveLength(2);
  const withDlq = functions.filter(([, fn]) => fn.Properties.DeadLetterConfig).map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort();
  expect(withDlq).toEqual(['OrchHandlersPluginOutcome', 'OrchHandlersPluginRegistrar', 'OrchHandlersStuckRuns']);
  const queues = resources('AWS::SQS::Queue');
  expect(queues.map(([id]) => id.replace(/[0-9A-F]{8}$/, '')).sort()).toEqual(['OrchFailedEventsQueue', 'OrchHandlersStatusSummaryDeadLetterQueue']);
  for (const [, queue] of queues) {
    expect(queue.Properties.RedriveAllowPolicy).toEqual({ redrivePermission: 'allowAll' });
    expect(queue.Properties.KmsMasterKeyId).toBeInstanceOf(Object);
  }
  for (const [, rule] of resources('AWS::Events::Rule')) {
    expect(rule.Properties.Targets.map((t: any) => t.DeadLetterConfig.Arn['Fn::GetAtt'][0])).toEqual([expect.stringMatching(/^OrchFailedEventsQueue/)]);
  }
});

test('every log group is under the key for a year; both tables are in the backup plan', () => {
  const groups = resources('AWS::Logs::LogGroup');
  expect(groups).toHaveLength(10);
  for (const [, group] of groups) {
    expect(group.Properties.KmsKeyId['Fn::GetAtt'][0]).toMatch(/^Key/);
    expect(group.Properties.RetentionInDays).toBe(365);
  }
  const [[, selection]] = resources('AWS::Backup::BackupSelection');
  expect(selection.Properties.BackupSelection.Resources.map((r: any) => r['Fn::GetAtt'][0].replace(/[0-9A-F]{8}$/, '')).sort())
    .toEqual(['OrchPluginTable', 'OrchStatusTable']);
});

test('vpcSubnets or securityGroups without vpc are named synth errors', () => {
  const stack = new Stack();
  expect(() => new Orchestrator(stack, 'A', { activities: ['S'], vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED } }))
    .toThrow('Orchestrator \'Default/A\': vpcSubnets is set but vpc is not: pass the vpc the orchestrator\'s functions run in, or drop vpcSubnets');
  const vpc = new ec2.Vpc(stack, 'Vpc');
  expect(() => new Orchestrator(stack, 'B', { activities: ['S'], vpc, securityGroups: [] }))
    .toThrow('Orchestrator \'Default/B\': securityGroups is empty');
});

test('a queue plugin\'s bridge runs in the orchestrator\'s VPC too, with the network-interface permissions', () => {
  const stack = new Stack(newNagApp(), 'Queued');
  const vpc = new ec2.Vpc(stack, 'Vpc', { natGateways: 0, subnetConfiguration: [{ name: 'private', subnetType: ec2.SubnetType.PRIVATE_ISOLATED }] });
  const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders', vpc });
  const worker = new lambda.Function(stack, 'Worker', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('x') });
  orchestrator.activity('Step1').addPlugin(worker, { stage: ActivityStage.PARALLEL, pluginName: 'Ledger', queue: true });
  const synthesized = Template.fromStack(stack).toJSON();
  const bridges = Object.entries<any>(synthesized.Resources)
    .filter(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('CdkOrchestratorQueueBridge'));
  expect(bridges).toHaveLength(1);
  const [, bridge] = bridges[0];
  const subnets = Object.keys(synthesized.Resources).filter((id) => synthesized.Resources[id].Type === 'AWS::EC2::Subnet');
  expect(bridge.Properties.VpcConfig.SubnetIds.map((ref: any) => ref.Ref).sort()).toEqual(subnets.sort());
  expect(bridge.Properties.VpcConfig.SecurityGroupIds).toHaveLength(1);
  const roleId = bridge.Properties.Role['Fn::GetAtt'][0];
  const statements = Object.values<any>(synthesized.Resources)
    .filter((r) => r.Type === 'AWS::IAM::Policy' && r.Properties.Roles.some((role: any) => role.Ref === roleId))
    .flatMap((r) => r.Properties.PolicyDocument.Statement);
  expect(statements).toContainEqual(expect.objectContaining({
    Action: expect.arrayContaining(['ec2:CreateNetworkInterface', 'ec2:DeleteNetworkInterface']), Resource: '*',
  }));
});
