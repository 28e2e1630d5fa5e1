// Scale (DESIGN.md "Scale"): 200 activities in one Orchestrator synthesize quickly into templates
// that CloudFormation accepts (< 500 resources, < 1 MB each), with the same `orchestrator.activity`
// API; workflows, grants and plugins reach the activities in nested stacks by their names.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { CloudAssembly } from 'aws-cdk-lib/cx-api';
import { newNagApp, synthWithAwsSolutions } from './nag-util';
import { Activity, ActivityStage, Orchestrator, Workflow } from '../../src';
import { activityGroupOf, MAX_ACTIVITIES_PER_GROUP, SCALE } from '../../src/private/scale';

type Json = any;

const NAMES = Array.from({ length: 200 }, (_, i) => `Step${i}`);
const MAX_RESOURCES = 500;
const MAX_TEMPLATE_BYTES = 1_000_000;
/** IAM: all inline policies of a role together, whitespace excluded. */
const MAX_ROLE_POLICY_CHARS = 10_240;

function plainFunction(scope: Stack, id: string): lambda.Function {
  return new lambda.Function(scope, id, {
    runtime: lambda.Runtime.NODEJS_22_X,
    handler: 'index.handler',
    code: lambda.Code.fromInline('exports.handler = async () => ({});'),
  });
}

/** Every template of the assembly, parent and nested, by file name. */
function templates(assembly: CloudAssembly, stacks: Stack[]): Map<string, { text: string; json: Json }> {
  const out = new Map<string, { text: string; json: Json }>();
  const files = stacks.flatMap((stack) => [
    stack.templateFile,
    ...stack.node.findAll().filter(NestedStack.isNestedStack).map((nested) => nested.templateFile),
  ]);
  for (const file of files) {
    const text = readFileSync(join(assembly.directory, file), 'utf8');
    out.set(file, { text, json: JSON.parse(text) });
  }
  return out;
}

function countsOf(template: Json): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of Object.values<Json>(template.Resources ?? {})) counts[r.Type] = (counts[r.Type] ?? 0) + 1;
  return counts;
}

/** Resolved-size estimate of a policy document: the JSON without whitespace, tokens rendered. */
function policyChars(stack: Stack, statements: Json): number {
  return JSON.stringify(stack.resolve(statements)).length;
}

