/**
 * One local HTTP endpoint that speaks the AWS wire protocols the handlers use, so handler code
 * reaches the local services through the ordinary AWS SDK (`AWS_ENDPOINT_URL_<SERVICE>`), with no
 * local branches:
 * - AWS JSON 1.0/1.1 (`X-Amz-Target`): Step Functions, SQS, SSM, and DynamoDB / DynamoDB Streams,
 *   which are forwarded to DynamoDB Local and counted (reads, writes) on the way;
 * - AWS Query (form-encoded, XML answers): SNS;
 * - REST JSON: Lambda `Invoke` (`POST /2015-03-31/functions/<name>/invocations`) and, when given,
 *   Lambda's control-plane operations (`lambdaControl`).
 * Node.js sandboxes hand it the SDK's signed requests over their message port instead (`answerSandboxCall`);
 * the answer is the same either way.
 */
import { randomUUID } from 'node:crypto';
import { Agent, createServer, IncomingMessage, request as httpRequest, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ApiCaller } from './cloudtrail';
import type { DynamoDbFaultInjector } from './fault-injection';
import type { EndpointCall } from './iam/operations';
import { accessKeyOf } from './iam/principals';
import type { RunStart } from './sandbox-host';

/** An AWS service error: `code` is what the SDK turns into the exception's name. */
export class AwsError extends Error {
  constructor(public readonly code: string, message: string, public readonly status = 400) {
    super(message);
    this.name = code;
  }
}

export type EndpointHeaders = Record<string, string | string[] | undefined>;

/** One request to the endpoint: header names in lower case, as Node.js's HTTP server gives them. */
export interface EndpointRequest {
  readonly method: string;
  /** Path and query string. */
  readonly url: string;
  readonly headers: EndpointHeaders;
  readonly body: Buffer;
  /** For a call from a sandbox's invocation: when its run started (sandbox-host.ts RunStart), handed on to what the call invokes. */
  readonly runStart?: RunStart;
}

export interface EndpointResponse {
  readonly status: number;
  readonly headers: EndpointHeaders;
  readonly body: string | Buffer;
}

export type JsonHandler = (operation: string, body: any) => Promise<unknown>;
/**
 * What the endpoint knows of a call besides its content: who signed it (`caller`, whom CloudTrail
 * names for a management call; none: the engine's local credentials) and the run it belongs to
 * (`runStart`, handed on to what the call invokes; none: it counts from its arrival).
 */
export interface CallContext { readonly caller?: ApiCaller; readonly runStart?: RunStart }
/** The SNS Query API. */
export type QueryHandler = (params: URLSearchParams, context: CallContext) => Promise<string>;
export interface LambdaInvokeRequest { functionName: string; invocationType: string; payload: string; qualifier?: string; runStart?: RunStart }
export interface LambdaInvokeResponse { status: number; payload: string; functionError?: string; executedVersion?: string }
export type LambdaHandler = (request: LambdaInvokeRequest) => Promise<LambdaInvokeResponse>;

/** DynamoDB operations by kind, for the read/write counters. */
const DYNAMODB_READS = new Set(['GetItem', 'BatchGetItem', 'Query', 'Scan', 'TransactGetItems']);
const DYNAMODB_WRITES = new Set(['PutItem', 'UpdateItem', 'DeleteItem', 'BatchWriteItem', 'TransactWriteItems']);

export interface DynamoDbCounters {
  reads: number;
  writes: number;
  other: number;
  byOperation: Record<string, number>;
  /** Requests answered with an injected error (counted in the figures above too: the SDK sent them). */
  injectedErrors?: number;
}

/**
 * Lambda's control plane, in two steps: `parse` names the operation and the function (what the
 * endpoint authorizes), `handle` runs the parsed request, so the body is read once.
 */
export interface LambdaControl<R extends { operation: string; functionName: string; body: any }> {
  readonly paths: RegExp;
  readonly parse: (request: { method: string; url: string; body: string }) => R;
  readonly handle: (request: R, caller?: ApiCaller) => Promise<{ status: number; body?: unknown }>;
}

