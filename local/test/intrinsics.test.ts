/**
 * CloudFormation functions as CDK emits them, resolved against local names: each case is a template
 * fragment and what it must resolve to; unknown functions and dangling references fail with names.
 */
import { Template, TemplateContext, UnsupportedIntrinsicError } from '../src/engine/intrinsics';

const ENV = { region: 'eu-west-1', account: '111122223333' };

function context(template: Template, others: Record<string, Template> = {}, parameters?: Record<string, unknown>): TemplateContext {
  const contexts: Record<string, TemplateContext> = {};
  const make = (stackName: string, t: Template, params?: Record<string, unknown>): TemplateContext => new TemplateContext({
    env: ENV,
    stackName,
    template: t,
    parameters: params,
    importValue: (name) => {
      for (const ctx of Object.values(contexts)) {
        const output = Object.values(ctx.template.Outputs ?? {}).find((o) => o.Export && ctx.resolve(o.Export.Name) === name);
        if (output) return ctx.resolve(output.Value);
      }
      throw new Error(`Fn::ImportValue: no stack exports "${name}"`);
    },
    stackOutput: (stack, output) => contexts[stack].resolve(contexts[stack].template.Outputs![output].Value),
    nestedOutput: () => undefined,
  });
  for (const [name, t] of Object.entries(others)) contexts[name] = make(name, t);
  return make('Consumer', template, parameters);
}

const PRODUCER: Template = {
  Resources: { Table: { Type: 'AWS::DynamoDB::Table', Properties: {} }, Topic: { Type: 'AWS::SNS::Topic', Properties: { TopicName: 'events' } } },
  Outputs: {
    TableName: { Value: { Ref: 'Table' }, Export: { Name: 'Producer:TableName' } },
    TopicArn: { Value: { Ref: 'Topic' } },
  },
};

describe('intrinsics', () => {
  const ctx = context({
    Parameters: { Stage: { Type: 'String', Default: 'dev' }, Zones: { Type: 'CommaDelimitedList', Default: 'a,b' } },
    Conditions: { IsProd: { 'Fn::Equals': [{ Ref: 'Stage' }, 'prod'] }, NotProd: { 'Fn::Not': [{ Condition: 'IsProd' }] } },
    Mappings: { Sizes: { dev: { memory: 128 } } },
    Resources: { Fn: { Type: 'AWS::Lambda::Function', Properties: {} } },
  }, { Producer: PRODUCER });

  test.each([
    ['Ref of a function', { Ref: 'Fn' }, 'Consumer-Fn'],
    ['Ref of a parameter', { Ref: 'Stage' }, 'dev'],
    ['pseudo parameters', { 'Fn::Sub': '${AWS::Region}:${AWS::AccountId}:${AWS::StackName}' }, 'eu-west-1:111122223333:Consumer'],
    ['Fn::GetAtt Arn', { 'Fn::GetAtt': ['Fn', 'Arn'] }, 'arn:aws:lambda:eu-west-1:111122223333:function:Consumer-Fn'],
    ['Fn::Sub with variables and GetAtt', { 'Fn::Sub': ['${Fn.Arn}/${X}-${!Literal}', { X: { Ref: 'Stage' } }] }, 'arn:aws:lambda:eu-west-1:111122223333:function:Consumer-Fn/dev-${Literal}'],
    ['Fn::Join', { 'Fn::Join': ['-', ['a', { Ref: 'Stage' }]] }, 'a-dev'],
    ['Fn::Select of Fn::Split', { 'Fn::Select': [1, { 'Fn::Split': [',', 'x,y,z'] }] }, 'y'],
    ['Fn::If with conditions', { 'Fn::If': ['NotProd', 'small', 'large'] }, 'small'],
    ['Fn::FindInMap', { 'Fn::FindInMap': ['Sizes', { Ref: 'Stage' }, 'memory'] }, 128],
    ['Fn::FindInMap default', { 'Fn::FindInMap': ['Sizes', 'prod', 'memory', { DefaultValue: 1024 }] }, 1024],
    ['Fn::ImportValue (strong reference)', { 'Fn::ImportValue': 'Producer:TableName' }, 'Producer-Table'],
    ['Fn::GetStackOutput (weak reference)', { 'Fn::GetStackOutput': { StackName: 'Producer', OutputName: 'TopicArn', Region: 'eu-west-1' } },
      'arn:aws:sns:eu-west-1:111122223333:events'],
    ['AWS::NoValue removes the property', { a: 1, b: { Ref: 'AWS::NoValue' } }, { a: 1 }],
  ])('%s', (_, fragment, expected) => {
    expect(ctx.resolve(fragment)).toEqual(expected);
  });

  test('a function the engine does not know fails, named', () => {
    expect(() => ctx.resolve({ 'Fn::Cidr': ['10.0.0.0/16', 2, 8] })).toThrow(new UnsupportedIntrinsicError('Fn::Cidr'));
    expect(() => ctx.resolve({ nested: [{ 'Fn::Transform': {} }] })).toThrow(/Fn::Transform is not supported by the local engine/);
  });

  test('dangling references fail, named', () => {
    expect(() => ctx.resolve({ Ref: 'Nope' })).toThrow('Consumer: reference to unknown resource or parameter "Nope"');
    expect(() => ctx.resolve({ 'Fn::ImportValue': 'Nope' })).toThrow('Fn::ImportValue: no stack exports "Nope"');
    expect(() => ctx.resolve({ 'Fn::FindInMap': ['Sizes', 'prod', 'memory'] })).toThrow('Fn::FindInMap: mapping Sizes has no prod.memory');
  });
});
