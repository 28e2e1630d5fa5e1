import { App, Stack, Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Synth } from '../../work/main/test/constructs/util';
import { ActivityStage, Orchestrator } from '../../work/main/src';
test('x', () => {
  const app = new App();
  const orchStack = new Stack(app, 'Platform');
  const orch = new Orchestrator(orchStack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
  const plugins = new Stack(app, 'Plugins');
  const fn = new lambda.Function(plugins, 'Rate', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>{}') });
  orch.activity('Step1').addPlugin(fn, { stage: ActivityStage.PARALLEL, pluginName: 'Rate', filterPolicy: { region: sns.SubscriptionFilter.stringFilter({ allowlist: ['EU'] }) }, timeout: Duration.minutes(10) });
  const pre = new lambda.Function(plugins, 'Pre', { runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler=async()=>{}') });
  orch.activity('Step1').addPlugin(pre, { stage: ActivityStage.PRE, pluginName: 'Check', order: 10 });
  const s = new Synth(plugins);
  console.log(JSON.stringify(s.flat(s.resources), null, 1));
  app.synth();
});
