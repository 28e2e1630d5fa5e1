/**
 * Encryption at rest with a customer managed key (`OrchestratorProps.encryptionKey`): every resource
 * the orchestrator stores data in uses the key — both tables, every topic (nested stacks included),
 * every queue and every log group — and nothing is granted beyond what each principal needs: KMS
 * actions only on that key, CloudWatch Logs only for the orchestrator's log groups. Without a key,
 * the AWS managed defaults stay and no KMS permission exists anywhere.
 *
 * Checked over a whole app (orchestrator stack, its nested stacks, a plugin stack), by resource type,
 * so a resource added later without the key fails here.
 */
import { App, NestedStack, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Synth } from './util';
import { ActivityStage, Orchestrator, Workflow } from '../../src';

type Json = any;

interface BuiltApp {
  readonly stacks: Stack[];
  readonly orchestratorStack: Stack;
  readonly orchestrator: Orchestrator;
  /** The key passed as `encryptionKey`, when there is one. */
  readonly key?: kms.IKey;
}

function buildApp(options: { key: boolean; activities?: number }): BuiltApp {
  const app = new App();
  const stack = new Stack(app, 'Orders');
  const encryptionKey = options.key ? new kms.Key(stack, 'Key') : undefined;
  const activities = Array.from({ length: options.activities ?? 2 }, (_, i) => `Step${i + 1}`);
  const orchestrator = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities, encryptionKey });
  new Workflow(stack, 'Flow', { orchestrator, activities: activities.slice(0, 2), workflowName: 'flow' });
  const pluginStack = new Stack(app, 'Plugins');
  const fn = (id: string) => new lambda.Function(pluginStack, id, {
    runtime: lambda.Runtime.NODEJS_22_X, handler: 'index.handler', code: lambda.Code.fromInline('exports.handler = async () => ({});'),
  });
  orchestrator.activity('Step1').addPlugin(fn('Check'), { stage: ActivityStage.PRE, pluginName: 'check' });
  orchestrator.activity('Step1').addPlugin(fn('Enrich'), { stage: ActivityStage.PARALLEL, pluginName: 'enrich' });
  orchestrator.activity('Step2').addPlugin(fn('Ledger'), { stage: ActivityStage.PARALLEL, pluginName: 'ledger', queue: true });
  orchestrator.grantPluginStatus(fn('Reporter'));
  const nested = stack.node.findAll().filter(NestedStack.isNestedStack);
  return { stacks: [stack, ...nested, pluginStack], orchestratorStack: stack, orchestrator, key: encryptionKey };
}

/** Every resource of a type in every stack: `<stack>/<logical id>` -> properties (references raw). */
function resourcesOf(stacks: Stack[], type: string): [string, Json][] {
  return stacks.flatMap((stack) => Object.entries(Template.fromStack(stack).findResources(type))
    .map(([id, resource]) => [`${stack.node.path}/${id}`, (resource as Json).Properties ?? {}] as [string, Json]));
}

/** The orchestrator stack's key (`{ Fn::GetAtt: [<key>, Arn] }`), or, in a nested stack, the parameter carrying it. */
function isKeyArn(value: Json, keyId: string): boolean {
  if (value?.['Fn::GetAtt']?.[0] === keyId && value['Fn::GetAtt'][1] === 'Arn') return true;
  // Nested stacks receive the key ARN as a parameter from the parent.
  return typeof value?.Ref === 'string' && /key/i.test(value.Ref);
}

