import { Duration, Stack } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { IActivity } from './activity-base';
import { DEFAULT_LOG_RETENTION, THROTTLE_RETRY, WORKFLOW_STATE_NAMES } from './defaults';
import { ExecutionMetricsBase } from './execution-metrics-base';
import { IOrchestrator } from './orchestrator-base';
import { acknowledgeInlinePolicies } from './private/compliance';
import { METRIC } from './private/contract';
import { publishWorkflowCoordinates } from './private/coordinates';
import { addStateMachineLoggingAndTracing } from './private/grants';
import { handlerMetric } from './private/metrics';
import { stateMachineLogGroupName } from './private/naming';
import { resolveWorkflowProps } from './private/resolve-workflow';
import { SCALE } from './private/scale';

/**
 * Props of a `Workflow`.
 */
export interface WorkflowProps {
  /** The orchestrator whose activities the workflow runs (created in this app or imported). */
  readonly orchestrator: IOrchestrator;

  /**
   * The activities to run, in order. Each must be an activity of the orchestrator, listed once.
   * Activities are shared: several workflows may list the same activity. The workflow's role may
   * start (and follow) exactly these activities' state machines; with more than 20 activities, any
   * state machine named `<orchestratorName>-*` (IAM's policy size), so give orchestrators names that
   * are not a prefix of one another followed by `-`.
   */
  readonly activities: string[];

  /**
   * The workflow's name: the `workflow` key of its runs' status items. 1-64 characters from
   * `A-Z a-z 0-9 - _`, unique per orchestrator.
   *
   * @default - the construct id
   */
  readonly workflowName?: string;

  /**
   * Maximum duration of a run of the whole workflow.
   *
   * @default - no timeout (each activity's parallel stage has its own)
   */
  readonly timeout?: Duration;

  /**
   * Log group of the workflow's state machine.
   *
   * @default - the orchestrator's state machine log group when it was created in this app, else a new log group
   */
  readonly logGroup?: logs.ILogGroup;
}

/**
 * A workflow: an ordered list of an orchestrator's activities. Its state machine initializes the
 * run's status item (`StartRun`), then runs each activity's state machine in order and fails with
 * the error of the activity that failed. Execution input: `{ uid, metadata?, metadataOverride? }`.
 */
export class Workflow extends ExecutionMetricsBase {
  /** The workflow's name (the `workflow` key of its status items). */
  public readonly workflowName: string;
  /** The workflow's state machine. */
  public readonly stateMachine: sfn.IStateMachine;
  /** The activities the workflow runs, in order. */
  public readonly activities: IActivity[];
  /**
   * The workflow's default alarm (failed runs), when its orchestrator was created in this app with
   * `alarms` on; it is also in `orchestrator.alarms`.
   *
   * @default - none
   */
  public readonly failedAlarm?: cloudwatch.IAlarm;
  private readonly orchestratorName: string;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    const { orchestrator } = props;
    // Every prop checked (and the name claimed) before anything is built.
    this.workflowName = resolveWorkflowProps(this, id, props).workflowName;
    this.activities = props.activities.map((name) => orchestrator.findActivity(name));

