import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { newStack, Synth } from './util';
import { ActivityStage, ActivityStageKey, Orchestrator, OrchestratorProps } from '../../src';

function synth(props: Partial<OrchestratorProps> = {}, setup?: (stack: Stack) => Partial<OrchestratorProps>): { orch: Orchestrator; s: Synth } {
  const stack = newStack();
  const extra = setup ? setup(stack) : {};
  const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders', ...props, ...extra });
  return { orch, s: new Synth(stack) };
}

const HANDLERS = ['StartRun', 'SequentialStage', 'ParallelStage', 'StatusSummary', 'StageFailure', 'PluginOutcome'];
/** Handlers of the features on by default: stuck-run detection and run-time registration. */
const FEATURE_HANDLERS = ['StuckRuns', 'PluginRegistrar'];
const ALL_HANDLERS = [...HANDLERS, ...FEATURE_HANDLERS];
const SM_PATTERN = 'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:orders-*';
const logs = (handler: string) => ({ Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Effect: 'Allow', Resource: `\${Orch/Handlers/${handler}Logs.Arn}` });
const lambdaXray = { Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], Effect: 'Allow', Resource: '*' };
const statusRw = { Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Effect: 'Allow', Resource: '${Orch/StatusTable.Arn}' };
const statusUpdate = { Action: 'dynamodb:UpdateItem', Effect: 'Allow', Resource: '${Orch/StatusTable.Arn}' };
const pluginQuery = { Action: 'dynamodb:Query', Effect: 'Allow', Resource: '${Orch/PluginTable.Arn}' };
const KMS_TABLE_RW = ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*'];

describe('resources', () => {
  test('per orchestrator: two tables, six handlers (role, policy, log group each), stream mapping, DLQ, shared state-machine role and log group', () => {
    const { s } = synth();
    const counts = s.counts();
    // One activity: 1 state machine + 3 topics + 3 topic policies (+ its failed alarm and parameter) on top of
    // the orchestrator's own resources. Features on by default (each tested in its own file):
    // - stuck-run detection (monitoring.test.ts): StuckRuns function/role/policy/log group, its schedule rule and permission;
    // - run-time registration (runtime-registration.test.ts): PluginRegistrar function/role/policy/log group,
    //   2 rules (Subscribe/Unsubscribe, UpdateFunctionCode), 2 permissions;
    // - alarms and dashboard (monitoring.test.ts): 9 alarms (Step1 failed runs; errors of StartRun, ParallelStage,
    //   StatusSummary, PluginOutcome, StuckRuns; callback timeouts with its metric filter; DLQ; stuck runs), 1 dashboard;
    // - coordinates (coordinates.test.ts): 10 parameters (8 single values, config, Step1).
    expect(counts).toEqual({
      'AWS::DynamoDB::Table': 2,
      'AWS::Lambda::Function': 8, // +2: StuckRuns, PluginRegistrar
      'AWS::IAM::Role': 9, // +2: their roles
      'AWS::IAM::Policy': 9, // +2: their policies
      'AWS::Logs::LogGroup': 9, // +2: their log groups
      'AWS::Lambda::EventSourceMapping': 1,
      'AWS::SQS::Queue': 2, // +1: the failed-events queue of the asynchronously invoked handlers and the rules (docs/COMPLIANCE.md)
      'AWS::SQS::QueuePolicy': 2, // +1: its policy
      'AWS::StepFunctions::StateMachine': 1,
      'AWS::SNS::Topic': 3,
      'AWS::SNS::TopicPolicy': 3,
      'AWS::Events::Rule': 3, // +3: 2 registration rules, the stuck-run schedule
      'AWS::Lambda::Permission': 3, // +3: one per rule (EventBridge invokes the function)
      'AWS::CloudWatch::Alarm': 9, // +9: listed above
      'AWS::CloudWatch::Dashboard': 1, // +1
      'AWS::Logs::MetricFilter': 1, // +1: callback timeouts
      'AWS::SSM::Parameter': 10, // +10: coordinates
    });
    // +37 = 8 (2 functions with role, policy, log group) + 3 rules + 3 permissions + 9 alarms + 1 dashboard + 1 metric filter + 10 parameters
    // + the failed-events queue and its policy.
    expect(Object.values(counts).reduce((a, b) => a + b, 0)).toBe(76);
  });

  test('each activity adds exactly a state machine, three topics and three topic policies; shared policies do not grow', () => {
    const two = synth({ activities: ['Step1', 'Step2'] }).s;
    const three = synth({ activities: ['Step1', 'Step2', 'Step3'] }).s;
    const delta: Record<string, number> = {};
    for (const [type, n] of Object.entries(three.counts())) {
      if (n !== (two.counts()[type] ?? 0)) delta[type] = n - (two.counts()[type] ?? 0);
    }
    // ... and its coordinates parameter (src/private/coordinates.ts) and its failed-runs alarm (monitoring.test.ts).
    expect(delta).toEqual({
      'AWS::StepFunctions::StateMachine': 1, 'AWS::SNS::Topic': 3, 'AWS::SNS::TopicPolicy': 3, 'AWS::SSM::Parameter': 1, 'AWS::CloudWatch::Alarm': 1,
    });
    expect(three.pathsOf('AWS::SNS::Topic').filter((p) => p.includes('/Step3/'))).toEqual([
      'Orch/Activities/Step3/PreTopic', 'Orch/Activities/Step3/ParallelTopic', 'Orch/Activities/Step3/PostTopic',
    ]);
    // Every identity policy is the same with 2 or 3 activities (grants per activity are resource-side).
    for (const role of [...ALL_HANDLERS.map((h) => `Orch/Handlers/${h}Role`), 'Orch/StateMachineRole']) {
      expect(three.roleStatements(role)).toEqual(two.roleStatements(role));
    }
  });
});

