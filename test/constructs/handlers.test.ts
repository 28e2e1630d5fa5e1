import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { newStack, Synth } from './util';
import { HandlerLogLevel, OrchestratorHandlers } from '../../src';

// The Powertools environment of the six handlers (DESIGN.md "Handler environment"); the defaults are
// asserted with the rest of each function in orchestrator.test.ts.
test('logLevel sets POWERTOOLS_LOG_LEVEL of every handler; service name and metrics namespace stay', () => {
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
    });
  }
});
