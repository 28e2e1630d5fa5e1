import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { executionMetrics, grantRedrive } from './private/metrics';
import { executionArnPattern } from './private/naming';

/**
 * A construct run by one state machine (an activity, a workflow): the execution metrics of that state
 * machine and the redrive grant, written once for both.
 */
export abstract class ExecutionMetricsBase extends Construct {
  /** The state machine whose executions these are. */
  public abstract readonly stateMachine: sfn.IStateMachine;

  /**
   * The executions' ARN pattern when it cannot be read from `stateMachine` (an activity in a nested stack, by name).
   *
   * @internal
   */
  protected _executionArns?: string;

  /**
   * ARN pattern of the executions of the state machine (`...:execution:<state machine name>:*`).
   */
  public get executionArnPattern(): string {
    return this._executionArns ?? executionArnPattern(this, this.stateMachine);
  }

  /**
   * Failed executions (`AWS/States` `ExecutionsFailed`): for an activity, a stage failed (a parallel
   * stage that timed out too); for a workflow, an activity failed or StartRun refused the input.
   *
   * @default - sum over 5 minutes
   */
  public metricFailed(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return executionMetrics(this.stateMachine).failed(props);
  }

  /**
   * Succeeded executions (`AWS/States` `ExecutionsSucceeded`).
   *
   * @default - sum over 5 minutes
   */
  public metricSucceeded(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return executionMetrics(this.stateMachine).succeeded(props);
  }

  /**
   * Executions stopped by an execution timeout (`AWS/States` `ExecutionsTimedOut`): a workflow's
   * `timeout`; activity executions have none of their own (a parallel stage that times out fails the
   * execution: `metricFailed`).
   *
   * @default - sum over 5 minutes
   */
  public metricTimedOut(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return executionMetrics(this.stateMachine).timedOut(props);
  }

  /**
   * How long executions take, in milliseconds (`AWS/States` `ExecutionTime`).
   *
   * @default - average over 5 minutes
   */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return executionMetrics(this.stateMachine).duration(props);
  }

  /**
   * Lets the grantee redrive failed executions (`states:RedriveExecution` on `executionArnPattern`). See
   * README "Operations": to recover a run, running its uid again is usually better.
   */
  public grantRedrive(grantee: iam.IGrantable): iam.Grant {
    return grantRedrive(grantee, this.executionArnPattern);
  }
}
