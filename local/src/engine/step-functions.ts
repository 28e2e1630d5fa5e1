/**
 * Step Functions: runs the synthesized state-machine definitions unchanged with
 * `aws-local-stepfunctions`, supplying every Task integration the library leaves to us:
 * - `lambda:invoke` (+ `.waitForTaskToken`) runs the hosted function, failing with Lambda's error shape;
 * - `states:startExecution` (`.sync`, `.sync:2`, `.waitForTaskToken`) runs a nested execution;
 * - `sns:publish`, `sqs:sendMessage`, `dynamodb:*` and `aws-sdk:*` call the local services;
 * - callback tokens: `$$.Task.Token` is a getter that issues a token per read; the task registers the
 *   token it finds in its parameters and waits for SendTaskSuccess/Failure, with TimeoutSeconds and
 *   HeartbeatSeconds enforced (the library enforces neither heartbeats nor a no-timeout default).
 * It also serves the Step Functions API (SendTask*, StartExecution, DescribeExecution, StopExecution).
 */
import { randomUUID } from 'node:crypto';
import type { LocalStateMachine } from './assembly';
import { AwsError } from './aws-endpoint';
import type { InvokeResult } from './function-host';
import type { RunStart } from './sandbox-host';
import { stepFunctionsLibrary } from './step-functions-library';
import { packageVersion, rememberValidated, wasValidated } from './validated-definitions';

/** The library matches Retry/Catch on `name` and reports `message` as the Cause. */
export class StatesError extends Error {
  constructor(name: string, cause: string) {
    super(cause);
    this.name = name;
  }
}

export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED';

export interface Execution {
  readonly executionArn: string;
  readonly stateMachineArn: string;
  readonly name: string;
  readonly input: unknown;
  readonly startDate: Date;
  status: ExecutionStatus;
  output?: unknown;
  error?: string;
  cause?: string;
  stopDate?: Date;
  readonly parentExecutionArn?: string;
  /** When its run started (sandbox-host.ts RunStart): its own start, or a nested execution's parent's run start. */
  readonly runStart: RunStart;
  /** Resolves when the execution stops (never rejects). */
  readonly done: Promise<Execution>;
  abort?: () => void;
}

/** A state-level event of an execution, for live timelines. */
export interface ExecutionEvent {
  readonly executionArn: string;
  readonly stateMachineName: string;
  readonly type: string;
  readonly state?: string;
  readonly error?: string;
  readonly cause?: string;
  readonly time: Date;
}

export interface StepFunctionsOptions {
  readonly stateMachines: LocalStateMachine[];
  readonly region: string;
  readonly account: string;
  /** `runStart`: when the execution's run started (sandbox-host.ts RunStart). */
  readonly invokeLambda: (functionNameOrArn: string, payload: unknown, runStart: RunStart) => Promise<InvokeResult>;
  readonly invokeLambdaAsync: (functionNameOrArn: string, payload: unknown, runStart: RunStart) => void;
  /** Wait before every task retry instead of the state's Retry interval (EngineOptions.retryIntervalMs). */
  readonly retryIntervalMs?: number;
  /** Calls another local service (`sns`, `sqs`, `dynamodb`, ...) the way the SDK would. */
  readonly callService: (
    service: string, action: string, parameters: Record<string, unknown>, stateMachineArn: string,
  ) => Promise<Record<string, unknown>>;
  /**
   * Whether the state machine's role may run a task (iam/state-machine-tasks.ts): the error and
   * cause the task fails with when it may not. Absent: every task is allowed.
   */
  readonly authorizeTask?: (
    stateMachineArn: string, task: { service: string; action: string; pattern: string; input: any },
  ) => { error: string; cause: string } | undefined;
  readonly onEvent?: (event: ExecutionEvent) => void;
  readonly track: <T>(work: Promise<T>) => Promise<T>;
}

interface TaskInfo { resource: string; heartbeatSeconds?: number; timeoutSeconds?: number }

interface PendingToken {
  resolve: (output: unknown) => void;
  reject: (error: Error) => void;
  heartbeatSeconds?: number;
  heartbeatTimer?: NodeJS.Timeout;
  timeoutTimer?: NodeJS.Timeout;
  executionArn: string;
}