export interface AwsEndpointOptions {
  /** JSON protocol handlers by target prefix (`AWSStepFunctions`, `AmazonSQS`, `AmazonSSM`). */
  readonly json: Record<string, JsonHandler>;
  readonly sns: QueryHandler;
  readonly lambda: LambdaHandler;
  /** Lambda's other REST operations (CreateFunction, UpdateFunctionCode, tags: lambda-api.ts). */
  readonly lambdaControl?: LambdaControl<any>;
  /** DynamoDB Local's URL: DynamoDB and Streams calls are proxied there. */
  readonly dynamodbUrl: () => string;
  /** Armed rules answer matching DynamoDB requests with an injected error (fault-injection.ts). */
  readonly dynamodbFaults?: DynamoDbFaultInjector;
  /**
   * Sees each DynamoDB request before it is proxied (tests record them and may write in between, to
   * race a handler deterministically).
   */
  readonly observeDynamoDb?: (operation: string, body: Record<string, unknown>) => Promise<void>;
  /**
   * Told when DynamoDB Local has answered a write (its stream records exist by then): the engine's
   * stream readers poll at once instead of on their next interval. `tables`: the tables the write
   * named; undefined when the request was proxied without being read (every reader should look).
   */
  readonly onDynamoDbWrite?: (tables: readonly string[] | undefined) => void;
  /**
   * Authorizes each call as its caller (iam/enforcement.ts): throws the service's access-denied
   * AwsError. Absent: every call is allowed.
   */
  readonly authorize?: () => ((call: EndpointCall) => void) | undefined;
  /**
   * Who signed a request (its access key id), as CloudTrail's `userIdentity` names the caller of a
   * management call. Absent or undefined: the engine's local credentials.
   */
  readonly callerOf?: (accessKeyId: string | undefined) => ApiCaller | undefined;
}

/** Requests the endpoint answered, by how they came: over HTTP, or from a Node.js sandbox's message port. */
export interface EndpointCallCounters { http: number; messagePort: number }

export class AwsEndpoint {
  public readonly dynamodb: DynamoDbCounters = { reads: 0, writes: 0, other: 0, byOperation: {} };
  public readonly calls: EndpointCallCounters = { http: 0, messagePort: 0 };
  /** See `AwsEndpointOptions.observeDynamoDb`; may be set and cleared while the endpoint runs. */
  public observeDynamoDb?: AwsEndpointOptions['observeDynamoDb'];
  private server?: Server;
  /** Kept-alive connections to DynamoDB Local. */
  private readonly upstreamAgent = new Agent({ keepAlive: true });
  private upstreamUrl?: { raw: string; url: URL };

  constructor(private readonly options: AwsEndpointOptions) {
    this.observeDynamoDb = options.observeDynamoDb;
  }

  public get url(): string {
    const address = this.server?.address() as AddressInfo | undefined;
    if (!address) throw new Error('AWS endpoint not started');
    return `http://127.0.0.1:${address.port}`;
  }

  public async start(): Promise<void> {
    this.server = createServer((req, res) => {
      readRaw(req)
        .then((body) => {
          this.calls.http++;
          return this.answer({ method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body });
        })
        .then((answer) => {
          res.writeHead(answer.status, answer.headers);
          res.end(answer.body);
        })
        .catch((e) => res.destroy(e));
    });
    // Many concurrent SDK clients keep connections alive: never let the server be the bottleneck.
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
  }

  public async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    this.upstreamAgent.destroy();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Answers a request from a Node.js sandbox's message port (function-worker.ts) exactly as it would
   * answer it over HTTP: the sandbox's SDK client did all of its own work, only HTTP is skipped.
   */
  public answerSandboxCall(request: EndpointRequest): Promise<EndpointResponse> {
    this.calls.messagePort++;
    return this.answer(request);
  }

  private async answer(request: EndpointRequest): Promise<EndpointResponse> {
    try {
      return await this.route(request);
    } catch (e) {
      return jsonError(e instanceof AwsError ? e : new AwsError('InternalFailure', String((e as Error)?.stack ?? e), 500));
    }
  }

