/**
 * A small local HTTP endpoint that stands in for Step Functions, SNS and Lambda until the local
 * engine exists, so the bundled handlers run unchanged with `AWS_ENDPOINT_URL_*` pointing here.
 * It speaks each service's wire protocol as this SDK version sends it:
 * - Step Functions: AWS JSON 1.0 (`X-Amz-Target: AWSStepFunctions.<Action>`);
 * - SNS: AWS Query (form-encoded body, XML response);
 * - Lambda Invoke: REST `POST /2015-03-31/functions/<name>/invocations`.
 * DynamoDB requests are forwarded to DynamoDB Local and counted, so tests can hold the handlers to
 * their request budget. Every call is recorded; tests script answers (plugin behaviour, expired tokens).
 */
import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, request, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

export type Service = 'sfn' | 'sns' | 'lambda' | 'dynamodb' | 'events';

export interface RecordedCall {
  readonly service: Service;
  readonly action: string;
  /** Parsed request: JSON body (SFN, DynamoDB), publish parameters (SNS), payload (Lambda). */
  readonly input: Record<string, any>;
}

/** A fake Lambda function: its return value is the payload; a throw becomes a function error. */
export type FunctionBehaviour = (event: any) => unknown;

export interface PublishedMessage {
  readonly topicArn: string;
  readonly message: string;
  readonly attributes: Record<string, { DataType: string; StringValue: string }>;
}

export class FakeAws {
  public static async start(dynamoDbEndpoint: string): Promise<FakeAws> {
    const fake = new FakeAws(dynamoDbEndpoint);
    await new Promise<void>((resolve) => fake.server.listen(0, '127.0.0.1', resolve));
    return fake;
  }

  public readonly calls: RecordedCall[] = [];
  private readonly server: Server;
  private readonly functions = new Map<string, FunctionBehaviour>();
  /** Tokens answered already, or made to fail with a given error name. */
  private readonly closedTokens = new Map<string, string>();
  private readonly dynamoDb: URL;
  private publishListener?: (message: PublishedMessage) => void | Promise<void>;
  private readonly dynamoDbInterceptors = new Map<string, () => Promise<void>>();
  private readonly sfnHooks = new Map<string, (input: Record<string, any>) => Promise<void>>();
  private readonly sfnFailures = new Map<string, { errorName: string; remaining: number }>();
  private putEventsRejections = 0;

