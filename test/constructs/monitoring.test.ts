// Operations (DESIGN.md "Operations"): metrics on Activity, its import, Workflow and Orchestrator;
// the default alarms and their topic; the dashboard; stuck-run detection (index, function, schedule,
// least privilege, validation); redrive grants; and what all of it costs in resources for 1, 25 and
// 200 activities.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { App, Duration, Fn, NestedStack, Stack } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Synth } from './util';
import { Activity, Orchestrator, OrchestratorProps, Workflow } from '../../src';

type Json = any;

function app(props: Partial<OrchestratorProps> = {}, activities = ['Step1', 'Step2']) {
  const stack = new Stack(new App(), 'TestStack');
  const orch = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities, ...props });
  return { stack, orch };
}

const resolved = (stack: Stack, metric: cloudwatch.IMetric) => {
  const config = metric.toMetricConfig().metricStat!;
  const dimensions = (stack.resolve(config.dimensions) as Json[] ?? []).sort((x, y) => x.name.localeCompare(y.name));
  return { namespace: config.namespace, metricName: config.metricName, statistic: config.statistic, period: config.period.toSeconds(), dimensions };
};

describe('metrics', () => {
  test('Activity: AWS/States execution metrics of its state machine, sum (duration: average) over 5 minutes', () => {
    const { stack, orch } = app();
    const step1 = orch.activity('Step1');
    const smArn = stack.resolve(step1.stateMachine.stateMachineArn);
    const expected = (metricName: string, statistic: string) => ({
      namespace: 'AWS/States', metricName, statistic, period: 300, dimensions: [{ name: 'StateMachineArn', value: smArn }],
    });
    expect(resolved(stack, step1.metricFailed())).toEqual(expected('ExecutionsFailed', 'Sum'));
    expect(resolved(stack, step1.metricSucceeded())).toEqual(expected('ExecutionsSucceeded', 'Sum'));
    expect(resolved(stack, step1.metricTimedOut())).toEqual(expected('ExecutionsTimedOut', 'Sum'));
    expect(resolved(stack, step1.metricDuration())).toEqual(expected('ExecutionTime', 'Average'));
    expect(resolved(stack, step1.metricFailed({ period: Duration.minutes(1), statistic: 'Maximum' }))).toEqual({ ...expected('ExecutionsFailed', 'Maximum'), period: 60 });
  });

  test('Activity and its import: plugin errors are the handlers\' PluginErrors of that activity of that orchestrator', () => {
    const { stack, orch } = app();
    const imported = Activity.fromActivityAttributes(stack, 'Imported', {
      activityName: 'Step1',
      stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:orders-Step1',
      preTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-Step1-pre',
      parallelTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-Step1-parallel',
      postTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-Step1-post',
    });
    const expected = {
      namespace: 'CdkOrchestrator',
      metricName: 'PluginErrors',
      statistic: 'Sum',
      period: 300,
      // Exactly the handlers' dimensions (CloudWatch matches no subset): service and orchestrator on every record.
      dimensions: [{ name: 'activity', value: 'Step1' }, { name: 'orchestrator', value: 'orders' }, { name: 'service', value: 'cdk-orchestrator' }],
    };
    expect(resolved(stack, orch.activity('Step1').metricPluginErrors())).toEqual(expected);
    expect(resolved(stack, imported.metricPluginErrors())).toEqual(expected);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('pluginErrorsWithoutOrchestrator'))).toEqual([]);
    expect(resolved(stack, imported.metricFailed()).dimensions).toEqual([{ name: 'StateMachineArn', value: 'arn:aws:states:eu-west-1:111111111111:stateMachine:orders-Step1' }]);
  });

  test('an imported activity whose orchestrator is not known (parallel topic ARN a token): no orchestrator dimension, and a synth warning', () => {
    const stack = new Stack(new App(), 'Other');
    const topicArn = (stage: string) => Fn.importValue(`orders-Step1-${stage}`);
    const imported = Activity.fromActivityAttributes(stack, 'Imported', {
      activityName: 'Step1',
      stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:orders-Step1',
      preTopicArn: topicArn('pre'),
      parallelTopicArn: topicArn('parallel'),
      postTopicArn: topicArn('post'),
    });
    expect(resolved(stack, imported.metricPluginErrors()).dimensions).toEqual([
      { name: 'activity', value: 'Step1' }, { name: 'service', value: 'cdk-orchestrator' },
    ]);
    const warnings = Annotations.fromStack(stack).findWarning('/Other/Imported', Match.stringLikeRegexp('no "orchestrator" dimension'));
    expect(warnings).toHaveLength(1);
  });

  test('Workflow: execution metrics of its state machine; stuck runs of the orchestrator and of the workflow', () => {
    const { stack, orch } = app();
    const wf = new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1'] });
    const smArn = stack.resolve(wf.stateMachine.stateMachineArn);
    expect(resolved(stack, wf.metricFailed())).toMatchObject({ namespace: 'AWS/States', metricName: 'ExecutionsFailed', statistic: 'Sum', period: 300, dimensions: [{ name: 'StateMachineArn', value: smArn }] });
    expect(resolved(stack, wf.metricSucceeded()).metricName).toBe('ExecutionsSucceeded');
    expect(resolved(stack, wf.metricTimedOut()).metricName).toBe('ExecutionsTimedOut');
    expect(resolved(stack, wf.metricDuration())).toMatchObject({ metricName: 'ExecutionTime', statistic: 'Average' });
    expect(resolved(stack, orch.metricStuckRuns())).toEqual({
      namespace: 'CdkOrchestrator',
      metricName: 'StuckRuns',
      statistic: 'Sum',
      period: 300,
      dimensions: [{ name: 'orchestrator', value: 'orders' }, { name: 'service', value: 'cdk-orchestrator' }],
    });
    expect(resolved(stack, wf.metricStuckRuns()).dimensions).toEqual([
      { name: 'orchestrator', value: 'orders' }, { name: 'service', value: 'cdk-orchestrator' }, { name: 'workflow', value: 'WF' },
    ]);
    const imported = Orchestrator.fromOrchestratorAttributes(stack, 'ImportedOrch', {
      orchestratorName: 'orders', activities: ['Step1'], statusTableArn: 'arn:aws:dynamodb:eu-west-1:111111111111:table/status', pluginTableArn: 'arn:aws:dynamodb:eu-west-1:111111111111:table/plugins',
    });
    expect(resolved(stack, imported.metricStuckRuns())).toEqual(resolved(stack, orch.metricStuckRuns()));
  });
});

