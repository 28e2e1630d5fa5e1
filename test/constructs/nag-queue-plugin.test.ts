// cdk-nag's AwsSolutions pack over queue plugins (DESIGN.md "Queue bridge"): an encrypted
// orchestrator in its stack, a standard and a FIFO queue plugin in another. The queues are SSL-only,
// encrypted and have a dead-letter queue; what the pack cannot accept is acknowledged by the library
// where it creates or grants it, and the plugin functions (written like examples/app.ts's) need
// nothing else.
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { acknowledgements, newNagApp, synthWithAwsSolutions } from './nag-util';
import { ActivityStage, Orchestrator } from '../../src';

function compliantFunction(scope: Stack, id: string): lambda.Function {
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  logGroup.grantWrite(role);
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({ batchItemFailures: [] });'),
    timeout: Duration.seconds(30),
    role,
    logGroup,
  });
}

const app = newNagApp();
const platform = new Stack(app, 'Platform');
const orch = new Orchestrator(platform, 'Orch', {
  activities: ['Step1'],
  orchestratorName: 'orders',
  encryptionKey: new kms.Key(platform, 'Key', { enableKeyRotation: true }),
});
const plugins = new Stack(app, 'Plugins');
orch.activity('Step1').addPlugin(compliantFunction(plugins, 'Slow'), { stage: ActivityStage.PARALLEL, pluginName: 'Slow', queue: true });
orch.activity('Step1').addPlugin(compliantFunction(plugins, 'Ordered'), {
  stage: ActivityStage.PARALLEL, pluginName: 'Ordered', queue: true, fifoKey: 'customer', mandatory: false,
});
const result = synthWithAwsSolutions(app);

test('no finding is left for the user', () => {
  expect(result.violations).toEqual([]);
  expect(result.success).toBe(true);
});

test('the plugins stack: only the library\'s acknowledgements, on what it creates or grants', () => {
  // The customer managed key's action patterns, on that one key (table writes, sending to the queues).
  const kmsPatterns = ['AwsSolutions-IAM5[Action::kms:GenerateDataKey*]', 'AwsSolutions-IAM5[Action::kms:ReEncrypt*]'];
  expect(acknowledgements(plugins)).toEqual({
    // X-Ray (active tracing) supports no resource-level permissions.
    // Two queue plugins of one activity in one stack: two bridges (SNS keeps one subscription per topic and endpoint).
    'Plugins/CdkOrchestratorQueueBridge/Role/DefaultPolicy': [...kmsPatterns, 'AwsSolutions-IAM5[Resource::*]'],
    'Plugins/CdkOrchestratorQueueBridge2/Role/DefaultPolicy': [...kmsPatterns, 'AwsSolutions-IAM5[Resource::*]'],
    // A queue plugin reports its own state (the status table and its key); it reads its queue with kms:Decrypt only.
    'Plugins/SlowRole/DefaultPolicy': kmsPatterns,
    'Plugins/OrderedRole/DefaultPolicy': kmsPatterns,
    // The registrations write the encrypted plugin table.
    'Plugins/Slow/Plugin-Step1-async/Registration/CustomResourcePolicy': kmsPatterns,
    'Plugins/Ordered/Plugin-Step1-async/Registration/CustomResourcePolicy': kmsPatterns,
    // aws-cdk-lib's AwsCustomResource provider (plugin registration): its runtime is aws-cdk-lib's choice.
    'Plugins/AWS679f53fac002430cb0da5b7982bd2287': ['AwsSolutions-L1'],
  });
});