  /** Authorizes a call as the request's signer (no-op while authorization is off). */
  private authorize(request: EndpointRequest, call: Omit<EndpointCall, 'accessKeyId'>, authorize = this.options.authorize?.()) {
    authorize?.({ accessKeyId: accessKeyOf(request.headers.authorization), ...call });
  }

  private callerOf(request: EndpointRequest): ApiCaller | undefined {
    return this.options.callerOf?.(accessKeyOf(request.headers.authorization));
  }

  private async route(request: EndpointRequest): Promise<EndpointResponse> {
    const target = request.headers['x-amz-target'];
    if (typeof target === 'string' && /^DynamoDB(Streams)?_20120810\./.test(target)) {
      const write = this.countDynamoDb(target);
      const faults = this.options.dynamodbFaults;
      const observe = this.observeDynamoDb;
      const authorize = this.options.authorize?.();
      // The tables a write names; undefined for a request not parsed (every stream reader looks).
      let tables: readonly string[] | undefined;
      // Only while a rule is armed (or an observer looks, or calls are authorized) is the request parsed.
      if (faults?.armed || observe || authorize) {
        const operation = target.split('.')[1];
        const parsed = request.body.length ? JSON.parse(request.body.toString('utf8')) : {};
        this.authorize(request, { service: target.split('.')[0], operation, body: parsed }, authorize);
        await observe?.(operation, parsed);
        const error = faults?.armed ? faults.errorFor({ operation, body: parsed }) : undefined;
        if (error) {
          this.dynamodb.injectedErrors = (this.dynamodb.injectedErrors ?? 0) + 1;
          return jsonError(error);
        }
        tables = tablesWrittenBy(operation, parsed);
      }
      const answer = await this.proxy(request);
      if (write) this.options.onDynamoDbWrite?.(tables);
      return answer;
    }
    const body = request.body.toString('utf8');
    if (typeof target === 'string') {
      const [prefix, operation] = target.split('.');
      const handler = this.options.json[prefix];
      if (!handler) throw new AwsError('UnknownOperationException', `The local engine does not emulate ${target}`);
      const parsed = body.length ? JSON.parse(body) : {};
      this.authorize(request, { service: prefix, operation, body: parsed });
      const result = await handler(operation, parsed);
      return { status: 200, headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': randomUUID() }, body: JSON.stringify(result ?? {}) };
    }
    const invoke = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(request.url);
    if (invoke && request.method === 'POST') {
      const url = new URL(request.url, 'http://local');
      this.authorize(request, {
        service: 'lambda',
        operation: 'Invoke',
        body: { FunctionName: decodeURIComponent(invoke[1]), Qualifier: url.searchParams.get('Qualifier') ?? undefined },
      });
      const response = await this.options.lambda({
        functionName: decodeURIComponent(invoke[1]),
        invocationType: String(request.headers['x-amz-invocation-type'] ?? 'RequestResponse'),
        payload: body,
        qualifier: url.searchParams.get('Qualifier') ?? undefined,
        runStart: request.runStart,
      });
      const headers: Record<string, string> = { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() };
      if (response.functionError) headers['x-amz-function-error'] = response.functionError;
      if (response.executedVersion) headers['x-amz-executed-version'] = response.executedVersion;
      return { status: response.status, headers, body: response.payload };
    }
    const control = this.options.lambdaControl;
    if (control && control.paths.test(request.url)) {
      const parsed = control.parse({ method: request.method, url: request.url, body });
      this.authorize(request, { service: 'lambda', operation: parsed.operation, body: { FunctionName: parsed.functionName, Role: parsed.body.Role } });
      const response = await control.handle(parsed, this.callerOf(request));
      return {
        status: response.status,
        headers: { 'content-type': 'application/json', 'x-amzn-requestid': randomUUID() },
        body: response.body === undefined ? '' : JSON.stringify(response.body),
      };
    }
    const params = new URLSearchParams(body);
    if (params.has('Action')) {
      try {
        this.authorize(request, { service: 'sns', operation: params.get('Action')!, body: Object.fromEntries(params) });
        const xml = await this.options.sns(params, { caller: this.callerOf(request), runStart: request.runStart });
        return { status: 200, headers: { 'content-type': 'text/xml' }, body: xml };
      } catch (e) {
        return queryError(e instanceof AwsError ? e : new AwsError('InternalError', String(e), 500));
      }
    }
    throw new AwsError('UnknownOperationException', `The local engine does not emulate ${request.method} ${request.url}`);
  }

  /** Counts the request; true for a write. */
  private countDynamoDb(target: string): boolean {
    const operation = target.split('.')[1];
    this.dynamodb.byOperation[operation] = (this.dynamodb.byOperation[operation] ?? 0) + 1;
    const write = DYNAMODB_WRITES.has(operation);
    if (DYNAMODB_READS.has(operation)) this.dynamodb.reads++;
    else if (write) this.dynamodb.writes++;
    else this.dynamodb.other++;
    return write;
  }

  /**
   * Forwards the request to DynamoDB Local unchanged (the SDK's signature and credentials included).
   * Requests and answers are small: each is sent whole, in one write, rather than streamed.
   */
  private proxy(request: EndpointRequest): Promise<EndpointResponse> {
    const target = this.upstream();
    const headers: EndpointHeaders = { ...request.headers, 'host': target.host, 'content-length': String(request.body.length) };
    delete headers['transfer-encoding'];
    return new Promise((resolve, reject) => {
      const upstream = httpRequest({
        host: target.hostname, port: target.port, method: request.method, path: request.url, headers, agent: this.upstreamAgent,
      }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (c: Buffer) => chunks.push(c));
        response.on('error', reject);
        response.on('end', () => {
          const data = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
          const answer: EndpointHeaders = { ...response.headers, 'content-length': String(data.length) };
          delete answer['transfer-encoding'];
          resolve({ status: response.statusCode ?? 500, headers: answer, body: data });
        });
      });
      upstream.on('error', reject);
      upstream.end(request.body);
    });
  }

  /** DynamoDB Local's URL, parsed once per value. */
  private upstream(): URL {
    const raw = this.options.dynamodbUrl();
    if (this.upstreamUrl?.raw !== raw) this.upstreamUrl = { raw, url: new URL(raw) };
    return this.upstreamUrl.url;
  }
}

