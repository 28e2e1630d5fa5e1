import * as path from 'node:path';
import { Duration, Stack, StackProps } from 'aws-cdk-lib/core';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { ActivityStage, Orchestrator } from 'cdk-orchestrator';

export interface PluginStackProps extends StackProps {
  readonly orchestrator: Orchestrator;
}

/** Plugins in their own stack (weak cross-stack references to the orchestrator's resources). */
export class PluginStack extends Stack {
  constructor(scope: Construct, id: string, props: PluginStackProps) {
    super(scope, id, props);
    const node = (name: string, handler: string) => new lambda.Function(this, name, {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler,
      code: lambda.Code.fromAsset(path.join(__dirname, '..', 'plugins', 'node')),
      timeout: Duration.seconds(10),
    });
    const rate = new lambda.Function(this, 'Rate', {
      runtime: lambda.Runtime.PYTHON_3_12,
      handler: 'rate.handler',
      code: lambda.Code.fromAsset(path.join(__dirname, '..', 'plugins', 'python')),
      timeout: Duration.seconds(10),
    });
    props.orchestrator.activity('Check').addPlugin(node('CheckApplication', 'check.handler'), { stage: ActivityStage.PRE, pluginName: 'CheckApplication' });
    props.orchestrator.activity('Rate').addPlugin(rate, { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    props.orchestrator.activity('Rate').addPlugin(node('Marketing', 'marketing.handler'), {
      stage: ActivityStage.PARALLEL,
      pluginName: 'Marketing',
      mandatory: false,
    });
  }
}