interface Machine { def: LocalStateMachine; sm: any; tasks: Map<string, TaskInfo> }

/** Largest timer Node accepts (~24.8 days): stands in for AWS's "no timeout" on tasks. */
const NO_TIMEOUT_SECONDS = 2_147_483;

export class StepFunctionsService {
  public transitions = 0;
  private readonly machines = new Map<string, Machine>();
  private readonly executions = new Map<string, Execution>();
  private readonly pending = new Map<string, PendingToken>();
  /** Tokens handed out by `$$.Task.Token` and not yet claimed by a task. */
  private readonly issued = new Set<string>();
  /** Tokens whose task finished (succeeded, failed, timed out): AWS answers TaskTimedOut. */
  private readonly closed = new Set<string>();

  constructor(private readonly options: StepFunctionsOptions) {}

  /** Builds every state machine once (construction validates the ASL and takes ~90 ms). */
  public load() {
    const { StateMachine } = stepFunctionsLibrary();
    const validator = `aws-local-stepfunctions@${packageVersion('aws-local-stepfunctions')}`;
    for (const def of this.options.stateMachines) {
      const definition = cloneJson(def.definition);
      const tasks = new Map<string, TaskInfo>();
      prepareDefinition(definition, tasks);
      // asl-validator mutates its input: validate a copy.
      let sm: any;
      try {
        const validated = wasValidated(definition, validator);
        sm = new StateMachine(cloneJson(definition) as any, { validationOptions: validated ? { noValidate: true } : { checkArn: false } });
        (sm as any).definition = definition;
        if (!validated) rememberValidated(definition, validator);
      } catch (e) {
        throw new Error(`State machine ${def.path ?? def.name}: ${(e as Error).message}`);
      }
      this.machines.set(def.arn, { def, sm, tasks });
    }
  }

  public stateMachine(arnOrName: string): LocalStateMachine | undefined {
    return (this.machines.get(arnOrName) ?? [...this.machines.values()].find((m) => m.def.name === arnOrName))?.def;
  }

  public execution(arn: string): Execution | undefined {
    return this.executions.get(arn);
  }

  public runningExecutions(): Execution[] {
    return [...this.executions.values()].filter((e) => e.status === 'RUNNING');
  }

  public startExecution(stateMachineArn: string, input: unknown, name?: string, parentExecutionArn?: string): Execution {
    const machine = this.machines.get(stateMachineArn) ?? [...this.machines.values()].find((m) => m.def.name === stateMachineArn);
    if (!machine) throw new AwsError('StateMachineDoesNotExist', `State Machine Does Not Exist: '${stateMachineArn}'`);
    const executionName = name ?? randomUUID();
    const executionArn = `arn:aws:states:${this.options.region}:${this.options.account}:execution:${machine.def.name}:${executionName}`;
    if (this.executions.has(executionArn)) throw new AwsError('ExecutionAlreadyExists', `Execution Already Exists: '${executionArn}'`);
    let finish!: (e: Execution) => void;
    const execution: Execution = {
      executionArn,
      stateMachineArn: machine.def.arn,
      name: executionName,
      input,
      startDate: new Date(),
      status: 'RUNNING',
      parentExecutionArn,
      runStart: (parentExecutionArn ? this.executions.get(parentExecutionArn)?.runStart : undefined) ?? performance.now(),
      done: new Promise((resolve) => { finish = resolve; }),
    };
    this.executions.set(executionArn, execution);
    const issue = () => {
      const token = `${executionArn}#${randomUUID()}`;
      this.issued.add(token);
      return token;
    };
    const overrides: Record<string, (input: any) => Promise<unknown>> = {};
    for (const [stateName, task] of machine.tasks) overrides[stateName] = (taskInput) => this.runTask(execution, task, taskInput);
    const retryIntervalOverrides = this.options.retryIntervalMs === undefined ? undefined
      : Object.fromEntries([...machine.tasks.keys()].map((stateName) => [stateName, this.options.retryIntervalMs!]));
    const run = machine.sm.run(input, {
      overrides: { taskResourceLocalHandlers: overrides, retryIntervalOverrides },
      context: {
        Execution: { Id: executionArn, Name: executionName, RoleArn: `arn:aws:iam::${this.options.account}:role/local` },
        StateMachine: { Id: machine.def.arn, Name: machine.def.name },
        // A getter: every read of $$.Task.Token issues a fresh token (see local-engine notes).
        Task: { get Token() { return issue(); } },
      },
    });
    execution.abort = run.abort;
    void this.options.track(this.consumeEvents(execution, machine.def.name, run.eventLogs));
    void this.options.track(run.result.then(
      (output: unknown) => this.settle(execution, 'SUCCEEDED', { output }),
      (e: any) => this.settle(execution, ...failureOf(e)),
    ).then(() => finish(execution)));
    return execution;
  }

