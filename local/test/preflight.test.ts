/**
 * The CLI's pre-flight and exit codes, in process: every problem is reported at once with its fix,
 * before anything starts; assemblies come from apps synthesized here.
 */
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { App, CfnResource, Fn, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { main } from '../src/cli';
import { preflight } from '../src/preflight';
import { captureIo } from './support/capture-io';

function synth(build: (stack: Stack) => void): string {
  const app = new App();
  const stack = new Stack(app, 'Pre');
  build(stack);
  return app.synth().directory;
}

function plugin(stack: Stack, id: string, props: Partial<lambda.FunctionProps> = {}) {
  return new lambda.Function(stack, id, {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({})'), ...props,
  });
}

describe('pre-flight', () => {
  let orchestratorApp: string;
  let dir: string;

  beforeAll(() => {
    orchestratorApp = synth((stack) => {
      const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'pre' });
      new Workflow(stack, 'Onboard', { orchestrator, activities: ['Step1'], workflowName: 'onboard' });
      orchestrator.activity('Step1').addPlugin(plugin(stack, 'Rate'), { stage: ActivityStage.PARALLEL, pluginName: 'rate' });
    });
    dir = mkdtempSync(join(tmpdir(), 'preflight-'));
    writeFileSync(join(dir, 'rate.ts'), 'export const handler = async () => ({});');
  }, 120_000);

  test('reports every problem at once, each with a fix: Java, workflow, input, plugins keys and modules', () => {
    const map = join(dir, 'plugins.json');
    writeFileSync(map, JSON.stringify({ 'Pre/Rate': './rate.ts#handler', 'Pre/Rtae': './rate.ts#handler', 'Pre/Orch': './missing.ts#handler' }));
    const { problems } = preflight({ app: orchestratorApp, workflow: 'onbaord', input: '{uid: 1}', plugins: map, javaCommand: 'java-that-is-not-installed' });
    const text = problems.map((p) => p.problem).join('\n');
    expect(text).toMatch(/Java is not on PATH/);
    expect(text).toMatch(/No workflow "onbaord"/);
    expect(text).toMatch(/--input is not valid JSON/);
    expect(text).toMatch(/--plugins key "Pre\/Rtae" names no function/);
    expect(text).toMatch(/module \.\/missing\.ts#handler not found/);
    expect(problems).toHaveLength(5);
    expect(problems.find((p) => /Java/.test(p.problem))!.fix).toMatch(/apt-get install -y openjdk-17-jre-headless.*brew install openjdk@17/);
    expect(problems.find((p) => /No workflow/.test(p.problem))!.fix).toBe('Use one of: onboard (--workflow NAME)');
    expect(problems.find((p) => /Rtae/.test(p.problem))!.fix).toContain('"Pre/Rate"');
  });

  // A Java installation found through a symlink, as Debian's /usr/bin/java. Its launcher here fails
  // if run: the version must come from the installation's release file.
  test('reads the Java version from the installation\'s release file, through symlinks, without starting Java', () => {
    const home = join(dir, 'jdk-11');
    mkdirSync(join(home, 'bin'), { recursive: true });
    writeFileSync(join(home, 'release'), 'IMPLEMENTOR="Test"\nJAVA_VERSION="11.0.2"\n');
    writeFileSync(join(home, 'bin', 'java'), '#!/bin/sh\necho "started" >&2\nexit 3\n', { mode: 0o755 });
    mkdirSync(join(dir, 'usr-bin'));
    symlinkSync(join(home, 'bin', 'java'), join(dir, 'usr-bin', 'java'));
    const { problems } = preflight({ app: orchestratorApp, workflow: 'onboard', javaCommand: join(dir, 'usr-bin', 'java') });
    expect(problems.map((p) => p.problem)).toEqual(['Java 11 is on PATH; DynamoDB Local needs Java 17+']);
  });

  test('`java` is looked up on PATH, as the shell finds it', () => {
    const home = join(dir, 'jdk-9');
    mkdirSync(join(home, 'bin'), { recursive: true });
    writeFileSync(join(home, 'release'), 'JAVA_VERSION="9.0.4"\n');
    writeFileSync(join(home, 'bin', 'java'), '#!/bin/sh\nexit 3\n', { mode: 0o755 });
    const bin = join(dir, 'path-bin');
    mkdirSync(bin);
    symlinkSync(join(home, 'bin', 'java'), join(bin, 'java'));
    const path = process.env.PATH;
    process.env.PATH = `${bin}${delimiter}${path ?? ''}`;
    try {
      const { problems } = preflight({ app: orchestratorApp, workflow: 'onboard' });
      expect(problems.map((p) => p.problem)).toEqual(['Java 9 is on PATH; DynamoDB Local needs Java 17+']);
    } finally {
      process.env.PATH = path;
    }
  });

  test('without a release file (a launcher stub), the version comes from `java -version`', () => {
    const stub = join(dir, 'stub-bin');
    mkdirSync(stub);
    writeFileSync(join(stub, 'java'), '#!/bin/sh\necho \'openjdk version "1.8.0_392"\' >&2\n', { mode: 0o755 });
    const { problems } = preflight({ app: orchestratorApp, workflow: 'onboard', javaCommand: join(stub, 'java') });
    expect(problems.map((p) => p.problem)).toEqual(['Java 8 is on PATH; DynamoDB Local needs Java 17+']);
  });

  test('a valid run passes (Java on PATH, known workflow, JSON input from a file)', () => {
    const input = join(dir, 'input.json');
    writeFileSync(input, '{"uid":"a-1","metadata":{}}');
    const result = preflight({ app: orchestratorApp, workflow: 'onboard', input: `@${input}` });
    expect(result.problems).toEqual([]);
    expect(result.input).toEqual({ uid: 'a-1', metadata: {} });
  });

  test('an assembly without an orchestrator says so', () => {
    const app = synth((stack) => { plugin(stack, 'Lonely'); });
    const { problems } = preflight({ app, workflow: 'onboard', checkJava: false });
    expect(problems.map((p) => p.problem)).toEqual([expect.stringMatching(/holds no cdk-orchestrator workflow \(stacks: Pre\)/)]);
  });

  test('an unsupported CloudFormation function fails at load naming the function, the resource and the property', () => {
    const app = synth((stack) => {
      const fn = plugin(stack, 'Cidrs');
      (fn.node.defaultChild as lambda.CfnFunction).addPropertyOverride('Environment.Variables.BLOCKS', Fn.cidr('10.0.0.0/16', 2, '8'));
    });
    const { problems } = preflight({ app, checkJava: false });
    expect(problems[0].problem).toMatch(/Fn::Cidr is not supported: resource Pre\/Cidrs \(Cidrs[0-9A-F]+, AWS::Lambda::Function\) in stack Pre, property Environment/);
  });

  test('a function in another runtime or a container image needs a --plugins mapping', () => {
    const app = synth((stack) => {
      new CfnResource(stack, 'Java', { type: 'AWS::Lambda::Function', properties: { Runtime: 'java21', Handler: 'x.Handler::handle', Code: { ZipFile: 'x' }, Role: 'r' } });
      new CfnResource(stack, 'Image', { type: 'AWS::Lambda::Function', properties: { PackageType: 'Image', Code: { ImageUri: 'x' }, Role: 'r' } });
    });
    const problems = preflight({ app, checkJava: false }).problems.filter((p) => p.problem.startsWith('Function'));
    expect(problems.map((p) => p.problem)).toEqual([
      expect.stringMatching(/Function Pre\/Java .* runs java21, which the local engine does not run/),
      expect.stringMatching(/Function Pre\/Image .* runs a container image or no runtime/),
    ]);
    expect(problems[0].fix).toMatch(/^Map it to local code with --plugins, e\.g\. \{ "Pre\/Java": /);
    const mapped = preflight({ app, checkJava: false, plugins: writeMap({ 'Pre/Java': './rate.ts', 'Pre/Image': './rate.ts' }) });
    expect(mapped.problems.filter((p) => !/holds no cdk-orchestrator workflow/.test(p.problem))).toEqual([]);
  });

  function writeMap(map: Record<string, string>): string {
    const file = join(dir, `map-${Object.keys(map).length}-${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(file, JSON.stringify(map));
    return file;
  }
});

describe('CLI exit codes', () => {
  test('usage errors exit 2 and list the missing options', async () => {
    const { io, err } = captureIo();
    expect(await main(['run', '--app', '/nonexistent'], io)).toBe(2);
    const text = err.join('');
    expect(text).toMatch(/3 problems, nothing was started/);
    expect(text).toMatch(/--workflow is missing/);
    expect(text).toMatch(/--input is missing/);
    expect(text).toMatch(/No cloud assembly at \/nonexistent/);
  });

  test('an unknown command or option exits 2 with the usage', async () => {
    const a = captureIo();
    expect(await main(['go'], a.io)).toBe(2);
    expect(a.err.join('')).toMatch(/Unknown command "go"[\s\S]*usage:/);
    const b = captureIo();
    expect(await main(['run', '--wokflow', 'x'], b.io)).toBe(2);
    expect(b.err.join('')).toMatch(/wokflow/);
  });
});
