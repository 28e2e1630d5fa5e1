/**
 * Weak cross-stack references, the default of apps made by `cdk init` now
 * (`"@aws-cdk/core:defaultCrossStackReferences": "weak"`): the plugin stack reads the orchestrator's
 * tables and topics through `Fn::GetStackOutput`. The example app synthesized that way runs its
 * workflow to Complete on the engine, as it does with strong references (`Fn::ImportValue`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildExampleApp } from '../../examples/app';
import { DYNAMODB_LOCAL_ENDPOINT } from '../../test/support/dynamodb-endpoint';
import { formatEvent, LocalEngine, loadAssembly } from '../src';

const WEAK = { '@aws-cdk/core:defaultCrossStackReferences': 'weak' };

describe('Fn::GetStackOutput (weak cross-stack references)', () => {
  let directory: string;
  let engine: LocalEngine | undefined;

  beforeAll(() => {
    directory = buildExampleApp(new App({ context: WEAK })).synth().directory;
  }, 120_000);

  afterAll(async () => {
    await engine?.stop();
  });

  test('the plugin stack references the orchestrator stack only through Fn::GetStackOutput', () => {
    const plugins = readFileSync(join(directory, 'OrchestratorExamplePlugins.template.json'), 'utf8');
    expect(plugins).toContain('"Fn::GetStackOutput"');
    expect(plugins).not.toContain('"Fn::ImportValue"');
  });

  test('references resolve to the producing stack\'s resource names', () => {
    const assembly = loadAssembly(directory, { region: 'us-east-1', account: '123456789012' });
    const pluginTable = assembly.tables.find((t) => t.path?.includes('PluginTable'))!;
    expect(pluginTable).toBeDefined();
    const registrars = assembly.customResources.filter((cr) => cr.stackName === 'OrchestratorExamplePlugins');
    expect(registrars.length).toBeGreaterThan(0);
    for (const cr of registrars) expect(JSON.stringify(cr.create.parameters)).toContain(pluginTable.name);
  });

  test('the workflow runs to Complete', async () => {
    engine = new LocalEngine({ app: directory, dynamodbEndpoint: process.env[DYNAMODB_LOCAL_ENDPOINT], retryIntervalMs: 10 });
    await engine.start();
    const result = await engine.runWorkflow('Onboarding', { uid: 'weak-1', metadata: { customer: 'ACME' } }).result();
    if (result.status !== 'SUCCEEDED') throw new Error(`${result.error}: ${result.cause}\n${engine.events.map((e) => formatEvent(e)).join('\n')}`);
    await engine.idle();
    const doc = await engine.statusDocument('weak-1', 'Onboarding');
    expect(doc?.status.state).toBe('Complete');
  }, 120_000);
});
