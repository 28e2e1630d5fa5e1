// A CDK app in three stacks: the platform team's orchestrator (three activities, one workflow); in a
// stack of its own, the plugins other teams add to its stages with `activity.addPlugin`; and an
// operations team's stack that uses the orchestrator imported by its attributes (alarm, grants).
//   cd examples && npx cdk synth
// examples/python/app.py is its twin: the same templates, resource for resource (`npx projen
// test:python` checks it).
// The plugins are plain Lambda functions (examples/plugins/*.ts) that use no orchestrator code: PRE
// and POST plugins are invoked synchronously, PARALLEL plugins report through Lambda destinations;
// Rate uses the plugin SDK (cdk-orchestrator/lib/sdk) and reports its own state; Ledger, a queue
// plugin, takes its messages from its own SQS queue and reports its state with the same SDK.
// Their TypeScript is bundled with esbuild as the app synthesizes (offline, no Docker) into
// examples/plugins/dist/<name>/index.js.
//
// `buildExampleApp()` builds the app without synthesizing it, so a test can check it (cdk-nag,
// test/constructs/nag-example.test.ts); run as the CDK app, this file synthesizes it.
import * as path from 'path';
import { App, CfnOutput, Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { buildSync } from 'esbuild';
import { ActivityStage, Orchestrator, Workflow } from '../src';

/** The example app: the orchestrator's, the plugins' and the operations' stacks, not synthesized yet. */
export function buildExampleApp(app: App = new App()): App {
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

  // Who may start runs: here a role for the service that takes the applications.
  const starter = new iam.Role(stack, 'StarterRole', {
    assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
    description: 'May start runs of the Onboarding workflow',
  });
  onboarding.grantStartWorkflow(starter);
  // An alarm of your own on a workflow metric (the orchestrator already alarms on failures).
  new cloudwatch.Alarm(stack, 'OnboardingSlowAlarm', {
    alarmDescription: 'Onboarding runs take more than 30 minutes (p90)',
    metric: onboarding.metricDuration({ statistic: 'p90', period: Duration.minutes(15) }),
    threshold: Duration.minutes(30).toMilliseconds(),
    evaluationPeriods: 2,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });

  new CfnOutput(stack, 'WorkflowStateMachineArn', { value: onboarding.stateMachine.stateMachineArn });
  new CfnOutput(stack, 'StatusTableName', { value: orchestrator.statusTable.tableName });
  new CfnOutput(stack, 'PluginTableName', { value: orchestrator.pluginTable.tableName });
  new CfnOutput(stack, 'Step2ParallelTopicArn', { value: orchestrator.activity('Step2').topic(ActivityStage.PARALLEL).topicArn });

  // The plugins: another team's stack. It refers to the orchestrator's stack (topics, plugin table,
  // handler roles), never the reverse, so it deploys and changes on its own.
  const plugins = new Stack(app, 'OrchestratorExamplePlugins', {
    description: 'cdk-orchestrator example: plugins of the Step1-Step3 activities',
  });

  // Step1, pre stage: checks the application first (sequential: lowest order runs first).
  orchestrator.activity('Step1').addPlugin(pluginFunction(plugins, 'CheckApplication', 'check-application'), {
    stage: ActivityStage.PRE,
    pluginName: 'CheckApplication',
    order: 10,
    timeout: Duration.seconds(30),
  });

  // Step2, parallel stage: two mandatory plugins the stage waits for, and an optional one that fails
  // (recorded `Error`; the stage ends `Optional Task Error` and the workflow goes on).
  const step2 = orchestrator.activity('Step2');
  // Rate uses the plugin SDK: it reports its own state, so it gets the status table's name and access.
  step2.addPlugin(pluginFunction(plugins, 'Rate', 'rate'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate', reportsStatus: true });
  step2.addPlugin(pluginFunction(plugins, 'FraudCheck', 'fraud-check'), {
    stage: ActivityStage.PARALLEL,
    pluginName: 'FraudCheck',
    // Counts as Error when it has not succeeded 10 minutes after the message (Lambda stops retrying).
    timeout: Duration.minutes(10),
  });
  step2.addPlugin(pluginFunction(plugins, 'Marketing', 'marketing'), {
    stage: ActivityStage.PARALLEL,
    pluginName: 'Marketing',
    mandatory: false,
    // Only runs whose metadata has product "home" or "car" reach it (an SNS subscription filter on
    // the message attributes; other runs do not wait for it).
    filterPolicy: { product: sns.SubscriptionFilter.stringFilter({ allowlist: ['home', 'car'] }) },
  });
  // A queue plugin: slow or throttled work, one message at a time from its own SQS queue, in order
  // per customer (FIFO); it reports its own state (plugin SDK).
  step2.addPlugin(pluginFunction(plugins, 'Ledger', 'ledger'), {
    stage: ActivityStage.PARALLEL,
    pluginName: 'Ledger',
    queue: true,
    fifoKey: 'customer',
  });

  // Step3, post stage: notifies once the work is done.
  orchestrator.activity('Step3').addPlugin(pluginFunction(plugins, 'Notify', 'notify'), {
    stage: ActivityStage.POST,
    pluginName: 'Notify',
  });

  // The operations team's stack: the orchestrator imported by its attributes, as a stack in another
  // app would (there, the ARNs come from the SSM parameters the orchestrator publishes under
  // /cdk-orchestrator/example/). An alarm on an imported activity's metric, and a support role that
  // may read and correct a run's status document.
  const operations = new Stack(app, 'OrchestratorExampleOperations', {
    description: 'cdk-orchestrator example: alarm and support role on the imported orchestrator',
  });
  const imported = Orchestrator.fromOrchestratorAttributes(operations, 'ImportedOrchestrator', {
    orchestratorName: 'example',
    activities: ['Step2'],
    statusTableArn: orchestrator.statusTable.tableArn,
    pluginTableArn: orchestrator.pluginTable.tableArn,
  });
  const importedStep2 = imported.findActivity('Step2');
  new cloudwatch.Alarm(operations, 'Step2FailuresAlarm', {
    alarmDescription: 'Step2 failed 3 times in 15 minutes',
    metric: importedStep2.metricFailed({ period: Duration.minutes(15) }),
    threshold: 3,
    evaluationPeriods: 1,
    treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
  });
  const support = new iam.Role(operations, 'SupportRole', {
    assumedBy: new iam.AccountRootPrincipal(),
    description: 'Reads and corrects run status documents',
  });
  imported.grantPluginStatus(support);

  return app;
}

/** A plain Node.js function from examples/plugins/<name>.ts, bundled here with esbuild. */
function pluginFunction(scope: Construct, id: string, name: string): lambda.Function {
  const outdir = path.join(__dirname, 'plugins', 'dist', name);
  buildSync({
    entryPoints: [path.join(__dirname, 'plugins', `${name}.ts`)],
    outfile: path.join(outdir, 'index.js'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    // The Lambda Node.js runtime provides the AWS SDK v3 (the plugin SDK uses it).
    external: ['@aws-sdk/*'],
    logLevel: 'warning',
  });
  // Its own role, allowed to write to its own log group only (the default role would carry the
  // AWSLambdaBasicExecutionRole managed policy, which cdk-nag's AwsSolutions-IAM4 reports).
  // addPlugin adds what the plugin needs to report its outcome.
  const logGroup = new logs.LogGroup(scope, `${id}Logs`, { retention: logs.RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.DESTROY });
  const role = new iam.Role(scope, `${id}Role`, { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
  logGroup.grantWrite(role);
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_24_X,
    architecture: lambda.Architecture.ARM_64,
    handler: 'index.handler',
    code: lambda.Code.fromAsset(outdir),
    memorySize: 128,
    timeout: Duration.seconds(10),
    description: `cdk-orchestrator example plugin ${id}`,
    role,
    logGroup,
  });
}

if (require.main === module) buildExampleApp().synth();