describe('with a customer managed key', () => {
  const built = buildApp({ key: true });
  const keyId = built.orchestratorStack.resolve((built.orchestrator.encryptionKey!.node.defaultChild as kms.CfnKey).logicalId) as string;
  const orchestratorStacks = built.stacks.filter((s) => s.node.path !== 'Plugins');

  test('both tables are encrypted with the key', () => {
    const tables = resourcesOf(built.stacks, 'AWS::DynamoDB::Table');
    expect(tables).toHaveLength(2);
    for (const [where, props] of tables) {
      expect({ where, sse: { ...props.SSESpecification, KMSMasterKeyId: isKeyArn(props.SSESpecification?.KMSMasterKeyId, keyId) } })
        .toEqual({ where, sse: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: true } });
    }
  });

  test('every topic, queue and log group of the orchestrator uses the key', () => {
    const checks: [string, string][] = [['AWS::SNS::Topic', 'KmsMasterKeyId'], ['AWS::SQS::Queue', 'KmsMasterKeyId'], ['AWS::Logs::LogGroup', 'KmsKeyId']];
    for (const [type, property] of checks) {
      const resources = resourcesOf(orchestratorStacks, type);
      expect({ type, some: resources.length > 0 }).toEqual({ type, some: true });
      for (const [where, props] of resources) {
        expect({ where, usesKey: isKeyArn(props[property], keyId) }).toEqual({ where, usesKey: true });
      }
    }
    // 2 activities x 3 topics; 6 handlers (at least) + the activities' state-machine log group.
    expect(resourcesOf(orchestratorStacks, 'AWS::SNS::Topic')).toHaveLength(6);
    expect(resourcesOf(orchestratorStacks, 'AWS::Logs::LogGroup').length).toBeGreaterThanOrEqual(7);
  });

  test('SSM parameters hold coordinates only (names and ARNs), as String: CloudFormation cannot create SecureString parameters', () => {
    for (const [where, props] of resourcesOf(orchestratorStacks, 'AWS::SSM::Parameter')) {
      expect({ where, type: props.Type }).toEqual({ where, type: 'String' });
      const value = JSON.stringify(props.Value);
      expect({ where, runData: /metadata|"uid"/.test(value) }).toEqual({ where, runData: false });
    }
  });

  test('the orchestrator exposes the key (for plugins and queue bridges in other stacks)', () => {
    expect(built.orchestrator.encryptionKey).toBe(built.key);
    expect(built.orchestrator.activity('Step1').parallelTopic.masterKey).toBe(built.key);
  });

  test('the key policy: the account, CloudWatch Logs of this region for the orchestrator\'s log groups only, EventBridge through SQS only', () => {
    const s = new Synth(built.orchestratorStack);
    const statements = s.resourceStatements('Key');
    const services = statements.filter((st: Json) => st.Principal?.Service);
    expect(services.map((st: Json) => st.Principal.Service).sort()).toEqual(['events.amazonaws.com', 'logs.${AWS::Region}.amazonaws.com']);
    // EventBridge writes failed events to the encrypted dead-letter queue: this account's, via SQS only.
    const events = services.find((st: Json) => st.Principal.Service === 'events.amazonaws.com');
    expect(events).toMatchObject({
      Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
      Condition: { StringEquals: { 'aws:SourceAccount': '${AWS::AccountId}', 'kms:ViaService': 'sqs.${AWS::Region}.amazonaws.com' } },
    });
    const logs = services.find((st: Json) => st.Principal.Service !== 'events.amazonaws.com');
    expect(logs.Principal.Service).toBe('logs.${AWS::Region}.amazonaws.com');
    const allowed = [logs.Condition.ArnLike['kms:EncryptionContext:aws:logs:arn']].flat();
    expect(allowed).toEqual([
      'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/cdk-orchestrator/orders/*',
      'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/vendedlogs/states/orders-*',
    ]);
    // Every log group the orchestrator creates matches one of those names.
    const patterns = allowed.map((arn: string) => new RegExp(`^${arn.split(':log-group:')[1].replace(/[.*+?^${}()|[\]\\]/g, (c) => (c === '*' ? '.*' : `\\${c}`))}$`));
    for (const [where, props] of resourcesOf(orchestratorStacks, 'AWS::Logs::LogGroup')) {
      const name = s.flat(props.LogGroupName);
      expect({ where, name, allowed: typeof name === 'string' && patterns.some((p: RegExp) => p.test(name)) }).toEqual({ where, name, allowed: true });
    }
    // Everything else is the account's own statement (IAM policies decide), as aws-cdk-lib creates it.
    const others = statements.filter((st: Json) => !st.Principal?.Service);
    expect(others).toEqual([expect.objectContaining({ Principal: { AWS: 'arn:${AWS::Partition}:iam::${AWS::AccountId}:root' } })]);
  });

  test('KMS permissions: only on the key, only the actions a table, topic or queue use needs', () => {
    const allowed = new Set(['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*']);
    let found = 0;
    for (const stack of built.stacks) {
      const s = new Synth(stack);
      for (const { where, statement } of s.allStatements()) {
        if (statement.Principal) continue; // key policy and resource policies: checked above
        const kmsActions = [statement.Action].flat().filter((a: string) => a.startsWith('kms:'));
        if (!kmsActions.length) continue;
        found++;
        expect({ where, actions: kmsActions.filter((a: string) => !allowed.has(a)) }).toEqual({ where, actions: [] });
        // The key itself (in another stack: its imported ARN), never `*`.
        expect({ where, resource: statement.Resource === '*' || [statement.Resource].flat().length !== 1 }).toEqual({ where, resource: false });
      }
    }
    expect(found).toBeGreaterThan(6);
  });

  test('a plugin allowed to report can read the status item a shortened message refers to, and decrypt it', () => {
    const s = new Synth(built.stacks.find((st) => st.node.path === 'Plugins')!);
    const reporter = s.pathsOf('AWS::IAM::Policy').find((p) => p.startsWith('Reporter'))!;
    const statements = s.resourceStatements(reporter);
    const actions = statements.flatMap((st: Json) => [st.Action].flat());
    expect(actions).toEqual(expect.arrayContaining(['dynamodb:GetItem', 'dynamodb:UpdateItem', 'kms:Decrypt']));
    expect(actions.filter((a: string) => a.startsWith('dynamodb:')).sort()).toEqual(['dynamodb:GetItem', 'dynamodb:UpdateItem']);
  });

  test('a queue plugin: its queues and the queue bridge\'s log group (in the plugin\'s stack) use the key; the log group is named under the orchestrator\'s prefix the key policy admits', () => {
    const pluginStack = built.stacks.find((st) => st.node.path === 'Plugins')!;
    const s = new Synth(pluginStack);
    const queues = resourcesOf([pluginStack], 'AWS::SQS::Queue');
    expect(queues.length).toBe(2); // the queue and its dead-letter queue
    for (const [where, props] of queues) expect({ where, keyed: props.KmsMasterKeyId !== undefined }).toEqual({ where, keyed: true });
    const logGroups = resourcesOf([pluginStack], 'AWS::Logs::LogGroup').filter(([where]) => where.includes('QueueBridge'));
    expect(logGroups).toHaveLength(1);
    const [where, props] = logGroups[0];
    expect({ where, keyed: props.KmsKeyId !== undefined }).toEqual({ where, keyed: true });
    expect(s.flat(props.LogGroupName)).toMatch(/^\/cdk-orchestrator\/orders\/queue-bridge-/);
  });

  test('activities in nested stacks (more than 25): their topics use the key too', () => {
    const big = buildApp({ key: true, activities: 26 });
    const nested = big.stacks.filter((s) => NestedStack.isNestedStack(s));
    expect(nested.length).toBeGreaterThan(0);
    const bigKeyId = big.orchestratorStack.resolve((big.orchestrator.encryptionKey!.node.defaultChild as kms.CfnKey).logicalId) as string;
    const topics = resourcesOf(nested, 'AWS::SNS::Topic');
    expect(topics).toHaveLength(26 * 3);
    for (const [where, props] of topics) expect({ where, usesKey: isKeyArn(props.KmsMasterKeyId, bigKeyId) }).toEqual({ where, usesKey: true });
  });
});

