import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct, IConstruct } from 'constructs';
import { IActivity } from './activity-base';
import { METRIC } from './private/contract';
import { grantTable } from './private/grants';
import { handlerMetric } from './private/metrics';
import { MonitoredWorkflow } from './private/orchestrator-monitoring';
import { quote } from './private/validation';

/**
 * An orchestrator, created in this app or imported with `Orchestrator.fromOrchestratorAttributes`.
 */
export interface IOrchestrator extends IConstruct {
  /** Prefix of the activity state machine and topic names. */
  readonly orchestratorName: string;
  /** Names of the activities, in the order they were declared. */
  readonly activityNames: string[];
  /** The status table (one item per run, keyed by `uid` and `workflow`). */
  readonly statusTable: dynamodb.ITable;
  /** The plugin registry table. */
  readonly pluginTable: dynamodb.ITable;
  /** The `start-run` handler, which a Workflow's first state invokes. */
  readonly startRunFunction: lambda.IFunction;
  /**
   * The customer managed key of the tables, topics and logs.
   *
   * @default - none
   */
  readonly encryptionKey?: kms.IKey;
  /**
   * How long status items are kept after a run was (re)started (whole days).
   *
   * @default - status items are kept
   */
  readonly statusRetention?: Duration;
  /**
   * Path of the SSM parameters with the orchestrator's coordinates; a Workflow publishes its own next to them.
   *
   * @default - not published, or not known (an import)
   */
  readonly parameterPrefix?: string;
  /**
   * The activity with this name; throws, listing the known names, when there is none.
   */
  findActivity(activityName: string): IActivity;
  /**
   * What a plugin needs to report its status: GetItem and UpdateItem on the status table (and
   * the table's KMS key, if any).
   */
  grantPluginStatus(grantee: iam.IGrantable): iam.Grant;
  /**
   * Runs of this orchestrator reported stuck (`CdkOrchestrator` `StuckRuns`, dimensions `service`
   * and `orchestrator`; published by every sweep of stuck-run detection).
   *
   * @default - sum over 5 minutes
   */
  metricStuckRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric;
  /**
   * The log group a Workflow uses unless given its own: the activity state machines' (undefined for an
   * import, whose workflows get their own).
   *
   * @internal
   */
  _workflowLogGroup(): logs.ILogGroup | undefined;
  /**
   * Reserves a workflow name: two workflows of one orchestrator with the same name would share status items.
   *
   * @internal
   */
  _claimWorkflowName(where: string, workflowName: string, workflowPath: string): void;
  /**
   * A workflow of this orchestrator: its failure alarm and dashboard lines, when the orchestrator watches its workflows.
   *
   * @internal
   */
  _monitorWorkflow(workflow: MonitoredWorkflow): cloudwatch.IAlarm | undefined;
  /**
   * `...:stateMachine:<orchestratorName>-*` and `...:execution:<orchestratorName>-*:*` in the
   * environment of the activities: what a workflow over many activities may start and follow.
   *
   * @internal
   */
  _activityArnPatterns(): { readonly stateMachine: string; readonly execution: string };
}

/**
 * What an orchestrator created in this app and an imported one share (aws-cdk-lib's
 * `StateMachineBase` idiom): the methods of `IOrchestrator` are written here once; subclasses supply
 * the fields and find their activities.
 */
export abstract class OrchestratorBase extends Construct implements IOrchestrator {
  public abstract readonly orchestratorName: string;
  public abstract readonly activityNames: string[];
  public abstract readonly statusTable: dynamodb.ITable;
  public abstract readonly pluginTable: dynamodb.ITable;
  public abstract readonly startRunFunction: lambda.IFunction;
  public abstract readonly encryptionKey?: kms.IKey;
  public abstract readonly statusRetention?: Duration;
  public abstract readonly parameterPrefix?: string;
  /** Workflow name -> the path of the workflow that took it. */
  private readonly workflowNames = new Map<string, string>();

  /** The activity with this name, as an `IActivity`; throws, listing the known names, when there is none. */
  public abstract findActivity(activityName: string): IActivity;

  /**
   * What a plugin needs to report its status: GetItem and UpdateItem on the status table (and
   * the table's KMS key, if any).
   */
  public grantPluginStatus(grantee: iam.IGrantable): iam.Grant {
    return grantTable(grantee, this.statusTable, ['dynamodb:GetItem', 'dynamodb:UpdateItem'], true);
  }

  /**
   * Runs of this orchestrator reported stuck (`CdkOrchestrator` `StuckRuns`, dimensions `service`
   * and `orchestrator`; 0 on every sweep that found none).
   *
   * @default - sum over 5 minutes
   */
  public metricStuckRuns(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return handlerMetric(METRIC.STUCK_RUNS, this.orchestratorName, {}, props);
  }

  /** @internal */
  public _claimWorkflowName(where: string, workflowName: string, workflowPath: string): void {
    const other = this.workflowNames.get(workflowName);
    if (other !== undefined) {
      throw new Error(`${where}: workflowName ${quote(workflowName)} is already used by workflow '${other}' of the same orchestrator; `
        + 'runs are keyed by uid and workflow name, so each workflow needs its own name');
    }
    this.workflowNames.set(workflowName, workflowPath);
  }

  /** @internal */
  public _workflowLogGroup(): logs.ILogGroup | undefined {
    return undefined;
  }

  /** @internal */
  public _monitorWorkflow(_workflow: MonitoredWorkflow): cloudwatch.IAlarm | undefined {
    return undefined;
  }

  /** @internal */
  public abstract _activityArnPatterns(): { readonly stateMachine: string; readonly execution: string };
}
