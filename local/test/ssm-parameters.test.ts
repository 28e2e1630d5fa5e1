/**
 * SSM Parameter Store values from outside the app: `--ssm-parameter NAME=VALUE` gives the value a
 * template parameter of type `AWS::SSM::Parameter::Value<...>` reads at deployment (here a plugin's
 * environment variable) and serves `GetParameter` at run time. The pre-flight names every such
 * parameter left without a value (CDK's own bootstrap-version parameter aside), before anything starts.
 */
import { App, Stack } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as ssm from 'aws-cdk-lib/aws-ssm';
import { ActivityStage, Orchestrator, Workflow } from '../../src';
import { main } from '../src/cli';
import { preflight } from '../src/preflight';
import { captureIo } from './support/capture-io';

const API_URL = '/team/api-url';
const FEATURE_FLAG = '/team/feature-flag';

/**
 * A PRE plugin that checks the deploy-time value (its environment) and a run-time GetParameter: a
 * business error names what it got instead (the run then fails with that message).
 */
const CHECK_CODE = `
const { SSMClient, GetParameterCommand } = require('@aws-sdk/client-ssm');
exports.handler = async () => {
  const flag = await new SSMClient({}).send(new GetParameterCommand({ Name: '${FEATURE_FLAG}' }));
  const got = process.env.API_URL + ' flag=' + flag.Parameter.Value;
  return got === 'https://api.example.com flag=on' ? { state: 'Complete' } : { state: 'Error', message: 'got ' + got };
};`;

describe('--ssm-parameter', () => {
  let directory: string;

  beforeAll(() => {
    const app = new App();
    const stack = new Stack(app, 'Ssm');
    const orchestrator = new Orchestrator(stack, 'Orch', { activities: ['Check'], orchestratorName: 'ssm' });
    new Workflow(stack, 'Onboard', { orchestrator, activities: ['Check'], workflowName: 'onboard' });
    const check = new lambda.Function(stack, 'Check', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline(CHECK_CODE),
      environment: { API_URL: ssm.StringParameter.valueForStringParameter(stack, API_URL) },
    });
    ssm.StringParameter.fromStringParameterName(stack, 'Flag', FEATURE_FLAG).grantRead(check);
    orchestrator.activity('Check').addPlugin(check, { stage: ActivityStage.PRE, pluginName: 'check' });
    directory = app.synth().directory;
  }, 120_000);

  test('the pre-flight names each SSM parameter the templates read without a value, and malformed flags', () => {
    const missing = preflight({ app: directory, workflow: 'onboard', checkJava: false });
    expect(missing.problems).toEqual([{
      problem: expect.stringMatching(/^SSM parameter \/team\/api-url has no value \(template parameter Ssm\.SsmParameterValue\S+ reads it at deployment, and the app uses it\)$/),
      fix: '--ssm-parameter /team/api-url=VALUE'.replace(/^/, 'Give its value: '),
    }]);

    const malformed = preflight({ app: directory, checkJava: false, ssmParameters: ['/team/api-url', `${API_URL}=https://api.example.com`] });
    expect(malformed.problems.map((p) => p.problem)).toEqual(['--ssm-parameter "/team/api-url" is not NAME=VALUE']);

    const given = preflight({ app: directory, checkJava: false, ssmParameters: [`${API_URL}=https://api.example.com/v1?a=b`] });
    expect(given.problems).toEqual([]);
    expect(given.ssmParameters).toEqual({ [API_URL]: 'https://api.example.com/v1?a=b' });
    const check = given.assembly!.functions.find((f) => f.path === 'Ssm/Check')!;
    expect(check.environment.API_URL).toBe('https://api.example.com/v1?a=b');
    // The orchestrator's handlers read the Powertools layer's version from SSM for `Layers` only:
    // the engine provides no layers, so that value is not asked for.
    expect(given.assembly!.ssmParameterReads.filter((r) => r.ssmName.startsWith('/aws/service/powertools/')).map((r) => r.used)).toEqual(expect.arrayContaining([false]));
  });

  test('a run uses the values at deployment (environment) and at run time (GetParameter)', async () => {
    const { io, out, err } = captureIo();
    const code = await main(['run', '--app', directory, '--workflow', 'onboard', '--input', '{"uid":"ssm-1","metadata":{}}', '--json',
      '--ssm-parameter', `${API_URL}=https://api.example.com`, '--ssm-parameter', `${FEATURE_FLAG}=on`], io);
    expect({ code, err: err.join('') }).toEqual({ code: 0, err: '' });
    const run = JSON.parse(out.join(''));
    expect(run.statusDocument.activities.Check.pre.mandatory.check).toMatchObject({ state: 'Complete' });
    expect(run.statusDocument.status.state).toBe('Complete');
  }, 120_000);
});
