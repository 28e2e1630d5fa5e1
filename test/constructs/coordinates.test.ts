// The orchestrator's coordinates in SSM Parameter Store (src/private/coordinates.ts): names, values,
// where each parameter lives, the options, and what they cost in resources.
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import { newStack, Synth } from './util';
import { Orchestrator, Workflow } from '../../src';
import { activityGroupOf, SCALE } from '../../src/private/scale';

type Json = any;

function synth(props: Partial<ConstructorParameters<typeof Orchestrator>[2]> = {}, activities = ['Step1', 'Step2']) {
  const stack = newStack();
  const orch = new Orchestrator(stack, 'Orch', { activities, orchestratorName: 'orders', ...props });
  return { orch, stack, s: new Synth(stack) };
}

/** parameter name -> value (references readable) of every AWS::SSM::Parameter in a Synth. */
function parameters(s: Synth): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const path of s.pathsOf('AWS::SSM::Parameter')) {
    const { Name, Value, Type, Tier } = s.resource(path).Properties;
    expect({ Type, Tier }).toEqual({ Type: 'String', Tier: undefined }); // standard tier: free
    out[s.flat(Name)] = s.flat(Value);
  }
  return out;
}

test('by default: one value per shared coordinate, a JSON config and one JSON parameter per activity under /cdk-orchestrator/<name>', () => {
  const { orch, s } = synth();
  expect(orch.parameterPrefix).toBe('/cdk-orchestrator/orders');
  const p = parameters(s);
  expect(Object.keys(p).sort()).toEqual([
    '/cdk-orchestrator/orders/activities/Step1',
    '/cdk-orchestrator/orders/activities/Step2',
    '/cdk-orchestrator/orders/config',
    '/cdk-orchestrator/orders/pluginOutcomeFunction/arn',
    '/cdk-orchestrator/orders/pluginTable/arn',
    '/cdk-orchestrator/orders/pluginTable/name',
    '/cdk-orchestrator/orders/sequentialStageRole/arn',
    '/cdk-orchestrator/orders/startRunFunction/arn',
    '/cdk-orchestrator/orders/statusTable/arn',
    '/cdk-orchestrator/orders/statusTable/name',
    '/cdk-orchestrator/orders/statusTable/streamArn',
  ]);
  expect(p['/cdk-orchestrator/orders/statusTable/name']).toBe('${Orch/StatusTable}');
  expect(p['/cdk-orchestrator/orders/statusTable/arn']).toBe('${Orch/StatusTable.Arn}');
  expect(p['/cdk-orchestrator/orders/statusTable/streamArn']).toBe('${Orch/StatusTable.StreamArn}');
  expect(p['/cdk-orchestrator/orders/pluginTable/name']).toBe('${Orch/PluginTable}');
  expect(p['/cdk-orchestrator/orders/startRunFunction/arn']).toBe('${Orch/Handlers/StartRun.Arn}');
  expect(p['/cdk-orchestrator/orders/pluginOutcomeFunction/arn']).toBe('${Orch/Handlers/PluginOutcome.Arn}');
  expect(p['/cdk-orchestrator/orders/sequentialStageRole/arn']).toBe('${Orch/Handlers/SequentialStageRole.Arn}');

  expect(JSON.parse(p['/cdk-orchestrator/orders/config'])).toEqual({
    version: 1,
    orchestratorName: 'orders',
    statusTable: { name: '${Orch/StatusTable}', arn: '${Orch/StatusTable.Arn}', streamArn: '${Orch/StatusTable.StreamArn}' },
    pluginTable: { name: '${Orch/PluginTable}', arn: '${Orch/PluginTable.Arn}', functionNameIndex: 'functionName' },
    startRunFunctionArn: '${Orch/Handlers/StartRun.Arn}',
    pluginOutcomeFunctionArn: '${Orch/Handlers/PluginOutcome.Arn}',
    sequentialStageRoleArn: '${Orch/Handlers/SequentialStageRole.Arn}',
    pluginTag: 'cdk-orchestrator:orders=plugin',
    activityParameterPath: '/cdk-orchestrator/orders/activities/',
    workflowParameterPath: '/cdk-orchestrator/orders/workflows/',
  });
  expect(JSON.parse(p['/cdk-orchestrator/orders/activities/Step1'])).toEqual({
    version: 1,
    activity: 'Step1',
    stateMachineArn: '${Orch/Activities/Step1/StateMachine}',
    topics: {
      pre: '${Orch/Activities/Step1/PreTopic}',
      parallel: '${Orch/Activities/Step1/ParallelTopic}',
      post: '${Orch/Activities/Step1/PostTopic}',
    },
  });
  // The activity's parameter is a child of the activity.
  expect(s.pathsOf('AWS::SSM::Parameter')).toContain('Orch/Activities/Step1/Coordinates');
});