    const startRunFunction = orchestrator.startRunFunction;
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: `Workflow ${this.workflowName} of orchestrator ${orchestrator.orchestratorName}`,
    });
    acknowledgeInlinePolicies(role);
    // The policy is written here, exactly; the state machine gets the role without policy updates.
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'InvokeStartRun',
      actions: ['lambda:InvokeFunction'],
      resources: [startRunFunction.functionArn],
    }));
    // Up to 20 activities, the policy names each one's state machine; more would outgrow IAM's
    // 10,240 characters of inline policy per role, so the orchestrator's name patterns are used.
    const patterns = props.activities.length > SCALE.maxWorkflowActivityArns ? orchestrator._activityArnPatterns() : undefined;
    const activityArns = patterns
      ? { stateMachines: [patterns.stateMachine], executions: [patterns.execution] }
      : {
        stateMachines: this.activities.map((a) => a.stateMachine.stateMachineArn),
        executions: this.activities.map((a) => a.executionArnPattern),
      };
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'StartActivities',
      actions: ['states:StartExecution'],
      resources: activityArns.stateMachines,
    }));
    // startExecution.sync: follow and stop the activity executions. Their ARNs are only known at
    // run time, hence `execution:<state machine name>:*`.
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'FollowActivities',
      actions: ['states:DescribeExecution', 'states:StopExecution'],
      resources: activityArns.executions,
    }));
    // The managed rule Step Functions uses to learn that a nested execution finished.
    role.addToPrincipalPolicy(new iam.PolicyStatement({
      sid: 'SyncExecutionEvents',
      actions: ['events:PutTargets', 'events:PutRule', 'events:DescribeRule'],
      resources: [Stack.of(this).formatArn({ service: 'events', resource: 'rule', resourceName: 'StepFunctionsGetEventsForStepFunctionsExecutionRule' })],
    }));
    addStateMachineLoggingAndTracing(role);

    const logGroup = props.logGroup
      ?? orchestrator._workflowLogGroup()
      ?? new logs.LogGroup(this, 'Logs', {
        logGroupName: stateMachineLogGroupName(this, `${orchestrator.orchestratorName}-${this.workflowName}`),
        retention: DEFAULT_LOG_RETENTION,
        encryptionKey: orchestrator.encryptionKey,
      });

    const stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: `Workflow ${this.workflowName} of orchestrator ${orchestrator.orchestratorName}: ${props.activities.join(', ')}`,
      definitionBody: sfn.DefinitionBody.fromChainable(this.definition(new Construct(this, 'Definition'), startRunFunction, props.activities, orchestrator.statusRetention)),
      stateMachineType: sfn.StateMachineType.STANDARD,
      role: role.withoutPolicyUpdates(),
      logs: { destination: logGroup, level: sfn.LogLevel.ALL, includeExecutionData: true },
      tracingEnabled: true,
      timeout: props.timeout,
    });
    stateMachine.node.addDependency(role);
    this.stateMachine = stateMachine;
    this.orchestratorName = orchestrator.orchestratorName;
    // An orchestrator of this app watches its workflows: an alarm and lines on its dashboard.
    this.failedAlarm = orchestrator._monitorWorkflow(this);
    // Published next to the orchestrator's coordinates when it publishes them. An imported
    // orchestrator does not say whether (or where) its owner publishes them: nothing is published.
    const parameterPrefix = orchestrator.parameterPrefix;
    if (parameterPrefix !== undefined) {
      publishWorkflowCoordinates(this, {
        prefix: parameterPrefix,
        orchestratorName: orchestrator.orchestratorName,
        workflowName: this.workflowName,
        stateMachineArn: stateMachine.stateMachineArn,
      });
    }
  }

  /**
   * Lets the grantee start runs of this workflow (`states:StartExecution` on its state machine).
   */
  public grantStartWorkflow(grantee: iam.IGrantable): iam.Grant {
    return this.stateMachine.grantStartExecution(grantee);
  }

  /**
   * Runs of this workflow reported stuck by the orchestrator's stuck-run detection (`CdkOrchestrator`
   * `StuckRuns`, dimensions `service`, `orchestrator`, `workflow`; published only when there are some).
   *
   * @default - sum over 5 minutes
   */
  public metricStuckRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC.STUCK_RUNS, this.orchestratorName, { workflow: this.workflowName }, props);
  }

  /** DESIGN.md "Workflow <name>": StartRun -> <activity>... -> Succeeded, failures -> ActivityFailed -> Failed. */
  private definition(scope: Construct, startRunFunction: lambda.IFunction, activityNames: string[], retention?: Duration): sfn.IChainable {
    const startRun = new tasks.LambdaInvoke(scope, WORKFLOW_STATE_NAMES.startRun, {
      lambdaFunction: startRunFunction,
      payload: sfn.TaskInput.fromObject({
        input: sfn.JsonPath.entirePayload,
        workflow: this.workflowName,
        activities: activityNames,
        ...(retention ? { retentionDays: retention.toDays() } : {}),
      }),
      resultSelector: { uid: sfn.JsonPath.stringAt('$.Payload.uid'), workflow: sfn.JsonPath.stringAt('$.Payload.workflow') },
    });
    // A throttled PutItem wrote nothing: start-run is tried again (defaults.ts THROTTLE_RETRY).
    startRun.addRetry(THROTTLE_RETRY);

    // A failed activity execution fails its task with States.TaskFailed and a Cause holding the
    // execution's description; the workflow fails with that execution's own Error and Cause.
    const activityFailed = new sfn.Pass(scope, WORKFLOW_STATE_NAMES.activityFailed, {
      parameters: { failure: sfn.JsonPath.stringToJson(sfn.JsonPath.stringAt('$.error.Cause')) },
    }).next(new sfn.Fail(scope, WORKFLOW_STATE_NAMES.failed, { errorPath: '$.failure.Error', causePath: '$.failure.Cause' }));

    let chain: sfn.Chain = sfn.Chain.start(startRun);
    this.activities.forEach((activity) => {
      const run = new tasks.StepFunctionsStartExecution(scope, activity.activityName, {
        stateMachine: activity.stateMachine,
        integrationPattern: sfn.IntegrationPattern.RUN_JOB,
        associateWithParent: true,
        input: sfn.TaskInput.fromObject({ uid: sfn.JsonPath.stringAt('$.uid'), workflow: sfn.JsonPath.stringAt('$.workflow') }),
        resultPath: sfn.JsonPath.DISCARD,
      });
      run.addCatch(activityFailed, { errors: [sfn.Errors.ALL], resultPath: '$.error' });
      chain = chain.next(run);
    });
    return chain.next(new sfn.Succeed(scope, WORKFLOW_STATE_NAMES.succeeded));
  }
}