describe('without a key', () => {
  const built = buildApp({ key: false });

  test('AWS managed encryption for the tables, SQS managed for the queues; no customer key, no KMS permission anywhere', () => {
    for (const [where, props] of resourcesOf(built.stacks, 'AWS::DynamoDB::Table')) {
      expect({ where, key: props.SSESpecification?.KMSMasterKeyId }).toEqual({ where, key: undefined });
      expect({ where, enabled: props.SSESpecification?.SSEEnabled }).toEqual({ where, enabled: true });
    }
    for (const [where, props] of resourcesOf(built.stacks, 'AWS::SQS::Queue')) {
      expect({ where, sse: props.SqsManagedSseEnabled, key: props.KmsMasterKeyId }).toEqual({ where, sse: true, key: undefined });
    }
    for (const [where, props] of resourcesOf(built.stacks, 'AWS::SNS::Topic')) expect({ where, key: props.KmsMasterKeyId }).toEqual({ where, key: undefined });
    for (const [where, props] of resourcesOf(built.stacks, 'AWS::Logs::LogGroup')) expect({ where, key: props.KmsKeyId }).toEqual({ where, key: undefined });
    expect(resourcesOf(built.stacks, 'AWS::KMS::Key')).toHaveLength(0);
    for (const stack of built.stacks) {
      for (const { where, statement } of new Synth(stack).allStatements()) {
        expect({ where, kms: [statement.Action].flat().filter((a: string) => a.startsWith('kms:')) }).toEqual({ where, kms: [] });
      }
    }
  });
});