test('parameterPrefix moves every parameter; without run-time registration the config names no plugin tag', () => {
  const { orch, s } = synth({ parameterPrefix: '/platform/prod/orders', runtimeRegistration: false });
  expect(orch.parameterPrefix).toBe('/platform/prod/orders');
  const p = parameters(s);
  expect(Object.keys(p).every((name) => name.startsWith('/platform/prod/orders/'))).toBe(true);
  expect(Object.keys(p)).toHaveLength(11);
  expect(JSON.parse(p['/platform/prod/orders/config']).pluginTag).toBeUndefined();
});

test('publishParameters: false publishes nothing; combined with parameterPrefix it is a synth error', () => {
  const { orch, s } = synth({ publishParameters: false });
  expect(orch.parameterPrefix).toBeUndefined();
  expect(s.pathsOf('AWS::SSM::Parameter')).toEqual([]);
  expect(() => synth({ publishParameters: false, parameterPrefix: '/x' }))
    .toThrow('Orchestrator \'TestStack/Orch\': parameterPrefix "/x" is set but publishParameters is false: drop one of them');
});

test.each([
  ['no leading slash', 'cdk/orders'],
  ['a trailing slash', '/cdk/orders/'],
  ['an empty level', '/cdk//orders'],
  ['a space', '/cdk/my orders'],
  ['the reserved /aws prefix', '/aws/orders'],
  ['the reserved /ssm prefix', '/SSM/orders'],
  ['more than 10 levels', '/a/b/c/d/e/f/g/h/i/j/k'],
])('parameterPrefix with %s is a synth error naming the rules', (_, prefix) => {
  expect(() => synth({ parameterPrefix: prefix })).toThrow(
    `Orchestrator 'TestStack/Orch': parameterPrefix "${prefix}" is not a valid SSM parameter path: it must begin with "/", have 1-10 levels`);
});

test('beyond 25 activities, each activity\'s parameter lives in its nested stack next to it; the shared ones in the parent', () => {
  const names = Array.from({ length: 30 }, (_, i) => `Step${i}`);
  const { orch, s } = synth({}, names);
  expect(s.pathsOf('AWS::SSM::Parameter')).toHaveLength(9);
  const step29 = orch.activity('Step29');
  const nested = Stack.of(step29) as NestedStack;
  expect(NestedStack.isNestedStack(nested)).toBe(true);
  const inGroup = new Synth(nested);
  const own = inGroup.pathsOf('AWS::SSM::Parameter').filter((p) => p.endsWith('Step29/Coordinates'));
  expect(own).toHaveLength(1);
  const value = JSON.parse(inGroup.flat(inGroup.resource(own[0]).Properties.Value));
  // Built from names in the nested stack's own environment: no parameter passed in for it.
  expect(value.stateMachineArn).toBe('arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:orders-Step29');
  expect(value.topics.parallel).toBe('arn:${AWS::Partition}:sns:${AWS::Region}:${AWS::AccountId}:orders-Step29-parallel');
  // 6 resources per grouped activity now: state machine, 3 topics, the parallel topic's policy, the parameter.
  const perGroup = names.filter((n) => activityGroupOf(n) === activityGroupOf('Step29')).length;
  expect(Object.keys(inGroup.resources)).toHaveLength(perGroup * (SCALE.resourcesPerGroupedActivity + 1));
});

