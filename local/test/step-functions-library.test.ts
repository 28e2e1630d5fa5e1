/**
 * aws-local-stepfunctions is loaded with asl-validator and the AWS SDK's Lambda client deferred
 * (step-functions-library.ts): a start whose definitions passed validation before loads neither.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runTypeScriptChild } from './support/processes';
import { stepFunctionsLibrary } from '../src/engine/step-functions-library';

const ROOT = join(__dirname, '..', '..');

/** In a fresh process: load the library, run a definition without validating it, then validate a broken one. */
const SCRIPT = `
const { stepFunctionsLibrary } = require(process.argv[1]);
const deferredLoaded = () => Object.keys(require.cache)
  .filter((file) => /[\\\\/](asl-validator|@aws-sdk[\\\\/]client-lambda|@aws-sdk[\\\\/]credential-providers)[\\\\/]/.test(file))
  .map((file) => file.match(/(asl-validator|client-lambda|credential-providers)/)[1]);
(async () => {
  const { StateMachine } = stepFunctionsLibrary();
  const atLoad = [...new Set(deferredLoaded())];
  const machine = new StateMachine({ StartAt: 'A', States: { A: { Type: 'Pass', Result: { ok: 1 }, End: true } } }, { validationOptions: { noValidate: true } });
  const output = await machine.run({}).result;
  const afterRun = [...new Set(deferredLoaded())];
  let refused;
  let refusedAt;
  try {
    new StateMachine({ StartAt: 'Missing', States: { A: { Type: 'Pass', End: true } } }, { validationOptions: { checkArn: false } });
  } catch (e) {
    refused = e.message;
    refusedAt = e.stack.match(/main\\.node\\.cjs:(\\d+)/)?.[1];
  }
  const afterValidation = [...new Set(deferredLoaded())];
  // The library's own Lambda task (the engine never lets it run one): its client is made and sends.
  const task = { StartAt: 'T', States: { T: { Type: 'Task', Resource: 'arn:aws:lambda:us-east-1:123456789012:function:f', End: true } } };
  let lambdaError;
  try {
    const awsConfig = { region: 'us-east-1', credentials: { accessKeys: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'secret' } } };
    await new StateMachine(task, { validationOptions: { noValidate: true }, awsConfig }).run({}).result;
  } catch (e) {
    lambdaError = String(e.cause?.message ?? e.message);
  }
  process.stdout.write(JSON.stringify({ atLoad, output, afterRun, refused, refusedAt, afterValidation, lambdaError, afterLambda: [...new Set(deferredLoaded())].sort() }) + '\\n');
})().catch((e) => { console.error(e); process.exit(1); });
`;

describe('aws-local-stepfunctions with its heavy imports deferred', () => {
  test('loading it and running a validated definition load neither asl-validator nor the SDK\'s Lambda client; validating loads asl-validator, a Lambda task the client', async () => {
    const { code, stdout, stderr } = await runTypeScriptChild(['-e', SCRIPT, join(ROOT, 'local', 'src', 'engine', 'step-functions-library.ts')], {
      // Nothing listens there: the Lambda call fails at once, without a network.
      AWS_ENDPOINT_URL_LAMBDA: 'http://127.0.0.1:9',
      AWS_MAX_ATTEMPTS: '1',
    });
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const seen = JSON.parse(stdout.trim().split('\n').pop()!);
    expect(seen).toMatchObject({ atLoad: [], output: { ok: 1 }, afterRun: [], afterValidation: ['asl-validator'] });
    expect(seen.refused).toMatch(/MISSING_TRANSITION_TARGET|Missing/);
    // The stack names the build's own line of the throw.
    const build = readFileSync(require.resolve('aws-local-stepfunctions'), 'utf8').split('\n');
    expect(Number(seen.refusedAt)).toBe(build.findIndex((line) => line.includes('State machine definition is invalid')) + 1);
    // The deferred Lambda client is a real one once used: the call reaches the (closed) endpoint.
    expect(seen.lambdaError).toMatch(/ECONNREFUSED/);
    expect(seen.afterLambda).toEqual(['asl-validator', 'client-lambda']);
  }, 90_000);

  test('its objects and errors belong to the caller\'s realm (Jest\'s test context here)', async () => {
    const { StateMachine } = stepFunctionsLibrary();
    expect(StateMachine).toBeInstanceOf(Function);
    expect(() => new StateMachine({ StartAt: 'Missing', States: { A: { Type: 'Pass', End: true } } }, { validationOptions: { checkArn: false } }))
      .toThrow(Error);
    const machine = new StateMachine({ StartAt: 'A', States: { A: { Type: 'Pass', Result: [1, 2], End: true } } }, { validationOptions: { noValidate: true } });
    const output = await machine.run({}).result;
    expect(output).toBeInstanceOf(Array);
    expect(output).toEqual([1, 2]);
  });
});
