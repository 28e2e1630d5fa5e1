/**
 * stuck-runs: runs on a schedule (an EventBridge rule; its input is ignored, so it may also be invoked
 * by hand) and reports every run that is not finished `stuckAfter` after it was (re)started — once per
 * run — as an EventBridge event on the default bus and the `StuckRuns` metric (docs/DESIGN.md "Operations").
 *
 * No timer per run and no scan: it QUERIES each shard of the sparse open-run index (lambda/shared/
 * open-runs.ts) for `openedAt` older than the cut-off. Each run found is marked with one conditional
 * UpdateItem (still the same unfinished run) that moves it to its `stuck#<n>` shard, so the next sweep
 * does not see it again; an event that cannot be sent undoes its mark, so the next sweep retries it.
 */
import { EventBridgeClient, PutEventsCommand, PutEventsRequestEntry } from '@aws-sdk/client-eventbridge';
import { containerClient } from './shared/clients';
import { Document, queryPage } from './shared/documents';
import { requiredEnv, statusTableName } from './shared/environment';
import { ConfigurationError } from './shared/errors';
import { addMetricWithDimensions, instrumented, logger, Metric } from './shared/observability';
import {
  OPEN_RUNS_INDEX, OPEN_SHARD_ATTRIBUTE, OPENED_AT_ATTRIBUTE, openShardKeys, shardNumber, stuckShardKey,
} from './shared/open-runs';
import { State } from './shared/status';
import { StatusTarget, StuckReport, stuckReportRevert, stuckReportUpdate } from './shared/status-store';
import { updateStatus } from './shared/status-table';
import { ENV, METRIC_DIMENSION, STUCK_RUN_EVENT } from '../src/private/contract';

/** Runs reported per invocation at most (oldest first); the rest wait for the next sweep. */
const MAX_REPORTS_PER_SWEEP = 500;
/** PutEvents takes at most 10 entries per call. */
const EVENTS_PER_CALL = 10;
/** Conditional marks sent at the same time. */
const MARK_CONCURRENCY = 10;

/** The `detail` of an "Orchestrator Run Stuck" event. */
export interface StuckRunDetail {
  readonly uid: string;
  readonly workflow: string;
  readonly orchestrator: string;
  /** When the run was (re)started (ISO time). */
  readonly startedAt: string;
  /** The run's state when it was reported (`Not Started` or `In Progress`). */
  readonly state: State;
  readonly stuckAfterSeconds: number;
  readonly reportedAt: string;
}

export interface StuckRunsResult {
  /** Runs reported by this sweep (their events were accepted). */
  readonly reported: number;
  /** Runs whose event could not be sent (they are reported by a later sweep). */
  readonly failed: number;
}

/** Some events were not accepted by EventBridge; their runs were put back for the next sweep. */
class StuckRunReportFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StuckRunReportFailed';
  }
}

interface Candidate {
  readonly uid: string;
  readonly workflow: string;
  readonly openShard: string;
  readonly openedAt: string;
}

interface Marked {
  readonly target: StatusTarget;
  readonly report: StuckReport;
  readonly detail: StuckRunDetail;
}

export const handler = instrumented(sweep);

async function sweep(): Promise<StuckRunsResult> {
  const tableName = statusTableName();
  const orchestrator = requiredEnv(ENV.orchestratorName);
  const stuckAfterSeconds = positiveInteger(ENV.stuckAfterSeconds);
  const now = new Date();
  const cutoff = new Date(now.getTime() - stuckAfterSeconds * 1000).toISOString();

  const found = (await Promise.all(openShardKeys().map((shard) => queryShard(tableName, shard, cutoff)))).flat();
  const candidates = found.sort((a, b) => a.openedAt.localeCompare(b.openedAt)).slice(0, MAX_REPORTS_PER_SWEEP);

  const marked: Marked[] = [];
  for (let i = 0; i < candidates.length; i += MARK_CONCURRENCY) {
    const batch = await Promise.all(candidates.slice(i, i + MARK_CONCURRENCY)
      .map((candidate) => mark(tableName, candidate, { orchestrator, stuckAfterSeconds, now: now.toISOString() })));
    for (const one of batch) if (one) marked.push(one);
  }

  const failed = await publish(marked, now);
  const reported = marked.filter((one) => !failed.has(one));
  for (const { detail } of reported) logger.warn('Run stuck', { ...detail });
  // The orchestrator's count on every sweep (0 too: the graph shows the sweeps); per workflow when > 0.
  // `orchestrator` is a default dimension of every handler metric (observability.ts, from ORCHESTRATOR_NAME).
  addMetricWithDimensions({}, Metric.STUCK_RUNS, reported.length);
  const perWorkflow = new Map<string, number>();
  for (const { detail } of reported) perWorkflow.set(detail.workflow, (perWorkflow.get(detail.workflow) ?? 0) + 1);
  for (const [workflow, count] of perWorkflow) addMetricWithDimensions({ [METRIC_DIMENSION.workflow]: workflow }, Metric.STUCK_RUNS, count);

  if (failed.size > 0) {
    throw new StuckRunReportFailed(`${failed.size} of ${marked.length} stuck-run events were not accepted by EventBridge; `
      + 'their runs are reported again by the next sweep');
  }
  return { reported: reported.length, failed: 0 };
}