describe('alarms', () => {
  const alarmsOf = (synth: Synth) => synth.pathsOf('AWS::CloudWatch::Alarm').map((path) => ({ path, ...synth.resource(path).Properties }));

  test('by default: failed executions per activity and per workflow, parallel-stage timeouts, handler errors, dead-letter queue, stuck runs', () => {
    const { stack, orch } = app();
    new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1', 'Step2'] });
    const synth = new Synth(stack);
    const alarms = alarmsOf(synth);
    expect(alarms.map((a) => a.path).sort()).toEqual([
      'Orch/Activities/Step1/FailedAlarm',
      'Orch/Activities/Step2/FailedAlarm',
      'Orch/Monitoring/CallbackTimeoutsAlarm',
      'Orch/Monitoring/DeadLetterQueueAlarm',
      'Orch/Monitoring/ParallelStageErrorsAlarm',
      'Orch/Monitoring/PluginOutcomeErrorsAlarm',
      'Orch/Monitoring/StartRunErrorsAlarm',
      'Orch/Monitoring/StatusSummaryErrorsAlarm',
      'Orch/Monitoring/StuckRunsAlarm',
      'Orch/Monitoring/StuckRunsErrorsAlarm',
      'WF/FailedAlarm',
    ]);
    expect(orch.alarms).toHaveLength(alarms.length);
    for (const alarm of alarms) {
      const { Threshold: threshold, ComparisonOperator: op, EvaluationPeriods: periods, TreatMissingData: missing, AlarmActions: actions } = alarm;
      expect({ path: alarm.path, threshold, op, periods, missing, actions })
        .toEqual({ path: alarm.path, threshold: 1, op: 'GreaterThanOrEqualToThreshold', periods: 1, missing: 'notBreaching', actions: undefined });
      expect(alarm.AlarmDescription).toMatch(/orders/);
    }
    const byPath = Object.fromEntries(alarms.map((a) => [a.path, a]));
    expect(byPath['Orch/Activities/Step1/FailedAlarm']).toMatchObject({ Namespace: 'AWS/States', MetricName: 'ExecutionsFailed', Statistic: 'Sum', Period: 300 });
    expect(synth.flat(byPath['Orch/Activities/Step1/FailedAlarm'].Dimensions)).toEqual([{ Name: 'StateMachineArn', Value: '${Orch/Activities/Step1/StateMachine}' }]);
    expect(byPath['Orch/Monitoring/DeadLetterQueueAlarm']).toMatchObject({ Namespace: 'AWS/SQS', MetricName: 'ApproximateNumberOfMessagesVisible', Statistic: 'Maximum' });
    expect(synth.flat(byPath['Orch/Monitoring/DeadLetterQueueAlarm'].Dimensions)).toEqual([{ Name: 'QueueName', Value: '${Orch/Handlers/StatusSummaryDeadLetterQueue.QueueName}' }]);
    expect(byPath['Orch/Monitoring/StatusSummaryErrorsAlarm']).toMatchObject({ Namespace: 'AWS/Lambda', MetricName: 'Errors' });
    expect(byPath['Orch/Monitoring/StuckRunsAlarm']).toMatchObject({ Namespace: 'CdkOrchestrator', MetricName: 'StuckRuns' });
    expect(byPath['Orch/Monitoring/CallbackTimeoutsAlarm'].Metrics[0].MetricStat).toEqual({
      Metric: { Namespace: 'CdkOrchestrator/orders', MetricName: 'ParallelStageTimeouts' }, Period: 300, Stat: 'Sum',
    });
    expect(wfAlarmMetric(synth, byPath['WF/FailedAlarm'])).toBe('ExecutionsFailed:${WF/StateMachine}');
  });

  function wfAlarmMetric(synth: Synth, alarm: Json): string {
    return `${alarm.MetricName}:${synth.flat(alarm.Dimensions)[0].Value}`;
  }

  test('parallel-stage timeouts are counted from the activities\' shared log group: TaskTimedOut history events', () => {
    const synth = new Synth(app().stack);
    const filters = synth.pathsOf('AWS::Logs::MetricFilter');
    expect(filters).toEqual(['Orch/Monitoring/CallbackTimeoutsFilter']);
    const filter = synth.flat(synth.resource(filters[0]).Properties);
    expect(filter).toEqual({
      LogGroupName: '${Orch/StateMachineLogs}',
      FilterPattern: '{ $.type = "TaskTimedOut" }',
      MetricTransformations: [{ MetricNamespace: 'CdkOrchestrator/orders', MetricName: 'ParallelStageTimeouts', MetricValue: '1' }],
    });
  });

  test('alarmTopic is every alarm\'s ALARM and OK action', () => {
    const stack = new Stack(new App(), 'TestStack');
    const topic = new sns.Topic(stack, 'Ops');
    const orch = new Orchestrator(stack, 'Orch', { activities: ['Step1'], alarmTopic: topic });
    new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1'] });
    const synth = new Synth(stack);
    const alarms = alarmsOf(synth);
    expect(alarms.length).toBeGreaterThan(5);
    for (const alarm of alarms) {
      expect({ path: alarm.path, alarm: synth.flat(alarm.AlarmActions), ok: synth.flat(alarm.OKActions) }).toEqual({ path: alarm.path, alarm: ['${Ops}'], ok: ['${Ops}'] });
    }
  });

  test('alarms: false creates none; alarmTopic without alarms is a synth error', () => {
    const { stack, orch } = app({ alarms: false });
    new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1'] });
    expect(new Synth(stack).pathsOf('AWS::CloudWatch::Alarm')).toEqual([]);
    expect(orch.alarms).toEqual([]);
    const other = new Stack(new App(), 'S');
    expect(() => new Orchestrator(other, 'Orch', { activities: ['A'], alarms: false, alarmTopic: new sns.Topic(other, 'T') }))
      .toThrow(/Orchestrator 'S\/Orch': alarmTopic is set but alarms is false/);
  });

  test('beyond 25 activities: one metric-math alarm per 10 activities in the parent stack, none in the nested stacks', () => {
    const names = Array.from({ length: 30 }, (_, i) => `Step${i}`);
    const { stack } = app({}, names);
    const synth = new Synth(stack);
    const grouped = synth.pathsOf('AWS::CloudWatch::Alarm').filter((p) => p.includes('ActivitiesFailed'));
    expect(grouped.sort()).toEqual(['Orch/Monitoring/ActivitiesFailedAlarm0', 'Orch/Monitoring/ActivitiesFailedAlarm1', 'Orch/Monitoring/ActivitiesFailedAlarm2']);
    const first = synth.resource('Orch/Monitoring/ActivitiesFailedAlarm0').Properties;
    expect(first.Metrics).toHaveLength(11); // 10 activities + the expression
    const expression = first.Metrics.find((m: Json) => m.Expression);
    expect(expression.Expression).toBe(Array.from({ length: 10 }, (_, i) => `FILL(a${i}, 0)`).join(' + '));
    expect(first.AlarmDescription).toMatch(/Step0, Step1, Step10, Step11/);
    for (const nested of stack.node.findAll().filter(NestedStack.isNestedStack)) {
      expect(Object.values<Json>(new Synth(nested).resources).filter((r) => r.Type === 'AWS::CloudWatch::Alarm')).toEqual([]);
    }
  });
});

