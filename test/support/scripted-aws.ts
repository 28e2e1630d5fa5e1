/**
 * Scripted answers on the local engine's AWS endpoint (local/src/engine/aws-endpoint.ts), for handler
 * tests that need to control what Step Functions, SNS, Lambda and EventBridge answer (plugin
 * behaviour, expired tokens, outages, refused events). The wire protocols are the engine's, so the
 * bundled handlers run unchanged with `AWS_ENDPOINT_URL_*` pointing here. DynamoDB requests are
 * proxied to DynamoDB Local by the endpoint and recorded here, so tests can hold the handlers to
 * their request budget. Every call is recorded.
 */
import { randomUUID } from 'node:crypto';
import { AwsEndpoint, AwsError, LambdaInvokeResponse } from '../../local/src/engine/aws-endpoint';

export type Service = 'sfn' | 'sns' | 'lambda' | 'dynamodb' | 'events';

export interface RecordedCall {
  readonly service: Service;
  readonly action: string;
  /** Parsed request: JSON body (SFN, DynamoDB, EventBridge), publish parameters (SNS), payload (Lambda). */
  readonly input: Record<string, any>;
}

/** A scripted Lambda function: its return value is the payload; a throw becomes a function error. */
export type FunctionBehaviour = (event: any) => unknown;

export interface PublishedMessage {
  readonly topicArn: string;
  readonly message: string;
  readonly attributes: Record<string, { DataType: string; StringValue: string }>;
}

export class ScriptedAws {
  public static async start(dynamoDbEndpoint: string): Promise<ScriptedAws> {
    const scripted = new ScriptedAws(dynamoDbEndpoint);
    await scripted.aws.start();
    return scripted;
  }

  public readonly calls: RecordedCall[] = [];
  private readonly aws: AwsEndpoint;
  private readonly functions = new Map<string, FunctionBehaviour>();
  /** Tokens answered already, or made to fail with a given error name. */
  private readonly closedTokens = new Map<string, string>();
  private readonly dynamoDbInterceptors = new Map<string, () => Promise<void>>();
  private readonly sfnHooks = new Map<string, (input: Record<string, any>) => Promise<void>>();
  private readonly sfnFailures = new Map<string, { errorName: string; remaining: number }>();
  private putEventsRejections = 0;

  private constructor(dynamoDbEndpoint: string) {
    this.aws = new AwsEndpoint({
      json: {
        AWSStepFunctions: (action, input) => this.stepFunctions(action, input),
        AWSEvents: (action, input) => this.events(action, input),
      },
      sns: (params) => this.sns(params),
      lambda: (request) => this.invoke(request.functionName, request.payload),
      dynamodbUrl: () => dynamoDbEndpoint,
      observeDynamoDb: async (action, input) => {
        this.calls.push({ service: 'dynamodb', action, input });
        const interfere = this.dynamoDbInterceptors.get(action);
        this.dynamoDbInterceptors.delete(action);
        await interfere?.();
      },
    });
  }

  /** The endpoint's URL, for `AWS_ENDPOINT_URL_<SERVICE>`. */
  public get endpoint(): string {
    return this.aws.url;
  }

  /** Registers a plugin function (by name; invocations by ARN find it too). */
  public onInvoke(functionName: string, behaviour: FunctionBehaviour): void {
    this.functions.set(functionName, behaviour);
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

  /**
   * The next `count` PutEvents entries are refused (`ErrorCode` InternalException), as EventBridge
   * reports entries it could not accept.
   */
  public rejectPutEventsEntries(count: number): void {
    this.putEventsRejections = count;
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
    await this.aws.stop();
  }

  private async stepFunctions(action: string, input: Record<string, any>): Promise<unknown> {
    this.calls.push({ service: 'sfn', action, input });
    const hook = this.sfnHooks.get(action);
    this.sfnHooks.delete(action);
    await hook?.(input);
    const failure = this.sfnFailures.get(action);
    if (failure && failure.remaining > 0) {
      failure.remaining--;
      throw new AwsError(failure.errorName, `Injected failure (${failure.errorName})`);
    }
    const token = String(input.taskToken ?? '');
    const closedWith = this.closedTokens.get(token);
    if (closedWith) throw new AwsError(closedWith, `Task token is no longer valid (${closedWith})`);
    // Like Step Functions: an answered task's token cannot be used again.
    if (action === 'SendTaskSuccess' || action === 'SendTaskFailure') this.closedTokens.set(token, 'TaskTimedOut');
    return {};
  }

  /** EventBridge PutEvents: every entry recorded; accepted unless a rejection is scripted. */
  private async events(action: string, input: Record<string, any>): Promise<unknown> {
    this.calls.push({ service: 'events', action, input });
    if (action !== 'PutEvents') throw new AwsError('UnknownOperationException', `Not scripted: AWSEvents.${action}`);
    const entries = (input.Entries ?? []).map(() => {
      if (this.putEventsRejections > 0) {
        this.putEventsRejections--;
        return { ErrorCode: 'InternalException', ErrorMessage: 'Injected failure' };
      }
      return { EventId: randomUUID() };
    });
    return { FailedEntryCount: entries.filter((e: { ErrorCode?: string }) => e.ErrorCode).length, Entries: entries };
  }

  private async invoke(name: string, payload: string): Promise<LambdaInvokeResponse> {
    const functionName = name.includes(':function:') ? name.split(':function:')[1].split(':')[0] : name;
    const event = payload ? JSON.parse(payload) : undefined;
    this.calls.push({ service: 'lambda', action: 'Invoke', input: { functionName, event } });
    const behaviour = this.functions.get(functionName);
    if (!behaviour) throw new AwsError('ResourceNotFoundException', `Function not found: ${name}`, 404);
    try {
      const result = await behaviour(event);
      return { status: 200, payload: result === undefined ? 'null' : JSON.stringify(result), executedVersion: '$LATEST' };
    } catch (error) {
      const failure = error as Error;
      return {
        status: 200,
        payload: JSON.stringify({ errorType: failure.name, errorMessage: failure.message, trace: [] }),
        functionError: 'Unhandled',
        executedVersion: '$LATEST',
      };
    }
  }

  private async sns(form: URLSearchParams): Promise<string> {
    if (form.get('Action') !== 'Publish') throw new AwsError('InvalidAction', `Not scripted: SNS ${form.get('Action')}`);
    const attributes: PublishedMessage['attributes'] = {};
    for (let i = 1; form.has(`MessageAttributes.entry.${i}.Name`); i++) {
      attributes[form.get(`MessageAttributes.entry.${i}.Name`)!] = {
        DataType: form.get(`MessageAttributes.entry.${i}.Value.DataType`)!,
        StringValue: form.get(`MessageAttributes.entry.${i}.Value.StringValue`)!,
      };
    }
    const message: PublishedMessage = { topicArn: form.get('TopicArn')!, message: form.get('Message')!, attributes };
    this.calls.push({ service: 'sns', action: 'Publish', input: message });
    return `<PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult><MessageId>${randomUUID()}</MessageId>`
      + `</PublishResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></PublishResponse>`;
  }
}