  /** The state machine whose running task issued `token` (`states:SendTask*` is authorized on it). */
  public stateMachineOfToken(token: string): string | undefined {
    const task = this.pending.get(token);
    return task ? this.executions.get(task.executionArn)?.stateMachineArn : undefined;
  }

  /** The Step Functions JSON API, as handler code calls it through the SDK. */
  public async handleApi(operation: string, body: any): Promise<unknown> {
    switch (operation) {
      case 'SendTaskSuccess': {
        const task = this.claim(body.taskToken);
        let output: unknown;
        try {
          output = JSON.parse(body.output);
        } catch {
          throw new AwsError('InvalidOutput', 'Invalid Output: the output must be JSON');
        }
        task.resolve(output);
        return {};
      }
      case 'SendTaskFailure': {
        const task = this.claim(body.taskToken);
        task.reject(new StatesError(body.error ?? '', body.cause ?? ''));
        return {};
      }
      case 'SendTaskHeartbeat': {
        const task = this.pending.get(body.taskToken);
        if (!task) this.claim(body.taskToken); // throws the right error
        this.armHeartbeat(body.taskToken, task!);
        return {};
      }
      case 'StartExecution': {
        const input = body.input === undefined ? {} : JSON.parse(body.input);
        const execution = this.startExecution(body.stateMachineArn, input, body.name);
        return { executionArn: execution.executionArn, startDate: execution.startDate.getTime() / 1000 };
      }
      case 'DescribeExecution': {
        const e = this.executions.get(body.executionArn);
        if (!e) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${body.executionArn}'`);
        return {
          ...executionListItem(e),
          input: JSON.stringify(e.input),
          output: e.output === undefined ? undefined : JSON.stringify(e.output),
          error: e.error,
          cause: e.cause,
        };
      }
      case 'ListExecutions': {
        // One page: the engine keeps every execution in memory (newest first, as AWS lists them).
        const listed = [...this.executions.values()]
          .filter((e) => e.stateMachineArn === body.stateMachineArn && (!body.statusFilter || e.status === body.statusFilter))
          .sort((a, b) => b.startDate.getTime() - a.startDate.getTime());
        return {
          executions: listed.map(executionListItem),
        };
      }
      case 'StopExecution': {
        const e = this.executions.get(body.executionArn);
        if (!e) throw new AwsError('ExecutionDoesNotExist', `Execution Does Not Exist: '${body.executionArn}'`);
        if (e.status === 'RUNNING') {
          e.error = body.error;
          e.cause = body.cause;
          e.abort?.();
        }
        return { stopDate: Date.now() / 1000 };
      }
      default:
        throw new AwsError('UnknownOperationException', `The local engine does not emulate Step Functions ${operation}`);
    }
  }

  public stop() {
    for (const e of this.runningExecutions()) e.abort?.();
    for (const [token, task] of this.pending) {
      clearTimeout(task.heartbeatTimer);
      clearTimeout(task.timeoutTimer);
      this.pending.delete(token);
      // Settles the waiting task, so the interpreter clears its own TimeoutSeconds timer (else it
      // keeps the process alive for up to the task's timeout after the engine stopped).
      task.reject(Object.assign(new Error('The local engine stopped'), { name: 'States.Runtime' }));
    }
  }

