/**
 * Logs, metrics and traces of every handler (docs/DESIGN.md "Observability"): Powertools for AWS
 * Lambda (TypeScript), from AWS's Powertools Lambda layer (the bundles leave it external).
 *
 * - Logs: one JSON line per entry (Powertools Logger) with the service, the Lambda context (request
 *   id, cold start) and the X-Ray trace id. Once a handler has parsed its event it appends the run's
 *   keys (`uid`, `workflow`, `activity`, `stage`); they are cleared when the invocation ends, so they
 *   never leak into the next one. `POWERTOOLS_LOG_LEVEL` (DEBUG|INFO|WARN|ERROR|SILENT) filters.
 * - Metrics: CloudWatch embedded metric format (EMF: one JSON line on stdout, no API call), namespace
 *   `POWERTOOLS_METRICS_NAMESPACE` (`CdkOrchestrator`), dimensions `service`, `orchestrator` (from
 *   `ORCHESTRATOR_NAME`, so two orchestrators of one account and region with the same activity names
 *   keep apart; left out when the variable is unset) and, when the invocation is about one activity,
 *   `activity`; published when the invocation ends.
 * - Traces: Powertools Tracer (X-Ray) under Lambda active tracing, joined to the state machines'
 *   traces. Each sampled invocation gets a `## <handler>` subsegment annotated with the run's keys
 *   (`uid`, `workflow`, `activity`, `stage`; search them with X-Ray filter expressions), `ColdStart`
 *   and `Service`, and the error when it throws; every AWS SDK call is a subsegment of it (clients.ts
 *   hands a sampled invocation captured clients). Responses are not recorded: they carry the users'
 *   run metadata. Outside Lambda (no `AWS_EXECUTION_ENV`), or with `POWERTOOLS_TRACE_ENABLED=false`,
 *   the tracer does nothing.
 *
 *   An unsampled invocation (X-Ray records only some: Lambda's trace header says `Sampled=0`) does no
 *   tracing work at all, and the X-Ray SDK is loaded only by a container's first sampled invocation.
 *   Loaded, the SDK's context tracking (cls-hooked) runs on every promise and its client middleware on
 *   every call, recorded or not: measured on the local engine, that was a fifth of the handlers' CPU.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { Tracer } from '@aws-lambda-powertools/tracer';
import type { Context } from 'aws-lambda';
import { ENV, METRIC, METRIC_DIMENSION, METRICS_NAMESPACE, SERVICE_NAME } from '../../src/private/contract';

// Used when the environment names none (the constructs always set both).
const serviceName = process.env[ENV.powertoolsServiceName] || SERVICE_NAME;
const orchestratorName = process.env[ENV.orchestratorName];

export const logger = new Logger({
  serviceName,
  // Items read from DynamoDB hold string sets: log them as arrays rather than `{}`.
  jsonReplacerFn: (_key: string, value: unknown) => (value instanceof Set ? [...value] : value),
});

export const metrics = new Metrics({
  namespace: process.env[ENV.powertoolsMetricsNamespace] || METRICS_NAMESPACE,
  serviceName,
  // Default dimensions are on every record, single-metric ones too.
  defaultDimensions: orchestratorName ? { [METRIC_DIMENSION.orchestrator]: orchestratorName } : undefined,
});

/** Lambda's trace header of a sampled invocation (`Root=...;Parent=...;Sampled=1`). */
const SAMPLED = /(?:^|;)\s*Sampled=1\s*(?:;|$)/;
let loadedTracer: Tracer | undefined;

/**
 * The tracer, when this invocation is traced: X-Ray sampled it and tracing is on. The first sampled
 * invocation of a container loads the tracer (and the X-Ray SDK with it); unsampled ones never do.
 */
