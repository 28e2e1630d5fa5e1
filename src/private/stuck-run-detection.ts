// Stuck-run detection (DESIGN.md "Operations"): a sparse index of the unfinished runs on the status
// table and a function that sweeps it on a schedule. No timer per run, no table scan. Not part of the
// public API: `OrchestratorProps.stuckAfter` / `stuckRunDetection` configure it.
import { Duration, Stack } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import { failedEventsQueue } from './compliance';
import { OPEN_RUNS } from './contract';
import { grantKey, KMS_TABLE_WRITE_ACTIONS } from './grants';

/** The open-run index (its names: contract.ts `OPEN_RUNS`). */
export const OPEN_RUNS_INDEX = {
  indexName: OPEN_RUNS.indexName,
  partitionKey: { name: OPEN_RUNS.shardAttribute, type: dynamodb.AttributeType.STRING },
  sortKey: { name: OPEN_RUNS.openedAtAttribute, type: dynamodb.AttributeType.STRING },
};

export const STUCK_RUN_DEFAULTS = {
  /** The original's watch: a run not finished 15 minutes after it started is reported. */
  stuckAfter: Duration.minutes(15),
  minStuckAfter: Duration.minutes(1),
  maxStuckAfter: Duration.days(365),
  /** The sweep runs every stuckAfter / 3, at least every 5 minutes and at most every minute. */
  maxSweepInterval: Duration.minutes(5),
  minSweepInterval: Duration.minutes(1),
};

/** The stuck-runs handler: bundle name and settings. */
export const STUCK_RUNS_HANDLER = {
  name: 'stuck-runs',
  // A sweep reports at most 500 runs (500 conditional writes, 50 PutEvents calls).
  timeout: Duration.minutes(2),
  description: 'Reports runs that did not finish in time (EventBridge event, StuckRuns metric)',
};

/** How often the sweep runs: stuckAfter / 3 in whole minutes, between 1 and 5 minutes. */
export function sweepInterval(stuckAfter: Duration): Duration {
  const minutes = Math.floor(stuckAfter.toMinutes({ integral: false }) / 3);
  const { minSweepInterval, maxSweepInterval } = STUCK_RUN_DEFAULTS;
  return Duration.minutes(Math.min(maxSweepInterval.toMinutes(), Math.max(minSweepInterval.toMinutes(), minutes)));
}

/**
 * What the stuck-runs function may do: Query the open-run index (not the table), UpdateItem on the
 * table (its conditional mark), PutEvents on the default event bus only, and the table's key.
 */
export function grantStuckRuns(role: iam.IGrantable, statusTable: dynamodb.ITable): void {
  const stack = Stack.of(statusTable);
  iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:Query'], resourceArns: [`${statusTable.tableArn}/index/${OPEN_RUNS_INDEX.indexName}`] });
  iam.Grant.addToPrincipal({ grantee: role, actions: ['dynamodb:UpdateItem'], resourceArns: [statusTable.tableArn] });
  iam.Grant.addToPrincipal({
    grantee: role,
    actions: ['events:PutEvents'],
    resourceArns: [stack.formatArn({ service: 'events', resource: 'event-bus', resourceName: 'default' })],
  });
  if (statusTable.encryptionKey) {
    grantKey(role, statusTable.encryptionKey, KMS_TABLE_WRITE_ACTIONS);
  }
}

export interface StuckRunDetectionProps {
  /** The stuck-runs function (`OrchestratorHandlers.stuckRuns`). */
  readonly handler: lambda.IFunction;
  readonly stuckAfter: Duration;
  readonly orchestratorName: string;
}

/** The schedule of the stuck-runs sweep. */
export class StuckRunDetection extends Construct {
  public readonly rule: events.Rule;
  public readonly stuckAfter: Duration;

  constructor(scope: Construct, id: string, props: StuckRunDetectionProps) {
    super(scope, id);
    this.stuckAfter = props.stuckAfter;
    this.rule = new events.Rule(this, 'Schedule', {
      description: `Sweeps the open runs of orchestrator ${props.orchestratorName} for runs not finished after ${props.stuckAfter.toHumanString()}`,
      schedule: events.Schedule.rate(sweepInterval(props.stuckAfter)),
      // The function ignores its input; a failed sweep is simply followed by the next one.
      targets: [new targets.LambdaFunction(props.handler, { retryAttempts: 0, deadLetterQueue: failedEventsQueue(this) })],
    });
  }
}

/** A named synth error unless stuckAfter is whole minutes from 1 minute to 365 days. */
export function validateStuckAfter(where: string, stuckAfter: Duration): void {
  if (stuckAfter.isUnresolved()) return;
  const minutes = stuckAfter.toMilliseconds() / 60_000;
  const { minStuckAfter, maxStuckAfter } = STUCK_RUN_DEFAULTS;
  if (!Number.isInteger(minutes) || minutes < minStuckAfter.toMinutes() || minutes > maxStuckAfter.toMinutes()) {
    throw new Error(`${where}: stuckAfter is ${stuckAfter.toHumanString()}; it must be a whole number of minutes from `
      + `${minStuckAfter.toHumanString()} to ${maxStuckAfter.toHumanString()} (or set stuckRunDetection: false to turn detection off)`);
  }
}