  /** A token that can still complete its task; AWS's errors otherwise. */
  private claim(token: string): PendingToken {
    const task = this.pending.get(token);
    if (task) return task;
    if (this.closed.has(token) || this.issued.has(token)) throw new AwsError('TaskTimedOut', 'Task Timed Out: \'Provided task does not exist anymore\'');
    throw new AwsError('InvalidToken', `Invalid token: '${String(token).slice(0, 64)}'`);
  }

  private armHeartbeat(token: string, task: PendingToken) {
    if (!task.heartbeatSeconds) return;
    clearTimeout(task.heartbeatTimer);
    task.heartbeatTimer = setTimeout(() => {
      this.close(token);
      task.reject(new StatesError('States.HeartbeatTimeout', `No heartbeat within ${task.heartbeatSeconds} seconds`));
    }, task.heartbeatSeconds * 1000);
    task.heartbeatTimer.unref?.();
  }

  private close(token: string) {
    const task = this.pending.get(token);
    if (task) {
      clearTimeout(task.heartbeatTimer);
      clearTimeout(task.timeoutTimer);
    }
    this.pending.delete(token);
    this.issued.delete(token);
    this.closed.add(token);
  }

  /** Registers the token the task's parameters carry and waits for its outcome. */
  private waitForToken(execution: Execution, task: TaskInfo, input: unknown): { token: string; outcome: Promise<unknown> } {
    const token = findToken(input, this.issued);
    if (!token) throw new StatesError('States.Runtime', 'A .waitForTaskToken task must pass $$.Task.Token in its parameters');
    this.issued.delete(token);
    let pending!: PendingToken;
    const outcome = new Promise<unknown>((resolve, reject) => {
      pending = {
        executionArn: execution.executionArn,
        heartbeatSeconds: task.heartbeatSeconds,
        resolve: (v) => { this.close(token); resolve(v); },
        reject: (e) => { this.close(token); reject(e); },
      };
    });
    outcome.catch(() => undefined); // may settle before the task awaits it

    this.pending.set(token, pending);
    this.armHeartbeat(token, pending);
    // The library rejects with States.Timeout at TimeoutSeconds; this timer (armed first, same
    // duration) only retires the token so a late SendTaskSuccess gets TaskTimedOut.
    if (task.timeoutSeconds && task.timeoutSeconds < NO_TIMEOUT_SECONDS) {
      pending.timeoutTimer = setTimeout(() => this.close(token), task.timeoutSeconds * 1000);
      pending.timeoutTimer.unref?.();
    }
    return { token, outcome };
  }

  private async runTask(execution: Execution, task: TaskInfo, input: any): Promise<unknown> {
    const { service, action, pattern } = parseResource(task.resource);
    if (pattern !== 'waitForTaskToken') return this.integration(execution, service, action, pattern, input, task);
    const callback = this.waitForToken(execution, task, input);
    // The token settles the task, even before the call that carried it returns (a handler may
    // SendTaskSuccess and keep running); a failing call fails the task and retires the token.
    const call = this.integration(execution, service, action, pattern, input, task).then(() => new Promise<never>(() => undefined));
    try {
      return await Promise.race([callback.outcome, call]);
    } catch (e) {
      this.close(callback.token);
      throw e;
    }
  }

