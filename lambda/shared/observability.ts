/**
 * Logs, metrics and traces of every handler (docs/DESIGN.md "Observability"): Powertools for AWS
 * Lambda (TypeScript), bundled into each handler.
 *
 * - Logs: one JSON line per entry (Powertools Logger) with the service, the Lambda context (request
 *   id, cold start) and the X-Ray trace id. Once a handler has parsed its event it appends the run's
 *   keys (`uid`, `workflow`, `activity`, `stage`); they are cleared when the invocation ends, so they
 *   never leak into the next one. `POWERTOOLS_LOG_LEVEL` (DEBUG|INFO|WARN|ERROR|SILENT) filters.
 * - Metrics: CloudWatch embedded metric format (EMF: one JSON line on stdout, no API call), namespace
 *   `POWERTOOLS_METRICS_NAMESPACE` (`CdkOrchestrator`), dimensions `service` and, when the
 *   invocation is about one activity, `activity`; published when the invocation ends.
 * - Traces: Lambda active tracing (the handlers' segments, joined to the state machines' traces) and
 *   the AWS SDK's own trace header, which carries the trace on to SNS and the plugins. No tracer
 *   library: the X-Ray SDK alone would make every bundle three times the size budget (DESIGN.md).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Context } from 'aws-lambda';

/** Used when the environment names none (the constructs always set both). */
const DEFAULT_SERVICE_NAME = 'cdk-orchestrator';
const DEFAULT_METRICS_NAMESPACE = 'CdkOrchestrator';

export const logger = new Logger({
  serviceName: process.env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME,
  // Items read from DynamoDB hold string sets: log them as arrays rather than `{}`.
  jsonReplacerFn: (_key: string, value: unknown) => (value instanceof Set ? [...value] : value),
});

export const metrics = new Metrics({
  namespace: process.env.POWERTOOLS_METRICS_NAMESPACE || DEFAULT_METRICS_NAMESPACE,
  serviceName: process.env.POWERTOOLS_SERVICE_NAME || DEFAULT_SERVICE_NAME,
});

/** The handler metrics (DESIGN.md "Observability"). */
export const Metric = {
  /** start-run created a run. */
  RUN_STARTED: 'RunStarted',
  /** start-run reset an existing run for a re-run. */
  RUN_RESTARTED: 'RunRestarted',
  /** A stage started (not counted when a re-run skips a stage that is done). */
  STAGE_STARTED: 'StageStarted',
  /** A stage let the activity go on (pre/post: settled; parallel: the waiting task was answered with success). */
  STAGE_COMPLETED: 'StageCompleted',
  /** An activity execution failed in a stage (counted once, by stage-failure, the state machine's Catch). */
  STAGE_FAILED: 'StageFailed',
  /** A plugin invocation failed or a plugin reported `Error` (pre/post: every failed attempt). */
  PLUGIN_ERRORS: 'PluginErrors',
  /** Seconds from the start of a parallel stage until every plugin is done (counted when the stage settles). */
  PARALLEL_STAGE_DURATION: 'ParallelStageDuration',
} as const;
export type MetricName = typeof Metric[keyof typeof Metric];

export { MetricUnit };
export type Unit = typeof MetricUnit[keyof typeof MetricUnit];

/** What a log entry and a metric are about. */
export interface RunKeys {
  readonly uid?: string;
  readonly workflow?: string;
  readonly activity?: string;
  readonly stage?: string;
}

/**
 * Keys every further log entry of this invocation carries; `activity` also becomes the dimension of
 * the invocation's metrics. Call once the event is parsed.
 */
export function appendRunKeys(keys: RunKeys): void {
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined && value !== ''));
  logger.appendKeys(defined);
  if (keys.activity) metrics.addDimension('activity', keys.activity);
  // Searchable in the EMF record (Logs Insights), not dimensions: they would make a metric per run.
  for (const key of ['uid', 'workflow', 'stage'] as const) {
    if (keys[key]) metrics.addMetadata(key, keys[key]);
  }
}

/** Counts `value` of `name` for this invocation (published when it ends). */
export function addMetric(name: MetricName, value = 1, unit: Unit = MetricUnit.Count): void {
  metrics.addMetric(name, unit, value);
}

/**
 * A metric of one activity, published at once as its own EMF record: for a handler that works on
 * several activities in one invocation (status-summary settles a batch of stream records).
 */
export function addActivityMetric(keys: RunKeys & { readonly activity: string }, name: MetricName, value = 1, unit: Unit = MetricUnit.Count): void {
  const single = metrics.singleMetric();
  single.addDimension('activity', keys.activity);
  for (const key of ['uid', 'workflow', 'stage'] as const) {
    if (keys[key]) single.addMetadata(key, keys[key]);
  }
  single.addMetric(name, unit, value);
}

/**
 * Wraps a handler: adds the Lambda context to the logs, and when the invocation ends (returned or
 * thrown) publishes its metrics and clears its keys. The handler's result and errors are unchanged.
 */
export function instrumented<R>(handler: (event: unknown) => Promise<R>): (event: unknown, context?: Context) => Promise<R> {
  return async (event: unknown, context?: Context): Promise<R> => {
    if (context) logger.addContext(context);
    try {
      return await handler(event);
    } finally {
      // Nothing recorded (e.g. an invalid event): no record, and no "no metrics" warning either.
      if (metrics.hasStoredMetrics()) {
        metrics.publishStoredMetrics();
      } else {
        metrics.clearDimensions();
        metrics.clearMetadata();
      }
      logger.resetKeys();
    }
  };
}
