/** An app the local engine's process tests run: an orchestrator with one PRE plugin, synthesized to a directory. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ActivityStage, Orchestrator, Workflow } from '../../../src';

/**
 * Synthesizes workflow `flow` (activity `Step1`) whose PRE plugin `Plugin` runs `pluginCode` (inline
 * Node.js), registered at deploy time; returns the cloud assembly's directory.
 */
export function synthPluginApp(pluginCode: string): string {
  const outdir = mkdtempSync(join(tmpdir(), 'cli-app-'));
  const app = new App({ outdir });
  const stack = new Stack(app, 'Cli');
  const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'cli' });
  new Workflow(stack, 'Flow', { orchestrator, activities: ['Step1'], workflowName: 'flow' });
  const fn = new lambda.Function(stack, 'Plugin', {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline(pluginCode), timeout: Duration.seconds(60),
  });
  orchestrator.activity('Step1').addPlugin(fn, { stage: ActivityStage.PRE, pluginName: 'Plugin' });
  app.synth();
  return outdir;
}