test('a nested stack holds at most 82 activities when each has a parameter (99 without)', () => {
  // 83 names that all fall into group 0 (the group is chosen by the name's hash).
  const names: string[] = [];
  for (let i = 0; names.length < 83; i++) if (activityGroupOf(`A${i}`) === 0) names.push(`A${i}`);
  expect(() => synth({}, names)).toThrow(/83 of the 83 activities fall into nested stack Group0 .*which holds at most 82 \(CloudFormation allows 500 resources per template, 6 per activity\)/);
  expect(() => synth({ publishParameters: false }, names)).not.toThrow();
});

describe('workflow coordinates', () => {
  /** An orchestrator not yet synthesized (its workflows come next). */
  function unsynthesized(props: Partial<ConstructorParameters<typeof Orchestrator>[2]> = {}) {
    const stack = newStack();
    return { stack, orch: new Orchestrator(stack, 'Orch', { activities: ['Step1', 'Step2'], orchestratorName: 'orders', ...props }) };
  }

  test('each workflow publishes <prefix>/workflows/<name>: JSON with its state machine ARN, as a child of the workflow', () => {
    const { orch, stack } = unsynthesized({ parameterPrefix: '/platform/orders' });
    new Workflow(stack, 'Checkout', { orchestrator: orch, activities: ['Step1', 'Step2'] });
    new Workflow(stack, 'Refund', { orchestrator: orch, activities: ['Step2'], workflowName: 'refund-v2' });
    const s = new Synth(stack);
    const p = parameters(s);
    expect(Object.keys(p).filter((name) => name.includes('/workflows/')).sort())
      .toEqual(['/platform/orders/workflows/Checkout', '/platform/orders/workflows/refund-v2']);
    expect(JSON.parse(p['/platform/orders/workflows/refund-v2'])).toEqual({ version: 1, workflow: 'refund-v2', stateMachineArn: '${Refund/StateMachine}' });
    expect(JSON.parse(p['/platform/orders/config']).workflowParameterPath).toBe('/platform/orders/workflows/');
    expect(s.pathsOf('AWS::SSM::Parameter')).toEqual(expect.arrayContaining(['Checkout/Coordinates', 'Refund/Coordinates']));
  });

  test('a workflow in another stack creates its parameter in its own stack, and the orchestrator\'s stack does not depend on it', () => {
    const app = new App();
    const orchStack = new Stack(app, 'OrchStack');
    const orch = new Orchestrator(orchStack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders' });
    const wfStack = new Stack(app, 'WorkflowStack');
    new Workflow(wfStack, 'Checkout', { orchestrator: orch, activities: ['Step1'] });
    const wf = new Synth(wfStack);
    const orchSynth = new Synth(orchStack);
    expect(wf.pathsOf('AWS::SSM::Parameter')).toEqual(['Checkout/Coordinates']);
    expect(JSON.parse(parameters(wf)['/cdk-orchestrator/orders/workflows/Checkout']).stateMachineArn).toBe('${Checkout/StateMachine}');
    expect(Object.keys(parameters(orchSynth)).some((name) => name.includes('/workflows/'))).toBe(false);
    // No cycle: only the workflow's stack depends on the orchestrator's.
    expect(orchStack.dependencies).toEqual([]);
    expect(wfStack.dependencies).toEqual([orchStack]);
    expect(() => app.synth()).not.toThrow();
  });

  test('publishParameters: false publishes no workflow parameter; neither does a workflow on an imported orchestrator', () => {
    const { orch, stack } = unsynthesized({ publishParameters: false });
    new Workflow(stack, 'Checkout', { orchestrator: orch, activities: ['Step1'] });
    const imported = Orchestrator.fromOrchestratorAttributes(stack, 'Imported', {
      orchestratorName: 'billing',
      activities: ['Charge'],
      statusTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/billing-status',
      pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111122223333:table/billing-plugins',
      startRunFunctionArn: 'arn:aws:lambda:eu-west-1:111122223333:function:billing-start-run',
    });
    new Workflow(stack, 'Billing', { orchestrator: imported, activities: ['Charge'] });
    expect(new Synth(stack).pathsOf('AWS::SSM::Parameter')).toEqual([]);
  });
});