  private constructor(dynamoDbEndpoint: string) {
    this.dynamoDb = new URL(dynamoDbEndpoint);
    this.server = createServer((req, res) => {
      this.route(req, res).catch((error: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error.stack));
      });
    });
  }

  public get endpoint(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** Registers a plugin function (by name; invocations by ARN find it too). */
  public onInvoke(functionName: string, behaviour: FunctionBehaviour): void {
    this.functions.set(functionName, behaviour);
  }

  /** Called for every SNS publish (e.g. to let the subscribed plugins react). */
  public onPublish(listener: (message: PublishedMessage) => void | Promise<void>): void {
    this.publishListener = listener;
  }

  /**
   * Runs `interfere` once, just before the next handler request of this DynamoDB action reaches
   * DynamoDB Local: a deterministic way to let "someone else" write between a handler's read and write.
   */
  public beforeNextDynamoDb(action: string, interfere: () => Promise<void>): void {
    this.dynamoDbInterceptors.set(action, interfere);
  }

  /** Runs `hook` once, just before the next Step Functions call of this action is answered. */
  public beforeNextStepFunctions(action: string, hook: (input: Record<string, any>) => Promise<void>): void {
    this.sfnHooks.set(action, hook);
  }

  /** The next `times` Step Functions calls of this action fail with `errorName` (e.g. an outage). */
  public failStepFunctions(action: string, errorName: string, times: number): void {
    this.sfnFailures.set(action, { errorName, remaining: times });
  }

  /** Every later callback with this token fails with `errorName` (e.g. `TaskTimedOut`: expired). */
  public expireToken(token: string, errorName = 'TaskTimedOut'): void {
    this.closedTokens.set(token, errorName);
  }

  public callsTo(service: Service, action?: string): RecordedCall[] {
    return this.calls.filter((call) => call.service === service && (action === undefined || call.action === action));
  }

  /** DynamoDB requests the handlers made (test code talks to DynamoDB Local directly). */
  public dynamoDbRequests(): string[] {
    return this.callsTo('dynamodb').map((call) => call.action);
  }

  public published(): PublishedMessage[] {
    return this.callsTo('sns', 'Publish').map((call) => call.input as PublishedMessage);
  }

  public invocations(functionName?: string): RecordedCall[] {
    return this.callsTo('lambda', 'Invoke').filter((call) => functionName === undefined || call.input.functionName === functionName);
  }

  public clearCalls(): void {
    this.calls.length = 0;
  }

  public async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = String(req.headers['x-amz-target'] ?? '');
    if (target.startsWith('DynamoDB_')) return this.forwardToDynamoDb(req, res, body, target.split('.')[1]);
    if (target.startsWith('AWSStepFunctions.')) return this.stepFunctions(res, target.split('.')[1], JSON.parse(body.toString() || '{}'));
    if (target === 'AWSEvents.PutEvents') return this.putEvents(res, JSON.parse(body.toString() || '{}'));
    const invocation = /^\/2015-03-31\/functions\/([^/]+)\/invocations/.exec(req.url ?? '');
    if (invocation) return this.invoke(res, decodeURIComponent(invocation[1]), body.toString());
    const form = new URLSearchParams(body.toString());
    if (form.get('Action') === 'Publish') return this.publish(res, form);
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`FakeAws: unsupported request ${req.method} ${req.url} ${target}`);
  }

  private async forwardToDynamoDb(req: IncomingMessage, res: ServerResponse, body: Buffer, action: string): Promise<void> {
    const input = JSON.parse(body.toString() || '{}') as Record<string, unknown>;
    this.calls.push({ service: 'dynamodb', action, input });
    const interfere = this.dynamoDbInterceptors.get(action);
    this.dynamoDbInterceptors.delete(action);
    await interfere?.();
    return new Promise((resolve, reject) => {
      const upstream = request({
        host: this.dynamoDb.hostname,
        port: this.dynamoDb.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.dynamoDb.host },
      }, (answer) => {
        res.writeHead(answer.statusCode ?? 500, answer.headers);
        answer.pipe(res);
        answer.on('end', resolve);
      });
      upstream.on('error', reject);
      upstream.end(body);
    });
  }

  private async stepFunctions(res: ServerResponse, action: string, input: Record<string, any>): Promise<void> {
    this.calls.push({ service: 'sfn', action, input });
    const hook = this.sfnHooks.get(action);
    this.sfnHooks.delete(action);
    await hook?.(input);
    const failure = this.sfnFailures.get(action);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': failure.errorName });
      res.end(JSON.stringify({ __type: failure.errorName, message: `Injected failure (${failure.errorName})` }));
      return;
    }
    const token = String(input.taskToken ?? '');
    const closedWith = this.closedTokens.get(token);
    if (closedWith) {
      res.writeHead(400, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-errortype': closedWith });
      res.end(JSON.stringify({ __type: closedWith, message: `Task token is no longer valid (${closedWith})` }));
      return;
    }
    // Like Step Functions: an answered task's token cannot be used again.
    if (action === 'SendTaskSuccess' || action === 'SendTaskFailure') this.closedTokens.set(token, 'TaskTimedOut');
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
    res.end('{}');
  }

  /**
   * The next `count` PutEvents entries are refused (`ErrorCode` InternalException), as EventBridge
   * reports entries it could not accept.
   */
  public rejectPutEventsEntries(count: number): void {
    this.putEventsRejections = count;
  }

  /** EventBridge PutEvents (AWS JSON 1.1): every entry recorded; accepted unless a rejection is scripted. */
  private async putEvents(res: ServerResponse, input: Record<string, any>): Promise<void> {
    this.calls.push({ service: 'events', action: 'PutEvents', input });
    const entries = (input.Entries ?? []).map(() => {
      if (this.putEventsRejections > 0) {
        this.putEventsRejections--;
        return { ErrorCode: 'InternalException', ErrorMessage: 'Injected failure' };
      }
      return { EventId: randomUUID() };
    });
    res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
    res.end(JSON.stringify({ FailedEntryCount: entries.filter((e: { ErrorCode?: string }) => e.ErrorCode).length, Entries: entries }));
  }

  private async invoke(res: ServerResponse, name: string, payload: string): Promise<void> {
    const functionName = name.includes(':function:') ? name.split(':function:')[1].split(':')[0] : name;
    const event = payload ? JSON.parse(payload) : undefined;
    this.calls.push({ service: 'lambda', action: 'Invoke', input: { functionName, event } });
    const behaviour = this.functions.get(functionName);
    if (!behaviour) {
      res.writeHead(404, { 'content-type': 'application/json', 'x-amzn-errortype': 'ResourceNotFoundException' });
      res.end(JSON.stringify({ Type: 'User', message: `Function not found: ${name}` }));
      return;
    }
    try {
      const result = await behaviour(event);
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-executed-version': '$LATEST' });
      res.end(result === undefined ? 'null' : JSON.stringify(result));
    } catch (error) {
      const failure = error as Error;
      res.writeHead(200, { 'content-type': 'application/json', 'x-amz-function-error': 'Unhandled', 'x-amz-executed-version': '$LATEST' });
      res.end(JSON.stringify({ errorType: failure.name, errorMessage: failure.message, trace: [] }));
    }
  }

  private async publish(res: ServerResponse, form: URLSearchParams): Promise<void> {
    const attributes: PublishedMessage['attributes'] = {};
    for (let i = 1; form.has(`MessageAttributes.entry.${i}.Name`); i++) {
      attributes[form.get(`MessageAttributes.entry.${i}.Name`)!] = {
        DataType: form.get(`MessageAttributes.entry.${i}.Value.DataType`)!,
        StringValue: form.get(`MessageAttributes.entry.${i}.Value.StringValue`)!,
      };
    }
    const message: PublishedMessage = { topicArn: form.get('TopicArn')!, message: form.get('Message')!, attributes };
    this.calls.push({ service: 'sns', action: 'Publish', input: message });
    res.writeHead(200, { 'content-type': 'text/xml' });
    res.end(`<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId>`
      + `</PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`);
    await this.publishListener?.(message);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