/** Open runs of one shard opened before the cut-off, oldest first (keys only: the index projects nothing else). */
async function queryShard(tableName: string, openShard: string, cutoff: string): Promise<Candidate[]> {
  const out: Candidate[] = [];
  let exclusiveStartKey: Document | undefined;
  do {
    const page = await queryPage({
      TableName: tableName,
      IndexName: OPEN_RUNS_INDEX,
      KeyConditionExpression: '#shard = :shard AND #openedAt < :cutoff',
      ExpressionAttributeNames: { '#shard': OPEN_SHARD_ATTRIBUTE, '#openedAt': OPENED_AT_ATTRIBUTE },
      ExpressionAttributeValues: { ':shard': openShard, ':cutoff': cutoff },
      ExclusiveStartKey: exclusiveStartKey,
    });
    for (const item of page.Items) {
      if (typeof item.uid === 'string' && typeof item.workflow === 'string' && typeof item.openedAt === 'string') {
        out.push({ uid: item.uid, workflow: item.workflow, openShard, openedAt: item.openedAt });
      }
    }
    exclusiveStartKey = page.LastEvaluatedKey;
  } while (exclusiveStartKey && out.length < MAX_REPORTS_PER_SWEEP);
  return out;
}

/** Marks the run reported; undefined when it finished or was re-run since the query (not stuck). */
async function mark(
  tableName: string, candidate: Candidate, about: { orchestrator: string; stuckAfterSeconds: number; now: string },
): Promise<Marked | undefined> {
  const target: StatusTarget = { tableName, key: { uid: candidate.uid, workflow: candidate.workflow } };
  const report: StuckReport = {
    openShard: candidate.openShard,
    openedAt: candidate.openedAt,
    stuckShard: stuckShardKey(shardNumber(candidate.openShard)),
    now: about.now,
  };
  const written = await updateStatus(stuckReportUpdate(target, report));
  if (!written.applied || !written.item) return undefined;
  return {
    target,
    report,
    detail: {
      uid: candidate.uid,
      workflow: candidate.workflow,
      orchestrator: about.orchestrator,
      startedAt: candidate.openedAt,
      state: written.item.status.state,
      stuckAfterSeconds: about.stuckAfterSeconds,
      reportedAt: about.now,
    },
  };
}

/** Sends the events, 10 per call; returns the runs whose event was not accepted (their marks undone). */
async function publish(marked: readonly Marked[], now: Date): Promise<Set<Marked>> {
  const failed = new Set<Marked>();
  for (let i = 0; i < marked.length; i += EVENTS_PER_CALL) {
    const batch = marked.slice(i, i + EVENTS_PER_CALL);
    const entries: PutEventsRequestEntry[] = batch.map(({ detail }) => ({
      Source: STUCK_RUN_EVENT.source,
      DetailType: STUCK_RUN_EVENT.detailType,
      Detail: JSON.stringify(detail),
      Time: now,
    }));
    try {
      const answer = await events().send(new PutEventsCommand({ Entries: entries }));
      (answer.Entries ?? []).forEach((entry, index) => {
        if (entry.ErrorCode) failed.add(batch[index]);
      });
    } catch (error) {
      logger.error('PutEvents failed', { error });
      batch.forEach((one) => failed.add(one));
    }
  }
  for (const one of failed) {
    // Put the run back into its open shard, so the next sweep reports it (if it is still stuck).
    await updateStatus(stuckReportRevert(one.target, one.report));
  }
  return failed;
}

function events(): EventBridgeClient {
  return containerClient('events', EventBridgeClient);
}

function positiveInteger(name: string): number {
  const raw = requiredEnv(name);
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`Environment variable ${name} must be a whole number of seconds of at least 1, got ${JSON.stringify(raw)}`);
  }
  return value;
}