  private async integration(execution: Execution, service: string, action: string, pattern: string, input: any, task: TaskInfo): Promise<unknown> {
    const denied = this.options.authorizeTask?.(execution.stateMachineArn, { service, action, pattern, input });
    if (denied) throw new StatesError(denied.error, denied.cause);
    if (service === 'lambda-function') return lambdaPayload(await this.options.invokeLambda(action, input, execution.runStart));
    if (service === 'lambda' && action === 'invoke') {
      if (input.InvocationType === 'Event') {
        this.options.invokeLambdaAsync(input.FunctionName, input.Payload ?? {}, execution.runStart);
        return { StatusCode: 202, Payload: '' };
      }
      const result = await this.options.invokeLambda(input.FunctionName, input.Payload ?? {}, execution.runStart);
      return { ExecutedVersion: '$LATEST', Payload: lambdaPayload(result), StatusCode: 200, SdkHttpMetadata: { HttpStatusCode: 200 }, SdkResponseMetadata: { RequestId: result.requestId } };
    }
    if (service === 'states' && action === 'startExecution') {
      const childInput = typeof input.Input === 'string' ? JSON.parse(input.Input) : input.Input ?? {};
      const child = this.startExecution(input.StateMachineArn, childInput, input.Name, execution.executionArn);
      if (pattern !== 'sync' && pattern !== 'sync:2') return { ExecutionArn: child.executionArn, StartDate: child.startDate.toISOString() };
      const done = await child.done;
      const description = describeForSync(done, pattern === 'sync:2');
      if (done.status === 'SUCCEEDED') return description;
      throw new StatesError(done.status === 'TIMED_OUT' ? 'States.Timeout' : 'States.TaskFailed', JSON.stringify(description));
    }
    if (service === 'aws-sdk' || ['sns', 'sqs', 'dynamodb'].includes(service)) {
      const [sdkService, sdkAction] = service === 'aws-sdk' ? action.split(':') : [service, action];
      const params = { ...input };
      // Optimized integrations accept JSON for message bodies; the API wants strings.
      if (service === 'sns' && typeof params.Message !== 'string') params.Message = JSON.stringify(params.Message);
      if (service === 'sqs' && typeof params.MessageBody !== 'string') params.MessageBody = JSON.stringify(params.MessageBody);
      try {
        return await this.options.callService(sdkService, sdkAction, params, execution.stateMachineArn);
      } catch (e: any) {
        throw new StatesError(serviceErrorName(service, sdkService, e.name), e.message);
      }
    }
    throw new StatesError('States.Runtime', `The local engine does not emulate Task resource ${task.resource}`);
  }

  private async consumeEvents(execution: Execution, stateMachineName: string, events: AsyncGenerator<any>) {
    for await (const event of events) {
      if (event.type === 'StateEntered' || event.type === 'StateRetried') this.transitions++;
      this.options.onEvent?.({
        executionArn: execution.executionArn,
        stateMachineName,
        type: event.type,
        state: event.state?.name,
        error: event.Error,
        cause: typeof event.Cause === 'string' ? event.Cause : undefined,
        time: new Date(event.timestamp),
      });
    }
  }

  private settle(execution: Execution, status: ExecutionStatus, detail: { output?: unknown; error?: string; cause?: string }) {
    execution.status = status;
    execution.stopDate = new Date();
    execution.output = detail.output;
    if (detail.error !== undefined || execution.error === undefined) execution.error = detail.error;
    if (detail.cause !== undefined || execution.cause === undefined) execution.cause = detail.cause;
    // Tokens of this execution can no longer complete anything.
    for (const [token, task] of this.pending) if (task.executionArn === execution.executionArn) this.close(token);
  }
}

/** Status, error and cause of a failed `run().result`. */
function failureOf(e: any): [ExecutionStatus, { error?: string; cause?: string }] {
  if (e?.name === 'ExecutionTimeoutError') return ['TIMED_OUT', { error: 'States.Timeout', cause: 'The execution timed out' }];
  if (e?.name === 'ExecutionAbortedError') return ['ABORTED', {}];
  const inner = e?.cause ?? e;
  let cause = inner?.cause ?? inner?.message;
  if (typeof cause !== 'string') cause = cause === undefined ? undefined : JSON.stringify(cause);
  // The library's placeholder for a Fail state without Cause: AWS reports no cause.
  if (cause === 'Execution failed because of a Fail state') cause = undefined;
  return ['FAILED', { error: inner?.name, cause }];
}

/** The Lambda payload, or the Lambda error as Step Functions reports it (Error = errorType). */
function lambdaPayload(result: InvokeResult): unknown {
  if (!result.ok) throw new StatesError(result.error.errorType, JSON.stringify(result.error));
  try {
    return JSON.parse(result.payload);
  } catch {
    return result.payload;
  }
}

