// Alarms and the dashboard of an Orchestrator (DESIGN.md "Operations"). Not part of the public API:
// `OrchestratorProps.alarms`, `alarmTopic` and `dashboard` configure it; `orchestrator.alarms` and
// `orchestrator.dashboard` expose what it made. Sized so that 200 activities stay cheap: at most one
// alarm per activity (25 or fewer), else one metric-math alarm per 10 activities; the dashboard graphs
// at most 25 activity series per widget and uses SEARCH expressions beyond.
import { Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct, IConstruct } from 'constructs';
import type { Activity } from '../activity';
import type { OrchestratorHandlers } from '../handlers';
import { METRIC, METRIC_DIMENSION, METRICS_NAMESPACE } from './contract';
import { handlerMetric, METRIC_PERIOD } from './metrics';
import { SCALE } from './scale';

/** Thresholds of the default alarms (each over one 5-minute period; missing data is not breaching). */
export const ALARM_DEFAULTS = {
  /** Failed activity or workflow executions. */
  failedExecutions: 1,
  /** Parallel stages that timed out waiting for their plugins (States.Timeout / States.HeartbeatTimeout). */
  callbackTimeouts: 1,
  /** Errors of a handler whose errors are not part of its protocol (see `ALARMED_HANDLERS`). */
  handlerErrors: 1,
  /** Stream records status-summary gave up on (its dead-letter queue). */
  deadLetterMessages: 1,
  /** Runs reported stuck. */
  stuckRuns: 1,
  /** CloudWatch allows 10 metrics per alarm: activities per metric-math alarm beyond 25 activities. */
  activitiesPerAlarm: 10,
};

/** `AWS/States` history event of a task whose callback did not come in time (Timeout or Heartbeat). */
const TASK_TIMED_OUT_EVENT = 'TaskTimedOut';
/** Metric of the state-machine log group's metric filter (namespace `CdkOrchestrator/<orchestratorName>`). */
export const CALLBACK_TIMEOUTS_METRIC = 'ParallelStageTimeouts';

export interface OrchestratorMonitoringProps {
  readonly orchestratorName: string;
  readonly activities: Activity[];
  readonly handlers: OrchestratorHandlers;
  /** The log group every activity state machine logs to (level ALL): the callback-timeout metric filter. */
  readonly stateMachineLogGroup: logs.ILogGroup;
  readonly alarms: boolean;
  readonly alarmTopic?: sns.ITopic;
  readonly dashboard: boolean;
  /** The orchestrator's stuck-run metric, when detection is on. */
  readonly stuckRuns?: cloudwatch.IMetric;
}

/** What the monitoring needs of a Workflow. */
export interface MonitoredWorkflow extends IConstruct {
  readonly workflowName: string;
  readonly stateMachine: sfn.IStateMachine;
}

export class OrchestratorMonitoring extends Construct {
  /** Every alarm created for the orchestrator, its activities and its workflows. */
  public readonly alarms: cloudwatch.IAlarm[] = [];
  public readonly dashboard?: cloudwatch.Dashboard;
  /** Parallel stages of this orchestrator's activities that timed out. */
  public readonly callbackTimeouts: cloudwatch.Metric;
  private readonly props: OrchestratorMonitoringProps;
  private readonly workflowGraphs?: { runs: cloudwatch.GraphWidget; failures: cloudwatch.GraphWidget; duration: cloudwatch.GraphWidget };

