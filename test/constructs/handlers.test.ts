import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { newStack, Synth } from './util';
import { HandlerLogLevel, Orchestrator, OrchestratorHandlers } from '../../src';

function handlersIn(stack: Stack, props: { logLevel?: HandlerLogLevel; powertoolsLayer?: lambda.ILayerVersion } = {}) {
  const table = (id: string, stream?: dynamodb.StreamViewType) => new dynamodb.Table(stack, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    stream,
  });
  return new OrchestratorHandlers(stack, 'Handlers', {
    orchestratorName: 'orders',
    statusTable: table('Status', dynamodb.StreamViewType.NEW_AND_OLD_IMAGES),
    pluginTable: table('Plugins'),
    ...props,
  });
}

/** The functions that run a handler bundle: they have the Powertools environment. */
const powertoolsFunctions = (resources: Record<string, any>) => Object.values<any>(resources)
  .filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties.Environment?.Variables?.POWERTOOLS_SERVICE_NAME);

/** The version of an installed package (its package.json is not exported: read it from node_modules). */
const installedVersion = (name: string) => JSON.parse(readFileSync(join(__dirname, '..', '..', 'node_modules', name, 'package.json'), 'utf8')).version;

// The Powertools environment of the six handlers (DESIGN.md "Handler environment"); the defaults are
// asserted with the rest of each function in orchestrator.test.ts.
test('logLevel sets POWERTOOLS_LOG_LEVEL of every handler; service name, metrics namespace and orchestrator name stay', () => {
  const stack = newStack();
  const table = (id: string, stream?: dynamodb.StreamViewType) => new dynamodb.Table(stack, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    stream,
  });
  new OrchestratorHandlers(stack, 'Handlers', {
    orchestratorName: 'orders',
    statusTable: table('Status', dynamodb.StreamViewType.NEW_AND_OLD_IMAGES),
    pluginTable: table('Plugins'),
    logLevel: HandlerLogLevel.DEBUG,
  });
  const s = new Synth(stack);
  const functions = s.pathsOf('AWS::Lambda::Function');
  expect(functions).toHaveLength(6);
  for (const path of functions) {
    expect(s.resource(path).Properties.Environment.Variables).toMatchObject({
      POWERTOOLS_SERVICE_NAME: 'cdk-orchestrator',
      POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator',
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
      ORCHESTRATOR_NAME: 'orders',
    });
  }
});

test('every handler, the feature ones too, gets ORCHESTRATOR_NAME: the orchestrator dimension of its metrics', () => {
  const stack = newStack();
  const table = (id: string, stream?: dynamodb.StreamViewType) => new dynamodb.Table(stack, id, {
    partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    stream,
  });
  new OrchestratorHandlers(stack, 'Handlers', {
    orchestratorName: 'billing',
    statusTable: table('Status', dynamodb.StreamViewType.NEW_AND_OLD_IMAGES),
    pluginTable: table('Plugins'),
    stuckAfter: Duration.minutes(15),
    pluginRegistrar: true,
  });
  const functions = powertoolsFunctions(new Synth(stack).resources);
  expect(functions).toHaveLength(8);
  expect(new Set(functions.map((r) => r.Properties.Environment.Variables.ORCHESTRATOR_NAME))).toEqual(new Set(['billing']));
});

describe('Powertools layer', () => {
  test('by default every handler gets AWS\'s public Powertools layer of the installed release, its ARN read from SSM at deploy time', () => {
    const stack = newStack();
    handlersIn(stack);
    const template = new Synth(stack).template.toJSON();

    // The release the bundles were built and tested with: the installed packages, one version.
    const version = installedVersion('@aws-lambda-powertools/tracer');
    expect(installedVersion('@aws-lambda-powertools/logger')).toBe(version);
    expect(installedVersion('@aws-lambda-powertools/metrics')).toBe(version);
    expect(OrchestratorHandlers.powertoolsVersion()).toBe(version);

    // (The other SSM-typed parameter is the CDK bootstrap version's.)
    const parameters = Object.entries<any>(template.Parameters ?? {}).filter(([, p]) => String(p.Default).startsWith('/aws/service/powertools/'));
    expect(parameters.map(([, p]) => [p.Type, p.Default])).toEqual([['AWS::SSM::Parameter::Value<String>', `/aws/service/powertools/typescript/generic/all/${version}`]]);
    const functions = Object.values<any>(template.Resources).filter((r) => r.Type === 'AWS::Lambda::Function');
    expect(functions).toHaveLength(6);
    for (const fn of functions) {
      expect(fn.Properties.Layers).toEqual([{ Ref: parameters[0][0] }]);
      expect(fn.Properties.TracingConfig).toEqual({ Mode: 'Active' });
    }
  });

  test('powertoolsLayer replaces the public layer (regions and partitions without it); no SSM parameter then', () => {
    const stack = newStack();
    const arn = 'arn:aws-cn:lambda:cn-north-1:123456789012:layer:MyPowertools:3';
    const orchestrator = new Orchestrator(stack, 'Orch', {
      activities: ['A'],
      powertoolsLayer: lambda.LayerVersion.fromLayerVersionArn(stack, 'Mine', arn),
    });
    const template = new Synth(stack).template.toJSON();

    expect(orchestrator.handlers.powertoolsLayer.layerVersionArn).toBe(arn);
    expect(Object.values<any>(template.Parameters ?? {}).filter((p) => String(p.Default).startsWith('/aws/service/powertools/'))).toEqual([]);
    // Every function running a handler bundle (the ones with the Powertools environment) has it.
    const handlers = powertoolsFunctions(template.Resources);
    expect(handlers.length).toBeGreaterThanOrEqual(6);
    for (const fn of handlers) expect(fn.Properties.Layers).toEqual([arn]);
  });
});

test('Orchestrator logLevel reaches every handler; INFO by default', () => {
  const quiet = newStack('Quiet');
  new Orchestrator(quiet, 'Orch', { activities: ['A'], logLevel: HandlerLogLevel.ERROR });
  const standard = newStack('Standard');
  new Orchestrator(standard, 'Orch', { activities: ['A'] });

  const levels = (stack: Stack) => powertoolsFunctions(new Synth(stack).resources)
    .map((r) => r.Properties.Environment.Variables.POWERTOOLS_LOG_LEVEL);
  expect(levels(quiet).length).toBeGreaterThanOrEqual(6);
  expect(new Set(levels(quiet))).toEqual(new Set(['ERROR']));
  expect(levels(standard).length).toBe(levels(quiet).length);
  expect(new Set(levels(standard))).toEqual(new Set(['INFO']));
});