export function sampledTracer(): Tracer | undefined {
  if (!SAMPLED.test(process.env._X_AMZN_TRACE_ID ?? '')) return undefined;
  // A require, not an import: esbuild would hoist an import to the bundle's top and load it always.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  loadedTracer ??= new (require('@aws-lambda-powertools/tracer') as typeof import('@aws-lambda-powertools/tracer')).Tracer({
    serviceName,
    // The handlers reach AWS only through the captured SDK clients: no need to patch http/https/fetch.
    captureHTTPsRequests: false,
  });
  return loadedTracer.isTracingEnabled() ? loadedTracer : undefined;
}

/** The handler metrics (DESIGN.md "Observability"; src/private/contract.ts). */
export const Metric = METRIC;
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
 * Keys every further log entry of this invocation carries and annotations of its trace subsegment;
 * `activity` also becomes the dimension of the invocation's metrics. Call once the event is parsed.
 */
export function appendRunKeys(keys: RunKeys): void {
  const defined = Object.fromEntries(Object.entries(keys).filter(([, value]) => value !== undefined && value !== '')) as Record<string, string>;
  logger.appendKeys(defined);
  const tracer = sampledTracer();
  for (const [key, value] of Object.entries(defined)) tracer?.putAnnotation(key, value);
  if (keys.activity) metrics.addDimension(METRIC_DIMENSION.activity, keys.activity);
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
  single.addDimension(METRIC_DIMENSION.activity, keys.activity);
  for (const key of ['uid', 'workflow', 'stage'] as const) {
    if (keys[key]) single.addMetadata(key, keys[key]);
  }
  single.addMetric(name, unit, value);
}

/**
 * A metric with its own dimensions (besides `service` and `orchestrator`), published at once as its
 * own EMF record: for metrics about the orchestrator or a workflow rather than an activity (stuck-runs).
 */
export function addMetricWithDimensions(
  dimensions: Readonly<Record<string, string>>, name: MetricName, value = 1, unit: Unit = MetricUnit.Count,
): void {
  const single = metrics.singleMetric();
  for (const [dimension, dimensionValue] of Object.entries(dimensions)) single.addDimension(dimension, dimensionValue);
  single.addMetric(name, unit, value);
}

/**
 * Wraps a handler: adds the Lambda context to the logs, opens the invocation's trace subsegment, and
 * when the invocation ends (returned or thrown) closes it (with the error, if any), publishes its
 * metrics and clears its keys. The handler's result and errors are unchanged.
 */
export function instrumented<R>(handler: (event: unknown) => Promise<R>): (event: unknown, context?: Context) => Promise<R> {
  return async (event: unknown, context?: Context): Promise<R> => {
    if (context) logger.addContext(context);
    const trace = openHandlerSubsegment(takeColdStart());
    try {
      return await handler(event);
    } catch (error) {
      trace?.tracer.addErrorAsMetadata(error as Error);
      throw error;
    } finally {
      if (trace) {
        trace.subsegment.close();
        trace.tracer.setSegment(trace.segment);
      }
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

/**
 * In a sampled invocation: opens the `## <handler>` subsegment below Lambda's own segment for the
 * invocation (a facade) and makes it current, annotated with `ColdStart` and `Service`.
 */
function openHandlerSubsegment(coldStart: boolean) {
  const tracer = sampledTracer();
  const segment = tracer?.getSegment();
  if (!tracer || !segment) return undefined;
  const subsegment = segment.addNewSubsegment(`## ${process.env._HANDLER || 'handler'}`);
  tracer.setSegment(subsegment);
  tracer.putAnnotation('ColdStart', coldStart);
  tracer.addServiceNameAnnotation();
  return { tracer, segment, subsegment };
}

let firstInvocation = true;

/**
 * Whether this is the container's cold start, by Powertools' rule (its `Utility.getColdStart`): the
 * first invocation of an on-demand container. Kept here because the tracer may load only later.
 */
function takeColdStart(): boolean {
  const coldStart = firstInvocation && process.env.AWS_LAMBDA_INITIALIZATION_TYPE?.trim() === 'on-demand';
  firstInvocation = false;
  return coldStart;
}