describe('dashboard', () => {
  const bodyOf = (synth: Synth) => {
    const [path] = synth.pathsOf('AWS::CloudWatch::Dashboard');
    return JSON.parse(synth.flat(synth.resource(path).Properties.DashboardBody));
  };

  test('one per orchestrator: runs, failures and duration per workflow, activity failures/durations, plugin errors, timeouts, stuck runs, handler errors', () => {
    const { stack, orch } = app();
    new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step1', 'Step2'] });
    const synth = new Synth(stack);
    expect(synth.pathsOf('AWS::CloudWatch::Dashboard')).toEqual(['Orch/Monitoring/Dashboard']);
    expect(orch.dashboard).toBe(orch.node.findChild('Monitoring').node.findChild('Dashboard'));
    const widgets = bodyOf(synth).widgets.filter((w: Json) => w.type === 'metric');
    const titles = widgets.map((w: Json) => w.properties.title);
    expect(titles).toEqual([
      'Runs per workflow (started)', 'Failed runs per workflow', 'Run duration per workflow (ms, average)',
      'Failed activity executions', 'Activity duration (ms, average)', 'Parallel stage duration (s, average)',
      'Plugin errors', 'Parallel-stage timeouts and stuck runs', 'Handler errors',
    ]);
    const metricsOf = (title: string) => JSON.stringify(widgets.find((w: Json) => w.properties.title === title).properties.metrics);
    expect(metricsOf('Runs per workflow (started)')).toContain('ExecutionsStarted');
    expect(metricsOf('Runs per workflow (started)')).toContain('${WF/StateMachine}');
    expect(metricsOf('Plugin errors')).toContain('"PluginErrors","activity","Step2","orchestrator","orders","service","cdk-orchestrator"');
    expect(metricsOf('Parallel stage duration (s, average)'))
      .toContain('"ParallelStageDuration","activity","Step2","orchestrator","orders","service","cdk-orchestrator"');
    expect(metricsOf('Parallel-stage timeouts and stuck runs')).toContain('StuckRuns');
  });

  test('its size does not grow with activities beyond 25: SEARCH expressions instead of a line per activity', () => {
    const names = Array.from({ length: 40 }, (_, i) => `Step${i}`);
    const { stack } = app({}, names);
    const synth = new Synth(stack);
    const text = synth.resource('Orch/Monitoring/Dashboard').Properties.DashboardBody;
    const body = JSON.stringify(text);
    expect(body).toContain('SEARCH(');
    expect(body).toContain('StateMachineArn=orders');
    // The handler metrics of this orchestrator only (another one of the account may have the same activity names).
    const searches = JSON.stringify(bodyOf(synth).widgets.map((w: Json) => w.properties.metrics));
    expect(searches).toContain(JSON.stringify('SEARCH(\'{CdkOrchestrator,activity,orchestrator,service} MetricName="PluginErrors" orchestrator="orders"\', \'Sum\', 300)'));
    expect(body).not.toContain('Step39');
    expect(Buffer.byteLength(body)).toBeLessThan(20_000);
  });

  test('dashboard: false creates none', () => {
    const { stack, orch } = app({ dashboard: false });
    expect(new Synth(stack).pathsOf('AWS::CloudWatch::Dashboard')).toEqual([]);
    expect(orch.dashboard).toBeUndefined();
  });

  test('a workflow in another stack gets its alarm there and adds nothing to the dashboard (no stack cycle)', () => {
    const appRoot = new App();
    const platform = new Stack(appRoot, 'Platform');
    const orch = new Orchestrator(platform, 'Orch', { orchestratorName: 'orders', activities: ['Step1'] });
    const team = new Stack(appRoot, 'Team');
    const wf = new Workflow(team, 'WF', { orchestrator: orch, activities: ['Step1'] });
    expect(wf.failedAlarm).toBe(wf.node.findChild('FailedAlarm'));
    expect(Stack.of(wf.failedAlarm!)).toBe(team);
    expect(platform.dependencies).toEqual([]);
    appRoot.synth();
  });
});