describe('status table', () => {
  test('uid/workflow keys, NEW_AND_OLD_IMAGES stream, PITR, on-demand, TTL on expiresAt, AWS managed encryption, retained; the open-run index', () => {
    const { s } = synth();
    const table = s.resource('Orch/StatusTable');
    expect(table.Properties).toEqual({
      KeySchema: [{ AttributeName: 'uid', KeyType: 'HASH' }, { AttributeName: 'workflow', KeyType: 'RANGE' }],
      AttributeDefinitions: [
        { AttributeName: 'uid', AttributeType: 'S' }, { AttributeName: 'workflow', AttributeType: 'S' },
        { AttributeName: 'openShard', AttributeType: 'S' }, { AttributeName: 'openedAt', AttributeType: 'S' },
      ],
      // Stuck-run detection (on by default): the sparse index of unfinished runs (DESIGN.md "Operations").
      GlobalSecondaryIndexes: [{
        IndexName: 'openRuns',
        KeySchema: [{ AttributeName: 'openShard', KeyType: 'HASH' }, { AttributeName: 'openedAt', KeyType: 'RANGE' }],
        Projection: { ProjectionType: 'KEYS_ONLY' },
      }],
      BillingMode: 'PAY_PER_REQUEST',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.UpdateReplacePolicy).toBe('Retain');
  });

  test('statusTableProps configure the created table', () => {
    const { s } = synth({ statusTableProps: { tableName: 'runs', pointInTimeRecovery: false, deletionProtection: true, tableClass: dynamodb.TableClass.STANDARD_INFREQUENT_ACCESS } });
    expect(s.resource('Orch/StatusTable').Properties).toMatchObject({
      TableName: 'runs',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: false },
      DeletionProtectionEnabled: true,
      TableClass: 'STANDARD_INFREQUENT_ACCESS',
      StreamSpecification: { StreamViewType: 'NEW_AND_OLD_IMAGES' },
    });
  });

  test('bring your own table: none created, the handlers and the stream mapping use it', () => {
    // Stuck-run detection needs an index on the table (test/constructs/monitoring.test.ts covers it).
    const { orch, s } = synth({ stuckRunDetection: false }, (stack) => ({
      statusTable: dynamodb.Table.fromTableAttributes(stack, 'Existing', {
        tableArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs',
        tableStreamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs/stream/2024-01-01T00:00:00.000',
      }),
    }));
    expect(s.pathsOf('AWS::DynamoDB::Table')).toEqual(['Orch/PluginTable']);
    expect(orch.statusTable.tableArn).toBe('arn:aws:dynamodb:eu-west-1:123456789012:table/runs');
    s.template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs/stream/2024-01-01T00:00:00.000',
    });
    expect(s.roleStatements('Orch/Handlers/StageFailureRole')).toContainEqual(
      { Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Effect: 'Allow', Resource: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs' });
    s.template.hasResourceProperties('AWS::Lambda::Function', { Environment: { Variables: { STATUS_TABLE_NAME: 'runs' } } });
    expect(Annotations.fromStack(s.stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  test('bring your own table with statusRetention: a warning to enable TTL on expiresAt', () => {
    const { s } = synth({ statusRetention: Duration.days(30) }, (stack) => ({
      statusTable: dynamodb.Table.fromTableAttributes(stack, 'Existing', { tableName: 'runs', tableStreamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs/stream/x' }),
    }));
    Annotations.fromStack(s.stack).hasWarning('/TestStack/Orch', Match.stringLikeRegexp('enable TTL on the attribute "expiresAt" of your statusTable'));
  });
});

describe('plugin table', () => {
  test('orchestratorId/subscriptionArn keys, functionName index, PITR, on-demand, encrypted, retained', () => {
    const { s } = synth();
    const table = s.resource('Orch/PluginTable');
    expect(table.Properties).toEqual({
      KeySchema: [{ AttributeName: 'orchestratorId', KeyType: 'HASH' }, { AttributeName: 'subscriptionArn', KeyType: 'RANGE' }],
      AttributeDefinitions: [
        { AttributeName: 'orchestratorId', AttributeType: 'S' },
        { AttributeName: 'subscriptionArn', AttributeType: 'S' },
        { AttributeName: 'functionName', AttributeType: 'S' },
      ],
      GlobalSecondaryIndexes: [{ IndexName: 'functionName', KeySchema: [{ AttributeName: 'functionName', KeyType: 'HASH' }], Projection: { ProjectionType: 'ALL' } }],
      BillingMode: 'PAY_PER_REQUEST',
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      SSESpecification: { SSEEnabled: true },
    });
    expect(table.DeletionPolicy).toBe('Retain');
  });
});

describe('handler functions', () => {
  test('six shared functions from the prebuilt bundles: Node.js 24 (the newest Lambda runtime), ARM, X-Ray, 256 MB, environment per DESIGN.md', () => {
    const { s } = synth({ activities: ['Step1', 'Step2'] });
    const env = (extra: Record<string, unknown> = {}) => ({
      STATUS_TABLE_NAME: '${Orch/StatusTable}',
      // The `orchestrator` dimension of every handler metric (lambda/shared/observability.ts).
      ORCHESTRATOR_NAME: 'orders',
      // Powertools (lambda/shared/observability.ts): log key and metric dimension, EMF namespace, log level.
      POWERTOOLS_SERVICE_NAME: 'cdk-orchestrator',
      POWERTOOLS_METRICS_NAMESPACE: 'CdkOrchestrator',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      ...extra,
    });
    const expected: Record<string, { timeout: number; env: Record<string, unknown> }> = {
      StartRun: { timeout: 30, env: env() },
      SequentialStage: { timeout: 300, env: env({ PLUGIN_TABLE_NAME: '${Orch/PluginTable}' }) },
      ParallelStage: { timeout: 30, env: env({ PLUGIN_TABLE_NAME: '${Orch/PluginTable}' }) },
      StatusSummary: { timeout: 60, env: env() },
      StageFailure: { timeout: 30, env: env() },
      PluginOutcome: { timeout: 30, env: env({ PLUGIN_TABLE_NAME: '${Orch/PluginTable}' }) },
    };
    // The two feature handlers (their environment: monitoring.test.ts, runtime-registration.test.ts) share the runtime settings.
    expect(s.pathsOf('AWS::Lambda::Function').sort()).toEqual(ALL_HANDLERS.map((h) => `Orch/Handlers/${h}`).sort());
    for (const name of FEATURE_HANDLERS) {
      expect(s.flat(s.resource(`Orch/Handlers/${name}`).Properties)).toMatchObject({
        Handler: 'index.handler',
        Runtime: lambda.Runtime.NODEJS_24_X.name,
        Architectures: ['arm64'],
        TracingConfig: { Mode: 'Active' },
        Role: `\${Orch/Handlers/${name}Role.Arn}`,
        LoggingConfig: { LogGroup: `\${Orch/Handlers/${name}Logs}` },
      });
    }
    for (const [name, { timeout, env: variables }] of Object.entries(expected)) {
      const props = s.flat(s.resource(`Orch/Handlers/${name}`).Properties);
      expect(props).toMatchObject({
        Handler: 'index.handler',
        Runtime: lambda.Runtime.NODEJS_24_X.name,
        Architectures: ['arm64'],
        MemorySize: 256,
        Timeout: timeout,
        TracingConfig: { Mode: 'Active' },
        Role: `\${Orch/Handlers/${name}Role.Arn}`,
        LoggingConfig: { LogGroup: `\${Orch/Handlers/${name}Logs}` },
      });
      expect(props.Environment.Variables).toEqual(variables);
    }
    // One asset per handler bundle, shared by every activity (8: the six + StuckRuns, PluginRegistrar).
    const assets = new Set(Object.values(s.template.findResources('AWS::Lambda::Function')).map((f: any) => f.Properties.Code.S3Key));
    expect(assets.size).toBe(8);
  });

  test('handler roles are assumed by Lambda only and carry no managed policy', () => {
    const { s } = synth();
    for (const h of ALL_HANDLERS) {
      const role = s.resource(`Orch/Handlers/${h}Role`).Properties;
      expect(role.AssumeRolePolicyDocument.Statement).toEqual([
        { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' } },
      ]);
      expect(role.ManagedPolicyArns).toBeUndefined();
    }
  });

  test('handler log groups: named under /cdk-orchestrator/<orchestratorName>/ (the key policy names them), retention, retained', () => {
    const { s } = synth();
    for (const h of ALL_HANDLERS) {
      const group = s.resource(`Orch/Handlers/${h}Logs`);
      const handler = h.replace(/[A-Z]/g, (c, i) => `${i ? '-' : ''}${c.toLowerCase()}`);
      expect(s.flat(group.Properties)).toEqual({ RetentionInDays: 90, LogGroupName: `/cdk-orchestrator/orders/${handler}-\${Select(2,"Split(/,\${AWS::StackId})")}` });
      expect(group.DeletionPolicy).toBe('Retain');
    }
  });

  test('status-summary: stream mapping filtered on awaiting (SS), batch 10, bisect, bounded retries, TRIM_HORIZON, SQS DLQ', () => {
    const { s } = synth();
    const mappings = Object.values(s.template.findResources('AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(1);
    expect(s.flat((mappings[0] as any).Properties)).toEqual({
      FunctionName: '${Orch/Handlers/StatusSummary}',
      EventSourceArn: '${Orch/StatusTable.StreamArn}',
      BatchSize: 10,
      BisectBatchOnFunctionError: true,
      MaximumRetryAttempts: 5,
      StartingPosition: 'TRIM_HORIZON',
      DestinationConfig: { OnFailure: { Destination: '${Orch/Handlers/StatusSummaryDeadLetterQueue.Arn}' } },
      FilterCriteria: { Filters: [{ Pattern: JSON.stringify({ dynamodb: { NewImage: { awaiting: { SS: [{ exists: true }] } } } }) }] },
    });
  });

  test('the dead-letter queue is SSL-only, encrypted, kept 14 days and retained', () => {
    const { s } = synth();
    const queue = s.resource('Orch/Handlers/StatusSummaryDeadLetterQueue');
    // The redrive allow policy marks it as a dead-letter queue (AWS Control Tower CT.SQS.PR.1, docs/COMPLIANCE.md).
    expect(queue.Properties).toEqual({ SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600, RedriveAllowPolicy: { redrivePermission: 'allowAll' } });
    expect(queue.DeletionPolicy).toBe('Retain');
    expect(s.resourceStatements('Orch/Handlers/StatusSummaryDeadLetterQueue/Policy')).toEqual([{
      Action: 'sqs:*',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Effect: 'Deny',
      Principal: { AWS: '*' },
      Resource: '${Orch/Handlers/StatusSummaryDeadLetterQueue.Arn}',
    }]);
  });
});

describe('IAM: every statement, scoped to its resource', () => {
  const { s } = synth({ activities: ['Step1', 'Step2'] });

  test('start-run: one conditional PutItem on the status table', () => {
    expect(s.roleStatements('Orch/Handlers/StartRunRole')).toEqual([
      logs('StartRun'), lambdaXray,
      { Action: 'dynamodb:PutItem', Effect: 'Allow', Resource: '${Orch/StatusTable.Arn}' },
    ]);
  });

  test('sequential-stage: status updates, registry query; plugin invocation is granted by each plugin (resource side)', () => {
    // Plugins subscribed at run time: functions tagged for this orchestrator (src/private/runtime-registration.ts).
    const taggedPlugins = {
      Sid: 'InvokeTaggedPlugins',
      Effect: 'Allow',
      Action: 'lambda:InvokeFunction',
      Resource: 'arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*',
      Condition: { StringEquals: { 'aws:ResourceTag/cdk-orchestrator:orders': 'plugin' } },
    };
    expect(s.roleStatements('Orch/Handlers/SequentialStageRole')).toEqual([logs('SequentialStage'), lambdaXray, statusUpdate, pluginQuery, taggedPlugins]);
  });

  test('parallel-stage: status item, registry query, SendTaskSuccess on the orchestrator\'s state machines; publish is granted by the topics', () => {
    expect(s.roleStatements('Orch/Handlers/ParallelStageRole')).toEqual([
      logs('ParallelStage'), lambdaXray, statusRw, pluginQuery,
      { Action: 'states:SendTaskSuccess', Effect: 'Allow', Resource: SM_PATTERN },
    ]);
  });

  test('status-summary: status item, task responses on the orchestrator\'s state machines, stream, DLQ', () => {
    expect(s.roleStatements('Orch/Handlers/StatusSummaryRole')).toEqual([
      logs('StatusSummary'), lambdaXray, statusUpdate,
      { Action: ['states:SendTaskSuccess', 'states:SendTaskFailure', 'states:SendTaskHeartbeat'], Effect: 'Allow', Resource: SM_PATTERN },
      { Action: ['sqs:SendMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl'], Effect: 'Allow', Resource: '${Orch/Handlers/StatusSummaryDeadLetterQueue.Arn}' },
      // ListStreams supports no resource-level permissions (AWS requires `*`).
      { Action: 'dynamodb:ListStreams', Effect: 'Allow', Resource: '*' },
      { Action: ['dynamodb:DescribeStream', 'dynamodb:GetRecords', 'dynamodb:GetShardIterator'], Effect: 'Allow', Resource: '${Orch/StatusTable.StreamArn}' },
    ]);
  });

  test('stage-failure: status item only', () => {
    expect(s.roleStatements('Orch/Handlers/StageFailureRole')).toEqual([logs('StageFailure'), lambdaXray, statusRw]);
  });

  test('plugin-outcome: status updates, the registry item by key; plugins\' roles may invoke it (plugin side)', () => {
    expect(s.roleStatements('Orch/Handlers/PluginOutcomeRole')).toEqual([
      logs('PluginOutcome'),
      // Its dead-letter queue: invoked asynchronously (Lambda destinations of the PARALLEL plugins).
      { Action: 'sqs:SendMessage', Effect: 'Allow', Resource: '${Orch/FailedEventsQueue.Arn}' },
      lambdaXray, statusUpdate,
      { Action: 'dynamodb:GetItem', Effect: 'Allow', Resource: '${Orch/PluginTable.Arn}' },
    ]);
  });

  test('activity state machines share one role: invoke the three stage handlers (unqualified ARNs), log delivery, X-Ray', () => {
    expect(s.resource('Orch/StateMachineRole').Properties.AssumeRolePolicyDocument.Statement).toEqual([
      { Action: 'sts:AssumeRole', Effect: 'Allow', Principal: { Service: 'states.amazonaws.com' } },
    ]);
    expect(s.roleStatements('Orch/StateMachineRole')).toEqual([
      {
        Sid: 'InvokeStageHandlers',
        Action: 'lambda:InvokeFunction',
        Effect: 'Allow',
        Resource: ['${Orch/Handlers/SequentialStage.Arn}', '${Orch/Handlers/ParallelStage.Arn}', '${Orch/Handlers/StageFailure.Arn}'],
      },
      {
        Sid: 'LogDelivery',
        Action: ['logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery',
          'logs:ListLogDeliveries', 'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups'],
        Effect: 'Allow',
        Resource: '*',
      },
      { Sid: 'XRay', Action: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'], Effect: 'Allow', Resource: '*' },
    ]);
    for (const a of ['Step1', 'Step2']) {
      const sm = s.resource(`Orch/Activities/${a}/StateMachine`);
      expect(s.flat(sm.Properties.RoleArn)).toBe('${Orch/StateMachineRole.Arn}');
      // The role's policy (log delivery) exists before the state machine is created.
      expect(sm.DependsOn).toEqual(expect.arrayContaining([s.id('Orch/StateMachineRole/DefaultPolicy')]));
    }
  });

  test('topic policies: SSL only; the parallel topic lets the parallel-stage role publish', () => {
    const sslOnly = (topic: string) => ({
      Sid: 'AllowPublishThroughSSLOnly',
      Action: 'sns:Publish',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
      Effect: 'Deny',
      Principal: '*',
      Resource: `\${${topic}}`,
    });
    for (const a of ['Step1', 'Step2']) {
      const topic = (stage: string) => `Orch/Activities/${a}/${stage}Topic`;
      expect(s.resourceStatements(`${topic('Pre')}/Policy`)).toEqual([sslOnly(topic('Pre'))]);
      expect(s.resourceStatements(`${topic('Post')}/Policy`)).toEqual([sslOnly(topic('Post'))]);
      expect(s.resourceStatements(`${topic('Parallel')}/Policy`)).toEqual([
        sslOnly(topic('Parallel')),
        {
          Sid: 'ParallelStagePublish',
          Action: 'sns:Publish',
          Effect: 'Allow',
          Principal: { AWS: '${Orch/Handlers/ParallelStageRole.Arn}' },
          Resource: `\${${topic('Parallel')}}`,
        },
      ]);
    }
  });

  test('the only `*` resources are the ones AWS requires (X-Ray, log delivery, ListStreams, the deny-non-SSL principals)', () => {
    const wildcards = s.allStatements().filter(({ statement }) => JSON.stringify(statement.Resource) === '"*"');
    const allowed = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets',
      'logs:CreateLogDelivery', 'logs:GetLogDelivery', 'logs:UpdateLogDelivery', 'logs:DeleteLogDelivery', 'logs:ListLogDeliveries',
      'logs:PutResourcePolicy', 'logs:DescribeResourcePolicies', 'logs:DescribeLogGroups', 'dynamodb:ListStreams']);
    for (const { where, statement } of wildcards) {
      for (const action of [statement.Action].flat()) {
        expect({ where, action, allowed: allowed.has(action) }).toEqual({ where, action, allowed: true });
      }
    }
    // No action wildcards at all without a customer managed key.
    for (const { where, statement } of s.allStatements().filter((x) => x.statement.Effect === 'Allow')) {
      expect({ where, actions: [statement.Action].flat().filter((a: string) => a.includes('*')) }).toEqual({ where, actions: [] });
    }
  });
});

describe('customer managed key', () => {
  const { s } = synth({}, (stack) => ({ encryptionKey: new kms.Key(stack, 'Key') }));

  test('encrypts both tables, the topics, every log group and the DLQ', () => {
    for (const table of ['Orch/StatusTable', 'Orch/PluginTable']) {
      expect(s.flat(s.resource(table).Properties.SSESpecification)).toEqual({ SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: '${Key.Arn}' });
    }
    for (const topic of s.pathsOf('AWS::SNS::Topic')) {
      expect(s.flat(s.resource(topic).Properties.KmsMasterKeyId)).toBe('${Key.Arn}');
    }
    for (const group of s.pathsOf('AWS::Logs::LogGroup')) {
      expect(s.flat(s.resource(group).Properties.KmsKeyId)).toBe('${Key.Arn}');
    }
    expect(s.flat(s.resource('Orch/Handlers/StatusSummaryDeadLetterQueue').Properties.KmsMasterKeyId)).toBe('${Key.Arn}');
  });

  test('the key policy lets CloudWatch Logs of this account and region use the key for this orchestrator\'s log groups', () => {
    const logGroups = 'arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:';
    expect(s.resourceStatements('Key')).toContainEqual({
      Sid: 'AllowCloudWatchLogsorders',
      Effect: 'Allow',
      Principal: { Service: 'logs.${AWS::Region}.amazonaws.com' },
      Action: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
      Resource: '*',
      Condition: { ArnLike: { 'kms:EncryptionContext:aws:logs:arn': [`${logGroups}/cdk-orchestrator/orders/*`, `${logGroups}/aws/vendedlogs/states/orders-*`] } },
    });
  });

  test('handlers get the key actions they need, on the key only', () => {
    const keyStatements = (role: string) => s.roleStatements(role).filter((st: any) => [st.Action].flat().some((a: string) => a.startsWith('kms:')));
    const onKey = (actions: string[]) => ({ Action: actions, Effect: 'Allow', Resource: '${Key.Arn}' });
    expect(keyStatements('Orch/Handlers/StartRunRole')).toEqual([onKey(KMS_TABLE_RW)]);
    expect(keyStatements('Orch/Handlers/SequentialStageRole')).toEqual([onKey(KMS_TABLE_RW), onKey(['kms:Decrypt', 'kms:DescribeKey'])]);
    expect(keyStatements('Orch/Handlers/ParallelStageRole')).toEqual([
      onKey(KMS_TABLE_RW), onKey(['kms:Decrypt', 'kms:DescribeKey']), onKey(['kms:Decrypt', 'kms:GenerateDataKey*']),
    ]);
    expect(keyStatements('Orch/Handlers/StatusSummaryRole')).toEqual(expect.arrayContaining([
      onKey(KMS_TABLE_RW), onKey(['kms:Decrypt', 'kms:Encrypt', 'kms:ReEncrypt*', 'kms:GenerateDataKey*']), onKey(['kms:Decrypt', 'kms:DescribeKey']),
    ]));
    expect(keyStatements('Orch/Handlers/StageFailureRole')).toEqual([onKey(KMS_TABLE_RW)]);
    expect(keyStatements('Orch/Handlers/PluginOutcomeRole')).toEqual([onKey(KMS_TABLE_RW), onKey(['kms:Decrypt', 'kms:DescribeKey'])]);
    for (const { statement } of s.allStatements()) {
      if ([statement.Action].flat().some((a: string) => a.startsWith('kms:')) && !statement.Principal) {
        expect(statement.Resource).toBe('${Key.Arn}');
      }
    }
  });
});

test('removalPolicy and logRetention apply to tables, log groups and the DLQ', () => {
  const { s } = synth({ removalPolicy: RemovalPolicy.DESTROY, logRetention: 7 });
  for (const type of ['AWS::DynamoDB::Table', 'AWS::Logs::LogGroup', 'AWS::SQS::Queue']) {
    for (const path of s.pathsOf(type)) expect([path, s.resource(path).DeletionPolicy]).toEqual([path, 'Delete']);
  }
  for (const path of s.pathsOf('AWS::Logs::LogGroup')) expect(s.resource(path).Properties.RetentionInDays).toBe(7);
});

test('the activity state-machine log group is a vended-logs group, unique per stack instance', () => {
  const { s } = synth();
  expect(s.flat(s.resource('Orch/StateMachineLogs').Properties.LogGroupName))
    .toBe('/aws/vendedlogs/states/orders-${Select(2,"Split(/,${AWS::StackId})")}');
});

describe('API', () => {
  test('activities, activity(name), topic(stage), names', () => {
    const { orch, s } = synth({ activities: ['Step1', 'Step2', 'Step3'] });
    expect(orch.activities.map((a) => a.activityName)).toEqual(['Step1', 'Step2', 'Step3']);
    expect(orch.activityNames).toEqual(['Step1', 'Step2', 'Step3']);
    const step2 = orch.activity('Step2');
    expect(step2).toBe(orch.activities[1]);
    expect(orch.findActivity('Step2')).toBe(step2);
    expect(step2.topic(ActivityStage.PRE)).toBe(step2.preTopic);
    expect(step2.topic(ActivityStage.PARALLEL)).toBe(step2.parallelTopic);
    expect(step2.topic(ActivityStage.POST)).toBe(step2.postTopic);
    expect(s.resource('Orch/Activities/Step2/PreTopic').Properties.TopicName).toBe('orders-Step2-pre');
    expect(s.resource('Orch/Activities/Step2/ParallelTopic').Properties.TopicName).toBe('orders-Step2-parallel');
    expect(s.resource('Orch/Activities/Step2/PostTopic').Properties.TopicName).toBe('orders-Step2-post');
    expect(s.resource('Orch/Activities/Step2/StateMachine').Properties.StateMachineName).toBe('orders-Step2');
    expect(orch.statusTable).toBe(orch.node.findChild('StatusTable'));
    expect(orch.pluginTable).toBe(orch.node.findChild('PluginTable'));
    expect(orch.startRunFunction).toBe(orch.handlers.startRun);
  });

  test('default orchestratorName: derived from the construct path, at most 15 characters', () => {
    const stack = newStack();
    const orch = new Orchestrator(stack, 'Orchestrator', { activities: ['A'.repeat(64)] });
    expect(orch.orchestratorName).toMatch(/^[A-Za-z0-9]{1,15}$/);
    expect(orch.orchestratorName).not.toBe(new Orchestrator(stack, 'Other', { activities: ['A'] }).orchestratorName);
  });

  test('stage keys: pre, async, post', () => {
    expect(ActivityStageKey.STAGES.map((st) => ActivityStageKey.of(st))).toEqual(['pre', 'async', 'post']);
    expect(ActivityStageKey.toStage('async')).toBe(ActivityStage.PARALLEL);
    expect(() => ActivityStageKey.toStage('parallel')).toThrow('Unknown stage key "parallel"; expected one of pre, async, post');
  });

  test('grantPluginStatus: GetItem and UpdateItem on the status table (+ its key)', () => {
    const stack = newStack();
    const key = new kms.Key(stack, 'Key');
    const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1'], orchestratorName: 'orders', encryptionKey: key });
    const plugin = new iam.Role(stack, 'Plugin', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    expect(orch.grantPluginStatus(plugin).success).toBe(true);
    expect(new Synth(stack).roleStatements('Plugin')).toEqual([
      { Action: ['dynamodb:GetItem', 'dynamodb:UpdateItem'], Effect: 'Allow', Resource: '${Orch/StatusTable.Arn}' },
      { Action: KMS_TABLE_RW, Effect: 'Allow', Resource: '${Key.Arn}' },
    ]);
  });
});

describe('validation (synth-time errors that name the value and what is allowed)', () => {
  const make = (props: Partial<OrchestratorProps>, setup?: (stack: Stack) => Partial<OrchestratorProps>) => () => synth(props, setup);
  const where = "Orchestrator 'TestStack/Orch'";

  test('activities must be a non-empty list', () => {
    expect(make({ activities: [] })).toThrow(`${where}: activities must list at least one activity name, got []`);
  });

  test('activities must be unique', () => {
    expect(make({ activities: ['Step1', 'Step2', 'Step1'] }))
      .toThrow(`${where}: activity "Step1" is listed more than once in activities ["Step1","Step2","Step1"]; each activity may appear once`);
  });

  test.each([
    ['Step 1'],
    ['step.1'],
    ['Étape'],
    [''],
    ['A'.repeat(65)],
  ])('activity name %j is rejected, quoting it and the allowed characters', (name) => {
    expect(make({ activities: ['Ok', name] })).toThrow(
      `${where}: activity name ${JSON.stringify(name)} is invalid: use 1-64 characters from letters A-Z a-z, digits 0-9, hyphen (-) and underscore (_) `
      + '(it names the activity\'s SNS topics and state machine)');
  });

  test('a 64-character activity name is accepted', () => {
    expect(make({ activities: ['A'.repeat(64)] })).not.toThrow();
  });

  test('activity names that are workflow state names are reserved', () => {
    expect(make({ activities: ['StartRun'] })).toThrow(
      `${where}: activity name "StartRun" is reserved: a workflow state machine uses the state names StartRun, ActivityFailed, Failed, Succeeded`);
  });

  test('orchestratorName must be a valid name', () => {
    expect(make({ orchestratorName: 'my orders' })).toThrow(`${where}: orchestratorName "my orders" is invalid: use 1-64 characters`);
  });

  test('<orchestratorName>-<activity> must fit in a state machine name', () => {
    expect(make({ orchestratorName: 'o'.repeat(20), activities: ['A'.repeat(64)] })).toThrow(
      `${where}: the state machine name "${'o'.repeat(20)}-${'A'.repeat(64)}" of activity "${'A'.repeat(64)}" has 85 characters; `
      + `AWS allows 80: shorten orchestratorName "${'o'.repeat(20)}" or the activity name`);
  });

  test('unknown activity in activity(): lists the known names', () => {
    const { orch } = synth({ activities: ['Step1', 'Step2'] });
    expect(() => orch.activity('Step9')).toThrow(`${where}: unknown activity "Step9"; known activities: Step1, Step2`);
    expect(() => orch.findActivity('Step9')).toThrow('unknown activity "Step9"; known activities: Step1, Step2');
  });

  test('bring-your-own status table without a stream', () => {
    expect(make({}, (stack) => ({ statusTable: dynamodb.Table.fromTableName(stack, 'NoStream', 'runs') }))).toThrow(
      `${where}: statusTable TestStack/NoStream has no stream; the status-summary handler needs the table's stream (NEW_AND_OLD_IMAGES): `
      + 'enable it, or import the table with Table.fromTableAttributes({ tableArn, tableStreamArn })');
  });

  test('statusTable and statusTableProps together', () => {
    expect(make({ statusTableProps: { tableName: 'runs' } }, (stack) => ({
      statusTable: dynamodb.Table.fromTableAttributes(stack, 'T', { tableName: 'runs', tableStreamArn: 'arn:aws:dynamodb:eu-west-1:123456789012:table/runs/stream/x' }),
    }))).toThrow(`${where}: pass either statusTable (bring your own table) or statusTableProps (configure the table this construct creates), not both`);
  });

  test('activityOptions for an unknown activity', () => {
    expect(make({ activityOptions: { Step9: { pluginRetries: 1 } } }))
      .toThrow(`${where}: activityOptions names unknown activity "Step9"; known activities: Step1`);
  });

  test('parallelHeartbeat must be shorter than parallelTimeout', () => {
    expect(make({ parallelTimeout: Duration.minutes(10) }))
      .toThrow(`${where}: parallelHeartbeat (15 minutes) must be shorter than parallelTimeout (10 minutes)`);
    expect(make({ activityOptions: { Step1: { parallelHeartbeat: Duration.hours(2) } } }))
      .toThrow(`${where}: parallelHeartbeat of activity "Step1" (2 hours) must be shorter than parallelTimeout (1 hour)`);
  });

  test('timeouts are whole seconds within a year', () => {
    expect(make({ parallelTimeout: Duration.millis(1500) }))
      .toThrow(`${where}: parallelTimeout is 1 second 500 millis; it must be a whole number of seconds between 1 second and 365 days`);
    expect(make({ parallelTimeout: Duration.days(400) }))
      .toThrow(`${where}: parallelTimeout is 400 days; it must be a whole number of seconds between 1 second and 365 days`);
  });

  test('pluginRetries: whole number 0-10', () => {
    expect(make({ pluginRetries: 11 })).toThrow(`${where}: pluginRetries is 11; it must be a whole number from 0 to 10`);
    expect(make({ activityOptions: { Step1: { pluginRetries: 1.5 } } }))
      .toThrow(`${where}: pluginRetries of activity "Step1" is 1.5; it must be a whole number from 0 to 10`);
  });

  test('statusRetention: whole days, 1 to 3650', () => {
    expect(make({ statusRetention: Duration.hours(12) }))
      .toThrow(`${where}: statusRetention is 12 hours; it must be a whole number of days from 1 to 3650`);
    expect(make({ statusRetention: Duration.days(30) })).not.toThrow();
  });
});