/** DescribeExecution-like output of `.sync` tasks (PascalCase; `.sync:2` keeps Input/Output as JSON). */
function describeForSync(e: Execution, json: boolean) {
  const encode = (v: unknown) => (json ? v : JSON.stringify(v));
  return {
    ExecutionArn: e.executionArn,
    StateMachineArn: e.stateMachineArn,
    Name: e.name,
    Status: e.status,
    StartDate: e.startDate.getTime(),
    StopDate: e.stopDate?.getTime(),
    Input: encode(e.input),
    InputDetails: { Included: true },
    ...(e.status === 'SUCCEEDED' ? { Output: encode(e.output), OutputDetails: { Included: true } } : {}),
    ...(e.error !== undefined ? { Error: e.error } : {}),
    ...(e.cause !== undefined ? { Cause: e.cause } : {}),
    RedriveCount: 0,
    RedriveStatus: 'NOT_REDRIVABLE',
  };
}

/** `arn:aws:states:::lambda:invoke.waitForTaskToken` -> lambda / invoke / waitForTaskToken. */
function parseResource(resource: string): { service: string; action: string; pattern: string } {
  if (/^arn:aws[\w-]*:lambda:/.test(resource)) return { service: 'lambda-function', action: resource, pattern: '' };
  const m = /^arn:aws[\w-]*:states:::([^:]+):(.+?)(?:\.(waitForTaskToken|sync(?::2)?))?$/.exec(resource);
  if (!m) return { service: 'unknown', action: resource, pattern: '' };
  return { service: m[1], action: m[2], pattern: m[3] ?? '' };
}

/** The token issued for this task: the first issued-and-unclaimed token in its parameters. */
function findToken(value: unknown, issued: Set<string>): string | undefined {
  if (typeof value === 'string') return issued.has(value) ? value : undefined;
  if (Array.isArray(value)) {
    for (const v of value) {
      const t = findToken(v, issued);
      if (t) return t;
    }
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) {
      const t = findToken(v, issued);
      if (t) return t;
    }
  }
  return undefined;
}

/**
 * Deep copy through JSON: the library checks for plain objects, and structuredClone's objects come
 * from another realm under test runners that sandbox globals (jest).
 */
export function cloneJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/** Records each Task's resource and timing, and gives tasks without TimeoutSeconds AWS's "none". */
function prepareDefinition(definition: any, tasks: Map<string, TaskInfo>) {
  for (const [name, state] of Object.entries<any>(definition.States ?? {})) {
    if (state.Type === 'Task') {
      if (state.TimeoutSeconds === undefined && state.TimeoutSecondsPath === undefined) state.TimeoutSeconds = NO_TIMEOUT_SECONDS;
      tasks.set(name, { resource: state.Resource, heartbeatSeconds: state.HeartbeatSeconds, timeoutSeconds: state.TimeoutSeconds });
    }
    for (const branch of state.Branches ?? []) prepareDefinition(branch, tasks);
    if (state.Iterator) prepareDefinition(state.Iterator, tasks);
    if (state.ItemProcessor) prepareDefinition(state.ItemProcessor, tasks);
  }
}

/** An execution as ListExecutions lists it (DescribeExecution adds input, output, error and cause). */
function executionListItem(e: Execution) {
  return {
    executionArn: e.executionArn,
    stateMachineArn: e.stateMachineArn,
    name: e.name,
    status: e.status,
    startDate: e.startDate.getTime() / 1000,
    stopDate: e.stopDate ? e.stopDate.getTime() / 1000 : undefined,
  };
}

/**
 * The error name a service integration's failure gets: an AWS SDK integration's is prefixed with the
 * service; DynamoDB's, documented, is `DynamoDb.` for the SDK integration and `DynamoDB.` for the
 * optimized one (connect-ddb.html). Other optimized integrations keep the service's own name here.
 */
function serviceErrorName(service: string, sdkService: string, name: string): string {
  if (sdkService.toLowerCase() === 'dynamodb') return `${service === 'aws-sdk' ? 'DynamoDb' : 'DynamoDB'}.${name}`;
  return service === 'aws-sdk' ? `${sdkService.charAt(0).toUpperCase()}${sdkService.slice(1)}.${name}` : name;
}