describe('stuck-run detection', () => {
  test('by default: a sparse keys-only index on the status table, with the names the handlers use', () => {
    const synth = new Synth(app().stack);
    const table = synth.resource('Orch/StatusTable').Properties;
    expect(table.GlobalSecondaryIndexes).toEqual([{
      IndexName: 'openRuns',
      KeySchema: [{ AttributeName: 'openShard', KeyType: 'HASH' }, { AttributeName: 'openedAt', KeyType: 'RANGE' }],
      Projection: { ProjectionType: 'KEYS_ONLY' },
    }]);
  });

  test('by default: stuck after 15 minutes, swept every 5 minutes by the stuck-runs function', () => {
    const { stack, orch } = app();
    const synth = new Synth(stack);
    expect(orch.stuckAfter?.toMinutes()).toBe(15);
    const fn = synth.resource('Orch/Handlers/StuckRuns').Properties;
    expect(fn.Environment.Variables).toMatchObject({ ORCHESTRATOR_NAME: 'orders', STUCK_AFTER_SECONDS: '900' });
    const code = JSON.stringify(fn.Code);
    expect(code).toMatch(/S3Key/);
    const rule = synth.resource('Orch/StuckRunDetection/Schedule').Properties;
    expect(rule.ScheduleExpression).toBe('rate(5 minutes)');
    expect(synth.flat(rule.Targets[0].Arn)).toBe('${Orch/Handlers/StuckRuns.Arn}');
  });

  test.each([
    [Duration.minutes(3), 'rate(1 minute)'],
    [Duration.minutes(9), 'rate(3 minutes)'],
    [Duration.hours(2), 'rate(5 minutes)'],
  ])('stuckAfter %s is swept at %s', (stuckAfter, rate) => {
    const synth = new Synth(app({ stuckAfter }).stack);
    expect(synth.resource('Orch/StuckRunDetection/Schedule').Properties.ScheduleExpression).toBe(rate);
    expect(synth.resource('Orch/Handlers/StuckRuns').Properties.Environment.Variables.STUCK_AFTER_SECONDS).toBe(String(stuckAfter.toSeconds()));
  });

  test.each([
    [Duration.seconds(90), '1 minute 30 seconds'],
    [Duration.seconds(30), '30 seconds'],
    [Duration.days(400), '400 days'],
  ])('a stuckAfter of %s is a synth error naming the prop and the allowed range', (stuckAfter, shown) => {
    expect(() => app({ stuckAfter })).toThrow(new RegExp(
      `Orchestrator 'TestStack/Orch': stuckAfter is ${shown}; it must be a whole number of minutes from 1 minute to 365 days`));
  });

  test('stuckRunDetection: false: no index, no function, no schedule, no stuck-run alarm; with stuckAfter it is a synth error', () => {
    const { stack, orch } = app({ stuckRunDetection: false });
    const synth = new Synth(stack);
    expect(synth.resource('Orch/StatusTable').Properties.GlobalSecondaryIndexes).toBeUndefined();
    expect(orch.handlers.stuckRuns).toBeUndefined();
    expect(synth.pathsOf('AWS::Events::Rule').filter((p) => p.includes('StuckRun'))).toEqual([]);
    expect(synth.pathsOf('AWS::CloudWatch::Alarm').filter((p) => p.includes('Stuck'))).toEqual([]);
    expect(orch.stuckAfter).toBeUndefined();
    expect(() => app({ stuckRunDetection: false, stuckAfter: Duration.minutes(30) }))
      .toThrow(/stuckAfter is set \(30 minutes\) but stuckRunDetection is false/);
  });

  test('your own statusTable: off with a warning naming the index; on with stuckAfter (the index is yours to add)', () => {
    const stack = new Stack(new App(), 'TestStack');
    const table = dynamodb.Table.fromTableAttributes(stack, 'Mine', {
      tableArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/mine',
      tableStreamArn: 'arn:aws:dynamodb:us-east-1:111111111111:table/mine/stream/2026',
    });
    const off = new Orchestrator(stack, 'Off', { activities: ['A'], statusTable: table });
    expect(off.stuckAfter).toBeUndefined();
    expect(off.handlers.stuckRuns).toBeUndefined();
    Annotations.fromStack(stack).hasWarning('/TestStack/Off', Match.stringLikeRegexp('Stuck-run detection is off for your own statusTable: add the global secondary index "openRuns"'));
    const on = new Orchestrator(stack, 'On', { activities: ['A'], statusTable: table, stuckAfter: Duration.minutes(30) });
    expect(on.handlers.stuckRuns).toBe(on.handlers.node.findChild('StuckRuns'));
    expect(() => new Orchestrator(stack, 'Asked', { activities: ['A'], statusTable: table, stuckRunDetection: true }))
      .toThrow(/stuckRunDetection on a statusTable of your own needs stuckAfter/);
  });

  test('least privilege: Query on the index only, UpdateItem on the table, PutEvents on the default bus, its logs, X-Ray', () => {
    const synth = new Synth(app().stack);
    const statements = synth.roleStatements('Orch/Handlers/StuckRunsRole');
    const simplified = statements.map((s: Json) => ({ actions: s.Action, resources: s.Resource }));
    expect(simplified).toEqual(expect.arrayContaining([
      { actions: 'dynamodb:Query', resources: '${Orch/StatusTable.Arn}/index/openRuns' },
      { actions: 'dynamodb:UpdateItem', resources: '${Orch/StatusTable.Arn}' },
      { actions: 'events:PutEvents', resources: 'arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default' },
    ]));
    const everything = JSON.stringify(statements);
    expect(everything).not.toMatch(/dynamodb:(Scan|GetItem|PutItem|DeleteItem|\*)/);
    expect(everything).not.toContain('event-bus/*');
    // The rest is what every handler has: its own log group and X-Ray; and its dead-letter queue (invoked by EventBridge).
    const others = statements.filter((s: Json) => !['dynamodb:Query', 'dynamodb:UpdateItem', 'events:PutEvents'].includes(s.Action));
    expect(others.flatMap((s: Json) => [s.Action].flat()).sort()).toEqual([
      'logs:CreateLogStream', 'logs:PutLogEvents', 'sqs:SendMessage', 'xray:PutTelemetryRecords', 'xray:PutTraceSegments',
    ].sort());
  });
});

