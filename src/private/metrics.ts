// Metrics of the constructs (DESIGN.md "Operations"), shared by Activity, its import, Workflow and
// Orchestrator so that none of them spells a metric out on its own. Not part of the public API.
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { METRIC_DIMENSION, METRICS_NAMESPACE, SERVICE_NAME } from './contract';

/** Every metric method's default period (aws-cdk-lib's). */
export const METRIC_PERIOD = Duration.minutes(5);

/**
 * A metric the handlers publish (EMF, namespace `CdkOrchestrator`, dimensions `service`,
 * `orchestrator` and the given ones): CloudWatch matches a query only with exactly the dimensions the
 * handlers published, and every handler of an orchestrator publishes `orchestrator` (its
 * `ORCHESTRATOR_NAME`). `orchestratorName` undefined (an imported activity whose name is not known at
 * synth) leaves `orchestrator` out: that reads only what a handler without `ORCHESTRATOR_NAME` published.
 * Sum over 5 minutes unless `props` says otherwise.
 */
export function handlerMetric(
  metricName: string, orchestratorName: string | undefined, dimensions: Record<string, string>, props?: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    statistic: cloudwatch.Stats.SUM,
    period: METRIC_PERIOD,
    ...props,
    dimensionsMap: {
      [METRIC_DIMENSION.service]: SERVICE_NAME,
      ...(orchestratorName !== undefined ? { [METRIC_DIMENSION.orchestrator]: orchestratorName } : {}),
      ...dimensions,
      ...props?.dimensionsMap,
    },
  });
}

/**
 * The four execution metrics of a state machine (namespace `AWS/States`, dimension `StateMachineArn`):
 * `ExecutionsFailed`, `ExecutionsSucceeded`, `ExecutionsTimedOut` (sums) and `ExecutionTime` (average, ms).
 */
export function executionMetrics(stateMachine: sfn.IStateMachine) {
  return {
    failed: (props?: cloudwatch.MetricOptions) => stateMachine.metricFailed(props),
    succeeded: (props?: cloudwatch.MetricOptions) => stateMachine.metricSucceeded(props),
    timedOut: (props?: cloudwatch.MetricOptions) => stateMachine.metricTimedOut(props),
    duration: (props?: cloudwatch.MetricOptions) => stateMachine.metricTime(props),
  };
}

/** `states:RedriveExecution` on the executions `executionArns` (`...:execution:<state machine name>:*`). */
export function grantRedrive(grantee: iam.IGrantable, executionArns: string): iam.Grant {
  return iam.Grant.addToPrincipal({ grantee, actions: ['states:RedriveExecution'], resourceArns: [executionArns] });
}