/**
 * The tables a DynamoDB write names (by name; a table ARN's name part), or undefined when the
 * request does not say (a malformed one: every stream reader then looks).
 */
export function tablesWrittenBy(operation: string, body: Record<string, any>): readonly string[] | undefined {
  const names = namedTables(operation, body);
  if (names.length === 0 || names.some((name) => typeof name !== 'string')) return undefined;
  return names.map((name) => String(name).split(':table/').pop()!);
}

function namedTables(operation: string, body: Record<string, any>): unknown[] {
  switch (operation) {
    case 'BatchWriteItem':
      return Object.keys(body.RequestItems ?? {});
    case 'TransactWriteItems':
      return (Array.isArray(body.TransactItems) ? body.TransactItems : [])
        .map((item: Record<string, any>) => (item.Put ?? item.Update ?? item.Delete ?? item.ConditionCheck)?.TableName);
    default:
      return [body.TableName];
  }
}

function readRaw(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/** AWS JSON protocol error: the SDK reads `__type` (after `#`) as the exception name. */
function jsonError(error: AwsError): EndpointResponse {
  return {
    status: error.status,
    headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': error.code, 'x-amzn-requestid': randomUUID() },
    body: JSON.stringify({ __type: `com.amazonaws.local#${error.code}`, message: error.message }),
  };
}

/** AWS Query protocol error (SNS). */
function queryError(error: AwsError): EndpointResponse {
  return {
    status: error.status,
    headers: { 'content-type': 'text/xml' },
    body: `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>Sender</Type><Code>${escapeXml(error.code)}</Code>`
      + `<Message>${escapeXml(error.message)}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`,
  };
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' }[c]!));
}