describe('recovery grants', () => {
  test('grantRedrive: states:RedriveExecution on the executions of the activity (also in a nested stack, and imported) or the workflow', () => {
    const names = Array.from({ length: 26 }, (_, i) => `Step${i}`);
    const { stack, orch } = app({}, names);
    const wf = new Workflow(stack, 'WF', { orchestrator: orch, activities: ['Step0'] });
    const imported = Activity.fromActivityAttributes(stack, 'Imported', {
      activityName: 'X',
      stateMachineArn: 'arn:aws:states:eu-west-1:111111111111:stateMachine:orders-X',
      preTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-X-pre',
      parallelTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-X-parallel',
      postTopicArn: 'arn:aws:sns:eu-west-1:111111111111:orders-X-post',
    });
    const operator = new iam.Role(stack, 'Operator', { assumedBy: new iam.AccountRootPrincipal() });
    orch.activity('Step25').grantRedrive(operator);
    imported.grantRedrive(operator);
    wf.grantRedrive(operator);
    const synth = new Synth(stack);
    const statements = synth.roleStatements('Operator');
    expect(statements.map((s: Json) => s.Action)).toEqual(['states:RedriveExecution', 'states:RedriveExecution', 'states:RedriveExecution']);
    expect(statements.map((s: Json) => s.Resource)).toEqual([
      'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:orders-Step25:*',
      'arn:aws:states:eu-west-1:111111111111:execution:orders-X:*',
      'arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:${WF/StateMachine.Name}:*',
    ]);
  });
});