describe('200 activities in one Orchestrator', () => {
  let app: App;
  let stack: Stack;
  let plugins: Stack;
  let orch: Orchestrator;
  let all: Workflow;
  let assembly: CloudAssembly;
  let seconds: number;
  let files: Map<string, { text: string; json: Json }>;

  beforeAll(() => {
    const started = Date.now();
    app = new App();
    stack = new Stack(app, 'Platform');
    orch = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities: NAMES });
    all = new Workflow(stack, 'All', { orchestrator: orch, activities: NAMES });
    new Workflow(stack, 'Few', { orchestrator: orch, activities: ['Step0', 'Step199'] });
    // A plugin in the orchestrator's stack and plugins in a stack of their own.
    orch.activity('Step198').addPlugin(plainFunction(stack, 'Local'), { stage: ActivityStage.PARALLEL, pluginName: 'Local' });
    plugins = new Stack(app, 'Plugins');
    orch.activity('Step199').addPlugin(plainFunction(plugins, 'Rate'), { stage: ActivityStage.PARALLEL, pluginName: 'Rate' });
    orch.activity('Step199').addPlugin(plainFunction(plugins, 'Check'), { stage: ActivityStage.PRE, pluginName: 'Check' });
    orch.activity('Step199').stateMachine.grantStartExecution(plainFunction(plugins, 'Starter'));
    assembly = app.synth();
    seconds = (Date.now() - started) / 1000;
    files = templates(assembly, [stack, plugins]);
  }, 120_000);

  test('synthesizes in under 60 s', () => {
    console.log(`200 activities: constructs + synth in ${seconds.toFixed(1)} s, ${files.size} templates`);
    expect(seconds).toBeLessThan(60);
  });

  test('every template, parent and nested, has fewer than 500 resources and 1 MB', () => {
    expect(files.size).toBe(2 + SCALE.activityGroups);
    for (const [file, { text, json }] of files) {
      const resources = Object.keys(json.Resources ?? {}).length;
      expect({ file, resources: resources < MAX_RESOURCES, bytes: Buffer.byteLength(text) < MAX_TEMPLATE_BYTES })
        .toEqual({ file, resources: true, bytes: true });
    }
  });

  test('orchestrator.activity(\'Step199\') works: same API, resources reached by their names', () => {
    const step199 = orch.activity('Step199');
    expect(step199).toBeInstanceOf(Activity);
    expect(step199.activityName).toBe('Step199');
    expect(NestedStack.isNestedStack(Stack.of(step199))).toBe(true);
    expect(stack.resolve(step199.stateMachine.stateMachineArn)).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':stateMachine:orders-Step199']],
    });
    expect(stack.resolve(step199.topic(ActivityStage.PARALLEL).topicArn)).toEqual({
      'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sns:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':orders-Step199-parallel']],
    });
    expect(orch.findActivity('Step0')).toBe(orch.activities[0]);
    expect(() => orch.activity('Step200')).toThrow(/unknown activity "Step200"/);
  });

  test('per activity: a state machine, three topics, the parallel topic\'s policy and its SSM parameter (6); the parent holds one nested stack per group', () => {
    const nested = [...files].filter(([file]) => file.endsWith('.nested.template.json')).map(([, t]) => t.json);
    const total: Record<string, number> = {};
    for (const template of nested) {
      for (const [type, n] of Object.entries(countsOf(template))) total[type] = (total[type] ?? 0) + n;
      // Nothing but activities in a nested stack, and no outputs: nobody refers into it.
      expect(template.Outputs).toBeUndefined();
    }
    // The activity's coordinates parameter lives next to it (src/private/coordinates.ts).
    expect(total).toEqual({ 'AWS::StepFunctions::StateMachine': 200, 'AWS::SNS::Topic': 600, 'AWS::SNS::TopicPolicy': 200, 'AWS::SSM::Parameter': 200 });
    const parent = files.get(stack.templateFile)!.json;
    expect(countsOf(parent)['AWS::CloudFormation::Stack']).toBe(SCALE.activityGroups);
    expect(countsOf(parent)['AWS::StepFunctions::StateMachine']).toBe(2); // the two workflows
    // The parallel topic keeps its SSL-only policy and the parallel-stage publish grant.
    const policies = nested.flatMap((t) => Object.values<Json>(t.Resources).filter((r) => r.Type === 'AWS::SNS::TopicPolicy'));
    for (const policy of policies) {
      expect(policy.Properties.PolicyDocument.Statement.map((s: Json) => s.Sid ?? s.Effect)).toEqual(['AllowPublishThroughSSLOnly', 'ParallelStagePublish']);
    }
  });

  test('an activity\'s group depends on its name only: adding or removing activities moves no other activity', () => {
    const groupOfIn = (names: string[]) => {
      const o = new Orchestrator(new Stack(new App(), 'S'), 'Orch', { orchestratorName: 'orders', activities: names });
      return (name: string) => Stack.of(o.activity(name)).node.id;
    };
    const before = groupOfIn(NAMES.slice(0, 40));
    const after = groupOfIn([...NAMES.slice(0, 40).filter((n) => n !== 'Step7'), 'Step200', 'NewOne']);
    for (const name of NAMES.slice(0, 40).filter((n) => n !== 'Step7')) expect(after(name)).toBe(before(name));
    expect(Stack.of(orch.activity('Step42')).node.id).toBe(`Group${activityGroupOf('Step42')}`);
    // SHA-256 spreads the 200 names evenly enough: no group near its limit.
    const sizes = Array.from({ length: SCALE.activityGroups }, (_, g) => NAMES.filter((n) => activityGroupOf(n) === g).length);
    expect(Math.max(...sizes)).toBeLessThan(MAX_ACTIVITIES_PER_GROUP / 2);
  });

  test('a workflow over all 200 activities: its role uses the orchestrator\'s name patterns and stays far below IAM\'s limit', () => {
    const role = all.node.findChild('Role') as iam.Role;
    const policy = role.node.findChild('DefaultPolicy') as iam.Policy;
    const statements = stack.resolve(policy.document.toJSON()).Statement;
    const bySid = Object.fromEntries(statements.map((s: Json) => [s.Sid, s.Resource]));
    const arn = (rest: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':states:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, rest]] });
    expect(bySid.StartActivities).toEqual(arn(':stateMachine:orders-*'));
    expect(bySid.FollowActivities).toEqual(arn(':execution:orders-*:*'));
    expect(policyChars(stack, statements)).toBeLessThan(MAX_ROLE_POLICY_CHARS / 4);
    // Its definition starts each activity by name: no output of a nested stack.
    const workflowId = stack.getLogicalId((all.stateMachine as sfn.StateMachine).node.defaultChild as sfn.CfnStateMachine);
    const definition = JSON.stringify(files.get(stack.templateFile)!.json.Resources[workflowId]);
    expect(definition).toContain(':stateMachine:orders-Step199');
    expect(definition).not.toContain('Outputs.');
  });

  test('a workflow over a few activities names exactly their state machines and executions', () => {
    const role = stack.node.findChild('Few').node.findChild('Role') as iam.Role;
    const statements = stack.resolve((role.node.findChild('DefaultPolicy') as iam.Policy).document.toJSON()).Statement;
    const start = statements.find((s: Json) => s.Sid === 'StartActivities').Resource.map((r: Json) => r['Fn::Join'][1].at(-1));
    const follow = statements.find((s: Json) => s.Sid === 'FollowActivities').Resource.map((r: Json) => r['Fn::Join'][1].at(-1));
    expect(start).toEqual([':stateMachine:orders-Step0', ':stateMachine:orders-Step199']);
    expect(follow).toEqual([':execution:orders-Step0:*', ':execution:orders-Step199:*']);
  });

  test('plugins in another stack: it depends on the orchestrator stack only, imports no nested output, no cycle', () => {
    expect(plugins.dependencies).toEqual([stack]);
    expect(stack.dependencies).toEqual([]);
    const template = files.get(plugins.templateFile)!.text;
    expect(template).toContain(':orders-Step199-parallel');
    expect(template).not.toMatch(/ImportValue[^}]*(Group|Step199)/);
    const parent = files.get(stack.templateFile)!.json;
    // The parent exports only what plugins always need (table, roles, plugin-outcome), nothing per activity.
    expect(Object.keys(parent.Outputs).filter((k) => /Step|Group|Topic|StateMachine/.test(k))).toEqual([]);
  });

  test('a PARALLEL plugin in the orchestrator\'s stack subscribes by name, after the nested stack that creates the topic', () => {
    const parent = files.get(stack.templateFile)!.json;
    const subscription = Object.values<Json>(parent.Resources).find((r) => r.Type === 'AWS::SNS::Subscription');
    const group = Stack.of(orch.activity('Step198')) as NestedStack;
    const nestedId = stack.getLogicalId(group.nestedStackResource!);
    expect(subscription.DependsOn).toContain(nestedId);
    expect(JSON.stringify(subscription.Properties.TopicArn)).toContain(':orders-Step198-parallel');
  });
});

