/**
 * A synthesized orchestrator app (one activity, a workflow, a plugin per stage) and template edits
 * that remove one grant the library makes, to run the app without it on the engine.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ActivityStage, Orchestrator, Workflow } from '../../../src';
import { DYNAMODB_LOCAL_ENDPOINT } from '../../../test/support/dynamodb-endpoint';
import { LocalEngine, LocalEngineOptions } from '../../src';

export const STACK = 'Auth';
export const ACCOUNT = '123456789012';
const PLUGIN = 'exports.handler = async () => ({ state: "Complete" });';

/** Synthesizes the app once (its tables and topics encrypted with a customer managed key if `encrypted`); returns its cdk.out directory. */
export function synthesizeOrchestratorApp(stackName = STACK, encrypted = false): string {
  const stack = new Stack(new App(), stackName);
  const encryptionKey = encrypted ? new kms.Key(stack, 'Key') : undefined;
  const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'auth', encryptionKey });
  new Workflow(stack, 'Onboard', { orchestrator, activities: ['Step1'], workflowName: 'onboard' });
  const activity = orchestrator.activity('Step1');
  const plugin = (id: string) => new lambda.Function(stack, id, {
    runtime: lambda.Runtime.NODEJS_20_X, handler: 'index.handler', code: lambda.Code.fromInline(PLUGIN), timeout: Duration.seconds(10),
  });
  activity.addPlugin(plugin('PreCheck'), { stage: ActivityStage.PRE, pluginName: 'pre-check' });
  activity.addPlugin(plugin('Enrich'), { stage: ActivityStage.PARALLEL, pluginName: 'enrich' });
  activity.addPlugin(plugin('Notify'), { stage: ActivityStage.POST, pluginName: 'notify' });
  return (stack.node.root as App).synth().directory;
}

type Template = { Resources: Record<string, { Type: string; Properties: any }> };

/** A copy of the app whose template `edit` changed. */
export function editedApp(directory: string, edit: (template: Template) => void, stackName = STACK): string {
  const copy = mkdtempSync(join(tmpdir(), 'auth-app-'));
  cpSync(directory, copy, { recursive: true });
  const file = join(copy, `${stackName}.template.json`);
  const template = JSON.parse(readFileSync(file, 'utf8')) as Template;
  edit(template);
  writeFileSync(file, JSON.stringify(template));
  return copy;
}

/** Resources of `type` whose logical id starts with `logicalId` (a string) or matches it (a pattern). */
function resourcesOf(template: Template, type: string, logicalIdPrefix: string | RegExp) {
  const matches = (id: string) => (typeof logicalIdPrefix === 'string' ? id.startsWith(logicalIdPrefix) : logicalIdPrefix.test(id));
  const found = Object.entries(template.Resources).filter(([id, r]) => r.Type === type && matches(id));
  if (found.length === 0) throw new Error(`no ${type} ${logicalIdPrefix}* in the template`);
  return found;
}

/** Removes the statements granting `action` from the identity policies `AWS::IAM::Policy` `<policyPrefix>*`. */
export function withoutIdentityGrant(policyPrefix: string | RegExp, action: string) {
  return (template: Template) => {
    for (const [, policy] of resourcesOf(template, 'AWS::IAM::Policy', policyPrefix)) {
      const statements: any[] = policy.Properties.PolicyDocument.Statement;
      const kept = statements.filter((s) => ![s.Action].flat().includes(action));
      if (kept.length === statements.length) throw new Error(`${policyPrefix}* grants no ${action}`);
      policy.Properties.PolicyDocument.Statement = kept;
    }
  };
}

/** Removes the `Allow` statements of a resource policy (`AWS::SNS::TopicPolicy`, ...) `<prefix>*`. */
export function withoutResourcePolicyAllows(type: string, prefix: string) {
  return (template: Template) => {
    for (const [, policy] of resourcesOf(template, type, prefix)) {
      const statements: any[] = policy.Properties.PolicyDocument.Statement;
      policy.Properties.PolicyDocument.Statement = statements.filter((s) => s.Effect !== 'Allow');
    }
  };
}

/** Sets the tags of resources `<prefix>*` (what conditions on `aws:ResourceTag/*` read). */
export function withTags(type: string, prefix: string, tags: Record<string, string>) {
  return (template: Template) => {
    for (const [, resource] of resourcesOf(template, type, prefix)) {
      resource.Properties.Tags = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
    }
  };
}

/** Removes resources (e.g. an `AWS::Lambda::Permission`) `<prefix>*`. */
export function withoutResource(type: string, prefix: string) {
  return (template: Template) => {
    for (const [id] of resourcesOf(template, type, prefix)) delete template.Resources[id];
  };
}

export function startEngine(app: string, options: Partial<LocalEngineOptions> = {}): Promise<LocalEngine> {
  const engine = new LocalEngine({
    app,
    dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT],
    asyncRetryDelaysMs: [50, 100],
    retryIntervalMs: 50,
    authorization: 'enforce',
    logs: process.env.LOCAL_ENGINE_LOGS ? 'inherit' : 'silent',
    ...options,
  });
  return engine.start().then(() => engine, async (e) => {
    await engine.stop();
    throw e;
  });
}

/** `User: <principal> is not authorized to perform: <action> on resource: <resource> because no ... policy allows the <action> action`, as a pattern. */
export function denial(principal: string, action: string, resource: string, policy: 'identity' | 'resource' = 'identity'): RegExp {
  const quote = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/\\\*/g, '[^ ]*');
  return new RegExp(`User: ${quote(principal)} is not authorized to perform: ${quote(action)} on resource: ${quote(resource)} `
    + `because no ${policy}-based policy allows the ${quote(action)} action`);
}