describe('resources', () => {
  function measure(activityCount: number) {
    const names = Array.from({ length: activityCount }, (_, i) => `Step${i}`);
    const root = new App();
    const stack = new Stack(root, 'Platform');
    const orch = new Orchestrator(stack, 'Orch', { orchestratorName: 'orders', activities: names });
    new Workflow(stack, 'WF', { orchestrator: orch, activities: names });
    const assembly = root.synth();
    const read = (file: string) => JSON.parse(readFileSync(join(assembly.directory, file), 'utf8'));
    const parent = read(stack.templateFile);
    const nested = stack.node.findAll().filter(NestedStack.isNestedStack).map((n) => read(n.templateFile));
    const count = (t: Json, predicate: (type: string) => boolean) => Object.values<Json>(t.Resources).filter((r) => predicate(r.Type)).length;
    const monitoring = (type: string) => ['AWS::CloudWatch::Alarm', 'AWS::CloudWatch::Dashboard', 'AWS::Logs::MetricFilter', 'AWS::Events::Rule'].includes(type);
    return {
      parent: count(parent, () => true),
      nestedMax: Math.max(0, ...nested.map((t: Json) => count(t, () => true))),
      alarms: count(parent, (t) => t === 'AWS::CloudWatch::Alarm') + nested.reduce((n: number, t: Json) => n + count(t, (type) => type === 'AWS::CloudWatch::Alarm'), 0),
      monitoringInParent: count(parent, monitoring),
      stuckRuns: Object.keys(parent.Resources).filter((id) => /StuckRuns/.test(id)).length,
    };
  }

  test('1, 25 and 200 activities: at most one alarm per activity, a constant rest; every template far below 500', () => {
    const one = measure(1);
    const twentyFive = measure(25);
    const twoHundred = measure(200);
    console.log(`monitoring resources (orchestrator + 1 workflow): 1 activity ${JSON.stringify(one)}; 25 ${JSON.stringify(twentyFive)}; 200 ${JSON.stringify(twoHundred)}`);
    // Fixed: 8 orchestrator alarms + 1 workflow alarm; per activity one alarm up to 25, one per 10 beyond.
    expect(one.alarms).toBe(8 + 1 + 1);
    expect(twentyFive.alarms).toBe(8 + 1 + 25);
    expect(twoHundred.alarms).toBe(8 + 1 + 20);
    expect(twentyFive.monitoringInParent - one.monitoringInParent).toBe(24);
    expect(twoHundred.parent).toBeLessThan(150);
    expect(twentyFive.parent).toBeLessThan(400);
    expect(twoHundred.nestedMax).toBeLessThan(200);
    // stuck-runs: function, role, policy, log group, and the schedule's invoke permission.
    expect(one.stuckRuns).toBe(twentyFive.stuckRuns);
  });
});