test('cdk-nag AwsSolutions: nothing left on an orchestrator in nested stacks and a workflow over all of it', () => {
  const app = newNagApp();
  const stack = new Stack(app, 'Big');
  const names = Array.from({ length: SCALE.maxActivitiesInStack + 5 }, (_, i) => `Step${i}`);
  const encryptionKey = new kms.Key(stack, 'Key', { enableKeyRotation: true });
  const orch = new Orchestrator(stack, 'Orch', { activities: names, orchestratorName: 'big', encryptionKey });
  new Workflow(stack, 'All', { orchestrator: orch, activities: names });
  new Workflow(stack, 'Two', { orchestrator: orch, activities: ['Step1', 'Step2'] });
  expect(synthWithAwsSolutions(app).violations).toEqual([]);
});

test('a workflow over many activities of an imported orchestrator uses the name patterns in the activities\' account and region', () => {
  const stack = new Stack(new App(), 'Flows');
  const names = Array.from({ length: SCALE.maxWorkflowActivityArns + 1 }, (_, i) => `Step${i}`);
  const orchestrator = Orchestrator.fromOrchestratorAttributes(stack, 'Orch', {
    orchestratorName: 'orders',
    activities: names,
    statusTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-status',
    pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/orders-plugins',
    startRunFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:orders-start-run',
  });
  const flow = new Workflow(stack, 'Flow', { orchestrator, activities: names });
  const role = flow.node.findChild('Role') as iam.Role;
  const statements = stack.resolve((role.node.findChild('DefaultPolicy') as iam.Policy).document.toJSON()).Statement;
  const bySid = Object.fromEntries(statements.map((st: Json) => [st.Sid, st.Resource]));
  expect(bySid.StartActivities).toBe('arn:aws:states:eu-west-1:111122223333:stateMachine:orders-*');
  expect(bySid.FollowActivities).toBe('arn:aws:states:eu-west-1:111122223333:execution:orders-*:*');
});

describe('layout threshold', () => {
  const names = (n: number) => Array.from({ length: n }, (_, i) => `A${i}`);
  const nestedStacks = (n: number) => {
    const stack = new Stack(new App(), 'S');
    new Orchestrator(stack, 'Orch', { orchestratorName: 'o', activities: names(n) });
    return stack.node.findAll().filter(NestedStack.isNestedStack).length;
  };

  test(`up to ${SCALE.maxActivitiesInStack} activities stay in the orchestrator's stack; one more and they go into nested stacks`, () => {
    expect(nestedStacks(SCALE.maxActivitiesInStack)).toBe(0);
    expect(nestedStacks(SCALE.maxActivitiesInStack + 1)).toBeGreaterThan(0);
  });

  test(`a group that would hold more than ${MAX_ACTIVITIES_PER_GROUP} activities is a synth error naming the limit`, () => {
    const crowded: string[] = [];
    for (let i = 0; crowded.length <= MAX_ACTIVITIES_PER_GROUP; i++) if (activityGroupOf(`X${i}`) === 0) crowded.push(`X${i}`);
    // Without the per-activity parameters (with them, 82: test/constructs/coordinates.test.ts).
    expect(() => new Orchestrator(new Stack(new App(), 'S'), 'Orch', { orchestratorName: 'o', activities: crowded, publishParameters: false }))
      .toThrow(new RegExp(`${MAX_ACTIVITIES_PER_GROUP + 1} of the ${MAX_ACTIVITIES_PER_GROUP + 1} activities fall into nested stack Group0.*at most ${MAX_ACTIVITIES_PER_GROUP}`));
  });
});