  constructor(scope: Construct, id: string, props: OrchestratorMonitoringProps) {
    super(scope, id);
    this.props = props;
    const { handlers, activities, orchestratorName } = props;

    // One metric filter for every activity: the shared log group holds each execution's history.
    const filter = new logs.MetricFilter(this, 'CallbackTimeoutsFilter', {
      logGroup: props.stateMachineLogGroup,
      filterPattern: logs.FilterPattern.stringValue('$.type', '=', TASK_TIMED_OUT_EVENT),
      metricNamespace: `${METRICS_NAMESPACE}/${orchestratorName}`,
      metricName: CALLBACK_TIMEOUTS_METRIC,
      metricValue: '1',
    });
    this.callbackTimeouts = filter.metric({ statistic: cloudwatch.Stats.SUM, period: METRIC_PERIOD, label: 'Parallel-stage timeouts' });

    // Handlers whose errors mean something broke. Not sequential-stage (it throws PluginInvocationFailed/
    // PluginFailed to make Step Functions retry or fail) nor stage-failure (it always rethrows the
    // activity's error): their failures are the activities' failed executions, alarmed below.
    const alarmedHandlers: Array<[string, lambda.IFunction | undefined]> = [
      ['start-run', handlers.startRun],
      ['parallel-stage', handlers.parallelStage],
      ['status-summary', handlers.statusSummary],
      ['plugin-outcome', handlers.pluginOutcome],
      ['stuck-runs', handlers.stuckRuns],
    ];

    if (props.alarms) {
      this.activityAlarms(activities);
      this.alarm('CallbackTimeoutsAlarm', this.callbackTimeouts, ALARM_DEFAULTS.callbackTimeouts,
        `Orchestrator ${orchestratorName}: a parallel stage timed out waiting for its plugins (States.Timeout or States.HeartbeatTimeout)`);
      for (const [name, fn] of alarmedHandlers) {
        if (!fn) continue;
        this.alarm(`${pascal(name)}ErrorsAlarm`, fn.metricErrors({ period: METRIC_PERIOD }), ALARM_DEFAULTS.handlerErrors,
          `Orchestrator ${orchestratorName}: the ${name} handler failed`);
      }
      this.alarm('DeadLetterQueueAlarm',
        handlers.deadLetterQueue.metricApproximateNumberOfMessagesVisible({ period: METRIC_PERIOD, statistic: cloudwatch.Stats.MAXIMUM }),
        ALARM_DEFAULTS.deadLetterMessages,
        `Orchestrator ${orchestratorName}: status-summary gave up on status-table stream records (see its dead-letter queue); `
        + 'their parallel stages may wait until they time out');
      if (props.stuckRuns) {
        this.alarm('StuckRunsAlarm', props.stuckRuns, ALARM_DEFAULTS.stuckRuns,
          `Orchestrator ${orchestratorName}: runs did not finish in time (EventBridge "Orchestrator Run Stuck" events name them)`);
      }
    }

    if (props.dashboard) {
      const dashboard = new cloudwatch.Dashboard(this, 'Dashboard', { periodOverride: cloudwatch.PeriodOverride.AUTO });
      const graph = (title: string, left: cloudwatch.IMetric[], width = 8) => new cloudwatch.GraphWidget({ title, left, width, height: 6 });
      this.workflowGraphs = {
        runs: graph('Runs per workflow (started)', []),
        failures: graph('Failed runs per workflow', []),
        duration: graph('Run duration per workflow (ms, average)', []),
      };
      const activityGraph = (title: string, metricOf: (activity: Activity) => cloudwatch.IMetric, search: string) =>
        graph(title, activities.length <= SCALE.maxActivitiesInStack
          ? activities.map(metricOf)
          : [new cloudwatch.SearchExpression({ expression: search })]);
      const period = METRIC_PERIOD.toSeconds();
      // Beyond 25 activities: the activity state machines are found by name (`<orchestratorName>-<activity>`).
      const statesSearch = (metric: string, stat: string) =>
        `SEARCH('{AWS/States,StateMachineArn} MetricName="${metric}" StateMachineArn=${orchestratorName}', '${stat}', ${period})`;
      const handlerSearch = (metric: string, stat: string) =>
        `SEARCH('{${METRICS_NAMESPACE},${METRIC_DIMENSION.activity},${METRIC_DIMENSION.orchestrator},${METRIC_DIMENSION.service}} MetricName="${metric}" ${METRIC_DIMENSION.orchestrator}="${orchestratorName}"', '${stat}', ${period})`;
      dashboard.addWidgets(new cloudwatch.TextWidget({
        markdown: `# Orchestrator ${orchestratorName}\n${activities.length} activities. Failures, timeouts and stuck runs alarm `
          + '(see the alarm widget); a failed run is recovered by running its uid again (completed plugins are skipped).',
        width: 24,
        height: 2,
      }));
      dashboard.addWidgets(this.workflowGraphs.runs, this.workflowGraphs.failures, this.workflowGraphs.duration);
      dashboard.addWidgets(
        activityGraph('Failed activity executions', (a) => a.metricFailed({ label: a.activityName }), statesSearch('ExecutionsFailed', 'Sum')),
        activityGraph('Activity duration (ms, average)', (a) => a.metricDuration({ label: a.activityName }), statesSearch('ExecutionTime', 'Average')),
        activityGraph('Parallel stage duration (s, average)',
          (a) => handlerMetric(METRIC.PARALLEL_STAGE_DURATION, orchestratorName, { activity: a.activityName },
            { statistic: cloudwatch.Stats.AVERAGE, label: a.activityName }),
          handlerSearch(METRIC.PARALLEL_STAGE_DURATION, 'Average')),
      );
      dashboard.addWidgets(
        activityGraph('Plugin errors', (a) => a.metricPluginErrors({ label: a.activityName }), handlerSearch(METRIC.PLUGIN_ERRORS, 'Sum')),
        graph('Parallel-stage timeouts and stuck runs', [this.callbackTimeouts, ...(props.stuckRuns ? [props.stuckRuns] : [])]),
        graph('Handler errors', alarmedHandlers.filter(([, fn]) => fn)
          .map(([name, fn]) => fn!.metricErrors({ period: METRIC_PERIOD, label: name }))
          .concat([
            handlers.sequentialStage.metricErrors({ period: METRIC_PERIOD, label: 'sequential-stage (incl. plugin retries)' }),
            handlers.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: METRIC_PERIOD, statistic: cloudwatch.Stats.MAXIMUM, label: 'dead-letter queue',
            }),
          ])),
      );
      this.dashboard = dashboard;
    }
  }

  /**
   * The alarm and dashboard lines of a workflow. Its alarm lives in the workflow's scope; its lines
   * are added to the dashboard only when the workflow is in the dashboard's stack (a dashboard that
   * referred to another stack's workflow would make the two stacks depend on each other).
   */
  public addWorkflow(workflow: MonitoredWorkflow): cloudwatch.IAlarm | undefined {
    const failed = workflow.stateMachine.metricFailed({ label: workflow.workflowName });
    if (this.workflowGraphs && Stack.of(workflow) === Stack.of(this)) {
      this.workflowGraphs.runs.addLeftMetric(workflow.stateMachine.metricStarted({ label: workflow.workflowName }));
      this.workflowGraphs.failures.addLeftMetric(failed);
      this.workflowGraphs.duration.addLeftMetric(workflow.stateMachine.metricTime({ label: workflow.workflowName }));
    }
    if (!this.props.alarms) return undefined;
    return this.alarm('FailedAlarm', workflow.stateMachine.metricFailed(), ALARM_DEFAULTS.failedExecutions,
      `Workflow ${workflow.workflowName} of orchestrator ${this.props.orchestratorName}: runs failed`, workflow);
  }

  /**
   * Failed activity executions: one alarm per activity up to 25 activities (next to the activity);
   * beyond, one metric-math alarm per 10 activities (CloudWatch's metrics-per-alarm limit), by name.
   */
  private activityAlarms(activities: Activity[]): void {
    const name = this.props.orchestratorName;
    if (activities.length <= SCALE.maxActivitiesInStack) {
      for (const activity of activities) {
        this.alarm('FailedAlarm', activity.metricFailed(), ALARM_DEFAULTS.failedExecutions,
          `Activity ${activity.activityName} of orchestrator ${name}: executions failed (a stage failed or timed out)`, activity);
      }
      return;
    }
    const sorted = [...activities].sort((a, b) => a.activityName.localeCompare(b.activityName));
    for (let i = 0; i < sorted.length; i += ALARM_DEFAULTS.activitiesPerAlarm) {
      const chunk = sorted.slice(i, i + ALARM_DEFAULTS.activitiesPerAlarm);
      const usingMetrics = Object.fromEntries(chunk.map((activity, j) => [`a${j}`, activity.metricFailed()]));
      const expression = Object.keys(usingMetrics).map((metricId) => `FILL(${metricId}, 0)`).join(' + ');
      this.alarm(`ActivitiesFailedAlarm${i / ALARM_DEFAULTS.activitiesPerAlarm}`,
        new cloudwatch.MathExpression({ expression, usingMetrics, period: METRIC_PERIOD, label: 'Failed executions' }),
        ALARM_DEFAULTS.failedExecutions,
        `Orchestrator ${name}: executions failed in one of the activities ${chunk.map((a) => a.activityName).join(', ')}`);
    }
  }

  private alarm(id: string, metric: cloudwatch.IMetric, threshold: number, description: string, scope: Construct = this): cloudwatch.IAlarm {
    const alarm = new cloudwatch.Alarm(scope, id, {
      metric,
      threshold,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: description,
    });
    if (this.props.alarmTopic) {
      const action = new cloudwatchActions.SnsAction(this.props.alarmTopic);
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
    }
    this.alarms.push(alarm);
    return alarm;
  }
}

function pascal(name: string): string {
  return name.split('-').map((part) => part.charAt(0).toUpperCase() + part.slice(1)).join('');
}
